import Foundation
import TensorEngine

/// Adam (`torch.optim.Adam`, L2 weight decay added to the gradient).
///
/// Per parameter, with t its own update count (PyTorch's `state['step']`):
///
///     g = g + wd·p                                   (when wd ≠ 0)
///     m = lerp(m, g, 1 − β1)       v = β2·v + (1 − β2)·g²
///     p = p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
///
/// The update is one fused SIMD pass reading p, g, m and v once, split over cores for large
/// parameters. Bias corrections and step sizes are computed in Double from the decimal values of
/// the Float hyperparameters (what Python sees for `lr=1e-3`), then rounded to Float once.
public final class Adam: Optimizer {
    var engine: AdamEngine
    public var groups: [ParameterGroup]

    public init(groups: [ParameterGroup], betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8) throws {
        engine = try AdamEngine(component: "adam", betas: betas, eps: eps, decoupled: false)
        self.groups = groups
        try engine.store.checkGroups(groups)
    }

    /// One group holding `parameters`.
    public convenience init(parameters: [Tensor], lr: Float = 1e-3, betas: (Float, Float) = (0.9, 0.999),
                            eps: Float = 1e-8, weightDecay: Float = 0) throws {
        try self.init(groups: [ParameterGroup(parameters: parameters, lr: lr, weightDecay: weightDecay)], betas: betas, eps: eps)
    }

    public var betas: (Float, Float) { (engine.beta1, engine.beta2) }
    public var eps: Float { engine.eps }
    public var stepCount: Int { engine.stepCount }
    public func step() throws { try engine.step(groups) }
    public func stateTensors() -> [String: Tensor] { engine.store.export(groups, stepCount: engine.stepCount) }
    public func loadStateTensors(_ tensors: [String: Tensor]) throws { try engine.load(tensors, groups: groups) }
}

/// AdamW (`torch.optim.AdamW`): Adam with decoupled weight decay. Before the Adam update every
/// parameter is shrunk, `p = p·(1 − lr·wd)`, and the gradient is left alone.
public final class AdamW: Optimizer {
    var engine: AdamEngine
    public var groups: [ParameterGroup]

    public init(groups: [ParameterGroup], betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8) throws {
        engine = try AdamEngine(component: "adamw", betas: betas, eps: eps, decoupled: true)
        self.groups = groups
        try engine.store.checkGroups(groups)
    }

    /// One group holding `parameters` (weight decay defaults to 0.01 like PyTorch).
    public convenience init(parameters: [Tensor], lr: Float = 1e-3, betas: (Float, Float) = (0.9, 0.999),
                            eps: Float = 1e-8, weightDecay: Float = 1e-2) throws {
        try self.init(groups: [ParameterGroup(parameters: parameters, lr: lr, weightDecay: weightDecay)], betas: betas, eps: eps)
    }

    public var betas: (Float, Float) { (engine.beta1, engine.beta2) }
    public var eps: Float { engine.eps }
    public var stepCount: Int { engine.stepCount }
    public func step() throws { try engine.step(groups) }
    public func stateTensors() -> [String: Tensor] { engine.store.export(groups, stepCount: engine.stepCount) }
    public func loadStateTensors(_ tensors: [String: Tensor]) throws { try engine.load(tensors, groups: groups) }
}

/// The Float as the decimal number it prints as (Float(0.9) → 0.9 exactly as Double), so scalar
/// arithmetic matches a Python float hyperparameter written the same way.
@inline(__always)
func decimalDouble(_ x: Float) -> Double { Double(x.description) ?? Double(x) }

/// Shared implementation of Adam and AdamW.
struct AdamEngine {
    let component: String
    let beta1: Float
    let beta2: Float
    let eps: Float
    let decoupled: Bool
    var store: StateStore
    var stepCount = 0

    init(component: String, betas: (Float, Float), eps: Float, decoupled: Bool) throws {
        try requireHyper(betas.0.isFinite && betas.0 >= 0 && betas.0 < 1, component, "beta1", "must be in [0, 1), got \(fmt(betas.0))")
        try requireHyper(betas.1.isFinite && betas.1 >= 0 && betas.1 < 1, component, "beta2", "must be in [0, 1), got \(fmt(betas.1))")
        try requireHyper(eps.isFinite && eps > 0, component, "eps", "must be a finite number > 0, got \(fmt(eps))")
        self.component = component
        self.beta1 = betas.0
        self.beta2 = betas.1
        self.eps = eps
        self.decoupled = decoupled
        self.store = StateStore(component: component, bufferNames: ["exp_avg", "exp_avg_sq"], tracksStep: true)
    }

    mutating func load(_ tensors: [String: Tensor], groups: [ParameterGroup]) throws {
        let (states, count) = try store.importing(tensors, groups: groups)
        store.states = states
        if let count { stepCount = count }
    }

    mutating func step(_ groups: [ParameterGroup]) throws {
        let items = try store.collect(groups)
        let b1 = decimalDouble(beta1), b2 = decimalDouble(beta2)
        let lerpWeight = Float(1 - b1)
        let oneMinusBeta2 = Float(1 - b2)
        let beta2f = Float(b2)
        let groupLR = groups.map { decimalDouble($0.lr) }
        let groupWD = groups.map { decimalDouble($0.weightDecay) }
        withNoGrad {
            for item in items {
                let st = item.state
                if st.buffers["exp_avg"] == nil {
                    st.buffers["exp_avg"] = Tensor.zeros(item.param.shape)
                    st.buffers["exp_avg_sq"] = Tensor.zeros(item.param.shape)
                }
                guard let m = st.buffers["exp_avg"], let v = st.buffers["exp_avg_sq"] else { continue }
                st.step += 1
                let t = Double(st.step)
                let lr = groupLR[item.group], wd = groupWD[item.group]
                let bc1 = 1 - Foundation.pow(b1, t)
                let bc2 = 1 - Foundation.pow(b2, t)
                var k = AdamScalars()
                k.negStepSize = Float(-(lr / bc1))
                k.bc2Sqrt = Float(bc2.squareRoot())
                k.eps = eps
                k.lerpWeight = lerpWeight
                k.beta2 = beta2f
                k.oneMinusBeta2 = oneMinusBeta2
                if wd != 0 {
                    if decoupled { k.decay = Float(1 - lr * wd); k.useDecay = true } else { k.l2 = Float(wd); k.useL2 = true }
                }
                let p = item.param.data, g = item.grad.data, mp = m.data, vp = v.data
                let kk = k
                Parallel.forRange(item.count, grain: optimizerGrain) { r in
                    adamKernel(p: p, g: g, m: mp, v: vp, range: r, k: kk)
                }
            }
        }
        stepCount += 1
    }
}

/// Per-parameter scalars of one Adam update.
struct AdamScalars {
    var negStepSize: Float = 0
    var bc2Sqrt: Float = 1
    var eps: Float = 1e-8
    var lerpWeight: Float = 0.1
    var beta2: Float = 0.999
    var oneMinusBeta2: Float = 0.001
    var l2: Float = 0
    var useL2 = false
    var decay: Float = 1
    var useDecay = false
}

/// The fused Adam/AdamW update over `range`, in PyTorch's single-tensor operation order:
/// `param.mul_(1-lr·wd)` | `grad.add(param, alpha=wd)`, `exp_avg.lerp_(grad, 1-β1)`,
/// `exp_avg_sq.mul_(β2).addcmul_(grad, grad, value=1-β2)`,
/// `denom = (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps)`, `param.addcdiv_(exp_avg, denom, value=-step_size)`.
@inline(__always)
func adamKernel(p: UnsafeMutablePointer<Float>, g: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>,
                v: UnsafeMutablePointer<Float>, range: Range<Int>, k: AdamScalars) {
    let negStep = V8(repeating: k.negStepSize)
    let bc2 = V8(repeating: k.bc2Sqrt)
    let eps = V8(repeating: k.eps)
    // torch's lerp: weight < 0.5 ? start + w·(end − start) : end + (w − 1)·(end − start)
    let lowWeight = Swift.abs(k.lerpWeight) < 0.5
    let coeff = V8(repeating: lowWeight ? k.lerpWeight : k.lerpWeight - 1)
    let b2 = V8(repeating: k.beta2)
    let omb2 = V8(repeating: k.oneMinusBeta2)
    let l2 = V8(repeating: k.l2)
    let decay = V8(repeating: k.decay)
    let useL2 = k.useL2, useDecay = k.useDecay

    @inline(__always) func lane(_ p0: V8, _ g0: V8, _ m0: V8, _ v0: V8) -> (V8, V8, V8) {
        var pv = p0
        if useDecay { pv = pv * decay }
        var gv = g0
        if useL2 { gv = gv.addingProduct(pv, l2) }
        let diff = gv - m0
        let m1 = (lowWeight ? m0 : gv).addingProduct(coeff, diff)
        let v1 = (v0 * b2).addingProduct(omb2 * gv, gv)
        let denom = vsqrt(v1) / bc2 + eps
        let p1 = pv + (negStep * m1) / denom
        return (p1, m1, v1)
    }

    var i = range.lowerBound
    let end = range.upperBound
    while i + 8 <= end {
        let (np, nm, nv) = lane(load8(p + i), load8(g + i), load8(m + i), load8(v + i))
        store8(np, p + i); store8(nm, m + i); store8(nv, v + i)
        i += 8
    }
    if i < end {
        let r = end - i
        let (np, nm, nv) = lane(loadPartial(p + i, r), loadPartial(g + i, r), loadPartial(m + i, r), loadPartial(v + i, r))
        storePartial(np, p + i, r); storePartial(nm, m + i, r); storePartial(nv, v + i, r)
    }
}
