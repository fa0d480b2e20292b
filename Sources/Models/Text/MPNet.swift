// MPNet: BERT-like post-norm layers plus a relative position bias — one learned scalar per
// (bucketed relative distance, head), shared by every layer and added to the attention scores.
// Reference: transformers/models/mpnet/modeling_mpnet.py (`MPNetModel`,
// `MPNetEncoder.relative_position_bucket`).
//
// Keys: `embeddings.{word_embeddings,position_embeddings,LayerNorm}`,
// `encoder.relative_attention_bias`, `encoder.layer.N.attention.attn.{q,k,v,o}`,
// `…attention.LayerNorm`, `…intermediate.dense`, `…output.{dense,LayerNorm}`.
import Foundation
import Layers
import TensorEngine

// MARK: - Configuration

/// MPNet's config.json (`model_type: mpnet`), with `transformers`' defaults.
public struct MPNetConfiguration: Codable, Sendable, Equatable {
    public var vocabularySize: Int = 30527
    public var hiddenSize: Int = 768
    public var layers: Int = 12
    public var heads: Int = 12
    public var intermediateSize: Int = 3072
    public var hiddenAct: String = "gelu"
    public var hiddenDropout: Float = 0.1
    public var attentionDropout: Float = 0.1
    public var maxPositions: Int = 512
    public var layerNormEps: Float = 1e-12
    /// Rows of `relative_attention_bias`. `transformers` always buckets into 32, whatever this is.
    public var relativeAttentionBuckets: Int = 32

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
        case layerNormEps = "layer_norm_eps"
        case relativeAttentionBuckets = "relative_attention_num_buckets"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = MPNetConfiguration()
        vocabularySize = try c.value(.vocabularySize, default: d.vocabularySize)
        hiddenSize = try c.value(.hiddenSize, default: d.hiddenSize)
        layers = try c.value(.layers, default: d.layers)
        heads = try c.value(.heads, default: d.heads)
        intermediateSize = try c.value(.intermediateSize, default: d.intermediateSize)
        hiddenAct = try c.value(.hiddenAct, default: d.hiddenAct)
        hiddenDropout = try c.value(.hiddenDropout, default: d.hiddenDropout)
        attentionDropout = try c.value(.attentionDropout, default: d.attentionDropout)
        maxPositions = try c.value(.maxPositions, default: d.maxPositions)
        layerNormEps = try c.value(.layerNormEps, default: d.layerNormEps)
        relativeAttentionBuckets = try c.value(.relativeAttentionBuckets, default: d.relativeAttentionBuckets)
    }
}

// MARK: - Relative position buckets

enum MPNetBuckets {
    /// The bucket count `transformers` uses for MPNet (`compute_position_bias`'s default).
    static let count = 32
    static let maxDistance = 128

    /// T5-style bucket of `relative` = key position − query position: half the buckets for each
    /// direction, exact below a quarter of the buckets, logarithmic up to `maxDistance`.
    static func bucket(_ relative: Int, buckets: Int = count, maxDistance: Int = maxDistance) -> Int {
        let half = buckets / 2
        var n = -relative
        var result = 0
        if n < 0 { result += half }
        n = Swift.abs(n)
        let exact = half / 2
        if n < exact { return result + n }
        let scaled = Foundation.log(Double(n) / Double(exact)) / Foundation.log(Double(maxDistance) / Double(exact))
        let large = exact + Int(scaled * Double(half - exact))
        return result + Swift.min(large, half - 1)
    }

    /// Buckets for every (query, key) pair of a `tokens`-long sequence, row-major [T, T].
    static func table(tokens: Int) -> [Int] {
        var out = [Int](repeating: 0, count: tokens * tokens)
        for i in 0..<tokens { for j in 0..<tokens { out[i * tokens + j] = bucket(j - i) } }
        return out
    }
}

// MARK: - Layers

/// `attention.attn.{q,k,v,o}` → `attention.LayerNorm`, `intermediate.dense`, `output.{dense,LayerNorm}`.
final class MPNetLayer: Module {
    let q: Linear, k: Linear, v: Linear, o: Linear
    let attentionNorm: LayerNorm
    let intermediate: Linear
    let output: Linear
    let outputNorm: LayerNorm
    let dropout: Dropout
    let heads: Int
    let attentionDropout: Float
    let activation: Activation
    let rng: RandomSource

    init(_ c: MPNetConfiguration, activation: Activation, rng: RandomSource) {
        q = Linear(c.hiddenSize, c.hiddenSize, rng: rng)
        k = Linear(c.hiddenSize, c.hiddenSize, rng: rng)
        v = Linear(c.hiddenSize, c.hiddenSize, rng: rng)
        o = Linear(c.hiddenSize, c.hiddenSize, rng: rng)
        attentionNorm = LayerNorm(c.hiddenSize, eps: c.layerNormEps)
        intermediate = Linear(c.hiddenSize, c.intermediateSize, rng: rng)
        output = Linear(c.intermediateSize, c.hiddenSize, rng: rng)
        outputNorm = LayerNorm(c.hiddenSize, eps: c.layerNormEps)
        dropout = Dropout(c.hiddenDropout, rng: rng)
        heads = c.heads
        attentionDropout = c.attentionDropout
        self.activation = activation
        self.rng = rng
        super.init()
        register(child: "attention.attn.q", q)
        register(child: "attention.attn.k", k)
        register(child: "attention.attn.v", v)
        register(child: "attention.attn.o", o)
        register(child: "attention.LayerNorm", attentionNorm)
        register(child: "intermediate.dense", intermediate)
        register(child: "output.dense", output)
        register(child: "output.LayerNorm", outputNorm)
        register(child: "dropout", dropout)
    }

    func callAsFunction(_ x: Tensor, mask: Tensor?, bias: Tensor) throws -> Tensor {
        let context = try attention(query: try q(x), key: try k(x), value: try v(x), heads: heads, mask: mask, bias: bias,
                                    dropout: attentionDropout, training: isTraining, rng: &rng.generator)
        let attended = try attentionNorm(try add(try dropout(try o(context)), x))
        let inner = try activation.apply(try intermediate(attended))
        return try outputNorm(try add(try dropout(try output(inner)), attended))
    }
}

// MARK: - Model

/// MPNet's encoder (`MPNetModel` without the pooler). Position ids follow fairseq (padding
/// index 1, fixed in `transformers`); the relative position bias is rebuilt from the sequence
/// length inside `encode`, so running the top layers alone matches the full pass.
public final class MPNetEncoder: Module, TextEncoder {
    public let shape: TextEncoderShape
    public var modelType: String { "mpnet" }
    let embeddings: BertEmbeddings
    let layers: [MPNetLayer]
    let relativeBias: Embedding

    /// `transformers` fixes MPNet's padding index (and so its position offset) at 1.
    static let paddingIndex = 1

    /// An MPNet encoder with freshly initialised weights.
    public init(_ c: MPNetConfiguration, rng: RandomSource) throws {
        let check = ConfigCheck(modelType: "mpnet")
        try check.positive(c.vocabularySize, "vocab_size")
        try check.positive(c.hiddenSize, "hidden_size")
        try check.positive(c.layers, "num_hidden_layers")
        try check.divisible(c.hiddenSize, "hidden_size", by: c.heads, "num_attention_heads")
        try check.positive(c.intermediateSize, "intermediate_size")
        try check.probability(c.hiddenDropout, "hidden_dropout_prob")
        try check.probability(c.attentionDropout, "attention_probs_dropout_prob")
        try check.epsilon(c.layerNormEps, "layer_norm_eps")
        let activation = try check.activation(c.hiddenAct, "hidden_act")
        guard c.maxPositions > Self.paddingIndex + 1 else {
            throw TextEncoderError.invalidConfiguration(modelType: "mpnet", key: "max_position_embeddings",
                                                        reason: "(\(c.maxPositions)) leaves no position after the padding index 1")
        }
        guard c.relativeAttentionBuckets >= MPNetBuckets.count else {
            throw TextEncoderError.unsupportedOption(modelType: "mpnet", option: "relative_attention_num_buckets",
                                                     value: "\(c.relativeAttentionBuckets) (transformers buckets relative positions into \(MPNetBuckets.count); at least that many are needed)")
        }
        shape = TextEncoderShape(hidden: c.hiddenSize, layers: c.layers, heads: c.heads, vocabularySize: c.vocabularySize,
                                 maxPositions: c.maxPositions)
        embeddings = BertEmbeddings(vocabulary: c.vocabularySize, width: c.hiddenSize, maxPositions: c.maxPositions,
                                    typeVocabulary: 0, eps: c.layerNormEps, dropout: c.hiddenDropout,
                                    scheme: .afterPadding(Self.paddingIndex), rng: rng)
        layers = (0..<c.layers).map { _ in MPNetLayer(c, activation: activation, rng: rng) }
        relativeBias = Embedding(c.relativeAttentionBuckets, c.heads, rng: rng)
        super.init()
        register(child: "embeddings", embeddings)
        for (i, l) in layers.enumerated() { register(child: "encoder.layer.\(i)", l) }
        register(child: "encoder.relative_attention_bias", relativeBias)
    }

    public func embed(_ batch: TokenBatch) throws -> Tensor { try embeddings(batch) }

    public func encode(_ hidden: Tensor, batch: TokenBatch, layers range: Range<Int>) throws -> Tensor {
        try checkEncodeArguments(hidden, batch: batch, layers: range, count: shape.layers, width: shape.hidden)
        if range.isEmpty { return hidden }
        let mask = try batch.additiveKeyMask()
        let bias = try positionBias(tokens: batch.tokens)
        var h = hidden
        for i in range { h = try layers[i](h, mask: mask, bias: bias) }
        return h
    }

    /// [1, heads, T, T]: `relative_attention_bias[bucket(j − i), h]` for query i, key j.
    func positionBias(tokens t: Int) throws -> Tensor {
        let rows = try indexSelect(relativeBias.weight, axis: 0, indices: MPNetBuckets.table(tokens: t))   // [T·T, H]
        return try rows.reshaped([t, t, shape.heads]).permuted([2, 0, 1]).reshaped([1, shape.heads, t, t])
    }

    public func parameterPrefixes(ofLayer index: Int) -> [String] { ["encoder.layer.\(index)."] }
}
