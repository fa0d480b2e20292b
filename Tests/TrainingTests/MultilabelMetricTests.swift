import Foundation
import XCTest
@testable import Training

/// Multi-label metrics against scikit-learn's values on the cases
/// `scripts/fixtures/make_multilabel_fixtures.py` wrote to Tests/Fixtures/multilabel/metrics.json.
final class MultilabelMetricTests: XCTestCase {
    struct Case: Decodable {
        var labels: Int
        var indicators: [Float]
        var probabilities: [Float]
        var expected: [String: Double]
    }

    func cases() throws -> [Case] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/multilabel/metrics.json")
        return try JSONDecoder().decode([Case].self, from: Data(contentsOf: url))
    }

    func testEveryMetricMatchesScikitLearn() throws {
        let set = MetricSet.standard(for: .multilabel)
        for (i, c) in try cases().enumerated() {
            let values = try set.evaluate(indicators: c.indicators, probabilities: c.probabilities, labelCount: c.labels, keyPrefix: "val.")
            XCTAssertEqual(Set(values.keys), Set(c.expected.keys.map { "val." + $0 }), "case \(i)")
            for (name, expected) in c.expected {
                XCTAssertEqual(values["val." + name] ?? .nan, expected, accuracy: 1e-12, "case \(i): \(name)")
                let one = try XCTUnwrap(Metric(rawValue: name))
                XCTAssertEqual(try one.compute(multilabel: c.indicators, probabilities: c.probabilities, labelCount: c.labels),
                               expected, accuracy: 1e-12)
            }
        }
    }

    func testDefaultsAndDirections() throws {
        XCTAssertEqual(Metric.defaultMetric(for: .multilabel), .f1Micro)
        XCTAssertFalse(Metric.hammingLoss.higherIsBetter)
        XCTAssertTrue(Metric.subsetAccuracy.higherIsBetter)
        XCTAssertThrowsError(try MetricSet(problem: .binary, metrics: [.f1Micro]))
        XCTAssertThrowsError(try MetricSet(problem: .multilabel, metrics: [.accuracy]))
        XCTAssertNoThrow(try MetricSet(problem: .multilabel, metrics: [.rocAUC, .f1Macro]))
    }

    func testUndefinedAndInvalidInputs() throws {
        // A label that is never present: ROC AUC is undefined (sklearn raises), F1 still defined.
        let y: [Float] = [1, 0, 0, 0, 1, 0]
        let p: [Float] = [0.9, 0.2, 0.1, 0.4, 0.6, 0.3]
        XCTAssertTrue(try Metric.rocAUC.compute(multilabel: y, probabilities: p, labelCount: 2).isNaN)
        // label 0: tp 2 → F1 1; label 1: nothing true, nothing predicted → 0 (zero_division=0).
        XCTAssertEqual(try Metric.f1Macro.compute(multilabel: y, probabilities: p, labelCount: 2), 0.5)
        XCTAssertEqual(try Metric.subsetAccuracy.compute(multilabel: y, probabilities: p, labelCount: 2), 1)
        XCTAssertThrowsError(try Metric.f1Micro.compute(multilabel: [0.5, 1], probabilities: [0.1, 0.2], labelCount: 2))
        XCTAssertThrowsError(try Metric.f1Micro.compute(multilabel: [1, 0, 1], probabilities: [0.1, 0.2, 0.3], labelCount: 2))
        XCTAssertThrowsError(try Metric.accuracy.compute(multilabel: y, probabilities: p, labelCount: 2))
        XCTAssertThrowsError(try Metric.f1Micro.compute(classification: [0, 1], probabilities: [[0.3, 0.7], [0.6, 0.4]]))
    }
}
