import Foundation
import XCTest
import Checkpoints
import Layers
@testable import Models
import TensorEngine
import Training

/// runpipe's LoRA and IA3 on BERT against the `peft` library, through the tiny BERT of
/// Tests/Fixtures/text/bert and the references of Tests/Fixtures/peft
/// (scripts/fixtures/make_peft_fixtures.py, float64): the mean-pooled output, the gradients of
/// the adapter tensors for L = Σ pooled², and the adapter tensors after one AdamW step
/// (lr 1e-2, weight decay 0.01).
///
/// Tolerances: pooled output 1e-5 + 1e-5·|expected|; gradients 1e-5 + 1e-4·|expected| (float32
/// through two layers against float64, gradients up to ~50 in size); the tensors after the step
/// 1e-5 (AdamW's first step moves every element by about lr, whatever the gradient's size).
final class PEFTParityTests: XCTestCase {
    func fixture(_ name: String) throws -> SafetensorsFile {
        let url = try TextFixtures.root().deletingLastPathComponent().appendingPathComponent("peft/\(name).safetensors")
        return try SafetensorsFile(url: url)
    }

    func check(_ name: String, options: PEFTOptions, adapted: Int) throws {
        let ref = try fixture(name)
        let encoder = try TextFixtures.load("bert").encoder
        let report = try applyPEFT(options, to: encoder, rng: RandomSource(seed: 3))
        XCTAssertEqual(report.adaptedModules.count, adapted)
        let expectedKeys = Set(ref.tensorNames.filter { $0.hasPrefix("init.") }.map { String($0.dropFirst(5)) })
        XCTAssertEqual(Set(report.trainableKeys), expectedKeys, "\(name): the trainable tensors are peft's, by name")
        var initial: [String: Tensor] = [:]
        for key in expectedKeys { initial[key] = try ref.tensor(named: "init." + key) }
        try encoder.load(initial, strict: false)

        let batch = try TextFixtures.batch(ref)
        let hidden = try encoder.encode(try encoder.embed(batch), batch: batch, layers: 0..<encoder.shape.layers)
        let pooled = try pool(hidden, batch: batch, .mean)
        let loss = try sum(try mul(pooled, pooled))
        try loss.backward()
        var worst: (pooled: Float, grad: Float, after: Float) = (0, 0, 0)
        worst.pooled = assertTensorsClose(pooled, try ref.tensor(named: "pooled"), atol: 1e-5, rtol: 1e-5, "\(name) pooled output")

        let params = encoder.namedParameters().filter { expectedKeys.contains($0.key) }
        for (key, p) in params {
            worst.grad = max(worst.grad, assertTensorsClose(p.grad, try ref.tensor(named: "grad." + key), atol: 1e-5, rtol: 1e-4,
                                                            "\(name) gradient of \(key)"))
        }
        let optimizer = try AdamW(parameters: params.map(\.tensor), lr: 1e-2, weightDecay: 0.01)
        try optimizer.step()
        for (key, p) in params {
            worst.after = max(worst.after, assertTensorsClose(p, try ref.tensor(named: "after." + key), atol: 1e-5,
                                                              "\(name) \(key) after one AdamW step"))
        }
        print("peft parity \(name): pooled \(worst.pooled), gradients \(worst.grad), after AdamW \(worst.after) (max abs error)")
    }

    func testLoRAMatchesPeft() throws {
        try check("lora", options: PEFTOptions(method: .lora, rank: 4, alpha: 8, targets: ["query", "value"]), adapted: 4)
    }

    func testIA3MatchesPeft() throws {
        try check("ia3", options: PEFTOptions(method: .ia3, targets: PEFTOptions.peftBertIA3Targets,
                                              feedforward: PEFTOptions.peftBertIA3Feedforward), adapted: 8)
    }

    // MARK: The real backbones

    /// LoRA (AutoMM's default targets) and IA3 on every tiny text family: forward and backward
    /// run, only adapter tensors get gradients, merging gives back the adapted function.
    func testAdaptersOnEveryTextFamily() throws {
        var summary: [String] = []
        for family in TextFixtures.families {
            for method in [PEFTMethod.lora, .ia3] {
                let encoder = try TextFixtures.load(family).encoder
                let batch = try TextFixtures.batch(try TextFixtures.reference(family))
                let report: PEFTReport
                do {
                    report = try applyPEFT(PEFTOptions(method: method, rank: 4), to: encoder, rng: RandomSource(seed: 3))
                } catch let error as PEFTError {
                    // DistilBERT names its projections q_lin, k_lin, …: AutoMM's defaults miss them.
                    XCTAssertEqual(family, "distilbert", "\(error)")
                    guard case .noTargets = error else { XCTFail("\(family): \(error)"); continue }
                    XCTAssertTrue(error.description.contains("q_lin"), error.description)
                    continue
                }
                XCTAssertFalse(report.adaptedModules.isEmpty, family)
                summary.append("\(family) \(method): \(report.adaptedModules.count) layers, \(report.trainableParameters) trainable")
                perturb(encoder)
                let hidden = try encoder.encode(try encoder.embed(batch), batch: batch, layers: 0..<encoder.shape.layers)
                let pooled = try pool(hidden, batch: batch, .mean)
                try sum(try mul(pooled, pooled)).backward()
                for (key, p) in encoder.namedParameters() {
                    if report.trainableKeys.contains(key) { XCTAssertNotNil(p.grad, "\(family) \(key)") } else { XCTAssertNil(p.grad, "\(family) \(key)") }
                }
                let before = pooled.toArray()
                XCTAssertEqual(try mergePEFT(in: encoder), report.adaptedModules.count)
                let after = try withNoGrad { try pool(try encoder(batch), batch: batch, .mean) }.toArray()
                let err = zip(before, after).map { Swift.abs($0 - $1) }.max() ?? 0
                XCTAssertLessThan(err, 1e-4, "\(family) \(method) merged")
            }
        }
        print("PEFT on text families:\n  " + summary.joined(separator: "\n  "))
    }

    func testAdaptersOnViTAndTheCNNRule() throws {
        for name in ImageTransformerFixtures.vitCases {
            let encoder = try ImageTransformerFixtures.load(name).encoder
            let input = try XCTUnwrap(try ImageTransformerFixtures.reference(name)["input"])
            // HF ViT names its projections query/value; timm fuses them into `qkv`.
            let targets = name.hasPrefix("timm") ? ["qkv"] : ["query", "value"]
            let report = try applyPEFT(PEFTOptions(method: .ia3_lora, rank: 2, targets: targets), to: encoder, rng: RandomSource(seed: 3))
            XCTAssertFalse(report.adaptedModules.isEmpty, name)
            perturb(encoder)
            let features = try encoder.features(input)
            try sum(try mul(features, features)).backward()
            for (key, p) in encoder.namedParameters() {
                if report.trainableKeys.contains(key) { XCTAssertNotNil(p.grad, "\(name) \(key)") } else { XCTAssertNil(p.grad, "\(name) \(key)") }
            }
            let before = features.toArray()
            try mergePEFT(in: encoder)
            let after = try withNoGrad { try encoder.features(input) }.toArray()
            XCTAssertLessThan(zip(before, after).map { Swift.abs($0 - $1) }.max() ?? 0, 1e-4, "\(name) merged")
        }
        let cnnFolder = try ImageTransformerFixtures.root().deletingLastPathComponent().appendingPathComponent("cnn")
        let cnn = try ImageEncoders.load(checkpoint: cnnFolder.appendingPathComponent("mobilenet_v2.safetensors"), architecture: nil,
                                         rng: RandomSource(seed: 1)).encoder
        XCTAssertThrowsError(try applyPEFT(PEFTOptions(method: .lora, targets: ["conv"]), to: cnn, rng: RandomSource(seed: 3))) { error in
            XCTAssertTrue("\(error)".contains("'conv' matches no Linear"), "\(error)")
        }
        let norm = try applyPEFT(PEFTOptions(method: .norm_fit), to: cnn, rng: RandomSource(seed: 3))
        XCTAssertFalse(norm.trainableKeys.isEmpty)
        XCTAssertTrue(norm.trainableKeys.allSatisfy { $0.hasSuffix(".weight") || $0.hasSuffix(".bias") })
        let bit = try applyPEFT(PEFTOptions(method: .bit_fit), to: cnn, rng: RandomSource(seed: 3))
        XCTAssertTrue(bit.trainableKeys.allSatisfy { $0.hasSuffix(".bias") })
        XCTAssertLessThan(bit.trainableParameters, norm.trainableParameters)
    }

    /// Non-trivial adapter values (LoRA B away from zero, IA3 vectors away from one).
    func perturb(_ m: Module) {
        let rng = RandomSource(seed: 21)
        for (key, p) in m.namedParameters() where key.hasSuffix("lora_B.weight") || key.hasSuffix("ia3_l") {
            let noise = Tensor.normal(p.shape, std: 0.2, rng: &rng.generator).toArray()
            for i in 0..<p.count { p.data[i] = (key.hasSuffix("ia3_l") ? 1 : 0) + noise[i] }
        }
    }
}
