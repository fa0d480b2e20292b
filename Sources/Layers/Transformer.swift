import TensorEngine

/// Multi-head self-attention projections and the fused attention kernel, keyed like BERT's
/// `attention.self`: `query`, `key`, `value`. The output projection belongs to the caller
/// (BERT keeps it in `attention.output.dense`).
public final class SelfAttention: Module {
    public let query: Linear, key: Linear, value: Linear
    public let heads: Int
    public let dropoutProbability: Float
    let rng: RandomSource

    public init(hidden: Int, heads: Int, dropout: Float = 0, rng: RandomSource) throws {
        guard heads > 0, hidden % heads == 0 else {
            throw TensorError.invalidArgument(op: "SelfAttention", detail: "hidden size \(hidden) is not divisible by \(heads) heads")
        }
        self.heads = heads
        self.dropoutProbability = dropout
        self.rng = rng
        query = Linear(hidden, hidden, rng: rng)
        key = Linear(hidden, hidden, rng: rng)
        value = Linear(hidden, hidden, rng: rng)
        super.init()
        register(child: "query", query)
        register(child: "key", key)
        register(child: "value", value)
    }

    /// x: [batch, tokens, hidden]; mask: additive, [batch, tokens] (0 keep, large negative drop).
    public func callAsFunction(_ x: Tensor, mask: Tensor? = nil) throws -> Tensor {
        try attention(query: try query(x), key: try key(x), value: try value(x), heads: heads, mask: mask,
                      dropout: dropoutProbability, training: isTraining, rng: &rng.generator)
    }
}

/// Settings shared by transformer encoder layers.
public struct TransformerLayerConfig: Sendable, Equatable {
    public var hidden: Int
    public var heads: Int
    public var intermediate: Int
    public var activation: Activation
    public var hiddenDropout: Float
    public var attentionDropout: Float
    public var layerNormEps: Float

    public init(hidden: Int, heads: Int, intermediate: Int, activation: Activation = .gelu,
                hiddenDropout: Float = 0.1, attentionDropout: Float = 0.1, layerNormEps: Float = 1e-12) {
        self.hidden = hidden
        self.heads = heads
        self.intermediate = intermediate
        self.activation = activation
        self.hiddenDropout = hiddenDropout
        self.attentionDropout = attentionDropout
        self.layerNormEps = layerNormEps
    }
}

/// A post-norm transformer encoder layer with BERT's parameter names:
/// `attention.self.{query,key,value}`, `attention.output.{dense,LayerNorm}`,
/// `intermediate.dense`, `output.{dense,LayerNorm}`.
public final class TransformerEncoderLayer: Module {
    public let selfAttention: SelfAttention
    public let attentionOutput: Linear
    public let attentionNorm: LayerNorm
    public let intermediate: Linear
    public let output: Linear
    public let outputNorm: LayerNorm
    let dropout: Dropout
    public let config: TransformerLayerConfig

    public init(_ config: TransformerLayerConfig, rng: RandomSource) throws {
        self.config = config
        selfAttention = try SelfAttention(hidden: config.hidden, heads: config.heads, dropout: config.attentionDropout, rng: rng)
        attentionOutput = Linear(config.hidden, config.hidden, rng: rng)
        attentionNorm = LayerNorm(config.hidden, eps: config.layerNormEps)
        intermediate = Linear(config.hidden, config.intermediate, rng: rng)
        output = Linear(config.intermediate, config.hidden, rng: rng)
        outputNorm = LayerNorm(config.hidden, eps: config.layerNormEps)
        dropout = Dropout(config.hiddenDropout, rng: rng)
        super.init()
        register(child: "attention.self", selfAttention)
        register(child: "attention.output.dense", attentionOutput)
        register(child: "attention.output.LayerNorm", attentionNorm)
        register(child: "intermediate.dense", intermediate)
        register(child: "output.dense", output)
        register(child: "output.LayerNorm", outputNorm)
        register(child: "dropout", dropout)
    }

    public func callAsFunction(_ x: Tensor, mask: Tensor? = nil) throws -> Tensor {
        let context = try selfAttention(x, mask: mask)
        let attended = try attentionNorm(try add(try dropout(try attentionOutput(context)), x))
        let inner = try config.activation.apply(try intermediate(attended))
        return try outputNorm(try add(try dropout(try output(inner)), attended))
    }
}

/// A stack of encoder layers keyed `layer.0`, `layer.1`, … (BERT's `encoder`).
public final class TransformerEncoder: Module {
    public let layers: [TransformerEncoderLayer]

    public init(_ config: TransformerLayerConfig, depth: Int, rng: RandomSource) throws {
        layers = try (0..<depth).map { _ in try TransformerEncoderLayer(config, rng: rng) }
        super.init()
        for (i, l) in layers.enumerated() { register(child: "layer.\(i)", l) }
    }

    public func callAsFunction(_ x: Tensor, mask: Tensor? = nil) throws -> Tensor {
        var h = x
        for l in layers { h = try l(h, mask: mask) }
        return h
    }
}
