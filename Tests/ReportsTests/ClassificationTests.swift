import XCTest
@testable import Reports

/// The report's numbers against scikit-learn's (values from its documentation examples or
/// computed by hand; scikit-learn is not needed to run these).
final class ClassificationTests: XCTestCase {
    // sklearn.metrics docs: y = [0, 0, 1, 1], scores = [0.1, 0.4, 0.35, 0.8].
    let labels = [false, false, true, true]
    let scores = [0.1, 0.4, 0.35, 0.8]

    func testROCMatchesScikitLearnExample() {
        let roc = ROCCurve(positive: labels, scores: scores)
        // roc_curve(..., drop_intermediate=False)
        XCTAssertEqual(roc.falsePositiveRate, [0, 0, 0.5, 0.5, 1])
        XCTAssertEqual(roc.truePositiveRate, [0, 0.5, 0.5, 1, 1])
        XCTAssertEqual(roc.thresholds, [0.8, 0.4, 0.35, 0.1])
        XCTAssertEqual(roc.auc ?? -1, 0.75, accuracy: 1e-12)   // roc_auc_score
    }

    func testPrecisionRecallMatchesScikitLearnExample() {
        let pr = PRCurve(positive: labels, scores: scores)
        // precision_recall_curve: precision [0.5, 0.667, 0.5, 1, 1], recall [1, 1, 0.5, 0.5, 0].
        XCTAssertEqual(pr.precision.count, 5)
        for (a, b) in zip(pr.precision, [0.5, 2.0 / 3, 0.5, 1, 1]) { XCTAssertEqual(a, b, accuracy: 1e-12) }
        XCTAssertEqual(pr.recall, [1, 1, 0.5, 0.5, 0])
        XCTAssertEqual(pr.thresholds, [0.1, 0.35, 0.4, 0.8])
        XCTAssertEqual(pr.averagePrecision ?? -1, 0.8333333333333333, accuracy: 1e-12)   // average_precision_score
        XCTAssertEqual(pr.prevalence, 0.5)
    }

    func testTiedScoresMoveTogether() {
        // y = [1, 0, 1, 0, 1], scores = [0.9, 0.9, 0.5, 0.5, 0.1]:
        // roc_auc_score = 1/3 (Mann–Whitney with ties counted half), average_precision_score = 0.5333….
        let positive = [true, false, true, false, true]
        let s = [0.9, 0.9, 0.5, 0.5, 0.1]
        let roc = ROCCurve(positive: positive, scores: s)
        XCTAssertEqual(roc.falsePositiveRate, [0, 0.5, 1, 1])
        XCTAssertEqual(roc.truePositiveRate[1], 1.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(roc.auc ?? -1, 1.0 / 3, accuracy: 1e-12)
        let pr = PRCurve(positive: positive, scores: s)
        XCTAssertEqual(pr.averagePrecision ?? -1, (0.5 + 0.5 + 0.6) / 3, accuracy: 1e-12)
    }

    func testOneClassOnlyHasNoArea() {
        XCTAssertNil(ROCCurve(positive: [true, true], scores: [0.2, 0.7]).auc)
        XCTAssertNil(PRCurve(positive: [false, false], scores: [0.2, 0.7]).averagePrecision)
    }

    func testCalibrationBinsLikeCalibrationCurve() {
        // calibration_curve([0, 1, 0, 1, 1, 0], [0.05, 0.1, 0.15, 0.95, 1.0, 0.35], n_bins=10):
        // prob_true [0, 0.5, 0, 1], prob_pred [0.05, 0.125, 0.35, 0.975].
        let bins = CalibrationBins(probabilities: [0.05, 0.1, 0.15, 0.95, 1.0, 0.35],
                                   happened: [false, true, false, true, true, false])
        let filled = bins.bins.filter { $0.count > 0 }
        XCTAssertEqual(filled.map(\.count), [1, 2, 1, 2])
        XCTAssertEqual(filled.compactMap(\.observedFrequency), [0, 0.5, 0, 1])
        let means = filled.compactMap(\.meanPredicted)
        for (a, b) in zip(means, [0.05, 0.125, 0.35, 0.975]) { XCTAssertEqual(a, b, accuracy: 1e-12) }
        XCTAssertEqual(bins.bins.count, 10)
        XCTAssertEqual(bins.bins[9].count, 2, "1.0 falls in the last bin")
        // numpy's edge 3 is 0.30000000000000004, so 0.3 is in bin 2, as in scikit-learn.
        let edge = CalibrationBins(probabilities: [0.3], happened: [true])
        XCTAssertEqual(edge.bins[2].count, 1)
    }

    func testConfusionMatrixCountsAndAppendsUnknownClasses() {
        let m = ConfusionMatrix(classes: ["a", "b", "c"], truth: ["a", "a", "b", "c", "c", "c", "d"],
                                predicted: ["a", "b", "b", "c", "a", "c", "a"])
        XCTAssertEqual(m.classes, ["a", "b", "c", "d"])
        XCTAssertEqual(m.counts, [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [1, 0, 0, 0]])
        XCTAssertEqual(m.total, 7)
        XCTAssertEqual(m.maximum, 2)
    }
}

final class PrimitivesTests: XCTestCase {
    func testEscapingCoversMarkupAndQuotes() {
        XCTAssertEqual(escape(#"<script>a&"b"'c'</script>"#), "&lt;script&gt;a&amp;&quot;b&quot;&#39;c&#39;&lt;/script&gt;")
        XCTAssertEqual(escape("tab\tbell\u{07}"), "tab\tbell\u{FFFD}")
    }

    func testNumbersAreShortAndStable() {
        XCTAssertEqual(formatNumber(0.95), "0.95")
        XCTAssertEqual(formatNumber(0.123456), "0.1235")
        XCTAssertEqual(formatNumber(30), "30")
        XCTAssertEqual(formatNumber(1e-4), "1.000e-04")
        XCTAssertEqual(formatNumber(.nan), "nan")
        XCTAssertEqual(formatNumber(-.infinity), "-inf")
    }

    func testNiceTicks() {
        XCTAssertEqual(Scale.niceStep(0.23), 0.5)
        XCTAssertEqual(Scale.niceStep(0.1), 0.1)
        XCTAssertEqual(Scale.niceStep(17), 20)
        let s = Scale.linear([0.62, 0.93], range: (0, 100))
        XCTAssertEqual(s.domain.lower, 0.6, accuracy: 1e-12)
        XCTAssertEqual(s.domain.upper, 1.0, accuracy: 1e-12)
        XCTAssertEqual(s.ticks().map(\.label), ["0.6", "0.7", "0.8", "0.9", "1.0"])
        let fixed = Scale.linear([], fixed: (0, 1), range: (0, 100))
        XCTAssertEqual(fixed.ticks().map(\.label), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        XCTAssertEqual(fixed(0.25), 25)
    }

    func testLogScaleForValuesSpanningDecades() {
        XCTAssertTrue(Scale.spansDecades([1e-4, 1e-3, 1e-2]))
        XCTAssertFalse(Scale.spansDecades([0.1, 0.3]))
        XCTAssertFalse(Scale.spansDecades([0, 1, 1000]), "zero cannot be on a log axis")
        let s = Scale.log([2e-4, 3e-2], range: (0, 300))
        XCTAssertEqual(s.domain.lower, 1e-4, accuracy: 1e-18)
        XCTAssertEqual(s.domain.upper, 0.1, accuracy: 1e-15)
        XCTAssertEqual(s(1e-3), 100, accuracy: 1e-9)
        XCTAssertEqual(s.ticks().map(\.label), ["1e-4", "0.001", "0.01", "0.1"])
    }

    func testCSVQuotesLineBreaksAndWidth() throws {
        let t = try CSVTable(parsing: "a,\"b,\"\"c\"\"\"\r\n1,\"x\ny\"\r\n,2\n", source: "t.csv")
        XCTAssertEqual(t.header, ["a", "b,\"c\""])
        XCTAssertEqual(t.rows, [["1", "x\ny"], ["", "2"]])
        XCTAssertThrowsError(try CSVTable(parsing: "a,b\n1\n", source: "t.csv")) { error in
            XCTAssertEqual(String(describing: error), "t.csv: record 2 has 1 cells; the header has 2")
        }
        XCTAssertThrowsError(try CSVTable(parsing: "a\n\"open\n", source: "t.csv"))
    }

    func testSlugs() {
        XCTAssertEqual(slug("trainer.optimizer.lr"), "trainer-optimizer-lr")
        XCTAssertEqual(slug("<>"), "x")
        XCTAssertEqual(slug("Body Mass (g)"), "body-mass-g")
    }
}
