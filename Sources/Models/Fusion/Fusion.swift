// The late-fusion contract: what the network holds when it has more than one backbone
// (AutoGluon-Multimodal's `AbstractMultimodalFusionModel` and `create_fusion_model`), the
// auxiliary-loss rule and the pieces both fusion modules share — per-backbone adapters and
// auxiliary heads, modality dropout, AutoMM's initialisation.
//
// Parameter keys shared by both modules: `adapters.<i>.{weight,bias}` (absent for
// `adapt_in_features: none`), `aux_heads.<i>.{weight,bias}` (only with `aux_loss_weight`),
// `missing.<i>` (only with `modality_dropout.replacement: learned`), `head.*`.
import Foundation
import Layers
import TensorEngine

/// Fused logits `[B, outputs]` and each backbone's own logits (empty without auxiliary heads).
public typealias FusionLogits = (fused: Tensor, perBackbone: [Tensor])

/// A module that fuses the feature vectors of several backbones into task logits.
public protocol FusionModule: Module {
    /// Feature width of each backbone, in the order `logits(features:)` takes them.
    var inputWidths: [Int] { get }
    /// Logits per row (classes, or 1 for regression).
    var outputs: Int { get }
    /// Weight of each backbone's own loss; nil when the module has no auxiliary heads.
    var auxLossWeight: Float? { get }
    /// Fuses `features[i]` `[B, inputWidths[i]]`. In training mode modality dropout (if
    /// configured) and dropout are active; in eval mode the result is deterministic.
    func logits(features: [Tensor]) throws -> FusionLogits
}

extension FusionModule {
    /// The training loss as AutoMM combines it: `loss(fused) + w · Σᵢ loss(perBackboneᵢ)` with
    /// `w = aux_loss_weight` (the fused loss has weight 1; every backbone the same `w`, and each
    /// backbone loss is the task loss of its logits against the same targets). Without auxiliary
    /// heads it is `loss(fused)`.
    public func combinedLoss(_ output: FusionLogits, loss: (Tensor) throws -> Tensor) throws -> Tensor {
        var total = try loss(output.fused)
        guard let w = auxLossWeight, !output.perBackbone.isEmpty else { return total }
        var aux: Tensor?
        for logits in output.perBackbone {
            let l = try loss(logits)
            aux = try aux.map { try add($0, l) } ?? l
        }
        if let aux { total = try add(total, try mulScalar(aux, w)) }
        return total
    }
}

/// Which fusion module a network with several backbones uses, with its settings. Coded as
/// `{"kind": "mlp" | "transformer", "config": {…}}`.
public enum FusionKind: Codable, Sendable, Equatable {
    case mlp(FusionMLPConfig)
    case transformer(FusionTransformerConfig)

    enum CodingKeys: String, CodingKey { case kind, config }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let kind = try c.decode(String.self, forKey: .kind)
        switch kind {
        case "mlp": self = .mlp(try c.decodeIfPresent(FusionMLPConfig.self, forKey: .config) ?? FusionMLPConfig())
        case "transformer": self = .transformer(try c.decodeIfPresent(FusionTransformerConfig.self, forKey: .config) ?? FusionTransformerConfig())
        default:
            throw DecodingError.dataCorruptedError(forKey: .kind, in: c, debugDescription: "unknown fusion kind '\(kind)'; use `mlp` or `transformer`")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .mlp(let config):
            try c.encode("mlp", forKey: .kind)
            try c.encode(config, forKey: .config)
        case .transformer(let config):
            try c.encode("transformer", forKey: .kind)
            try c.encode(config, forKey: .config)
        }
    }

    /// AutoMM builds a fusion module only for two or more backbones; a single backbone's
    /// features go straight to a task head.
    public static func needsFusion(backboneCount: Int) -> Bool { backboneCount > 1 }

    /// Builds the module for backbones of these feature widths (validating the settings against
    /// them first) with `outputs` logits.
    public func build(inputWidths: [Int], outputs: Int, rng: RandomSource) throws -> any FusionModule {
        switch self {
        case .mlp(let c): return try FusionMLP(c, inputWidths: inputWidths, outputs: outputs, rng: rng)
        case .transformer(let c): return try FusionTransformer(c, inputWidths: inputWidths, outputs: outputs, rng: rng)
        }
    }
}

// MARK: - Shared pieces

/// Per-backbone input stage: modality dropout, auxiliary heads on the (possibly dropped)
/// features, adapters. Registered by each fusion module under its own keys.
final class FusionInputs {
    let widths: [Int]
    let adapters: [Linear]?
    let auxHeads: [Linear]?
    let dropout: ModalityDropout

    init(widths: [Int], adaptedWidth: Int?, outputs: Int, aux: Bool, modalityDropout: ModalityDropoutConfig,
         rng: RandomSource) {
        self.widths = widths
        adapters = adaptedWidth.map { d in widths.map { xavierLinear($0, d, rng: rng) } }
        auxHeads = aux ? widths.map { xavierLinear($0, outputs, rng: rng) } : nil
        dropout = ModalityDropout(modalityDropout, widths: widths, rng: rng)
    }

    /// Registers the children on `owner` so their keys sit at the owner's top level.
    func register(on owner: Module) {
        for (i, a) in (adapters ?? []).enumerated() { owner.register(child: "adapters.\(i)", a) }
        for (i, h) in (auxHeads ?? []).enumerated() { owner.register(child: "aux_heads.\(i)", h) }
        owner.register(child: "missing", dropout)
    }

    /// Checks the features, applies modality dropout, and returns the adapted features and the
    /// auxiliary logits.
    func callAsFunction(_ features: [Tensor], fusion: String) throws -> (adapted: [Tensor], aux: [Tensor]) {
        guard features.count == widths.count else {
            throw FusionError.inputs("\(fusion) was built for \(widths.count) backbone(s) but received \(features.count) feature tensor(s)")
        }
        let rows = features[0].rank == 2 ? features[0].shape[0] : -1
        for (i, f) in features.enumerated() {
            guard f.rank == 2, f.shape[1] == widths[i], f.shape[0] == rows else {
                throw FusionError.inputs("backbone \(i)'s features are \(shapeString(f.shape)); expected [\(max(rows, 0)), \(widths[i])] (every backbone gives one row per example)")
            }
        }
        guard rows > 0 else { throw FusionError.inputs("the batch is empty") }
        let kept = try dropout(features)
        let aux = try auxHeads.map { heads in try zip(heads, kept).map { try $0.0($0.1) } } ?? []
        let adapted = try adapters.map { a in try zip(a, kept).map { try $0.0($0.1) } } ?? kept
        return (adapted, aux)
    }
}

/// Drops whole backbones per row in training mode (see `ModalityDropoutConfig` for the rule);
/// holds the learned replacement vectors `<i>` when configured.
final class ModalityDropout: Module {
    let config: ModalityDropoutConfig
    let replacements: [Tensor]
    let rng: RandomSource

    init(_ config: ModalityDropoutConfig, widths: [Int], rng: RandomSource) {
        self.config = config
        self.rng = rng
        replacements = config.replacement == .learned ? widths.map { Tensor.parameter(Tensor.zeros([$0])) } : []
        super.init()
        for (i, r) in replacements.enumerated() { register(parameter: "\(i)", r) }
    }

    func callAsFunction(_ features: [Tensor]) throws -> [Tensor] {
        guard isTraining, config.probability > 0, features.count > 1 else { return features }
        let rows = features[0].shape[0], n = features.count
        let keep = modalityKeepMask(rows: rows, backbones: n, probability: config.probability, generator: &rng.generator)
        return try features.enumerated().map { i, f in
            let column = (0..<rows).map { keep[$0 * n + i] ? Float(1) : 0 }
            if column.allSatisfy({ $0 == 1 }) { return f }
            let mask = try Tensor(column, shape: [rows, 1])
            let kept = try mul(f, mask)
            guard config.replacement == .learned else { return kept }
            let dropped = try Tensor(column.map { 1 - $0 }, shape: [rows, 1])
            return try add(kept, try mul(dropped, try replacements[i].reshaped([1, f.shape[1]])))
        }
    }
}

/// Which (row, backbone) pairs modality dropout keeps, row-major (`[row * backbones + i]`).
/// Draws `rows × backbones` uniforms from `generator`: a pair is dropped when its draw is below
/// `probability`, except that a row whose every backbone would be dropped keeps the one with the
/// largest draw. Deterministic for a generator state, whatever the thread count.
public func modalityKeepMask(rows: Int, backbones: Int, probability: Float, generator: inout RandomGenerator) -> [Bool] {
    let n = rows * backbones
    guard n > 0 else { return [] }
    let stream = generator.take(n)
    var keep = [Bool](repeating: true, count: n)
    for r in 0..<rows {
        var best = 0, bestDraw: Float = -1, anyKept = false
        for i in 0..<backbones {
            let u = stream.uniform(r * backbones + i)
            if u < probability { keep[r * backbones + i] = false } else { anyKept = true }
            if u > bestDraw { bestDraw = u; best = i }
        }
        if !anyKept { keep[r * backbones + best] = true }
    }
    return keep
}

/// A Linear initialised as AutoMM's `init_weights` does: Xavier-uniform weight
/// (±√(6 / (in + out))), zero bias.
func xavierLinear(_ inFeatures: Int, _ outFeatures: Int, rng: RandomSource) -> Linear {
    let l = Linear(inFeatures, outFeatures, rng: rng)
    let bound = (6 / Float(inFeatures + outFeatures)).squareRoot()
    let w = Tensor.uniform([outFeatures, inFeatures], low: -bound, high: bound, rng: &rng.generator)
    withExtendedLifetime(w) { l.weight.data.update(from: w.data, count: l.weight.count) }
    if let b = l.bias { zeroFill(b) }
    return l
}

func zeroFill(_ t: Tensor) {
    t.data.update(repeating: 0, count: t.count)
}
