// MARK: - Reductions over axes
//
// A reduction over one axis views the tensor as (outer, n, inner). Each output element is
// accumulated in a fixed order; a whole-tensor reduction uses fixed-size chunks whose partial
// sums are combined in chunk order. Results are therefore identical for any thread count.

/// Sums over one axis of a contiguous tensor: (outer, n, inner) → (outer, inner).
func sumAxisKernel(_ x: Tensor, axis: Int) -> Tensor {
    let c = x.contiguousData()
    let n = x.shape[axis]
    let outer = x.shape[..<axis].reduce(1, *)
    let inner = x.shape[(axis + 1)...].reduce(1, *)
    var outShape = x.shape
    outShape.remove(at: axis)
    let out = Tensor(uninitialized: outShape)
    let src = c.data, dst = out.data
    if outer * inner == 1 {
        // Whole-vector sum: fixed chunks, partials combined in order.
        let chunk = 1 << 16
        let chunks = max(1, (n + chunk - 1) / chunk)
        var partial = [Float](repeating: 0, count: chunks)
        partial.withUnsafeMutableBufferPointer { pp in
            let pb = pp.baseAddress!
            Parallel.forFixedChunks(n, chunk: chunk) { ci, r in pb[ci] = sum8(src + r.lowerBound, r.count) }
        }
        dst[0] = partial.reduce(0, +)
        return out
    }
    if inner == 1 {
        Parallel.forRange(outer, grain: max(1, 16384 / max(n, 1))) { r in
            for o in r { dst[o] = sum8(src + o * n, n) }
        }
        return out
    }
    let parts = outer >= Parallel.threadCount ? outer : 1
    if parts > 1 {
        Parallel.forRange(outer, grain: max(1, 16384 / max(n * inner, 1))) { r in
            for o in r { accumulateRows(src + o * n * inner, dst + o * inner, n, inner) }
        }
    } else {
        // Few outer slices: split the inner columns instead.
        Parallel.forRange(inner, grain: 1024) { cols in
            for o in 0..<outer {
                let base = src + o * n * inner + cols.lowerBound
                let d = dst + o * inner + cols.lowerBound
                d.initialize(repeating: 0, count: cols.count)
                for k in 0..<n {
                    zip8(d, base + k * inner, d, cols.count) { $0 + $1 }
                }
            }
        }
    }
    return out
}

@inline(__always)
func accumulateRows(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int, _ inner: Int) {
    dst.initialize(repeating: 0, count: inner)
    for k in 0..<n { zip8(dst, src + k * inner, dst, inner) { $0 + $1 } }
}

/// Sum over `axes` (all when empty).
public func sum(_ x: Tensor, axes: [Int] = [], keepDims: Bool = false) throws -> Tensor {
    let normalized = try normalizeAxes(x, axes, op: "sum")
    var y = x
    for a in normalized.sorted(by: >) {
        y = sumAxisKernel(y, axis: a)
    }
    var keptShape = x.shape
    for a in normalized { keptShape[a] = 1 }
    let outShape = keepDims ? keptShape : x.shape.enumerated().filter { !normalized.contains($0.offset) }.map(\.element)
    let result = y.shape == outShape ? y : try y.detached().reshaped(outShape)
    let inShape = x.shape
    return result.recorded("sum", [x]) { g in
        let gk = try g.reshaped(keptShape)
        return [try expand(gk, to: inShape)]
    }
}

/// Mean over `axes` (all when empty).
public func mean(_ x: Tensor, axes: [Int] = [], keepDims: Bool = false) throws -> Tensor {
    let normalized = try normalizeAxes(x, axes, op: "mean")
    let n = normalized.reduce(1) { $0 * x.shape[$1] }
    return try mulScalar(try sum(x, axes: normalized, keepDims: keepDims), 1 / Float(max(n, 1)))
}

/// Variance over `axes` with Bessel's `correction` (1 = unbiased, like `torch.var`).
public func variance(_ x: Tensor, axes: [Int] = [], keepDims: Bool = false, correction: Int = 1) throws -> Tensor {
    let normalized = try normalizeAxes(x, axes, op: "variance")
    let n = normalized.reduce(1) { $0 * x.shape[$1] }
    try require(n - correction > 0, "variance", "\(n) elements with correction \(correction) leave no degrees of freedom")
    let m = try mean(x, axes: normalized, keepDims: true)
    let d = try sub(x, m)
    let ss = try sum(try mul(d, d), axes: normalized, keepDims: keepDims)
    return try mulScalar(ss, 1 / Float(n - correction))
}

/// Largest value over one axis; the gradient goes to the first position holding it.
public func max(_ x: Tensor, axis: Int, keepDims: Bool = false) throws -> Tensor {
    let a = try x.axis(axis, op: "max")
    try require(x.shape[a] > 0, "max", "axis \(axis) of \(shapeString(x.shape)) is empty")
    let (values, indices) = maxKernel(x, axis: a)
    var outShape = x.shape
    if keepDims { outShape[a] = 1 } else { outShape.remove(at: a) }
    let result = try values.reshaped(outShape)
    let inShape = x.shape
    return result.recorded("max", [x]) { g in
        let gc = g.contiguousData()
        let out = Tensor.zeros(inShape)
        let n = inShape[a], inner = inShape[(a + 1)...].reduce(1, *)
        for (j, idx) in indices.enumerated() {
            let o = j / inner, i = j % inner
            out.data[(o * n + idx) * inner + i] = gc.data[j]
        }
        return [out]
    }
}

/// Largest value over several axes (all when empty), reduced one axis at a time from the last;
/// the gradient reaches the first position holding the maximum of each reduced block.
public func max(_ x: Tensor, axes: [Int], keepDims: Bool = false) throws -> Tensor {
    let normalized = try normalizeAxes(x, axes, op: "max")
    var y = x
    for a in normalized.sorted(by: >) { y = try max(y, axis: a, keepDims: true) }
    if keepDims { return y }
    return try y.reshaped(x.shape.enumerated().filter { !normalized.contains($0.offset) }.map(\.element))
}

/// Index of the largest value over one axis (first on ties), as float values.
public func argmax(_ x: Tensor, axis: Int, keepDims: Bool = false) throws -> Tensor {
    let a = try x.axis(axis, op: "argmax")
    try require(x.shape[a] > 0, "argmax", "axis \(axis) of \(shapeString(x.shape)) is empty")
    let (_, indices) = maxKernel(x, axis: a)
    var outShape = x.shape
    if keepDims { outShape[a] = 1 } else { outShape.remove(at: a) }
    return try Tensor(indices.map(Float.init), shape: outShape)
}

func maxKernel(_ x: Tensor, axis: Int) -> (Tensor, [Int]) {
    let c = x.contiguousData()
    let n = x.shape[axis]
    let outer = x.shape[..<axis].reduce(1, *)
    let inner = x.shape[(axis + 1)...].reduce(1, *)
    let values = Tensor(uninitialized: [outer * inner])
    var indices = [Int](repeating: 0, count: outer * inner)
    let src = c.data, dst = values.data
    indices.withUnsafeMutableBufferPointer { ip in
        let ib = ip.baseAddress!
        Parallel.forRange(outer * inner, grain: max(1, 8192 / max(n, 1))) { r in
            for j in r {
                let o = j / inner, i = j % inner
                let base = src + o * n * inner + i
                var best = base[0], bi = 0
                for k in 1..<max(n, 1) where base[k * inner] > best {
                    best = base[k * inner]; bi = k
                }
                dst[j] = best
                ib[j] = bi
            }
        }
    }
    return (values, indices)
}

func normalizeAxes(_ x: Tensor, _ axes: [Int], op: String) throws -> [Int] {
    if axes.isEmpty { return Array(0..<x.rank) }
    var out: [Int] = []
    for a in axes {
        let n = try x.axis(a, op: op)
        try require(!out.contains(n), op, "axis \(a) listed twice")
        out.append(n)
    }
    return out
}
