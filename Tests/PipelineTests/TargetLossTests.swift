import Foundation
import Tables
import TensorEngine
import XCTest
@testable import Pipeline

/// The summed loss of several tasks: against PyTorch (Tests/Fixtures/multilabel/loss.json from
/// `scripts/fixtures/make_multilabel_fixtures.py`) and its gradient against finite differences.
final class TargetLossTests: XCTestCase {
    struct Case: Decodable {
        var logits: [Double]
        var targets: [Double]
        var loss: Double
        var gradient: [Double]
    }

    /// A 3-class task, a regression task and a 2-label task: 6 logits, 4 target floats per row.
    let layout = TargetLayout(tasks: [
        TargetTask(name: "kind", problem: .multiclass,
                   label: LabelProcessor(column: "kind", problem: .multiclass, classes: ["a", "b", "c"], mean: 0, standardDeviation: 1),
                   multilabel: nil),
        TargetTask(name: "size", problem: .regression,
                   label: LabelProcessor(column: "size", problem: .regression, classes: [], mean: 0, standardDeviation: 1),
                   multilabel: nil),
        TargetTask(name: "tags", problem: .multilabel, label: nil,
                   multilabel: MultiLabelProcessor(source: .labelSets(column: "tags", separator: ";"), labels: ["x", "y"])),
    ], separator: ";")

    func fixture() throws -> Case {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/multilabel/loss.json")
        return try JSONDecoder().decode(Case.self, from: Data(contentsOf: url))
    }

    func testLossAndGradientMatchPyTorch() throws {
        let c = try fixture()
        XCTAssertEqual(layout.outputCount, 6)
        XCTAssertEqual(layout.targetWidth, 4)
        let logits = Tensor.parameter(try Tensor(c.logits.map { Float($0) }, shape: [5, 6]))
        let loss = try layout.loss(logits, targets: c.targets.map { Float($0) })
        XCTAssertEqual(Double(try loss.item()), c.loss, accuracy: 1e-5)
        try loss.backward()
        let grad = try XCTUnwrap(logits.grad).toArray()
        for (g, e) in zip(grad, c.gradient) { XCTAssertEqual(Double(g), e, accuracy: 1e-6) }
    }

    func testLossWeightsScaleEachTask() throws {
        let c = try fixture()
        let logits = try Tensor(c.logits.map { Float($0) }, shape: [5, 6])
        let targets = c.targets.map { Float($0) }
        func loss(_ weights: [String: Double]) throws -> Float { try layout.weighted(weights).loss(logits, targets: targets).item() }
        let parts = try ["kind", "size", "tags"].map { name in try loss([name: 2]) - loss([:]) }
        XCTAssertEqual(parts.reduce(0, +), try loss([:]), accuracy: 1e-5, "doubling each task adds that task's loss once")
        XCTAssertEqual(try loss(["kind": 0.5, "size": 0.5, "tags": 0.5]), 0.5 * (try loss([:])), accuracy: 1e-5)
    }

    func testGradientMatchesFiniteDifferences() throws {
        let c = try fixture()
        let base = c.logits.map { Float($0) }
        let targets = c.targets.map { Float($0) }
        let logits = Tensor.parameter(try Tensor(base, shape: [5, 6]))
        try layout.loss(logits, targets: targets).backward()
        let grad = try XCTUnwrap(logits.grad).toArray()
        let eps: Float = 1e-2
        for i in base.indices {
            var up = base, down = base
            up[i] += eps
            down[i] -= eps
            let lUp = try layout.loss(try Tensor(up, shape: [5, 6]), targets: targets).item()
            let lDown = try layout.loss(try Tensor(down, shape: [5, 6]), targets: targets).item()
            XCTAssertEqual(grad[i], (lUp - lDown) / (2 * eps), accuracy: 2e-3, "logit \(i)")
        }
    }

    func testOutputsAndPredictionCells() throws {
        let logits = try Tensor([0, 1, 0, 2.5, 3, -3], shape: [1, 6])
        let out = try layout.outputs(logits)
        XCTAssertEqual(out[0] + out[1] + out[2], 1, accuracy: 1e-6)
        XCTAssertEqual(out[3], 2.5)
        XCTAssertEqual(out[4], 1 / (1 + Foundation.exp(-3)), accuracy: 1e-6)
        XCTAssertEqual(layout.predictionHeader, ["kind_predicted", "kind_proba_a", "kind_proba_b", "kind_proba_c",
                                                 "size_predicted", "tags_predicted", "tags_proba_x", "tags_proba_y"])
        let cells = layout.predictionCells(out[...])
        XCTAssertEqual(cells[0], "b")
        XCTAssertEqual(cells[4], "2.5")
        XCTAssertEqual(cells[5], "x")
        XCTAssertEqual(layout.monitorKey(.accuracy), "kind.accuracy")
    }
}
