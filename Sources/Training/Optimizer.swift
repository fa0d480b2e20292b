import TensorEngine

/// A first-order optimizer over parameter groups.
///
/// `step()` updates every parameter that has a gradient (`grad == nil` means frozen or unused in
/// this step and is skipped, its state untouched), using each group's current `lr` and
/// `weightDecay`. Updates run without recording on the tape. Per-parameter state (moments,
/// momentum buffers) is keyed by parameter identity, created on a parameter's first update, and
/// survives reordering or regrouping of the same tensors.
///
/// Checkpointing: `stateTensors()` returns the state under keys
/// `group<g>.param<i>.<name>` (names as in PyTorch: `exp_avg`, `exp_avg_sq`, `step`,
/// `momentum_buffer`) plus `step` (the optimizer's step count); `loadStateTensors` takes the
/// same dictionary back for the same group layout.
public protocol Optimizer: AnyObject {
    /// The parameter groups; lr and weight decay may be changed between steps.
    var groups: [ParameterGroup] { get set }
    /// How many times `step()` has completed.
    var stepCount: Int { get }
    /// Applies one update from the current gradients. Throws (before changing anything) when a
    /// hyperparameter is invalid or a gradient does not fit its parameter.
    func step() throws
    /// Clears every parameter's gradient (`grad = nil`, PyTorch's `set_to_none=True`).
    func zeroGrad()
    /// The optimizer state for checkpointing (tensors share memory with the live state).
    func stateTensors() -> [String: Tensor]
    /// Replaces the optimizer state with a dictionary produced by `stateTensors()`.
    func loadStateTensors(_ tensors: [String: Tensor]) throws
}

extension Optimizer {
    public func zeroGrad() {
        for g in groups { for p in g.parameters { p.grad = nil } }
    }

    /// Sets every gradient to zero in place (keeps the tensors) instead of dropping them.
    public func zeroGradInPlace() {
        for g in groups {
            for p in g.parameters {
                guard let grad = p.grad else { continue }
                if grad.isContiguous { grad.data.update(repeating: 0, count: grad.count) } else { p.grad = Tensor.zeros(grad.shape) }
            }
        }
    }

    /// Every parameter of every group, in group order.
    public var allParameters: [Tensor] { groups.flatMap(\.parameters) }
}

/// Per-parameter optimizer state.
final class ParamState {
    /// Keeps the parameter alive so its `ObjectIdentifier` cannot be reused while state exists.
    let param: Tensor
    /// Updates applied to this parameter (PyTorch's per-parameter `state['step']`).
    var step: Int = 0
    /// Named state tensors, contiguous, shaped like the parameter.
    var buffers: [String: Tensor] = [:]

    init(param: Tensor) { self.param = param }
}

/// Shared bookkeeping of the optimizers: validation, state lookup, export and import.
struct StateStore {
    let component: String
    /// State tensor names each parameter carries once updated (e.g. ["exp_avg", "exp_avg_sq"]).
    let bufferNames: [String]
    /// Whether a per-parameter step count is kept and exported.
    let tracksStep: Bool
    var states: [ObjectIdentifier: ParamState] = [:]

    init(component: String, bufferNames: [String], tracksStep: Bool) {
        self.component = component
        self.bufferNames = bufferNames
        self.tracksStep = tracksStep
    }

    /// Checks every group's lr and weight decay, then the group structure.
    func checkGroups(_ groups: [ParameterGroup]) throws {
        for (gi, g) in groups.enumerated() {
            try requireHyper(g.lr.isFinite && g.lr >= 0, component, "lr",
                             "must be a finite number >= 0, got \(fmt(g.lr)) (\(g.label(gi)))")
            try requireHyper(g.weightDecay.isFinite && g.weightDecay >= 0, component, "weightDecay",
                             "must be a finite number >= 0, got \(fmt(g.weightDecay)) (\(g.label(gi)))")
        }
        try checkStructure(groups)
    }

    /// Names fit the parameters and no tensor appears twice.
    func checkStructure(_ groups: [ParameterGroup]) throws {
        var seen = Set<ObjectIdentifier>()
        for (gi, g) in groups.enumerated() {
            if !g.parameterNames.isEmpty && g.parameterNames.count != g.parameters.count {
                throw TrainingError.invalidParameter(
                    component: component,
                    detail: "\(g.label(gi)) has \(g.parameterNames.count) parameter names for \(g.parameters.count) parameters")
            }
            for (pi, p) in g.parameters.enumerated() {
                if !seen.insert(ObjectIdentifier(p)).inserted {
                    throw TrainingError.invalidParameter(
                        component: component,
                        detail: "parameter \(paramName(g, pi)) of \(g.label(gi)) appears more than once across the parameter groups")
                }
            }
        }
    }

    func paramName(_ g: ParameterGroup, _ i: Int) -> String {
        g.parameterNames.count == g.parameters.count ? "'\(g.parameterNames[i])'" : "\(i)"
    }

    /// Validates groups and gradients and gathers the parameters to update, creating state for
    /// first-time parameters only after everything checked out.
    mutating func collect(_ groups: [ParameterGroup]) throws -> [UpdateItem] {
        try checkGroups(groups)
        var pending: [(param: Tensor, grad: Tensor, group: Int)] = []
        for (gi, g) in groups.enumerated() {
            for (pi, p) in g.parameters.enumerated() {
                guard let grad = p.grad else { continue }
                guard p.isContiguous else {
                    throw TrainingError.invalidParameter(
                        component: component,
                        detail: "parameter \(paramName(g, pi)) of \(g.label(gi)) is a non-contiguous view \(shapeString(p.shape)); optimize the underlying tensor")
                }
                guard grad.count == p.count else {
                    throw TrainingError.invalidParameter(
                        component: component,
                        detail: "gradient \(shapeString(grad.shape)) does not match parameter \(paramName(g, pi)) \(shapeString(p.shape)) of \(g.label(gi))")
                }
                pending.append((p, grad.isContiguous ? grad : grad.clone(), gi))
            }
        }
        var items: [UpdateItem] = []
        items.reserveCapacity(pending.count)
        for entry in pending {
            let id = ObjectIdentifier(entry.param)
            let st: ParamState
            if let s = states[id] { st = s } else { st = ParamState(param: entry.param); states[id] = st }
            items.append(UpdateItem(param: entry.param, grad: entry.grad, state: st, group: entry.group))
        }
        return items
    }

    func export(_ groups: [ParameterGroup], stepCount: Int) -> [String: Tensor] {
        var out: [String: Tensor] = ["step": Tensor(scalar: Float(stepCount))]
        for (gi, g) in groups.enumerated() {
            for (pi, p) in g.parameters.enumerated() {
                guard let st = states[ObjectIdentifier(p)] else { continue }
                let prefix = "group\(gi).param\(pi)."
                for name in bufferNames {
                    if let b = st.buffers[name] { out[prefix + name] = b.detached() }
                }
                if tracksStep { out[prefix + "step"] = Tensor(scalar: Float(st.step)) }
            }
        }
        return out
    }

    /// Reads a whole, non-negative step count stored as a one-element tensor.
    func readStep(_ t: Tensor, key: String) throws -> Int {
        guard t.count == 1 else {
            throw TrainingError.invalidState(component: component, detail: "'\(key)' must hold one value, got shape \(shapeString(t.shape))")
        }
        let v = t.toArray()[0]
        guard v.isFinite, v >= 0, v == v.rounded(), v < 9.0e15 else {
            throw TrainingError.invalidState(component: component, detail: "'\(key)' must be a whole number >= 0, got \(fmt(v))")
        }
        return Int(v)
    }

    /// Builds fresh state from `tensors`; returns the new states and the optimizer step count.
    /// Every key must belong to a parameter of `groups`; a parameter with any state must have all of it.
    func importing(_ tensors: [String: Tensor], groups: [ParameterGroup]) throws -> (states: [ObjectIdentifier: ParamState], stepCount: Int?) {
        try checkStructure(groups)
        var remaining = tensors
        var stepCount: Int? = nil
        if let s = remaining.removeValue(forKey: "step") { stepCount = try readStep(s, key: "step") }
        var newStates: [ObjectIdentifier: ParamState] = [:]
        let names = bufferNames + (tracksStep ? ["step"] : [])
        for (gi, g) in groups.enumerated() {
            for (pi, p) in g.parameters.enumerated() {
                let prefix = "group\(gi).param\(pi)."
                var found: [String: Tensor] = [:]
                for name in names { if let t = remaining.removeValue(forKey: prefix + name) { found[name] = t } }
                if found.isEmpty { continue }
                if let missing = names.first(where: { found[$0] == nil }) {
                    throw TrainingError.invalidState(component: component,
                                                     detail: "'\(prefix + missing)' is missing (other state of that parameter is present)")
                }
                let st = ParamState(param: p)
                for name in bufferNames {
                    guard let t = found[name] else { continue }
                    guard t.shape == p.shape else {
                        throw TrainingError.invalidState(
                            component: component,
                            detail: "'\(prefix + name)' has shape \(shapeString(t.shape)) but parameter \(paramName(g, pi)) of \(g.label(gi)) has \(shapeString(p.shape))")
                    }
                    st.buffers[name] = t.clone()
                }
                if tracksStep, let t = found["step"] { st.step = try readStep(t, key: prefix + "step") }
                newStates[ObjectIdentifier(p)] = st
            }
        }
        if let unknown = remaining.keys.sorted().first {
            throw TrainingError.invalidState(
                component: component,
                detail: "unexpected key '\(unknown)' (\(remaining.count) key(s) do not belong to any parameter of the current groups)")
        }
        return (newStates, stepCount)
    }
}
