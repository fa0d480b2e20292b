// MARK: - Fused scaled-dot-product attention
//
// Works directly on the [batch, tokens, heads·headDim] layout that linear projections produce:
// each (batch, head) pair is a strided sub-matrix, so no permute copies are made. Pairs are
// spread across cores, each running single-threaded GEMMs on its own scratch buffers.

/// A [batch, tokens, width] operand read in place when its last dimension is contiguous.
struct RowMajor3 {
    let tensor: Tensor
    let base: UnsafeMutablePointer<Float>
    let batchStride: Int
    let rowStride: Int

    init(_ t: Tensor) {
        let usable = t.strides[2] == 1 && t.strides[0] == t.shape[1] * t.strides[1]
        let src = usable ? t : t.contiguousData()
        tensor = src
        base = src.data
        rowStride = usable ? t.strides[1] : t.shape[2]
        batchStride = src.shape[1] * rowStride
    }
}

/// Additive attention mask broadcast to [batch, queries, keys]: element (b, i, j) at
/// `base + b*bs + i*qs + j`.
struct MaskLayout {
    let data: UnsafeMutablePointer<Float>
    let batchStride: Int
    let queryStride: Int
    let keep: Tensor
}

func maskLayout(_ mask: Tensor, batch: Int, queries: Int, keys: Int) throws -> MaskLayout {
    let m = mask.contiguousData()
    let s = mask.shape
    switch s.count {
    case 2 where s == [batch, keys]:
        return MaskLayout(data: m.data, batchStride: keys, queryStride: 0, keep: m)
    case 2 where s == [queries, keys]:
        return MaskLayout(data: m.data, batchStride: 0, queryStride: keys, keep: m)
    case 3 where s == [batch, queries, keys]:
        return MaskLayout(data: m.data, batchStride: queries * keys, queryStride: keys, keep: m)
    case 3 where s == [batch, 1, keys]:
        return MaskLayout(data: m.data, batchStride: keys, queryStride: 0, keep: m)
    case 4 where s == [batch, 1, 1, keys]:
        return MaskLayout(data: m.data, batchStride: keys, queryStride: 0, keep: m)
    case 4 where s == [batch, 1, queries, keys]:
        return MaskLayout(data: m.data, batchStride: queries * keys, queryStride: keys, keep: m)
    default:
        throw TensorError.shapeMismatch(op: "attention",
            detail: "mask \(shapeString(s)) must be [\(batch), \(keys)], [\(queries), \(keys)], [\(batch), \(queries), \(keys)] or [\(batch), 1, 1, \(keys)]")
    }
}

/// softmax(Q·Kᵀ·scale + bias + mask) · V per head, with optional dropout on the probabilities.
///
/// - query: [B, Tq, H·D]; key, value: [B, Tk, H·D]. Returns [B, Tq, H·D].
/// - mask: additive (0 keep, large negative drop), shaped [B, Tk], [Tq, Tk], [B, Tq, Tk] or
///   [B, 1, 1, Tk] (Hugging Face's extended mask). Never differentiated.
/// - bias: an additive per-head score bias, [B, H, Tq, Tk] or [1, H, Tq, Tk] (shared by the
///   batch), added after scaling — MPNet's relative position bias, DeBERTa's disentangled terms.
///   Differentiable: its gradient is the gradient of the pre-softmax scores (summed over the
///   batch when it is shared).
public func attention(query: Tensor, key: Tensor, value: Tensor, heads: Int, mask: Tensor? = nil,
                      bias: Tensor? = nil, scale: Float? = nil, dropout p: Float = 0, training: Bool = false,
                      rng: inout RandomGenerator) throws -> Tensor {
    try check(query.rank == 3 && key.rank == 3 && value.rank == 3, "attention",
              "query, key and value must be [batch, tokens, width]; got \(shapeString(query.shape)), \(shapeString(key.shape)), \(shapeString(value.shape))")
    let b = query.shape[0], tq = query.shape[1], e = query.shape[2], tk = key.shape[1]
    try check(key.shape == [b, tk, e] && value.shape == [b, tk, e], "attention",
              "key \(shapeString(key.shape)) and value \(shapeString(value.shape)) must be [\(b), Tk, \(e)] to match query \(shapeString(query.shape))")
    try require(heads > 0 && e % heads == 0, "attention", "width \(e) is not divisible by \(heads) heads")
    try require(p >= 0 && p < 1, "attention", "dropout \(p) must be in [0, 1)")
    let d = e / heads
    let s = scale ?? 1 / Float(d).squareRoot()
    let ml = try mask.map { try maskLayout($0, batch: b, queries: tq, keys: tk) }
    if let bias {
        try check(bias.shape == [b, heads, tq, tk] || bias.shape == [1, heads, tq, tk], "attention",
                  "bias \(shapeString(bias.shape)) must be [\(b), \(heads), \(tq), \(tk)] or [1, \(heads), \(tq), \(tk)]")
    }
    let biasData = bias?.contiguousData()
    let biasBatchStride = bias?.shape[0] == 1 ? 0 : heads * tq * tk
    let q = RowMajor3(query), k = RowMajor3(key), v = RowMajor3(value)
    let out = Tensor(uninitialized: [b, tq, e])
    let po = out.data
    let inputs = bias.map { [query, key, value, $0] } ?? [query, key, value]
    let record = needsGrad(inputs)
    let useDropout = training && p > 0
    let stream = useDropout ? rng.take(b * heads * tq * tk) : PhiloxStream(seed: 0, offset: 0)
    let threshold = dropoutThreshold(p)
    let dropScale = 1 / (1 - p)
    // The probabilities of (batch, head) `task` into `sc` [tq, tk]: softmax(Q·Kᵀ·s + bias + mask).
    // For a large map backward calls it again instead of keeping every head's [tq, tk] block
    // from the forward pass (one small product per head, against 4·b·h·tq·tk bytes per layer
    // held until backward); the same calls in the same order give bit-identical probabilities.
    let probabilities: (Int, UnsafeMutablePointer<Float>) -> Void = { task, sc in
        let bi = task / heads, h = task % heads
        let qp = q.base + bi * q.batchStride + h * d
        let kp = k.base + bi * k.batchStride + h * d
        gemm(transA: false, transB: true, m: tq, n: tk, k: d, alpha: s, a: qp, lda: q.rowStride, b: kp, ldb: k.rowStride,
             c: sc, ldc: tk, parallel: false)
        let biasBlock = biasData.map { $0.data + bi * biasBatchStride + h * tq * tk }
        for i in 0..<tq {
            let row = sc + i * tk
            if let biasBlock { zip8(row, biasBlock + i * tk, row, tk) { $0 + $1 } }
            if let ml {
                let mrow = ml.data + bi * ml.batchStride + i * ml.queryStride
                zip8(row, mrow, row, tk) { $0 + $1 }
            }
            softmaxRow(row, tk)
        }
    }

    // Small attention maps (≤ 16 MB for the whole batch) are kept for backward; larger ones are
    // recomputed there, which costs one Q·Kᵀ and a softmax per head.
    let kept: Tensor? = record && b * heads * tq * tk <= 4 << 20 ? Tensor(uninitialized: [b, heads, tq, tk]) : nil
    let pk = kept?.data

    Parallel.run(chunks: b * heads) { task in
        let bi = task / heads, h = task % heads
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: tq * tk + tk)
        defer { scratch.deallocate() }
        let sc = pk.map { $0 + task * tq * tk } ?? scratch
        let vp = v.base + bi * v.batchStride + h * d
        probabilities(task, sc)
        var pv = UnsafePointer(sc)
        if useDropout {
            let dropped = scratch
            let mult = scratch + tq * tk
            for i in 0..<tq {
                fillDropoutMultipliers(stream, start: (task * tq + i) * tk, count: tk, threshold: threshold, scale: dropScale, into: mult)
                zip8(sc + i * tk, mult, dropped + i * tk, tk) { $0 * $1 }
            }
            pv = UnsafePointer(dropped)
        }
        gemm(transA: false, transB: false, m: tq, n: d, k: tk, a: pv, lda: tk, b: vp, ldb: v.rowStride,
             c: po + bi * tq * e + h * d, ldc: e, parallel: false)
    }
    guard record else { return out }
    let biasGrad = bias?.requiresGrad == true
    let biasShape = bias?.shape ?? []
    return out.recorded("attention", inputs) { g in
        let gc = g.contiguousData()
        let pg = gc.data
        let gq = Tensor(uninitialized: [b, tq, e]), gk = Tensor(uninitialized: [b, tk, e]), gv = Tensor(uninitialized: [b, tk, e])
        let pgq = gq.data, pgk = gk.data, pgv = gv.data
        // The score gradient per (batch, head) when the bias needs it; a shared bias sums it over
        // the batch afterwards, in batch order (deterministic).
        let scoreGrads = biasGrad ? Tensor(uninitialized: [b, heads, tq, tk]) : nil
        let psg = scoreGrads?.data
        Parallel.run(chunks: b * heads) { task in
            let bi = task / heads, h = task % heads
            let buf = UnsafeMutablePointer<Float>.allocate(capacity: 3 * tq * tk + tk)
            defer { buf.deallocate() }
            let dP = buf, dropped = buf + tq * tk, mult = buf + 3 * tq * tk
            let P: UnsafeMutablePointer<Float>
            if let kept { P = kept.data + task * tq * tk } else { P = buf + 2 * tq * tk; probabilities(task, P) }
            let qp = q.base + bi * q.batchStride + h * d
            let kp = k.base + bi * k.batchStride + h * d
            let vp = v.base + bi * v.batchStride + h * d
            let go = pg + bi * tq * e + h * d
            // dP' = dO · Vᵀ
            gemm(transA: false, transB: true, m: tq, n: tk, k: d, a: go, lda: e, b: vp, ldb: v.rowStride, c: dP, ldc: tk, parallel: false)
            var pUsed = UnsafePointer(P)
            if useDropout {
                for i in 0..<tq {
                    fillDropoutMultipliers(stream, start: (task * tq + i) * tk, count: tk, threshold: threshold, scale: dropScale, into: mult)
                    zip8(P + i * tk, mult, dropped + i * tk, tk) { $0 * $1 }
                    zip8(dP + i * tk, mult, dP + i * tk, tk) { $0 * $1 }
                }
                pUsed = UnsafePointer(dropped)
            }
            // dV = P'ᵀ · dO
            gemm(transA: true, transB: false, m: tk, n: d, k: tq, a: pUsed, lda: tk, b: go, ldb: e,
                 c: pgv + bi * tk * e + h * d, ldc: e, parallel: false)
            // dS = P ⊙ (dP − rowsum(dP ⊙ P)) · scale (the bias gets it before the scale)
            let sV = splat(s)
            if let psg {
                let sg = psg + task * tq * tk
                for i in 0..<tq {
                    let pr = P + i * tk, dr = dP + i * tk
                    let c = splat(dot8(dr, pr, tk))
                    zip8(dr, pr, sg + i * tk, tk) { ($0 - c) * $1 }
                    map8(sg + i * tk, dr, tk) { $0 * sV }
                }
            } else {
                for i in 0..<tq {
                    let pr = P + i * tk, dr = dP + i * tk
                    let c = splat(dot8(dr, pr, tk))
                    zip8(dr, pr, dr, tk) { ($0 - c) * $1 * sV }
                }
            }
            // dQ = dS · K ; dK = dSᵀ · Q
            gemm(transA: false, transB: false, m: tq, n: d, k: tk, a: dP, lda: tk, b: kp, ldb: k.rowStride,
                 c: pgq + bi * tq * e + h * d, ldc: e, parallel: false)
            gemm(transA: true, transB: false, m: tk, n: d, k: tq, a: dP, lda: tk, b: qp, ldb: q.rowStride,
                 c: pgk + bi * tk * e + h * d, ldc: e, parallel: false)
        }
        var grads: [Tensor?] = [query.requiresGrad ? gq : nil, key.requiresGrad ? gk : nil, value.requiresGrad ? gv : nil]
        if let scoreGrads {
            grads.append(biasShape[0] == b ? scoreGrads : sumLeading(scoreGrads, count: b))
        } else if !biasShape.isEmpty {
            grads.append(nil)
        }
        return grads
    }
}

/// Sums a contiguous [n, rest…] tensor over its first axis, in order, giving [1, rest…].
private func sumLeading(_ t: Tensor, count n: Int) -> Tensor {
    var shape = t.shape
    shape[0] = 1
    if n == 0 { return Tensor.zeros(shape) }
    let out = Tensor(uninitialized: shape)
    let width = out.count
    let src = t.data, dst = out.data
    Parallel.forRange(width, grain: 16384) { r in
        (dst + r.lowerBound).update(from: src + r.lowerBound, count: r.count)
        for i in 1..<n {
            let row = src + i * width + r.lowerBound
            zip8(dst + r.lowerBound, row, dst + r.lowerBound, r.count) { $0 + $1 }
        }
    }
    return out
}

// MARK: - Relative-position scores (DeBERTa's disentangled attention terms)

/// Scores of content against relative-position embeddings, gathered by relative position:
///
///     raw[b, h, i, j] = scale · x[b, i, h·D ..< (h+1)·D] · positions[index[i·T + j], h·D ..< (h+1)·D]
///
/// and the result is `raw`, or `raw` with its last two axes swapped when `transposed`
/// (DeBERTa's position-to-content term is the transpose of the key-side product).
///
/// - x: [B, T, H·D] (queries for content-to-position, keys for position-to-content).
/// - positions: [P, H·D], the projected relative embeddings.
/// - index: T·T row-major indices into `positions`, each in `0..<P`.
/// - Returns [B, H, T, T], ready as the `bias` of `attention`.
///
/// Each (batch, head) computes the full [T, P] product with one GEMM and gathers from it;
/// backward scatters the gradient into [T, P] and runs the two products back, one head per
/// task with the batch summed in order, so results do not depend on the thread count.
public func relativePositionScores(_ x: Tensor, positions: Tensor, heads: Int, index: [Int32], scale: Float,
                                   transposed: Bool = false) throws -> Tensor {
    try check(x.rank == 3 && positions.rank == 2 && positions.shape[1] == x.shape[2], "relativePositionScores",
              "x must be [batch, tokens, width] and positions [count, width]; got \(shapeString(x.shape)) and \(shapeString(positions.shape))")
    let b = x.shape[0], t = x.shape[1], e = x.shape[2], np = positions.shape[0]
    try require(heads > 0 && e % heads == 0, "relativePositionScores", "width \(e) is not divisible by \(heads) heads")
    try check(index.count == t * t, "relativePositionScores", "index holds \(index.count) values, expected \(t)·\(t)")
    for (i, v) in index.enumerated() where v < 0 || Int(v) >= np {
        throw TensorError.invalidArgument(op: "relativePositionScores", detail: "index \(v) at \(i) is outside 0..<\(np)")
    }
    let d = e / heads
    let xs = RowMajor3(x)
    let pc = positions.contiguousData()
    let out = Tensor(uninitialized: [b, heads, t, t])
    let po = out.data, ppos = pc.data
    index.withUnsafeBufferPointer { ip in
        guard let idx = ip.baseAddress else { return }
        Parallel.run(chunks: b * heads) { task in
            let bi = task / heads, h = task % heads
            let full = UnsafeMutablePointer<Float>.allocate(capacity: t * np)
            defer { full.deallocate() }
            gemm(transA: false, transB: true, m: t, n: np, k: d, alpha: scale, a: xs.base + bi * xs.batchStride + h * d,
                 lda: xs.rowStride, b: ppos + h * d, ldb: e, c: full, ldc: np, parallel: false)
            let o = po + task * t * t
            for i in 0..<t {
                let row = full + i * np, ir = idx + i * t
                if transposed {
                    for j in 0..<t { o[j * t + i] = row[Int(ir[j])] }
                } else {
                    for j in 0..<t { o[i * t + j] = row[Int(ir[j])] }
                }
            }
        }
    }
    return out.recorded("relativePositionScores", [x, positions]) { g in
        let gc = g.contiguousData()
        let pg = gc.data
        let gx = x.requiresGrad ? Tensor(uninitialized: [b, t, e]) : nil
        let gp = positions.requiresGrad ? (b == 0 || t == 0 ? Tensor.zeros([np, e]) : Tensor(uninitialized: [np, e])) : nil
        let pgx = gx?.data, pgp = gp?.data
        let ppos = pc.data
        index.withUnsafeBufferPointer { ip in
            guard let idx = ip.baseAddress else { return }
            Parallel.run(chunks: heads) { h in
                let full = UnsafeMutablePointer<Float>.allocate(capacity: t * np)
                defer { full.deallocate() }
                for bi in 0..<b {
                    full.initialize(repeating: 0, count: t * np)
                    let gb = pg + (bi * heads + h) * t * t
                    for i in 0..<t {
                        let row = full + i * np, ir = idx + i * t
                        if transposed {
                            for j in 0..<t { row[Int(ir[j])] += scale * gb[j * t + i] }
                        } else {
                            for j in 0..<t { row[Int(ir[j])] += scale * gb[i * t + j] }
                        }
                    }
                    if let pgx {
                        gemm(transA: false, transB: false, m: t, n: d, k: np, a: full, lda: np, b: ppos + h * d, ldb: e,
                             c: pgx + bi * t * e + h * d, ldc: e, parallel: false)
                    }
                    if let pgp {
                        gemm(transA: true, transB: false, m: np, n: d, k: t, a: full, lda: np,
                             b: xs.base + bi * xs.batchStride + h * d, ldb: xs.rowStride,
                             beta: bi == 0 ? 0 : 1, c: pgp + h * d, ldc: e, parallel: false)
                    }
                }
            }
        }
        return [gx, gp]
    }
}
