import Foundation
import XCTest
import Checkpoints
import Layers
import TensorEngine

/// One BERT-style post-norm encoder layer against PyTorch, through
/// Tests/Fixtures/ops/encoder_layer.safetensors (scripts/fixtures/make_op_fixtures.py): hidden 32,
/// 4 heads, intermediate 64, exact GELU, LayerNorm eps 1e-12, batch 2, sequence 5, the second
/// sequence padded after 3 tokens (additive mask [B, T] of 0 / float32-min), dropout off.
///
/// Keys: `weights.<param>` (PyTorch state dict, the same names as `TransformerEncoderLayer`),
/// `x`, `mask`, `out`, `upstream`, `grad_x`, `grads.<param>` (from backward of Σ out ⊙ upstream).
final class EncoderLayerParityTests: XCTestCase {
    static let config = TransformerLayerConfig(hidden: 32, heads: 4, intermediate: 64, activation: .gelu,
                                               hiddenDropout: 0, attentionDropout: 0, layerNormEps: 1e-12)

    func fixture() throws -> SafetensorsFile {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        for _ in 0..<8 {
            let candidate = dir.appendingPathComponent("Tests/Fixtures/ops/encoder_layer.safetensors")
            if FileManager.default.fileExists(atPath: candidate.path) { return try SafetensorsFile(url: candidate) }
            let sibling = dir.appendingPathComponent("Fixtures/ops/encoder_layer.safetensors")
            if dir.lastPathComponent == "Tests", FileManager.default.fileExists(atPath: sibling.path) {
                return try SafetensorsFile(url: sibling)
            }
            dir = dir.deletingLastPathComponent()
        }
        throw XCTSkip("Tests/Fixtures/ops/encoder_layer.safetensors not found above \(#filePath)")
    }

    /// The layer with the fixture's weights loaded through `Module.load`.
    func loadedLayer(_ file: SafetensorsFile, config: TransformerLayerConfig = config) throws -> TransformerEncoderLayer {
        let layer = try TransformerEncoderLayer(config, rng: RandomSource(seed: 1))
        var weights: [String: Tensor] = [:]
        for name in file.tensorNames where name.hasPrefix("weights.") {
            weights[String(name.dropFirst("weights.".count))] = try file.tensor(named: name)
        }
        try layer.load(weights)   // strict: every parameter present, no extra keys
        layer.eval()
        return layer
    }

    /// `Module.load` copies every value exactly (small tensors, such as biases, included).
    func testLoadCopiesEveryParameterExactly() throws {
        let file = try fixture()
        let layer = try loadedLayer(file)
        for (key, p) in layer.namedParameters() {
            let expected = try file.tensor(named: "weights.\(key)").toArray().map(\.bitPattern)
            XCTAssertEqual(p.toArray().map(\.bitPattern), expected, "\(key) after Module.load")
        }
    }

    func testForwardAndAllGradientsMatchPyTorch() throws {
        let file = try fixture()
        let layer = try loadedLayer(file)
        let x = Tensor.parameter(try file.tensor(named: "x"))
        let out = try layer(x, mask: try file.tensor(named: "mask"))
        assertNear(out, try file.tensor(named: "out"), tol: 1e-4, "encoder layer output")
        try out.backward(try file.tensor(named: "upstream"))
        assertNear(x.grad, try file.tensor(named: "grad_x"), tol: 1e-4, "grad of the input")

        let params = layer.namedParameters()
        XCTAssertEqual(params.count, 16)
        XCTAssertEqual(Set(params.map(\.key)),
                       Set(file.tensorNames.filter { $0.hasPrefix("grads.") }.map { String($0.dropFirst("grads.".count)) }),
                       "every PyTorch parameter has a runpipe parameter of the same name")
        for (key, p) in params {
            assertNear(p.grad, try file.tensor(named: "grads.\(key)"), tol: 1e-4, "grad of \(key)")
        }
    }

    /// The input as a non-contiguous view ([T, B, H] storage read as [B, T, H]).
    func testNonContiguousInputGivesTheSameResult() throws {
        let file = try fixture()
        let layer = try loadedLayer(file)
        let stored = try file.tensor(named: "x")
        let leaf = Tensor.parameter(try stored.transposed(0, 1).clone())   // [T, B, H]
        let x = try leaf.transposed(0, 1)
        XCTAssertFalse(x.isContiguous)
        let out = try layer(x, mask: try file.tensor(named: "mask"))
        assertNear(out, try file.tensor(named: "out"), tol: 1e-4, "output from a view")
        try out.backward(try file.tensor(named: "upstream"))
        assertNear(try XCTUnwrap(leaf.grad).transposed(0, 1), try file.tensor(named: "grad_x"), tol: 1e-4, "grad through the view")
    }

    /// Dropout configured but eval mode: identical to the dropout-free reference.
    func testEvalModeDisablesDropout() throws {
        let file = try fixture()
        var config = Self.config
        config.hiddenDropout = 0.3
        config.attentionDropout = 0.3
        let layer = try loadedLayer(file, config: config)
        let out = try withNoGrad { try layer(try file.tensor(named: "x"), mask: try file.tensor(named: "mask")) }
        assertNear(out, try file.tensor(named: "out"), tol: 1e-4, "eval-mode output with dropout configured")
    }

    /// Hugging Face's extended [B, 1, 1, T] mask gives the same output.
    func testExtendedMaskLayout() throws {
        let file = try fixture()
        let layer = try loadedLayer(file)
        let mask = try file.tensor(named: "mask")
        let out = try withNoGrad {
            try layer(try file.tensor(named: "x"), mask: try mask.reshaped([mask.shape[0], 1, 1, mask.shape[1]]))
        }
        assertNear(out, try file.tensor(named: "out"), tol: 1e-4, "output with a [B, 1, 1, T] mask")
    }

    // MARK: - Helpers

    /// |actual − expected| ≤ tol + tol·|expected| element-wise; reports the worst element.
    func assertNear(_ actual: Tensor?, _ expected: Tensor, tol: Float, _ what: String,
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
            if !(err <= tol + tol * Swift.abs(e[i])) {
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
