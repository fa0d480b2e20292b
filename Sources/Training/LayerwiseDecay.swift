import Foundation
import TensorEngine

/// Where a parameter sits in its backbone, for layer-wise learning-rate decay.
public struct LayerDepth: Sendable, Equatable {
    /// 0 for the embeddings (everything before the first layer), i + 1 for layer i.
    public var depth: Int
    /// The backbone's number of layers (so `depth` is in 0...layers).
    public var layers: Int

    public init(depth: Int, layers: Int) {
        self.depth = depth
        self.layers = layers
    }
}

extension ParameterGroup {
    /// AutoMM's `lr_choice: layerwise_decay` (its default, with `lr_decay` 0.9): parameter groups
    /// whose learning rate shrinks from the output end to the input end.
    ///
    /// The rule (AutoMM `optim/lr/utils.py` `apply_layerwise_lr_decay` with the layer ids of
    /// `models/utils.py` `assign_layer_ids`): a parameter with layer id `id` trains at
    /// `lr × decay^id`, where the head (fusion and task head, and any key `position` has no depth
    /// for — AutoMM treats such left-over names as head) has id 0, layer i of an L-layer backbone
    /// has id L − i, and the embeddings id L + 1; i.e. `id = layers + 1 − depth`. Each backbone
    /// uses its own L.
    ///
    /// Groups are `layer_<id>_decay` (weight decay `weightDecay`) and `layer_<id>_no_decay`
    /// (weight decay 0, for parameters where `noWeightDecay` holds), in order of their first
    /// parameter in `named`; empty groups are left out. Throws when a depth is outside
    /// 0...layers, `decay` is not in (0, 1], or a rate is not finite and > 0.
    public static func layerwiseDecay(_ named: [(key: String, tensor: Tensor)], lr: Float, decay: Float, weightDecay: Float,
                                      position: (String) -> LayerDepth?, isHead: (String) -> Bool,
                                      noWeightDecay: (String, Tensor) -> Bool = { _, t in t.rank < 2 }) throws -> [ParameterGroup] {
        try checkRates(lr: lr, weightDecay: weightDecay, component: "layerwise_decay")
        try requireHyper(decay.isFinite && decay > 0 && decay <= 1, "layerwise_decay", "decay",
                         "must be in (0, 1] (AutoMM's lr_decay, default 0.9; 1 gives every layer the same rate), got \(fmt(decay))")
        var order: [String] = []
        var members: [String: (lr: Float, weightDecay: Float, items: [(key: String, tensor: Tensor)])] = [:]
        for entry in named {
            var id = 0
            if !isHead(entry.key), let p = position(entry.key) {
                guard p.layers >= 0, p.depth >= 0, p.depth <= p.layers else {
                    throw TrainingError.invalidParameter(
                        component: "layerwise_decay",
                        detail: "'\(entry.key)' has depth \(p.depth) in a backbone of \(p.layers) layers; depths run from 0 (embeddings) to \(Swift.max(p.layers, 0)) (the last layer)")
                }
                id = p.layers + 1 - p.depth
            }
            let noDecay = noWeightDecay(entry.key, entry.tensor)
            let name = "layer_\(id)_" + (noDecay ? "no_decay" : "decay")
            if members[name] == nil {
                order.append(name)
                members[name] = (lr * Float(Foundation.pow(Double(decay), Double(id))), noDecay ? 0 : weightDecay, [])
            }
            members[name]?.items.append(entry)
        }
        return order.compactMap { name in
            members[name].map { ParameterGroup(name: name, namedParameters: $0.items, lr: $0.lr, weightDecay: $0.weightDecay) }
        }
    }

    /// `layerwiseDecay` for a single backbone of `layers` layers: `depth` gives a key's depth
    /// (0 = embeddings, i + 1 = layer i; nil = head).
    public static func layerwiseDecay(_ named: [(key: String, tensor: Tensor)], lr: Float, decay: Float, weightDecay: Float,
                                      layers: Int, depth: (String) -> Int?, isHead: (String) -> Bool,
                                      noWeightDecay: (String, Tensor) -> Bool = { _, t in t.rank < 2 }) throws -> [ParameterGroup] {
        try layerwiseDecay(named, lr: lr, decay: decay, weightDecay: weightDecay,
                           position: { key in depth(key).map { LayerDepth(depth: $0, layers: layers) } },
                           isHead: isHead, noWeightDecay: noWeightDecay)
    }

    /// AutoMM's `lr_choice: two_stages` (`apply_two_stages_lr`): the backbone trains at `lr`,
    /// the head (keys where `isHead` holds: fusion and task head) at `lr × headMultiplier`
    /// (AutoMM's `lr_mult`, default 1). Groups `backbone_decay`, `backbone_no_decay`,
    /// `head_decay`, `head_no_decay` in that order, empty ones left out; `noWeightDecay`
    /// parameters get weight decay 0.
    public static func twoStages(_ named: [(key: String, tensor: Tensor)], lr: Float, headMultiplier: Float, weightDecay: Float,
                                 isHead: (String) -> Bool,
                                 noWeightDecay: (String, Tensor) -> Bool = { _, t in t.rank < 2 }) throws -> [ParameterGroup] {
        try checkRates(lr: lr, weightDecay: weightDecay, component: "two_stages")
        try requireHyper(headMultiplier.isFinite && headMultiplier > 0, "two_stages", "headMultiplier",
                         "must be a finite number > 0 (AutoMM's lr_mult, default 1), got \(fmt(headMultiplier))")
        var buckets: [[(key: String, tensor: Tensor)]] = [[], [], [], []]
        for entry in named {
            buckets[(isHead(entry.key) ? 2 : 0) + (noWeightDecay(entry.key, entry.tensor) ? 1 : 0)].append(entry)
        }
        let spec: [(String, Float, Float)] = [("backbone_decay", lr, weightDecay), ("backbone_no_decay", lr, 0),
                                              ("head_decay", lr * headMultiplier, weightDecay), ("head_no_decay", lr * headMultiplier, 0)]
        return zip(spec, buckets).compactMap { s, items in
            items.isEmpty ? nil : ParameterGroup(name: s.0, namedParameters: items, lr: s.1, weightDecay: s.2)
        }
    }

    static func checkRates(lr: Float, weightDecay: Float, component: String) throws {
        try requireHyper(lr.isFinite && lr > 0, component, "lr", "must be a finite number > 0, got \(fmt(lr))")
        try requireHyper(weightDecay.isFinite && weightDecay >= 0, component, "weightDecay", "must be a finite number >= 0, got \(fmt(weightDecay))")
    }
}
