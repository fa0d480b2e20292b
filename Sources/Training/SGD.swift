import TensorEngine

/// Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay,
/// computing exactly what `torch.optim.SGD` computes (foreach=False):
///
///     d = g + wd·p                                   (when wd ≠ 0)
///     buf = d                    on the first step,  buf = μ·buf + (1 − dampening)·d after
///     d = d + μ·buf (Nesterov)   or   d = buf        (when μ ≠ 0)
///     p = p − lr·d
///
/// One fused SIMD pass per parameter reads p, g and buf once; large parameters are split over
/// cores with `Parallel.forRange` (element-wise, so the result does not depend on the split).
public final class SGD: Optimizer {
    public var groups: [ParameterGroup]
    public let momentum: Float
    public let dampening: Float
    public let nesterov: Bool
    public private(set) var stepCount: Int = 0
    var store: StateStore

    static let name = "sgd"

    public init(groups: [ParameterGroup], momentum: Float = 0, dampening: Float = 0, nesterov: Bool = false) throws {
        let c = SGD.name
        try requireHyper(momentum.isFinite && momentum >= 0, c, "momentum", "must be a finite number >= 0, got \(fmt(momentum))")
        try requireHyper(dampening.isFinite && dampening >= 0 && dampening <= 1, c, "dampening", "must be in [0, 1], got \(fmt(dampening))")
        if nesterov {
            try requireHyper(momentum > 0, c, "momentum", "must be > 0 with nesterov, got \(fmt(momentum))")
            try requireHyper(dampening == 0, c, "dampening", "must be 0 with nesterov, got \(fmt(dampening))")
        }
        self.groups = groups
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
        self.store = StateStore(component: c, bufferNames: momentum != 0 ? ["momentum_buffer"] : [], tracksStep: false)
        try store.checkGroups(groups)
    }

    /// One group holding `parameters`.
    public convenience init(parameters: [Tensor], lr: Float, momentum: Float = 0, dampening: Float = 0,
                            weightDecay: Float = 0, nesterov: Bool = false) throws {
        try self.init(groups: [ParameterGroup(parameters: parameters, lr: lr, weightDecay: weightDecay)],
                      momentum: momentum, dampening: dampening, nesterov: nesterov)
    }

    public func step() throws {
        let items = try store.collect(groups)
        let groups = self.groups
        withNoGrad {
            for item in items {
                let g = groups[item.group]
                var buf: UnsafeMutablePointer<Float>? = nil
                var first = false
                if momentum != 0 {
                    if let b = item.state.buffers["momentum_buffer"] {
                        buf = b.data
                    } else {
                        let b = Tensor(uninitialized: item.param.shape)
                        item.state.buffers["momentum_buffer"] = b
                        buf = b.data
                        first = true
                    }
                }
                SGD.update(p: item.param.data, g: item.grad.data, buf: buf, n: item.count, lr: g.lr, weightDecay: g.weightDecay,
                           momentum: momentum, dampening: dampening, nesterov: nesterov, first: first)
                item.state.step += 1
            }
        }
        stepCount += 1
    }

    public func stateTensors() -> [String: Tensor] { store.export(groups, stepCount: stepCount) }

    public func loadStateTensors(_ tensors: [String: Tensor]) throws {
        let (states, count) = try store.importing(tensors, groups: groups)
        store.states = states
        if let count { stepCount = count }
    }

    static func update(p: UnsafeMutablePointer<Float>, g: UnsafeMutablePointer<Float>, buf: UnsafeMutablePointer<Float>?, n: Int,
                       lr: Float, weightDecay: Float, momentum: Float, dampening: Float, nesterov: Bool, first: Bool) {
        Parallel.forRange(n, grain: optimizerGrain) { r in
            sgdKernel(p: p, g: g, buf: buf, range: r, lr: lr, weightDecay: weightDecay, momentum: momentum,
                      dampening: dampening, nesterov: nesterov, first: first)
        }
    }
}

@inline(__always)
func sgdKernel(p: UnsafeMutablePointer<Float>, g: UnsafeMutablePointer<Float>, buf: UnsafeMutablePointer<Float>?, range: Range<Int>,
               lr: Float, weightDecay: Float, momentum: Float, dampening: Float, nesterov: Bool, first: Bool) {
    let negLr = V8(repeating: -lr)
    let wd = V8(repeating: weightDecay)
    let mom = V8(repeating: momentum)
    let oneMinusDamp = V8(repeating: Float(1 - decimalDouble(dampening)))
    let hasWD = weightDecay != 0
    @inline(__always) func lane(_ pv: V8, _ gv: V8, _ bv: V8) -> (V8, V8) {
        var d = gv
        if hasWD { d = d.addingProduct(pv, wd) }                       // grad.add(param, alpha=wd)
        var b = bv
        if first { b = d } else { b = (b * mom).addingProduct(d, oneMinusDamp) }  // buf.mul_(μ).add_(d, alpha=1-damp)
        d = nesterov ? d.addingProduct(b, mom) : b                      // d.add(buf, alpha=μ) or buf
        return (pv.addingProduct(d, negLr), b)                         // param.add_(d, alpha=-lr)
    }
    var i = range.lowerBound
    let end = range.upperBound
    if let buf {
        while i + 8 <= end {
            let (np, nb) = lane(load8(p + i), load8(g + i), first ? V8() : load8(buf + i))
            store8(np, p + i); store8(nb, buf + i)
            i += 8
        }
        if i < end {
            let r = end - i
            let (np, nb) = lane(loadPartial(p + i, r), loadPartial(g + i, r), first ? V8() : loadPartial(buf + i, r))
            storePartial(np, p + i, r); storePartial(nb, buf + i, r)
        }
    } else {
        @inline(__always) func plain(_ pv: V8, _ gv: V8) -> V8 {
            var d = gv
            if hasWD { d = d.addingProduct(pv, wd) }
            return pv.addingProduct(d, negLr)
        }
        while i + 8 <= end { store8(plain(load8(p + i), load8(g + i)), p + i); i += 8 }
        if i < end {
            let r = end - i
            storePartial(plain(loadPartial(p + i, r), loadPartial(g + i, r)), p + i, r)
        }
    }
}
