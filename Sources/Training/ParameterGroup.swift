import TensorEngine

/// A set of parameters sharing a learning rate and a weight decay, like one entry of PyTorch's
/// `optimizer.param_groups`. Give each layer its own group for layer-wise learning-rate decay, and
/// put biases and normalisation weights in a group with `weightDecay: 0` to exclude them from decay.
///
///     let groups = ParameterGroup.splitByDecay(model.namedParameters(), lr: 3e-4, weightDecay: 0.05)
///     let opt = try AdamW(groups: groups)
public struct ParameterGroup {
    /// Optional label (shown in error messages, useful for logging).
    public var name: String?
    /// The tensors this group updates, in a fixed order (state keys use their index).
    public var parameters: [Tensor]
    /// Either empty or one name per parameter (e.g. "encoder.layer0.attn.qkv.weight").
    public var parameterNames: [String]
    /// Current learning rate. A `Scheduler` overwrites it every step.
    public var lr: Float
    /// L2 penalty (Adam, SGD) or decoupled decay rate (AdamW).
    public var weightDecay: Float

    public init(name: String? = nil, parameters: [Tensor], lr: Float, weightDecay: Float = 0) {
        self.name = name
        self.parameters = parameters
        self.parameterNames = []
        self.lr = lr
        self.weightDecay = weightDecay
    }

    public init(name: String? = nil, namedParameters: [(key: String, tensor: Tensor)], lr: Float, weightDecay: Float = 0) {
        self.name = name
        self.parameters = namedParameters.map(\.tensor)
        self.parameterNames = namedParameters.map(\.key)
        self.lr = lr
        self.weightDecay = weightDecay
    }

    /// The parameters with their names ("param<i>" where no names were given).
    public var namedParameters: [(key: String, tensor: Tensor)] {
        parameters.enumerated().map { i, t in
            (key: parameterNames.count == parameters.count ? parameterNames[i] : "param\(i)", tensor: t)
        }
    }

    /// The usual transformer split: parameters for which `excludeFromDecay` holds (by default
    /// biases and every tensor of rank ≤ 1, i.e. norm scales/shifts) go into a group with no weight
    /// decay; the rest get `weightDecay`. Empty groups are left out; order within a group follows
    /// the input.
    public static func splitByDecay(_ named: [(key: String, tensor: Tensor)], lr: Float, weightDecay: Float,
                                    name: String? = nil,
                                    excludeFromDecay: (String, Tensor) -> Bool = { key, t in
                                        key.hasSuffix("bias") || t.rank <= 1
                                    }) -> [ParameterGroup] {
        var decay: [(key: String, tensor: Tensor)] = []
        var noDecay: [(key: String, tensor: Tensor)] = []
        for entry in named {
            if excludeFromDecay(entry.key, entry.tensor) { noDecay.append(entry) } else { decay.append(entry) }
        }
        var groups: [ParameterGroup] = []
        let prefix = name.map { $0 + "." } ?? ""
        if !decay.isEmpty {
            groups.append(ParameterGroup(name: prefix + "decay", namedParameters: decay, lr: lr, weightDecay: weightDecay))
        }
        if !noDecay.isEmpty {
            groups.append(ParameterGroup(name: prefix + "no_decay", namedParameters: noDecay, lr: lr, weightDecay: 0))
        }
        return groups
    }

    /// How error messages refer to this group.
    func label(_ index: Int) -> String {
        if let name { return "group \(index) ('\(name)')" }
        return "group \(index)"
    }
}
