import Foundation

// The `peft:` section: its type, its declarations and its Codable conformance in one place.

/// `peft.method`: AutoMM's parameter-efficient fine-tuning methods.
public enum PEFTMethodSpec: String, Codable, CaseIterable, Sendable {
    /// Every weight of a backbone that trains is updated.
    case none
    /// Low-rank adapters on the matched linear layers.
    case lora
    /// LoRA plus every bias.
    case lora_bias
    /// LoRA plus the normalisation layers.
    case lora_norm
    /// IA³: learned scaling vectors on the matched linear layers.
    case ia3
    /// IA³ plus every bias.
    case ia3_bias
    /// IA³ plus the normalisation layers.
    case ia3_norm
    /// IA³ and LoRA on the matched layers.
    case ia3_lora
    /// Only the biases.
    case bit_fit
    /// Only the normalisation layers (and, as in AutoMM, the biases).
    case norm_fit

    /// Whether the method inserts adapters into linear layers (and so uses `targets`).
    public var usesAdapters: Bool {
        switch self {
        case .lora, .lora_bias, .lora_norm, .ia3, .ia3_bias, .ia3_norm, .ia3_lora: return true
        case .none, .bit_fit, .norm_fit: return false
        }
    }
    /// Whether the method has LoRA matrices (rank, alpha and dropout apply).
    public var usesLoRA: Bool { self == .lora || self == .lora_bias || self == .lora_norm || self == .ia3_lora }
    /// Whether the method has IA³ vectors (`feedforward` applies).
    public var usesIA3: Bool { self == .ia3 || self == .ia3_bias || self == .ia3_norm || self == .ia3_lora }
}

/// The `peft:` section. PEFT applies inside what `backbones.<text|image>.trainable` opens:
/// `full` → every layer, `{top_layers: N}` / `{top_blocks: N}` → the top N (the activations below
/// them stay a cached stage); a `frozen` backbone is not fine-tuned at all. The fusion module and
/// the heads always train.
public struct PEFTSpec: Codable, Equatable, Sendable {
    /// The method; `none` fine-tunes every weight that `trainable` opens.
    public var method: PEFTMethodSpec
    /// LoRA rank r (≥ 1).
    public var rank: Int
    /// LoRA α; the update is scaled by α / r (> 0).
    public var alpha: Double
    /// Dropout on the LoRA path's input, in [0, 1).
    public var dropout: Double
    /// Regular expressions naming the linear layers that get adapters; nil: the method's default.
    public var targets: [String]?
    /// IA³: the targets whose input (not output) is scaled; nil: the method's default.
    public var feedforward: [String]?

    /// Every key at its default: no PEFT.
    public init() { self.init(method: .none, rank: 8, alpha: 8, dropout: 0, targets: nil, feedforward: nil) }

    /// Every key given.
    public init(method: PEFTMethodSpec, rank: Int, alpha: Double, dropout: Double, targets: [String]?, feedforward: [String]?) {
        self.method = method
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.targets = targets
        self.feedforward = feedforward
    }
}

extension PEFTSpec: SpecSection {
    static let title = "peft"
    static let summary = "Parameter-efficient fine-tuning of the pretrained backbones that train (AutoMM's methods)."
    static var fields: [Field<PEFTSpec>] {
        let lora: (PEFTSpec) -> Bool = { $0.method.usesLoRA }
        let adapters: (PEFTSpec) -> Bool = { $0.method.usesAdapters }
        let ia3: (PEFTSpec) -> Bool = { $0.method.usesIA3 }
        return [
            Field("method", \.method, Codecs.enumeration(PEFTMethodSpec.self),
                  "none, lora, lora_bias, lora_norm, ia3, ia3_bias, ia3_norm, ia3_lora, bit_fit or norm_fit."),
            Field("rank", \.rank, Codecs.int(1...4096), "LoRA rank r.", only: "a LoRA method", when: lora),
            Field("alpha", \.alpha, Codecs.double(min: 0, minOpen: true), "LoRA α: the update is scaled by α / r (> 0).",
                  only: "a LoRA method", when: lora),
            Field("dropout", \.dropout, Codecs.double(min: 0, max: 1, maxOpen: true), "Dropout on the LoRA path's input, in [0, 1).",
                  only: "a LoRA method", when: lora),
            Field("targets", \.targets, Codecs.optional(Codecs.list(Codecs.string(nonEmpty: true), minItems: 1)),
                  "Regular expressions matched at the start of a linear layer's name (a pattern with a `.` against its whole dotted key); null: the method's default (LoRA: query, value, ^q$, ^v$, ^k$, ^o$).",
                  only: "a LoRA or IA3 method", when: adapters),
            Field("feedforward", \.feedforward, Codecs.optional(Codecs.list(Codecs.string(nonEmpty: true))),
                  "IA3: the targets whose input is scaled instead of their output; null: the method's default.",
                  only: "an IA3 method", when: ia3),
        ]
    }

    static func validate(_ s: PEFTSpec, _ scope: Scope) {
        for (i, pattern) in (s.targets ?? []).enumerated() where (try? NSRegularExpression(pattern: pattern)) == nil {
            scope.fail("targets[\(i)]", "'\(pattern)' is not a valid regular expression", hint: "escape special characters such as ( [ * with \\\\")
        }
        for (i, pattern) in (s.feedforward ?? []).enumerated() where (try? NSRegularExpression(pattern: pattern)) == nil {
            scope.fail("feedforward[\(i)]", "'\(pattern)' is not a valid regular expression", hint: "escape special characters such as ( [ * with \\\\")
        }
    }
}

extension PEFTSpec {
    public init(from decoder: Decoder) throws { self = try SpecCoding.decode(Sections.codec(PEFTSpec.self), from: decoder) }
    public func encode(to encoder: Encoder) throws { try SpecCoding.encode(self, Sections.codec(PEFTSpec.self), to: encoder) }
}
