import Foundation
import XCTest
@testable import Pipeline

/// Each case: a clear message that says where and how to fix, an error (non-zero exit in the
/// CLI), and nothing written to the run folder.
final class BadInputTests: XCTestCase {
    /// Trains expecting failure; returns the message and checks the run folder was not created.
    func failure(_ p: Project, overrides: [String] = [], file: StaticString = #filePath, line: UInt = #line) -> String {
        let message = errorText { try p.train(overrides: overrides) }
        XCTAssertNotNil(message, "expected an error", file: file, line: line)
        XCTAssertFalse(p.exists("runs/run"), "a failed run must leave no run folder", file: file, line: line)
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: p.url("runs").path)) ?? []
        XCTAssertEqual(leftovers, [], "no staging folders left behind", file: file, line: line)
        return message ?? ""
    }

    func assertContains(_ text: String, _ parts: String..., file: StaticString = #filePath, line: UInt = #line) {
        for part in parts { XCTAssertTrue(text.contains(part), "'\(part)' not in: \(text)", file: file, line: line) }
    }

    func testMissingDataFile() throws {
        let p = try Project()
        try p.write("pipeline.yaml", pipelineYAML(test: false))
        assertContains(failure(p), "pipeline.yaml:5:", "train data file 'train.csv' does not exist", "relative to the file")
    }

    func testLabelColumnAbsentListsTheColumns() throws {
        let p = try Project()
        try p.write("train.csv", syntheticCSV(rows: 30).replacingOccurrences(of: ",target", with: ",tarqet"))
        try p.write("pipeline.yaml", pipelineYAML(test: false))
        assertContains(failure(p), "target", "tarqet", "x1", "color")
    }

    func testEmptyFile() throws {
        let p = try Project()
        try p.write("train.csv", "")
        try p.write("pipeline.yaml", pipelineYAML(test: false))
        assertContains(failure(p), "train.csv", "empty")
    }

    func testRaggedRowGivesTheLine() throws {
        let p = try Project()
        var lines = syntheticCSV(rows: 30).split(separator: "\n").map(String.init)
        lines[7] += ",extra"
        try p.write("train.csv", lines.joined(separator: "\n") + "\n")
        try p.write("pipeline.yaml", pipelineYAML(test: false))
        assertContains(failure(p), "train.csv:8", "6 fields", "header has 5")
    }

    func testLabelWithOneClass() throws {
        let p = try Project()
        try p.write("train.csv", "x1,color,target\n1,red,a\n2,blue,a\n3,red,a\n")
        try p.write("pipeline.yaml", pipelineYAML(test: false))
        assertContains(failure(p), "pipeline.yaml:6:", "target", "single value", "'a'", "at least two")
    }

    func testTestFileWithDifferentColumns() throws {
        let p = try Project()
        try p.write("train.csv", syntheticCSV(rows: 60))
        try p.write("test.csv", syntheticCSV(rows: 20).replacingOccurrences(of: "color", with: "colour"))
        try p.write("pipeline.yaml", pipelineYAML())
        assertContains(failure(p), "pipeline.yaml:6:", "test file", "missing 'color'", "'colour'")
    }

    func testNumericOverrideOnWordsNamesTheFirstBadRow() throws {
        let p = try Project()
        try p.write("train.csv", syntheticCSV(rows: 40))
        try p.write("pipeline.yaml", pipelineYAML(test: false))
        let message = failure(p, overrides: ["data.columns={color: numeric}"])
        assertContains(message, "train.csv:2", "'color'", "not a number", "categorical")
    }

    func testUnknownPipelineKeySuggestsTheRightOne() throws {
        let p = try Project()
        try p.write("train.csv", syntheticCSV(rows: 30))
        try p.write("pipeline.yaml", pipelineYAML(test: false).replacingOccurrences(of: "  epochs: 8", with: "  epoch: 8"))
        assertContains(failure(p), "pipeline.yaml:11:3", "epoch", "did you mean 'epochs'")
    }

    func testExtendsCycle() throws {
        let p = try Project()
        try p.write("train.csv", syntheticCSV(rows: 30))
        try p.write("a.yaml", "extends: b.yaml\nversion: 1\ndata: {train: train.csv, label: target}\n")
        try p.write("b.yaml", "extends: a.yaml\nversion: 1\n")
        let message = errorText { try p.train("a.yaml") } ?? ""
        assertContains(message, "a.yaml", "b.yaml", "cycle")
        XCTAssertFalse(p.exists("runs/run"))
    }

    func testSetOnAMissingKeyNamesTheFlag() throws {
        let p = try Project()
        try p.write("train.csv", syntheticCSV(rows: 30))
        try p.write("pipeline.yaml", pipelineYAML(test: false))
        assertContains(failure(p, overrides: ["trainer.optimizer.lrr=0.1"]), "--set trainer.optimizer.lrr=0.1", "did you mean 'lr'")
    }

    func testRunFolderHoldingARunIsRefusedUnlessOverwrite() throws {
        let p = try Project()
        try p.write("train.csv", syntheticCSV(rows: 60))
        try p.write("pipeline.yaml", pipelineYAML(test: false))
        try p.train()
        let before = try Data(contentsOf: p.url("runs/run/lock.json"))
        let message = errorText { try p.train(overrides: ["seed=4"]) } ?? ""
        assertContains(message, "already holds a run", "--overwrite")
        XCTAssertEqual(try Data(contentsOf: p.url("runs/run/lock.json")), before, "the existing run is untouched")

        try p.train(overrides: ["seed=4"], overwrite: true)
        XCTAssertNotEqual(try Data(contentsOf: p.url("runs/run/lock.json")), before)

        // A folder with the user's own files is never replaced, even with --overwrite.
        try p.write("runs/mine/notes.txt", "mine")
        let refused = errorText { try p.train(run: "mine", overwrite: true) } ?? ""
        assertContains(refused, "does not hold a run")
        XCTAssertEqual(try String(contentsOf: p.url("runs/mine/notes.txt"), encoding: .utf8), "mine")
    }

    func testMetricTheProblemCannotProduce() throws {
        let p = try Project()
        try p.write("train.csv", syntheticCSV(rows: 60))
        try p.write("pipeline.yaml", pipelineYAML(test: false, extra: "metric: rmse\n"))
        assertContains(failure(p), "pipeline.yaml:", "rmse", "multiclass")
    }

    func testTextColumnIsNamedWithTheFix() throws {
        let p = try Project()
        var lines = ["review,x1,target"]
        for i in 0..<40 { lines.append("\"this is review number \(i) with words\",\(i),\(i % 2 == 0 ? "a" : "b")") }
        try p.write("train.csv", lines.joined(separator: "\n") + "\n")
        try p.write("pipeline.yaml", pipelineYAML(test: false))
        assertContains(failure(p), "review", "text", "ignore")
    }
}
