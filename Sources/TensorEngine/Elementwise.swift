import Foundation

// MARK: - Broadcasting

/// The NumPy/PyTorch broadcast of two shapes, or a thrown mismatch naming both.
public func broadcastShape(_ a: [Int], _ b: [Int], op: String) throws -> [Int] {
    let r = max(a.count, b.count)
    var out = [Int](repeating: 1, count: r)
    for i in 0..<r {
        let da = i < r - a.count ? 1 : a[i - (r - a.count)]
        let db = i < r - b.count ? 1 : b[i - (r - b.count)]
        try check(da == db || da == 1 || db == 1, op,
                  "cannot broadcast \(shapeString(a)) with \(shapeString(b)) (dimension \(i): \(da) vs \(db))")
        out[i] = da == 1 ? db : da
    }
    return out
}

/// Strides that read `t` as if it had shape `target` (0 along broadcast dimensions).
func broadcastStrides(_ t: Tensor, to target: [Int]) -> [Int] {
    let r = target.count, k = t.rank
    var s = [Int](repeating: 0, count: r)
    for i in 0..<k where t.shape[i] != 1 { s[r - k + i] = t.strides[i] }
    return s
}

/// Sums a broadcast gradient back down to `shape`.
func reduceToShape(_ g: Tensor, _ shape: [Int]) throws -> Tensor {
    if g.shape == shape { return g }
    let lead = g.rank - shape.count
    var axes: [Int] = Array(0..<lead)
    for i in 0..<shape.count where shape[i] == 1 && g.shape[lead + i] != 1 { axes.append(lead + i) }
    let s = axes.isEmpty ? g : try sum(g, axes: axes, keepDims: true)
    return try s.reshaped(shape)
}

enum BinaryKind { case add, sub, mul, div }

@inline(__always)
func apply(_ k: BinaryKind, _ a: V8, _ b: V8) -> V8 {
    switch k {
    case .add: return a + b
    case .sub: return a - b
    case .mul: return a * b
    case .div: return a / b
    }
}

/// The forward kernel of a broadcasting binary op.
func binaryKernel(_ a: Tensor, _ b: Tensor, _ kind: BinaryKind, op: String) throws -> Tensor {
    let shape = try broadcastShape(a.shape, b.shape, op: op)
    let out = Tensor(uninitialized: shape)
    let n = out.count
    if n == 0 { return out }
    let o = out.data
    if a.shape == b.shape && a.isContiguous && b.isContiguous {
        let pa = a.data, pb = b.data
        Parallel.forRange(n) { r in
            let lo = r.lowerBound
            switch kind {
            case .add: zip8(pa + lo, pb + lo, o + lo, r.count) { $0 + $1 }
            case .sub: zip8(pa + lo, pb + lo, o + lo, r.count) { $0 - $1 }
            case .mul: zip8(pa + lo, pb + lo, o + lo, r.count) { $0 * $1 }
            case .div: zip8(pa + lo, pb + lo, o + lo, r.count) { $0 / $1 }
            }
        }
        return out
    }
    // General path: rows over the last dimension, with per-operand strides (0 = broadcast).
    let sa = broadcastStrides(a, to: shape), sb = broadcastStrides(b, to: shape)
    let rank = shape.count
    let inner = rank == 0 ? 1 : shape[rank - 1]
    let ia = rank == 0 ? 0 : sa[rank - 1], ib = rank == 0 ? 0 : sb[rank - 1]
    let rows = n / max(inner, 1)
    let pa = a.data, pb = b.data
    Parallel.forRange(rows, grain: max(1, 32768 / max(inner, 1))) { range in
        var idx = [Int](repeating: 0, count: max(rank - 1, 0))
        var rem = range.lowerBound
        for d in stride(from: rank - 2, through: 0, by: -1) { idx[d] = rem % shape[d]; rem /= shape[d] }
        var scratchA = [Float](repeating: 0, count: ia == 1 ? 0 : inner)
        var scratchB = [Float](repeating: 0, count: ib == 1 ? 0 : inner)
        for row in range {
            var offA = 0, offB = 0
            for d in 0..<(rank - 1) { offA += idx[d] * sa[d]; offB += idx[d] * sb[d] }
            let dst = o + row * inner
            scratchA.withUnsafeMutableBufferPointer { bufA in
                scratchB.withUnsafeMutableBufferPointer { bufB in
                    let rowA: UnsafePointer<Float>
                    if ia == 1 { rowA = UnsafePointer(pa + offA) } else {
                        for j in 0..<inner { bufA[j] = pa[offA + j * ia] }
                        rowA = UnsafePointer(bufA.baseAddress!)
                    }
                    let rowB: UnsafePointer<Float>
                    if ib == 1 { rowB = UnsafePointer(pb + offB) } else {
                        for j in 0..<inner { bufB[j] = pb[offB + j * ib] }
                        rowB = UnsafePointer(bufB.baseAddress!)
                    }
                    zip8(rowA, rowB, dst, inner) { apply(kind, $0, $1) }
                }
            }
            var d = rank - 2
            while d >= 0 { idx[d] += 1; if idx[d] < shape[d] { break }; idx[d] = 0; d -= 1 }
        }
    }
    return out
}

// MARK: - Binary ops

// add and sub read only their inputs' shapes in backward, so they keep only those (not the
// inputs themselves, which are often large activations nothing else needs).
public func add(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    let aShape = a.requiresGrad ? a.shape : nil, bShape = b.requiresGrad ? b.shape : nil
    return try binaryKernel(a, b, .add, op: "add").recorded("add", [a, b]) { g in
        [try aShape.map { try reduceToShape(g, $0) }, try bShape.map { try reduceToShape(g, $0) }]
    }
}

public func sub(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    let aShape = a.requiresGrad ? a.shape : nil, bShape = b.requiresGrad ? b.shape : nil
    return try binaryKernel(a, b, .sub, op: "sub").recorded("sub", [a, b]) { g in
        [try aShape.map { try reduceToShape(g, $0) }, try bShape.map { try reduceToShape(try neg(g), $0) }]
    }
}

public func mul(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    try binaryKernel(a, b, .mul, op: "mul").recorded("mul", [a, b]) { g in
        [a.requiresGrad ? try reduceToShape(try binaryKernel(g, b, .mul, op: "mul"), a.shape) : nil,
         b.requiresGrad ? try reduceToShape(try binaryKernel(g, a, .mul, op: "mul"), b.shape) : nil]
    }
}

public func div(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    try binaryKernel(a, b, .div, op: "div").recorded("div", [a, b]) { g in
        let ga = try binaryKernel(g, b, .div, op: "div")
        var gb: Tensor? = nil
        if b.requiresGrad {
            // d(a/b)/db = -a / b² = -(g/b) · (a/b)
            let q = try binaryKernel(a, b, .div, op: "div")
            gb = try reduceToShape(try neg(try binaryKernel(ga, q, .mul, op: "mul")), b.shape)
        }
        return [a.requiresGrad ? try reduceToShape(ga, a.shape) : nil, gb]
    }
}

public func + (a: Tensor, b: Tensor) throws -> Tensor { try add(a, b) }
public func - (a: Tensor, b: Tensor) throws -> Tensor { try sub(a, b) }
public func * (a: Tensor, b: Tensor) throws -> Tensor { try mul(a, b) }
public func / (a: Tensor, b: Tensor) throws -> Tensor { try div(a, b) }
public func + (a: Tensor, s: Float) throws -> Tensor { try addScalar(a, s) }
public func - (a: Tensor, s: Float) throws -> Tensor { try addScalar(a, -s) }
public func * (a: Tensor, s: Float) throws -> Tensor { try mulScalar(a, s) }
public func / (a: Tensor, s: Float) throws -> Tensor { try mulScalar(a, 1 / s) }
public prefix func - (a: Tensor) throws -> Tensor { try neg(a) }

// MARK: - Unary ops

/// Applies a vectorised map to a (possibly strided) tensor into a new contiguous one.
@inline(__always)
func unaryKernel(_ x: Tensor, _ f: (V8) -> V8) -> Tensor {
    let src = x.contiguousData()
    let out = Tensor(uninitialized: x.shape)
    let s = src.data, d = out.data
    Parallel.forRange(out.count) { r in map8(s + r.lowerBound, d + r.lowerBound, r.count, f) }
    return out
}

/// out = f(a, b) elementwise for two contiguous tensors of equal shape.
@inline(__always)
func zipKernel(_ a: Tensor, _ b: Tensor, _ f: (V8, V8) -> V8) -> Tensor {
    let ca = a.contiguousData(), cb = b.contiguousData()
    let out = Tensor(uninitialized: a.shape)
    let pa = ca.data, pb = cb.data, d = out.data
    Parallel.forRange(out.count) { r in zip8(pa + r.lowerBound, pb + r.lowerBound, d + r.lowerBound, r.count, f) }
    return out
}

@inline(__always)
func zipKernel(_ a: Tensor, _ b: Tensor, _ c: Tensor, _ f: (V8, V8, V8) -> V8) -> Tensor {
    let ca = a.contiguousData(), cb = b.contiguousData(), cc = c.contiguousData()
    let out = Tensor(uninitialized: a.shape)
    let pa = ca.data, pb = cb.data, pc = cc.data, d = out.data
    Parallel.forRange(out.count) { r in
        let lo = r.lowerBound
        zip8(pa + lo, pb + lo, pc + lo, d + lo, r.count, f)
    }
    return out
}

public func neg(_ x: Tensor) throws -> Tensor {
    unaryKernel(x) { -$0 }.recorded("neg", [x]) { g in [try neg(g)] }
}

public func addScalar(_ x: Tensor, _ s: Float) throws -> Tensor {
    let v = splat(s)
    return unaryKernel(x) { $0 + v }.recorded("addScalar", [x]) { g in [g] }
}

public func mulScalar(_ x: Tensor, _ s: Float) throws -> Tensor {
    let v = splat(s)
    return unaryKernel(x) { $0 * v }.recorded("mulScalar", [x]) { g in [try mulScalar(g, s)] }
}

public func exp(_ x: Tensor) throws -> Tensor {
    let y = unaryKernel(x) { vexp($0) }
    let saved = y.detached()   // not `y`: a closure holding its own output would never be freed
    return y.recorded("exp", [x]) { g in [zipKernel(g, saved) { $0 * $1 }] }
}

public func log(_ x: Tensor) throws -> Tensor {
    unaryKernel(x) { vlog($0) }.recorded("log", [x]) { g in [zipKernel(g, x) { $0 / $1 }] }
}

public func sqrt(_ x: Tensor) throws -> Tensor {
    let y = unaryKernel(x) { vsqrt($0) }
    let saved = y.detached()
    return y.recorded("sqrt", [x]) { g in [zipKernel(g, saved) { splat(0.5) * $0 / $1 }] }
}

/// x^p for a constant exponent.
public func pow(_ x: Tensor, _ p: Float) throws -> Tensor {
    let y: Tensor
    if p == 2 { y = unaryKernel(x) { $0 * $0 } }
    else if p == 1 { y = unaryKernel(x) { $0 } }
    else if p == 0.5 { y = unaryKernel(x) { vsqrt($0) } }
    else {
        let c = x.contiguousData()
        y = Tensor(uninitialized: x.shape)
        for i in 0..<y.count { y.data[i] = Foundation.pow(c.data[i], p) }
    }
    return y.recorded("pow", [x]) { g in
        if p == 2 { return [zipKernel(g, x) { splat(2) * $0 * $1 }] }
        let d = try pow(x.detached(), p - 1)
        return [zipKernel(g, d) { splat(p) * $0 * $1 }]
    }
}

public func abs(_ x: Tensor) throws -> Tensor {
    unaryKernel(x) { $0.replacing(with: -$0, where: $0 .< splat(0)) }.recorded("abs", [x]) { g in
        [zipKernel(g, x) { g, x in
            V8().replacing(with: g, where: x .> splat(0)).replacing(with: -g, where: x .< splat(0)) }]
    }
}

/// Limits values to [min, max]; the gradient passes where the input was strictly inside
/// (min < x < max), as PyTorch's `clamp` with scalar bounds: 0 at a bound, and 0 for NaN.
public func clamp(_ x: Tensor, min lo: Float = -.infinity, max hi: Float = .infinity) throws -> Tensor {
    try require(lo <= hi, "clamp", "min \(lo) is greater than max \(hi)")
    let l = splat(lo), h = splat(hi)
    return unaryKernel(x) { $0.replacing(with: l, where: $0 .< l).replacing(with: h, where: $0 .> h) }
        .recorded("clamp", [x]) { g in
            [zipKernel(g, x) { g, x in V8().replacing(with: g, where: (x .> l) .& (x .< h)) }]
        }
}

public func tanh(_ x: Tensor) throws -> Tensor {
    let y = unaryKernel(x) { vtanh($0) }
    let saved = y.detached()
    return y.recorded("tanh", [x]) { g in [zipKernel(g, saved) { g, y in g * (splat(1) - y * y) }] }
}

public func sigmoid(_ x: Tensor) throws -> Tensor {
    let y = unaryKernel(x) { vsigmoid($0) }
    let saved = y.detached()
    return y.recorded("sigmoid", [x]) { g in [zipKernel(g, saved) { g, y in g * y * (splat(1) - y) }] }
}

public func relu(_ x: Tensor) throws -> Tensor {
    let y = unaryKernel(x) { $0.replacing(with: V8(), where: $0 .< splat(0)) }
    let saved = y.detached()
    return y.recorded("relu", [x]) { g in [zipKernel(g, saved) { g, y in V8().replacing(with: g, where: y .> splat(0)) }] }
}

/// max(x, 0) + slope·min(x, 0); the gradient is 1 for x > 0 and `slope` otherwise (x == 0
/// included), as PyTorch's `leaky_relu`.
public func leakyRelu(_ x: Tensor, slope: Float = 0.01) throws -> Tensor {
    let s = splat(slope)
    return unaryKernel(x) { $0.replacing(with: $0 * s, where: $0 .< splat(0)) }.recorded("leakyRelu", [x]) { g in
        [zipKernel(g, x) { g, x in g.replacing(with: g * s, where: .!(x .> splat(0))) }]
    }
}

public enum GELUApproximation: String, Codable, Sendable { case none, tanh }

@inline(__always) func geluErf(_ x: V8) -> V8 { splat(0.5) * x * (splat(1) + verf(x * splat(0.707_106_781_186_547_5))) }

@inline(__always) func geluErfGrad(_ x: V8) -> V8 {
    let cdf = splat(0.5) * (splat(1) + verf(x * splat(0.707_106_781_186_547_5)))
    let pdf = splat(0.398_942_280_401_432_7) * vexp(splat(-0.5) * x * x)
    return cdf.addingProduct(x, pdf)
}

@inline(__always) func geluTanh(_ x: V8) -> V8 {
    let inner = splat(0.797_884_560_802_865_4) * x.addingProduct(splat(0.044_715) * x * x, x)
    return splat(0.5) * x * (splat(1) + vtanh(inner))
}

@inline(__always) func geluTanhGrad(_ x: V8) -> V8 {
    let x2 = x * x
    let inner = splat(0.797_884_560_802_865_4) * x.addingProduct(splat(0.044_715) * x2, x)
    let t = vtanh(inner)
    let dInner = splat(0.797_884_560_802_865_4) * splat(1).addingProduct(splat(3 * 0.044_715), x2)
    return splat(0.5) * (splat(1) + t) + splat(0.5) * x * (splat(1) - t * t) * dInner
}

/// GELU, exact (erf) by default or the tanh approximation.
public func gelu(_ x: Tensor, approximate: GELUApproximation = .none) throws -> Tensor {
    switch approximate {
    case .none:
        return unaryKernel(x) { geluErf($0) }.recorded("gelu", [x]) { g in [zipKernel(g, x) { $0 * geluErfGrad($1) }] }
    case .tanh:
        return unaryKernel(x) { geluTanh($0) }.recorded("gelu", [x]) { g in [zipKernel(g, x) { $0 * geluTanhGrad($1) }] }
    }
}

public func silu(_ x: Tensor) throws -> Tensor {
    unaryKernel(x) { $0 * vsigmoid($0) }.recorded("silu", [x]) { g in
        [zipKernel(g, x) { g, x in
            let s = vsigmoid(x)
            return g * s * (splat(1) + x * (splat(1) - s))
        }]
    }
}

/// Inverted dropout: zeroes each element with probability `p` and scales the rest by 1/(1−p).
/// The mask is a function of (rng seed, counter) so backward regenerates it instead of storing it.
public func dropout(_ x: Tensor, p: Float, training: Bool, rng: inout RandomGenerator) throws -> Tensor {
    try require(p >= 0 && p < 1, "dropout", "probability \(p) must be in [0, 1)")
    if !training || p == 0 { return x }
    let stream = rng.take(x.count)
    let y = dropoutKernel(x, p: p, stream: stream)
    return y.recorded("dropout", [x]) { g in [dropoutKernel(g, p: p, stream: stream)] }
}

/// The 32-bit draw below which an element is dropped with probability `p`.
@inline(__always)
func dropoutThreshold(_ p: Float) -> UInt32 { UInt32(min(Double(p) * 4_294_967_296.0, 4_294_967_295.0)) }

func dropoutKernel(_ x: Tensor, p: Float, stream: PhiloxStream) -> Tensor {
    let src = x.contiguousData()
    let out = Tensor(uninitialized: x.shape)
    let n = out.count
    let scale = 1 / (1 - p)
    let threshold = dropoutThreshold(p)
    withExtendedLifetime(src) {
        let s = src.data, d = out.data
        // 32 elements (8 Philox blocks) per chunk; chunk boundaries fall on block boundaries, so
        // the mask is the same for any split.
        Parallel.forRange((n + 31) / 32, grain: 1024) { chunks in
            let mult = UnsafeMutablePointer<Float>.allocate(capacity: 32)
            defer { mult.deallocate() }
            let scaleV = V8(repeating: scale)
            for chunk in chunks {
                let base = chunk * 32
                let len = min(32, n - base)
                fillDropoutMultipliers(stream, start: base, count: len, threshold: threshold, scale: scale, into: mult)
                var j = 0
                while j + 8 <= len {
                    // Kept: x·scale (as before, not x·multiplier); dropped: exactly 0.
                    let y = (load8(s + base + j) * scaleV).replacing(with: 0, where: load8(mult + j) .== V8())
                    store8(y, d + base + j)
                    j += 8
                }
                while j < len { d[base + j] = mult[j] == 0 ? 0 : s[base + j] * scale; j += 1 }
            }
        }
    }
    return out
}

// MARK: - Philox eight counters at a time

/// `philox(counter: first + j, key: key)` for the eight counters j = 0..<8, as four vectors
/// (word w of counter j is lane j of vector w). Bit-identical to the scalar `philox`; the 32×32→64
/// multiplies map onto AVX2's `vpmuludq`, so it costs about a third of eight scalar calls.
@inline(__always)
func philox8(first: UInt64, key: UInt64) -> (SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>) {
    let ctr = SIMD8<UInt64>(repeating: first) &+ SIMD8<UInt64>(0, 1, 2, 3, 4, 5, 6, 7)
    var c0 = SIMD8<UInt32>(truncatingIfNeeded: ctr)
    var c1 = SIMD8<UInt32>(truncatingIfNeeded: ctr &>> 32)
    var c2 = SIMD8<UInt32>(), c3 = SIMD8<UInt32>()
    var k0 = UInt32(truncatingIfNeeded: key), k1 = UInt32(truncatingIfNeeded: key >> 32)
    let m0 = SIMD8<UInt64>(repeating: 0xD251_1F53), m1 = SIMD8<UInt64>(repeating: 0xCD9E_8D57)
    for _ in 0..<10 {
        let p0 = SIMD8<UInt64>(truncatingIfNeeded: c0) &* m0
        let p1 = SIMD8<UInt64>(truncatingIfNeeded: c2) &* m1
        let n0 = SIMD8<UInt32>(truncatingIfNeeded: p1 &>> 32) ^ c1 ^ SIMD8<UInt32>(repeating: k0)
        let n2 = SIMD8<UInt32>(truncatingIfNeeded: p0 &>> 32) ^ c3 ^ SIMD8<UInt32>(repeating: k1)
        c1 = SIMD8<UInt32>(truncatingIfNeeded: p1)
        c3 = SIMD8<UInt32>(truncatingIfNeeded: p0)
        c0 = n0
        c2 = n2
        k0 &+= 0x9E37_79B9
        k1 &+= 0xBB67_AE85
    }
    return (c0, c1, c2, c3)
}

/// Dropout multipliers for elements `start ..< start+n` of `stream`: 0 where the element's
/// random bits fall below `threshold`, `scale` elsewhere. Element e takes word e % 4 of counter
/// `offset + e / 4`, exactly like `PhiloxStream.bits(e)`; full groups of 32 elements use `philox8`.
func fillDropoutMultipliers(_ stream: PhiloxStream, start: Int, count n: Int, threshold: UInt32, scale: Float,
                            into out: UnsafeMutablePointer<Float>) {
    var i = 0
    @inline(__always) func scalar(upTo end: Int) {
        while i < end {
            out[i] = stream.bits(start + i) < threshold ? 0 : scale
            i += 1
        }
    }
    scalar(upTo: min(n, (4 - (start & 3)) & 3))
    let t = SIMD8<UInt32>(repeating: threshold)
    let kept = V8(repeating: scale)
    while i + 32 <= n {
        let r = philox8(first: stream.offset &+ UInt64((start + i) >> 2), key: stream.seed)
        let w0 = kept.replacing(with: 0, where: r.0 .< t), w1 = kept.replacing(with: 0, where: r.1 .< t)
        let w2 = kept.replacing(with: 0, where: r.2 .< t), w3 = kept.replacing(with: 0, where: r.3 .< t)
        let o = out + i
        for j in 0..<8 {
            o[4 * j] = w0[j]; o[4 * j + 1] = w1[j]; o[4 * j + 2] = w2[j]; o[4 * j + 3] = w3[j]
        }
        i += 32
    }
    scalar(upTo: n)
}
