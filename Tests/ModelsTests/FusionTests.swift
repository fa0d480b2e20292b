import Foundation
import XCTest
import Checkpoints
import Layers
import TensorEngine
@testable import Models

/// The late-fusion modules against AutoGluon-Multimodal 1.6.3's own `MultimodalFusionMLP` and
/// `MultimodalFusionTransformer`, through Tests/Fixtures/fusion/*.safetensors
/// (scripts/fixtures/make_fusion_fixtures.py; batch 6, reference in float64, eval mode with the
/// configured dropouts): weights load strictly under runpipe's keys; fused and per-backbone
/// logits, AutoMM's summed loss, the gradients of the features and of every parameter are
/// compared. Then finite differences, modality dropout, determinism and bad settings.
final class FusionTests: XCTestCase {
    /// |actual − expected| ≤ atol + rtol·|expected|.
    static let tolerance: (atol: Float, rtol: Float) = (1e-5, 1e-5)

    // MARK: - Parity with AutoMM

    func testFusionMLPWithAuxiliaryHeadsMatchesAutoMM() throws {
        let config = FusionMLPConfig(adaptInFeatures: .max, hiddenSizes: [16, 8], activation: .leaky_relu, dropout: 0.1, auxLossWeight: 0.3)
        let module = try FusionMLP(config, inputWidths: [5, 12, 8], outputs: 3, rng: RandomSource(seed: 1))
        try runParityCase("mlp_aux", module)
    }

    func testFusionMLPRegressionMatchesAutoMM() throws {
        let config = FusionMLPConfig(adaptInFeatures: .min, hiddenSizes: [12], activation: .gelu, dropout: 0.1)
        let module = try FusionMLP(config, inputWidths: [6, 10], outputs: 1, rng: RandomSource(seed: 1))
        try runParityCase("mlp_plain", module)
    }

    func testFusionTransformerMatchesAutoMM() throws {
        let config = FusionTransformerConfig(blocks: 2, heads: 4, ffnHiddenSize: 24, auxLossWeight: 0.5)
        XCTAssertEqual(config.ffnActivation, .geglu)
        let module = try FusionTransformer(config, inputWidths: [5, 16, 9], outputs: 3, rng: RandomSource(seed: 1))
        XCTAssertEqual(module.tokenWidth, 16)
        try runParityCase("transformer", module)
    }

    /// One head: no output projection, as in AutoMM; `min` adaptation; ReGLU.
    func testSingleHeadFusionTransformerMatchesAutoMM() throws {
        let config = FusionTransformerConfig(adaptInFeatures: .min, blocks: 1, heads: 1, ffnHiddenSize: 10, ffnActivation: .reglu)
        let module = try FusionTransformer(config, inputWidths: [8, 6], outputs: 2, rng: RandomSource(seed: 1))
        XCTAssertFalse(module.namedParameters().contains { $0.key.contains("attention.output") })
        try runParityCase("transformer_1head", module)
    }

    /// `adapt_in_features: none`: no adapters, the MLP reads the raw concatenation. (AutoMM 1.6.3
    /// crashes in this setting, so there is no fixture.)
    func testUnadaptedFusionMLPConcatenatesRawFeatures() throws {
        let config = FusionMLPConfig(adaptInFeatures: .identity, hiddenSizes: [], dropout: 0)
        let module = try FusionMLP(config, inputWidths: [3, 4], outputs: 2, rng: RandomSource(seed: 3))
        XCTAssertEqual(module.namedParameters().map(\.key), ["head.weight", "head.bias"])
        let rng = RandomSource(seed: 4)
        let a = Tensor.normal([5, 3], rng: &rng.generator), b = Tensor.normal([5, 4], rng: &rng.generator)
        let out = try module.logits(features: [a, b])
        let expected = try linear(try concat([a, b], axis: 1), weight: module.head.weight, bias: module.head.bias)
        assertNear(out.fused, expected, Self.tolerance, "unadapted logits")
        XCTAssertTrue(out.perBackbone.isEmpty)
    }

    // MARK: - Finite differences

    /// d(loss)/d(features, parameters) against central differences, for both modules with
    /// auxiliary heads, in eval mode.
    func testGradientsMatchFiniteDifferences() throws {
        let mlp = try FusionMLP(FusionMLPConfig(hiddenSizes: [7], activation: .gelu, auxLossWeight: 0.4),
                                inputWidths: [3, 5], outputs: 3, rng: RandomSource(seed: 21))
        let transformer = try FusionTransformer(FusionTransformerConfig(blocks: 2, heads: 2, ffnHiddenSize: 6, auxLossWeight: 0.4),
                                                inputWidths: [4, 6], outputs: 3, rng: RandomSource(seed: 22))
        for module in [mlp as any FusionModule, transformer] {
            module.eval()
            try gradientCheck(module, reseed: nil)
        }
    }

    /// The learned replacement vectors receive gradients only through dropped rows; checked in
    /// training mode with the dropout draws replayed for every evaluation.
    func testLearnedReplacementGradientsMatchFiniteDifferences() throws {
        let rng = RandomSource(seed: 31)
        let config = FusionMLPConfig(hiddenSizes: [6], activation: .gelu, dropout: 0,
                                     modalityDropout: ModalityDropoutConfig(probability: 0.5, replacement: .learned))
        let module = try FusionMLP(config, inputWidths: [3, 4, 2], outputs: 2, rng: rng)
        for r in module.inputs.dropout.replacements {   // start away from zero
            let v = Tensor.normal(r.shape, rng: &rng.generator)
            withExtendedLifetime(v) { r.data.update(from: v.data, count: r.count) }
        }
        module.train()
        try gradientCheck(module, reseed: (rng, rng.generator))
        XCTAssertTrue(module.namedParameters().contains { $0.key == "missing.2" })
        XCTAssertTrue(module.inputs.dropout.replacements.contains { $0.grad?.toArray().contains { $0 != 0 } == true },
                      "some row was dropped and reached a replacement vector")
    }

    // MARK: - Modality dropout

    func testModalityKeepMaskStatisticsAndRule() {
        for (n, p) in [(3, Float(0.3)), (2, Float(0.5))] {
            var g = RandomGenerator(seed: 7)
            let rows = 20_000
            let keep = modalityKeepMask(rows: rows, backbones: n, probability: p, generator: &g)
            for r in 0..<rows {
                XCTAssertTrue((0..<n).contains { keep[r * n + $0] }, "row \(r) lost every modality")
            }
            // Dropped with probability p − pⁿ/n (all-dropped rows keep their largest draw).
            let expected = Double(p) - pow(Double(p), Double(n)) / Double(n)
            for i in 0..<n {
                let dropped = (0..<rows).filter { !keep[$0 * n + i] }.count
                XCTAssertEqual(Double(dropped) / Double(rows), expected, accuracy: 0.015, "backbone \(i) of \(n), p \(p)")
            }
        }
    }

    func testModalityDropoutIsSeededAndOffInEval() throws {
        let config = FusionMLPConfig(dropout: 0, modalityDropout: ModalityDropoutConfig(probability: 0.5))
        func build() throws -> FusionMLP { try FusionMLP(config, inputWidths: [4, 3, 5], outputs: 2, rng: RandomSource(seed: 9)) }
        let a = try build(), b = try build()
        let features = [Tensor.ones([64, 4]), Tensor.ones([64, 3]), Tensor.ones([64, 5])]

        // Training: the dropped inputs are zero rows, at least one backbone per row survives, and
        // two modules from the same seed drop the same rows.
        let droppedA = try a.inputs.dropout(features), droppedB = try b.inputs.dropout(features)
        var droppedCount = 0
        for r in 0..<64 {
            var kept = 0
            for (i, t) in droppedA.enumerated() {
                let row = Array(t.toArray()[(r * t.shape[1])..<((r + 1) * t.shape[1])])
                XCTAssertTrue(row.allSatisfy { $0 == 1 } || row.allSatisfy { $0 == 0 }, "backbone \(i) row \(r) partly dropped")
                if row[0] == 1 { kept += 1 } else { droppedCount += 1 }
            }
            XCTAssertGreaterThan(kept, 0, "row \(r) lost every modality")
        }
        XCTAssertGreaterThan(droppedCount, 0)
        for (x, y) in zip(droppedA, droppedB) { XCTAssertEqual(x.toArray(), y.toArray()) }
        XCTAssertEqual(try a.logits(features: features).fused.toArray(), try b.logits(features: features).fused.toArray())
        // The next step draws new rows.
        let next = try a.inputs.dropout(features)
        XCTAssertNotEqual(next.map { $0.toArray() }, droppedA.map { $0.toArray() })

        // Eval: nothing dropped, no draws.
        a.eval()
        let before = a.inputs.dropout.rng.generator.offset
        let evalOut = try a.inputs.dropout(features)
        for (x, f) in zip(evalOut, features) { XCTAssertEqual(x.toArray(), f.toArray()) }
        XCTAssertEqual(a.inputs.dropout.rng.generator.offset, before)
    }

    func testLearnedReplacementFillsDroppedRows() throws {
        let config = FusionMLPConfig(modalityDropout: ModalityDropoutConfig(probability: 0.6, replacement: .learned))
        let module = try FusionMLP(config, inputWidths: [2, 3], outputs: 2, rng: RandomSource(seed: 5))
        let replacements = module.inputs.dropout.replacements
        XCTAssertEqual(replacements.map(\.shape), [[2], [3]])
        XCTAssertEqual(replacements[1].toArray(), [0, 0, 0], "initialised to zeros")
        try module.load(["missing.0": try Tensor([7, 8], shape: [2]), "missing.1": try Tensor([4, 5, 6], shape: [3])], strict: false)
        let out = try module.inputs.dropout([Tensor.ones([40, 2]), Tensor.ones([40, 3])])
        var replaced = 0
        for (i, t) in out.enumerated() {
            let w = t.shape[1], values = t.toArray()
            for r in 0..<40 {
                let row = Array(values[(r * w)..<((r + 1) * w)])
                if row != [Float](repeating: 1, count: w) {
                    XCTAssertEqual(row, replacements[i].toArray(), "backbone \(i) row \(r)")
                    replaced += 1
                }
            }
        }
        XCTAssertGreaterThan(replaced, 0)
    }

    /// Eval mode ignores every configured dropout: repeated calls agree with each other and with
    /// a module that has no dropout at all.
    func testEvalModeIsDeterministic() throws {
        let noisy = FusionTransformerConfig(blocks: 2, heads: 2, ffnHiddenSize: 8, attentionDropout: 0.5, residualDropout: 0.3,
                                            ffnDropout: 0.4, modalityDropout: ModalityDropoutConfig(probability: 0.5))
        let quiet = FusionTransformerConfig(blocks: 2, heads: 2, ffnHiddenSize: 8, attentionDropout: 0, residualDropout: 0, ffnDropout: 0)
        let a = try FusionTransformer(noisy, inputWidths: [4, 6], outputs: 2, rng: RandomSource(seed: 1))
        let b = try FusionTransformer(quiet, inputWidths: [4, 6], outputs: 2, rng: RandomSource(seed: 2))
        try b.load(Dictionary(uniqueKeysWithValues: a.namedParameters().map { ($0.key, $0.tensor) }))
        let rng = RandomSource(seed: 3)
        let features = [Tensor.normal([5, 4], rng: &rng.generator), Tensor.normal([5, 6], rng: &rng.generator)]
        a.eval()
        let first = try a.logits(features: features).fused.toArray()
        XCTAssertEqual(try a.logits(features: features).fused.toArray(), first)
        XCTAssertEqual(try b.logits(features: features).fused.toArray(), first)
        a.train()
        XCTAssertNotEqual(try a.logits(features: features).fused.toArray(), first, "dropout is active in training")
    }

    // MARK: - Settings and errors

    func testSingleBackboneNeedsNoFusion() {
        XCTAssertFalse(FusionKind.needsFusion(backboneCount: 0))
        XCTAssertFalse(FusionKind.needsFusion(backboneCount: 1))
        XCTAssertTrue(FusionKind.needsFusion(backboneCount: 2))
    }

    func testConfigsDecodeWithAutoMMDefaults() throws {
        let mlp = try JSONDecoder().decode(FusionMLPConfig.self, from: Data("{}".utf8))
        XCTAssertEqual(mlp, FusionMLPConfig())
        XCTAssertEqual(mlp.hiddenSizes, [128])
        XCTAssertEqual(mlp.activation, .leaky_relu)
        XCTAssertEqual(mlp.dropout, 0.1)
        XCTAssertEqual(mlp.adaptInFeatures, .max)
        XCTAssertNil(mlp.auxLossWeight)
        let t = try JSONDecoder().decode(FusionTransformerConfig.self, from: Data("{}".utf8))
        XCTAssertEqual(t, FusionTransformerConfig())
        XCTAssertEqual([t.blocks, t.heads, t.ffnHiddenSize], [3, 8, 192])
        XCTAssertEqual([t.attentionDropout, t.residualDropout, t.ffnDropout], [0.2, 0, 0.1])
        XCTAssertEqual(t.ffnActivation, .geglu)
        XCTAssertEqual(t.headActivation, .relu)

        let json = #"{"adapt_in_features": "none", "hidden_sizes": [32, 16], "aux_loss_weight": 0.2, "modality_dropout": {"probability": 0.1, "replacement": "learned"}}"#
        let custom = try JSONDecoder().decode(FusionMLPConfig.self, from: Data(json.utf8))
        XCTAssertEqual(custom, FusionMLPConfig(adaptInFeatures: .identity, hiddenSizes: [32, 16], auxLossWeight: 0.2,
                                               modalityDropout: ModalityDropoutConfig(probability: 0.1, replacement: .learned)))
        let kind = FusionKind.transformer(FusionTransformerConfig(heads: 4, auxLossWeight: 1))
        XCTAssertEqual(try JSONDecoder().decode(FusionKind.self, from: try JSONEncoder().encode(kind)), kind)
        XCTAssertEqual(try JSONDecoder().decode(FusionKind.self, from: Data(#"{"kind": "mlp"}"#.utf8)), .mlp(FusionMLPConfig()))
        XCTAssertThrowsError(try JSONDecoder().decode(FusionKind.self, from: Data(#"{"kind": "attention"}"#.utf8))) {
            XCTAssertTrue("\($0)".contains("use `mlp` or `transformer`"), "\($0)")
        }
        let built = try kind.build(inputWidths: [8, 12], outputs: 3, rng: RandomSource(seed: 1))
        XCTAssertEqual(built.inputWidths, [8, 12])
        XCTAssertEqual(built.outputs, 3)
        XCTAssertEqual(try built.logits(features: [Tensor.ones([2, 8]), Tensor.ones([2, 12])]).perBackbone.map(\.shape), [[2, 3], [2, 3]])
    }

    /// `combinedLoss` is fused + w · Σ per-backbone, and just the fused loss without auxiliary heads.
    func testCombinedLossWeighsBackboneLosses() throws {
        let module = try FusionMLP(FusionMLPConfig(auxLossWeight: 0.25), inputWidths: [2, 3], outputs: 2, rng: RandomSource(seed: 1))
        let output: FusionLogits = (Tensor.full([1, 1], 2), [Tensor.full([1, 1], 4), Tensor.full([1, 1], 8)])
        let total = try module.combinedLoss(output) { try sum($0) }
        XCTAssertEqual(total.toArray(), [2 + 0.25 * 12])
        let plain = try FusionMLP(FusionMLPConfig(), inputWidths: [2, 3], outputs: 2, rng: RandomSource(seed: 1))
        XCTAssertEqual(try plain.combinedLoss((output.fused, [])) { try sum($0) }.toArray(), [2])
    }

    func testBadSettingsThrowTypedErrors() {
        func expectConfigError(_ field: String, _ body: () throws -> Void, line: UInt = #line) {
            XCTAssertThrowsError(try body(), line: line) { error in
                guard case FusionError.invalidConfig(_, let f, _) = error else {
                    return XCTFail("expected invalidConfig for \(field), got \(error)", line: line)
                }
                XCTAssertEqual(f, field, line: line)
            }
        }
        let rng = RandomSource(seed: 1)
        expectConfigError("attention_num_heads") {
            _ = try FusionTransformer(FusionTransformerConfig(heads: 5), inputWidths: [16, 4], outputs: 2, rng: rng)
        }
        XCTAssertThrowsError(try FusionTransformerConfig(heads: 5).validate(inputWidths: [16, 4])) { error in
            XCTAssertTrue("\(error)".contains("token width 16"), "\(error)")
            XCTAssertTrue("\(error)".contains("use one of 1, 2, 4, 8, 16"), "\(error)")
        }
        expectConfigError("attention_num_heads") { try FusionTransformerConfig(heads: 0).validate(inputWidths: [8, 8]) }
        expectConfigError("adapt_in_features") { try FusionTransformerConfig(adaptInFeatures: .identity).validate(inputWidths: [8, 4]) }
        expectConfigError("num_blocks") { try FusionTransformerConfig(blocks: -1).validate(inputWidths: [8, 8]) }
        expectConfigError("ffn_hidden_size") { try FusionTransformerConfig(ffnHiddenSize: 0).validate(inputWidths: [8, 8]) }
        expectConfigError("attention_dropout") { try FusionTransformerConfig(attentionDropout: 1).validate(inputWidths: [8, 8]) }
        expectConfigError("hidden_sizes[1]") { try FusionMLPConfig(hiddenSizes: [4, 0]).validate(inputWidths: [3, 3]) }
        expectConfigError("dropout") { try FusionMLPConfig(dropout: -0.1).validate(inputWidths: [3, 3]) }
        expectConfigError("aux_loss_weight") { try FusionMLPConfig(auxLossWeight: -1).validate(inputWidths: [3, 3]) }
        expectConfigError("modality_dropout.probability") {
            try FusionMLPConfig(modalityDropout: ModalityDropoutConfig(probability: 1)).validate(inputWidths: [3, 3])
        }
        expectConfigError("outputs") { _ = try FusionMLP(FusionMLPConfig(), inputWidths: [3, 3], outputs: 0, rng: rng) }
        XCTAssertThrowsError(try FusionMLPConfig().validate(inputWidths: [])) { XCTAssertTrue("\($0)".contains("at least one backbone")) }
        XCTAssertThrowsError(try FusionMLPConfig().validate(inputWidths: [3, 0])) { XCTAssertTrue("\($0)".contains("backbone 1")) }

        let module = try? FusionMLP(FusionMLPConfig(), inputWidths: [3, 4], outputs: 2, rng: rng)
        guard let module else { return XCTFail("valid config rejected") }
        for (features, fragment) in [([Tensor.ones([2, 3])], "received 1"),
                                     ([Tensor.ones([2, 3]), Tensor.ones([2, 5])], "backbone 1's features are [2, 5]"),
                                     ([Tensor.ones([2, 3]), Tensor.ones([3, 4])], "expected [2, 4]"),
                                     ([Tensor.ones([3]), Tensor.ones([3, 4])], "backbone 0"),
                                     ([Tensor.ones([0, 3]), Tensor.ones([0, 4])], "empty")] {
            XCTAssertThrowsError(try module.logits(features: features)) { error in
                guard case FusionError.inputs(let detail) = error else { return XCTFail("\(error)") }
                XCTAssertTrue(detail.contains(fragment), "\(detail) lacks \(fragment)")
            }
        }
    }

    // MARK: - Helpers

    func runParityCase(_ name: String, _ module: some FusionModule, file: StaticString = #filePath, line: UInt = #line) throws {
        let fx = try fixture(name)
        var weights: [String: Tensor] = [:]
        for n in fx.tensorNames where n.hasPrefix("weights.") { weights[String(n.dropFirst(8))] = try fx.tensor(named: n) }
        try module.load(weights)   // strict: same keys, same shapes
        module.eval()

        let features = try (0..<module.inputWidths.count).map { Tensor.parameter(try fx.tensor(named: "features.\($0)")) }
        let out = try module.logits(features: features)
        assertNear(out.fused, try fx.tensor(named: "logits"), Self.tolerance, "\(name) logits", file: file, line: line)
        XCTAssertEqual(out.perBackbone.count, module.auxLossWeight == nil ? 0 : features.count, file: file, line: line)
        for (i, aux) in out.perBackbone.enumerated() {
            assertNear(aux, try fx.tensor(named: "aux_logits.\(i)"), Self.tolerance, "\(name) aux logits \(i)", file: file, line: line)
        }
        let targets = try fx.tensor(named: "targets")
        let loss = try module.combinedLoss(out) { logits in
            if module.outputs == 1 { return try mseLoss(logits, try targets.reshaped([targets.count, 1])) }
            return try crossEntropy(logits, targets: targets.toArray().map { Int($0) })
        }
        assertNear(loss, try fx.tensor(named: "loss"), Self.tolerance, "\(name) loss", file: file, line: line)

        try loss.backward()
        for (i, f) in features.enumerated() {
            assertNear(f.grad, try fx.tensor(named: "grad_features.\(i)"), Self.tolerance, "\(name) grad of features \(i)", file: file, line: line)
        }
        var compared: Set<String> = []
        for (key, p) in module.namedParameters() {
            assertNear(p.grad, try fx.tensor(named: "grads.\(key)"), Self.tolerance, "\(name) grad of \(key)", file: file, line: line)
            compared.insert("grads.\(key)")
        }
        XCTAssertEqual(compared, Set(fx.tensorNames.filter { $0.hasPrefix("grads.") }), file: file, line: line)
    }

    /// Central differences (step 1e-2, in Float32) on up to 6 elements of every feature tensor
    /// and parameter, for `loss = Σ c ⊙ logits` with fixed random `c` plus the auxiliary terms.
    /// `reseed` replays the random draws before every evaluation (training mode).
    func gradientCheck(_ module: some FusionModule, reseed: (RandomSource, RandomGenerator)?,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let rng = RandomSource(seed: 99)
        let features = module.inputWidths.map { Tensor.parameter(Tensor.normal([4, $0], rng: &rng.generator)) }
        let weights = Tensor.normal([4, module.outputs], rng: &rng.generator)
        func loss() throws -> Tensor {
            if let (source, state) = reseed { source.generator = state }
            return try module.combinedLoss(try module.logits(features: features)) { try sum(try mul($0, weights)) }
        }
        for p in module.parameters { p.grad = nil }
        try loss().backward()
        let h: Float = 1e-2
        var checked = 0
        for (name, t) in features.enumerated().map({ ("features.\($0.offset)", $0.element) }) + module.namedParameters().map({ ($0.key, $0.tensor) }) {
            guard let grad = t.grad?.toArray() else { XCTFail("\(name): no gradient", file: file, line: line); continue }
            for i in Set((0..<6).map { ($0 * 7919) % t.count }) {
                let saved = t.data[i]
                t.data[i] = saved + h
                let up = try withNoGrad { try loss() }.toArray()[0]
                t.data[i] = saved - h
                let down = try withNoGrad { try loss() }.toArray()[0]
                t.data[i] = saved
                let numeric = (up - down) / (2 * h)
                XCTAssertEqual(grad[i], numeric, accuracy: 2e-3 + 2e-2 * Swift.abs(numeric), "\(name)[\(i)]", file: file, line: line)
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 20, file: file, line: line)
    }

    func fixture(_ name: String) throws -> SafetensorsFile {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        for _ in 0..<8 {
            let candidate = dir.appendingPathComponent("Tests/Fixtures/fusion/\(name).safetensors")
            if FileManager.default.fileExists(atPath: candidate.path) { return try SafetensorsFile(url: candidate) }
            dir = dir.deletingLastPathComponent()
        }
        throw XCTSkip("Tests/Fixtures/fusion/\(name).safetensors not found above \(#filePath)")
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
