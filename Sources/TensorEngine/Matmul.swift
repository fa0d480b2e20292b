import CBLAS

// MARK: - GEMM

/// Row-major C = alpha·op(A)·op(B) + beta·C through OpenBLAS `sgemm`, split across cores.
///
/// OpenBLAS runs single-threaded; the engine cuts the larger of M and N into parts (multiples
/// of 16 rows or 32 columns) and runs the parts concurrently. The cut depends on the shape only
/// (`gemmParts`: 1, 2 or 4 parts), never on the thread count or on `parallel`: OpenBLAS chooses its kernels by
/// problem size, so a sub-product can round differently from the whole product, and a cut that
/// followed the thread count made results differ between 1 and 2 threads. With a shape-only cut
/// every element is computed by the same sgemm call shape whatever the thread count.
/// `parallel: false` runs the same parts one after another (for callers already inside a
/// parallel loop).
public func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                 a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                 beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, parallel: Bool = true) {
    _ = blasSetup
    if m == 0 || n == 0 { return }
    let target = gemmParts(m: m, n: n, k: k)
    if target <= 1 {
        sgemmCall(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        return
    }
    let run: (Int, (Int) -> Void) -> Void = { chunks, body in
        if parallel { Parallel.run(chunks: chunks, body) } else { for i in 0..<chunks { body(i) } }
    }
    if m >= n {
        let part = roundUp((m + target - 1) / target, 16)
        let parts = (m + part - 1) / part
        run(parts) { p in
            let lo = p * part, rows = min(part, m - lo)
            let aPart = transA ? a + lo : a + lo * lda
            sgemmCall(transA, transB, rows, n, k, alpha, aPart, lda, b, ldb, beta, c + lo * ldc, ldc)
        }
    } else {
        let part = roundUp((n + target - 1) / target, 32)
        let parts = (n + part - 1) / part
        run(parts) { p in
            let lo = p * part, cols = min(part, n - lo)
            let bPart = transB ? b + lo * ldb : b + lo
            sgemmCall(transA, transB, m, cols, k, alpha, a, lda, bPart, ldb, beta, c + lo, ldc)
        }
    }
}

/// How many parts a product of this shape is cut into: 1 below 400 kflop, 2 up to 64 Mflop,
/// then 4. Shape only (never the thread count). Every part repacks the shared operand, so more
/// parts cost more: on 2 cores a 1024³ product runs at ≈160 GFLOP/s in 2 parts and ≈149 in 16.
@inline(__always)
func gemmParts(m: Int, n: Int, k: Int) -> Int {
    let flops = 2 * m * n * k
    if flops < 400_000 { return 1 }
    if flops < 64_000_000 { return 2 }
    return 4
}

@inline(__always) func roundUp(_ x: Int, _ m: Int) -> Int { (x + m - 1) / m * m }

@inline(__always)
func sgemmCall(_ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
               _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
               _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    if k == 0 {
        for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
        return
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

// MARK: - matmul

/// Matrix product with PyTorch's rules for the common cases:
/// [M,K]·[K,N]; [..., M, K]·[K, N] (leading dims folded into M); and batched
/// [B..., M, K]·[B..., K, N] with equal batch dims.
public func matmul(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    try check(a.rank >= 2 && b.rank >= 2, "matmul", "both operands need at least 2 dimensions, got \(shapeString(a.shape)) and \(shapeString(b.shape))")
    let k = a.shape[a.rank - 1]
    try check(b.shape[b.rank - 2] == k, "matmul",
              "inner dimensions differ: \(shapeString(a.shape)) · \(shapeString(b.shape)) (\(k) vs \(b.shape[b.rank - 2]))")
    if b.rank == 2 {
        let n = b.shape[1]
        let ac = a.contiguousData(), bc = b.contiguousData()
        let m = a.count / max(k, 1)
        var outShape = a.shape; outShape[outShape.count - 1] = n
        let out = Tensor(uninitialized: outShape)
        gemm(transA: false, transB: false, m: m, n: n, k: k, a: ac.data, lda: k, b: bc.data, ldb: n, c: out.data, ldc: n)
        return out.recorded("matmul", [a, b]) { g in
            let gc = g.contiguousData()
            var ga: Tensor? = nil, gb: Tensor? = nil
            if a.requiresGrad {
                let t = Tensor(uninitialized: a.shape)
                gemm(transA: false, transB: true, m: m, n: k, k: n, a: gc.data, lda: n, b: bc.data, ldb: n, c: t.data, ldc: k)
                ga = t
            }
            if b.requiresGrad {
                let t = Tensor(uninitialized: b.shape)
                gemm(transA: true, transB: false, m: k, n: n, k: m, a: ac.data, lda: k, b: gc.data, ldb: n, c: t.data, ldc: n)
                gb = t
            }
            return [ga, gb]
        }
    }
    try check(a.rank == b.rank && Array(a.shape.dropLast(2)) == Array(b.shape.dropLast(2)), "matmul",
              "batch dimensions differ: \(shapeString(a.shape)) · \(shapeString(b.shape))")
    return try batchedMatmul(a, b, transB: false)
}

/// Batched product over equal leading dims; `transB` multiplies by the transpose of b's last two.
public func batchedMatmul(_ a: Tensor, _ b: Tensor, transB: Bool) throws -> Tensor {
    let m = a.shape[a.rank - 2], k = a.shape[a.rank - 1]
    let n = transB ? b.shape[b.rank - 2] : b.shape[b.rank - 1]
    let kb = transB ? b.shape[b.rank - 1] : b.shape[b.rank - 2]
    try check(k == kb && a.rank == b.rank && Array(a.shape.dropLast(2)) == Array(b.shape.dropLast(2)), "batchedMatmul",
              "cannot multiply \(shapeString(a.shape)) by \(shapeString(b.shape))\(transB ? "ᵀ" : "")")
    let batch = a.shape.dropLast(2).reduce(1, *)
    let ac = a.contiguousData(), bc = b.contiguousData()
    var outShape = Array(a.shape.dropLast(2)); outShape += [m, n]
    let out = Tensor(uninitialized: outShape)
    let pa = ac.data, pb = bc.data, po = out.data
    let bStride = kb * n
    Parallel.run(chunks: batch) { i in
        gemm(transA: false, transB: transB, m: m, n: n, k: k, a: pa + i * m * k, lda: k,
             b: pb + i * bStride, ldb: transB ? k : n, c: po + i * m * n, ldc: n, parallel: false)
    }
    return out.recorded("batchedMatmul", [a, b]) { g in
        // Pointers into the operands' contiguous copies, taken from the captured tensors so the
        // copies stay alive until backward (they are temporaries when a or b is a view).
        let pa = ac.data, pb = bc.data
        let gc = g.contiguousData()
        let pg = gc.data
        var ga: Tensor? = nil, gb: Tensor? = nil
        if a.requiresGrad {
            let t = Tensor(uninitialized: a.shape)
            let pt = t.data
            // dA = dC · op(B)ᵀ
            Parallel.run(chunks: batch) { i in
                gemm(transA: false, transB: !transB, m: m, n: k, k: n, a: pg + i * m * n, lda: n,
                     b: pb + i * bStride, ldb: transB ? k : n, c: pt + i * m * k, ldc: k, parallel: false)
            }
            ga = t
        }
        if b.requiresGrad {
            let t = Tensor(uninitialized: b.shape)
            let pt = t.data
            Parallel.run(chunks: batch) { i in
                if transB {
                    // B is [n, k]: dB = dCᵀ · A
                    gemm(transA: true, transB: false, m: n, n: k, k: m, a: pg + i * m * n, lda: n,
                         b: pa + i * m * k, ldb: k, c: pt + i * n * k, ldc: k, parallel: false)
                } else {
                    // B is [k, n]: dB = Aᵀ · dC
                    gemm(transA: true, transB: false, m: k, n: n, k: m, a: pa + i * m * k, lda: k,
                         b: pg + i * m * n, ldb: n, c: pt + i * k * n, ldc: n, parallel: false)
                }
            }
            gb = t
        }
        return [ga, gb]
    }
}

// MARK: - linear

/// `x·Wᵀ + b` with W stored [out, in] (the layout PyTorch checkpoints use); x is [..., in].
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) throws -> Tensor {
    try check(weight.rank == 2, "linear", "weight must be [out, in], got \(shapeString(weight.shape))")
    let outF = weight.shape[0], inF = weight.shape[1]
    try check(x.rank >= 1 && x.shape[x.rank - 1] == inF, "linear",
              "input \(shapeString(x.shape)) does not end in \(inF) features (weight \(shapeString(weight.shape)))")
    if let bias { try check(bias.shape == [outF], "linear", "bias \(shapeString(bias.shape)) does not match \(outF) outputs") }
    let xc = x.contiguousData(), wc = weight.contiguousData()
    let rows = x.count / max(inF, 1)
    var outShape = x.shape; outShape[outShape.count - 1] = outF
    let out = Tensor(uninitialized: outShape)
    let po = out.data
    var beta: Float = 0
    if let bias {
        let bc = bias.contiguousData()
        Parallel.forRange(rows, grain: max(1, 32768 / max(outF, 1))) { r in
            for i in r { (po + i * outF).update(from: bc.data, count: outF) }
        }
        beta = 1
    }
    gemm(transA: false, transB: true, m: rows, n: outF, k: inF, a: xc.data, lda: inF, b: wc.data, ldb: inF,
         beta: beta, c: po, ldc: outF)
    var inputs = [x, weight]
    if let bias { inputs.append(bias) }
    // Keep for backward only what a gradient that will be asked for needs: the input (or its
    // contiguous copy) for the weight's, the weight for the input's. A frozen weight (LoRA,
    // IA3, frozen layers) keeps no copy of the input and computes no weight product.
    let savedX: Tensor? = weight.requiresGrad ? xc : nil
    let savedW: Tensor? = x.requiresGrad ? wc : nil
    let xShape = x.shape, wShape = weight.shape
    let biasNeedsGrad = bias?.requiresGrad ?? false
    return out.recorded("linear", inputs) { g in
        let gc = g.contiguousData()
        let pg = gc.data
        var gx: Tensor? = nil, gw: Tensor? = nil, gb: Tensor? = nil
        let tx = savedW != nil ? Tensor(uninitialized: xShape) : nil
        let tw = savedX != nil ? Tensor(uninitialized: wShape) : nil
        let inputGrad: (Bool) -> Void = { parallel in
            guard let tx, let savedW else { return }
            gemm(transA: false, transB: false, m: rows, n: inF, k: outF, a: pg, lda: outF, b: savedW.data, ldb: inF,
                 c: tx.data, ldc: inF, parallel: parallel)
        }
        let weightGrad: (Bool) -> Void = { parallel in
            guard let tw, let savedX else { return }
            gemm(transA: true, transB: false, m: outF, n: inF, k: rows, a: pg, lda: outF, b: savedX.data, ldb: inF,
                 c: tw.data, ldc: inF, parallel: parallel)
        }
        if tx != nil && tw != nil {
            // The two products have the same cost: one per worker, each unsplit, avoids packing
            // shared operands twice.
            Parallel.run(chunks: 2) { $0 == 0 ? inputGrad(false) : weightGrad(false) }
        } else {
            // One product (a frozen weight, or an input that needs no gradient): split it by
            // shape like any other, so it uses every worker.
            inputGrad(true)
            weightGrad(true)
        }
        gx = tx
        gw = tw
        if biasNeedsGrad {
            gb = columnSums(pg, rows: rows, cols: outF)
        }
        return [gx, gw, gb]
    }
}

/// Sums of each column of a row-major [rows, cols] matrix, split over columns (deterministic).
func columnSums(_ p: UnsafePointer<Float>, rows: Int, cols: Int) -> Tensor {
    let t = Tensor(uninitialized: [cols])
    let d = t.data
    Parallel.forRange(cols, grain: max(8, 65536 / max(rows, 1))) { r in
        let w = r.count
        (d + r.lowerBound).initialize(repeating: 0, count: w)
        for i in 0..<rows { zip8(d + r.lowerBound, p + i * cols + r.lowerBound, d + r.lowerBound, w) { $0 + $1 } }
    }
    return t
}
