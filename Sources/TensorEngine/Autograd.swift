/// Reverse-mode automatic differentiation.
///
/// Every op that sees an input requiring a gradient (while recording is enabled) attaches a
/// `GradFn` to its output: one edge per input and a closure from the output's gradient to the
/// inputs'. An edge to an input that an op produced points at that op's `GradFn`, not at the
/// tensor, so the graph keeps no activation alive by itself: each backward closure keeps exactly
/// what it reads (a frozen layer's input, which only its weight gradient would read, is freed as
/// soon as the forward pass is done with it). An edge to a leaf that requires a gradient keeps
/// the leaf, whose `grad` backward writes. `backward()` walks the graph once in reverse
/// topological order, accumulates gradients reaching a node more than once, and releases every
/// node it passed, so the memory the forward pass saved for backward is returned right away.

public final class GradFn {
    public let name: String
    var edges: [GradEdge]
    var backward: ((Tensor) throws -> [Tensor?])?

    init(name: String, inputs: [Tensor], backward: @escaping (Tensor) throws -> [Tensor?]) {
        self.name = name
        self.edges = inputs.map(GradEdge.init)
        self.backward = backward
    }

    func release() { edges = []; backward = nil }
}

/// Where the gradient of one op input goes.
enum GradEdge {
    /// The input requires no gradient.
    case none
    /// A leaf that requires a gradient (a parameter): its `grad` receives it.
    case leaf(Tensor)
    /// An input an op produced: its producer continues the chain.
    case node(GradFn)

    init(_ t: Tensor) {
        if !t.requiresGrad {
            self = .none
        } else if let fn = t.gradFn {
            self = .node(fn)
        } else {
            self = .leaf(t)
        }
    }
}

public enum GradMode {
    /// Whether ops record for backward. Use `withNoGrad` to turn it off for a scope.
    public internal(set) static var isEnabled = true
}

/// Runs `body` without recording anything on the tape (inference, optimizer updates).
@discardableResult
public func withNoGrad<T>(_ body: () throws -> T) rethrows -> T {
    let saved = GradMode.isEnabled
    GradMode.isEnabled = false
    defer { GradMode.isEnabled = saved }
    return try body()
}

/// Whether an op with these inputs must record.
@inline(__always)
func needsGrad(_ inputs: Tensor...) -> Bool {
    guard GradMode.isEnabled else { return false }
    for t in inputs where t.requiresGrad { return true }
    return false
}

@inline(__always)
func needsGrad(_ inputs: [Tensor]) -> Bool {
    guard GradMode.isEnabled else { return false }
    for t in inputs where t.requiresGrad { return true }
    return false
}

extension Tensor {
    /// Attaches a backward rule when any input requires a gradient; returns self for chaining.
    @discardableResult
    func recorded(_ name: String, _ inputs: [Tensor], _ backward: @escaping (Tensor) throws -> [Tensor?]) -> Tensor {
        if needsGrad(inputs) {
            requiresGrad = true
            gradFn = GradFn(name: name, inputs: inputs, backward: backward)
        }
        return self
    }

    /// Back-propagates from this tensor. A non-scalar tensor needs an explicit `gradient` of its
    /// own shape. Leaf gradients accumulate into `grad` across calls until cleared.
    public func backward(_ gradient: Tensor? = nil) throws {
        guard requiresGrad else {
            throw TensorError.noGradient(detail: "tensor of shape \(shapeString(shape)) does not require a gradient (nothing trainable was used to compute it)")
        }
        let seed: Tensor
        if let g = gradient {
            try check(g.shape == shape, "backward", "gradient \(shapeString(g.shape)) for tensor \(shapeString(shape))")
            seed = g
        } else {
            try check(count == 1, "backward", "a tensor of shape \(shapeString(shape)) needs an explicit gradient")
            seed = Tensor.full(shape, 1)
        }

        guard let root = gradFn else {
            // A leaf: the gradient is the seed itself.
            try accumulateLeafGradient(self, seed)
            return
        }

        // Topological order of the nodes by iterative depth-first search.
        var order: [GradFn?] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(GradFn, Bool)] = [(root, false)]
        while let (fn, expanded) = stack.popLast() {
            if expanded { order.append(fn); continue }
            let id = ObjectIdentifier(fn)
            if visited.contains(id) { continue }
            visited.insert(id)
            stack.append((fn, true))
            for case .node(let input) in fn.edges where !visited.contains(ObjectIdentifier(input)) {
                stack.append((input, false))
            }
        }

        var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(root): seed]
        // Leaves in the order their first gradient arrived, with the accumulated gradient.
        var leaves: [(tensor: Tensor, grad: Tensor)] = []
        var leafIndex: [ObjectIdentifier: Int] = [:]
        try withNoGrad {
            for i in stride(from: order.count - 1, through: 0, by: -1) {
                guard let fn = order[i] else { continue }
                order[i] = nil
                guard let g = grads.removeValue(forKey: ObjectIdentifier(fn)), let rule = fn.backward else {
                    fn.release()
                    continue
                }
                let inputGrads = try rule(g)
                for (edge, ig) in zip(fn.edges, inputGrads) {
                    guard let ig else { continue }
                    switch edge {
                    case .none:
                        continue
                    case .node(let input):
                        let key = ObjectIdentifier(input)
                        if let existing = grads[key] { grads[key] = try add(existing, ig) } else { grads[key] = ig }
                    case .leaf(let t):
                        let key = ObjectIdentifier(t)
                        if let j = leafIndex[key] {
                            leaves[j].grad = try add(leaves[j].grad, ig)
                        } else {
                            leafIndex[key] = leaves.count
                            leaves.append((t, ig))
                        }
                    }
                }
                fn.release()
            }
            for (t, g) in leaves { try accumulateLeafGradient(t, g) }
        }
        gradFn = nil
    }

    /// Adds `g` (reshaped to the leaf's shape when it arrives flat) to the leaf's `grad`.
    private func accumulateLeafGradient(_ t: Tensor, _ g: Tensor) throws {
        try withNoGrad {
            let gc = g.shape == t.shape ? g : try g.reshaped(t.shape)
            if let existing = t.grad { t.grad = try add(existing, gc) } else { t.grad = gc.clone() }
        }
    }
}
