import Foundation
import XCTest
import Checkpoints
import Layers
@testable import Models
import TensorEngine

/// The registry and strict loading: supported types, typed configuration errors, prefixes,
/// ignored tensors, and every way a checkpoint can fail to fit (each a typed error naming the
/// key). Also the checks on token batches and `encode`'s arguments.
final class TextEncoderLoadingTests: XCTestCase {
    func config(_ family: String) throws -> [String: Any] {
        let data = try Data(contentsOf: try TextFixtures.checkpointFolder(family).appendingPathComponent("config.json"))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    func json(_ object: [String: Any]) throws -> Data { try JSONSerialization.data(withJSONObject: object) }

    func testSupportedModelTypes() {
        XCTAssertEqual(TextEncoders.supportedModelTypes,
                       ["bert", "deberta-v2", "distilbert", "electra", "mpnet", "roberta", "xlm-roberta"])
    }

    func testEveryFamilyBuildsFromItsConfigAndReportsItsShape() throws {
        for family in TextFixtures.families {
            let loaded = try TextFixtures.load(family)
            XCTAssertEqual(loaded.encoder.shape.hidden, 32, family)
            XCTAssertEqual(loaded.encoder.shape.heads, 4, family)
            XCTAssertEqual(loaded.encoder.shape.vocabularySize, 80, family)
            XCTAssertEqual(loaded.encoder.modelType, family == "deberta-v3" ? "deberta-v2" : family)
            XCTAssertFalse(loaded.encoder.isTraining, "\(family): load returns evaluation mode")
            for layer in 0..<loaded.encoder.shape.layers {
                let prefixes = loaded.encoder.parameterPrefixes(ofLayer: layer)
                let owned = loaded.encoder.namedParameters().filter { p in prefixes.contains { p.key.hasPrefix($0) } }
                XCTAssertGreaterThanOrEqual(owned.count, 12, "\(family) layer \(layer) parameters under \(prefixes)")
            }
        }
    }

    func testReportsPrefixAndIgnoredTensors() throws {
        let bert = try TextFixtures.load("bert").report
        XCTAssertNil(bert.strippedPrefix)
        XCTAssertEqual(bert.ignoredKeys, ["embeddings.position_ids", "pooler.dense.bias", "pooler.dense.weight"])
        let xlmr = try TextFixtures.load("xlm-roberta").report
        XCTAssertEqual(xlmr.strippedPrefix, "roberta.")
        XCTAssertEqual(xlmr.ignoredKeys, ["classifier.dense.bias", "classifier.dense.weight", "roberta.embeddings.position_ids",
                                          "roberta.pooler.dense.bias", "roberta.pooler.dense.weight"])
        let electra = try TextFixtures.load("electra").report
        XCTAssertEqual(electra.strippedPrefix, "electra.")
        XCTAssertEqual(electra.ignoredKeys, ["discriminator_predictions.dense.weight", "discriminator_predictions.dense_prediction.weight"])
        let distil = try TextFixtures.load("distilbert").report
        XCTAssertEqual(distil.ignoredKeys, [])
        XCTAssertEqual(distil.loadedCount, try TextFixtures.load("distilbert").encoder.namedParameters().count)
    }

    // MARK: - Configuration errors

    func testUnsupportedModelTypeListsTheSupportedOnes() throws {
        var object = try config("bert")
        object["model_type"] = "gpt2"
        XCTAssertThrowsError(try TextEncoders.build(configJSON: try json(object), rng: RandomSource(seed: 1))) { error in
            XCTAssertEqual(error as? TextEncoderError, .unsupportedModelType("gpt2", supported: TextEncoders.supportedModelTypes))
            XCTAssertTrue("\(error)".contains("gpt2") && "\(error)".contains("deberta-v2, distilbert"), "\(error)")
        }
        object.removeValue(forKey: "model_type")
        XCTAssertThrowsError(try TextEncoders.build(configJSON: try json(object), rng: RandomSource(seed: 1))) { error in
            XCTAssertEqual(error as? TextEncoderError, .unsupportedModelType(nil, supported: TextEncoders.supportedModelTypes))
        }
        XCTAssertThrowsError(try TextEncoders.build(configJSON: Data("{not json".utf8), rng: RandomSource(seed: 1))) { error in
            guard case .invalidConfiguration = error as? TextEncoderError else { return XCTFail("\(error)") }
        }
    }

    func testInvalidConfigurationNamesTheKey() throws {
        let cases: [(String, String, Any, String)] = [
            ("bert", "hidden_size", "wide", "hidden_size"),
            ("bert", "num_attention_heads", 5, "hidden_size"),
            ("roberta", "num_hidden_layers", 0, "num_hidden_layers"),
            ("distilbert", "dim", -3, "dim"),
            ("mpnet", "hidden_dropout_prob", 1.5, "hidden_dropout_prob"),
            ("electra", "embedding_size", 0, "embedding_size"),
        ]
        for (family, key, value, named) in cases {
            var object = try config(family)
            object[key] = value
            XCTAssertThrowsError(try TextEncoders.build(configJSON: try json(object), rng: RandomSource(seed: 1)), "\(family) \(key)") { error in
                guard case .invalidConfiguration(_, let reported, _) = error as? TextEncoderError else { return XCTFail("\(error)") }
                XCTAssertEqual(reported, named, "\(family) \(key): \(error)")
            }
        }
    }

    func testUnsupportedOptionsAreNamed() throws {
        // (family, key, value, the value as the message quotes it)
        let cases: [(String, String, Any, String)] = [
            ("deberta-v2", "conv_kernel_size", 3, "3"),
            ("deberta-v3", "pos_att_type", "p2c|p2p", "p2p"),
            ("deberta-v3", "norm_rel_ebd", "batch_norm", "batch_norm"),
            ("bert", "hidden_act", "mish", "mish"),
            ("bert", "position_embedding_type", "relative_key", "relative_key"),
            ("distilbert", "activation", "quick_gelu", "quick_gelu"),
        ]
        for (family, key, value, quoted) in cases {
            var object = try config(family)
            object[key] = value
            XCTAssertThrowsError(try TextEncoders.build(configJSON: try json(object), rng: RandomSource(seed: 1)), "\(family) \(key)") { error in
                guard case .unsupportedOption(_, let option, _) = error as? TextEncoderError else { return XCTFail("\(error)") }
                XCTAssertEqual(option, key)
                XCTAssertTrue("\(error)".contains(quoted) && "\(error)".contains(key), "\(error)")
            }
        }
    }

    func testConfigurationAcceptsHuggingFaceVariants() throws {
        // pos_att_type as a `|` string (older configs), hidden_act aliases.
        var deberta = try config("deberta-v3")
        deberta["pos_att_type"] = "P2C | c2p"
        let encoder = try TextEncoders.build(configJSON: try json(deberta), rng: RandomSource(seed: 1))
        XCTAssertEqual((encoder as? DebertaV2Encoder)?.configuration.positionAttentionTypes, ["p2c", "c2p"])
        for act in ["gelu_new", "gelu_pytorch_tanh", "relu", "silu", "swish", "gelu"] {
            var bert = try config("bert")
            bert["hidden_act"] = act
            XCTAssertNoThrow(try TextEncoders.build(configJSON: try json(bert), rng: RandomSource(seed: 1)), act)
        }
    }

    // MARK: - Weight errors

    func testShapeMismatchNamesKeyAndShapes() throws {
        let (data, tensors) = try TextFixtures.checkpoint(at: try TextFixtures.checkpointFolder("xlm-roberta"))
        var bad = tensors
        bad["roberta.encoder.layer.1.attention.self.query.weight"] = Tensor.zeros([32, 31])
        XCTAssertThrowsError(try TextEncoders.load(configJSON: data, tensors: bad, rng: RandomSource(seed: 1))) { error in
            XCTAssertEqual(error as? TextEncoderError,
                           .shapeMismatch(key: "roberta.encoder.layer.1.attention.self.query.weight", model: [32, 32], checkpoint: [32, 31]))
            XCTAssertTrue("\(error)".contains("[32, 32]") && "\(error)".contains("[32, 31]"), "\(error)")
        }
    }

    func testMissingAndUnexpectedTensors() throws {
        let (data, tensors) = try TextFixtures.checkpoint(at: try TextFixtures.checkpointFolder("mpnet"))
        var missing = tensors
        missing.removeValue(forKey: "encoder.relative_attention_bias.weight")
        XCTAssertThrowsError(try TextEncoders.load(configJSON: data, tensors: missing, rng: RandomSource(seed: 1))) { error in
            XCTAssertEqual(error as? TextEncoderError, .missingWeights(keys: ["encoder.relative_attention_bias.weight"]))
        }
        var extra = tensors
        extra["encoder.layer.7.attention.attn.q.weight"] = Tensor.zeros([32, 32])
        XCTAssertThrowsError(try TextEncoders.load(configJSON: data, tensors: extra, rng: RandomSource(seed: 1))) { error in
            XCTAssertEqual(error as? TextEncoderError, .unexpectedWeights(keys: ["encoder.layer.7.attention.attn.q.weight"]))
        }
        // A checkpoint of another family: everything is missing.
        let (_, bertTensors) = try TextFixtures.checkpoint(at: try TextFixtures.checkpointFolder("distilbert"))
        XCTAssertThrowsError(try TextEncoders.load(configJSON: data, tensors: bertTensors, rng: RandomSource(seed: 1))) { error in
            guard case .missingWeights(let keys) = error as? TextEncoderError else { return XCTFail("\(error)") }
            XCTAssertTrue(keys.contains("encoder.layer.0.attention.attn.q.weight"))
        }
    }

    /// TensorFlow-era BERT checkpoints: `bert.` prefix, LayerNorm `gamma` / `beta`, MLM head.
    func testLegacyBertNames() throws {
        let (data, tensors) = try TextFixtures.checkpoint(at: try TextFixtures.checkpointFolder("bert"))
        var legacy: [String: Tensor] = [:]
        for (key, t) in tensors {
            var name = "bert." + key
            if name.hasSuffix("LayerNorm.weight") { name = String(name.dropLast("weight".count)) + "gamma" }
            if name.hasSuffix("LayerNorm.bias") { name = String(name.dropLast("bias".count)) + "beta" }
            legacy[name] = t
        }
        legacy["cls.predictions.bias"] = Tensor.zeros([80])
        let loaded = try TextEncoders.load(configJSON: data, tensors: legacy, rng: RandomSource(seed: 1))
        XCTAssertEqual(loaded.report.strippedPrefix, "bert.")
        XCTAssertTrue(loaded.report.ignoredKeys.contains("cls.predictions.bias"))
        let reference = try TextFixtures.load("bert").encoder
        XCTAssertEqual(loaded.encoder.namedParameters().map { $0.tensor.toArray() }, reference.namedParameters().map { $0.tensor.toArray() })
    }

    /// A failed load leaves the model as it was.
    func testFailedLoadChangesNothing() throws {
        let (data, tensors) = try TextFixtures.checkpoint(at: try TextFixtures.checkpointFolder("bert"))
        let encoder = try TextEncoders.build(configJSON: data, rng: RandomSource(seed: 3))
        let before = encoder.namedParameters().map { $0.tensor.toArray() }
        var bad = tensors
        bad["encoder.layer.1.output.dense.bias"] = Tensor.zeros([31])
        XCTAssertThrowsError(try TextEncoders.load(tensors: bad, into: encoder))
        XCTAssertEqual(encoder.namedParameters().map { $0.tensor.toArray() }, before)
    }

    func testBadFolders() throws {
        let temp = FileManager.default.temporaryDirectory.appendingPathComponent("runpipe-text-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: temp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: temp) }
        let source = try TextFixtures.checkpointFolder("bert")

        XCTAssertThrowsError(try TextEncoders.load(folder: temp.appendingPathComponent("absent"), rng: RandomSource(seed: 1))) { error in
            guard case .fileNotFound = error as? CheckpointError else { return XCTFail("\(error)") }
        }
        // Config but no weights.
        try FileManager.default.copyItem(at: source.appendingPathComponent("config.json"), to: temp.appendingPathComponent("config.json"))
        XCTAssertThrowsError(try TextEncoders.load(folder: temp, rng: RandomSource(seed: 1))) { error in
            guard case .noWeights = error as? CheckpointError else { return XCTFail("\(error)") }
        }
        // Weights but no config.
        try FileManager.default.removeItem(at: temp.appendingPathComponent("config.json"))
        try FileManager.default.copyItem(at: source.appendingPathComponent("model.safetensors"),
                                         to: temp.appendingPathComponent("model.safetensors"))
        XCTAssertThrowsError(try TextEncoders.load(folder: temp, rng: RandomSource(seed: 1))) { error in
            guard case .missingConfiguration = error as? TextEncoderError else { return XCTFail("\(error)") }
        }
        // A config of another family than the weights: strict loading names the first missing keys.
        try FileManager.default.copyItem(at: try TextFixtures.checkpointFolder("distilbert").appendingPathComponent("config.json"),
                                         to: temp.appendingPathComponent("config.json"))
        XCTAssertThrowsError(try TextEncoders.load(folder: temp, rng: RandomSource(seed: 1))) { error in
            guard case .missingWeights(let keys) = error as? TextEncoderError else { return XCTFail("\(error)") }
            XCTAssertTrue(keys.contains("transformer.layer.0.attention.q_lin.weight"), "\(keys)")
        }
    }

    // MARK: - Bad batches and arguments

    func testBadBatchesAreTypedErrors() throws {
        let encoder = try TextFixtures.load("roberta").encoder
        let cases: [(TokenBatch, String)] = [
            (TokenBatch(batch: 1, tokens: 3, ids: [5, 6]), "needs 3 values"),
            (TokenBatch(batch: 1, tokens: 2, ids: [5, 80]), "outside the vocabulary"),
            (TokenBatch(batch: 1, tokens: 2, ids: [5, -1]), "outside the vocabulary"),
            (TokenBatch(batch: 1, tokens: 2, ids: [5, 6], typeIds: [0, 1]), "token type id 1"),
            (TokenBatch(batch: 1, tokens: 2, ids: [5, 6], attentionMask: [1, 2]), "neither 0 nor 1"),
            (TokenBatch(batch: 1, tokens: 23, ids: [Int32](repeating: 5, count: 23)), "exceeds the model's 24 positions"),
        ]
        for (batch, message) in cases {
            XCTAssertThrowsError(try encoder.embed(batch), message) { error in
                guard case .invalidBatch(let detail) = error as? TextEncoderError else { return XCTFail("\(error)") }
                XCTAssertTrue(detail.contains(message), "\(detail)")
            }
        }
        let ok = TokenBatch(batch: 1, tokens: 3, ids: [5, 6, 7])
        let hidden = try encoder.embed(ok)
        XCTAssertThrowsError(try encoder.encode(hidden, batch: ok, layers: 1..<3))
        XCTAssertThrowsError(try encoder.encode(hidden, batch: TokenBatch(batch: 1, tokens: 2, ids: [5, 6]), layers: 0..<1))
        XCTAssertThrowsError(try pool(hidden, batch: TokenBatch(batch: 2, tokens: 3, ids: [Int32](repeating: 5, count: 6)), .mean))
    }

    /// Mean pooling ignores padding completely: padding a row further changes nothing.
    func testPoolingIgnoresPadding() throws {
        for family in ["bert", "mpnet", "deberta-v3"] {
            let encoder = try TextFixtures.load(family).encoder
            let pad: Int32 = family == "mpnet" ? 1 : 0
            let short = TokenBatch(batch: 1, tokens: 4, ids: [3, 10, 11, 4])
            let long = TokenBatch(batch: 1, tokens: 7, ids: [3, 10, 11, 4, pad, pad, pad], attentionMask: [1, 1, 1, 1, 0, 0, 0])
            for pooling in TextPooling.allCases {
                let a = try withNoGrad { try pool(try encoder(short), batch: short, pooling) }
                let b = try withNoGrad { try pool(try encoder(long), batch: long, pooling) }
                assertTensorsClose(b, a, atol: 1e-5, "\(family) \(pooling) pooling with extra padding")
            }
        }
    }
}
