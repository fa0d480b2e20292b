import Testing
import Training
import XCTest
@testable import Tables

@Test("problem type inference", arguments: [
    ((0..<20).map { $0 % 2 == 0 ? "yes" : "no" }, ProblemType.binary, "two-classes", 2),
    ((0..<20).map { ["cat", "dog", "eel"][$0 % 3] }, .multiclass, "non-numeric-classes", 3),
    ((0..<20).map { $0 % 2 == 0 ? "0" : "1" }, .binary, "two-classes", 2),
    ((0..<40).map { String($0 % 4) }, .multiclass, "few-integer-values", 4),
    ((0..<40).map { String(Double($0 % 4) + 0.5) }, .regression, "continuous", nil),
    ((0..<100).map { String($0 % 25) }, .regression, "continuous", nil),
    ((0..<20).map { String($0 % 3) }, .regression, "continuous", nil),
] as [([String], ProblemType, String, Int?)])
func infersProblem(_ labels: [String], _ problem: ProblemType, _ rule: String, _ classes: Int?) throws {
    let inference = try ProblemInference.infer(table: singleColumn("y", labels + [nil]), label: "y")
    #expect(inference.problem == problem)
    #expect(inference.rule == rule)
    #expect(inference.classCount == classes)
}

final class ProblemInferenceTests: XCTestCase {
    func testAbsentLabelSuggestsNearMiss() {
        let table = Table(source: "t.csv", columnNames: ["Target", "x"], columns: [["a", "b"], ["1", "2"]])
        assertTableError(.columnNotFound(column: "target", role: "label", available: ["Target", "x"], suggestion: "Target"),
                         ["label column 'target'", "did you mean 'Target'", "Target, x"]) {
            try ProblemInference.infer(table: table, label: "target")
        }
        assertTableError(.columnNotFound(column: "price", role: "label", available: ["Target", "x"], suggestion: nil)) {
            try ProblemInference.infer(table: table, label: "price")
        }
    }

    func testSingleClassAndAllMissing() {
        assertTableError(.singleClass(column: "y", path: "t.csv", value: "only"), ["'only'"]) {
            try ProblemInference.infer(table: singleColumn("y", ["only", nil, "only"]), label: "y")
        }
        assertTableError(.labelAllMissing(column: "y", path: "t.csv")) {
            try ProblemInference.infer(table: singleColumn("y", [nil, nil]), label: "y")
        }
    }

    func testForcedProblemTypesAreValidated() throws {
        let words = singleColumn("y", ["1.5", "2", "n/a?", "3"])
        assertTableError(.problemTypeMismatch(column: "y", problem: "regression",
                                              detail: "t.csv:4 holds 'n/a?', which is not a number; use binary or multiclass, or fix the value"),
                         ["t.csv:4", "'n/a?'"]) {
            try ProblemInference.infer(table: words, label: "y", forced: .regression)
        }
        let three = singleColumn("y", ["a", "b", "c", "a"])
        assertTableError(.problemTypeMismatch(column: "y", problem: "binary",
                                              detail: "it has 3 classes ('a', 'b', 'c') and binary needs exactly 2; use multiclass"),
                         ["'a', 'b', 'c'"]) {
            try ProblemInference.infer(table: three, label: "y", forced: .binary)
        }
        let forced = try ProblemInference.infer(table: three, label: "y", forced: .multiclass)
        XCTAssertEqual(forced.problem, .multiclass)
        XCTAssertEqual(forced.rule, "forced")
        XCTAssertEqual(forced.classCount, 3)
        let regression = try ProblemInference.infer(table: singleColumn("y", ["1", "2", "1"]), label: "y", forced: .regression)
        XCTAssertEqual(regression.problem, .regression)
        XCTAssertNil(regression.classCount)
    }
}
