import Foundation

// MARK: - 2-D convolution
//
// NCHW input, weight [outC, inC/groups, kH, kW] (PyTorch's layout), cross-correlation as
// `torch.nn.functional.conv2d`.
//
// Four kernels, chosen from the shape alone:
//  * Winograd F(2×2, 3×3) for 3×3, stride-1, undilated, ungrouped convolutions with at least 16
//    input and output channels and output rows of 7 or more (the bulk of a ResNet): 2.25× fewer
//    multiplications than im2col, for the forward pass and both gradients (see below).
//  * general: im2col of a sub-batch of images into a per-worker buffer, then one GEMM per group
//    (weight [outC/g, K] · columns [K, images·pixels]). Small feature maps batch several images
//    into one GEMM so OpenBLAS sees a wide enough matrix and packs the weight fewer times.
//    Input gradient: GEMM Wᵀ·dY then col2im; weight gradient: dY·colsᵀ.
//  * pointwise (1×1, stride 1, no padding): the image itself is the column matrix, no im2col.
//  * depthwise (groups == inC == outC): a direct SIMD8 kernel over zero-padded planes.
//
// Work is divided by images; every split depends only on the problem shape, never on the thread
// count (OpenBLAS runs single-threaded inside a worker; with one sub-batch the GEMMs themselves are
// split by `gemm`, which never splits the summed dimension). The weight gradient is accumulated per
// fixed chunk of images into its own buffer and the chunk buffers are summed in chunk order, so
// outputs and gradients are bit-identical for any thread count.

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
    let winograd = !g.isDepthwise && g.usesWinograd
    withExtendedLifetime((xc, wc, bc)) {
        if g.isDepthwise {
            depthwiseForward(xc.data, wc.data, bc?.data, g, out.data)
        } else if winograd {
            let u = winogradWeights(wc.data, o: g.o, c: g.c, flip: false)
            winogradForward(xc.data, u.pointer, bc?.data,
                            WinogradShape(n: g.n, c: g.c, h: g.h, w: g.w, o: g.o, ph: g.ph, pw: g.pw), out.data)
            withExtendedLifetime(u) {}
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
                } else if winograd {
                    winogradBackward(gc.data, xc.data, wc.data, g, gx?.data, gw?.data)
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
        // Widen the GEMM to at least 256 columns, keeping the column buffer under 16 MB and two or
        // more sub-batches to divide.
        while s * p < 256 && s * 4 <= g.n && s < 16 && g.kg * s * 2 * p <= (1 << 22) { s *= 2 }
        sub = s
        subBatches = (g.n + s - 1) / s
        chunks = convGradientChunks(subBatches: subBatches, gradientCount: g.o * g.kg)
    }

    @inline(__always) func images(_ s: Int) -> Range<Int> { (s * sub)..<min(n, (s + 1) * sub) }

    @inline(__always) func subBatches(inChunk c: Int) -> Range<Int> {
        (c * subBatches / chunks)..<((c + 1) * subBatches / chunks)
    }
}

/// The number of fixed image chunks that accumulate separate weight gradients: up to 8, fewer
/// when the per-chunk buffers would pass 64 MB. Depends on the shape only.
func convGradientChunks(subBatches: Int, gradientCount: Int) -> Int {
    var chunks = min(subBatches, 8)
    while chunks > 1 && chunks * gradientCount > (1 << 24) { chunks /= 2 }
    return chunks
}

/// Runs `body(worker, workers)` once per worker, where `workers = min(threadCount, units)`.
/// Each worker takes units `worker, worker + workers, …`.
///
/// Kernels decide by shape alone between two modes: with two or more units each unit's GEMMs
/// are single OpenBLAS calls inside a worker (`convGemm(parallel: false)`); with one unit the
/// body runs once and its GEMMs and transforms are split across threads (`gemm` cuts by shape).
/// Either way every GEMM call has a shape fixed by the problem, so results do not depend on the
/// thread count.
@inline(__always)
func forEachWorker(units: Int, _ body: (_ worker: Int, _ workers: Int) -> Void) {
    let workers = max(1, min(Parallel.threadCount, units))
    Parallel.run(chunks: workers) { w in body(w, workers) }
}

/// A GEMM of a convolution kernel: one unsplit single-threaded OpenBLAS call inside a worker, or
/// the engine's shape-split parallel `gemm` when the kernel has a single unit of work.
@inline(__always)
func convGemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
              b: UnsafePointer<Float>, ldb: Int, beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, parallel: Bool) {
    if parallel {
        gemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    } else if m > 0 && n > 0 {
        _ = blasSetup
        sgemmCall(transA, transB, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
    }
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

/// One output plane of a depthwise correlation: out[oh][ow] = bias + Σ pad[oh·sh + ki·dh][ow·sw + kj·dw]·k[ki][kj]
/// over a zero-padded input plane with rows of length `wp`, 8 outputs at a time.
@inline(__always)
func depthwisePlane(_ pad: UnsafePointer<Float>, wp: Int, _ k: UnsafePointer<Float>, kh: Int, kw: Int,
                    dh: Int, dw: Int, sh: Int, sw: Int, oh: Int, ow: Int, bias: Float,
                    _ out: UnsafeMutablePointer<Float>) {
    let bv = splat(bias)
    if kh == 3 && kw == 3 && sw == 1 {
        // The common case with the nine weights held in registers.
        let w0 = splat(k[0]), w1 = splat(k[1]), w2 = splat(k[2]), w3 = splat(k[3]), w4 = splat(k[4])
        let w5 = splat(k[5]), w6 = splat(k[6]), w7 = splat(k[7]), w8 = splat(k[8])
        let d1 = dw, d2 = 2 * dw
        for y in 0..<oh {
            let r0 = pad + y * sh * wp, r1 = r0 + dh * wp, r2 = r1 + dh * wp
            let orow = out + y * ow
            var j = 0
            while j + 8 <= ow {
                var acc = bv.addingProduct(load8(r0 + j), w0)
                acc = acc.addingProduct(load8(r0 + j + d1), w1)
                acc = acc.addingProduct(load8(r0 + j + d2), w2)
                acc = acc.addingProduct(load8(r1 + j), w3)
                acc = acc.addingProduct(load8(r1 + j + d1), w4)
                acc = acc.addingProduct(load8(r1 + j + d2), w5)
                acc = acc.addingProduct(load8(r2 + j), w6)
                acc = acc.addingProduct(load8(r2 + j + d1), w7)
                acc = acc.addingProduct(load8(r2 + j + d2), w8)
                store8(acc, orow + j)
                j += 8
            }
            while j < ow {
                var acc = bias
                for ki in 0..<3 {
                    let r = r0 + ki * dh * wp + j
                    for kj in 0..<3 { acc += r[kj * dw] * k[ki * 3 + kj] }
                }
                orow[j] = acc
                j += 1
            }
        }
        return
    }
    for y in 0..<oh {
        let orow = out + y * ow
        let base = pad + y * sh * wp
        var j = 0
        if sw == 1 {
            while j + 8 <= ow {
                var acc = bv
                for ki in 0..<kh {
                    let r = base + ki * dh * wp + j
                    for kj in 0..<kw { acc = acc.addingProduct(load8(r + kj * dw), splat(k[ki * kw + kj])) }
                }
                store8(acc, orow + j)
                j += 8
            }
        } else {
            while j + 8 <= ow {
                var acc = bv
                for ki in 0..<kh {
                    let r = base + ki * dh * wp + j * sw
                    for kj in 0..<kw { acc = acc.addingProduct(loadStrided8(r + kj * dw, sw), splat(k[ki * kw + kj])) }
                }
                store8(acc, orow + j)
                j += 8
            }
        }
        while j < ow {
            var acc = bias
            for ki in 0..<kh {
                let r = base + ki * dh * wp + j * sw
                for kj in 0..<kw { acc += r[kj * dw] * k[ki * kw + kj] }
            }
            orow[j] = acc
            j += 1
        }
    }
}

func depthwiseForward(_ px: UnsafePointer<Float>, _ pw: UnsafePointer<Float>, _ pb: UnsafePointer<Float>?,
                      _ g: Conv2dGeometry, _ py: UnsafeMutablePointer<Float>) {
    let planes = g.n * g.c
    if planes == 0 { return }
    let wp = g.w + 2 * g.pw
    let kk = g.kh * g.kw
    forEachWorker(units: planes) { worker, workers in
        let padStore = Storage(zeroed: paddedPlaneCount(g))
        let pad = padStore.pointer
        var p = worker
        while p < planes {
            let ch = p % g.c
            copyIntoPadded(px + p * g.plane, g, pad)
            depthwisePlane(pad, wp: wp, pw + ch * kk, kh: g.kh, kw: g.kw, dh: g.dh, dw: g.dw, sh: g.sh, sw: g.sw,
                           oh: g.oh, ow: g.ow, bias: pb?[ch] ?? 0, py + p * g.pixels)
            p += workers
        }
        withExtendedLifetime(padStore) {}
    }
}

/// Depthwise gradients, one channel per task: each channel's weight gradient sums images in order.
///
/// The input gradient is a correlation of the rotated kernel with the output gradient, zero-padded
/// and (for strides > 1) zero-dilated, so it runs on the vector forward kernel; only padding wider
/// than the kernel's reach falls back to scattering into a padded plane.
func depthwiseBackward(_ pg: UnsafePointer<Float>, _ px: UnsafePointer<Float>, _ pw: UnsafePointer<Float>,
                       _ g: Conv2dGeometry, _ gx: UnsafeMutablePointer<Float>?, _ gw: UnsafeMutablePointer<Float>?) {
    let wp = g.w + 2 * g.pw
    let kk = g.kh * g.kw
    let OW = g.ow, sw = g.sw
    // Output-gradient padding that turns the input gradient into a correlation. Output-gradient
    // element (y, x) sits at (padTop + y·sh, padLeft + x·sw); the rest of the plane stays zero.
    let padTop = (g.kh - 1) * g.dh - g.ph, padLeft = (g.kw - 1) * g.dw - g.pw
    let correlate = padTop >= 0 && padLeft >= 0
    let gph = g.h + (g.kh - 1) * g.dh, gpw = g.w + (g.kw - 1) * g.dw
    let gpadCount = correlate ? gph * gpw + 16 : paddedPlaneCount(g)
    forEachWorker(units: g.c) { worker, workers in
        let xpadStore = Storage(zeroed: paddedPlaneCount(g))
        let gpadStore = Storage(zeroed: gpadCount)
        let flipStore = Storage(count: kk)
        let xpad = xpadStore.pointer, gpad = gpadStore.pointer, flipped = flipStore.pointer
        let total = UnsafeMutablePointer<Double>.allocate(capacity: kk)
        var ch = worker
        while ch < g.c {
            let wk = pw + ch * kk
            for k in 0..<kk { flipped[k] = wk[kk - 1 - k] }
            total.initialize(repeating: 0, count: kk)
            for img in 0..<g.n {
                let p = img * g.c + ch
                let gy = pg + p * g.pixels
                if gw != nil {
                    copyIntoPadded(px + p * g.plane, g, xpad)
                    // dW[k] += Σ gy · (input shifted by tap k)
                    for ki in 0..<g.kh {
                        for kj in 0..<g.kw {
                            var acc = V8()
                            var tail: Float = 0
                            for oh in 0..<g.oh {
                                let grow = gy + oh * OW
                                let xrow = xpad + (oh * g.sh + ki * g.dh) * wp + kj * g.dw
                                var j = 0
                                while j + 8 <= OW {
                                    acc = acc.addingProduct(load8(grow + j), loadStrided8(xrow + j * sw, sw))
                                    j += 8
                                }
                                while j < OW { tail += grow[j] * xrow[j * sw]; j += 1 }
                            }
                            total[ki * g.kw + kj] += Double(acc.sum() + tail)
                        }
                    }
                }
                guard let gx else { continue }
                let dst = gx + p * g.plane
                if correlate {
                    for y in 0..<g.oh {
                        let row = gpad + (padTop + y * g.sh) * gpw + padLeft
                        if sw == 1 { copyFloats(gy + y * OW, row, OW) } else { for x in 0..<OW { row[x * sw] = gy[y * OW + x] } }
                    }
                    depthwisePlane(gpad, wp: gpw, flipped, kh: g.kh, kw: g.kw, dh: g.dh, dw: g.dw, sh: 1, sw: 1,
                                   oh: g.h, ow: g.w, bias: 0, dst)
                } else {
                    gpad.initialize(repeating: 0, count: gpadCount)
                    for oh in 0..<g.oh {
                        for ow in 0..<OW {
                            let v = gy[oh * OW + ow]
                            let base = gpad + oh * g.sh * wp + ow * sw
                            for ki in 0..<g.kh {
                                for kj in 0..<g.kw { base[ki * g.dh * wp + kj * g.dw] += v * wk[ki * g.kw + kj] }
                            }
                        }
                    }
                    for ih in 0..<g.h { copyFloats(gpad + (ih + g.ph) * wp + g.pw, dst + ih * g.w, g.w) }
                }
            }
            if let gw { for k in 0..<kk { gw[ch * kk + k] = Float(total[k]) } }
            ch += workers
        }
        total.deallocate()
        withExtendedLifetime((xpadStore, gpadStore, flipStore)) {}
    }
}

// MARK: - Winograd F(2×2, 3×3)
//
// For 3×3, stride 1, undilated, ungrouped convolutions (most of a ResNet's arithmetic) the output
// is computed in 2×2 tiles from 4×4 input tiles: Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A. The element-wise
// products of all tiles become 16 GEMMs [outC, inC]·[inC, tiles], 2.25× fewer multiplications
// than im2col. The transforms only add, subtract and halve, so rounding stays at im2col's level.
//
// Backward: the input gradient is the same algorithm applied to the output gradient with the
// kernel rotated 180° and in/out channels swapped (padding 2 − p); the weight gradient is
// Gᵀ[Σ_tiles (A dY Aᵀ) ⊙ (Bᵀ d B)]G, the exact adjoint of the forward transform, accumulated per
// fixed chunk of images like the im2col path.

/// Test hook: lets tests compare the Winograd kernels with the im2col ones.
enum ConvolutionAlgorithms {
    nonisolated(unsafe) static var winogradEnabled = true
}

extension Conv2dGeometry {
    /// Whether the Winograd kernels apply (and pay off) for this convolution.
    var usesWinograd: Bool {
        ConvolutionAlgorithms.winogradEnabled && kh == 3 && kw == 3 && sh == 1 && sw == 1 && dh == 1 && dw == 1
            && groups == 1 && ph <= 2 && pw <= 2 && c >= 16 && o >= 16 && oh >= 2 && ow >= 7
    }
}

/// Sizes of one Winograd convolution (input [n, c, h, w] → output [n, o, oh, ow]).
struct WinogradShape {
    let n: Int, c: Int, h: Int, w: Int, o: Int, ph: Int, pw: Int
    let oh: Int, ow: Int
    /// Tile rows and columns (2×2 outputs each).
    let th: Int, tw: Int
    /// Zero-padded input plane, stored as its even and its odd columns (two hp × wpe planes) so
    /// every tile's 4 columns are contiguous loads: rows, columns per half.
    let hp: Int, wpe: Int
    /// Padded output-gradient plane (also split into even and odd columns): columns per half.
    let wge: Int
    let sub: Int, subBatches: Int, chunks: Int

    var tiles: Int { th * tw }

    init(n: Int, c: Int, h: Int, w: Int, o: Int, ph: Int, pw: Int) {
        self.n = n; self.c = c; self.h = h; self.w = w; self.o = o; self.ph = ph; self.pw = pw
        oh = h + 2 * ph - 2
        ow = w + 2 * pw - 2
        th = (oh + 1) / 2
        tw = (ow + 1) / 2
        let blocks = (tw + 7) / 8
        hp = 2 * th + 2
        wpe = Swift.max(8 * blocks + 8, (w + pw) / 2 + 1)
        wge = 8 * blocks + 8
        let t = th * tw
        var s = 1
        // Aim for GEMMs at least 384 columns wide, but keep two or more sub-batches to divide.
        while s * t < 384 && s * 4 <= n && 16 * Swift.max(c, o) * s * 2 * t <= (1 << 22) { s *= 2 }
        sub = s
        subBatches = (n + s - 1) / s
        chunks = convGradientChunks(subBatches: subBatches, gradientCount: 16 * o * c)
    }

    @inline(__always) func images(_ s: Int) -> Range<Int> { (s * sub)..<Swift.min(n, (s + 1) * sub) }
    @inline(__always) func subBatches(inChunk ch: Int) -> Range<Int> {
        (ch * subBatches / chunks)..<((ch + 1) * subBatches / chunks)
    }
    var padCount: Int { 2 * hp * wpe }
    var gradPadCount: Int { 2 * 2 * th * wge }
    /// Row length of the transformed matrices for a sub-batch of `images` images: the tile
    /// columns plus 8 so that every 8-tile block may be stored whole (the spare lanes of a
    /// row's last block land in the next image's columns, written afterwards, or in the padding).
    @inline(__always) func rowLength(images: Int) -> Int { images * tiles + 8 }
    /// Floats of one transformed [16][rows][rowLength] buffer.
    func matrixCount(rows: Int) -> Int { 16 * rows * rowLength(images: sub) }
}

/// Writes a, b interleaved (a0 b0 a1 b1 …) to `n` ≤ 16 floats at p.
@inline(__always)
func storeInterleaved(_ a: V8, _ b: V8, _ p: UnsafeMutablePointer<Float>, _ n: Int) {
    let lo = V8(a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3])
    let hi = V8(a[4], b[4], a[5], b[5], a[6], b[6], a[7], b[7])
    if n == 16 {
        store8(lo, p)
        store8(hi, p + 8)
    } else {
        for l in 0..<Swift.min(n, 8) { p[l] = lo[l] }
        if n > 8 { for l in 0..<(n - 8) { p[8 + l] = hi[l] } }
    }
}

/// Copies n floats to padded columns `offset ..< offset + n` of a row stored as even columns
/// (`even[c / 2]`) and odd columns (`odd[c / 2]`).
@inline(__always)
func deinterleaveRow(_ src: UnsafePointer<Float>, _ n: Int, offset: Int,
                     _ even: UnsafeMutablePointer<Float>, _ odd: UnsafeMutablePointer<Float>) {
    var k = 0
    if offset & 1 == 1, n > 0 { odd[offset >> 1] = src[0]; k = 1 }
    // From here padded column offset + k is even.
    while k + 16 <= n {
        let a = load8(src + k), b = load8(src + k + 8)
        let h = (offset + k) >> 1
        store8(V8(a[0], a[2], a[4], a[6], b[0], b[2], b[4], b[6]), even + h)
        store8(V8(a[1], a[3], a[5], a[7], b[1], b[3], b[5], b[7]), odd + h)
        k += 16
    }
    while k < n {
        let c = offset + k
        if c & 1 == 0 { even[c >> 1] = src[k] } else { odd[c >> 1] = src[k] }
        k += 1
    }
}

/// Bᵀ d B of every tile of one padded input plane (even/odd column halves, see
/// `WinogradShape.wpe`); element ξ of tile t goes to dst[ξ·xiStride + t].
/// Stores whole 8-tile blocks (see `WinogradShape.rowLength`).
func winogradInputTransform(_ pad: UnsafePointer<Float>, _ s: WinogradShape, _ dst: UnsafeMutablePointer<Float>, xiStride: Int) {
    let we = s.wpe, tw = s.tw
    let even = pad, odd = pad + s.hp * we
    for ty in 0..<s.th {
        var tx = 0
        while tx < tw {
            // Columns 2tx … 2tx+3 of padded row 2ty + r, for 8 tiles.
            @inline(__always) func quad(_ r: Int) -> (V8, V8, V8, V8) {
                let off = (2 * ty + r) * we + tx
                return (load8(even + off), load8(odd + off), load8(even + off + 1), load8(odd + off + 1))
            }
            let d0 = quad(0), d1 = quad(1), d2 = quad(2), d3 = quad(3)
            let p = dst + ty * tw + tx
            // Row i of t = Bᵀ d, then V row i = t_i B.
            @inline(__always) func row(_ i: Int, _ a: V8, _ b: V8, _ c: V8, _ d: V8) {
                let q = p + 4 * i * xiStride
                store8(a - c, q)
                store8(b + c, q + xiStride)
                store8(c - b, q + 2 * xiStride)
                store8(b - d, q + 3 * xiStride)
            }
            row(0, d0.0 - d2.0, d0.1 - d2.1, d0.2 - d2.2, d0.3 - d2.3)
            row(1, d1.0 + d2.0, d1.1 + d2.1, d1.2 + d2.2, d1.3 + d2.3)
            row(2, d2.0 - d1.0, d2.1 - d1.1, d2.2 - d1.2, d2.3 - d1.3)
            row(3, d1.0 - d3.0, d1.1 - d3.1, d1.2 - d3.2, d1.3 - d3.3)
            tx += 8
        }
    }
}

/// Aᵀ m A of every tile (element ξ of tile t at m[ξ·xiStride + t]) plus `bias`, into an oh×ow plane.
func winogradOutputTransform(_ m: UnsafePointer<Float>, _ s: WinogradShape, xiStride: Int, bias: Float,
                             _ out: UnsafeMutablePointer<Float>) {
    let tw = s.tw, OW = s.ow, OH = s.oh
    let bv = splat(bias)
    for ty in 0..<s.th {
        var tx = 0
        while tx < tw {
            let base = m + ty * tw + tx
            // One column j of Aᵀ m, then the two rows times A.
            @inline(__always) func column(_ j: Int) -> (V8, V8) {
                let m0 = load8(base + j * xiStride), m1 = load8(base + (4 + j) * xiStride)
                let m2 = load8(base + (8 + j) * xiStride), m3 = load8(base + (12 + j) * xiStride)
                return (m0 + m1 + m2, m1 - m2 - m3)
            }
            let q0 = column(0), q1 = column(1), q2 = column(2), q3 = column(3)
            let y00 = q0.0 + q1.0 + q2.0 + bv, y01 = q1.0 - q2.0 - q3.0 + bv
            let y10 = q0.1 + q1.1 + q2.1 + bv, y11 = q1.1 - q2.1 - q3.1 + bv
            let col = 2 * tx
            let n = Swift.min(16, OW - col)
            storeInterleaved(y00, y01, out + 2 * ty * OW + col, n)
            if 2 * ty + 1 < OH { storeInterleaved(y10, y11, out + (2 * ty + 1) * OW + col, n) }
            tx += 8
        }
    }
}

/// A dY Aᵀ of every 2×2 output-gradient tile of one padded plane (2·th rows, even/odd column
/// halves of `wge` columns). Stores whole 8-tile blocks.
func winogradGradOutputTransform(_ gpad: UnsafePointer<Float>, _ s: WinogradShape, _ dst: UnsafeMutablePointer<Float>, xiStride: Int) {
    let we = s.wge, tw = s.tw
    let even = gpad, odd = gpad + 2 * s.th * we
    for ty in 0..<s.th {
        let r0 = 2 * ty * we, r1 = r0 + we
        var tx = 0
        while tx < tw {
            let g00 = load8(even + r0 + tx), g01 = load8(odd + r0 + tx)
            let g10 = load8(even + r1 + tx), g11 = load8(odd + r1 + tx)
            let p = dst + ty * tw + tx
            // Rows of A·g: g0, g0 + g1, g0 − g1, −g1 (two columns each), then the same on columns.
            @inline(__always) func row(_ i: Int, _ a: V8, _ b: V8) {
                let q = p + 4 * i * xiStride
                store8(a, q)
                store8(a + b, q + xiStride)
                store8(a - b, q + 2 * xiStride)
                store8(V8() - b, q + 3 * xiStride)
            }
            row(0, g00, g01)
            row(1, g00 + g10, g01 + g11)
            row(2, g00 - g10, g01 - g11)
            row(3, V8() - g10, V8() - g11)
            tx += 8
        }
    }
}

/// U[ξ][a][b] = (G g Gᵀ)[ξ] for the 3×3 kernel g of weight [o, c, 3, 3]: a = output, b = input
/// channel; with `flip`, the kernel rotated 180° with a = input, b = output channel (the
/// input-gradient convolution).
func winogradWeights(_ pw: UnsafePointer<Float>, o: Int, c: Int, flip: Bool) -> Storage {
    let u = Storage(count: 16 * o * c)
    let pu = u.pointer
    let rows = flip ? c : o, cols = flip ? o : c
    let plane = rows * cols
    // Rows of U in the outer loop, columns inner, so the 16 output planes are written sequentially.
    Parallel.forRange(rows, grain: Swift.max(1, 4096 / Swift.max(cols, 1))) { r in
        for a in r {
            for b in 0..<cols {
                let oc = flip ? b : a, ic = flip ? a : b
                let k = pw + (oc * c + ic) * 9
                let g0: SIMD4<Float>, g1: SIMD4<Float>, g2: SIMD4<Float>
                if flip {
                    g0 = SIMD4(k[8], k[7], k[6], 0); g1 = SIMD4(k[5], k[4], k[3], 0); g2 = SIMD4(k[2], k[1], k[0], 0)
                } else {
                    g0 = SIMD4(k[0], k[1], k[2], 0); g1 = SIMD4(k[3], k[4], k[5], 0); g2 = SIMD4(k[6], k[7], k[8], 0)
                }
                let half = SIMD4<Float>(repeating: 0.5)
                // t = G g (rows), then each row · Gᵀ.
                let t0 = g0, t1 = half * (g0 + g1 + g2), t2 = half * (g0 - g1 + g2), t3 = g2
                let dst = pu + a * cols + b
                @inline(__always) func row(_ i: Int, _ t: SIMD4<Float>) {
                    dst[(4 * i) * plane] = t[0]
                    dst[(4 * i + 1) * plane] = 0.5 * (t[0] + t[1] + t[2])
                    dst[(4 * i + 2) * plane] = 0.5 * (t[0] - t[1] + t[2])
                    dst[(4 * i + 3) * plane] = t[2]
                }
                row(0, t0); row(1, t1); row(2, t2); row(3, t3)
            }
        }
    }
    return u
}

/// gW[o][c] = Gᵀ dU[o][c] G from dU laid out [ξ][o][c].
func winogradWeightGradient(_ du: UnsafePointer<Float>, o: Int, c: Int, _ gw: UnsafeMutablePointer<Float>) {
    let plane = o * c
    Parallel.forRange(o, grain: Swift.max(1, 4096 / Swift.max(c, 1))) { r in
        for oc in r {
            for ic in 0..<c {
                let src = du + oc * c + ic
                @inline(__always) func mrow(_ i: Int) -> SIMD4<Float> {
                    SIMD4(src[(4 * i) * plane], src[(4 * i + 1) * plane], src[(4 * i + 2) * plane], src[(4 * i + 3) * plane])
                }
                let m0 = mrow(0), m1 = mrow(1), m2 = mrow(2), m3 = mrow(3)
                let half = SIMD4<Float>(repeating: 0.5)
                // t = Gᵀ m (rows), then each row · G.
                let t0 = m0 + half * (m1 + m2), t1 = half * (m1 - m2), t2 = half * (m1 + m2) + m3
                let dst = gw + (oc * c + ic) * 9
                @inline(__always) func row(_ i: Int, _ t: SIMD4<Float>) {
                    dst[i * 3] = t[0] + 0.5 * (t[1] + t[2])
                    dst[i * 3 + 1] = 0.5 * (t[1] - t[2])
                    dst[i * 3 + 2] = 0.5 * (t[1] + t[2]) + t[3]
                }
                row(0, t0); row(1, t1); row(2, t2)
            }
        }
    }
}

/// Runs `body(range, padBuffer)` over `0..<count` channels: whole in this thread, or split over
/// the workers (each with its own scratch plane) when `parallel`.
@inline(__always)
func winogradChannels(_ count: Int, padCount: Int, scratch: UnsafeMutablePointer<Float>, parallel: Bool,
                      _ body: (Range<Int>, UnsafeMutablePointer<Float>) -> Void) {
    if parallel && Parallel.threadCount > 1 && count > 1 {
        Parallel.forRange(count, grain: 1) { r in
            let store = Storage(zeroed: padCount)
            body(r, store.pointer)
            withExtendedLifetime(store) {}
        }
    } else {
        body(0..<count, scratch)
    }
}

/// Transforms channels of one image of [*, c, h, w] into V (column offset applied by the caller).
@inline(__always)
func winogradTransformImage(_ src: UnsafePointer<Float>, _ s: WinogradShape, channels: Range<Int>,
                            _ pad: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>, ld: Int) {
    let xiStride = s.c * ld
    for ch in channels {
        let plane = src + ch * s.h * s.w
        let odd = pad + s.hp * s.wpe
        for ih in 0..<s.h {
            let r = (ih + s.ph) * s.wpe
            deinterleaveRow(plane + ih * s.w, s.w, offset: s.pw, pad + r, odd + r)
        }
        winogradInputTransform(pad, s, v + ch * ld, xiStride: xiStride)
    }
}

/// Winograd forward over a batch: input px [n, c, h, w], transformed weights u [16][o][c].
func winogradForward(_ px: UnsafePointer<Float>, _ u: UnsafePointer<Float>, _ pb: UnsafePointer<Float>?,
                     _ s: WinogradShape, _ py: UnsafeMutablePointer<Float>) {
    if s.subBatches == 0 { return }
    let T = s.tiles
    let inner = s.subBatches == 1
    forEachWorker(units: s.subBatches) { worker, workers in
        // Zeroed so the spare lanes of partial blocks always hold finite values.
        let vStore = Storage(zeroed: s.matrixCount(rows: s.c)), mStore = Storage(zeroed: s.matrixCount(rows: s.o))
        let padStore = Storage(zeroed: s.padCount)
        let v = vStore.pointer, m = mStore.pointer
        var sb = worker
        while sb < s.subBatches {
            let images = s.images(sb)
            let cols = images.count * T, ld = s.rowLength(images: images.count)
            for (i, img) in images.enumerated() {
                let src = px + img * s.c * s.h * s.w
                winogradChannels(s.c, padCount: s.padCount, scratch: padStore.pointer, parallel: inner) { r, pad in
                    winogradTransformImage(src, s, channels: r, pad, v + i * T, ld: ld)
                }
            }
            for xi in 0..<16 {
                convGemm(transA: false, transB: false, m: s.o, n: cols, k: s.c, a: u + xi * s.o * s.c, lda: s.c,
                     b: v + xi * s.c * ld, ldb: ld, c: m + xi * s.o * ld, ldc: ld, parallel: inner)
            }
            let outPlane = s.oh * s.ow
            for (i, img) in images.enumerated() {
                let body: (Range<Int>) -> Void = { r in
                    for oc in r {
                        winogradOutputTransform(m + oc * ld + i * T, s, xiStride: s.o * ld, bias: pb?[oc] ?? 0,
                                                py + (img * s.o + oc) * outPlane)
                    }
                }
                if inner { Parallel.forRange(s.o, grain: 1, body) } else { body(0..<s.o) }
            }
            sb += workers
        }
        withExtendedLifetime((vStore, mStore, padStore)) {}
    }
}

/// Winograd backward: input gradient via the rotated-kernel convolution, weight gradient via the
/// transposed transforms accumulated in fixed chunks.
func winogradBackward(_ pg: UnsafePointer<Float>, _ px: UnsafePointer<Float>, _ pw: UnsafePointer<Float>,
                      _ g: Conv2dGeometry, _ gx: UnsafeMutablePointer<Float>?, _ gw: UnsafeMutablePointer<Float>?) {
    if let gx {
        let s = WinogradShape(n: g.n, c: g.o, h: g.oh, w: g.ow, o: g.c, ph: 2 - g.ph, pw: 2 - g.pw)
        let u = winogradWeights(pw, o: g.o, c: g.c, flip: true)
        winogradForward(pg, u.pointer, nil, s, gx)
        withExtendedLifetime(u) {}
    }
    guard let gw else { return }
    let s = WinogradShape(n: g.n, c: g.c, h: g.h, w: g.w, o: g.o, ph: g.ph, pw: g.pw)
    let uCount = 16 * g.o * g.c
    if s.subBatches == 0 {
        gw.initialize(repeating: 0, count: g.o * g.c * 9)
        return
    }
    let T = s.tiles
    let duStore = Storage(count: s.chunks * uCount)
    let du = duStore.pointer
    let inner = s.chunks == 1
    forEachWorker(units: s.chunks) { worker, workers in
        let vStore = Storage(zeroed: s.matrixCount(rows: s.c)), gyStore = Storage(zeroed: s.matrixCount(rows: s.o))
        let padStore = Storage(zeroed: s.padCount), gpadStore = Storage(zeroed: s.gradPadCount)
        let v = vStore.pointer, gy = gyStore.pointer
        var chunk = worker
        while chunk < s.chunks {
            let acc = du + chunk * uCount
            var first = true
            for sb in s.subBatches(inChunk: chunk) {
                let images = s.images(sb)
                let cols = images.count * T, ld = s.rowLength(images: images.count)
                for (i, img) in images.enumerated() {
                    let src = px + img * s.c * s.h * s.w
                    winogradChannels(s.c, padCount: s.padCount, scratch: padStore.pointer, parallel: inner) { r, pad in
                        winogradTransformImage(src, s, channels: r, pad, v + i * T, ld: ld)
                    }
                    let gsrc = pg + img * s.o * s.oh * s.ow
                    winogradChannels(s.o, padCount: s.gradPadCount, scratch: gpadStore.pointer, parallel: inner) { r, gpad in
                        for oc in r {
                            let plane = gsrc + oc * s.oh * s.ow
                            let odd = gpad + 2 * s.th * s.wge
                            for y in 0..<s.oh { deinterleaveRow(plane + y * s.ow, s.ow, offset: 0, gpad + y * s.wge, odd + y * s.wge) }
                            winogradGradOutputTransform(gpad, s, gy + oc * ld + i * T, xiStride: s.o * ld)
                        }
                    }
                }
                for xi in 0..<16 {
                    convGemm(transA: false, transB: true, m: s.o, n: s.c, k: cols, a: gy + xi * s.o * ld, lda: ld,
                         b: v + xi * s.c * ld, ldb: ld, beta: first ? 0 : 1, c: acc + xi * s.o * s.c, ldc: s.c, parallel: inner)
                }
                first = false
            }
            chunk += workers
        }
        withExtendedLifetime((vStore, gyStore, padStore, gpadStore)) {}
    }
    if s.chunks > 1 {
        let chunks = s.chunks
        Parallel.forRange(uCount, grain: 16384) { r in
            let lo = r.lowerBound, len = r.count
            for ch in 1..<chunks { zip8(du + lo, du + ch * uCount + lo, du + lo, len) { $0 + $1 } }
        }
    }
    winogradWeightGradient(du, o: g.o, c: g.c, gw)
    withExtendedLifetime(duStore) {}
}
