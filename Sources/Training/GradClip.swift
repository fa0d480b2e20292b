import Foundation
import TensorEngine

/// Elements per partial sum of a norm. Chunk boundaries depend only on the tensor size, partial
/// sums are Double and are added in chunk order, so the norm is the same for every thread count.
let normChunk = 16384

/// The `normType`-norm of all gradients of `params` taken together, as if concatenated
/// (`torch.nn.utils.get_total_norm`). Parameters without a gradient are skipped, a tensor listed
/// twice counts once. `normType` follows `torch.linalg.vector_norm`: `.infinity` is the largest
/// |g|, `-.infinity` the smallest, 0 the number of non-zero elements, otherwise
/// (Σ|g|^p)^(1/p). Accumulation is in Double in a fixed order; NaN gradients give NaN.
public func gradNorm(_ params: [Tensor], normType: Float = 2) -> Double {
    let grads = uniqueGrads(params).map { $0.isContiguous ? $0 : $0.clone() }
    let p = Double(normType)
    if grads.isEmpty { return 0 }
    if p.isNaN { return .nan }
    if p == .infinity || p == -.infinity {
        var result = p > 0 ? 0.0 : Double.infinity
        for g in grads {
            let r = extremeAbs(g.data, g.count, largest: p > 0)
            if r.isNaN { return .nan }
            result = p > 0 ? Swift.max(result, r) : Swift.min(result, r)
        }
        return result
    }
    var total = 0.0
    for g in grads {
        total += chunkedSum(g.data, g.count) { ptr, n in
            if p == 2 { return sumSquares(ptr, n) }
            if p == 1 { return sumAbs(ptr, n) }
            var s = 0.0
            for i in 0..<n {
                let a = Swift.abs(Double(ptr[i]))
                if p == 0 { s += a != 0 ? 1 : 0 } else { s += Foundation.pow(a, p) }
            }
            return s
        }
    }
    if p == 0 { return total }
    if p == 1 { return total }
    if p == 2 { return total.squareRoot() }
    return Foundation.pow(total, 1 / p)
}

/// Scales all gradients of `params` in place so that their joint `normType`-norm is at most
/// `maxNorm`, like `torch.nn.utils.clip_grad_norm_`: with `total` the norm before clipping, every
/// gradient is multiplied by `maxNorm / (total + 1e-6)` when that factor is below 1 (a NaN norm
/// changes nothing). Returns `total`, so callers can log it or skip a non-finite step.
@discardableResult
public func clipGradNorm(_ params: [Tensor], maxNorm: Float, normType: Float = 2) -> Float {
    let total = gradNorm(params, normType: normType)
    let coef = Double(maxNorm) / (total + 1e-6)
    if coef < 1 {
        scaleGrads(of: params, by: Float(coef))
    }
    return Float(total)
}

/// Clamps every gradient element of `params` to [−clipValue, clipValue] in place
/// (`torch.nn.utils.clip_grad_value_`; NaN elements stay NaN).
public func clipGradValue(_ params: [Tensor], clipValue: Float) {
    let lo = V8(repeating: -clipValue), hi = V8(repeating: clipValue)
    for p in uniqueParamsWithGrad(params) {
        guard let g0 = p.grad else { continue }
        let g = g0.isContiguous ? g0 : g0.clone()
        let d = g.data
        Parallel.forRange(g.count, grain: optimizerGrain) { r in
            @inline(__always) func clamp(_ v: V8) -> V8 {
                let a = v.replacing(with: lo, where: v .< lo)
                return a.replacing(with: hi, where: a .> hi)
            }
            var i = r.lowerBound
            while i + 8 <= r.upperBound { store8(clamp(load8(d + i)), d + i); i += 8 }
            if i < r.upperBound { let n = r.upperBound - i; storePartial(clamp(loadPartial(d + i, n)), d + i, n) }
        }
        if g !== g0 { p.grad = g }
    }
}

// MARK: - Helpers

/// Parameters that have a gradient, each tensor once, in first-seen order.
func uniqueParamsWithGrad(_ params: [Tensor]) -> [Tensor] {
    var seen = Set<ObjectIdentifier>()
    var out: [Tensor] = []
    for p in params where p.grad != nil && seen.insert(ObjectIdentifier(p)).inserted { out.append(p) }
    return out
}

func uniqueGrads(_ params: [Tensor]) -> [Tensor] { uniqueParamsWithGrad(params).compactMap(\.grad) }

/// Multiplies each parameter's gradient by `s` in place (non-contiguous gradients are replaced
/// by a scaled contiguous copy).
func scaleGrads(of params: [Tensor], by s: Float) {
    let sv = V8(repeating: s)
    for p in uniqueParamsWithGrad(params) {
        guard let g0 = p.grad else { continue }
        let g = g0.isContiguous ? g0 : g0.clone()
        if g !== g0 { p.grad = g }
        let d = g.data
        Parallel.forRange(g.count, grain: optimizerGrain) { r in
            var i = r.lowerBound
            while i + 8 <= r.upperBound { store8(load8(d + i) * sv, d + i); i += 8 }
            if i < r.upperBound { let n = r.upperBound - i; storePartial(loadPartial(d + i, n) * sv, d + i, n) }
        }
    }
}

/// Σ over fixed chunks of `body(chunk)`, combined in chunk order.
func chunkedSum(_ p: UnsafeMutablePointer<Float>, _ n: Int, _ body: (UnsafeMutablePointer<Float>, Int) -> Double) -> Double {
    let chunks = Swift.max(1, (n + normChunk - 1) / normChunk)
    let partial = UnsafeMutablePointer<Double>.allocate(capacity: chunks)
    defer { partial.deallocate() }
    partial.initialize(repeating: 0, count: chunks)
    Parallel.forFixedChunks(n, chunk: normChunk) { c, r in
        partial[c] = body(p + r.lowerBound, r.count)
    }
    var s = 0.0
    for c in 0..<chunks { s += partial[c] }
    return s
}

/// Σ x² in Double, four lanes of Double accumulators, fixed order.
@inline(__always)
func sumSquares(_ p: UnsafeMutablePointer<Float>, _ n: Int) -> Double {
    var a0 = SIMD4<Double>(), a1 = SIMD4<Double>()
    var i = 0
    while i + 8 <= n {
        let v = load8(p + i)
        let lo = SIMD4<Double>(v.lowHalf), hi = SIMD4<Double>(v.highHalf)
        a0 = a0.addingProduct(lo, lo)
        a1 = a1.addingProduct(hi, hi)
        i += 8
    }
    var s = (a0 + a1).sum()
    while i < n { let x = Double(p[i]); s += x * x; i += 1 }
    return s
}

/// Σ |x| in Double.
@inline(__always)
func sumAbs(_ p: UnsafeMutablePointer<Float>, _ n: Int) -> Double {
    var a0 = SIMD4<Double>(), a1 = SIMD4<Double>()
    var i = 0
    while i + 8 <= n {
        let v = load8(p + i)
        let m = v.replacing(with: -v, where: v .< V8())
        a0 += SIMD4<Double>(m.lowHalf)
        a1 += SIMD4<Double>(m.highHalf)
        i += 8
    }
    var s = (a0 + a1).sum()
    while i < n { s += Swift.abs(Double(p[i])); i += 1 }
    return s
}

/// Largest (or smallest) |x|; NaN when any element is NaN.
func extremeAbs(_ p: UnsafeMutablePointer<Float>, _ n: Int, largest: Bool) -> Double {
    var r: Float = largest ? 0 : .infinity
    for i in 0..<n {
        let a = Swift.abs(p[i])
        if a.isNaN { return .nan }
        r = largest ? Swift.max(r, a) : Swift.min(r, a)
    }
    return Double(r)
}
