import Foundation

// The general convolution kernel: im2col / col2im around GEMMs (see Convolution.swift).

// MARK: - im2col / col2im

/// The output columns `lo..<hi` whose input column `start + j·stride` lies in `0..<limit`.
@inline(__always)
func validColumns(start: Int, stride: Int, count: Int, limit: Int) -> (Int, Int) {
    let lo = start >= 0 ? 0 : min(count, (-start + stride - 1) / stride)
    let hi = limit - start > 0 ? min(count, (limit - start - 1) / stride + 1) : 0
    return (lo, max(lo, hi))
}

/// Even lanes of 16 consecutive floats: p[0], p[2], …, p[14]. Reads p[0...15].
@inline(__always)
func loadEven8(_ p: UnsafePointer<Float>) -> V8 {
    // Written as two loads and lane picks so LLVM emits two shuffles (`SIMD16.evenHalf` lowers
    // to per-lane moves).
    let a = load8(p), b = load8(p + 8)
    return V8(a[0], a[2], a[4], a[6], b[0], b[2], b[4], b[6])
}

/// Zeroes n floats (vector stores for short runs, memset for long ones).
@inline(__always)
func zeroFill(_ p: UnsafeMutablePointer<Float>, _ n: Int) {
    if n >= 64 { p.initialize(repeating: 0, count: n); return }
    var j = 0
    while j + 8 <= n { store8(V8(), p + j); j += 8 }
    while j < n { p[j] = 0; j += 1 }
}

/// Copies n floats (vector moves for short runs, memmove for long ones).
@inline(__always)
func copyFloats(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
    if n >= 64 { dst.update(from: src, count: n); return }
    var j = 0
    while j + 8 <= n { store8(load8(src + j), dst + j); j += 8 }
    while j < n { dst[j] = src[j]; j += 1 }
}

/// Writes the column-matrix rows of input channels `channels` of one image.
/// `src` is channel 0 of the image (of the group); row r = (ci·kh + ki)·kw + kj goes to `col + r·ld`.
func im2col(_ src: UnsafePointer<Float>, _ g: Conv2dGeometry, channels: Range<Int>,
            _ col: UnsafeMutablePointer<Float>, ld: Int) {
    let H = g.h, W = g.w, OH = g.oh, OW = g.ow, sw = g.sw, sh = g.sh
    let plane = H * W
    for ki in 0..<g.kh {
        // Output rows whose input row lies inside the image.
        let ih0 = ki * g.dh - g.ph
        let (ohLo, ohHi) = validColumns(start: ih0, stride: sh, count: OH, limit: H)
        for kj in 0..<g.kw {
            let iw0 = kj * g.dw - g.pw
            let (lo, hi) = validColumns(start: iw0, stride: sw, count: OW, limit: W)
            // Columns j with index iw0 + 2j + 15 < W can use the 16-wide even-lane load.
            let evenHi = sw == 2 ? max(lo, min(hi, (W - iw0 - 15) / 2)) : lo
            for ci in channels {
                let row = col + ((ci * g.kh + ki) * g.kw + kj) * ld
                if lo == hi || ohLo == ohHi { zeroFill(row, OH * OW); continue }
                zeroFill(row, ohLo * OW)
                zeroFill(row + ohHi * OW, (OH - ohHi) * OW)
                var s = src + ci * plane + (ohLo * sh + ih0) * W + iw0 + lo * sw   // input of (ohLo, lo)
                for oh in ohLo..<ohHi {
                    let dst = row + oh * OW
                    for j in 0..<lo { dst[j] = 0 }
                    if sw == 1 {
                        copyFloats(s, dst + lo, hi - lo)
                    } else if sw == 2 {
                        var j = lo
                        while j + 8 <= evenHi { store8(loadEven8(s + 2 * (j - lo)), dst + j); j += 8 }
                        while j < hi { dst[j] = s[2 * (j - lo)]; j += 1 }
                    } else {
                        for j in lo..<hi { dst[j] = s[(j - lo) * sw] }
                    }
                    for j in hi..<OW { dst[j] = 0 }
                    s += sh * W
                }
            }
        }
    }
}

/// Adds the column-matrix rows of input channels `channels` back onto one image (the adjoint of
/// `im2col`). `dst` is channel 0 of the image (of the group) and must be initialised.
/// Each image element receives its terms in a fixed order.
func col2im(_ col: UnsafePointer<Float>, _ g: Conv2dGeometry, channels: Range<Int>, ld: Int,
            _ dst: UnsafeMutablePointer<Float>) {
    let H = g.h, W = g.w, OH = g.oh, OW = g.ow, sw = g.sw, sh = g.sh
    let plane = H * W
    for ki in 0..<g.kh {
        let ih0 = ki * g.dh - g.ph
        let (ohLo, ohHi) = validColumns(start: ih0, stride: sh, count: OH, limit: H)
        if ohLo == ohHi { continue }
        for kj in 0..<g.kw {
            let iw0 = kj * g.dw - g.pw
            let (lo, hi) = validColumns(start: iw0, stride: sw, count: OW, limit: W)
            if lo == hi { continue }
            let n = hi - lo
            for ci in channels {
                let row = col + ((ci * g.kh + ki) * g.kw + kj) * ld
                var d = dst + ci * plane + (ohLo * sh + ih0) * W + iw0 + lo * sw
                for oh in ohLo..<ohHi {
                    let s = row + oh * OW + lo
                    if sw == 1 {
                        var j = 0
                        while j + 8 <= n { store8(load8(d + j) + load8(s + j), d + j); j += 8 }
                        while j < n { d[j] += s[j]; j += 1 }
                    } else {
                        for j in 0..<n { d[j * sw] += s[j] }
                    }
                    d += sh * W
                }
            }
        }
    }
}

/// For small output maps (rows narrower than a vector) the per-row loops of `im2col` cost more
/// than the copying: this table holds, for every kernel tap k and output pixel p, the input
/// offset `taps[k·P + p]` (−1 where the tap falls in the padding).
final class ConvTaps {
    let pointer: UnsafeMutablePointer<Int32>

    init?(_ g: Conv2dGeometry) {
        guard g.ow < 8, g.plane < Int(Int32.max) else { return nil }
        let P = g.pixels
        pointer = .allocate(capacity: g.kh * g.kw * P)
        for ki in 0..<g.kh {
            for kj in 0..<g.kw {
                let t = pointer + (ki * g.kw + kj) * P
                for oh in 0..<g.oh {
                    let ih = oh * g.sh - g.ph + ki * g.dh
                    for ow in 0..<g.ow {
                        let iw = ow * g.sw - g.pw + kj * g.dw
                        t[oh * g.ow + ow] = (ih >= 0 && ih < g.h && iw >= 0 && iw < g.w) ? Int32(ih * g.w + iw) : -1
                    }
                }
            }
        }
    }

    deinit { pointer.deallocate() }
}

/// `im2col` through a tap table.
func im2colTaps(_ src: UnsafePointer<Float>, _ g: Conv2dGeometry, channels: Range<Int>,
                _ col: UnsafeMutablePointer<Float>, ld: Int, _ taps: UnsafePointer<Int32>) {
    let kk = g.kh * g.kw, P = g.pixels
    for ci in channels {
        let plane = src + ci * g.plane
        for k in 0..<kk {
            let row = col + (ci * kk + k) * ld
            let t = taps + k * P
            for p in 0..<P {
                let o = Int(t[p])
                let v = plane[Swift.max(o, 0)]
                row[p] = o >= 0 ? v : 0
            }
        }
    }
}

/// `col2im` through a tap table; each image element receives its terms in a fixed order.
func col2imTaps(_ col: UnsafePointer<Float>, _ g: Conv2dGeometry, channels: Range<Int>, ld: Int,
                _ dst: UnsafeMutablePointer<Float>, _ taps: UnsafePointer<Int32>) {
    let kk = g.kh * g.kw, P = g.pixels
    for ci in channels {
        let plane = dst + ci * g.plane
        for k in 0..<kk {
            let row = col + (ci * kk + k) * ld
            let t = taps + k * P
            for p in 0..<P {
                let o = Int(t[p])
                if o >= 0 { plane[o] += row[p] }
            }
        }
    }
}

/// im2col of one image, split over channels when `parallel`.
@inline(__always)
func im2colImage(_ src: UnsafePointer<Float>, _ g: Conv2dGeometry, _ col: UnsafeMutablePointer<Float>, ld: Int,
                 parallel: Bool, taps: UnsafePointer<Int32>?) {
    let body: (Range<Int>) -> Void = { r in
        if let taps { im2colTaps(src, g, channels: r, col, ld: ld, taps) } else { im2col(src, g, channels: r, col, ld: ld) }
    }
    if parallel {
        Parallel.forRange(g.cg, grain: max(1, 32768 / max(g.kh * g.kw * g.pixels, 1)), body)
    } else {
        body(0..<g.cg)
    }
}

/// col2im of one image, split over channels (each channel's sums stay in one thread) when `parallel`.
@inline(__always)
func col2imImage(_ col: UnsafePointer<Float>, _ g: Conv2dGeometry, ld: Int, _ dst: UnsafeMutablePointer<Float>,
                 parallel: Bool, taps: UnsafePointer<Int32>?) {
    let body: (Range<Int>) -> Void = { r in
        if let taps { col2imTaps(col, g, channels: r, ld: ld, dst, taps) } else { col2im(col, g, channels: r, ld: ld, dst) }
    }
    if parallel {
        Parallel.forRange(g.cg, grain: max(1, 32768 / max(g.kh * g.kw * g.pixels, 1)), body)
    } else {
        body(0..<g.cg)
    }
}

// MARK: - GEMM convolution

func convForward(_ px: UnsafePointer<Float>, _ pw: UnsafePointer<Float>, _ pb: UnsafePointer<Float>?,
                 _ g: Conv2dGeometry, _ py: UnsafeMutablePointer<Float>) {
    let plan = ConvBatchPlan(g)
    if plan.subBatches == 0 { return }
    let direct = g.isPointwise && plan.sub == 1
    let colCount = direct ? 0 : g.kg * plan.sub * g.pixels
    let tmpCount = plan.sub > 1 ? g.og * plan.sub * g.pixels : 0
    let tapTable = direct ? nil : ConvTaps(g)
    let taps = tapTable.map { UnsafePointer($0.pointer) }
    defer { withExtendedLifetime(tapTable) {} }
    let inner = plan.subBatches == 1
    forEachWorker(units: plan.subBatches) { worker, workers in
        let colStore = Storage(count: colCount), tmpStore = Storage(count: tmpCount)
        let col = colStore.pointer, tmp = tmpStore.pointer
        var s = worker
        while s < plan.subBatches {
            convForwardSubBatch(plan.images(s), px, pw, pb, g, py, col: col, tmp: tmp, direct: direct, parallel: inner, taps: taps)
            s += workers
        }
        withExtendedLifetime((colStore, tmpStore)) {}
    }
}

@inline(__always)
func convForwardSubBatch(_ images: Range<Int>, _ px: UnsafePointer<Float>, _ pw: UnsafePointer<Float>,
                         _ pb: UnsafePointer<Float>?, _ g: Conv2dGeometry, _ py: UnsafeMutablePointer<Float>,
                         col: UnsafeMutablePointer<Float>, tmp: UnsafeMutablePointer<Float>, direct: Bool, parallel: Bool,
                         taps: UnsafePointer<Int32>?) {
    let cnt = images.count, P = g.pixels, ld = cnt * P
    let first = images.lowerBound
    for grp in 0..<g.groups {
        let wg = pw + grp * g.og * g.kg
        let b: UnsafePointer<Float>
        if direct {
            b = px + (first * g.c + grp * g.cg) * g.plane
        } else {
            for (i, img) in images.enumerated() {
                im2colImage(px + (img * g.c + grp * g.cg) * g.plane, g, col + i * P, ld: ld, parallel: parallel, taps: taps)
            }
            b = UnsafePointer(col)
        }
        if cnt == 1 {
            let dst = py + (first * g.o + grp * g.og) * P
            convGemm(transA: false, transB: false, m: g.og, n: P, k: g.kg, a: wg, lda: g.kg, b: b, ldb: P,
                 c: dst, ldc: P, parallel: parallel)
            if let pb {
                for oc in 0..<g.og {
                    let bv = splat(pb[grp * g.og + oc])
                    map8(dst + oc * P, dst + oc * P, P) { $0 + bv }
                }
            }
        } else {
            convGemm(transA: false, transB: false, m: g.og, n: ld, k: g.kg, a: wg, lda: g.kg, b: b, ldb: ld,
                 c: tmp, ldc: ld, parallel: parallel)
            for (i, img) in images.enumerated() {
                for oc in 0..<g.og {
                    let src = tmp + oc * ld + i * P
                    let dst = py + (img * g.o + grp * g.og + oc) * P
                    if let pb {
                        let bv = splat(pb[grp * g.og + oc])
                        map8(src, dst, P) { $0 + bv }
                    } else {
                        dst.update(from: src, count: P)
                    }
                }
            }
        }
    }
}

/// Input and weight gradients of the GEMM convolution. `gx`/`gw` nil when not wanted.
func convBackward(_ pg: UnsafePointer<Float>, _ px: UnsafePointer<Float>, _ pw: UnsafePointer<Float>,
                  _ g: Conv2dGeometry, _ gx: UnsafeMutablePointer<Float>?, _ gw: UnsafeMutablePointer<Float>?) {
    let plan = ConvBatchPlan(g)
    let wCount = g.o * g.kg
    if plan.subBatches == 0 {
        gw?.initialize(repeating: 0, count: wCount)
        return
    }
    let direct = g.isPointwise && plan.sub == 1
    let P = g.pixels
    let colCount = (gw != nil && !direct) ? g.kg * plan.sub * P : 0
    let gcolCount = (gx != nil && !direct) ? g.kg * plan.sub * P : 0
    let packCount = plan.sub > 1 ? g.og * plan.sub * P : 0
    // One weight-gradient buffer per chunk (the result itself when there is one chunk).
    let chunkStore = (gw != nil && plan.chunks > 1) ? Storage(count: plan.chunks * wCount) : nil
    let tapTable = direct ? nil : ConvTaps(g)
    let taps = tapTable.map { UnsafePointer($0.pointer) }
    defer { withExtendedLifetime(tapTable) {} }
    let inner = plan.chunks == 1
    forEachWorker(units: plan.chunks) { worker, workers in
        let colStore = Storage(count: colCount), gcolStore = Storage(count: gcolCount), packStore = Storage(count: packCount)
        let col = colStore.pointer, gcol = gcolStore.pointer, pack = packStore.pointer
        var chunk = worker
        while chunk < plan.chunks {
            let gwChunk: UnsafeMutablePointer<Float>? = gw.map { chunkStore.map { $0.pointer + chunk * wCount } ?? $0 }
            var firstInChunk = true
            for s in plan.subBatches(inChunk: chunk) {
                let images = plan.images(s)
                let cnt = images.count, ld = cnt * P, first = images.lowerBound
                if let gx, !direct {
                    (gx + first * g.c * g.plane).initialize(repeating: 0, count: cnt * g.c * g.plane)
                }
                for grp in 0..<g.groups {
                    let wg = pw + grp * g.og * g.kg
                    // The output gradient of this group as an [og, cnt·P] matrix.
                    let gm: UnsafePointer<Float>
                    if cnt == 1 {
                        gm = pg + (first * g.o + grp * g.og) * P
                    } else {
                        for (i, img) in images.enumerated() {
                            for oc in 0..<g.og {
                                (pack + oc * ld + i * P).update(from: pg + (img * g.o + grp * g.og + oc) * P, count: P)
                            }
                        }
                        gm = UnsafePointer(pack)
                    }
                    if let gwChunk {
                        let cm: UnsafePointer<Float>
                        if direct {
                            cm = px + (first * g.c + grp * g.cg) * g.plane
                        } else {
                            for (i, img) in images.enumerated() {
                                im2colImage(px + (img * g.c + grp * g.cg) * g.plane, g, col + i * P, ld: ld, parallel: inner, taps: taps)
                            }
                            cm = UnsafePointer(col)
                        }
                        // dW_g (+)= dY_g · colsᵀ
                        convGemm(transA: false, transB: true, m: g.og, n: g.kg, k: ld, a: gm, lda: ld, b: cm, ldb: ld,
                             beta: firstInChunk ? 0 : 1, c: gwChunk + grp * g.og * g.kg, ldc: g.kg, parallel: inner)
                    }
                    if let gx {
                        if direct {
                            // dX_g = W_gᵀ · dY_g, straight into the image.
                            convGemm(transA: true, transB: false, m: g.cg, n: P, k: g.og, a: wg, lda: g.kg, b: gm, ldb: P,
                                 c: gx + (first * g.c + grp * g.cg) * g.plane, ldc: P, parallel: inner)
                        } else {
                            convGemm(transA: true, transB: false, m: g.kg, n: ld, k: g.og, a: wg, lda: g.kg, b: gm, ldb: ld,
                                 c: gcol, ldc: ld, parallel: inner)
                            for (i, img) in images.enumerated() {
                                col2imImage(gcol + i * P, g, ld: ld, gx + (img * g.c + grp * g.cg) * g.plane, parallel: inner, taps: taps)
                            }
                        }
                    }
                }
                firstInChunk = false
            }
            chunk += workers
        }
        withExtendedLifetime((colStore, gcolStore, packStore)) {}
    }
    if let gw, let chunkStore {
        let buf = chunkStore.pointer
        let chunks = plan.chunks
        Parallel.forRange(wCount, grain: 16384) { r in
            let lo = r.lowerBound, len = r.count
            (gw + lo).update(from: buf + lo, count: len)
            for ch in 1..<chunks { zip8(gw + lo, buf + ch * wCount + lo, gw + lo, len) { $0 + $1 } }
        }
        withExtendedLifetime(chunkStore) {}
    }
}
