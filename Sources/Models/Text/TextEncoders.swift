// The registry of text encoder families, keyed by config.json's `model_type`, and strict weight
// loading: every parameter set, every checkpoint tensor used or explicitly ignored, shapes equal.
import Checkpoints
import Foundation
import Layers
import TensorEngine

/// What loading a checkpoint into an encoder did.
public struct WeightLoadReport: Sendable, Equatable {
    /// The family prefix stripped from checkpoint keys (`bert.`, `roberta.`, …), or nil when the
    /// keys had none.
    public var strippedPrefix: String?
    /// How many model tensors were set.
    public var loadedCount: Int
    /// Checkpoint keys deliberately not loaded (position-id buffers, the pooler, MLM/LM and
    /// classification heads, …), sorted.
    public var ignoredKeys: [String]
}

/// An encoder together with the report of the weights it was loaded from.
public struct LoadedTextEncoder {
    public let encoder: any TextEncoder
    public let report: WeightLoadReport
}

/// The text encoder families runpipe implements, by `model_type`.
public enum TextEncoders {
    struct Family {
        /// Decodes config.json and builds the encoder with fresh weights.
        let build: (Data, RandomSource) throws -> any TextEncoder
        /// The prefix task models put before the encoder's keys (`BertForSequenceClassification`
        /// stores `bert.embeddings…`).
        let prefix: String
        /// Key prefixes (after the family prefix is stripped) of tensors that may sit in the
        /// checkpoint but are not part of this encoder.
        let ignoredPrefixes: [String]
    }

    /// Buffers and heads any family's checkpoint may carry.
    static let commonIgnored = [
        "embeddings.position_ids", "embeddings.token_type_ids",
        "pooler.", "cls.", "lm_head.", "classifier.", "qa_outputs.",
    ]

    static let families: [String: Family] = [
        "bert": Family(build: { data, rng in
            try BertEncoder(try TextConfigDecoding.decode(BertConfiguration.self, from: data, modelType: "bert"), rng: rng)
        }, prefix: "bert.", ignoredPrefixes: commonIgnored),
        "roberta": Family(build: { data, rng in
            try BertEncoder(roberta: try TextConfigDecoding.decode(RobertaConfiguration.self, from: data, modelType: "roberta"),
                            modelType: "roberta", rng: rng)
        }, prefix: "roberta.", ignoredPrefixes: commonIgnored),
        "xlm-roberta": Family(build: { data, rng in
            try BertEncoder(roberta: try TextConfigDecoding.decode(RobertaConfiguration.self, from: data, modelType: "xlm-roberta"),
                            modelType: "xlm-roberta", rng: rng)
        }, prefix: "roberta.", ignoredPrefixes: commonIgnored),
        "electra": Family(build: { data, rng in
            try BertEncoder(electra: try TextConfigDecoding.decode(ElectraConfiguration.self, from: data, modelType: "electra"), rng: rng)
        }, prefix: "electra.",
           ignoredPrefixes: commonIgnored + ["discriminator_predictions.", "generator_predictions.", "generator_lm_head."]),
        "distilbert": Family(build: { data, rng in
            try DistilBertEncoder(try TextConfigDecoding.decode(DistilBertConfiguration.self, from: data, modelType: "distilbert"), rng: rng)
        }, prefix: "distilbert.",
           ignoredPrefixes: commonIgnored + ["vocab_transform.", "vocab_layer_norm.", "vocab_projector.", "pre_classifier."]),
        "mpnet": Family(build: { data, rng in
            try MPNetEncoder(try TextConfigDecoding.decode(MPNetConfiguration.self, from: data, modelType: "mpnet"), rng: rng)
        }, prefix: "mpnet.", ignoredPrefixes: commonIgnored),
        "deberta-v2": Family(build: { data, rng in
            try DebertaV2Encoder(try TextConfigDecoding.decode(DebertaV2Configuration.self, from: data, modelType: "deberta-v2"), rng: rng)
        }, prefix: "deberta.",
           // `transformers` also drops absolute position embeddings a checkpoint keeps although
           // `position_biased_input` is false (they are loaded when the model has them).
           ignoredPrefixes: commonIgnored + ["lm_predictions.", "mask_predictions.", "embeddings.position_embeddings."]),
    ]

    /// Every `model_type` with an encoder, sorted.
    public static var supportedModelTypes: [String] { families.keys.sorted() }

    /// The `model_type` a config.json names (nil when it names none).
    public static func modelType(ofConfig data: Data) throws -> String? {
        struct Header: Decodable {
            let modelType: String?
            enum CodingKeys: String, CodingKey { case modelType = "model_type" }
        }
        return try TextConfigDecoding.decode(Header.self, from: data, modelType: "config.json").modelType
    }

    /// Builds the encoder config.json describes, with freshly initialised weights (training mode).
    /// Throws `TextEncoderError.unsupportedModelType` listing the supported types, or the
    /// family's configuration error naming the key.
    public static func build(configJSON: Data, rng: RandomSource) throws -> any TextEncoder {
        try family(ofConfig: configJSON).build(configJSON, rng)
    }

    static func family(ofConfig data: Data) throws -> Family {
        let type = try modelType(ofConfig: data)
        guard let type, let family = families[type] else {
            throw TextEncoderError.unsupportedModelType(type, supported: supportedModelTypes)
        }
        return family
    }

    /// Copies `tensors` (a checkpoint's, by key) into `encoder`'s parameters, strictly.
    ///
    /// Keys may carry the family's prefix (`bert.`, `roberta.`, `electra.`, `distilbert.`,
    /// `mpnet.`, `deberta.`) or none; legacy LayerNorm names `gamma` / `beta` are read as
    /// `weight` / `bias`. Every parameter must be provided with its exact shape;
    /// every tensor must be used or be one the family knows to ignore (position-id buffers,
    /// the pooler, pre-training and task heads), which the report lists. Otherwise throws
    /// `TextEncoderError.shapeMismatch` (naming the checkpoint key and both shapes),
    /// `.missingWeights` or `.unexpectedWeights`, and leaves the parameters untouched.
    @discardableResult
    public static func load(tensors: [String: Tensor], into encoder: any TextEncoder) throws -> WeightLoadReport {
        guard let family = families[encoder.modelType] else {
            throw TextEncoderError.unsupportedModelType(encoder.modelType, supported: supportedModelTypes)
        }
        let state = encoder.stateDict()
        let modelShapes = Dictionary(state.map { ($0.key, $0.tensor.shape) }, uniquingKeysWith: { a, _ in a })
        var mapped: [String: (source: String, tensor: Tensor)] = [:]
        var ignored: [String] = [], unexpected: [String] = []
        var sawPrefix = false
        for key in tensors.keys.sorted() {
            guard let tensor = tensors[key] else { continue }
            var stripped = key.hasPrefix(family.prefix) ? String(key.dropFirst(family.prefix.count)) : key
            if stripped != key { sawPrefix = true }
            if modelShapes[stripped] == nil, let renamed = legacyNormName(stripped), modelShapes[renamed] != nil {
                stripped = renamed
            }
            if modelShapes[stripped] != nil {
                if mapped[stripped] != nil {
                    // Both `bert.x` and `x`: the second is reported rather than silently dropped.
                    unexpected.append(key)
                    continue
                }
                mapped[stripped] = (key, tensor)
            } else if family.ignoredPrefixes.contains(where: { stripped.hasPrefix($0) }) {
                ignored.append(key)
            } else {
                unexpected.append(key)
            }
        }
        for (key, shape) in modelShapes.sorted(by: { $0.key < $1.key }) {
            if let source = mapped[key], source.tensor.shape != shape {
                throw TextEncoderError.shapeMismatch(key: source.source, model: shape, checkpoint: source.tensor.shape)
            }
        }
        let missing = modelShapes.keys.filter { mapped[$0] == nil }.sorted()
        if !missing.isEmpty { throw TextEncoderError.missingWeights(keys: missing) }
        if !unexpected.isEmpty { throw TextEncoderError.unexpectedWeights(keys: unexpected.sorted()) }
        // Copied straight into the parameters (no intermediate clone: a checkpoint's tensors are
        // contiguous, and a second copy of a large model would raise peak memory).
        for (key, target) in state {
            guard let source = mapped[key]?.tensor else { continue }
            let contiguous = source.isContiguous ? source : source.clone()
            withExtendedLifetime(contiguous) { target.data.update(from: contiguous.data, count: target.count) }
        }
        return WeightLoadReport(strippedPrefix: sawPrefix ? family.prefix : nil, loadedCount: mapped.count,
                                ignoredKeys: ignored.sorted())
    }

    /// Builds the encoder a checkpoint's config.json describes and loads `tensors` into it
    /// strictly (see `load(tensors:into:)`); the encoder is returned in evaluation mode, as
    /// `transformers`' `from_pretrained` does.
    public static func load(configJSON: Data, tensors: [String: Tensor], rng: RandomSource) throws -> LoadedTextEncoder {
        let encoder = try build(configJSON: configJSON, rng: rng)
        let report = try load(tensors: tensors, into: encoder)
        encoder.eval()
        return LoadedTextEncoder(encoder: encoder, report: report)
    }

    /// Old (TensorFlow-converted) BERT checkpoints name LayerNorm parameters `gamma` and `beta`;
    /// `transformers` reads them as `weight` and `bias`.
    static func legacyNormName(_ key: String) -> String? {
        if key.hasSuffix(".gamma") { return String(key.dropLast("gamma".count)) + "weight" }
        if key.hasSuffix(".beta") { return String(key.dropLast("beta".count)) + "bias" }
        return nil
    }

    /// Builds and loads the encoder in a Hugging Face checkpoint folder (config.json plus
    /// weights in any format `CheckpointFolder` reads), strictly (see `load(tensors:into:)`), in
    /// evaluation mode.
    ///
    /// Throws `CheckpointError` when the folder or its weights cannot be read,
    /// `TextEncoderError.missingConfiguration` without a config.json, and the registry's and
    /// loader's `TextEncoderError`s otherwise.
    public static func load(folder: URL, rng: RandomSource) throws -> any TextEncoder {
        try loadWithReport(folder: folder, rng: rng).encoder
    }

    /// `load(folder:rng:)`, also returning what was loaded and which tensors were ignored.
    public static func loadWithReport(folder: URL, rng: RandomSource) throws -> LoadedTextEncoder {
        let checkpoint = try CheckpointFolder(folder)
        guard let config = try checkpoint.configData() else {
            throw TextEncoderError.missingConfiguration(folder: checkpoint.root.path)
        }
        // Decode the configuration before reading (possibly large) weights.
        let encoder = try build(configJSON: config, rng: rng)
        let report = try load(tensors: try checkpoint.loadTensors(), into: encoder)
        encoder.eval()
        return LoadedTextEncoder(encoder: encoder, report: report)
    }
}
