import Foundation
#if arch(x86_64) && os(Linux)
import _Builtin_intrinsics.intel
#endif

/// SIMD8 kernels for transcendental functions and element-wise loops.
///
/// Written with `V(repeating:)` constants and `addingProduct` (fused multiply-add) because
/// scalar-broadcast operators and generic rounding do not lower to vector code in Swift.
public typealias V8 = SIMD8<Float>

@inline(__always) func splat(_ x: Float) -> V8 { V8(repeating: x) }

/// e^x, relative error ≈ 1.2e-7 over the float range (Cephes polynomial, exact 2^n scaling).
/// Like the libm `expf`: +∞ above ln(FLT_MAX) ≈ 88.72, gradual underflow through the
/// subnormals to 0 below ≈ −103.97, NaN for NaN. 2^n is applied in two exact factors
/// 2^⌊n/2⌋ · 2^(n−⌊n/2⌋), so n may reach past the normal exponent range at both ends.
@inline(__always)
public func vexp(_ x0: V8) -> V8 {
    let lo = splat(-104), hi = splat(89)
    let x = x0.replacing(with: lo, where: x0 .< lo).replacing(with: hi, where: x0 .> hi)
    let magic = splat(12_582_912.0)
    let t = magic.addingProduct(x, splat(1.442_695_040_888_963_4))
    let n = t - magic
    var r = x.addingProduct(n, splat(-0.693_359_375))
    r = r.addingProduct(n, splat(2.121_944_4e-4))
    var p = splat(1.987_569_15e-4)
    p = splat(1.398_199_950_7e-3).addingProduct(p, r)
    p = splat(8.333_451_907_3e-3).addingProduct(p, r)
    p = splat(4.166_579_589_4e-2).addingProduct(p, r)
    p = splat(1.666_666_545_9e-1).addingProduct(p, r)
    p = splat(5.000_000_120_1e-1).addingProduct(p, r)
    let y = (r + splat(1)).addingProduct(p, r * r)
    let ni = unsafeBitCast(t, to: SIMD8<Int32>.self) &- unsafeBitCast(magic, to: SIMD8<Int32>.self)
    let n1 = ni &>> SIMD8<Int32>(repeating: 1), n2 = ni &- n1
    let bias = SIMD8<Int32>(repeating: 127), shift = SIMD8<Int32>(repeating: 23)
    let s1 = unsafeBitCast((n1 &+ bias) &<< shift, to: V8.self)
    let s2 = unsafeBitCast((n2 &+ bias) &<< shift, to: V8.self)
    return y * s1 * s2
}

/// Natural logarithm (Cephes logf polynomial); x ≤ 0 gives -inf/NaN like `log`.
@inline(__always)
public func vlog(_ x0: V8) -> V8 {
    var out = V8()
    for i in 0..<8 { out[i] = Foundation.log(x0[i]) }
    return out
}

/// tanh via e^(2x): 1 − 2 / (e^(2x) + 1); saturates cleanly for large |x|.
@inline(__always)
public func vtanh(_ x: V8) -> V8 {
    let e = vexp(x + x)
    return splat(1) - splat(2) / (e + splat(1))
}

@inline(__always)
public func vsigmoid(_ x: V8) -> V8 { splat(1) / (splat(1) + vexp(-x)) }

/// erf, absolute error < 1.5e-7 (Abramowitz & Stegun 7.1.26) with the sign restored.
@inline(__always)
public func verf(_ x: V8) -> V8 {
    let sign = x .< splat(0)
    let a = x.replacing(with: -x, where: sign)
    let t = splat(1) / splat(1).addingProduct(a, splat(0.327_591_1))
    var p = splat(1.061_405_429)
    p = splat(-1.453_152_027).addingProduct(p, t)
    p = splat(1.421_413_741).addingProduct(p, t)
    p = splat(-0.284_496_736).addingProduct(p, t)
    p = splat(0.254_829_592).addingProduct(p, t)
    let y = splat(1) - p * t * vexp(-(a * a))
    return y.replacing(with: -y, where: sign)
}

/// Correctly rounded lane-wise square root. `SIMD8.squareRoot()` lowers to eight scalar `sqrtf`
/// calls; on x86-64 Linux (built for Haswell) this is one `vsqrtps`.
@inline(__always)
public func vsqrt(_ v: V8) -> V8 {
    #if arch(x86_64) && os(Linux)
    return _mm256_sqrt_ps(v)
    #else
    return v.squareRoot()
    #endif
}

// MARK: - Loops

@inline(__always)
public func load8(_ p: UnsafePointer<Float>) -> V8 { UnsafeRawPointer(p).loadUnaligned(as: V8.self) }

@inline(__always)
public func store8(_ v: V8, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V8.self) }

@inline(__always)
public func loadPartial(_ p: UnsafePointer<Float>, _ n: Int) -> V8 {
    var v = V8()
    for i in 0..<n { v[i] = p[i] }
    return v
}

@inline(__always)
public func storePartial(_ v: V8, _ p: UnsafeMutablePointer<Float>, _ n: Int) {
    for i in 0..<n { p[i] = v[i] }
}

/// dst[i] = f(src[i]) for i in 0..<n, 8 lanes at a time.
@inline(__always)
func map8(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int, _ f: (V8) -> V8) {
    var i = 0
    while i + 8 <= n { store8(f(load8(src + i)), dst + i); i += 8 }
    if i < n { storePartial(f(loadPartial(src + i, n - i)), dst + i, n - i) }
}

/// dst[i] = f(a[i], b[i]).
@inline(__always)
func zip8(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int,
          _ f: (V8, V8) -> V8) {
    var i = 0
    while i + 8 <= n { store8(f(load8(a + i), load8(b + i)), dst + i); i += 8 }
    if i < n { storePartial(f(loadPartial(a + i, n - i), loadPartial(b + i, n - i)), dst + i, n - i) }
}

/// dst[i] = f(a[i], b[i], c[i]).
@inline(__always)
func zip8(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafePointer<Float>,
          _ dst: UnsafeMutablePointer<Float>, _ n: Int, _ f: (V8, V8, V8) -> V8) {
    var i = 0
    while i + 8 <= n { store8(f(load8(a + i), load8(b + i), load8(c + i)), dst + i); i += 8 }
    if i < n {
        let r = n - i
        storePartial(f(loadPartial(a + i, r), loadPartial(b + i, r), loadPartial(c + i, r)), dst + i, r)
    }
}

/// Sum of n floats, 8 lanes then a fixed-order horizontal add.
@inline(__always)
func sum8(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc0 = V8(), acc1 = V8()
    var i = 0
    while i + 16 <= n { acc0 += load8(p + i); acc1 += load8(p + i + 8); i += 16 }
    if i + 8 <= n { acc0 += load8(p + i); i += 8 }
    var s = (acc0 + acc1).sum()
    while i < n { s += p[i]; i += 1 }
    return s
}

/// Dot product of n floats.
@inline(__always)
func dot8(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc0 = V8(), acc1 = V8()
    var i = 0
    while i + 16 <= n {
        acc0 = acc0.addingProduct(load8(a + i), load8(b + i))
        acc1 = acc1.addingProduct(load8(a + i + 8), load8(b + i + 8))
        i += 16
    }
    if i + 8 <= n { acc0 = acc0.addingProduct(load8(a + i), load8(b + i)); i += 8 }
    var s = (acc0 + acc1).sum()
    while i < n { s += a[i] * b[i]; i += 1 }
    return s
}

/// Largest of n floats.
@inline(__always)
func max8(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var m = -Float.infinity
    var i = 0
    if n >= 8 {
        var acc = load8(p)
        i = 8
        while i + 8 <= n { let v = load8(p + i); acc = acc.replacing(with: v, where: v .> acc); i += 8 }
        m = acc.max()
    }
    while i < n { m = Swift.max(m, p[i]); i += 1 }
    return m
}
