// ViT and ConvNeXt against transformers / timm on the tiny random checkpoints written by
// scripts/fixtures/make_vit_fixtures.py (see its docstring for the cases and the reference file).
import Foundation
import XCTest
import Checkpoints
@testable import Models
import TensorEngine

/// Finding and reading Tests/Fixtures/image_models/vit.
enum ImageTransformerFixtures {
    static let vitCases = ["hf_vit", "hf_vit_classifier", "timm_vit", "timm_vit_avg"]
    static let convNeXtCases = ["hf_convnext", "hf_convnext_classifier", "timm_convnext"]
    static var cases: [String] { vitCases + convNeXtCases }

    static func root() throws -> URL {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        for _ in 0..<8 {
            let candidate = dir.appendingPathComponent("Tests/Fixtures/image_models/vit")
            if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        throw XCTSkip("Tests/Fixtures/image_models/vit not found above \(#filePath)")
    }

    static func checkpointFolder(_ name: String) throws -> URL {
        try root().appendingPathComponent(name).appendingPathComponent("checkpoint")
    }

    static func reference(_ name: String) throws -> [String: Tensor] {
        try SafetensorsFile(url: try root().appendingPathComponent(name).appendingPathComponent("reference.safetensors")).tensors()
    }

    static func config(_ name: String) throws -> Data {
        try Data(contentsOf: try checkpointFolder(name).appendingPathComponent("config.json"))
    }

    static func tensors(_ name: String) throws -> [String: Tensor] {
        try SafetensorsFile(url: try checkpointFolder(name).appendingPathComponent("model.safetensors")).tensors()
    }

    static func load(_ name: String, architecture: String? = nil) throws -> LoadedImageEncoder {
        try ImageEncoders.load(checkpoint: try checkpointFolder(name), architecture: architecture, rng: RandomSource(seed: 3))
    }

    static func description(_ name: String, config: Bool = true, architecture: String? = nil) throws -> ImageCheckpointDescription {
        ImageCheckpointDescription(architecture: architecture, configJSON: config ? try self.config(name) : nil,
                                   tensorShapes: try tensors(name).mapValues(\.shape), source: name)
    }
}

final class ImageTransformerTests: XCTestCase {
    typealias F = ImageTransformerFixtures

    // MARK: Parity

    func testFeaturesAndLogitsMatchTheReferenceLibraries() throws {
        for name in F.cases {
            let loaded = try F.load(name)
            let ref = try F.reference(name)
            let input = try XCTUnwrap(ref["input"])
            let features = try loaded.encoder.features(input)
            let worst = assertTensorsClose(features, try XCTUnwrap(ref["features"]), atol: 1e-4, "\(name) features")
            var line = "\(name): features max |Δ| \(worst)"
            if let expected = ref["logits"] {
                let logits = try loaded.encoder.logits(input)
                let w = assertTensorsClose(logits, expected, atol: 1e-4, "\(name) logits")
                line += ", logits max |Δ| \(w)"
            } else {
                XCTAssertNil(try loaded.encoder.logits(input), "\(name) has no classifier")
            }
            print(line)
        }
    }

    func testGradientsMatchTheReferenceLibraries() throws {
        for name in F.cases {
            let loaded = try F.load(name)
            let ref = try F.reference(name)
            let input = Tensor.parameter(try XCTUnwrap(ref["input"]))
            let features = try loaded.encoder.features(input)
            try sum(try mul(features, features)).backward()
            var worst = assertTensorsClose(input.grad, try XCTUnwrap(ref["grad.input"]), atol: 1e-4, rtol: 1e-3, "\(name) grad.input")
            let parameters = Dictionary(uniqueKeysWithValues: loaded.encoder.namedParameters().map { ($0.key, $0.tensor) })
            var compared = 0
            for (key, expected) in ref where key.hasPrefix("grad.") && key != "grad.input" {
                let parameterKey = String(key.dropFirst("grad.".count))
                guard let parameter = parameters[parameterKey] else { XCTFail("\(name): no parameter \(parameterKey)"); continue }
                worst = max(worst, assertTensorsClose(parameter.grad, expected, atol: 1e-4, rtol: 1e-3, "\(name) \(key)"))
                compared += 1
            }
            XCTAssertGreaterThan(compared, 10, name)
            print("\(name): gradients (input + \(compared) parameters) max |Δ| \(worst)")
        }
    }

    func testConvNeXtShapesInferredFromTheTensorsAloneLoadAndMatch() throws {
        for name in F.convNeXtCases {
            let tensors = try F.tensors(name)
            let description = ImageCheckpointDescription(architecture: nil, configJSON: nil,
                                                         tensorShapes: tensors.mapValues(\.shape), source: name)
            let encoder = try ImageEncoders.build(description, rng: RandomSource(seed: 1))
            try ImageEncoders.load(tensors: tensors, into: encoder)
            encoder.eval()
            let ref = try F.reference(name)
            assertTensorsClose(try encoder.features(try XCTUnwrap(ref["input"])), try XCTUnwrap(ref["features"]), atol: 1e-4,
                               "\(name) features without config.json")
        }
    }

    // MARK: Shape facts

    func testShapesReportWhatThePipelineNeeds() throws {
        let vit = try F.load("hf_vit").encoder.shape
        XCTAssertEqual(vit.features, 16)
        XCTAssertEqual(vit.blocks, 2)
        XCTAssertEqual(vit.inputSize, 32)
        XCTAssertTrue(vit.fixedSize)
        XCTAssertEqual(vit.minimumSize, 32)
        XCTAssertEqual(vit.mean, [0.5, 0.5, 0.5])
        let timm = try F.load("timm_vit").encoder.shape
        XCTAssertEqual(timm.architecture, "vit_tiny_patch16_224")
        XCTAssertEqual(timm.inputSize, 32)
        XCTAssertEqual(timm.std, [0.5, 0.5, 0.5])
        let hfConvNeXt = try F.load("hf_convnext").encoder.shape
        XCTAssertEqual(hfConvNeXt.features, 16)
        XCTAssertEqual(hfConvNeXt.blocks, 3)
        XCTAssertFalse(hfConvNeXt.fixedSize)
        XCTAssertEqual(hfConvNeXt.minimumSize, 8)
        XCTAssertEqual(hfConvNeXt.mean, ImageEncoderShape.imagenetMean)
        let timmConvNeXt = try F.load("timm_convnext").encoder.shape
        XCTAssertEqual(timmConvNeXt.blocks, 5)
        XCTAssertEqual(timmConvNeXt.minimumSize, 32)
        XCTAssertEqual(timmConvNeXt.inputSize, 224)
    }

    func testLoadedFamiliesAndKeyLayouts() throws {
        for name in F.vitCases {
            let loaded = try F.load(name)
            XCTAssertEqual(loaded.family, "vit", name)
            let vit = try XCTUnwrap(loaded.encoder as? VisionTransformer, name)
            XCTAssertEqual(vit.configuration.layout, name.hasPrefix("hf") ? .huggingFace : .timm, name)
        }
        XCTAssertEqual(try XCTUnwrap(try F.load("hf_vit_classifier").encoder as? VisionTransformer).configuration.keyPrefix, "vit.")
        XCTAssertTrue(try XCTUnwrap(try F.load("hf_vit").encoder as? VisionTransformer).configuration.pooler)
        let avg = try XCTUnwrap(try F.load("timm_vit_avg").encoder as? VisionTransformer).configuration
        XCTAssertEqual(avg.pooling, .average)
        XCTAssertTrue(avg.layerScale)
        XCTAssertFalse(avg.qkvBias)
        XCTAssertTrue(avg.preNorm)
        for name in F.convNeXtCases {
            let loaded = try F.load(name)
            XCTAssertEqual(loaded.family, "convnext", name)
            let model = try XCTUnwrap(loaded.encoder as? ConvNeXt, name)
            XCTAssertEqual(model.configuration.layout, name.hasPrefix("hf") ? .huggingFace : .timm, name)
        }
        let hf = try XCTUnwrap(try F.load("hf_convnext").encoder as? ConvNeXt).configuration
        XCTAssertEqual(hf.finalNormEps, 1e-12)
        XCTAssertEqual(hf.normEps, 1e-6)
    }

    // MARK: Blocks

    func testBlockPrefixesCoverEveryNonStemParameterExactlyOnce() throws {
        let stems: [String: [String]] = [
            "hf_vit": ["embeddings."], "hf_vit_classifier": ["vit.embeddings."],
            "timm_vit": ["cls_token", "pos_embed", "patch_embed."], "timm_vit_avg": ["cls_token", "pos_embed", "patch_embed.", "norm_pre."],
            "hf_convnext": ["embeddings."], "hf_convnext_classifier": ["convnext.embeddings."], "timm_convnext": ["stem."],
        ]
        for name in F.cases {
            let encoder = try F.load(name).encoder
            let stem = try XCTUnwrap(stems[name])
            var counts: [String: Int] = [:]
            for block in 0..<encoder.shape.blocks {
                let prefixes = encoder.parameterPrefixes(ofBlock: block)
                XCTAssertFalse(prefixes.isEmpty, "\(name) block \(block)")
                for (key, _) in encoder.namedParameters() where prefixes.contains(where: { key.hasPrefix($0) }) {
                    counts[key, default: 0] += 1
                }
            }
            for (key, _) in encoder.namedParameters() {
                let inStem = stem.contains { key.hasPrefix($0) }
                XCTAssertEqual(counts[key, default: 0], inStem ? 0 : 1, "\(name): \(key)")
            }
            XCTAssertEqual(encoder.parameterPrefixes(ofBlock: encoder.shape.blocks), [], name)
            XCTAssertEqual(encoder.parameterPrefixes(ofBlock: -1), [], name)
        }
        let timm = try F.load("timm_convnext").encoder
        XCTAssertEqual(timm.parameterPrefixes(ofBlock: 1), ["stages.1.blocks.0.", "stages.1.downsample."])
        XCTAssertEqual(timm.parameterPrefixes(ofBlock: 4), ["stages.3.blocks.0.", "stages.3.downsample.", "head."])
        let hf = try F.load("hf_vit").encoder
        XCTAssertEqual(hf.parameterPrefixes(ofBlock: 1), ["encoder.layer.1.", "layernorm.", "pooler."])
    }

    // MARK: Errors

    func testStrictLoadingNamesTheKeys() throws {
        for name in ["hf_vit", "timm_vit", "timm_convnext"] {
            let description = try F.description(name)
            var tensors = try F.tensors(name)
            let victim = name == "timm_convnext" ? "stages.1.blocks.0.gamma" : (name == "hf_vit" ? "encoder.layer.1.output.dense.bias" : "blocks.1.attn.qkv.weight")
            let removed = try XCTUnwrap(tensors.removeValue(forKey: victim))
            let model = try ImageEncoders.build(description, rng: RandomSource(seed: 1))
            XCTAssertThrowsError(try ImageEncoders.load(tensors: tensors, into: model)) { error in
                XCTAssertEqual(error as? ImageEncoderError, .missingWeights(keys: [victim]), name)
            }
            tensors[victim] = removed
            tensors["extra.weight"] = Tensor.zeros([2])
            XCTAssertThrowsError(try ImageEncoders.load(tensors: tensors, into: model)) { error in
                XCTAssertEqual(error as? ImageEncoderError, .unexpectedWeights(keys: ["extra.weight"]), name)
            }
            tensors["extra.weight"] = nil
            tensors[victim] = Tensor.zeros([removed.shape[0] + 1] + removed.shape.dropFirst())
            XCTAssertThrowsError(try ImageEncoders.load(tensors: tensors, into: model)) { error in
                XCTAssertEqual(error as? ImageEncoderError,
                               .shapeMismatch(key: victim, model: removed.shape, checkpoint: [removed.shape[0] + 1] + removed.shape.dropFirst()), name)
            }
        }
    }

    func testViTRejectsOtherInputSizesNamingTheSizeItNeeds() throws {
        let encoder = try F.load("timm_vit").encoder
        XCTAssertThrowsError(try encoder.features(Tensor.zeros([1, 3, 48, 48]))) { error in
            guard case .invalidInput(let detail)? = error as? ImageEncoderError else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("32×32"), detail)
            XCTAssertTrue(detail.contains("48×48"), detail)
        }
        XCTAssertThrowsError(try encoder.features(Tensor.zeros([1, 1, 32, 32])))
        XCTAssertThrowsError(try encoder.features(Tensor.zeros([3, 32, 32])))
    }

    func testPositionInterpolationMatchesHuggingFaceWhenEnabled() throws {
        var config = try ViTConfiguration.resolve(try F.description("hf_vit"))
        config.interpolatePositions = true
        let encoder = try VisionTransformer(config, rng: RandomSource(seed: 2))
        try ImageEncoders.load(tensors: try F.tensors("hf_vit"), into: encoder)
        encoder.eval()
        XCTAssertFalse(encoder.shape.fixedSize)
        XCTAssertEqual(encoder.shape.minimumSize, 8)
        let ref = try F.reference("hf_vit")
        let input = Tensor.parameter(try XCTUnwrap(ref["interpolated.input"]))
        let features = try encoder.features(input)
        let worst = assertTensorsClose(features, try XCTUnwrap(ref["interpolated.features"]), atol: 1e-4, "48×40 features")
        try sum(try mul(features, features)).backward()
        let worstGrad = assertTensorsClose(input.grad, try XCTUnwrap(ref["interpolated.grad.input"]), atol: 1e-4, rtol: 1e-3, "48×40 grad.input")
        print("hf_vit at 48×40 with interpolated positions: features max |Δ| \(worst), grad.input max |Δ| \(worstGrad)")
        // The checkpoint's own size still uses the stored embeddings unchanged.
        assertTensorsClose(try encoder.features(try XCTUnwrap(ref["input"])), try XCTUnwrap(ref["features"]), atol: 1e-4, "32×32 features")
        XCTAssertThrowsError(try encoder.features(Tensor.zeros([1, 3, 4, 32])))
    }

    func testBicubicWeightsRepeatEdgesAndSumToOne() {
        let same = Bicubic.matrix(from: 4, to: 4)
        XCTAssertEqual(same.values, [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1])
        let up = Bicubic.matrix(from: 3, to: 7)
        for r in 0..<up.rows {
            XCTAssertEqual(up.values[(r * up.columns)..<((r + 1) * up.columns)].reduce(0, +), 1, accuracy: 1e-6)
        }
        let grid = Bicubic.matrix(from: 2, to: 3).kronecker(Bicubic.matrix(from: 2, to: 5))
        XCTAssertEqual([grid.rows, grid.columns], [15, 4])
    }

    func testConvNeXtReadsAnySizeAboveItsMinimum() throws {
        let encoder = try F.load("hf_convnext").encoder
        XCTAssertEqual(try encoder.features(Tensor.zeros([1, 3, 40, 24])).shape, [1, 16])
        XCTAssertThrowsError(try encoder.features(Tensor.zeros([1, 3, 4, 32]))) { error in
            guard case .invalidInput(let detail)? = error as? ImageEncoderError else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("8×8"), detail)
        }
    }

    // MARK: Recognition

    func testRecognitionFromConfigJSON() throws {
        for name in F.cases {
            let description = try F.description(name)
            let family = try ImageEncoders.family(for: description)
            XCTAssertEqual(family.name, name.contains("vit") ? "vit" : "convnext", name)
        }
        let bert = ImageCheckpointDescription(architecture: nil, configJSON: Data(#"{"model_type": "bert"}"#.utf8),
                                              tensorShapes: [:], source: "bert")
        XCTAssertFalse(ImageEncoderFamily.vit.recognises(bert))
        XCTAssertFalse(ImageEncoderFamily.convNeXt.recognises(bert))
    }

    func testRecognitionFromArchitectureNames() throws {
        for name in ["vit_tiny_patch16_224", "vit_small_patch16_224", "vit_base_patch16_224", "vit_base_patch32_224"] {
            XCTAssertTrue(ImageEncoders.supportedArchitectures.contains(name), name)
            let d = ImageCheckpointDescription(architecture: name, configJSON: nil, tensorShapes: [:], source: name)
            XCTAssertEqual(try ImageEncoders.family(for: d).name, "vit")
        }
        for name in ["convnext_tiny", "convnext_small", "convnext_base"] {
            XCTAssertTrue(ImageEncoders.supportedArchitectures.contains(name), name)
            let d = ImageCheckpointDescription(architecture: name, configJSON: nil, tensorShapes: [:], source: name)
            XCTAssertEqual(try ImageEncoders.family(for: d).name, "convnext")
        }
        let tiny = try XCTUnwrap(ViTConfiguration.preset("vit_tiny_patch16_224"))
        XCTAssertEqual([tiny.hidden, tiny.depth, tiny.heads, tiny.patchSize, tiny.mlpHidden], [192, 12, 3, 16, 768])
        let d = ImageCheckpointDescription(architecture: "vit_tiny_patch16_224", configJSON: nil, tensorShapes: [:], source: "preset")
        let built = try XCTUnwrap(try ImageEncoders.build(d, rng: RandomSource(seed: 1)) as? VisionTransformer)
        XCTAssertEqual(built.shape.features, 192)
        XCTAssertEqual(built.shape.inputSize, 224)
        XCTAssertNotNil(built.namedParameters().first { $0.key == "blocks.11.attn.qkv.weight" })
        let base = try XCTUnwrap(ConvNeXtConfiguration.preset("convnext_base"))
        XCTAssertEqual(base.depths, [3, 3, 27, 3])
        XCTAssertEqual(base.dims, [128, 256, 512, 1024])
    }

    func testRecognitionFromKeysAlone() throws {
        for name in F.cases {
            let description = try F.description(name, config: false)
            XCTAssertEqual(try ImageEncoders.family(for: description).name, name.contains("vit") ? "vit" : "convnext", name)
        }
    }

    func testViTWithoutConfigOrNameAsksForOne() throws {
        let description = try F.description("timm_vit", config: false)
        XCTAssertThrowsError(try ImageEncoders.build(description, rng: RandomSource(seed: 1))) { error in
            guard case .invalidConfiguration(_, let key, let reason)? = error as? ImageEncoderError else { return XCTFail("\(error)") }
            XCTAssertEqual(key, "num_attention_heads")
            XCTAssertTrue(reason.contains("config.json"), reason)
            XCTAssertTrue(reason.contains("vit_base_patch16_224"), reason)
        }
    }

    func testNamedArchitectureThatDisagreesWithConfigJSON() throws {
        for (name, wrong, config) in [("timm_vit", "vit_base_patch16_224", true), ("hf_vit", "vit_base_patch16_224", true),
                                      ("hf_convnext", "convnext_tiny", true), ("timm_convnext", "convnext_base", false)] {
            let description = try F.description(name, config: config, architecture: wrong)
            XCTAssertThrowsError(try ImageEncoders.build(description, rng: RandomSource(seed: 1)), name) { error in
                guard case .invalidConfiguration(_, let key, _)? = error as? ImageEncoderError else { return XCTFail("\(error)") }
                XCTAssertEqual(key, "architecture", name)
            }
        }
    }

    func testUnsupportedTimmArgumentsAreNamed() throws {
        func build(_ json: String) throws -> any ImageEncoder {
            let d = ImageCheckpointDescription(architecture: nil, configJSON: Data(json.utf8), tensorShapes: [:], source: "inline")
            return try ImageEncoders.build(d, rng: RandomSource(seed: 1))
        }
        let cases: [(String, String)] = [
            (#"{"architecture": "vit_tiny_patch16_224", "model_args": {"embed_dim": 16, "depth": 1, "num_heads": 2, "qk_norm": true}}"#, "model_args.qk_norm"),
            (#"{"architecture": "vit_tiny_patch16_224", "model_args": {"depth": 1, "made_up": 3}}"#, "model_args.made_up"),
            (#"{"architecture": "vit_tiny_patch16_224", "model_args": {"depth": 1, "global_pool": "map"}}"#, "model_args.global_pool"),
            (#"{"architecture": "vit_tiny_patch16_224", "model_args": {"img_size": [32, 48]}}"#, "model_args.img_size"),
            (#"{"architecture": "vit_huge_patch14_224"}"#, "architecture"),
            (#"{"architecture": "convnext_tiny", "model_args": {"dims": [8, 16], "depths": [1, 1], "use_grn": true}}"#, "model_args.use_grn"),
            (#"{"architecture": "convnext_tiny", "model_args": {"depths": "three"}}"#, "model_args.depths"),
            (#"{"model_type": "convnext", "hidden_sizes": [8, 16], "depths": [1, 1], "num_stages": 4}"#, "num_stages"),
            (#"{"model_type": "vit", "hidden_size": 10, "num_attention_heads": 3}"#, "hidden_size"),
            (#"{"model_type": "vit", "hidden_act": "mish"}"#, "hidden_act"),
        ]
        for (json, key) in cases {
            XCTAssertThrowsError(try build(json), json) { error in
                guard case .invalidConfiguration(_, let k, _)? = error as? ImageEncoderError else { return XCTFail("\(json): \(error)") }
                XCTAssertEqual(k, key, json)
            }
        }
        // A config.json that is not JSON is an error, not a reason to fall back on the named preset.
        for family in [ImageEncoderFamily.vit, ImageEncoderFamily.convNeXt] {
            let name = family.name == "vit" ? "vit_tiny_patch16_224" : "convnext_tiny"
            let broken = ImageCheckpointDescription(architecture: name, configJSON: Data(#"{"model_type": "vit""#.utf8),
                                                    tensorShapes: [:], source: "broken")
            XCTAssertThrowsError(try family.build(broken, RandomSource(seed: 1))) { error in
                guard case .invalidConfiguration(_, let key, _)? = error as? ImageEncoderError else { return XCTFail("\(error)") }
                XCTAssertEqual(key, "config.json")
            }
        }
        // timm's defaults and initialisation-only arguments are accepted.
        let ok = try build(#"{"architecture": "vit_tiny_patch16_224", "model_args": {"embed_dim": 16, "depth": 1, "num_heads": 2, "qk_norm": false, "weight_init": "jax", "img_size": 32, "patch_size": 8}}"#)
        XCTAssertEqual(ok.shape.features, 16)
    }

    // MARK: Training mode

    func testDropPathIsIdentityInEvaluationAndPerSampleInTraining() throws {
        let config = ConvNeXtConfiguration(architecture: "tiny", layout: .timm, depths: [1, 1], dims: [8, 16], dropPath: 0.5)
        let model = try ConvNeXt(config, rng: RandomSource(seed: 4))
        let x = Tensor.normal([4, 3, 16, 16], rng: &RandomSource(seed: 5).generator)
        model.eval()
        let a = try model.features(x).toArray(), b = try model.features(x).toArray()
        XCTAssertEqual(a, b)
        model.train()
        let y = try model.features(x)
        XCTAssertEqual(y.shape, [4, 16])
        XCTAssertTrue(y.toArray().allSatisfy(\.isFinite))
    }
}
