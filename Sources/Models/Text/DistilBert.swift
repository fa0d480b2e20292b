// DistilBERT: BERT's post-norm layers under other names, no token types, LayerNorm eps 1e-12
// fixed. Reference: transformers/models/distilbert/modeling_distilbert.py (`DistilBertModel`).
//
// Keys: `embeddings.{word_embeddings,position_embeddings,LayerNorm}`,
// `transformer.layer.N.attention.{q_lin,k_lin,v_lin,out_lin}`, `…sa_layer_norm`,
// `…ffn.{lin1,lin2}`, `…output_layer_norm`.
import Foundation
import Layers
import TensorEngine

// MARK: - Configuration

/// DistilBERT's config.json (`model_type: distilbert`), with `transformers`' defaults.
public struct DistilBertConfiguration: Codable, Sendable, Equatable {
    public var vocabularySize: Int = 30522
    public var dim: Int = 768
    public var layers: Int = 6
    public var heads: Int = 12
    public var hiddenDim: Int = 3072
    public var activation: String = "gelu"
    public var dropout: Float = 0.1
    public var attentionDropout: Float = 0.1
    public var maxPositions: Int = 512

    enum CodingKeys: String, CodingKey {
        case vocabularySize = "vocab_size"
        case dim
        case layers = "n_layers"
        case heads = "n_heads"
        case hiddenDim = "hidden_dim"
        case activation
        case dropout
        case attentionDropout = "attention_dropout"
        case maxPositions = "max_position_embeddings"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = DistilBertConfiguration()
        vocabularySize = try c.value(.vocabularySize, default: d.vocabularySize)
        dim = try c.value(.dim, default: d.dim)
        layers = try c.value(.layers, default: d.layers)
        heads = try c.value(.heads, default: d.heads)
        hiddenDim = try c.value(.hiddenDim, default: d.hiddenDim)
        activation = try c.value(.activation, default: d.activation)
        dropout = try c.value(.dropout, default: d.dropout)
        attentionDropout = try c.value(.attentionDropout, default: d.attentionDropout)
        maxPositions = try c.value(.maxPositions, default: d.maxPositions)
    }
}

// MARK: - Layers

/// `attention` (q_lin/k_lin/v_lin/out_lin) → `sa_layer_norm`, then `ffn` → `output_layer_norm`.
final class DistilBertBlock: Module {
    let q: Linear, k: Linear, v: Linear, out: Linear
    let attentionNorm: LayerNorm
    let lin1: Linear, lin2: Linear
    let outputNorm: LayerNorm
    let dropout: Dropout
    let heads: Int
    let attentionDropout: Float
    let activation: Activation
    let rng: RandomSource

    init(_ c: DistilBertConfiguration, activation: Activation, rng: RandomSource) {
        q = Linear(c.dim, c.dim, rng: rng)
        k = Linear(c.dim, c.dim, rng: rng)
        v = Linear(c.dim, c.dim, rng: rng)
        out = Linear(c.dim, c.dim, rng: rng)
        attentionNorm = LayerNorm(c.dim, eps: 1e-12)
        lin1 = Linear(c.dim, c.hiddenDim, rng: rng)
        lin2 = Linear(c.hiddenDim, c.dim, rng: rng)
        outputNorm = LayerNorm(c.dim, eps: 1e-12)
        dropout = Dropout(c.dropout, rng: rng)
        heads = c.heads
        attentionDropout = c.attentionDropout
        self.activation = activation
        self.rng = rng
        super.init()
        register(child: "attention.q_lin", q)
        register(child: "attention.k_lin", k)
        register(child: "attention.v_lin", v)
        register(child: "attention.out_lin", out)
        register(child: "sa_layer_norm", attentionNorm)
        register(child: "ffn.lin1", lin1)
        register(child: "ffn.lin2", lin2)
        register(child: "output_layer_norm", outputNorm)
        register(child: "dropout", dropout)
    }

    func callAsFunction(_ x: Tensor, mask: Tensor?) throws -> Tensor {
        let context = try attention(query: try q(x), key: try k(x), value: try v(x), heads: heads, mask: mask,
                                    dropout: attentionDropout, training: isTraining, rng: &rng.generator)
        let attended = try attentionNorm(try add(try out(context), x))
        let inner = try dropout(try lin2(try activation.apply(try lin1(attended))))
        return try outputNorm(try add(inner, attended))
    }
}

// MARK: - Model

/// DistilBERT's encoder (`DistilBertModel` without heads).
public final class DistilBertEncoder: Module, TextEncoder {
    public let shape: TextEncoderShape
    public var modelType: String { "distilbert" }
    let embeddings: BertEmbeddings
    let blocks: [DistilBertBlock]

    /// A DistilBERT encoder with freshly initialised weights.
    public init(_ c: DistilBertConfiguration, rng: RandomSource) throws {
        let check = ConfigCheck(modelType: "distilbert")
        try check.positive(c.vocabularySize, "vocab_size")
        try check.positive(c.dim, "dim")
        try check.positive(c.layers, "n_layers")
        try check.divisible(c.dim, "dim", by: c.heads, "n_heads")
        try check.positive(c.hiddenDim, "hidden_dim")
        try check.positive(c.maxPositions, "max_position_embeddings")
        try check.probability(c.dropout, "dropout")
        try check.probability(c.attentionDropout, "attention_dropout")
        let activation = try check.activation(c.activation, "activation")
        shape = TextEncoderShape(hidden: c.dim, layers: c.layers, heads: c.heads, vocabularySize: c.vocabularySize,
                                 maxPositions: c.maxPositions)
        embeddings = BertEmbeddings(vocabulary: c.vocabularySize, width: c.dim, maxPositions: c.maxPositions,
                                    typeVocabulary: 0, eps: 1e-12, dropout: c.dropout, scheme: .sequential, rng: rng)
        blocks = (0..<c.layers).map { _ in DistilBertBlock(c, activation: activation, rng: rng) }
        super.init()
        register(child: "embeddings", embeddings)
        for (i, b) in blocks.enumerated() { register(child: "transformer.layer.\(i)", b) }
    }

    public func embed(_ batch: TokenBatch) throws -> Tensor { try embeddings(batch) }

    public func encode(_ hidden: Tensor, batch: TokenBatch, layers: Range<Int>) throws -> Tensor {
        try checkEncodeArguments(hidden, batch: batch, layers: layers, count: shape.layers, width: shape.hidden)
        let mask = try batch.additiveKeyMask()
        var h = hidden
        for i in layers { h = try blocks[i](h, mask: mask) }
        return h
    }

    public func parameterPrefixes(ofLayer index: Int) -> [String] { ["transformer.layer.\(index)."] }
}
