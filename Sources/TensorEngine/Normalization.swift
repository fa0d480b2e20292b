import Foundation

// MARK: - Layer norm (fused forward and backward over the last dimension)

/// Normalises over the last dimension: (x − mean) / sqrt(var + eps) · weight + bias,
/// with the biased variance, as `torch.nn.functional.layer_norm`.
public func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) throws -> Tensor {
    try check(x.rank >= 1, "layerNorm", "input needs at least one dimension")
    let d = x.shape[x.rank - 1]
    if let weight { try check(weight.shape == [d], "layerNorm", "weight \(shapeString(weight.shape)) does not match last dimension \(d) of \(shapeString(x.shape))") }
    if let bias { try check(bias.shape == [d], "layerNorm", "bias \(shapeString(bias.shape)) does not match last dimension \(d) of \(shapeString(x.shape))") }
    let xc = x.contiguousData()
    let rows = x.count / max(d, 1)
    let out = Tensor(uninitialized: x.shape)
    let meanT = Tensor(uninitialized: [rows]), rstdT = Tensor(uninitialized: [rows])
    let wc = weight?.contiguousData(), bc = bias?.contiguousData()
    let px = xc.data, po = out.data, pm = meanT.data, pr = rstdT.data
    let pw = wc?.data, pb = bc?.data
    let invD = 1 / Float(d)
    Parallel.forRange(rows, grain: max(1, 16384 / max(d, 1))) { r in
        for i in r {
            let row = px + i * d
            let mu = sum8(row, d) * invD
            let muV = splat(mu)
            var acc = V8()
            var j = 0
            while j + 8 <= d { let c = load8(row + j) - muV; acc = acc.addingProduct(c, c); j += 8 }
            var ss = acc.sum()
            while j < d { let c = row[j] - mu; ss += c * c; j += 1 }
            let rstd = 1 / (ss * invD + eps).squareRoot()
            pm[i] = mu; pr[i] = rstd
            let rV = splat(rstd)
            let o = po + i * d
            j = 0
            while j + 8 <= d {
                var y = (load8(row + j) - muV) * rV
                if let pw { y = y * load8(pw + j) }
                if let pb { y = y + load8(pb + j) }
                store8(y, o + j)
                j += 8
            }
            while j < d {
                var y = (row[j] - mu) * rstd
                if let pw { y *= pw[j] }
                if let pb { y += pb[j] }
                o[j] = y
                j += 1
            }
        }
    }
    var inputs = [x]
    if let weight { inputs.append(weight) }
    if let bias { inputs.append(bias) }
    return out.recorded("layerNorm", inputs) { g in
        // Re-derive the pointers from the captured tensors: xc (a temporary copy when x is a
        // view), meanT, rstdT and wc must outlive the forward call for backward to read them.
        let px = xc.data, pm = meanT.data, pr = rstdT.data, pw = wc?.data
        let gc = g.contiguousData()
        let pg = gc.data
        let gx = x.requiresGrad ? Tensor(uninitialized: x.shape) : nil
        let pgx = gx?.data
        // Per-row input gradient; weight/bias gradients as column sums of per-row terms.
        Parallel.forRange(rows, grain: max(1, 8192 / max(d, 1))) { r in
            guard let pgx else { return }
            for i in r {
                let row = px + i * d, gr = pg + i * d
                let mu = pm[i], rstd = pr[i]
                // xhat = (x-mu)*rstd ; gy = g*w ; dx = rstd*(gy - mean(gy) - xhat*mean(gy*xhat))
                var s1 = V8(), s2 = V8()
                var j = 0
                let muV = splat(mu), rV = splat(rstd)
                while j + 8 <= d {
                    var gy = load8(gr + j)
                    if let pw { gy = gy * load8(pw + j) }
                    let xh = (load8(row + j) - muV) * rV
                    s1 += gy; s2 = s2.addingProduct(gy, xh)
                    j += 8
                }
                var a1 = s1.sum(), a2 = s2.sum()
                while j < d {
                    var gy = gr[j]; if let pw { gy *= pw[j] }
                    let xh = (row[j] - mu) * rstd
                    a1 += gy; a2 += gy * xh
                    j += 1
                }
                let m1 = splat(a1 * invD), m2 = splat(a2 * invD)
                let o = pgx + i * d
                j = 0
                while j + 8 <= d {
                    var gy = load8(gr + j)
                    if let pw { gy = gy * load8(pw + j) }
                    let xh = (load8(row + j) - muV) * rV
                    store8(rV * (gy - m1 - xh * m2), o + j)
                    j += 8
                }
                while j < d {
                    var gy = gr[j]; if let pw { gy *= pw[j] }
                    let xh = (row[j] - mu) * rstd
                    o[j] = rstd * (gy - a1 * invD - xh * a2 * invD)
                    j += 1
                }
            }
        }
        var gw: Tensor? = nil, gb: Tensor? = nil
        if let weight, weight.requiresGrad {
            let t = Tensor(uninitialized: [d])
            let pt = t.data
            Parallel.forRange(d, grain: 64) { cols in
                let lo = cols.lowerBound, w = cols.count
                (pt + lo).initialize(repeating: 0, count: w)
                for i in 0..<rows {
                    let muV = splat(pm[i]), rV = splat(pr[i])
                    var j = 0
                    let row = px + i * d + lo, gr = pg + i * d + lo, acc = pt + lo
                    while j + 8 <= w { store8(load8(acc + j).addingProduct(load8(gr + j), (load8(row + j) - muV) * rV), acc + j); j += 8 }
                    while j < w { acc[j] += gr[j] * (row[j] - pm[i]) * pr[i]; j += 1 }
                }
            }
            gw = t
        }
        if let bias, bias.requiresGrad { gb = columnSums(pg, rows: rows, cols: d) }
        var result: [Tensor?] = [gx]
        if weight != nil { result.append(gw) }
        if bias != nil { result.append(gb) }
        return result
    }
}

// MARK: - Softmax

/// Softmax over the last dimension of a contiguous row buffer, in place.
@inline(__always)
func softmaxRow(_ p: UnsafeMutablePointer<Float>, _ n: Int) {
    let m = max8(p, n)
    let mV = splat(m)
    var acc = V8()
    var j = 0
    while j + 8 <= n { let e = vexp(load8(p + j) - mV); store8(e, p + j); acc += e; j += 8 }
    var s = acc.sum()
    if j < n {
        let e = vexp(loadPartial(p + j, n - j) - mV)
        storePartial(e, p + j, n - j)
        for l in 0..<(n - j) { s += e[l] }
    }
    let inv = splat(1 / s)
    j = 0
    while j + 8 <= n { store8(load8(p + j) * inv, p + j); j += 8 }
    while j < n { p[j] *= 1 / s; j += 1 }
}

/// Softmax along `axis` (default last).
public func softmax(_ x: Tensor, axis: Int = -1) throws -> Tensor {
    let a = try x.axis(axis, op: "softmax")
    if a != x.rank - 1 {
        let moved = try x.transposed(a, x.rank - 1)
        return try softmax(moved, axis: -1).transposed(a, x.rank - 1)
    }
    let n = x.shape[a]
    let out = x.clone()
    let rows = x.count / max(n, 1)
    let po = out.data
    Parallel.forRange(rows, grain: max(1, 8192 / max(n, 1))) { r in for i in r { softmaxRow(po + i * n, n) } }
    // The output's storage without its graph node: backward reads it, and a closure holding
    // `out` itself would never be freed (nothing else keeps the output alive for backward).
    let saved = out.detached()
    return out.recorded("softmax", [x]) { g in
        // dx = y * (g - sum(g*y))
        let po = saved.data
        let gc = g.contiguousData()
        let gx = Tensor(uninitialized: g.shape)
        let pg = gc.data, pgx = gx.data
        Parallel.forRange(rows, grain: max(1, 8192 / max(n, 1))) { r in
            for i in r {
                let gy = pg + i * n, y = po + i * n
                let s = splat(dot8(gy, y, n))
                zip8(gy, y, pgx + i * n, n) { ($0 - s) * $1 }
            }
        }
        return [gx]
    }
}

/// log-softmax along `axis` (default last), computed stably as x − max − log Σ e^(x−max).
public func logSoftmax(_ x: Tensor, axis: Int = -1) throws -> Tensor {
    let a = try x.axis(axis, op: "logSoftmax")
    if a != x.rank - 1 {
        let moved = try x.transposed(a, x.rank - 1)
        return try logSoftmax(moved, axis: -1).transposed(a, x.rank - 1)
    }
    let n = x.shape[a]
    let xc = x.contiguousData()
    let out = Tensor(uninitialized: x.shape)
    let rows = x.count / max(n, 1)
    let px = xc.data, po = out.data
    Parallel.forRange(rows, grain: max(1, 8192 / max(n, 1))) { r in
        for i in r { logSoftmaxRow(px + i * n, po + i * n, n) }
    }
    let saved = out.detached()   // see softmax
    return out.recorded("logSoftmax", [x]) { g in
        // dx = g - softmax * sum(g)
        let po = saved.data
        let gc = g.contiguousData()
        let gx = Tensor(uninitialized: g.shape)
        let pg = gc.data, pgx = gx.data
        Parallel.forRange(rows, grain: max(1, 8192 / max(n, 1))) { r in
            for i in r {
                let s = splat(sum8(pg + i * n, n))
                zip8(pg + i * n, po + i * n, pgx + i * n, n) { $0 - vexp($1) * s }
            }
        }
        return [gx]
    }
}

@inline(__always)
func logSoftmaxRow(_ x: UnsafePointer<Float>, _ o: UnsafeMutablePointer<Float>, _ n: Int) {
    let m = max8(x, n)
    let mV = splat(m)
    var acc = V8()
    var j = 0
    while j + 8 <= n { acc += vexp(load8(x + j) - mV); j += 8 }
    var s = acc.sum()
    if j < n {
        let e = vexp(loadPartial(x + j, n - j) - mV)
        for l in 0..<(n - j) { s += e[l] }
    }
    let lse = splat(m + Foundation.log(s))
    map8(x, o, n) { $0 - lse }
}
