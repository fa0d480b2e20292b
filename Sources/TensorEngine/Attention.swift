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

/// softmax(Q·Kᵀ·scale + mask) · V per head, with optional dropout on the probabilities.
///
/// - query: [B, Tq, H·D]; key, value: [B, Tk, H·D]. Returns [B, Tq, H·D].
/// - mask: additive (0 keep, large negative drop), shaped [B, Tk], [Tq, Tk], [B, Tq, Tk] or
///   [B, 1, 1, Tk] (Hugging Face's extended mask).
public func attention(query: Tensor, key: Tensor, value: Tensor, heads: Int, mask: Tensor? = nil,
                      scale: Float? = nil, dropout p: Float = 0, training: Bool = false,
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
    let q = RowMajor3(query), k = RowMajor3(key), v = RowMajor3(value)
    let out = Tensor(uninitialized: [b, tq, e])
    let po = out.data
    let record = needsGrad(query, key, value)
    let useDropout = training && p > 0
    let stream = useDropout ? rng.take(b * heads * tq * tk) : PhiloxStream(seed: 0, offset: 0)
    let threshold = dropoutThreshold(p)
    let dropScale = 1 / (1 - p)
    let probs: Tensor? = record ? Tensor(uninitialized: [b, heads, tq, tk]) : nil
    let pp = probs?.data

    Parallel.run(chunks: b * heads) { task in
        let bi = task / heads, h = task % heads
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: tq * tk + tk)
        defer { scratch.deallocate() }
        let sc = pp.map { $0 + task * tq * tk } ?? scratch
        let qp = q.base + bi * q.batchStride + h * d
        let kp = k.base + bi * k.batchStride + h * d
        let vp = v.base + bi * v.batchStride + h * d
        gemm(transA: false, transB: true, m: tq, n: tk, k: d, alpha: s, a: qp, lda: q.rowStride, b: kp, ldb: k.rowStride,
             c: sc, ldc: tk, parallel: false)
        for i in 0..<tq {
            let row = sc + i * tk
            if let ml {
                let mrow = ml.data + bi * ml.batchStride + i * ml.queryStride
                zip8(row, mrow, row, tk) { $0 + $1 }
            }
            softmaxRow(row, tk)
        }
        var pv = UnsafePointer(sc)
        if useDropout {
            let dropped = scratch == sc ? sc : scratch
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
    guard record, let probs else { return out }
    return out.recorded("attention", [query, key, value]) { g in
        let gc = g.contiguousData()
        let pg = gc.data
        let gq = Tensor(uninitialized: [b, tq, e]), gk = Tensor(uninitialized: [b, tk, e]), gv = Tensor(uninitialized: [b, tk, e])
        let pgq = gq.data, pgk = gk.data, pgv = gv.data
        let pp = probs.data
        Parallel.run(chunks: b * heads) { task in
            let bi = task / heads, h = task % heads
            let buf = UnsafeMutablePointer<Float>.allocate(capacity: 2 * tq * tk + tk)
            defer { buf.deallocate() }
            let dP = buf, dropped = buf + tq * tk, mult = buf + 2 * tq * tk
            let P = pp + task * tq * tk
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
            // dS = P ⊙ (dP − rowsum(dP ⊙ P)) · scale
            let sV = splat(s)
            for i in 0..<tq {
                let pr = P + i * tk, dr = dP + i * tk
                let c = splat(dot8(dr, pr, tk))
                zip8(dr, pr, dr, tk) { ($0 - c) * $1 * sV }
            }
            // dQ = dS · K ; dK = dSᵀ · Q
            gemm(transA: false, transB: false, m: tq, n: d, k: tk, a: dP, lda: tk, b: kp, ldb: k.rowStride,
                 c: pgq + bi * tq * e + h * d, ldc: e, parallel: false)
            gemm(transA: true, transB: false, m: tk, n: d, k: tq, a: dP, lda: tk, b: qp, ldb: q.rowStride,
                 c: pgk + bi * tk * e + h * d, ldc: e, parallel: false)
        }
        return [query.requiresGrad ? gq : nil, key.requiresGrad ? gk : nil, value.requiresGrad ? gv : nil]
    }
}
