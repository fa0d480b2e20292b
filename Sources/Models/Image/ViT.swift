// Vision Transformer (Dosovitskiy et al., 2020) in two key layouts:
//
// - Hugging Face `ViTModel` / `ViTForImageClassification`
//   (https://github.com/huggingface/transformers/blob/main/src/transformers/models/vit/modeling_vit.py):
//   `embeddings.{cls_token, position_embeddings, patch_embeddings.projection}`,
//   `encoder.layer.N.{layernorm_before, attention.attention.{query,key,value}, attention.output.dense,
//   layernorm_after, intermediate.dense, output.dense}`, `layernorm`, optional `pooler.dense`; the
//   classification model puts all of that under `vit.` and adds `classifier`.
// - timm `VisionTransformer`
//   (https://github.com/huggingface/pytorch-image-models/blob/main/timm/models/vision_transformer.py):
//   `cls_token`, `pos_embed`, `patch_embed.proj`, optional `norm_pre`, `blocks.N.{norm1, attn.qkv,
//   attn.proj, ls1.gamma, norm2, mlp.fc1, mlp.fc2, ls2.gamma}`, `norm` or `fc_norm`, `head`.
//   The fused `attn.qkv` projection stays one parameter; it is split into query, key and value
//   views when the block runs.
//
// Both are pre-norm encoders with erf GELU. The pooled feature is the final-norm class token (what
// timm's `forward_head(pre_logits=True)` gives with `global_pool='token'`), or with timm's
// `global_pool='avg'` the `fc_norm` of the mean patch token. Hugging Face's pooler (dense + tanh) is
// loaded so checkpoints load strictly, but features never use it.
//
// This file also holds the config.json decoding shared with ConvNeXt.swift (timm hub configs,
// errors that name the key).
import Foundation
import Layers
import TensorEngine

// MARK: - Configuration

/// Which library's parameter names a backbone uses; chosen at construction so the module's keys
/// equal the checkpoint's.
public enum ImageKeyLayout: String, Sendable, Codable, Equatable {
    case huggingFace = "hugging-face"
    case timm
}

/// Everything that shapes a ViT: sizes, key layout, pooling and which optional parts the checkpoint
/// carries. Built from a Hugging Face `ViTConfig`, a timm hub config.json, an architecture preset
/// or (partly) the tensor shapes.
public struct ViTConfiguration: Sendable, Equatable {
    /// How the tokens become one feature vector.
    public enum Pooling: String, Sendable, Equatable {
        /// The class token after the final norm.
        case token
        /// The mean of the patch tokens, then `fc_norm` (timm `global_pool='avg'`).
        case average
    }

    public var architecture: String
    public var layout: ImageKeyLayout
    /// Prefix of the backbone's keys: `vit.` for `ViTForImageClassification`, else empty.
    public var keyPrefix: String
    public var imageSize: Int
    public var patchSize: Int
    public var channels: Int
    public var hidden: Int
    public var depth: Int
    public var heads: Int
    public var mlpHidden: Int
    public var qkvBias: Bool
    public var layerNormEps: Float
    public var activation: Activation
    /// Dropout after the position embeddings (HF `hidden_dropout_prob`, timm `pos_drop_rate`).
    public var embeddingDropout: Float
    /// Dropout after the attention projection and in the MLP (HF `hidden_dropout_prob`, timm
    /// `proj_drop_rate`).
    public var dropout: Float
    public var attentionDropout: Float
    /// Largest stochastic-depth rate (timm's linear rule: block i gets rate·i/(depth−1)).
    public var dropPath: Float
    public var pooling: Pooling
    /// timm layer scale (`ls1.gamma`, `ls2.gamma`, from `init_values`).
    public var layerScale: Bool
    /// timm `norm_pre` (a LayerNorm after the embeddings, `pre_norm=True`); the patch projection
    /// then has no bias.
    public var preNorm: Bool
    /// Classifier outputs when the checkpoint carries its classifier (`classifier` / `head`).
    public var classes: Int?
    /// Hugging Face's `pooler.dense` (loaded, never used for features).
    public var pooler: Bool
    /// Whether other input sizes are read by resampling the patch position embeddings (bicubic,
    /// like Hugging Face's `interpolate_pos_encoding=True`). Off by default: the weights were trained
    /// at `imageSize`, and other sizes are rejected.
    public var interpolatePositions: Bool
    public var mean: [Float]
    public var std: [Float]

    public init(architecture: String, layout: ImageKeyLayout, keyPrefix: String = "", imageSize: Int = 224,
                patchSize: Int = 16, channels: Int = 3, hidden: Int = 768, depth: Int = 12, heads: Int = 12,
                mlpHidden: Int = 3072, qkvBias: Bool = true, layerNormEps: Float = 1e-6,
                activation: Activation = .gelu, embeddingDropout: Float = 0, dropout: Float = 0,
                attentionDropout: Float = 0, dropPath: Float = 0,
                pooling: Pooling = .token, layerScale: Bool = false, preNorm: Bool = false, classes: Int? = nil,
                pooler: Bool = false, interpolatePositions: Bool = false,
                mean: [Float] = [0.5, 0.5, 0.5], std: [Float] = [0.5, 0.5, 0.5]) {
        self.architecture = architecture
        self.layout = layout
        self.keyPrefix = keyPrefix
        self.imageSize = imageSize
        self.patchSize = patchSize
        self.channels = channels
        self.hidden = hidden
        self.depth = depth
        self.heads = heads
        self.mlpHidden = mlpHidden
        self.qkvBias = qkvBias
        self.layerNormEps = layerNormEps
        self.activation = activation
        self.embeddingDropout = embeddingDropout
        self.dropout = dropout
        self.attentionDropout = attentionDropout
        self.dropPath = dropPath
        self.pooling = pooling
        self.layerScale = layerScale
        self.preNorm = preNorm
        self.classes = classes
        self.pooler = pooler
        self.interpolatePositions = interpolatePositions
        self.mean = mean
        self.std = std
    }

    /// timm's presets (`vit_*` model functions): patch size, width, depth, heads.
    static let presets: [String: (patch: Int, hidden: Int, depth: Int, heads: Int)] = [
        "vit_tiny_patch16_224": (16, 192, 12, 3),
        "vit_small_patch16_224": (16, 384, 12, 6),
        "vit_base_patch16_224": (16, 768, 12, 12),
        "vit_base_patch32_224": (32, 768, 12, 12),
    ]

    /// The timm preset `name` at 224×224 with ImageNet-21k/1k augreg preprocessing (mean = std = 0.5).
    public static func preset(_ name: String) -> ViTConfiguration? {
        guard let p = presets[name] else { return nil }
        return ViTConfiguration(architecture: name, layout: .timm, patchSize: p.patch, hidden: p.hidden, depth: p.depth,
                                heads: p.heads, mlpHidden: 4 * p.hidden)
    }

    /// Throws `ImageEncoderError.invalidConfiguration` naming the first value that does not fit.
    func validate() throws {
        func fail(_ key: String, _ reason: String) -> ImageEncoderError {
            .invalidConfiguration(architecture: architecture, key: key, reason: reason)
        }
        for (value, key) in [(imageSize, "image_size"), (patchSize, "patch_size"), (hidden, "hidden_size"),
                             (depth, "num_hidden_layers"), (heads, "num_attention_heads"), (mlpHidden, "intermediate_size")]
        where value <= 0 { throw fail(key, "must be positive, got \(value)") }
        guard channels == 3 else { throw fail("num_channels", "must be 3 (RGB), got \(channels)") }
        guard hidden % heads == 0 else {
            throw fail("hidden_size", "(\(hidden)) must be a multiple of num_attention_heads (\(heads))")
        }
        guard imageSize % patchSize == 0 else {
            throw fail("image_size", "(\(imageSize)) must be a multiple of patch_size (\(patchSize))")
        }
        guard layerNormEps > 0, layerNormEps.isFinite else { throw fail("layer_norm_eps", "must be a positive number, got \(layerNormEps)") }
        for (p, key) in [(embeddingDropout, "pos_drop_rate"), (dropout, "hidden_dropout_prob"), (attentionDropout, "attention_probs_dropout_prob"), (dropPath, "drop_path_rate")]
        where !(p >= 0 && p < 1) { throw fail(key, "must be in [0, 1), got \(p)") }
        if let classes, classes <= 0 { throw fail("num_classes", "must be positive, got \(classes)") }
        guard mean.count == 3, std.count == 3, std.allSatisfy({ $0 > 0 }) else {
            throw fail("pretrained_cfg.mean/std", "must hold three values each, std positive; got \(mean) and \(std)")
        }
        guard layout == .timm || (!layerScale && !preNorm && pooling == .token) else {
            throw fail("layout", "is Hugging Face's, which has no layer scale, pre-norm or average pooling")
        }
    }

    var tokens: Int { (imageSize / patchSize) * (imageSize / patchSize) + 1 }
}

/// Hugging Face's `ViTConfig` (config.json with `model_type: vit`), with `transformers`' defaults.
public struct HFViTConfig: Decodable, Sendable, Equatable {
    public var hiddenSize: Int
    public var layers: Int
    public var heads: Int
    public var intermediateSize: Int
    public var hiddenAct: String
    public var hiddenDropout: Float
    public var attentionDropout: Float
    public var layerNormEps: Float
    public var imageSize: Int
    public var patchSize: Int
    public var channels: Int
    public var qkvBias: Bool
    public var architectures: [String]?

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size"
        case layers = "num_hidden_layers"
        case heads = "num_attention_heads"
        case intermediateSize = "intermediate_size"
        case hiddenAct = "hidden_act"
        case hiddenDropout = "hidden_dropout_prob"
        case attentionDropout = "attention_probs_dropout_prob"
        case layerNormEps = "layer_norm_eps"
        case imageSize = "image_size"
        case patchSize = "patch_size"
        case channels = "num_channels"
        case qkvBias = "qkv_bias"
        case architectures
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? 768
        layers = try c.decodeIfPresent(Int.self, forKey: .layers) ?? 12
        heads = try c.decodeIfPresent(Int.self, forKey: .heads) ?? 12
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? 3072
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "gelu"
        hiddenDropout = try c.decodeIfPresent(Float.self, forKey: .hiddenDropout) ?? 0
        attentionDropout = try c.decodeIfPresent(Float.self, forKey: .attentionDropout) ?? 0
        layerNormEps = try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? 1e-12
        imageSize = try c.decodeIfPresent(SquareSize.self, forKey: .imageSize)?.value ?? 224
        patchSize = try c.decodeIfPresent(SquareSize.self, forKey: .patchSize)?.value ?? 16
        channels = try c.decodeIfPresent(Int.self, forKey: .channels) ?? 3
        qkvBias = try c.decodeIfPresent(Bool.self, forKey: .qkvBias) ?? true
        architectures = try c.decodeIfPresent([String].self, forKey: .architectures)
    }
}

/// The `model_args` of a timm ViT hub config.json that runpipe reads. Keys that change the
/// structure in ways not implemented here are rejected unless they hold timm's default.
public struct TimmViTArguments: Decodable, Sendable, Equatable {
    public var imageSize: Int?
    public var patchSize: Int?
    public var channels: Int?
    public var numClasses: Int?
    public var globalPool: String?
    public var embedDim: Int?
    public var depth: Int?
    public var heads: Int?
    public var mlpRatio: Double?
    public var qkvBias: Bool?
    public var initValues: Double?
    public var classToken: Bool?
    public var preNorm: Bool?
    public var finalNorm: Bool?
    public var fcNorm: Bool?
    /// timm's dropout before `head`; read but unused (features stop before the classifier, and
    /// `logits` is for evaluation).
    public var dropRate: Float?
    public var positionDropRate: Float?
    public var projectionDropRate: Float?
    public var attentionDropRate: Float?
    public var dropPathRate: Float?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case imageSize = "img_size"
        case patchSize = "patch_size"
        case channels = "in_chans"
        case numClasses = "num_classes"
        case globalPool = "global_pool"
        case embedDim = "embed_dim"
        case depth
        case heads = "num_heads"
        case mlpRatio = "mlp_ratio"
        case qkvBias = "qkv_bias"
        case initValues = "init_values"
        case classToken = "class_token"
        case preNorm = "pre_norm"
        case finalNorm = "final_norm"
        case fcNorm = "fc_norm"
        case dropRate = "drop_rate"
        case positionDropRate = "pos_drop_rate"
        case projectionDropRate = "proj_drop_rate"
        case attentionDropRate = "attn_drop_rate"
        case dropPathRate = "drop_path_rate"
    }

    /// timm arguments accepted only at these (default) values.
    static let fixedDefaults: [String: JSONScalar] = [
        "qk_norm": .bool(false), "scale_attn_norm": .bool(false), "scale_mlp_norm": .bool(false),
        "proj_bias": .bool(true), "no_embed_class": .bool(false), "reg_tokens": .number(0),
        "pos_embed": .string("learn"), "pool_include_prefix": .bool(false), "dynamic_img_size": .bool(false),
        "dynamic_img_pad": .bool(false), "patch_drop_rate": .number(0),
    ]
    /// timm arguments that only affect initialisation.
    static let ignored: Set<String> = ["weight_init", "fix_init"]

    public init(from decoder: Decoder) throws {
        try TimmArguments.check(decoder, known: Set(CodingKeys.allCases.map(\.rawValue)), fixed: Self.fixedDefaults,
                                ignored: Self.ignored, family: "ViT")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        imageSize = try c.decodeIfPresent(SquareSize.self, forKey: .imageSize)?.value
        patchSize = try c.decodeIfPresent(SquareSize.self, forKey: .patchSize)?.value
        channels = try c.decodeIfPresent(Int.self, forKey: .channels)
        numClasses = try c.decodeIfPresent(Int.self, forKey: .numClasses)
        globalPool = try c.decodeIfPresent(String.self, forKey: .globalPool)
        embedDim = try c.decodeIfPresent(Int.self, forKey: .embedDim)
        depth = try c.decodeIfPresent(Int.self, forKey: .depth)
        heads = try c.decodeIfPresent(Int.self, forKey: .heads)
        mlpRatio = try c.decodeIfPresent(Double.self, forKey: .mlpRatio)
        qkvBias = try c.decodeIfPresent(Bool.self, forKey: .qkvBias)
        initValues = try c.decodeIfPresent(Double.self, forKey: .initValues)
        classToken = try c.decodeIfPresent(Bool.self, forKey: .classToken)
        preNorm = try c.decodeIfPresent(Bool.self, forKey: .preNorm)
        finalNorm = try c.decodeIfPresent(Bool.self, forKey: .finalNorm)
        fcNorm = try c.decodeIfPresent(Bool.self, forKey: .fcNorm)
        dropRate = try c.decodeIfPresent(Float.self, forKey: .dropRate)
        positionDropRate = try c.decodeIfPresent(Float.self, forKey: .positionDropRate)
        projectionDropRate = try c.decodeIfPresent(Float.self, forKey: .projectionDropRate)
        attentionDropRate = try c.decodeIfPresent(Float.self, forKey: .attentionDropRate)
        dropPathRate = try c.decodeIfPresent(Float.self, forKey: .dropPathRate)
    }
}

// MARK: - Modules

/// One pre-norm encoder block: `x + attn(norm1(x))`, then `x + mlp(norm2(x))`, with optional
/// layer scale and stochastic depth. Keys follow `layout`.
final class ViTBlock: Module {
    /// How the block holds its query, key and value projections.
    enum Projections {
        /// Hugging Face: three [hidden, hidden] projections.
        case separate(query: Linear, key: Linear, value: Linear)
        /// timm: one fused [3·hidden, hidden] projection, split into views when the block runs.
        case fused(Linear)
    }

    let norm1: LayerNorm, norm2: LayerNorm
    let projections: Projections
    let projection: Linear
    let fc1: Linear, fc2: Linear
    let gamma1: Tensor?, gamma2: Tensor?
    let heads: Int
    let hidden: Int
    let activation: Activation
    let attentionDropout: Float
    let dropout: Dropout
    let dropPath: StochasticDepth
    let layout: ImageKeyLayout
    let rng: RandomSource

    init(_ c: ViTConfiguration, dropPath rate: Float, rng: RandomSource) {
        let e = c.hidden
        norm1 = LayerNorm(e, eps: c.layerNormEps)
        norm2 = LayerNorm(e, eps: c.layerNormEps)
        switch c.layout {
        case .huggingFace:
            projections = .separate(query: Linear(e, e, bias: c.qkvBias, rng: rng), key: Linear(e, e, bias: c.qkvBias, rng: rng),
                                    value: Linear(e, e, bias: c.qkvBias, rng: rng))
        case .timm:
            projections = .fused(Linear(e, 3 * e, bias: c.qkvBias, rng: rng))
        }
        projection = Linear(e, e, rng: rng)
        fc1 = Linear(e, c.mlpHidden, rng: rng)
        fc2 = Linear(c.mlpHidden, e, rng: rng)
        gamma1 = c.layerScale ? Tensor.parameter(Tensor.full([e], 1e-5)) : nil
        gamma2 = c.layerScale ? Tensor.parameter(Tensor.full([e], 1e-5)) : nil
        heads = c.heads
        hidden = e
        activation = c.activation
        attentionDropout = c.attentionDropout
        dropout = Dropout(c.dropout, rng: rng)
        dropPath = StochasticDepth(rate, rng: rng)
        layout = c.layout
        self.rng = rng
        super.init()
        switch projections {
        case .separate(let query, let key, let value):
            register(child: "layernorm_before", norm1)
            register(child: "attention.attention.query", query)
            register(child: "attention.attention.key", key)
            register(child: "attention.attention.value", value)
            register(child: "attention.output.dense", projection)
            register(child: "layernorm_after", norm2)
            register(child: "intermediate.dense", fc1)
            register(child: "output.dense", fc2)
        case .fused(let qkv):
            register(child: "norm1", norm1)
            register(child: "attn.qkv", qkv)
            register(child: "attn.proj", projection)
            if let gamma1 { register(parameter: "ls1.gamma", gamma1) }
            register(child: "norm2", norm2)
            register(child: "mlp.fc1", fc1)
            register(child: "mlp.fc2", fc2)
            if let gamma2 { register(parameter: "ls2.gamma", gamma2) }
        }
        register(child: "dropout", dropout)
        register(child: "drop_path", dropPath)
    }

    /// x: [batch, tokens, hidden].
    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let h = try norm1(x)
        let q: Tensor, k: Tensor, v: Tensor
        switch projections {
        case .separate(let query, let key, let value):
            q = try query(h); k = try key(h); v = try value(h)
        case .fused(let qkv):
            // Views of the fused output; `attention` reads them in place (last axis contiguous).
            let fused = try qkv(h)
            q = try fused.slice(axis: 2, start: 0, end: hidden)
            k = try fused.slice(axis: 2, start: hidden, end: 2 * hidden)
            v = try fused.slice(axis: 2, start: 2 * hidden, end: 3 * hidden)
        }
        let context = try attention(query: q, key: k, value: v, heads: heads, dropout: attentionDropout,
                                    training: isTraining, rng: &rng.generator)
        var branch = try dropout(try projection(context))
        if let gamma1 { branch = try mul(branch, gamma1) }
        let attended = try add(x, try dropPath(branch))
        var inner = try activation.apply(try fc1(try norm2(attended)))
        if layout == .timm { inner = try dropout(inner) }
        var mlpOut = try dropout(try fc2(inner))
        if let gamma2 { mlpOut = try mul(mlpOut, gamma2) }
        return try add(attended, try dropPath(mlpOut))
    }
}

/// A Vision Transformer image encoder whose parameter keys equal a Hugging Face or timm
/// checkpoint's (see the file header). Inputs must be exactly `imageSize`×`imageSize`.
public final class VisionTransformer: Module, ImageEncoder {
    public let configuration: ViTConfiguration
    public let shape: ImageEncoderShape
    let classToken: Tensor
    let positions: Tensor
    let patchEmbedding: Conv2d
    let preNorm: LayerNorm?
    let blocks: [ViTBlock]
    /// The final norm (token pooling) or timm's `fc_norm` (average pooling).
    let finalNorm: LayerNorm
    let pooler: Linear?
    let classifier: Linear?
    let embeddingDropout: Dropout

    /// A ViT with freshly initialised weights.
    public init(_ c: ViTConfiguration, rng: RandomSource) throws {
        try c.validate()
        configuration = c
        shape = ImageEncoderShape(architecture: c.architecture, features: c.hidden, blocks: c.depth, inputSize: c.imageSize,
                                  mean: c.mean, std: c.std, fixedSize: !c.interpolatePositions,
                                  minimumSize: c.interpolatePositions ? c.patchSize : c.imageSize)
        classToken = Tensor.parameter(Tensor.normal([1, 1, c.hidden], std: 0.02, rng: &rng.generator))
        positions = Tensor.parameter(Tensor.normal([1, c.tokens, c.hidden], std: 0.02, rng: &rng.generator))
        patchEmbedding = try Conv2d(c.channels, c.hidden, kernel: (c.patchSize, c.patchSize),
                                    stride: (c.patchSize, c.patchSize), bias: !c.preNorm, rng: rng)
        preNorm = c.preNorm ? LayerNorm(c.hidden, eps: c.layerNormEps) : nil
        blocks = (0..<c.depth).map { i in
            ViTBlock(c, dropPath: c.depth > 1 ? c.dropPath * Float(i) / Float(c.depth - 1) : c.dropPath, rng: rng)
        }
        finalNorm = LayerNorm(c.hidden, eps: c.layerNormEps)
        pooler = c.pooler ? Linear(c.hidden, c.hidden, rng: rng) : nil
        classifier = c.classes.map { Linear(c.hidden, $0, rng: rng) }
        embeddingDropout = Dropout(c.embeddingDropout, rng: rng)
        super.init()
        let p = c.keyPrefix
        switch c.layout {
        case .huggingFace:
            register(parameter: p + "embeddings.cls_token", classToken)
            register(parameter: p + "embeddings.position_embeddings", positions)
            register(child: p + "embeddings.patch_embeddings.projection", patchEmbedding)
            for (i, b) in blocks.enumerated() { register(child: p + "encoder.layer.\(i)", b) }
            register(child: p + "layernorm", finalNorm)
            if let pooler { register(child: p + "pooler.dense", pooler) }
            if let classifier { register(child: "classifier", classifier) }
        case .timm:
            register(parameter: p + "cls_token", classToken)
            register(parameter: p + "pos_embed", positions)
            register(child: p + "patch_embed.proj", patchEmbedding)
            if let preNorm { register(child: p + "norm_pre", preNorm) }
            for (i, b) in blocks.enumerated() { register(child: p + "blocks.\(i)", b) }
            register(child: p + (c.pooling == .token ? "norm" : "fc_norm"), finalNorm)
            if let classifier { register(child: "head", classifier) }
        }
        register(child: "embedding_dropout", embeddingDropout)
    }

    /// Token states [batch, tokens, hidden] after the last block (before the final norm).
    func encode(_ images: Tensor) throws -> Tensor {
        let c = configuration
        guard images.rank == 4, images.shape[1] == c.channels else {
            throw ImageEncoderError.invalidInput("\(c.architecture) reads [batch, \(c.channels), height, width] images; got \(shapeString(images.shape))")
        }
        if c.interpolatePositions {
            guard images.shape[2] >= c.patchSize, images.shape[3] >= c.patchSize else {
                throw ImageEncoderError.invalidInput(
                    "\(c.architecture) needs images of at least \(c.patchSize)×\(c.patchSize) (one patch); got \(images.shape[2])×\(images.shape[3])")
            }
        } else {
            guard images.shape[2] == c.imageSize, images.shape[3] == c.imageSize else {
                throw ImageEncoderError.invalidInput(
                    "\(c.architecture) needs images of exactly \(c.imageSize)×\(c.imageSize) (its position embeddings are fixed to that size); got \(images.shape[2])×\(images.shape[3])")
            }
        }
        let batch = images.shape[0]
        let grid = try patchEmbedding(images)                                   // [B, E, h, w]
        let rows = grid.shape[2], columns = grid.shape[3]
        let patches = try grid.reshaped([batch, c.hidden, rows * columns]).transposed(1, 2)
        let cls = try expand(classToken, to: [batch, 1, c.hidden])
        var x = try add(try concat([cls, patches], axis: 1), try positionEmbeddings(rows: rows, columns: columns))
        x = try embeddingDropout(x)
        if let preNorm { x = try preNorm(x) }
        for block in blocks { x = try block(x) }
        return x
    }

    /// The position embeddings [1, 1 + rows·columns, hidden] for a grid of patches: the
    /// checkpoint's own for its grid, else its patch part resampled bicubically (PyTorch's
    /// `interpolate(mode="bicubic", align_corners=False)`, as one differentiable linear map).
    func positionEmbeddings(rows: Int, columns: Int) throws -> Tensor {
        let c = configuration, side = c.imageSize / c.patchSize
        if rows == side, columns == side { return positions }
        let weights = Bicubic.matrix(from: side, to: rows).kronecker(Bicubic.matrix(from: side, to: columns))
        let map = try Tensor(weights.values, shape: [rows * columns, side * side])
        let patchPart = try positions.slice(axis: 1, start: 1, end: c.tokens).reshaped([side * side, c.hidden])
        let resampled = try matmul(map, patchPart).reshaped([1, rows * columns, c.hidden])
        return try concat([try positions.slice(axis: 1, start: 0, end: 1), resampled], axis: 1)
    }

    public func features(_ images: Tensor) throws -> Tensor {
        let x = try encode(images)
        let batch = x.shape[0], c = configuration
        switch c.pooling {
        case .token:
            // LayerNorm is per token, so normalising only the class token gives the same result.
            return try finalNorm(try x.slice(axis: 1, start: 0, end: 1).reshaped([batch, c.hidden]))
        case .average:
            return try finalNorm(try mean(try x.slice(axis: 1, start: 1, end: x.shape[1]), axes: [1]))
        }
    }

    public func logits(_ images: Tensor) throws -> Tensor? {
        guard let classifier else { return nil }
        return try classifier(try features(images))
    }

    /// Block `index` is transformer layer `index`; the top block also holds the final norm (or
    /// `fc_norm`) and, when present, the classifier and Hugging Face's pooler. The embeddings
    /// (class token, position embeddings, patch projection, timm's `norm_pre`) are the stem.
    public func parameterPrefixes(ofBlock index: Int) -> [String] {
        let c = configuration, p = c.keyPrefix
        guard index >= 0, index < c.depth else { return [] }
        var out: [String]
        switch c.layout {
        case .huggingFace:
            out = [p + "encoder.layer.\(index)."]
            if index == c.depth - 1 {
                out.append(p + "layernorm.")
                if pooler != nil { out.append(p + "pooler.") }
                if classifier != nil { out.append("classifier.") }
            }
        case .timm:
            out = [p + "blocks.\(index)."]
            if index == c.depth - 1 {
                out.append(p + (c.pooling == .token ? "norm." : "fc_norm."))
                if classifier != nil { out.append("head.") }
            }
        }
        return out
    }
}

// MARK: - Bicubic resampling

/// PyTorch's bicubic interpolation weights (`align_corners=False`, cubic coefficient −0.75, edge
/// samples repeated), as dense matrices so resampling is a matrix product.
enum Bicubic {
    /// A row-major [rows, columns] matrix.
    struct Matrix {
        var rows: Int, columns: Int
        var values: [Float]

        /// The Kronecker product: resampling a row-major grid by `self` along rows and `other` along columns.
        func kronecker(_ other: Matrix) -> Matrix {
            var out = [Float](repeating: 0, count: rows * other.rows * columns * other.columns)
            let width = columns * other.columns
            for i in 0..<rows { for j in 0..<columns where values[i * columns + j] != 0 {
                let a = values[i * columns + j]
                for k in 0..<other.rows { for l in 0..<other.columns {
                    out[(i * other.rows + k) * width + j * other.columns + l] = a * other.values[k * other.columns + l]
                } }
            } }
            return Matrix(rows: rows * other.rows, columns: width, values: out)
        }
    }

    /// [outputs, inputs] weights resampling a line of `inputs` samples to `outputs`.
    static func matrix(from inputs: Int, to outputs: Int) -> Matrix {
        var m = Matrix(rows: outputs, columns: inputs, values: [Float](repeating: 0, count: outputs * inputs))
        let a = -0.75, scale = Double(inputs) / Double(outputs)
        func near(_ x: Double) -> Double { ((a + 2) * x - (a + 3)) * x * x + 1 }            // |x| ≤ 1
        func far(_ x: Double) -> Double { ((a * x - 5 * a) * x + 8 * a) * x - 4 * a }      // 1 < |x| < 2
        for o in 0..<outputs {
            let source = scale * (Double(o) + 0.5) - 0.5
            let base = source.rounded(.down), t = source - base
            let taps = [far(t + 1), near(t), near(1 - t), far(2 - t)]
            for (k, w) in taps.enumerated() {
                let i = Swift.min(Swift.max(Int(base) - 1 + k, 0), inputs - 1)
                m.values[o * inputs + i] += Float(w)
            }
        }
        return m
    }
}

// MARK: - Stochastic depth

/// Drop path (stochastic depth): in training, zeroes a whole sample's residual branch with
/// probability `p` and scales the kept ones by 1/(1−p); the identity in evaluation or when p = 0.
final class StochasticDepth: Module {
    let p: Float
    let rng: RandomSource

    init(_ p: Float, rng: RandomSource) {
        self.p = p
        self.rng = rng
        super.init()
    }

    /// x: [batch, …]; one keep/drop draw per sample.
    func callAsFunction(_ x: Tensor) throws -> Tensor {
        guard isTraining, p > 0, x.rank >= 1 else { return x }
        let batch = x.shape[0]
        let draws = Tensor.uniform([batch], rng: &rng.generator).toArray()
        let keep = 1 - p
        let scales = draws.map { ($0 + keep).rounded(.down) / keep }
        let mask = try Tensor(scales, shape: [batch] + Array(repeating: 1, count: x.rank - 1))
        return try mul(x, mask)
    }
}

// MARK: - Building from a checkpoint

extension ViTConfiguration {
    /// The configuration `description` calls for: config.json (Hugging Face or timm hub) when
    /// there is one, else the named architecture's preset; the key layout, key prefix, classifier
    /// and pooler from the tensor names.
    static func resolve(_ d: ImageCheckpointDescription) throws -> ViTConfiguration {
        let keys = d.tensorShapes
        let name = d.architecture ?? "vit"
        // A config.json that is not JSON fails loudly here (recognition only skips it).
        let probe = try d.configJSON.map { try ImageConfigDecoding.decode(ImageConfigProbe.self, from: $0, architecture: d.architecture ?? "vit") }
        var c: ViTConfiguration
        if let data = d.configJSON, probe?.modelType == "vit" {
            c = try fromHuggingFace(data, name: d.architecture)
            if let named = d.architecture, let p = presets[named],
               (p.patch, p.hidden, p.depth, p.heads) != (c.patchSize, c.hidden, c.depth, c.heads) {
                throw ImageEncoderError.invalidConfiguration(
                    architecture: named, key: "architecture",
                    reason: "names patch \(p.patch), width \(p.hidden), \(p.depth) layers, \(p.heads) heads but config.json says patch \(c.patchSize), width \(c.hidden), \(c.depth) layers, \(c.heads) heads")
            }
        } else if let data = d.configJSON, probe?.timmArchitecture != nil {
            c = try fromTimm(data, named: d.architecture)
        } else if let named = d.architecture {
            guard let preset = preset(named) else {
                throw ImageEncoderError.unsupportedArchitecture(named, supported: presets.keys.sorted())
            }
            c = preset
        } else {
            throw ImageEncoderError.invalidConfiguration(
                architecture: name, key: "num_attention_heads",
                reason: "cannot be read from the weights of '\(d.source)'; add the checkpoint's config.json or name the architecture (one of \(presets.keys.sorted().joined(separator: ", ")))")
        }
        // The key layout and optional parts come from the tensors themselves.
        if keys.keys.contains(where: { $0.hasSuffix("embeddings.patch_embeddings.projection.weight") }) {
            c.layout = .huggingFace
            c.keyPrefix = keys["vit.embeddings.cls_token"] != nil ? "vit." : ""
            c.pooler = keys[c.keyPrefix + "pooler.dense.weight"] != nil
            c.classes = keys["classifier.weight"].map { $0[0] }
        } else if keys["patch_embed.proj.weight"] != nil {
            c.layout = .timm
            c.keyPrefix = ""
            c.pooler = false
            c.classes = keys["head.weight"].map { $0[0] }
        } else if keys.isEmpty {
            c.classes = nil
        }
        return c
    }

    static func fromHuggingFace(_ data: Data, name: String?) throws -> ViTConfiguration {
        let label = name ?? "vit"
        let h = try ImageConfigDecoding.decode(HFViTConfig.self, from: data, architecture: label)
        let activation: Activation
        switch h.hiddenAct {
        case "gelu": activation = .gelu
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": activation = .gelu_tanh
        case "relu": activation = .relu
        default:
            throw ImageEncoderError.invalidConfiguration(architecture: label, key: "hidden_act",
                                                         reason: "'\(h.hiddenAct)' is not supported (gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu)")
        }
        return ViTConfiguration(architecture: name ?? h.architectures?.first ?? "vit", layout: .huggingFace,
                                imageSize: h.imageSize, patchSize: h.patchSize, channels: h.channels, hidden: h.hiddenSize,
                                depth: h.layers, heads: h.heads, mlpHidden: h.intermediateSize, qkvBias: h.qkvBias,
                                layerNormEps: h.layerNormEps, activation: activation, embeddingDropout: h.hiddenDropout,
                                dropout: h.hiddenDropout,
                                attentionDropout: h.attentionDropout)
    }

    static func fromTimm(_ data: Data, named: String?) throws -> ViTConfiguration {
        let hub = try ImageConfigDecoding.decode(TimmHubConfiguration<TimmViTArguments>.self, from: data,
                                                 architecture: named ?? "vit")
        let arch = hub.architecture
        func fail(_ key: String, _ reason: String) -> ImageEncoderError {
            .invalidConfiguration(architecture: arch, key: key, reason: reason)
        }
        let a = hub.modelArgs
        var c: ViTConfiguration
        if let preset = preset(arch) {
            c = preset
        } else if a?.embedDim != nil, a?.depth != nil, a?.heads != nil {
            c = ViTConfiguration(architecture: arch, layout: .timm)
        } else {
            throw fail("architecture", "has no runpipe preset (supported: \(presets.keys.sorted().joined(separator: ", "))); give model_args with embed_dim, depth and num_heads")
        }
        if let named, named != arch {
            throw fail("architecture", "is '\(arch)' in config.json but the pipeline names '\(named)'")
        }
        c.architecture = arch
        if let v = a?.imageSize { c.imageSize = v } else if let s = hub.pretrainedConfig?.inputSize, s.count == 3 { c.imageSize = s[1] }
        if let v = a?.patchSize { c.patchSize = v }
        if let v = a?.channels { c.channels = v }
        if let v = a?.embedDim { c.hidden = v; c.mlpHidden = 4 * v }
        if let v = a?.depth { c.depth = v }
        if let v = a?.heads { c.heads = v }
        if let r = a?.mlpRatio { c.mlpHidden = Int((Double(c.hidden) * r).rounded(.down)) }
        if let v = a?.qkvBias { c.qkvBias = v }
        c.layerScale = a?.initValues != nil
        c.preNorm = a?.preNorm ?? false
        if a?.classToken == false { throw fail("model_args.class_token", "must be true (runpipe's ViT pools from the class token or the patch tokens after it)") }
        if a?.finalNorm == false { throw fail("model_args.final_norm", "must be true") }
        switch a?.globalPool ?? hub.globalPool ?? "token" {
        case "token": c.pooling = .token
        case "avg": c.pooling = .average
        case let other: throw fail("model_args.global_pool", "'\(other)' is not supported (token, avg)")
        }
        if let fc = a?.fcNorm, fc != (c.pooling == .average) {
            throw fail("model_args.fc_norm", "must be \(c.pooling == .average) with global_pool '\(c.pooling == .average ? "avg" : "token")'")
        }
        c.embeddingDropout = a?.positionDropRate ?? 0
        c.dropout = a?.projectionDropRate ?? 0
        c.attentionDropout = a?.attentionDropRate ?? 0
        c.dropPath = a?.dropPathRate ?? 0
        try hub.pretrainedConfig?.applyNormalisation(mean: &c.mean, std: &c.std, architecture: arch)
        return c
    }
}

extension ImageEncoderFamily {
    /// ViT (Hugging Face `ViTModel` / `ViTForImageClassification`, timm `vit_*`).
    static var vit: ImageEncoderFamily {
        ImageEncoderFamily(
            name: "vit",
            architectures: ViTConfiguration.presets.keys.sorted(),
            recognises: { d in
                if let name = d.architecture { return ViTConfiguration.presets[name] != nil }
                if let said = d.configSays(modelType: "vit", timmPrefix: "vit_") { return said }
                let keys = d.tensorShapes
                let hf = ["", "vit."].contains { keys[$0 + "embeddings.cls_token"] != nil && keys[$0 + "embeddings.patch_embeddings.projection.weight"] != nil }
                let timm = keys["cls_token"] != nil && keys["patch_embed.proj.weight"] != nil && keys["blocks.0.attn.qkv.weight"] != nil
                return hf || timm
            },
            build: { d, rng in try VisionTransformer(try ViTConfiguration.resolve(d), rng: rng) })
    }
}
