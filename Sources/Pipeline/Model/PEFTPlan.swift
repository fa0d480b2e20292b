import Foundation
import Spec
import Models

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
