/// Reverse-mode automatic differentiation.
///
/// Every op that sees an input requiring a gradient (while recording is enabled) attaches a
/// `GradFn` to its output: the inputs and a closure from the output's gradient to the inputs'.
/// `backward()` walks that graph once in reverse topological order, accumulates gradients of
/// tensors used more than once, stores leaf gradients in `grad`, and releases every node it
/// passed, so the memory the forward pass saved for backward is returned right away.

public final class GradFn {
    public let name: String
    var inputs: [Tensor]
    var backward: ((Tensor) throws -> [Tensor?])?

    init(name: String, inputs: [Tensor], backward: @escaping (Tensor) throws -> [Tensor?]) {
        self.name = name
        self.inputs = inputs
        self.backward = backward
    }

    func release() { inputs = []; backward = nil }
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

        // Topological order by iterative depth-first search.
        var order: [Tensor?] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (t, expanded) = stack.popLast() {
            if expanded { order.append(t); continue }
            let id = ObjectIdentifier(t)
            if visited.contains(id) { continue }
            visited.insert(id)
            stack.append((t, true))
            if let fn = t.gradFn {
                for input in fn.inputs where input.requiresGrad && !visited.contains(ObjectIdentifier(input)) {
                    stack.append((input, false))
                }
            }
        }

        var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): seed]
        try withNoGrad {
            for i in stride(from: order.count - 1, through: 0, by: -1) {
                guard let t = order[i] else { continue }
                order[i] = nil
                let id = ObjectIdentifier(t)
                guard let g = grads.removeValue(forKey: id) else { t.gradFn?.release(); t.gradFn = nil; continue }
                if let fn = t.gradFn, let rule = fn.backward {
                    let inputGrads = try rule(g)
                    for (input, ig) in zip(fn.inputs, inputGrads) {
                        guard input.requiresGrad, let ig else { continue }
                        let key = ObjectIdentifier(input)
                        if let existing = grads[key] {
                            grads[key] = try add(existing, ig)
                        } else {
                            grads[key] = ig
                        }
                    }
                    fn.release()
                    t.gradFn = nil
                } else if t.gradFn == nil {
                    let gc = g.shape == t.shape ? g : try g.reshaped(t.shape)
                    if let existing = t.grad { t.grad = try add(existing, gc) } else { t.grad = gc.clone() }
                }
            }
        }
    }
}
