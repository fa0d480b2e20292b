import Foundation
import XCTest
import Checkpoints
import Layers
import TensorEngine
@testable import Models

/// The tabular backbones and task heads against PyTorch, through Tests/Fixtures/tabular/*.safetensors
/// (scripts/fixtures/make_tabular_fixtures.py): 5 numeric + 3 categorical columns (cardinalities
/// 3, 6, 11), batch 7, reference computed in float64. Weights load strictly under the PyTorch
/// state-dict names; features, logits, loss, the input gradient and every parameter gradient of
/// the head's loss are compared.
final class TabularParityTests: XCTestCase {
    static let schema = TabularSchema(numericCount: 5, cardinalities: [3, 6, 11])
    /// |actual − expected| ≤ atol + rtol·|expected|.
    static let forwardTolerance: (atol: Float, rtol: Float) = (1e-5, 1e-5)
    static let gradientTolerance: (atol: Float, rtol: Float) = (1e-5, 1e-5)

    func testMLPWithLayerNormMatchesPyTorch() throws {
        let config = TabularMLPConfig(hidden: [16, 8], dropout: 0, normalization: .layerNorm)
        let model = try TabularMLP(config, schema: Self.schema, rng: RandomSource(seed: 1))
        let head = try TaskHead(inputDim: model.outputDim, kind: .classification(classes: 3), rng: RandomSource(seed: 2))
        try runCase("mlp_layer_norm", model, head, trainMode: false)
    }

    /// Batch norm in training mode: batch statistics in the forward, running statistics updated
    /// as `BatchNorm1d` does (unbiased variance, momentum 0.1).
    func testMLPWithBatchNormInTrainingModeMatchesPyTorch() throws {
        let config = TabularMLPConfig(hidden: [12], dropout: 0, normalization: .batchNorm)
        let model = try TabularMLP(config, schema: Self.schema, rng: RandomSource(seed: 1))
        let head = try TaskHead(inputDim: model.outputDim, kind: .regression, rng: RandomSource(seed: 2))
        try runCase("mlp_batch_norm", model, head, trainMode: true)
    }

    func testFTTransformerMatchesPyTorch() throws {
        let config = FTTransformerConfig(dToken: 16, layers: 2, heads: 4, attentionDropout: 0, ffnDropout: 0, residualDropout: 0)
        XCTAssertEqual(config.ffnHidden, 21)
        let model = try FTTransformer(config, schema: Self.schema, rng: RandomSource(seed: 1))
        let head = try TaskHead(inputDim: model.outputDim, kind: .classification(classes: 2), rng: RandomSource(seed: 2))
        try runCase("ft_transformer", model, head, trainMode: false)
    }

    /// Dropout configured but eval mode: the dropout-free reference output.
    func testFTTransformerEvalModeDisablesDropout() throws {
        let file = try fixture("ft_transformer")
        let model = try FTTransformer(FTTransformerConfig(dToken: 16, layers: 2, heads: 4), schema: Self.schema, rng: RandomSource(seed: 1))
        try model.load(try weights(file, prefix: "backbone."))
        model.eval()
        let out = try withNoGrad {
            try model.forward(numeric: try file.tensor(named: "numeric"), categorical: try ints(file, "categorical"))
        }
        assertNear(out, try file.tensor(named: "features"), Self.forwardTolerance, "eval-mode features with dropout configured")
    }

    // MARK: - Helpers

    func runCase(_ name: String, _ model: some TabularBackbone, _ head: TaskHead, trainMode: Bool,
                 file: StaticString = #filePath, line: UInt = #line) throws {
        let fx = try fixture(name)
        try model.load(try weights(fx, prefix: "backbone."))   // strict: no missing or extra keys
        try head.load(try weights(fx, prefix: "head."))
        model.train(trainMode)
        head.eval()

        let numeric = Tensor.parameter(try fx.tensor(named: "numeric"))
        // Int32 indices, the layout column processors hand over.
        let categorical = try ints(fx, "categorical").map { Int32($0) }
        let features = try model.forward(numeric: numeric, categorical: categorical)
        let logits = try head(features)
        let loss: Tensor
        if head.kind == .regression {
            loss = try head.loss(logits, values: try fx.tensor(named: "targets").toArray())
        } else {
            loss = try head.loss(logits, classes: try ints(fx, "targets"))
            assertNear(try head.probabilities(logits), try fx.tensor(named: "probabilities"), Self.forwardTolerance,
                       "\(name) probabilities", file: file, line: line)
        }
        assertNear(features, try fx.tensor(named: "features"), Self.forwardTolerance, "\(name) features", file: file, line: line)
        assertNear(logits, try fx.tensor(named: "logits"), Self.forwardTolerance, "\(name) logits", file: file, line: line)
        assertNear(loss, try fx.tensor(named: "loss"), Self.forwardTolerance, "\(name) loss", file: file, line: line)

        try loss.backward()
        assertNear(numeric.grad, try fx.tensor(named: "grad_numeric"), Self.gradientTolerance, "\(name) grad of numeric", file: file, line: line)
        var compared: Set<String> = []
        for (prefix, module) in [("backbone.", model as Module), ("head.", head)] {
            for (key, p) in module.namedParameters() {
                let k = "grads.\(prefix)\(key)"
                assertNear(p.grad, try fx.tensor(named: k), Self.gradientTolerance, "\(name) grad of \(prefix)\(key)", file: file, line: line)
                compared.insert(k)
            }
            if trainMode {
                for (key, b) in module.namedBuffers() {
                    assertNear(b, try fx.tensor(named: "after.\(prefix)\(key)"), Self.forwardTolerance,
                               "\(name) \(prefix)\(key) after the step", file: file, line: line)
                }
            }
        }
        XCTAssertEqual(compared, Set(fx.tensorNames.filter { $0.hasPrefix("grads.") }),
                       "every PyTorch parameter has a runpipe parameter of the same name", file: file, line: line)
    }

    func fixture(_ name: String) throws -> SafetensorsFile {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        for _ in 0..<8 {
            let candidate = dir.appendingPathComponent("Tests/Fixtures/tabular/\(name).safetensors")
            if FileManager.default.fileExists(atPath: candidate.path) { return try SafetensorsFile(url: candidate) }
            let sibling = dir.appendingPathComponent("Fixtures/tabular/\(name).safetensors")
            if dir.lastPathComponent == "Tests", FileManager.default.fileExists(atPath: sibling.path) {
                return try SafetensorsFile(url: sibling)
            }
            dir = dir.deletingLastPathComponent()
        }
        throw XCTSkip("Tests/Fixtures/tabular/\(name).safetensors not found above \(#filePath)")
    }

    func weights(_ file: SafetensorsFile, prefix: String) throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for name in file.tensorNames where name.hasPrefix(prefix) {
            out[String(name.dropFirst(prefix.count))] = try file.tensor(named: name)
        }
        return out
    }

    func ints(_ file: SafetensorsFile, _ name: String) throws -> [Int] {
        try file.tensor(named: name).toArray().map { Int($0) }
    }

    func assertNear(_ actual: Tensor?, _ expected: Tensor, _ tol: (atol: Float, rtol: Float), _ what: String,
                    file: StaticString = #filePath, line: UInt = #line) {
        guard let actual else { XCTFail("\(what): missing", file: file, line: line); return }
        guard actual.shape == expected.shape else {
            XCTFail("\(what): shape \(shapeString(actual.shape)) vs expected \(shapeString(expected.shape))", file: file, line: line)
            return
        }
        let a = actual.toArray(), e = expected.toArray()
        var worst = -1, failures = 0
        var worstErr: Float = 0
        for i in 0..<a.count {
            let err = Swift.abs(a[i] - e[i])
            if !(err <= tol.atol + tol.rtol * Swift.abs(e[i])) {
                failures += 1
                if worst < 0 || err > worstErr || err.isNaN { worst = i; worstErr = err }
            }
        }
        if worst >= 0 {
            XCTFail("\(what): \(failures) of \(a.count) elements differ; worst at flat \(worst): \(a[worst]) vs \(e[worst])",
                    file: file, line: line)
        }
    }
}
