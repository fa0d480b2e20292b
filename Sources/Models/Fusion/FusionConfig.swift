// Settings of the late-fusion modules, with AutoGluon-Multimodal 1.6's defaults
// (autogluon/multimodal/configs/model/default.yaml, sections `fusion_mlp` and
// `fusion_transformer`; the modules in autogluon/multimodal/models/fusion/).
//
// Both configs decode with snake_case keys; absent keys take the defaults below, each written
// once as a static value.
import Foundation
import Layers

/// An unusable fusion setting or input, with what to change.
public enum FusionError: Error, CustomStringConvertible, Equatable {
    /// A configuration field (snake_case, as in the pipeline file) holds an unusable value.
    case invalidConfig(fusion: String, field: String, detail: String)
    /// The features handed to a fusion module do not fit it.
    case inputs(String)

    public var description: String {
        switch self {
        case .invalidConfig(let fusion, let field, let detail):
            return "\(fusion): invalid `\(field)`: \(detail)"
        case .inputs(let detail):
            return "fusion inputs: \(detail)"
        }
    }
}

/// How each backbone's features are mapped before fusion (AutoMM's `adapt_in_features`).
public enum AdaptInFeatures: String, Codable, Sendable, CaseIterable {
    /// A Linear per backbone to the widest backbone's width.
    case max
    /// A Linear per backbone to the narrowest backbone's width.
    case min
    /// No adapter: features enter as they are (AutoMM's unset value; fusion MLP only — AutoMM's
    /// fusion transformer rejects it). Spelled `none` in a pipeline file.
    case identity = "none"

    /// The adapted width of every backbone, or nil when there is no adapter.
    public func width(for inputWidths: [Int]) -> Int? {
        switch self {
        case .max: return inputWidths.max()
        case .min: return inputWidths.min()
        case .identity: return nil
        }
    }
}

/// Normalisation inside a fusion MLP unit. AutoMM also offers batch and ghost batch norm;
/// runpipe has layer norm, AutoMM's default.
public enum FusionNormalization: String, Codable, Sendable, CaseIterable {
    case layer_norm
}

/// The feed-forward activation of a fusion transformer block. The GLU variants split the first
/// linear's output (twice the hidden width) into halves a ‖ b and return a · act(b).
public enum FeedForwardActivation: String, Codable, Sendable, CaseIterable {
    case reglu, geglu, relu, gelu, leaky_relu

    /// Whether the first linear produces twice the hidden width.
    public var isGLU: Bool { self == .reglu || self == .geglu }
}

/// What replaces a backbone's features when modality dropout drops them for a row.
public enum MissingModality: String, Codable, Sendable, CaseIterable {
    /// All-zero features (AutoMM drops a modality at the input — a blank text, an all-zero
    /// image, the fill value of a column; zero features is the feature-level equivalent).
    case zero
    /// A learned vector per backbone (`missing.<i>`, initialised to zeros), the feature-level
    /// counterpart of AutoMM's `use_learnable_image`.
    case learned
}

/// Training-time dropout of whole backbones per row, the feature-level counterpart of AutoMM
/// 1.6's `data.modality_dropout` (default 0), which blanks each column's input of a training row
/// independently in its data processors and lets a row lose everything. Rule here: each
/// (row, backbone) is dropped independently with `probability`; when that would drop every
/// backbone of a row, the backbone with the largest draw is kept instead — given that all were
/// drawn below `probability`, a uniformly random one — so a backbone is dropped with probability
/// p − pⁿ/n and no row ever loses all its modalities (a single backbone is never dropped). The
/// draws come from the module's `RandomSource`, `rows × backbones` per training forward, none
/// in eval mode.
public struct ModalityDropoutConfig: Codable, Sendable, Equatable {
    public static let defaultProbability: Float = 0
    public static let defaultReplacement: MissingModality = .zero

    public var probability: Float
    public var replacement: MissingModality

    public init(probability: Float = Self.defaultProbability, replacement: MissingModality = Self.defaultReplacement) {
        self.probability = probability
        self.replacement = replacement
    }

    enum CodingKeys: String, CodingKey { case probability, replacement }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        probability = try c.decodeIfPresent(Float.self, forKey: .probability) ?? Self.defaultProbability
        replacement = try c.decodeIfPresent(MissingModality.self, forKey: .replacement) ?? Self.defaultReplacement
    }

    func validate(_ fusion: String) throws {
        guard probability >= 0 && probability < 1 else {
            throw FusionError.invalidConfig(fusion: fusion, field: "modality_dropout.probability",
                                            detail: "\(probability) must be in [0, 1); use 0 to turn modality dropout off")
        }
    }
}

/// Settings of `FusionMLP` (AutoMM's `MultimodalFusionMLP`).
public struct FusionMLPConfig: Codable, Sendable, Equatable {
    public static let defaultAdaptInFeatures: AdaptInFeatures = .max
    public static let defaultHiddenSizes: [Int] = [128]
    public static let defaultActivation: Activation = .leaky_relu
    public static let defaultDropout: Float = 0.1
    public static let defaultNormalization: FusionNormalization = .layer_norm

    public var adaptInFeatures: AdaptInFeatures
    /// Output width of each MLP unit (norm → linear → activation → dropout), in order.
    public var hiddenSizes: [Int]
    public var activation: Activation
    public var dropout: Float
    public var normalization: FusionNormalization
    /// Weight of every backbone's own loss added to the fused loss; nil: no auxiliary heads.
    public var auxLossWeight: Float?
    public var modalityDropout: ModalityDropoutConfig

    public init(adaptInFeatures: AdaptInFeatures = Self.defaultAdaptInFeatures, hiddenSizes: [Int] = Self.defaultHiddenSizes,
                activation: Activation = Self.defaultActivation, dropout: Float = Self.defaultDropout,
                normalization: FusionNormalization = Self.defaultNormalization, auxLossWeight: Float? = nil,
                modalityDropout: ModalityDropoutConfig = ModalityDropoutConfig()) {
        self.adaptInFeatures = adaptInFeatures
        self.hiddenSizes = hiddenSizes
        self.activation = activation
        self.dropout = dropout
        self.normalization = normalization
        self.auxLossWeight = auxLossWeight
        self.modalityDropout = modalityDropout
    }

    enum CodingKeys: String, CodingKey {
        case adaptInFeatures = "adapt_in_features"
        case hiddenSizes = "hidden_sizes"
        case activation, dropout, normalization
        case auxLossWeight = "aux_loss_weight"
        case modalityDropout = "modality_dropout"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        adaptInFeatures = try c.decodeIfPresent(AdaptInFeatures.self, forKey: .adaptInFeatures) ?? Self.defaultAdaptInFeatures
        hiddenSizes = try c.decodeIfPresent([Int].self, forKey: .hiddenSizes) ?? Self.defaultHiddenSizes
        activation = try c.decodeIfPresent(Activation.self, forKey: .activation) ?? Self.defaultActivation
        dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? Self.defaultDropout
        normalization = try c.decodeIfPresent(FusionNormalization.self, forKey: .normalization) ?? Self.defaultNormalization
        auxLossWeight = try c.decodeIfPresent(Float.self, forKey: .auxLossWeight)
        modalityDropout = try c.decodeIfPresent(ModalityDropoutConfig.self, forKey: .modalityDropout) ?? ModalityDropoutConfig()
    }

    /// Throws naming the first field that cannot work with backbones of these feature widths.
    public func validate(inputWidths: [Int]) throws {
        let fusion = "fusion_mlp"
        try validateInputWidths(inputWidths, fusion: fusion)
        for (i, h) in hiddenSizes.enumerated() where h <= 0 {
            throw FusionError.invalidConfig(fusion: fusion, field: "hidden_sizes[\(i)]", detail: "\(h) must be positive")
        }
        guard dropout >= 0 && dropout < 1 else {
            throw FusionError.invalidConfig(fusion: fusion, field: "dropout", detail: "\(dropout) must be in [0, 1)")
        }
        try validateAuxLossWeight(auxLossWeight, fusion: fusion)
        try modalityDropout.validate(fusion)
    }

    /// Width of the concatenation entering the MLP.
    public func concatenatedWidth(inputWidths: [Int]) -> Int {
        if let w = adaptInFeatures.width(for: inputWidths) { return w * inputWidths.count }
        return inputWidths.reduce(0, +)
    }
}

/// Settings of `FusionTransformer` (AutoMM's `MultimodalFusionTransformer`). AutoMM's
/// `hidden_size: 192` is not listed: AutoMM passes it to a projection it switches off, so the
/// token width is the adapted width (`adapt_in_features`), not 192. Pre-normalisation is always
/// on and the first block has no attention norm (AutoMM's `prenormalization: true`,
/// `first_prenormalization: false`, which its fusion model never changes).
public struct FusionTransformerConfig: Codable, Sendable, Equatable {
    public static let defaultAdaptInFeatures: AdaptInFeatures = .max
    public static let defaultBlocks = 3
    public static let defaultHeads = 8
    public static let defaultFFNHiddenSize = 192
    public static let defaultAttentionDropout: Float = 0.2
    public static let defaultResidualDropout: Float = 0
    public static let defaultFFNDropout: Float = 0.1
    public static let defaultFFNActivation: FeedForwardActivation = .geglu
    public static let defaultHeadActivation: Activation = .relu

    /// `max` or `min` (the token width); `none` is rejected, as AutoMM does.
    public var adaptInFeatures: AdaptInFeatures
    public var blocks: Int
    public var heads: Int
    /// Feed-forward hidden width (the first linear produces twice this for GLU activations).
    public var ffnHiddenSize: Int
    /// Dropout on the attention probabilities.
    public var attentionDropout: Float
    /// Dropout on each residual branch before it is added.
    public var residualDropout: Float
    /// Dropout between the feed-forward activation and its second linear.
    public var ffnDropout: Float
    public var ffnActivation: FeedForwardActivation
    /// Activation between the head's layer norm and its linear.
    public var headActivation: Activation
    /// Weight of every backbone's own loss added to the fused loss; nil: no auxiliary heads.
    public var auxLossWeight: Float?
    public var modalityDropout: ModalityDropoutConfig

    public init(adaptInFeatures: AdaptInFeatures = Self.defaultAdaptInFeatures, blocks: Int = Self.defaultBlocks,
                heads: Int = Self.defaultHeads, ffnHiddenSize: Int = Self.defaultFFNHiddenSize,
                attentionDropout: Float = Self.defaultAttentionDropout, residualDropout: Float = Self.defaultResidualDropout,
                ffnDropout: Float = Self.defaultFFNDropout, ffnActivation: FeedForwardActivation = Self.defaultFFNActivation,
                headActivation: Activation = Self.defaultHeadActivation, auxLossWeight: Float? = nil,
                modalityDropout: ModalityDropoutConfig = ModalityDropoutConfig()) {
        self.adaptInFeatures = adaptInFeatures
        self.blocks = blocks
        self.heads = heads
        self.ffnHiddenSize = ffnHiddenSize
        self.attentionDropout = attentionDropout
        self.residualDropout = residualDropout
        self.ffnDropout = ffnDropout
        self.ffnActivation = ffnActivation
        self.headActivation = headActivation
        self.auxLossWeight = auxLossWeight
        self.modalityDropout = modalityDropout
    }

    enum CodingKeys: String, CodingKey {
        case adaptInFeatures = "adapt_in_features"
        case blocks = "num_blocks"
        case heads = "attention_num_heads"
        case ffnHiddenSize = "ffn_hidden_size"
        case attentionDropout = "attention_dropout"
        case residualDropout = "residual_dropout"
        case ffnDropout = "ffn_dropout"
        case ffnActivation = "ffn_activation"
        case headActivation = "head_activation"
        case auxLossWeight = "aux_loss_weight"
        case modalityDropout = "modality_dropout"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        adaptInFeatures = try c.decodeIfPresent(AdaptInFeatures.self, forKey: .adaptInFeatures) ?? Self.defaultAdaptInFeatures
        blocks = try c.decodeIfPresent(Int.self, forKey: .blocks) ?? Self.defaultBlocks
        heads = try c.decodeIfPresent(Int.self, forKey: .heads) ?? Self.defaultHeads
        ffnHiddenSize = try c.decodeIfPresent(Int.self, forKey: .ffnHiddenSize) ?? Self.defaultFFNHiddenSize
        attentionDropout = try c.decodeIfPresent(Float.self, forKey: .attentionDropout) ?? Self.defaultAttentionDropout
        residualDropout = try c.decodeIfPresent(Float.self, forKey: .residualDropout) ?? Self.defaultResidualDropout
        ffnDropout = try c.decodeIfPresent(Float.self, forKey: .ffnDropout) ?? Self.defaultFFNDropout
        ffnActivation = try c.decodeIfPresent(FeedForwardActivation.self, forKey: .ffnActivation) ?? Self.defaultFFNActivation
        headActivation = try c.decodeIfPresent(Activation.self, forKey: .headActivation) ?? Self.defaultHeadActivation
        auxLossWeight = try c.decodeIfPresent(Float.self, forKey: .auxLossWeight)
        modalityDropout = try c.decodeIfPresent(ModalityDropoutConfig.self, forKey: .modalityDropout) ?? ModalityDropoutConfig()
    }

    /// The token width for backbones of these feature widths (nil for `adapt_in_features: none`).
    public func tokenWidth(inputWidths: [Int]) -> Int? { adaptInFeatures.width(for: inputWidths) }

    /// Throws naming the first field that cannot work with backbones of these feature widths.
    public func validate(inputWidths: [Int]) throws {
        let fusion = "fusion_transformer"
        try validateInputWidths(inputWidths, fusion: fusion)
        guard let d = tokenWidth(inputWidths: inputWidths) else {
            throw FusionError.invalidConfig(fusion: fusion, field: "adapt_in_features",
                                            detail: "`none` leaves the backbones' widths \(inputWidths) unequal; use `max` or `min`")
        }
        guard blocks >= 0 else {
            throw FusionError.invalidConfig(fusion: fusion, field: "num_blocks", detail: "\(blocks) must be 0 or more")
        }
        guard heads > 0 else {
            throw FusionError.invalidConfig(fusion: fusion, field: "attention_num_heads", detail: "\(heads) must be positive")
        }
        guard d % heads == 0 else {
            let divisors = (1...min(d, 64)).filter { d % $0 == 0 }.map(String.init).joined(separator: ", ")
            throw FusionError.invalidConfig(
                fusion: fusion, field: "attention_num_heads",
                detail: "the token width \(d) (`adapt_in_features: \(adaptInFeatures.rawValue)` of \(inputWidths)) is not divisible by \(heads) heads; use one of \(divisors)")
        }
        guard ffnHiddenSize > 0 else {
            throw FusionError.invalidConfig(fusion: fusion, field: "ffn_hidden_size", detail: "\(ffnHiddenSize) must be positive")
        }
        for (field, p) in [("attention_dropout", attentionDropout), ("residual_dropout", residualDropout), ("ffn_dropout", ffnDropout)] {
            guard p >= 0 && p < 1 else { throw FusionError.invalidConfig(fusion: fusion, field: field, detail: "\(p) must be in [0, 1)") }
        }
        try validateAuxLossWeight(auxLossWeight, fusion: fusion)
        try modalityDropout.validate(fusion)
    }
}

func validateInputWidths(_ widths: [Int], fusion: String) throws {
    guard !widths.isEmpty else {
        throw FusionError.inputs("\(fusion) needs at least one backbone's features; got none")
    }
    for (i, w) in widths.enumerated() where w <= 0 {
        throw FusionError.inputs("\(fusion): backbone \(i) has feature width \(w); every backbone must produce at least one feature")
    }
}

func validateAuxLossWeight(_ w: Float?, fusion: String) throws {
    guard let w else { return }
    guard w >= 0 && w.isFinite else {
        throw FusionError.invalidConfig(fusion: fusion, field: "aux_loss_weight",
                                        detail: "\(w) must be a finite number ≥ 0; leave it unset for no auxiliary losses")
    }
}
