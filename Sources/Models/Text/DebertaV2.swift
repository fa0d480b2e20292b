// DeBERTa-v2 and -v3 (`model_type: deberta-v2`): disentangled attention. Besides content-to-
// content scores, each head scores content against relative-position embeddings (c2p: queries
// against projected position keys; p2c: keys against projected position queries), gathered by
// the (optionally log-bucketed) relative distance of each query/key pair and added to the
// scores, all divided by √(D · (1 + number of position terms)).
// Reference: transformers/models/deberta_v2/modeling_deberta_v2.py (`DebertaV2Model`,
// `DisentangledSelfAttention`, `make_log_bucket_position`, `build_relative_position`).
//
// Keys: `embeddings.{word_embeddings,position_embeddings?,token_type_embeddings?,embed_proj?,LayerNorm}`,
// `encoder.rel_embeddings`, `encoder.LayerNorm` (when `norm_rel_ebd` has `layer_norm`),
// `encoder.layer.N.attention.self.{query_proj,key_proj,value_proj,pos_key_proj?,pos_query_proj?}`,
// `…attention.output.{dense,LayerNorm}`, `…intermediate.dense`, `…output.{dense,LayerNorm}`.
// The v2-xlarge convolution (`conv_kernel_size > 0`) is not implemented and is rejected by name.
import Foundation
import Layers
import TensorEngine

// MARK: - Configuration

/// DeBERTa-v2's config.json, with `transformers`' defaults for absent keys.
public struct DebertaV2Configuration: Codable, Sendable, Equatable {
    public var vocabularySize: Int = 128100
    public var hiddenSize: Int = 1536
    public var layers: Int = 24
    public var heads: Int = 24
    public var intermediateSize: Int = 6144
    public var hiddenAct: String = "gelu"
    public var hiddenDropout: Float = 0.1
    public var attentionDropout: Float = 0.1
    public var maxPositions: Int = 512
    public var typeVocabularySize: Int = 0
    public var layerNormEps: Float = 1e-7
    public var relativeAttention: Bool = false
    /// < 1 means `max_position_embeddings`.
    public var maxRelativePositions: Int = -1
    public var positionBiasedInput: Bool = true
    /// Lower-cased `pos_att_type` entries (`c2p`, `p2c`); config.json may hold a list or a
    /// `|`-separated string.
    public var positionAttentionTypes: [String] = []
    /// ≤ 0 means no log bucketing.
    public var positionBuckets: Int = -1
    public var shareAttentionKey: Bool = false
    /// `norm_rel_ebd` entries (`none`, `layer_norm`).
    public var relativeEmbeddingNorm: [String] = ["none"]
    public var convKernelSize: Int = 0
    /// nil means `hidden_size`.
    public var embeddingSize: Int?
    /// nil means `hidden_size / num_attention_heads`.
    public var attentionHeadSize: Int?

    enum CodingKeys: String, CodingKey {
        case vocabularySize = "vocab_size"
        case hiddenSize = "hidden_size"
        case layers = "num_hidden_layers"
        case heads = "num_attention_heads"
        case intermediateSize = "intermediate_size"
        case hiddenAct = "hidden_act"
        case hiddenDropout = "hidden_dropout_prob"
        case attentionDropout = "attention_probs_dropout_prob"
        case maxPositions = "max_position_embeddings"
        case typeVocabularySize = "type_vocab_size"
        case layerNormEps = "layer_norm_eps"
        case relativeAttention = "relative_attention"
        case maxRelativePositions = "max_relative_positions"
        case positionBiasedInput = "position_biased_input"
        case positionAttentionTypes = "pos_att_type"
        case positionBuckets = "position_buckets"
        case shareAttentionKey = "share_att_key"
        case relativeEmbeddingNorm = "norm_rel_ebd"
        case convKernelSize = "conv_kernel_size"
        case embeddingSize = "embedding_size"
        case attentionHeadSize = "attention_head_size"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = DebertaV2Configuration()
        vocabularySize = try c.value(.vocabularySize, default: d.vocabularySize)
        hiddenSize = try c.value(.hiddenSize, default: d.hiddenSize)
        layers = try c.value(.layers, default: d.layers)
        heads = try c.value(.heads, default: d.heads)
        intermediateSize = try c.value(.intermediateSize, default: d.intermediateSize)
        hiddenAct = try c.value(.hiddenAct, default: d.hiddenAct)
        hiddenDropout = try c.value(.hiddenDropout, default: d.hiddenDropout)
        attentionDropout = try c.value(.attentionDropout, default: d.attentionDropout)
        maxPositions = try c.value(.maxPositions, default: d.maxPositions)
        typeVocabularySize = try c.value(.typeVocabularySize, default: d.typeVocabularySize)
        layerNormEps = try c.value(.layerNormEps, default: d.layerNormEps)
        relativeAttention = try c.value(.relativeAttention, default: d.relativeAttention)
        maxRelativePositions = try c.value(.maxRelativePositions, default: d.maxRelativePositions)
        positionBiasedInput = try c.value(.positionBiasedInput, default: d.positionBiasedInput)
        positionAttentionTypes = try Self.bars(c, .positionAttentionTypes) ?? d.positionAttentionTypes
        positionBuckets = try c.value(.positionBuckets, default: d.positionBuckets)
        shareAttentionKey = try c.value(.shareAttentionKey, default: d.shareAttentionKey)
        relativeEmbeddingNorm = try Self.bars(c, .relativeEmbeddingNorm) ?? d.relativeEmbeddingNorm
        convKernelSize = try c.value(.convKernelSize, default: d.convKernelSize)
        embeddingSize = try c.decodeIfPresent(Int.self, forKey: .embeddingSize)
        attentionHeadSize = try c.decodeIfPresent(Int.self, forKey: .attentionHeadSize)
    }

    /// A list of strings, or one string of `|`-separated entries; lower-cased and trimmed.
    private static func bars(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> [String]? {
        if try c.decodeNil(forKey: key) { return nil }
        let entries: [String]
        if let list = try? c.decode([String].self, forKey: key) {
            entries = list
        } else if let text = try c.decodeIfPresent(String.self, forKey: key) {
            entries = text.split(separator: "|").map(String.init)
        } else {
            return nil
        }
        return entries.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(vocabularySize, forKey: .vocabularySize)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(layers, forKey: .layers)
        try c.encode(heads, forKey: .heads)
        try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(hiddenAct, forKey: .hiddenAct)
        try c.encode(hiddenDropout, forKey: .hiddenDropout)
        try c.encode(attentionDropout, forKey: .attentionDropout)
        try c.encode(maxPositions, forKey: .maxPositions)
        try c.encode(typeVocabularySize, forKey: .typeVocabularySize)
        try c.encode(layerNormEps, forKey: .layerNormEps)
        try c.encode(relativeAttention, forKey: .relativeAttention)
        try c.encode(maxRelativePositions, forKey: .maxRelativePositions)
        try c.encode(positionBiasedInput, forKey: .positionBiasedInput)
        try c.encode(positionAttentionTypes, forKey: .positionAttentionTypes)
        try c.encode(positionBuckets, forKey: .positionBuckets)
        try c.encode(shareAttentionKey, forKey: .shareAttentionKey)
        try c.encode(relativeEmbeddingNorm.joined(separator: "|"), forKey: .relativeEmbeddingNorm)
        try c.encode(convKernelSize, forKey: .convKernelSize)
        try c.encodeIfPresent(embeddingSize, forKey: .embeddingSize)
        try c.encodeIfPresent(attentionHeadSize, forKey: .attentionHeadSize)
    }

    var usesC2P: Bool { positionAttentionTypes.contains("c2p") }
    var usesP2C: Bool { positionAttentionTypes.contains("p2c") }
    var normalisesRelativeEmbeddings: Bool { relativeEmbeddingNorm.contains("layer_norm") }
    /// Relative positions each side (`max_relative_positions`, or `max_position_embeddings` when < 1).
    var maxRelative: Int { maxRelativePositions < 1 ? maxPositions : maxRelativePositions }
    /// Half the rows of `rel_embeddings`: the bucket count when bucketing, else `maxRelative`.
    var attentionSpan: Int { positionBuckets > 0 ? positionBuckets : maxRelative }

    /// Throws `TextEncoderError` naming the first invalid or unsupported key.
    func validate() throws -> ConfigCheck {
        let check = ConfigCheck(modelType: "deberta-v2")
        try check.positive(vocabularySize, "vocab_size")
        try check.positive(hiddenSize, "hidden_size")
        try check.positive(layers, "num_hidden_layers")
        try check.divisible(hiddenSize, "hidden_size", by: heads, "num_attention_heads")
        try check.positive(intermediateSize, "intermediate_size")
        try check.positive(maxPositions, "max_position_embeddings")
        try check.nonNegative(typeVocabularySize, "type_vocab_size")
        try check.probability(hiddenDropout, "hidden_dropout_prob")
        try check.probability(attentionDropout, "attention_probs_dropout_prob")
        try check.epsilon(layerNormEps, "layer_norm_eps")
        if let embeddingSize { try check.positive(embeddingSize, "embedding_size") }
        if convKernelSize > 0 {
            throw TextEncoderError.unsupportedOption(modelType: "deberta-v2", option: "conv_kernel_size",
                                                     value: "\(convKernelSize) (the convolution layer of DeBERTa-v2 xlarge/xxlarge)")
        }
        if let size = attentionHeadSize, size * heads != hiddenSize {
            throw TextEncoderError.unsupportedOption(modelType: "deberta-v2", option: "attention_head_size",
                                                     value: "\(size) (only num_attention_heads × attention_head_size = hidden_size)")
        }
        for type in positionAttentionTypes where !["c2p", "p2c", "none"].contains(type) {
            throw TextEncoderError.unsupportedOption(modelType: "deberta-v2", option: "pos_att_type",
                                                     value: "'\(type)' (supported: c2p, p2c)")
        }
        for norm in relativeEmbeddingNorm where !["none", "layer_norm"].contains(norm) {
            throw TextEncoderError.unsupportedOption(modelType: "deberta-v2", option: "norm_rel_ebd",
                                                     value: "'\(norm)' (supported: none, layer_norm)")
        }
        if relativeAttention, positionBuckets > 0, maxRelative <= positionBuckets / 2 + 1 {
            throw TextEncoderError.invalidConfiguration(modelType: "deberta-v2", key: "max_relative_positions",
                                                        reason: "(\(maxRelative)) must exceed position_buckets / 2 + 1 for log bucketing")
        }
        return check
    }
}

// MARK: - Relative positions

enum DebertaRelativePositions {
    /// DeBERTa's log bucket of a relative position: exact within ±bucketSize/2, then
    /// logarithmic so that `maxPosition` maps to the last bucket; sign kept.
    static func logBucket(_ relative: Int, bucketSize: Int, maxPosition: Int) -> Int {
        let mid = bucketSize / 2
        let magnitude = (relative < mid && relative > -mid) ? mid - 1 : Swift.abs(relative)
        if magnitude <= mid { return relative }
        let scaled = Foundation.log(Double(magnitude) / Double(mid)) / Foundation.log(Double(maxPosition - 1) / Double(mid))
        let position = Int((scaled * Double(mid - 1)).rounded(.up)) + mid
        return relative > 0 ? position : -position
    }

    /// Relative position of query i to key j (i − j), bucketed when `buckets > 0`.
    static func relative(_ i: Int, _ j: Int, buckets: Int, maxPosition: Int) -> Int {
        buckets > 0 && maxPosition > 0 ? logBucket(i - j, bucketSize: buckets, maxPosition: maxPosition) : i - j
    }

    /// Row-major [T, T] indices into the 2·span relative embeddings: c2p's at (i, j) is
    /// `clamp(rel(i, j) + span)`, p2c's at (j, i) is `clamp(−rel(j, i) + span)` (for the
    /// key-side product that `relativePositionScores(transposed:)` turns around).
    static func indices(tokens t: Int, span: Int, buckets: Int, maxPosition: Int) -> (c2p: [Int32], p2c: [Int32]) {
        var c2p = [Int32](repeating: 0, count: t * t), p2c = [Int32](repeating: 0, count: t * t)
        let top = 2 * span - 1
        for a in 0..<t {
            for b in 0..<t {
                let r = relative(a, b, buckets: buckets, maxPosition: maxPosition)
                c2p[a * t + b] = Int32(Swift.min(Swift.max(r + span, 0), top))
                p2c[a * t + b] = Int32(Swift.min(Swift.max(-r + span, 0), top))
            }
        }
        return (c2p, p2c)
    }
}

// MARK: - Embeddings

/// word (+ position) (+ token type) embeddings → `embed_proj` (when `embedding_size` differs)
/// → LayerNorm → × attention mask → dropout.
final class DebertaEmbeddings: Module {
    let words: Embedding
    let positions: Embedding?
    let types: Embedding?
    let projection: Linear?
    let norm: LayerNorm
    let dropout: Dropout

    init(_ c: DebertaV2Configuration, rng: RandomSource) {
        let width = c.embeddingSize ?? c.hiddenSize
        words = Embedding(c.vocabularySize, width, rng: rng)
        positions = c.positionBiasedInput ? Embedding(c.maxPositions, width, rng: rng) : nil
        types = c.typeVocabularySize > 0 ? Embedding(c.typeVocabularySize, width, rng: rng) : nil
        projection = width != c.hiddenSize ? Linear(width, c.hiddenSize, bias: false, rng: rng) : nil
        norm = LayerNorm(c.hiddenSize, eps: c.layerNormEps)
        dropout = Dropout(c.hiddenDropout, rng: rng)
        super.init()
        register(child: "word_embeddings", words)
        if let positions { register(child: "position_embeddings", positions) }
        if let types { register(child: "token_type_embeddings", types) }
        if let projection { register(child: "embed_proj", projection) }
        register(child: "LayerNorm", norm)
        register(child: "dropout", dropout)
    }

    func callAsFunction(_ batch: TokenBatch, maxPositions: Int) throws -> Tensor {
        try batch.validate(vocabulary: words.weight.shape[0], typeVocabulary: types?.weight.shape[0])
        let shape = [batch.batch, batch.tokens]
        let positionIds = try batch.sequentialPositions(maxPositions: maxPositions)
        var sum = try words(batch.intIds, shape: shape)
        if let positions { sum = try add(sum, try positions(positionIds, shape: shape)) }
        if let types { sum = try add(sum, try types(batch.intTypeIds, shape: shape)) }
        if let projection { sum = try projection(sum) }
        var out = try norm(sum)
        if batch.attentionMask.contains(0) { out = try mul(out, try batch.maskColumn()) }
        return try dropout(out)
    }
}

// MARK: - Layers

/// Per-batch state every layer reads: the additive [B, T, T] mask, the (normalised) relative
/// embeddings and the gather indices.
struct DebertaContext {
    let mask: Tensor?
    let relativeEmbeddings: Tensor?
    let c2p: [Int32]
    let p2c: [Int32]
}

final class DebertaLayer: Module {
    let query: Linear, key: Linear, value: Linear
    let positionKey: Linear?, positionQuery: Linear?
    let attentionOutput: Linear
    let attentionNorm: LayerNorm
    let intermediate: Linear
    let output: Linear
    let outputNorm: LayerNorm
    let dropout: Dropout
    let positionDropout: Dropout
    let heads: Int
    let headSize: Int
    let attentionDropout: Float
    let activation: Activation
    let relative: Bool
    let c2p: Bool, p2c: Bool
    let shareKey: Bool
    let rng: RandomSource

    init(_ c: DebertaV2Configuration, activation: Activation, rng: RandomSource) {
        let h = c.hiddenSize
        heads = c.heads
        headSize = c.attentionHeadSize ?? h / c.heads
        let all = heads * headSize
        query = Linear(h, all, rng: rng)
        key = Linear(h, all, rng: rng)
        value = Linear(h, all, rng: rng)
        relative = c.relativeAttention
        c2p = c.usesC2P
        p2c = c.usesP2C
        shareKey = c.shareAttentionKey
        positionKey = relative && !shareKey && c2p ? Linear(h, all, rng: rng) : nil
        positionQuery = relative && !shareKey && p2c ? Linear(h, all, rng: rng) : nil
        attentionOutput = Linear(h, h, rng: rng)
        attentionNorm = LayerNorm(h, eps: c.layerNormEps)
        intermediate = Linear(h, c.intermediateSize, rng: rng)
        output = Linear(c.intermediateSize, h, rng: rng)
        outputNorm = LayerNorm(h, eps: c.layerNormEps)
        dropout = Dropout(c.hiddenDropout, rng: rng)
        positionDropout = Dropout(c.hiddenDropout, rng: rng)
        attentionDropout = c.attentionDropout
        self.activation = activation
        self.rng = rng
        super.init()
        register(child: "attention.self.query_proj", query)
        register(child: "attention.self.key_proj", key)
        register(child: "attention.self.value_proj", value)
        if let positionKey { register(child: "attention.self.pos_key_proj", positionKey) }
        if let positionQuery { register(child: "attention.self.pos_query_proj", positionQuery) }
        register(child: "attention.output.dense", attentionOutput)
        register(child: "attention.output.LayerNorm", attentionNorm)
        register(child: "intermediate.dense", intermediate)
        register(child: "output.dense", output)
        register(child: "output.LayerNorm", outputNorm)
        register(child: "dropout", dropout)
        register(child: "pos_dropout", positionDropout)
    }

    func callAsFunction(_ x: Tensor, _ context: DebertaContext) throws -> Tensor {
        let q = try query(x), k = try key(x), v = try value(x)
        let factor = 1 + (c2p ? 1 : 0) + (p2c ? 1 : 0)
        let scale = 1 / (Float(headSize) * Float(factor)).squareRoot()
        var bias: Tensor? = nil
        if relative, let embeddings = context.relativeEmbeddings {
            let r = try positionDropout(embeddings)
            if c2p {
                let projected = try (shareKey ? key : positionKey ?? key)(r)
                bias = try relativePositionScores(q, positions: projected, heads: heads, index: context.c2p, scale: scale)
            }
            if p2c {
                let projected = try (shareKey ? query : positionQuery ?? query)(r)
                let term = try relativePositionScores(k, positions: projected, heads: heads, index: context.p2c,
                                                      scale: scale, transposed: true)
                bias = try bias.map { try add($0, term) } ?? term
            }
        }
        let attended = try attention(query: q, key: k, value: v, heads: heads, mask: context.mask, bias: bias, scale: scale,
                                     dropout: attentionDropout, training: isTraining, rng: &rng.generator)
        let h = try attentionNorm(try add(try dropout(try attentionOutput(attended)), x))
        let inner = try activation.apply(try intermediate(h))
        return try outputNorm(try add(try dropout(try output(inner)), h))
    }
}

// MARK: - Model

/// DeBERTa-v2/v3's encoder (`DebertaV2Model`). The relative embeddings (normalised when
/// `norm_rel_ebd` says so), the bucketed relative positions and the query/key mask are rebuilt
/// from the batch inside `encode`, so running the top layers alone matches the full pass.
public final class DebertaV2Encoder: Module, TextEncoder {
    public let shape: TextEncoderShape
    public var modelType: String { "deberta-v2" }
    public let configuration: DebertaV2Configuration
    let embeddings: DebertaEmbeddings
    let layers: [DebertaLayer]
    let relativeEmbeddings: Embedding?
    let relativeNorm: LayerNorm?

    /// A DeBERTa-v2 encoder with freshly initialised weights.
    public init(_ c: DebertaV2Configuration, rng: RandomSource) throws {
        let check = try c.validate()
        let activation = try check.activation(c.hiddenAct, "hidden_act")
        configuration = c
        shape = TextEncoderShape(hidden: c.hiddenSize, layers: c.layers, heads: c.heads, vocabularySize: c.vocabularySize,
                                 maxPositions: c.maxPositions)
        embeddings = DebertaEmbeddings(c, rng: rng)
        layers = (0..<c.layers).map { _ in DebertaLayer(c, activation: activation, rng: rng) }
        relativeEmbeddings = c.relativeAttention ? Embedding(2 * c.attentionSpan, c.hiddenSize, rng: rng) : nil
        relativeNorm = c.normalisesRelativeEmbeddings ? LayerNorm(c.hiddenSize, eps: c.layerNormEps) : nil
        super.init()
        register(child: "embeddings", embeddings)
        for (i, l) in layers.enumerated() { register(child: "encoder.layer.\(i)", l) }
        if let relativeEmbeddings { register(child: "encoder.rel_embeddings", relativeEmbeddings) }
        if let relativeNorm { register(child: "encoder.LayerNorm", relativeNorm) }
    }

    public func embed(_ batch: TokenBatch) throws -> Tensor { try embeddings(batch, maxPositions: shape.maxPositions) }

    public func encode(_ hidden: Tensor, batch: TokenBatch, layers range: Range<Int>) throws -> Tensor {
        try checkEncodeArguments(hidden, batch: batch, layers: range, count: shape.layers, width: shape.hidden)
        if range.isEmpty { return hidden }
        let context = try makeContext(batch)
        var h = hidden
        for i in range { h = try layers[i](h, context) }
        return h
    }

    func makeContext(_ batch: TokenBatch) throws -> DebertaContext {
        let t = batch.tokens
        var mask: Tensor? = nil
        if batch.attentionMask.contains(0) {
            // A pair attends only when both the query and the key are real tokens.
            var values = [Float](repeating: 0, count: batch.batch * t * t)
            for b in 0..<batch.batch {
                for i in 0..<t {
                    for j in 0..<t where batch.attentionMask[b * t + i] == 0 || batch.attentionMask[b * t + j] == 0 {
                        values[(b * t + i) * t + j] = -Float.greatestFiniteMagnitude
                    }
                }
            }
            mask = try Tensor(values, shape: [batch.batch, t, t])
        }
        guard let relativeEmbeddings else { return DebertaContext(mask: mask, relativeEmbeddings: nil, c2p: [], p2c: []) }
        let table = try relativeNorm.map { try $0(relativeEmbeddings.weight) } ?? relativeEmbeddings.weight
        let c = configuration
        let idx = DebertaRelativePositions.indices(tokens: t, span: c.attentionSpan, buckets: c.positionBuckets,
                                                   maxPosition: c.maxRelative)
        return DebertaContext(mask: mask, relativeEmbeddings: table, c2p: idx.c2p, p2c: idx.p2c)
    }

    public func parameterPrefixes(ofLayer index: Int) -> [String] { ["encoder.layer.\(index)."] }
}
