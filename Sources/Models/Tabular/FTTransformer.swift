// FT-Transformer (Gorishniy et al., 2021, "Revisiting Deep Learning Models for Tabular Data",
// https://arxiv.org/abs/2106.11959); reference implementation: https://github.com/yandex-research/rtdl
// (`rtdl.FTTransformer`, `FeatureTokenizer`, `CLSToken`, `Transformer`), also what
// AutoGluon-Multimodal's `FT_Transformer` wraps.
//
// Every feature becomes a d_token-wide token (numeric j: x_j·W_j + b_j; categorical j:
// E[index + offset_j] + b_j), a learned [CLS] token is appended last, pre-norm transformer
// blocks (the first block's attention pre-norm omitted, ReGLU feed-forward) mix them, and the
// output is LayerNorm → ReLU of the [CLS] token. As in rtdl, the last block computes attention
// and the feed-forward for the [CLS] query only.
//
// Parameter keys: `tokenizer.{numeric_weight,numeric_bias}`, `tokenizer.category_embeddings.weight`,
// `tokenizer.category_bias`, `cls_token`, `blocks.<i>.attention_norm.*` (i ≥ 1),
// `blocks.<i>.attention.{query,key,value,output}.*`, `blocks.<i>.ffn_norm.*`,
// `blocks.<i>.ffn.{linear1,linear2}.*`, `output_norm.*`.
import Foundation
import Layers
import TensorEngine

/// Settings of `FTTransformer`, with rtdl's default configuration for 3 blocks. Decoded with
/// snake_case keys; absent keys take the defaults of `init()`.
public struct FTTransformerConfig: Codable, Sendable, Equatable {
    /// Token width (rtdl `d_token`).
    public var dToken: Int
    /// Number of transformer blocks (rtdl `n_blocks`).
    public var layers: Int
    public var heads: Int
    /// Dropout on the attention probabilities.
    public var attentionDropout: Float
    /// Dropout between the ReGLU and the second feed-forward linear.
    public var ffnDropout: Float
    /// Dropout on each residual branch before it is added.
    public var residualDropout: Float
    /// Feed-forward hidden width as a multiple of `dToken` (4/3 for ReGLU, rtdl's choice).
    public var ffnFactor: Float

    public init(dToken: Int = 192, layers: Int = 3, heads: Int = 8, attentionDropout: Float = 0.2,
                ffnDropout: Float = 0.1, residualDropout: Float = 0, ffnFactor: Float = 4.0 / 3.0) {
        self.dToken = dToken
        self.layers = layers
        self.heads = heads
        self.attentionDropout = attentionDropout
        self.ffnDropout = ffnDropout
        self.residualDropout = residualDropout
        self.ffnFactor = ffnFactor
    }

    enum CodingKeys: String, CodingKey {
        case dToken = "d_token"
        case layers, heads
        case attentionDropout = "attention_dropout"
        case ffnDropout = "ffn_dropout"
        case residualDropout = "residual_dropout"
        case ffnFactor = "ffn_factor"
    }

    public init(from decoder: Decoder) throws {
        let d = FTTransformerConfig()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        dToken = try c.decodeIfPresent(Int.self, forKey: .dToken) ?? d.dToken
        layers = try c.decodeIfPresent(Int.self, forKey: .layers) ?? d.layers
        heads = try c.decodeIfPresent(Int.self, forKey: .heads) ?? d.heads
        attentionDropout = try c.decodeIfPresent(Float.self, forKey: .attentionDropout) ?? d.attentionDropout
        ffnDropout = try c.decodeIfPresent(Float.self, forKey: .ffnDropout) ?? d.ffnDropout
        residualDropout = try c.decodeIfPresent(Float.self, forKey: .residualDropout) ?? d.residualDropout
        ffnFactor = try c.decodeIfPresent(Float.self, forKey: .ffnFactor) ?? d.ffnFactor
    }

    /// The feed-forward hidden width, `int(d_token · ffn_factor)` as rtdl computes it
    /// (256 for the defaults, 21 for d_token 16).
    public var ffnHidden: Int {
        // The Float factor (4/3 → 1.3333334) rounds up, so exact multiples stay exact when floored.
        Int((Double(dToken) * Double(ffnFactor)).rounded(.down))
    }

    /// Throws naming the first unusable field.
    public func validate() throws {
        func bad(_ field: String, _ detail: String) -> TabularModelError {
            .invalidConfig(model: "ft_transformer", field: field, detail: detail)
        }
        guard dToken > 0 else { throw bad("d_token", "\(dToken) must be positive") }
        guard layers > 0 else { throw bad("layers", "\(layers) must be positive") }
        guard heads > 0, dToken % heads == 0 else { throw bad("heads", "d_token \(dToken) is not divisible by \(heads) heads") }
        for (field, p) in [("attention_dropout", attentionDropout), ("ffn_dropout", ffnDropout), ("residual_dropout", residualDropout)] {
            guard p >= 0 && p < 1 else { throw bad(field, "\(p) must be in [0, 1)") }
        }
        guard ffnHidden > 0 else { throw bad("ffn_factor", "\(ffnFactor) gives a feed-forward width of \(ffnHidden)") }
    }
}

// MARK: - Feature tokenizer

/// One token per feature: numeric `x_j·W_j + b_j`, categorical `E[index + offset_j] + b_j` with one
/// shared embedding table. Everything initialised uniform in ±1/√d_token, as rtdl does.
final class FeatureTokenizer: Module {
    let numericWeight: Tensor?, numericBias: Tensor?
    let categoryEmbeddings: Table?
    let categoryBias: Tensor?
    /// Row of each categorical column's index 0 in the shared table.
    let offsets: [Int]
    let dToken: Int

    init(schema: TabularSchema, dToken: Int, rng: RandomSource) {
        self.dToken = dToken
        let bound = 1 / Float(dToken).squareRoot()
        func uniform(_ shape: [Int]) -> Tensor {
            Tensor.parameter(Tensor.uniform(shape, low: -bound, high: bound, rng: &rng.generator))
        }
        let n = schema.numericCount, c = schema.categoricalCount
        numericWeight = n > 0 ? uniform([n, dToken]) : nil
        numericBias = n > 0 ? uniform([n, dToken]) : nil
        var offs: [Int] = [], total = 0
        for k in schema.cardinalities { offs.append(total); total += k }
        offsets = offs
        if c > 0 {
            categoryEmbeddings = Table(weight: uniform([total, dToken]))
            categoryBias = uniform([c, dToken])
        } else {
            categoryEmbeddings = nil
            categoryBias = nil
        }
        super.init()
        if let numericWeight, let numericBias {
            register(parameter: "numeric_weight", numericWeight)
            register(parameter: "numeric_bias", numericBias)
        }
        if let categoryEmbeddings, let categoryBias {
            register(child: "category_embeddings", categoryEmbeddings)
            register(parameter: "category_bias", categoryBias)
        }
    }

    /// Tokens `[B, numeric + categorical, d_token]`.
    func callAsFunction(_ batch: TabularBatch) throws -> Tensor {
        var parts: [Tensor] = []
        if let x = batch.numeric, let w = numericWeight, let b = numericBias {
            parts.append(try add(try mul(try x.unsqueezed(-1), w), b))
        }
        if let table = categoryEmbeddings, let b = categoryBias {
            let c = offsets.count
            let ids = batch.categorical.enumerated().map { $0.element + offsets[$0.offset % c] }
            let rows = try indexSelect(table.weight, axis: 0, indices: ids)
            parts.append(try add(try rows.reshaped([batch.size, c, dToken]), b))
        }
        return parts.count == 1 ? parts[0] : try concat(parts, axis: 1)
    }
}

/// The shared categorical embedding table (`category_embeddings.weight`), initialised by the tokenizer.
final class Table: Module {
    let weight: Tensor

    init(weight: Tensor) {
        self.weight = weight
        super.init()
        register(parameter: "weight", weight)
    }
}

// MARK: - Attention and feed-forward

/// Multi-head attention with its own output projection (rtdl's `MultiheadAttention`:
/// W_q, W_k, W_v, W_out, here `query`, `key`, `value`, `output`), on the engine's fused kernel.
/// AutoMM's fusion transformer uses it too, without the output projection for a single head
/// and with zero biases.
final class TokenAttention: Module {
    let query: Linear, key: Linear, value: Linear
    let output: Linear?
    let heads: Int
    let dropout: Float
    let rng: RandomSource

    init(dim: Int, heads: Int, dropout: Float, outputProjection: Bool = true, zeroBiases: Bool = false, rng: RandomSource) {
        self.heads = heads
        self.dropout = dropout
        self.rng = rng
        query = Linear(dim, dim, rng: rng)
        key = Linear(dim, dim, rng: rng)
        value = Linear(dim, dim, rng: rng)
        output = outputProjection ? Linear(dim, dim, rng: rng) : nil
        super.init()
        if zeroBiases {
            for l in [query, key, value] + (output.map { [$0] } ?? []) {
                if let b = l.bias { zeroFill(b) }
            }
        }
        register(child: "query", query)
        register(child: "key", key)
        register(child: "value", value)
        if let output { register(child: "output", output) }
    }

    /// `queries` [B, Tq, d] attend over `context` [B, Tk, d].
    func callAsFunction(_ queries: Tensor, _ context: Tensor) throws -> Tensor {
        let mixed = try attention(query: try query(queries), key: try key(context), value: try value(context), heads: heads,
                                  dropout: dropout, training: isTraining, rng: &rng.generator)
        return try output.map { try $0(mixed) } ?? mixed
    }
}

/// `Linear(d, 2h) → ReGLU → dropout → Linear(h, d)`, where ReGLU(a ‖ b) = a · relu(b).
final class ReGLUFeedForward: Module {
    let linear1: Linear, linear2: Linear
    let drop: Dropout
    let hidden: Int

    init(dim: Int, hidden: Int, dropout: Float, rng: RandomSource) {
        self.hidden = hidden
        linear1 = Linear(dim, 2 * hidden, rng: rng)
        linear2 = Linear(hidden, dim, rng: rng)
        drop = Dropout(dropout, rng: rng)
        super.init()
        register(child: "linear1", linear1)
        register(child: "linear2", linear2)
        register(child: "dropout", drop)
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let ab = try linear1(x)
        let a = try ab.slice(axis: -1, start: 0, end: hidden)
        let b = try ab.slice(axis: -1, start: hidden, end: 2 * hidden)
        return try linear2(try drop(try mul(a, try relu(b))))
    }
}

/// One pre-norm block: `x + drop(attn(norm(x)))`, then `x + drop(ffn(norm(x)))`.
final class FTBlock: Module {
    let attentionNorm: LayerNorm?
    let attention: TokenAttention
    let ffnNorm: LayerNorm
    let ffn: ReGLUFeedForward
    let residualDropout: Dropout

    init(_ config: FTTransformerConfig, first: Bool, rng: RandomSource) {
        let d = config.dToken
        attentionNorm = first ? nil : LayerNorm(d)
        attention = TokenAttention(dim: d, heads: config.heads, dropout: config.attentionDropout, rng: rng)
        ffnNorm = LayerNorm(d)
        ffn = ReGLUFeedForward(dim: d, hidden: config.ffnHidden, dropout: config.ffnDropout, rng: rng)
        residualDropout = Dropout(config.residualDropout, rng: rng)
        super.init()
        if let attentionNorm { register(child: "attention_norm", attentionNorm) }
        register(child: "attention", attention)
        register(child: "ffn_norm", ffnNorm)
        register(child: "ffn", ffn)
        register(child: "residual_dropout", residualDropout)
    }

    /// x: [B, T, d]. With `lastTokenOnly` the output is [B, 1, d]: only the last ([CLS]) token
    /// queries, the rest serve as keys and values.
    func callAsFunction(_ x: Tensor, lastTokenOnly: Bool) throws -> Tensor {
        let normed = try attentionNorm.map { try $0(x) } ?? x
        var h = x, queries = normed
        if lastTokenOnly {
            let t = x.shape[1]
            queries = try normed.slice(axis: 1, start: t - 1, end: t)
            h = try x.slice(axis: 1, start: t - 1, end: t)
        }
        h = try add(h, try residualDropout(try attention(queries, normed)))
        return try add(h, try residualDropout(try ffn(try ffnNorm(h))))
    }
}

// MARK: - Model

/// FT-Transformer backbone: features `[B, dToken]` (LayerNorm → ReLU of the [CLS] token).
public final class FTTransformer: Module, TabularBackbone {
    public let config: FTTransformerConfig
    public let schema: TabularSchema
    let tokenizer: FeatureTokenizer
    /// The learned [CLS] token, appended after the feature tokens.
    public let clsToken: Tensor
    let blocks: [FTBlock]
    let outputNorm: LayerNorm

    public var outputDim: Int { config.dToken }

    /// Builds the model; the tokenizer and [CLS] token are drawn uniform ±1/√d_token, linears with
    /// PyTorch's default initialisation, layer norms at (1, 0). Draws follow registration order.
    public init(_ config: FTTransformerConfig, schema: TabularSchema, rng: RandomSource) throws {
        try config.validate()
        try schema.validate()
        self.config = config
        self.schema = schema
        tokenizer = FeatureTokenizer(schema: schema, dToken: config.dToken, rng: rng)
        let bound = 1 / Float(config.dToken).squareRoot()
        clsToken = Tensor.parameter(Tensor.uniform([config.dToken], low: -bound, high: bound, rng: &rng.generator))
        blocks = (0..<config.layers).map { FTBlock(config, first: $0 == 0, rng: rng) }
        outputNorm = LayerNorm(config.dToken)
        super.init()
        register(child: "tokenizer", tokenizer)
        register(parameter: "cls_token", clsToken)
        for (i, b) in blocks.enumerated() { register(child: "blocks.\(i)", b) }
        register(child: "output_norm", outputNorm)
    }

    public func forward(numeric: Tensor?, categorical: [Int]) throws -> Tensor {
        let batch = try schema.batch(numeric: numeric, categorical: categorical)
        let d = config.dToken
        let tokens = try tokenizer(batch)
        let cls = try expand(try clsToken.reshaped([1, 1, d]), to: [batch.size, 1, d])
        var x = try concat([tokens, cls], axis: 1)
        for (i, block) in blocks.enumerated() { x = try block(x, lastTokenOnly: i == blocks.count - 1) }
        return try relu(try outputNorm(try x.reshaped([batch.size, d])))
    }
}
