import Foundation

// MARK: - 2-D convolution
//
// NCHW input, weight [outC, inC/groups, kH, kW] (PyTorch's layout), cross-correlation as
// `torch.nn.functional.conv2d`.
//
// Three kernels:
//  * general: im2col of a sub-batch of images into a per-worker buffer, then one GEMM per group
//    (weight [outC/g, K] · columns [K, images·pixels]). Small feature maps batch several images
//    into one GEMM so OpenBLAS sees a wide enough matrix and packs the weight fewer times.
//  * pointwise (1×1, stride 1, no padding): the image itself is the column matrix, no im2col.
//  * depthwise (groups == inC == outC): a direct SIMD8 kernel over zero-padded planes.
//
// Work is divided by images; every split depends only on the problem shape, never on the thread
// count. The weight gradient is accumulated per fixed chunk of images into its own buffer and the
// chunk buffers are summed in chunk order, so gradients are bit-identical for any thread count.

/// The sizes of one convolution, validated.
struct Conv2dGeometry {
    let n: Int, c: Int, h: Int, w: Int
    let o: Int, kh: Int, kw: Int
    let sh: Int, sw: Int, ph: Int, pw: Int, dh: Int, dw: Int
    let groups: Int
    let oh: Int, ow: Int

    /// Input channels per group.
    var cg: Int { c / groups }
    /// Output channels per group.
    var og: Int { o / groups }
    /// Output pixels per image and channel.
    var pixels: Int { oh * ow }
    /// Rows of the column matrix of one group (the GEMM's K).
    var kg: Int { cg * kh * kw }
    /// Input pixels per image and channel.
    var plane: Int { h * w }
    /// 1×1, stride 1, no padding: the input image already is the column matrix.
    var isPointwise: Bool { kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0 }
    /// One input and one output channel per group.
    var isDepthwise: Bool { groups > 1 && groups == c && o == c }
}

/// The output length of a sliding window (PyTorch's formula, floor mode); 0 when it does not fit.
@inline(__always)
func slidingOutputSize(_ input: Int, kernel: Int, stride: Int, padding: Int, dilation: Int = 1) -> Int {
    let span = input + 2 * padding - dilation * (kernel - 1) - 1
    return span < 0 ? 0 : span / stride + 1
}

func conv2dGeometry(x: [Int], weight: [Int], bias: [Int]?, stride: (Int, Int), padding: (Int, Int),
                    dilation: (Int, Int), groups: Int) throws -> Conv2dGeometry {
    let op = "conv2d"
    try check(x.count == 4, op, "input must be [N, C, H, W] (or unbatched [C, H, W]), got \(shapeString(x))")
    try check(weight.count == 4, op, "weight must be [outC, inC/groups, kH, kW], got \(shapeString(weight))")
    try require(stride.0 > 0 && stride.1 > 0, op, "stride must be positive, got (\(stride.0), \(stride.1))")
    try require(padding.0 >= 0 && padding.1 >= 0, op, "padding must be non-negative, got (\(padding.0), \(padding.1))")
    try require(dilation.0 > 0 && dilation.1 > 0, op, "dilation must be positive, got (\(dilation.0), \(dilation.1))")
    try require(groups > 0, op, "groups must be positive, got \(groups)")
    let n = x[0], c = x[1], h = x[2], w = x[3]
    let o = weight[0], kh = weight[2], kw = weight[3]
    try check(c > 0 && h > 0 && w > 0, op, "input \(shapeString(x)) has an empty channel or spatial dimension")
    try check(o > 0 && weight[1] > 0 && kh > 0 && kw > 0, op, "weight \(shapeString(weight)) has an empty dimension")
    try require(c % groups == 0, op, "groups \(groups) does not divide the \(c) input channels of \(shapeString(x))")
    try require(o % groups == 0, op, "groups \(groups) does not divide the \(o) output channels of weight \(shapeString(weight))")
    try check(weight[1] == c / groups, op,
              "weight \(shapeString(weight)) expects \(weight[1] * groups) input channels (\(weight[1]) per group × \(groups) groups), but input \(shapeString(x)) has \(c)")
    if let bias {
        try check(bias == [o], op, "bias \(shapeString(bias)) does not match the \(o) output channels of weight \(shapeString(weight))")
    }
    let oh = slidingOutputSize(h, kernel: kh, stride: stride.0, padding: padding.0, dilation: dilation.0)
    let ow = slidingOutputSize(w, kernel: kw, stride: stride.1, padding: padding.1, dilation: dilation.1)
    try check(oh > 0 && ow > 0, op,
              "output size would be \(oh)×\(ow): input \(shapeString(x)) padded by (\(padding.0), \(padding.1)) is smaller than the kernel \(kh)×\(kw) dilated by (\(dilation.0), \(dilation.1))")
    return Conv2dGeometry(n: n, c: c, h: h, w: w, o: o, kh: kh, kw: kw,
                          sh: stride.0, sw: stride.1, ph: padding.0, pw: padding.1, dh: dilation.0, dw: dilation.1,
                          groups: groups, oh: oh, ow: ow)
}

/// 2-D convolution (cross-correlation) like `torch.nn.functional.conv2d`.
///
/// - Parameters:
///   - x: input [N, C, H, W], or unbatched [C, H, W] (the output then has no batch dimension).
///   - weight: [outC, C/groups, kH, kW].
///   - bias: [outC] or nil.
/// Throws `TensorError` naming the shapes when they do not fit, when `groups` does not divide the
/// channels, or when the output would be empty.
public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                   dilation: (Int, Int) = (1, 1), groups: Int = 1) throws -> Tensor {
    if x.rank == 3 {
        try check(weight.rank == 4, "conv2d", "weight must be [outC, inC/groups, kH, kW], got \(shapeString(weight.shape))")
        let y = try conv2d(try x.unsqueezed(0), weight: weight, bias: bias, stride: stride, padding: padding,
                           dilation: dilation, groups: groups)
        return try y.reshaped(Array(y.shape.dropFirst()))
    }
    let g = try conv2dGeometry(x: x.shape, weight: weight.shape, bias: bias?.shape, stride: stride, padding: padding,
                               dilation: dilation, groups: groups)
    let xc = x.contiguousData(), wc = weight.contiguousData(), bc = bias?.contiguousData()
    let out = Tensor(uninitialized: [g.n, g.o, g.oh, g.ow])
    withExtendedLifetime((xc, wc, bc)) {
        if g.isDepthwise {
            depthwiseForward(xc.data, wc.data, bc?.data, g, out.data)
        } else {
            convForward(xc.data, wc.data, bc?.data, g, out.data)
        }
    }
    var inputs = [x, weight]
    if let bias { inputs.append(bias) }
    return out.recorded("conv2d", inputs) { gOut in
        let gc = gOut.contiguousData()
        let needX = x.requiresGrad, needW = weight.requiresGrad
        let gx = needX ? Tensor(uninitialized: x.shape) : nil
        let gw = needW ? Tensor(uninitialized: weight.shape) : nil
        withExtendedLifetime((gc, xc, wc)) {
            if needX || needW {
                if g.isDepthwise {
                    depthwiseBackward(gc.data, xc.data, wc.data, g, gx?.data, gw?.data)
                } else {
                    convBackward(gc.data, xc.data, wc.data, g, gx?.data, gw?.data)
                }
            }
        }
        var result: [Tensor?] = [gx, gw]
        if let bias {
            result.append(bias.requiresGrad ? channelSums(gc, n: g.n, channels: g.o, pixels: g.pixels) : nil)
        }
        return result
    }
}

/// Per-channel sums of an [N, C, pixels] tensor (the bias gradient), in a fixed order per channel.
func channelSums(_ t: Tensor, n: Int, channels: Int, pixels: Int) -> Tensor {
    let out = Tensor(uninitialized: [channels])
    let po = out.data
    withExtendedLifetime(t) {
        let p = t.data
        Parallel.forRange(channels, grain: max(1, 65536 / max(n * pixels, 1))) { r in
            for ch in r {
                var acc: Double = 0
                for i in 0..<n { acc += Double(sum8(p + (i * channels + ch) * pixels, pixels)) }
                po[ch] = Float(acc)
            }
        }
    }
    return out
}

// MARK: - Work division

/// How images are grouped: `sub` images share one im2col buffer and one GEMM; `chunks` fixed
/// runs of consecutive sub-batches each accumulate their own weight gradient. Everything depends
/// on the shape only.
struct ConvBatchPlan {
    let n: Int
    let sub: Int
    let subBatches: Int
    let chunks: Int

    init(_ g: Conv2dGeometry) {
        n = g.n
        let p = max(g.pixels, 1)
        var s = 1
        // Widen the GEMM to at least 256 columns, keeping the column buffer under 16 MB.
        while s * p < 256 && s * 2 <= g.n && s < 16 && g.kg * s * 2 * p <= (1 << 22) { s *= 2 }
        sub = s
        subBatches = (g.n + s - 1) / s
        chunks = min(subBatches, 8)
    }

    @inline(__always) func images(_ s: Int) -> Range<Int> { (s * sub)..<min(n, (s + 1) * sub) }

    @inline(__always) func subBatches(inChunk c: Int) -> Range<Int> {
        (c * subBatches / chunks)..<((c + 1) * subBatches / chunks)
    }
}

/// Runs `body(worker, workers)` once per worker, where `workers = min(threadCount, units)`.
/// Each worker takes units `worker, worker + workers, …`; with one worker the body may itself run
/// parallel kernels.
@inline(__always)
func forEachWorker(units: Int, _ body: (_ worker: Int, _ workers: Int) -> Void) {
    let workers = max(1, min(Parallel.threadCount, units))
    Parallel.run(chunks: workers) { w in body(w, workers) }
}

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
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self).evenHalf
}

/// Writes the column-matrix rows of input channels `channels` of one image.
/// `src` is channel 0 of the image (of the group); row r = (ci·kh + ki)·kw + kj goes to `col + r·ld`.
func im2col(_ src: UnsafePointer<Float>, _ g: Conv2dGeometry, channels: Range<Int>,
            _ col: UnsafeMutablePointer<Float>, ld: Int) {
    let H = g.h, W = g.w, OH = g.oh, OW = g.ow, sw = g.sw
    for ci in channels {
        let plane = src + ci * H * W
        for ki in 0..<g.kh {
            for kj in 0..<g.kw {
                let row = col + ((ci * g.kh + ki) * g.kw + kj) * ld
                let iw0 = kj * g.dw - g.pw
                let (lo, hi) = validColumns(start: iw0, stride: sw, count: OW, limit: W)
                // Columns j with index iw0 + 2j + 15 < W can use the 16-wide even-lane load.
                let evenHi = sw == 2 ? max(lo, min(hi, (W - iw0 - 15) / 2)) : lo
                for oh in 0..<OH {
                    let ih = oh * g.sh - g.ph + ki * g.dh
                    let dst = row + oh * OW
                    if ih < 0 || ih >= H || lo == hi {
                        dst.initialize(repeating: 0, count: OW)
                        continue
                    }
                    if lo > 0 { dst.initialize(repeating: 0, count: lo) }
                    let s = plane + ih * W + iw0 + lo * sw   // input of column lo
                    if sw == 1 {
                        (dst + lo).update(from: s, count: hi - lo)
                    } else if sw == 2 {
                        var j = lo
                        while j + 8 <= evenHi { store8(loadEven8(s + 2 * (j - lo)), dst + j); j += 8 }
                        while j < hi { dst[j] = s[2 * (j - lo)]; j += 1 }
                    } else {
                        for j in lo..<hi { dst[j] = s[(j - lo) * sw] }
                    }
                    if hi < OW { (dst + hi).initialize(repeating: 0, count: OW - hi) }
                }
            }
        }
    }
}

/// Adds the column-matrix rows of input channels `channels` back onto one image (the adjoint of
/// `im2col`). `dst` is channel 0 of the image (of the group) and must be initialised.
func col2im(_ col: UnsafePointer<Float>, _ g: Conv2dGeometry, channels: Range<Int>, ld: Int,
            _ dst: UnsafeMutablePointer<Float>) {
    let H = g.h, W = g.w, OH = g.oh, OW = g.ow, sw = g.sw
    for ci in channels {
        let plane = dst + ci * H * W
        for ki in 0..<g.kh {
            for kj in 0..<g.kw {
                let row = col + ((ci * g.kh + ki) * g.kw + kj) * ld
                let iw0 = kj * g.dw - g.pw
                let (lo, hi) = validColumns(start: iw0, stride: sw, count: OW, limit: W)
                if lo == hi { continue }
                for oh in 0..<OH {
                    let ih = oh * g.sh - g.ph + ki * g.dh
                    if ih < 0 || ih >= H { continue }
                    let d = plane + ih * W + iw0 + lo * sw
                    let s = row + oh * OW + lo
                    if sw == 1 {
                        zip8(d, s, d, hi - lo) { $0 + $1 }
                    } else {
                        for j in 0..<(hi - lo) { d[j * sw] += s[j] }
                    }
                }
            }
        }
    }
}

/// im2col of one image, split over channels when `parallel`.
@inline(__always)
func im2colImage(_ src: UnsafePointer<Float>, _ g: Conv2dGeometry, _ col: UnsafeMutablePointer<Float>, ld: Int, parallel: Bool) {
    if parallel {
        Parallel.forRange(g.cg, grain: max(1, 32768 / max(g.kh * g.kw * g.pixels, 1))) { r in
            im2col(src, g, channels: r, col, ld: ld)
        }
    } else {
        im2col(src, g, channels: 0..<g.cg, col, ld: ld)
    }
}

/// col2im of one image, split over channels (each channel's sums stay in one thread) when `parallel`.
@inline(__always)
func col2imImage(_ col: UnsafePointer<Float>, _ g: Conv2dGeometry, ld: Int, _ dst: UnsafeMutablePointer<Float>, parallel: Bool) {
    if parallel {
        Parallel.forRange(g.cg, grain: max(1, 32768 / max(g.kh * g.kw * g.pixels, 1))) { r in
            col2im(col, g, channels: r, ld: ld, dst)
        }
    } else {
        col2im(col, g, channels: 0..<g.cg, ld: ld, dst)
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
    forEachWorker(units: plan.subBatches) { worker, workers in
        let colStore = Storage(count: colCount), tmpStore = Storage(count: tmpCount)
        let col = colStore.pointer, tmp = tmpStore.pointer
        let inner = workers == 1
        var s = worker
        while s < plan.subBatches {
            convForwardSubBatch(plan.images(s), px, pw, pb, g, py, col: col, tmp: tmp, direct: direct, parallel: inner)
            s += workers
        }
        withExtendedLifetime((colStore, tmpStore)) {}
    }
}

@inline(__always)
func convForwardSubBatch(_ images: Range<Int>, _ px: UnsafePointer<Float>, _ pw: UnsafePointer<Float>,
                         _ pb: UnsafePointer<Float>?, _ g: Conv2dGeometry, _ py: UnsafeMutablePointer<Float>,
                         col: UnsafeMutablePointer<Float>, tmp: UnsafeMutablePointer<Float>, direct: Bool, parallel: Bool) {
    let cnt = images.count, P = g.pixels, ld = cnt * P
    let first = images.lowerBound
    for grp in 0..<g.groups {
        let wg = pw + grp * g.og * g.kg
        let b: UnsafePointer<Float>
        if direct {
            b = px + (first * g.c + grp * g.cg) * g.plane
        } else {
            for (i, img) in images.enumerated() {
                im2colImage(px + (img * g.c + grp * g.cg) * g.plane, g, col + i * P, ld: ld, parallel: parallel)
            }
            b = UnsafePointer(col)
        }
        if cnt == 1 {
            let dst = py + (first * g.o + grp * g.og) * P
            gemm(transA: false, transB: false, m: g.og, n: P, k: g.kg, a: wg, lda: g.kg, b: b, ldb: P,
                 c: dst, ldc: P, parallel: parallel)
            if let pb {
                for oc in 0..<g.og {
                    let bv = splat(pb[grp * g.og + oc])
                    map8(dst + oc * P, dst + oc * P, P) { $0 + bv }
                }
            }
        } else {
            gemm(transA: false, transB: false, m: g.og, n: ld, k: g.kg, a: wg, lda: g.kg, b: b, ldb: ld,
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
    forEachWorker(units: plan.chunks) { worker, workers in
        let colStore = Storage(count: colCount), gcolStore = Storage(count: gcolCount), packStore = Storage(count: packCount)
        let col = colStore.pointer, gcol = gcolStore.pointer, pack = packStore.pointer
        let inner = workers == 1
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
                                im2colImage(px + (img * g.c + grp * g.cg) * g.plane, g, col + i * P, ld: ld, parallel: inner)
                            }
                            cm = UnsafePointer(col)
                        }
                        // dW_g (+)= dY_g · colsᵀ
                        gemm(transA: false, transB: true, m: g.og, n: g.kg, k: ld, a: gm, lda: ld, b: cm, ldb: ld,
                             beta: firstInChunk ? 0 : 1, c: gwChunk + grp * g.og * g.kg, ldc: g.kg, parallel: inner)
                    }
                    if let gx {
                        if direct {
                            // dX_g = W_gᵀ · dY_g, straight into the image.
                            gemm(transA: true, transB: false, m: g.cg, n: P, k: g.og, a: wg, lda: g.kg, b: gm, ldb: P,
                                 c: gx + (first * g.c + grp * g.cg) * g.plane, ldc: P, parallel: inner)
                        } else {
                            gemm(transA: true, transB: false, m: g.kg, n: ld, k: g.og, a: wg, lda: g.kg, b: gm, ldb: ld,
                                 c: gcol, ldc: ld, parallel: inner)
                            for (i, img) in images.enumerated() {
                                col2imImage(gcol + i * P, g, ld: ld, gx + (img * g.c + grp * g.cg) * g.plane, parallel: inner)
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

// MARK: - Depthwise convolution

/// Reads 8 floats at `p`, `p + s`, …, `p + 7s`. Stride 2 reads p[0...15].
@inline(__always)
func loadStrided8(_ p: UnsafePointer<Float>, _ s: Int) -> V8 {
    if s == 1 { return load8(p) }
    if s == 2 { return loadEven8(p) }
    return V8(p[0], p[s], p[2 * s], p[3 * s], p[4 * s], p[5 * s], p[6 * s], p[7 * s])
}

/// Copies one H×W plane into the interior of a zero-bordered (H + 2ph)×(W + 2pw) buffer.
@inline(__always)
func copyIntoPadded(_ src: UnsafePointer<Float>, _ g: Conv2dGeometry, _ pad: UnsafeMutablePointer<Float>) {
    let wp = g.w + 2 * g.pw
    for ih in 0..<g.h { (pad + (ih + g.ph) * wp + g.pw).update(from: src + ih * g.w, count: g.w) }
}

/// The padded-plane buffer size: the plane plus slack for the 16-wide stride-2 loads.
@inline(__always)
func paddedPlaneCount(_ g: Conv2dGeometry) -> Int { (g.h + 2 * g.ph) * (g.w + 2 * g.pw) + 16 }

func depthwiseForward(_ px: UnsafePointer<Float>, _ pw: UnsafePointer<Float>, _ pb: UnsafePointer<Float>?,
                      _ g: Conv2dGeometry, _ py: UnsafeMutablePointer<Float>) {
    let planes = g.n * g.c
    if planes == 0 { return }
    let wp = g.w + 2 * g.pw
    let kk = g.kh * g.kw
    let OW = g.ow, sw = g.sw
    forEachWorker(units: planes) { worker, workers in
        let padStore = Storage(zeroed: paddedPlaneCount(g))
        let pad = padStore.pointer
        var p = worker
        while p < planes {
            let ch = p % g.c
            copyIntoPadded(px + p * g.plane, g, pad)
            let wk = pw + ch * kk
            let b0 = pb?[ch] ?? 0
            let bv = splat(b0)
            let out = py + p * g.pixels
            for oh in 0..<g.oh {
                let orow = out + oh * OW
                let base = pad + oh * g.sh * wp
                var j = 0
                while j + 8 <= OW {
                    var acc = bv
                    for ki in 0..<g.kh {
                        let r = base + ki * g.dh * wp + j * sw
                        for kj in 0..<g.kw {
                            acc = acc.addingProduct(loadStrided8(r + kj * g.dw, sw), splat(wk[ki * g.kw + kj]))
                        }
                    }
                    store8(acc, orow + j)
                    j += 8
                }
                while j < OW {
                    var acc = b0
                    for ki in 0..<g.kh {
                        let r = base + ki * g.dh * wp + j * sw
                        for kj in 0..<g.kw { acc += r[kj * g.dw] * wk[ki * g.kw + kj] }
                    }
                    orow[j] = acc
                    j += 1
                }
            }
            p += workers
        }
        withExtendedLifetime(padStore) {}
    }
}

/// Depthwise gradients, one channel per task: each channel's weight gradient sums images in order.
func depthwiseBackward(_ pg: UnsafePointer<Float>, _ px: UnsafePointer<Float>, _ pw: UnsafePointer<Float>,
                       _ g: Conv2dGeometry, _ gx: UnsafeMutablePointer<Float>?, _ gw: UnsafeMutablePointer<Float>?) {
    let wp = g.w + 2 * g.pw
    let kk = g.kh * g.kw
    let OW = g.ow, sw = g.sw
    forEachWorker(units: g.c) { worker, workers in
        let xpadStore = Storage(zeroed: paddedPlaneCount(g))
        let gpadStore = Storage(zeroed: paddedPlaneCount(g))
        let xpad = xpadStore.pointer, gpad = gpadStore.pointer
        let acc = UnsafeMutablePointer<V8>.allocate(capacity: kk)
        let total = UnsafeMutablePointer<Double>.allocate(capacity: kk)
        var ch = worker
        while ch < g.c {
            let wk = pw + ch * kk
            total.initialize(repeating: 0, count: kk)
            for img in 0..<g.n {
                let p = img * g.c + ch
                let gy = pg + p * g.pixels
                if gw != nil { copyIntoPadded(px + p * g.plane, g, xpad) }
                if gx != nil { gpad.initialize(repeating: 0, count: paddedPlaneCount(g)) }
                acc.initialize(repeating: V8(), count: kk)
                for oh in 0..<g.oh {
                    let grow = gy + oh * OW
                    let xbase = xpad + oh * g.sh * wp
                    let gbase = gpad + oh * g.sh * wp
                    var j = 0
                    while j + 8 <= OW {
                        let gv = load8(grow + j)
                        for ki in 0..<g.kh {
                            let off = ki * g.dh * wp + j * sw
                            for kj in 0..<g.kw {
                                let k = ki * g.kw + kj
                                if gw != nil {
                                    acc[k] = acc[k].addingProduct(gv, loadStrided8(xbase + off + kj * g.dw, sw))
                                }
                                if gx != nil {
                                    let d = gbase + off + kj * g.dw
                                    let contrib = gv * splat(wk[k])
                                    if sw == 1 {
                                        store8(load8(d) + contrib, d)
                                    } else {
                                        for l in 0..<8 { d[l * sw] += contrib[l] }
                                    }
                                }
                            }
                        }
                        j += 8
                    }
                    while j < OW {
                        let gvs = grow[j]
                        for ki in 0..<g.kh {
                            let off = ki * g.dh * wp + j * sw
                            for kj in 0..<g.kw {
                                let k = ki * g.kw + kj
                                if gw != nil { total[k] += Double(gvs * xbase[off + kj * g.dw]) }
                                if gx != nil { gbase[off + kj * g.dw] += gvs * wk[k] }
                            }
                        }
                        j += 1
                    }
                }
                if gw != nil { for k in 0..<kk { total[k] += Double(acc[k].sum()) } }
                if let gx {
                    let dst = gx + p * g.plane
                    for ih in 0..<g.h { (dst + ih * g.w).update(from: gpad + (ih + g.ph) * wp + g.pw, count: g.w) }
                }
            }
            if let gw { for k in 0..<kk { gw[ch * kk + k] = Float(total[k]) } }
            ch += workers
        }
        acc.deallocate()
        total.deallocate()
        withExtendedLifetime((xpadStore, gpadStore)) {}
    }
}
