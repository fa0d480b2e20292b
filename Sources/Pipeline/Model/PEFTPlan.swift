import Foundation
import Layers
import Models
import Spec
import TensorEngine

/// The compile-time side of `peft:`: checks that the method has a pretrained backbone to work
/// on, and says in `plan` what it will do.
enum PEFTPlan {
    /// Throws when `peft.method` is set but no pretrained backbone trains; returns the lines
    /// `plan` shows.
    static func check(_ spec: PipelineSpec) throws -> [String] {
        let method = spec.peft.method
        guard method != .none else { return [] }
        var open: [String] = []
        if let t = spec.backbones.text, t.trainable != .frozen { open.append("text") }
        if let i = spec.backbones.image, i.trainable != .frozen { open.append("image") }
        guard !open.isEmpty else {
            let frozen = [spec.backbones.text.map { _ in "backbones.text" }, spec.backbones.image.map { _ in "backbones.image" }].compactMap { $0 }
            throw PipelineError(
                "peft.method \(method.rawValue) fine-tunes pretrained backbones, but "
                    + (frozen.isEmpty ? "the pipeline has none" : "\(frozen.joined(separator: " and ")) \(frozen.count == 1 ? "is" : "are") frozen"),
                at: spec.sources["peft.method"],
                hint: frozen.isEmpty ? "add backbones.text or backbones.image, or remove peft"
                                     : "set trainable: full (or {top_layers: N} / {top_blocks: N}) on the backbone to adapt, or remove peft")
        }
        var what = method.rawValue
        if method.usesLoRA { what += " (rank \(spec.peft.rank), alpha \(formatNumber(spec.peft.alpha)))" }
        return ["peft \(what) on the \(open.joined(separator: " and ")) backbone\(open.count == 1 ? "" : "s"); every other backbone weight stays frozen, the fusion module and heads train"]
    }
}

extension PEFTPlan {
    /// The layer keys PEFT may touch in a text encoder: the top layers `mode` opens (nil: all).
    static func textScope(_ mode: TextTrainMode, firstTrainable: Int, encoder: any TextEncoder) -> [String]? {
        guard case .topLayers = mode else { return nil }
        return (firstTrainable..<encoder.shape.layers).flatMap { encoder.parameterPrefixes(ofLayer: $0) }.map(trimDot)
    }

    /// The block keys PEFT may touch in an image backbone: the top blocks `mode` opens (nil: all).
    static func imageScope(_ mode: ImageTrainMode, encoder: any ImageEncoder) -> [String]? {
        guard case .topBlocks(let n) = mode else { return nil }
        return (max(0, encoder.shape.blocks - n)..<encoder.shape.blocks).flatMap { encoder.parameterPrefixes(ofBlock: $0) }.map(trimDot)
    }

    static func trimDot(_ prefix: String) -> String { prefix.hasSuffix(".") ? String(prefix.dropLast()) : prefix }

    /// `peft:` as the library's options for one backbone.
    static func options(_ spec: PipelineSpec, scope: [String]?) -> PEFTOptions? {
        let p = spec.peft
        guard p.method != .none, let method = PEFTMethod(rawValue: p.method.rawValue) else { return nil }
        return PEFTOptions(method: method, rank: p.rank, alpha: Float(p.alpha), dropout: Float(p.dropout),
                           targets: p.targets, feedforward: p.feedforward, scope: scope)
    }

    /// "22.7M weights, 147k train (0.65 %)" for `plan`: the pretrained backbones that train, built
    /// from their checkpoints with PEFT applied as training will apply it. Errors become a line
    /// (training reports them at the key).
    static func parameterLines(_ compiled: CompiledPipeline) -> [String] {
        let spec = compiled.spec
        var lines: [String] = []
        func line(_ name: String, _ module: Module, scope: [String]?) {
            let total = module.parameterCount()
            if let options = options(spec, scope: scope) {
                do {
                    let report = try applyPEFT(options, to: module, rng: RandomSource(seed: spec.seed))
                    lines.append("\(name) backbone: \(formatCount(report.trainableParameters)) of \(formatCount(total)) weights train with \(options.method.rawValue)"
                                 + (report.adaptedModules.isEmpty ? "" : " (adapters on \(report.adaptedModules.count) layers)"))
                } catch {
                    lines.append("\(name) backbone: peft cannot apply: \(error)")
                }
            } else {
                let open = scope.map { prefixes in
                    module.namedParameters().filter { p in prefixes.contains { p.key == $0 || p.key.hasPrefix($0 + ".") } }.reduce(0) { $0 + $1.tensor.count }
                } ?? total
                lines.append("\(name) backbone: \(formatCount(open)) of \(formatCount(total)) weights train")
            }
        }
        if let text = compiled.text, let t = spec.backbones.text, TextTrainMode(t.trainable) != .frozen,
           let json = try? Data(contentsOf: text.url.appendingPathComponent("config.json")),
           let encoder = try? TextEncoders.build(configJSON: json, rng: RandomSource(seed: spec.seed)) {
            let mode = TextTrainMode(t.trainable)
            let first = mode.topLayers.map { max(0, encoder.shape.layers - $0) } ?? 0
            line("text", encoder, scope: textScope(mode, firstTrainable: first, encoder: encoder))
        }
        if let image = compiled.image, image.mode != .frozen, let loaded = try? image.checkpoint.load(seed: spec.seed) {
            line("image", loaded.encoder, scope: imageScope(image.mode, encoder: loaded.encoder))
        }
        return lines
    }
}

/// 8.0 → "8", 0.5 → "0.5".
func formatNumber(_ d: Double) -> String {
    d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d)
}

extension FusionKind {
    /// One line for the log: the module and its main settings.
    var summary: String {
        switch self {
        case .mlp(let c):
            return "fusion MLP (adapters to the \(c.adaptInFeatures.rawValue) width, hidden \(c.hiddenSizes.map(String.init).joined(separator: "→")), \(c.activation.rawValue), dropout \(c.dropout))"
                + (c.auxLossWeight.map { ", auxiliary heads × \($0)" } ?? "")
        case .transformer(let c):
            return "fusion transformer (\(c.blocks) blocks, \(c.heads) heads, adapters to the \(c.adaptInFeatures.rawValue) width)"
                + (c.auxLossWeight.map { ", auxiliary heads × \($0)" } ?? "")
        }
    }
}
