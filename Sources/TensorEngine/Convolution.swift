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
