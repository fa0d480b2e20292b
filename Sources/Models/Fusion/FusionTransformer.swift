// AutoGluon-Multimodal's late-fusion transformer (`MultimodalFusionTransformer`,
// autogluon/multimodal/models/fusion/fusion_transformer.py; blocks from
// models/custom_transformer.py, rtdl's FT-Transformer blocks).
//
// Each backbone's features [B, dᵢ] pass an adapter Linear(dᵢ → d), d = max dᵢ (or min dᵢ), and
// become one token; a learned [CLS] token is appended last; pre-norm blocks mix the n + 1 tokens —
// `x + drop(attention(norm(x)))` (no attention norm in the first block), then
// `x + drop(ffn(norm(x)))` with `ffn = Linear(d, 2h) → GEGLU → dropout → Linear(h, d)` by
// default — and the head reads the [CLS] token: LayerNorm → ReLU → Linear. Attention has an
// output projection only with more than one head, as in AutoMM. Only the [CLS] token reaches the
// head, so the last block computes attention and feed-forward for the [CLS] query alone (the
// other tokens still serve as keys and values), which gives the same logits.
//
// Initialisation as AutoMM's: adapters and the head's Linear Xavier-uniform with zero bias;
// attention projections PyTorch's default weights with zero biases; feed-forward linears
// PyTorch's default; layer norms (1, 0); the [CLS] token uniform in ±1/√d.
//
// Parameter keys: `adapters.<i>.*`, `cls_token`, `blocks.<k>.attention_norm.*` (k ≥ 1),
// `blocks.<k>.attention.{query,key,value,output}.*` (`output` only with heads > 1),
// `blocks.<k>.ffn_norm.*`, `blocks.<k>.ffn.{linear1,linear2}.*`, `head.norm.*`, `head.linear.*`,
// `aux_heads.<i>.*`, `missing.<i>`.
import Layers
import TensorEngine

/// `Linear(d, h or 2h) → activation → dropout → Linear(h, d)`; the GLU activations return
/// a · act(b) for the halves a ‖ b of the first linear's output.
final class FusionFeedForward: Module {
    let linear1: Linear, linear2: Linear
    let activation: FeedForwardActivation
    let drop: Dropout
    let hidden: Int

    init(dim: Int, hidden: Int, activation: FeedForwardActivation, dropout: Float, rng: RandomSource) {
        self.hidden = hidden
        self.activation = activation
        linear1 = Linear(dim, activation.isGLU ? 2 * hidden : hidden, rng: rng)
        linear2 = Linear(hidden, dim, rng: rng)
        drop = Dropout(dropout, rng: rng)
        super.init()
        register(child: "linear1", linear1)
        register(child: "linear2", linear2)
        register(child: "dropout", drop)
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let h = try linear1(x)
        let activated: Tensor
        switch activation {
        case .reglu, .geglu:
            let a = try h.slice(axis: -1, start: 0, end: hidden)
            let b = try h.slice(axis: -1, start: hidden, end: 2 * hidden)
            activated = try mul(a, activation == .reglu ? try relu(b) : try gelu(b))
        case .relu: activated = try relu(h)
        case .gelu: activated = try gelu(h)
        case .leaky_relu: activated = try leakyRelu(h)
        }
        return try linear2(try drop(activated))
    }
}

/// One pre-norm block: `x + drop(attn(norm(x)))`, then `x + drop(ffn(norm(x)))`.
final class FusionBlock: Module {
    let attentionNorm: LayerNorm?
    let attention: TokenAttention
    let ffnNorm: LayerNorm
    let ffn: FusionFeedForward
    let residualDropout: Dropout

    init(_ config: FusionTransformerConfig, dim: Int, first: Bool, rng: RandomSource) {
        attentionNorm = first ? nil : LayerNorm(dim)
        // AutoMM: W_q, W_k, W_v (and W_out, only with several heads) with zero biases.
        attention = TokenAttention(dim: dim, heads: config.heads, dropout: config.attentionDropout,
                                   outputProjection: config.heads > 1, zeroBiases: true, rng: rng)
        ffnNorm = LayerNorm(dim)
        ffn = FusionFeedForward(dim: dim, hidden: config.ffnHiddenSize, activation: config.ffnActivation,
                                dropout: config.ffnDropout, rng: rng)
        residualDropout = Dropout(config.residualDropout, rng: rng)
        super.init()
        if let attentionNorm { register(child: "attention_norm", attentionNorm) }
        register(child: "attention", attention)
        register(child: "ffn_norm", ffnNorm)
        register(child: "ffn", ffn)
        register(child: "residual_dropout", residualDropout)
    }

    /// x: [B, T, d]. With `lastTokenOnly` the output is [B, 1, d]: only the last ([CLS]) token
    /// queries, every token serves as key and value.
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

/// The head over the [CLS] token: LayerNorm → activation → Linear (AutoMM's transformer `Head`).
final class FusionTransformerHead: Module {
    let norm: LayerNorm
    let activation: Activation
    let linear: Linear

    init(dim: Int, outputs: Int, activation: Activation, rng: RandomSource) {
        norm = LayerNorm(dim)
        self.activation = activation
        linear = xavierLinear(dim, outputs, rng: rng)
        super.init()
        register(child: "norm", norm)
        register(child: "linear", linear)
    }

    func callAsFunction(_ cls: Tensor) throws -> Tensor {
        try linear(try activation.apply(try norm(cls)))
    }
}

/// Late fusion by a transformer over one token per backbone (AutoMM's `fusion_transformer`).
public final class FusionTransformer: Module, FusionModule {
    public let config: FusionTransformerConfig
    public let inputWidths: [Int]
    public let outputs: Int
    /// Token width: the adapted width of every backbone.
    public let tokenWidth: Int
    let inputs: FusionInputs
    /// The learned [CLS] token, appended after the backbone tokens.
    public let clsToken: Tensor
    let blocks: [FusionBlock]
    let head: FusionTransformerHead

    public var auxLossWeight: Float? { config.auxLossWeight }

    /// Builds the module for backbones with feature widths `inputWidths`; throws a
    /// `FusionError` naming the setting to change when the config cannot work with them
    /// (e.g. a token width not divisible by the head count).
    public init(_ config: FusionTransformerConfig, inputWidths: [Int], outputs: Int, rng: RandomSource) throws {
        try config.validate(inputWidths: inputWidths)
        guard outputs > 0 else {
            throw FusionError.invalidConfig(fusion: "fusion_transformer", field: "outputs", detail: "\(outputs) must be positive (classes, or 1 for regression)")
        }
        guard let d = config.tokenWidth(inputWidths: inputWidths) else {
            throw FusionError.invalidConfig(fusion: "fusion_transformer", field: "adapt_in_features", detail: "use `max` or `min`")
        }
        self.config = config
        self.inputWidths = inputWidths
        self.outputs = outputs
        tokenWidth = d
        inputs = FusionInputs(widths: inputWidths, adaptedWidth: d, outputs: outputs, aux: config.auxLossWeight != nil,
                              modalityDropout: config.modalityDropout, rng: rng)
        let bound = 1 / Float(d).squareRoot()
        clsToken = Tensor.parameter(Tensor.uniform([d], low: -bound, high: bound, rng: &rng.generator))
        blocks = (0..<config.blocks).map { FusionBlock(config, dim: d, first: $0 == 0, rng: rng) }
        head = FusionTransformerHead(dim: d, outputs: outputs, activation: config.headActivation, rng: rng)
        super.init()
        inputs.register(on: self)
        register(parameter: "cls_token", clsToken)
        for (k, b) in blocks.enumerated() { register(child: "blocks.\(k)", b) }
        register(child: "head", head)
    }

    public func logits(features: [Tensor]) throws -> FusionLogits {
        let (adapted, aux) = try inputs(features, fusion: "fusion_transformer")
        let rows = adapted[0].shape[0], d = tokenWidth
        let cls = try expand(try clsToken.reshaped([1, 1, d]), to: [rows, 1, d])
        var x = try concat(try adapted.map { try $0.unsqueezed(1) } + [cls], axis: 1)
        for (k, block) in blocks.enumerated() { x = try block(x, lastTokenOnly: k == blocks.count - 1) }
        let t = x.shape[1]
        let last = try x.slice(axis: 1, start: t - 1, end: t).reshaped([rows, d])
        return (try head(last), aux)
    }
}
