import XCTest
@testable import Reports

final class ReportRenderingTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = try ReportFixtures.temporaryFolder("render")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    func testBinaryRunReportHasEveryFigureAndIsDeterministic() throws {
        try ReportFixtures.binaryRun(in: folder)
        let a = try RunReport.render(runFolder: folder)
        let b = try RunReport.render(runFolder: folder)
        XCTAssertEqual(a.html, b.html, "same folder, same bytes")
        XCTAssertEqual(a.figures.map(\.id), ["fig-loss", "fig-metric", "fig-confusion", "fig-roc", "fig-pr", "fig-calibration"])
        for f in a.figures { XCTAssertTrue(a.html.contains("id=\"\(f.id)\""), f.id) }
        // Self-contained: no scripts, nothing fetched.
        XCTAssertFalse(a.html.lowercased().contains("<script"))
        XCTAssertFalse(a.html.contains("src="))
        XCTAssertFalse(a.html.contains("href="))
        XCTAssertFalse(a.html.contains("@import"))
        // The markup column name is escaped, everywhere.
        XCTAssertFalse(a.html.contains("<b>&\"x\""))
        XCTAssertTrue(a.html.contains("&lt;b&gt;&amp;&quot;x&quot;"))
        // Numbers from the files and from the predictions.
        XCTAssertTrue(a.html.contains(">0.85<"), "validation accuracy in the metrics table")
        XCTAssertTrue(a.html.contains(">nan<"), "a metric written as \"nan\"")
        XCTAssertTrue(a.html.contains("c17978a426b7"), "shortened data hash")
        XCTAssertTrue(a.html.contains("60 rows with a known smoker from validation_predictions.csv"))
        let rows = try fixtureRows()
        let auc = ROCCurve(positive: rows.truth.map { $0 == "yes" }, scores: rows.probabilities.map { $0[1] }).auc ?? -1
        XCTAssertTrue(a.html.contains("AUC \(formatNumber(auc, digits: 3))"))
        // Boxes do not overlap and stay on the page.
        for (i, f) in a.figures.enumerated() {
            XCTAssertLessThanOrEqual(f.x + f.width, a.width - 20)
            XCTAssertLessThanOrEqual(f.y + f.height, a.height)
            for g in a.figures[(i + 1)...] {
                let apart = f.x + f.width <= g.x || g.x + g.width <= f.x || f.y + f.height <= g.y || g.y + g.height <= f.y
                XCTAssertTrue(apart, "\(f.id) overlaps \(g.id)")
            }
        }
    }

    func testRegressionRunReportUsesTestPredictions() throws {
        try ReportFixtures.regressionRun(in: folder)
        let doc = try RunReport.render(runFolder: folder)
        XCTAssertEqual(doc.figures.map(\.id), ["fig-loss", "fig-metric", "fig-scatter", "fig-residuals"])
        XCTAssertTrue(doc.html.contains("from test_predictions.csv (the test split)"))
        XCTAssertTrue(doc.html.contains("y = x"))
    }

    func testMultiTaskRunHasASectionPerTask() throws {
        try ReportFixtures.multiTaskRun(in: folder)
        let doc = try RunReport.render(runFolder: folder)
        XCTAssertEqual(doc.figures.map(\.id), ["fig-loss", "fig-metric", "fig-kind-confusion", "fig-kind-roc", "fig-kind-pr",
                                               "fig-kind-calibration", "fig-size-scatter", "fig-size-residuals"])
        XCTAssertTrue(doc.html.contains("Validation kind.accuracy"), "the first task's metric is drawn")
        XCTAssertTrue(doc.html.contains("validation_predictions.csv has no prediction columns for flag."))
    }

    func testLargeFilesStaySmallOnThePage() {
        // 100 000 thresholds: the ROC polyline keeps only points a pixel apart.
        var rng = ReportFixtures.Sequence(state: 3)
        let scores = (0..<100_000).map { _ in rng.next() }
        let positive = scores.map { $0 + rng.next() * 0.5 > 0.75 }
        let rows = ClassifiedRows(classes: ["no", "yes"], truth: positive.map { $0 ? "yes" : "no" },
                                  predicted: scores.map { $0 > 0.5 ? "yes" : "no" },
                                  probabilities: scores.map { [1 - $0, $0] })
        let roc = ClassificationFigures.roc(rows, id: "fig-roc").svg
        XCTAssertLessThan(roc.utf8.count, 60_000)
        // 10 000 regression rows: one in three is drawn.
        let truth = (0..<10_000).map(Double.init)
        let figures = RegressionFigures.figures(RegressedRows(truth: truth, predicted: truth.map { $0 * 1.1 }),
                                                idPrefix: "fig-", label: "y")
        XCTAssertTrue(figures[0].svg.contains("1 row in 3 of 10000"))
        XCTAssertEqual(figures[0].svg.components(separatedBy: "<circle").count - 1, 3334 + 1, "dots plus the legend's")
    }

    func testLearningCurvesFallBackToStepsWhenEpochsRepeat() throws {
        let history = try CSVTable(parsing: "epoch,step,train_loss,val.loss\n1,5,1,1\n1,10,0.8,0.9\n2,15,0.6,0.7\n", source: "h.csv")
        XCTAssertEqual(LearningCurves.axis(history).1, "step")
        XCTAssertEqual(LearningCurves.axis(history).0, [5, 10, 15])
    }

    func testMissingPredictionsAreSaidNotDrawn() throws {
        try ReportFixtures.binaryRun(in: folder)
        try FileManager.default.removeItem(at: folder.appendingPathComponent("validation_predictions.csv"))
        try FileManager.default.removeItem(at: folder.appendingPathComponent("history.csv"))
        let doc = try RunReport.render(runFolder: folder)
        XCTAssertEqual(doc.figures.map(\.id), [])
        XCTAssertTrue(doc.html.contains("No validation_predictions.csv or test_predictions.csv"))
        XCTAssertTrue(doc.html.contains("history.csv is missing from the run folder"))
    }

    func testSweepReport() throws {
        try ReportFixtures.sweep(in: folder)
        let doc = try SweepReport.render(sweepFolder: folder)
        XCTAssertEqual(doc.figures.map(\.id), ["fig-param-trainer-optimizer-lr", "fig-param-fusion-dropout",
                                               "fig-param-fusion-kind", "fig-parallel", "fig-best-loss", "fig-best-metric"])
        XCTAssertTrue(doc.html.contains("(log axis)"), "the learning rate spans two decades")
        XCTAssertTrue(doc.html.contains("out of memory: &lt;trial 4&gt; &amp; more"))
        XCTAssertEqual(doc.html, try SweepReport.render(sweepFolder: folder).html)
        // Ranked best first: 005 (lr 1e-2, dropout 0.3, mlp: 0.86 − 0.03 + 0.02 = 0.85), 002 (stopped,
        // 0.80), 003, 000, 001; then the failed 004 and the queued 006 by index.
        let sweep = try SweepFolder(url: folder)
        XCTAssertEqual(sweep.ranked.map(\.name), ["005", "002", "003", "000", "001", "004", "006"])
        XCTAssertEqual(sweep.bestTrial?.name, "005")
    }

    func testWriteRefusesToReplaceAFileThatIsNotAReport() throws {
        try ReportFixtures.binaryRun(in: folder)
        let target = folder.appendingPathComponent("report.html")
        try Data("my notes\n".utf8).write(to: target)
        XCTAssertThrowsError(try Report.write(folder: folder)) { error in
            XCTAssertTrue(String(describing: error).contains("is not a runpipe report"), "\(error)")
        }
        XCTAssertEqual(try String(contentsOf: target, encoding: .utf8), "my notes\n")
        try FileManager.default.removeItem(at: target)
        XCTAssertEqual(try Report.write(folder: folder), target)
        XCTAssertEqual(try Report.write(folder: folder), target, "a previous report is replaced")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".tmp") }
        XCTAssertEqual(leftovers, [])
    }

    func testFolderKindIsDetected() throws {
        XCTAssertThrowsError(try Report.kind(of: folder)) { error in
            XCTAssertTrue(String(describing: error).contains("neither lock.json (a run) nor sweep.json (a sweep)"))
        }
        XCTAssertThrowsError(try Report.kind(of: folder.appendingPathComponent("absent"))) { error in
            XCTAssertTrue(String(describing: error).contains("does not exist"))
        }
        try ReportFixtures.sweep(in: folder)
        XCTAssertEqual(try Report.kind(of: folder), .sweep)
    }

    func testMalformedSweepFileNamesTheProblem() throws {
        try ReportFixtures.write(#"{"format": "runpipe-sweep-9", "trials": []}"#, folder, "sweep.json")
        XCTAssertThrowsError(try SweepReport.render(sweepFolder: folder)) { error in
            XCTAssertTrue(String(describing: error).contains("expected \"runpipe-sweep-1\""), "\(error)")
        }
    }

    private func fixtureRows() throws -> ClassifiedRows {
        let table = try CSVTable(contentsOf: folder.appendingPathComponent("validation_predictions.csv"))
        let task = RunFolder.Task(name: "smoker", problem: "binary", columns: ["smoker"], namedInPredictions: false)
        return try XCTUnwrap(ClassifiedRows(table: table, task: task))
    }
}
