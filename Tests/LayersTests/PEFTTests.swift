import XCTest
import TensorEngine
@testable import Layers

/// PEFT on module trees: which layers get adapters, what trains, the adapters' functions and
/// gradients (finite differences), merging, errors.
final class PEFTTests: XCTestCase {
    func encoder(depth: Int = 2) throws -> TransformerEncoder {
        try TransformerEncoder(TransformerLayerConfig(hidden: 8, heads: 2, intermediate: 16, hiddenDropout: 0, attentionDropout: 0),
                               depth: depth, rng: RandomSource(seed: 1))
    }

    func input(_ seed: UInt64 = 2, _ shape: [Int] = [2, 3, 8]) -> Tensor {
        Tensor.normal(shape, rng: &RandomSource(seed: seed).generator)
    }

    /// Sets every adapter tensor to seeded non-trivial values (B non-zero, l away from 1).
    func perturbAdapters(_ m: Module, seed: UInt64 = 9) {
        let rng = RandomSource(seed: seed)
        for (key, p) in m.namedParameters() where key.contains("lora_") || key.hasSuffix("ia3_l") {
            let noise = Tensor.normal(p.shape, std: 0.3, rng: &rng.generator).toArray()
            for i in 0..<p.count { p.data[i] = (key.hasSuffix("ia3_l") ? 1 : 0) + noise[i] + (key.contains("lora_A") ? p.data[i] : 0) }
        }
    }

    // MARK: Targets, scope, what trains

    func testLoRAOnQueryAndValueFreezesEverythingElse() throws {
        let enc = try encoder()
        let total = enc.parameterCount()
        let report = try applyPEFT(PEFTOptions(method: .lora, rank: 2), to: enc, rng: RandomSource(seed: 3))
        XCTAssertEqual(report.adaptedModules, ["layer.0.attention.self.query", "layer.0.attention.self.value",
                                               "layer.1.attention.self.query", "layer.1.attention.self.value"])
        XCTAssertEqual(report.unmatchedTargets, ["^q$", "^v$", "^k$", "^o$"])
        XCTAssertEqual(report.trainableKeys.count, 8)
        XCTAssertTrue(report.trainableKeys.contains("layer.0.attention.self.query.lora_A.weight"))
        XCTAssertTrue(report.trainableKeys.contains("layer.1.attention.self.value.lora_B.weight"))
        XCTAssertEqual(report.trainableParameters, 4 * (2 * 8 + 8 * 2))
        XCTAssertEqual(report.totalParameters, total + report.trainableParameters)
        XCTAssertEqual(enc.trainableParameters.count, 8)
        // A new adapter (B = 0) leaves the function unchanged.
        let fresh = try encoder()
        enc.eval(); fresh.eval()
        let x = input()
        XCTAssertEqual(try withNoGrad { try enc(x) }.toArray(), try withNoGrad { try fresh(x) }.toArray())
    }

    func testLoRAInitialisationIsKaimingUniformAndSeeded() throws {
        let a = try encoder(), b = try encoder()
        try applyPEFT(PEFTOptions(method: .lora, rank: 4), to: a, rng: RandomSource(seed: 5))
        try applyPEFT(PEFTOptions(method: .lora, rank: 4), to: b, rng: RandomSource(seed: 5))
        let pa = a.namedParameters(), pb = b.namedParameters()
        for (x, y) in zip(pa, pb) { XCTAssertEqual(x.tensor.toArray(), y.tensor.toArray(), x.key) }
        let A = try XCTUnwrap(pa.first { $0.key == "layer.0.attention.self.query.lora_A.weight" }).tensor
        XCTAssertEqual(A.shape, [4, 8])
        let bound = 1 / Float(8).squareRoot()
        XCTAssertTrue(A.toArray().allSatisfy { Swift.abs($0) <= bound })
        XCTAssertGreaterThan(A.toArray().map { Swift.abs($0) }.max() ?? 0, bound / 2)
        let B = try XCTUnwrap(pa.first { $0.key == "layer.0.attention.self.query.lora_B.weight" }).tensor
        XCTAssertEqual(B.shape, [8, 4])
        XCTAssertTrue(B.toArray().allSatisfy { $0 == 0 })
    }

    func testDottedPatternsMatchKeySuffixesAndScopeRestricts() throws {
        let enc = try encoder(depth: 3)
        let report = try applyPEFT(PEFTOptions(method: .ia3, targets: ["key", "output.dense"], feedforward: ["output.dense"],
                                               scope: ["layer.2"]), to: enc, rng: RandomSource(seed: 3))
        XCTAssertEqual(report.adaptedModules, ["layer.2.attention.self.key", "layer.2.attention.output.dense", "layer.2.output.dense"])
        let shapes = Dictionary(uniqueKeysWithValues: enc.namedParameters().filter { $0.key.hasSuffix("ia3_l") }.map { ($0.key, $0.tensor.shape) })
        XCTAssertEqual(shapes["layer.2.attention.self.key.ia3_l"], [8], "output scaling: l has the output size")
        XCTAssertEqual(shapes["layer.2.output.dense.ia3_l"], [16], "feed-forward: l has the input size")
        XCTAssertEqual(shapes["layer.2.attention.output.dense.ia3_l"], [8])
        // `layer.1` does not cover `layer.10`-like keys, and a dotted regex is a full match.
        XCTAssertTrue(inScope("layer.1.output.dense", ["layer.1"]))
        XCTAssertFalse(inScope("layer.10.output.dense", ["layer.1"]))
        XCTAssertTrue(try TargetPattern(#"layer\.[01]\.output\.dense"#).matches(key: "layer.1.output.dense"))
        XCTAssertFalse(try TargetPattern(#"layer\.[01]\.output\.dense"#).matches(key: "layer.2.output.dense"))
        XCTAssertFalse(try TargetPattern("output.dense").matches(key: "layer.2.output.dense_extra"))
        XCTAssertTrue(try TargetPattern("query").matches(key: "a.query_proj"), "re.match: a prefix of the name")
        XCTAssertFalse(try TargetPattern("^q$").matches(key: "a.query"))
    }

    func testBiasAndNormMethodsFollowAutoMM() throws {
        let enc = try encoder()
        let bit = try applyPEFT(PEFTOptions(method: .bit_fit), to: enc, rng: RandomSource(seed: 3))
        XCTAssertTrue(bit.trainableKeys.allSatisfy { $0.hasSuffix(".bias") })
        XCTAssertEqual(bit.trainableKeys.count, 2 * 8)
        XCTAssertTrue(bit.adaptedModules.isEmpty)

        let enc2 = try encoder()
        let norm = try applyPEFT(PEFTOptions(method: .norm_fit, scope: ["layer.1"]), to: enc2, rng: RandomSource(seed: 3))
        // AutoMM's norm_fit: every bias plus the norm layers' weights.
        XCTAssertEqual(Set(norm.trainableKeys), Set(enc2.namedParameters().map(\.key).filter {
            $0.hasPrefix("layer.1.") && ($0.hasSuffix(".bias") || $0.contains("LayerNorm"))
        }))

        let enc3 = try encoder()
        let loraNorm = try applyPEFT(PEFTOptions(method: .lora_norm, rank: 2), to: enc3, rng: RandomSource(seed: 3))
        XCTAssertEqual(loraNorm.trainableKeys.filter { $0.contains("lora_") }.count, 8)
        XCTAssertTrue(loraNorm.trainableKeys.contains("layer.0.output.LayerNorm.weight"))
        XCTAssertTrue(loraNorm.trainableKeys.contains("layer.0.intermediate.dense.bias"))
        XCTAssertFalse(loraNorm.trainableKeys.contains("layer.0.intermediate.dense.weight"))

        let enc4 = try encoder()
        let ia3Lora = try applyPEFT(PEFTOptions(method: .ia3_lora, rank: 2), to: enc4, rng: RandomSource(seed: 3))
        XCTAssertEqual(ia3Lora.trainableKeys.count, 4 * 3)
    }

    func testNormFitOnConvolutionsAndLoRAErrorThere() throws {
        let rng = RandomSource(seed: 4)
        let net = Module()
        net.register(child: "conv", try Conv2d(3, 4, kernel: (3, 3), bias: false, rng: rng))
        net.register(child: "bn", BatchNorm2d(4))
        XCTAssertThrowsError(try applyPEFT(PEFTOptions(method: .lora), to: net, rng: rng)) { error in
            guard case PEFTError.noTargets(_, let keys) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(keys.isEmpty)
            XCTAssertTrue("\(error)".contains("convolutions are not Linear"), "\(error)")
        }
        let report = try applyPEFT(PEFTOptions(method: .norm_fit), to: net, rng: rng)
        XCTAssertEqual(report.trainableKeys, ["bn.weight", "bn.bias"])
        let bit = try applyPEFT(PEFTOptions(method: .bit_fit), to: net, rng: rng)
        XCTAssertEqual(bit.trainableKeys, ["bn.bias"])
    }

    // MARK: Errors

    func testErrorsNameTheProblemAndTheFix() throws {
        let rng = RandomSource(seed: 3)
        func expect(_ options: PEFTOptions, _ module: Module? = nil, _ check: (PEFTError) -> Bool, _ text: String) throws {
            let m = try module ?? encoder()
            XCTAssertThrowsError(try applyPEFT(options, to: m, rng: rng)) { error in
                guard let e = error as? PEFTError else { return XCTFail("\(error)") }
                XCTAssertTrue(check(e), "\(e)")
                XCTAssertTrue(e.description.contains(text), e.description)
            }
            // Nothing changed: every parameter still trains, no adapter was put.
            XCTAssertEqual(m.trainableParameters.count, m.parameters.count)
        }
        try expect(PEFTOptions(method: .lora, targets: ["query", "nope"]), nil, {
            if case .unmatchedTarget("nope", "target", _) = $0 { return true } else { return false }
        }, "Linear names in scope: query, key, value, dense")
        try expect(PEFTOptions(method: .lora, targets: ["que(ry"]), nil, {
            if case .invalidPattern("que(ry", _) = $0 { return true } else { return false }
        }, "regular expressions")
        try expect(PEFTOptions(method: .lora, rank: 0), nil, { $0 == .invalidRank(0) }, "at least 1")
        try expect(PEFTOptions(method: .lora, alpha: 0), nil, { $0 == .invalidAlpha(0) }, "greater than 0")
        try expect(PEFTOptions(method: .lora, dropout: 1), nil, { $0 == .invalidDropout(1) }, "[0, 1)")
        try expect(PEFTOptions(method: .ia3, feedforward: ["intermediate"]), nil, {
            if case .unmatchedTarget("intermediate", "feedforward", _) = $0 { return true } else { return false }
        }, "feedforward pattern")
        try expect(PEFTOptions(method: .lora, scope: ["layer.7"]), nil, {
            if case .emptyScope("layer.7", _) = $0 { return true } else { return false }
        }, "covers no module")
        let plain = Module()
        plain.register(child: "fc", Linear(4, 2, rng: rng))
        try expect(PEFTOptions(method: .norm_fit), plain, {
            if case .nothingToTrain(.norm_fit, _, let searched) = $0 { return searched == ["", "fc"] } else { return false }
        }, "2 module(s) searched ((root), fc)")
        let noBias = Module()
        noBias.register(child: "fc", Linear(4, 2, bias: false, rng: rng))
        try expect(PEFTOptions(method: .bit_fit), noBias, {
            if case .nothingToTrain(.bit_fit, "bias", _) = $0 { return true } else { return false }
        }, "found no bias")
        let enc = try encoder()
        try applyPEFT(PEFTOptions(method: .lora), to: enc, rng: rng)
        XCTAssertThrowsError(try applyPEFT(PEFTOptions(method: .ia3), to: enc, rng: rng)) { error in
            XCTAssertEqual(error as? PEFTError, .alreadyAdapted("layer.0.attention.self.query"))
        }
    }

    // MARK: Functions, gradients, merging

    /// y = (x·Wᵀ + b + s·x·Aᵀ·Bᵀ) for LoRA, computed with plain ops on copies of the tensors.
    func testAdapterFormulas() throws {
        let rng = RandomSource(seed: 6)
        let x = input(7, [5, 6])
        for (method, ff) in [(PEFTMethod.lora, false), (.ia3, false), (.ia3, true), (.ia3_lora, false), (.ia3_lora, true)] {
            let layer = Linear(6, 4, rng: rng)
            let holder = Module()
            holder.register(child: "fc", layer)
            try applyPEFT(PEFTOptions(method: method, rank: 3, alpha: 6, targets: ["fc"], feedforward: ff ? ["fc"] : []),
                          to: holder, rng: rng)
            perturbAdapters(holder)
            let p = Dictionary(uniqueKeysWithValues: holder.namedParameters().map { ($0.key, $0.tensor.detached()) })
            let y = try withNoGrad { try layer(x) }
            let expected = try withNoGrad { () throws -> Tensor in
                let l = p["fc.ia3_l"]
                let xin = ff && l != nil ? try mul(x, l!) : x
                var out = try linear(xin, weight: p["fc.weight"]!, bias: p["fc.bias"])
                if let a = p["fc.lora_A.weight"], let b = p["fc.lora_B.weight"] {
                    out = try add(out, try mulScalar(try linear(try linear(xin, weight: a, bias: nil), weight: b, bias: nil), 2))
                }
                if !ff, let l { out = try mul(out, l) }
                return out
            }
            let err = zip(y.toArray(), expected.toArray()).map { Swift.abs($0 - $1) }.max() ?? 0
            XCTAssertLessThan(err, 1e-5, "\(method) feedforward \(ff)")
        }
    }

    /// Central differences on the adapter tensors and the input, for every adapter kind.
    func testAdapterGradientsMatchFiniteDifferences() throws {
        let rng = RandomSource(seed: 8)
        for (method, ff) in [(PEFTMethod.lora, false), (.ia3, false), (.ia3, true), (.ia3_lora, false), (.ia3_lora, true)] {
            let layer = Linear(5, 4, rng: rng)
            let holder = Module()
            holder.register(child: "fc", layer)
            try applyPEFT(PEFTOptions(method: method, rank: 2, alpha: 3, targets: ["fc"], feedforward: ff ? ["fc"] : []),
                          to: holder, rng: rng)
            perturbAdapters(holder)
            let x = Tensor.parameter(input(11, [3, 5]))
            let r = Tensor.normal([3, 4], rng: &RandomSource(seed: 12).generator)
            func loss() throws -> Double {
                let y = try withNoGrad { try layer(x) }.toArray()
                return zip(y, r.toArray()).reduce(0) { $0 + Double($1.0) * Double($1.1) }
            }
            try layer(x).backward(r)
            var checked = 0
            for t in holder.trainableParameters + [x] {
                let g = try XCTUnwrap(t.grad).toArray()
                for i in 0..<t.count {
                    let saved = t.data[i], eps: Float = 1e-2
                    t.data[i] = saved + eps; let up = try loss()
                    t.data[i] = saved - eps; let down = try loss()
                    t.data[i] = saved
                    let numeric = (up - down) / Double(2 * eps)
                    XCTAssertEqual(Double(g[i]), numeric, accuracy: 2e-3 + 1e-2 * Swift.abs(numeric), "\(method) ff \(ff) element \(i)")
                    checked += 1
                }
            }
            XCTAssertGreaterThan(checked, 15)
            XCTAssertNil(layer.weight.grad, "the frozen base weight records no gradient")
        }
    }

    /// `lowRankLinear` on its own, every input trainable, with a separate adapter input (the
    /// dropout case) and with the input shared: gradients against central differences, output
    /// against the composition of plain ops.
    func testLowRankLinearOpGradients() throws {
        for shared in [false, true] {
            var g = RandomGenerator(seed: 13)
            let x = Tensor.parameter(Tensor.normal([2, 3, 5], rng: &g))
            let xa = shared ? x : Tensor.parameter(Tensor.normal([2, 3, 5], rng: &g))
            let w = Tensor.parameter(Tensor.normal([4, 5], rng: &g)), b = Tensor.parameter(Tensor.normal([4], rng: &g))
            let a = Tensor.parameter(Tensor.normal([2, 5], rng: &g)), up = Tensor.parameter(Tensor.normal([4, 2], rng: &g))
            let r = Tensor.normal([2, 3, 4], rng: &g)
            let f = { try lowRankLinear(x, weight: w, bias: b, adapterInput: xa, down: a, up: up, scale: 1.5) }
            let plain = try withNoGrad {
                try add(try linear(x, weight: w, bias: b), try mulScalar(try linear(try linear(xa, weight: a, bias: nil), weight: up, bias: nil), 1.5))
            }
            XCTAssertLessThan(zip(try withNoGrad(f).toArray(), plain.toArray()).map { Swift.abs($0 - $1) }.max() ?? 1, 1e-5)
            try f().backward(r)
            let inputs = shared ? [x, w, b, a, up] : [x, xa, w, b, a, up]
            for (n, t) in inputs.enumerated() {
                let grad = try XCTUnwrap(t.grad, "input \(n)").toArray()
                for i in 0..<t.count {
                    let saved = t.data[i], eps: Float = 1e-2
                    func loss() throws -> Double {
                        zip(try withNoGrad(f).toArray(), r.toArray()).reduce(0) { $0 + Double($1.0) * Double($1.1) }
                    }
                    t.data[i] = saved + eps; let lossUp = try loss()
                    t.data[i] = saved - eps; let lossDown = try loss()
                    t.data[i] = saved
                    let numeric = (lossUp - lossDown) / Double(2 * eps)
                    XCTAssertEqual(Double(grad[i]), numeric, accuracy: 2e-3 + 1e-2 * Swift.abs(numeric), "shared \(shared) input \(n) element \(i)")
                }
            }
        }
    }

    func testMergedForwardEqualsAdaptedForward() throws {
        for method in [PEFTMethod.lora, .ia3, .ia3_lora, .lora_bias] {
            let enc = try encoder()
            let keys = enc.namedParameters().map(\.key)
            let report = try applyPEFT(PEFTOptions(method: method, rank: 2, alpha: 4, targets: ["query", "value", "dense"],
                                                   feedforward: ["output.dense"]), to: enc, rng: RandomSource(seed: 3))
            perturbAdapters(enc)
            enc.eval()
            let x = input()
            let before = try withNoGrad { try enc(x) }.toArray()
            XCTAssertEqual(try mergePEFT(in: enc), report.adaptedModules.count)
            let after = try withNoGrad { try enc(x) }.toArray()
            let err = zip(before, after).map { Swift.abs($0 - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(err, 1e-5, "\(method)")
            XCTAssertEqual(enc.namedParameters().map(\.key), keys, "\(method): merged tree holds the base keys only")
            XCTAssertTrue(enc.namedModules().allSatisfy { ($0.module as? Linear)?.adapter == nil })
            XCTAssertEqual(try mergePEFT(in: enc), 0)
        }
    }

    func testAdaptersTrainAndSaveWithTheirKeys() throws {
        let enc = try encoder()
        try applyPEFT(PEFTOptions(method: .ia3_lora, rank: 2, dropout: 0.25), to: enc, rng: RandomSource(seed: 3))
        perturbAdapters(enc)
        let state = Dictionary(uniqueKeysWithValues: enc.stateDict().map { ($0.key, $0.tensor.clone()) })
        XCTAssertNotNil(state["layer.1.attention.self.value.ia3_l"])
        // Training mode: LoRA dropout draws from the model's source, so two copies seeded alike agree.
        let x = input()
        let twin = try encoder()
        try applyPEFT(PEFTOptions(method: .ia3_lora, rank: 2, dropout: 0.25), to: twin, rng: RandomSource(seed: 3))
        try twin.load(state)
        XCTAssertEqual(try enc(x).toArray(), try twin(x).toArray())
        let y = try enc(x)
        try sum(try mul(y, y)).backward()
        for (key, p) in enc.namedParameters() {
            if key.contains("lora_") || key.hasSuffix("ia3_l") { XCTAssertNotNil(p.grad, key) } else { XCTAssertNil(p.grad, key) }
        }
    }

    /// A frozen Linear keeps nothing for a weight gradient: its input (here a GELU output that
    /// nothing else reads in backward) is freed once the forward pass drops it, and backward
    /// still gives the input's gradient.
    func testFrozenLinearDoesNotKeepItsInput() throws {
        let rng = RandomSource(seed: 1)
        let layer = Linear(4, 3, rng: rng)
        try layer.freeze()
        let x = Tensor.parameter(Tensor.normal([2, 4], rng: &rng.generator))
        weak var weakHidden: Tensor?
        let y: Tensor = try {
            let h = try gelu(x)
            weakHidden = h
            return try layer(h)
        }()
        XCTAssertNil(weakHidden, "the frozen layer's input outlived the forward pass")
        try sum(y).backward()
        XCTAssertNotNil(x.grad)
        XCTAssertNil(layer.weight.grad)
        // The same gradient as through a trainable copy of the layer.
        let x2 = Tensor.parameter(x.detached().clone())
        let trainable = Linear(4, 3, rng: RandomSource(seed: 99))
        try trainable.load(["weight": layer.weight, "bias": try XCTUnwrap(layer.bias)])
        try sum(try trainable(try gelu(x2))).backward()
        XCTAssertEqual(try XCTUnwrap(x.grad).toArray(), try XCTUnwrap(x2.grad).toArray())
    }

    func testModuleUnregister() throws {
        let m = Module()
        let l = m.register(child: "fc", Linear(2, 2, rng: RandomSource(seed: 1)))
        XCTAssertTrue(l.unregister(parameter: "bias") === l.bias)
        XCTAssertNil(l.unregister(parameter: "bias"))
        XCTAssertEqual(m.namedParameters().map(\.key), ["fc.weight"])
        XCTAssertTrue(m.unregister(child: "fc") === l)
        XCTAssertTrue(m.namedParameters().isEmpty)
    }
}
