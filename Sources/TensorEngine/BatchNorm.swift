import Foundation

// MARK: - Batch normalisation (fused forward and backward, one channel per task)

/// Batch normalisation over [N, C, ...] (usually [N, C, H, W]) like
/// `torch.nn.functional.batch_norm`.
///
/// Training mode normalises with the batch mean and biased variance and updates `runningMean` /
/// `runningVar` in place: `r = (1 − momentum)·r + momentum·batch`, using the unbiased variance for
/// `runningVar`, exactly as PyTorch. The running tensors are plain buffers, never on the tape.
/// Eval mode normalises with the running statistics.
///
/// Each channel's statistics are summed image by image in a fixed order (per-image SIMD sums,
/// combined in Double), so results do not depend on the thread count.
public func batchNorm2d(_ x: Tensor, weight: Tensor?, bias: Tensor?, runningMean: Tensor, runningVar: Tensor,
                        training: Bool, momentum: Float = 0.1, eps: Float = 1e-5) throws -> Tensor {
    let op = "batchNorm2d"
    try check(x.rank >= 2, op, "input must be [N, C, ...] (usually [N, C, H, W]), got \(shapeString(x.shape))")
    let n = x.shape[0], c = x.shape[1]
    let s = x.shape.dropFirst(2).reduce(1, *)
    try check(c > 0, op, "input \(shapeString(x.shape)) has no channels")
    if let weight { try check(weight.shape == [c], op, "weight \(shapeString(weight.shape)) does not match the \(c) channels of input \(shapeString(x.shape))") }
    if let bias { try check(bias.shape == [c], op, "bias \(shapeString(bias.shape)) does not match the \(c) channels of input \(shapeString(x.shape))") }
    try check(runningMean.shape == [c], op, "runningMean \(shapeString(runningMean.shape)) does not match the \(c) channels of input \(shapeString(x.shape))")
    try check(runningVar.shape == [c], op, "runningVar \(shapeString(runningVar.shape)) does not match the \(c) channels of input \(shapeString(x.shape))")
    try require(eps > 0, op, "eps must be positive, got \(eps)")
    try require(momentum >= 0 && momentum <= 1, op, "momentum must be in [0, 1], got \(momentum)")
    let m = n * s
    if training {
        try require(m > 1, op, "training needs more than one value per channel, input \(shapeString(x.shape)) has \(m)")
    }

    let xc = x.contiguousData()
    let wc = weight?.contiguousData(), bc = bias?.contiguousData()
    let out = Tensor(uninitialized: x.shape)
    // The mean and 1/std each channel was normalised with (batch or running), kept for backward.
    let meanT = Tensor(uninitialized: [c]), rstdT = Tensor(uninitialized: [c])
    let rmStride = runningMean.strides[0], rvStride = runningVar.strides[0]
    let prm = runningMean.data, prv = runningVar.data
    let mom = Double(momentum)

    withExtendedLifetime((xc, wc, bc, runningMean, runningVar)) {
        let px = xc.data, po = out.data, pm = meanT.data, pr = rstdT.data
        let pw = wc?.data, pb = bc?.data
        Parallel.forRange(c, grain: max(1, 16384 / max(m, 1))) { r in
            for ch in r {
                let mean: Float, rstd: Float
                if training {
                    var total: Double = 0
                    for i in 0..<n { total += Double(sum8(px + (i * c + ch) * s, s)) }
                    let mu = Float(total / Double(m))
                    var ssq: Double = 0
                    let muV = splat(mu)
                    for i in 0..<n {
                        let p = px + (i * c + ch) * s
                        var a0 = V8(), a1 = V8()
                        var j = 0
                        while j + 16 <= s {
                            let d0 = load8(p + j) - muV, d1 = load8(p + j + 8) - muV
                            a0 = a0.addingProduct(d0, d0); a1 = a1.addingProduct(d1, d1)
                            j += 16
                        }
                        if j + 8 <= s { let d0 = load8(p + j) - muV; a0 = a0.addingProduct(d0, d0); j += 8 }
                        var t = (a0 + a1).sum()
                        while j < s { let d = p[j] - mu; t += d * d; j += 1 }
                        ssq += Double(t)
                    }
                    let varBiased = ssq / Double(m)
                    mean = mu
                    rstd = Float(1 / (varBiased + Double(eps)).squareRoot())
                    let unbiased = ssq / Double(m - 1)
                    prm[ch * rmStride] = Float((1 - mom) * Double(prm[ch * rmStride]) + mom * Double(mu))
                    prv[ch * rvStride] = Float((1 - mom) * Double(prv[ch * rvStride]) + mom * unbiased)
                } else {
                    mean = prm[ch * rmStride]
                    rstd = 1 / (prv[ch * rvStride] + eps).squareRoot()
                }
                pm[ch] = mean
                pr[ch] = rstd
                // y = x·scale + shift
                let scale = rstd * (pw?[ch] ?? 1)
                let shift = (pb?[ch] ?? 0) - mean * scale
                let sV = splat(scale), tV = splat(shift)
                for i in 0..<n {
                    let off = (i * c + ch) * s
                    map8(px + off, po + off, s) { tV.addingProduct($0, sV) }
                }
            }
        }
    }

    var inputs = [x]
    if let weight { inputs.append(weight) }
    if let bias { inputs.append(bias) }
    return out.recorded("batchNorm2d", inputs) { g in
        let gc = g.contiguousData()
        let needX = x.requiresGrad
        let needW = weight?.requiresGrad ?? false, needB = bias?.requiresGrad ?? false
        let gx = needX ? Tensor(uninitialized: x.shape) : nil
        let gw = needW ? Tensor(uninitialized: [c]) : nil
        let gb = needB ? Tensor(uninitialized: [c]) : nil
        withExtendedLifetime((gc, xc, wc, meanT, rstdT)) {
            let pg = gc.data, px = xc.data, pm = meanT.data, pr = rstdT.data
            let pw = wc?.data
            let pgx = gx?.data, pgw = gw?.data, pgb = gb?.data
            Parallel.forRange(c, grain: max(1, 8192 / max(m, 1))) { r in
                for ch in r {
                    let mean = pm[ch], rstd = pr[ch]
                    let muV = splat(mean)
                    // sumG = Σ g, sumGX = Σ g·(x − mean)
                    var sumG: Double = 0, sumGX: Double = 0
                    for i in 0..<n {
                        let off = (i * c + ch) * s
                        let gp = pg + off, xp = px + off
                        var a0 = V8(), a1 = V8()
                        var j = 0
                        while j + 8 <= s {
                            let gv = load8(gp + j)
                            a0 += gv
                            a1 = a1.addingProduct(gv, load8(xp + j) - muV)
                            j += 8
                        }
                        var t0 = a0.sum(), t1 = a1.sum()
                        while j < s { t0 += gp[j]; t1 += gp[j] * (xp[j] - mean); j += 1 }
                        sumG += Double(t0); sumGX += Double(t1)
                    }
                    pgb?[ch] = Float(sumG)
                    pgw?[ch] = Float(sumGX * Double(rstd))
                    guard let pgx else { continue }
                    let w = pw?[ch] ?? 1
                    let a = w * rstd
                    // training: dx = a·(g − mean(g) − x̂·mean(g·x̂)) = a·g + k·x + k0
                    // eval:     dx = a·g
                    var k: Float = 0, k0: Float = 0
                    if training {
                        let meanGXhat = Float(sumGX * Double(rstd) / Double(m))
                        let meanG = Float(sumG / Double(m))
                        k = -a * rstd * meanGXhat
                        k0 = -a * meanG - k * mean
                    }
                    let aV = splat(a), kV = splat(k), k0V = splat(k0)
                    for i in 0..<n {
                        let off = (i * c + ch) * s
                        if training {
                            zip8(pg + off, px + off, pgx + off, s) { gv, xv in k0V.addingProduct(xv, kV).addingProduct(gv, aV) }
                        } else {
                            map8(pg + off, pgx + off, s) { $0 * aV }
                        }
                    }
                }
            }
        }
        var result: [Tensor?] = [gx]
        if weight != nil { result.append(gw) }
        if bias != nil { result.append(gb) }
        return result
    }
}
