/// A linear layer with a low-rank update (LoRA), as one op:
///
///     y = x·Wᵀ + b + s·(xa·Aᵀ)·Bᵀ        W [out, in], A [r, in], B [out, r]
///
/// where `xa` is the adapter's input (`x` itself, or `x` after LoRA dropout). Written as separate
/// ops, the base output and the update would each be a [rows, out] tensor kept alive until
/// backward by the addition joining them; here the update is accumulated into the output by the
/// same GEMM pass and only the [rows, r] intermediate `h = xa·Aᵀ` is kept. Backward computes
/// only the gradients that are asked for: with a frozen `W` (LoRA's case) no weight product is
/// computed and no copy of `x` is kept for one.
public func lowRankLinear(_ x: Tensor, weight: Tensor, bias: Tensor?, adapterInput xa: Tensor,
                          down a: Tensor, up b: Tensor, scale s: Float) throws -> Tensor {
    try check(weight.rank == 2, "lowRankLinear", "weight must be [out, in], got \(shapeString(weight.shape))")
    let outF = weight.shape[0], inF = weight.shape[1]
    try check(x.rank >= 1 && x.shape[x.rank - 1] == inF, "lowRankLinear",
              "input \(shapeString(x.shape)) does not end in \(inF) features (weight \(shapeString(weight.shape)))")
    try check(xa.shape == x.shape, "lowRankLinear", "adapter input \(shapeString(xa.shape)) differs from the input \(shapeString(x.shape))")
    try check(a.rank == 2 && a.shape[1] == inF, "lowRankLinear", "down projection \(shapeString(a.shape)) must be [r, \(inF)]")
    let r = a.shape[0]
    try check(b.shape == [outF, r], "lowRankLinear", "up projection \(shapeString(b.shape)) must be [\(outF), \(r)]")
    if let bias { try check(bias.shape == [outF], "lowRankLinear", "bias \(shapeString(bias.shape)) does not match \(outF) outputs") }
    let shared = xa === x
    let xc = x.contiguousData(), wc = weight.contiguousData()
    let xac = shared ? xc : xa.contiguousData()
    let ac = a.contiguousData(), bc = b.contiguousData()
    let rows = x.count / max(inF, 1)
    var outShape = x.shape; outShape[outShape.count - 1] = outF
    let out = Tensor(uninitialized: outShape)
    let po = out.data
    var beta: Float = 0
    if let bias {
        let biasc = bias.contiguousData()
        Parallel.forRange(rows, grain: max(1, 32768 / max(outF, 1))) { range in
            for i in range { (po + i * outF).update(from: biasc.data, count: outF) }
        }
        beta = 1
    }
    gemm(transA: false, transB: true, m: rows, n: outF, k: inF, a: xc.data, lda: inF, b: wc.data, ldb: inF,
         beta: beta, c: po, ldc: outF)
    let h = Tensor(uninitialized: [rows, r])
    gemm(transA: false, transB: true, m: rows, n: r, k: inF, a: xac.data, lda: inF, b: ac.data, ldb: inF, c: h.data, ldc: r)
    gemm(transA: false, transB: true, m: rows, n: outF, k: r, alpha: s, a: h.data, lda: r, b: bc.data, ldb: r,
         beta: 1, c: po, ldc: outF)

    var inputs = [x, weight]
    if let bias { inputs.append(bias) }
    if !shared { inputs.append(xa) }
    inputs += [a, b]
    // What backward reads, kept only for the gradients that will be asked for.
    let savedX: Tensor? = weight.requiresGrad ? xc : nil
    let savedW: Tensor? = x.requiresGrad ? wc : nil
    let savedXA: Tensor? = a.requiresGrad ? xac : nil
    let needsGH = a.requiresGrad || xa.requiresGrad
    // Shapes and flags as values: the closure must not keep x or xa alive for them.
    let xShape = x.shape, wShape = weight.shape, aShape = a.shape, bShape = b.shape
    let xaNeedsGrad = xa.requiresGrad, bNeedsGrad = b.requiresGrad, biasNeedsGrad = bias?.requiresGrad ?? false
    let hasBias = bias != nil
    return out.recorded("lowRankLinear", inputs) { g in
        let gc = g.contiguousData()
        let pg = gc.data
        // gh = s·g·B [rows, r]: the gradient reaching h.
        var gh: Tensor? = nil
        if needsGH {
            let t = Tensor(uninitialized: [rows, r])
            gemm(transA: false, transB: false, m: rows, n: r, k: outF, alpha: s, a: pg, lda: outF, b: bc.data, ldb: r,
                 c: t.data, ldc: r)
            gh = t
        }
        var gx: Tensor? = nil
        if let savedW {
            let t = Tensor(uninitialized: xShape)
            gemm(transA: false, transB: false, m: rows, n: inF, k: outF, a: pg, lda: outF, b: savedW.data, ldb: inF,
                 c: t.data, ldc: inF)
            if shared, let gh {
                gemm(transA: false, transB: false, m: rows, n: inF, k: r, a: gh.data, lda: r, b: ac.data, ldb: inF,
                     beta: 1, c: t.data, ldc: inF)
            }
            gx = t
        }
        var gxa: Tensor? = nil
        if !shared, xaNeedsGrad, let gh {
            let t = Tensor(uninitialized: xShape)
            gemm(transA: false, transB: false, m: rows, n: inF, k: r, a: gh.data, lda: r, b: ac.data, ldb: inF,
                 c: t.data, ldc: inF)
            gxa = t
        }
        var gw: Tensor? = nil
        if let savedX {
            let t = Tensor(uninitialized: wShape)
            gemm(transA: true, transB: false, m: outF, n: inF, k: rows, a: pg, lda: outF, b: savedX.data, ldb: inF,
                 c: t.data, ldc: inF)
            gw = t
        }
        var ga: Tensor? = nil
        if let savedXA, let gh {
            let t = Tensor(uninitialized: aShape)
            gemm(transA: true, transB: false, m: r, n: inF, k: rows, a: gh.data, lda: r, b: savedXA.data, ldb: inF,
                 c: t.data, ldc: inF)
            ga = t
        }
        var gb: Tensor? = nil
        if bNeedsGrad {
            let t = Tensor(uninitialized: bShape)
            gemm(transA: true, transB: false, m: outF, n: r, k: rows, alpha: s, a: pg, lda: outF, b: h.data, ldb: r,
                 c: t.data, ldc: r)
            gb = t
        }
        var grads: [Tensor?] = [gx, gw]
        if hasBias { grads.append(biasNeedsGrad ? columnSums(pg, rows: rows, cols: outF) : nil) }
        if !shared { grads.append(gxa) }
        return grads + [ga, gb]
    }
}
