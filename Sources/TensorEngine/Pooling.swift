import Foundation

// MARK: - 2-D pooling
//
// NCHW input (or unbatched [C, H, W]), PyTorch semantics in floor mode. Every kernel works on one
// (image, channel) plane at a time and planes are divided between workers, so each output and
// each input-gradient element is computed by one thread in a fixed order: results do not depend
// on the thread count.

/// Input viewed as planes: [N·C, H, W], with the output shape to give back.
struct PoolPlanes {
    let planes: Int, h: Int, w: Int
    let lead: [Int]          // N, C (or just C when unbatched)
}

func poolPlanes(_ x: Tensor, op: String) throws -> PoolPlanes {
    try check(x.rank == 3 || x.rank == 4, op, "input must be [N, C, H, W] or [C, H, W], got \(shapeString(x.shape))")
    let h = x.shape[x.rank - 2], w = x.shape[x.rank - 1]
    try check(h > 0 && w > 0, op, "input \(shapeString(x.shape)) has an empty spatial dimension")
    let lead = Array(x.shape.dropLast(2))
    return PoolPlanes(planes: lead.reduce(1, *), h: h, w: w, lead: lead)
}

/// Validates a pooling window and returns the output size.
func poolWindow(_ x: Tensor, _ p: PoolPlanes, kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int), op: String) throws -> (Int, Int) {
    try require(kernel.0 > 0 && kernel.1 > 0, op, "kernel size must be positive, got (\(kernel.0), \(kernel.1))")
    try require(stride.0 > 0 && stride.1 > 0, op, "stride must be positive, got (\(stride.0), \(stride.1))")
    try require(padding.0 >= 0 && padding.1 >= 0, op, "padding must be non-negative, got (\(padding.0), \(padding.1))")
    try require(padding.0 <= kernel.0 / 2 && padding.1 <= kernel.1 / 2, op,
                "padding (\(padding.0), \(padding.1)) must be at most half of the kernel size (\(kernel.0), \(kernel.1))")
    let oh = slidingOutputSize(p.h, kernel: kernel.0, stride: stride.0, padding: padding.0)
    let ow = slidingOutputSize(p.w, kernel: kernel.1, stride: stride.1, padding: padding.1)
    try check(oh > 0 && ow > 0, op,
              "output size would be \(oh)×\(ow): input \(shapeString(x.shape)) padded by (\(padding.0), \(padding.1)) is smaller than the kernel (\(kernel.0), \(kernel.1))")
    return (oh, ow)
}

/// Runs `body(plane)` for every plane, planes split between workers in contiguous ranges.
@inline(__always)
func forEachPlane(_ planes: Int, work: Int, _ body: (Int) -> Void) {
    Parallel.forRange(planes, grain: max(1, 32768 / max(work, 1))) { r in for p in r { body(p) } }
}

/// Owns the argmax indices of a max-pool forward pass until its backward pass has run.
final class PoolIndices {
    let pointer: UnsafeMutablePointer<Int32>
    init(count: Int) { pointer = .allocate(capacity: max(count, 1)) }
    deinit { pointer.deallocate() }
}

// MARK: - Max pooling

/// Max pooling like `torch.nn.functional.max_pool2d` (floor mode, no dilation): padding counts as
/// −∞, the gradient goes to the first position holding the window's maximum (NaN propagates).
/// `stride` defaults to the kernel size.
public func maxPool2d(_ x: Tensor, kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0)) throws -> Tensor {
    let op = "maxPool2d"
    let pp = try poolPlanes(x, op: op)
    let st = stride ?? kernel
    let (oh, ow) = try poolWindow(x, pp, kernel: kernel, stride: st, padding: padding, op: op)
    let H = pp.h, W = pp.w, kh = kernel.0, kw = kernel.1, sh = st.0, sw = st.1, ph = padding.0, pw = padding.1
    let xc = x.contiguousData()
    let out = Tensor(uninitialized: pp.lead + [oh, ow])
    let recording = needsGrad(x)
    let indices = PoolIndices(count: recording ? out.count : 0)
    let inPlane = H * W, outPlane = oh * ow
    withExtendedLifetime(xc) {
        let px = xc.data, po = out.data
        let pi: UnsafeMutablePointer<Int32>? = recording ? indices.pointer : nil
        forEachPlane(pp.planes, work: outPlane * kh * kw) { p in
            maxPoolPlane(px + p * inPlane, po + p * outPlane, pi.map { $0 + p * outPlane },
                         H, W, oh, ow, kh, kw, sh, sw, ph, pw)
        }
    }
    let planes = pp.planes
    return out.recorded("maxPool2d", [x]) { g in
        let gc = g.contiguousData()
        let gx = Tensor.zeros(x.shape)
        withExtendedLifetime((gc, indices)) {
            let pg = gc.data, pgx = gx.data, pi = indices.pointer
            forEachPlane(planes, work: outPlane) { p in
                let src = pg + p * outPlane, idx = pi + p * outPlane, dst = pgx + p * inPlane
                for i in 0..<outPlane { dst[Int(idx[i])] += src[i] }
            }
        }
        return [gx]
    }
}

/// One plane of max pooling; `idx` (when non-nil) receives the flat input index of each max.
@inline(__always)
func maxPoolPlane(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ idx: UnsafeMutablePointer<Int32>?,
                  _ H: Int, _ W: Int, _ OH: Int, _ OW: Int, _ kh: Int, _ kw: Int,
                  _ sh: Int, _ sw: Int, _ ph: Int, _ pw: Int) {
    // Output columns whose window lies inside the row: vectorised over 8 outputs.
    let (vlo, vhi) = validColumns(start: -pw, stride: sw, count: OW, limit: W - kw + 1)
    let laneOffsets = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7) &* SIMD8<Int32>(repeating: Int32(sw))
    for oh in 0..<OH {
        let hs0 = oh * sh - ph
        let hs = max(hs0, 0), he = min(hs0 + kh, H)
        let orow = dst + oh * OW
        let irow = idx.map { $0 + oh * OW }
        var j = 0
        // Scalar outputs (left border, right border and the remainder).
        @inline(__always) func scalarOutput(_ j: Int) {
            let ws0 = j * sw - pw
            let ws = max(ws0, 0), we = min(ws0 + kw, W)
            var best = -Float.infinity
            var bi = hs * W + ws
            for ih in hs..<he {
                let row = src + ih * W
                for iw in ws..<we {
                    let v = row[iw]
                    if v > best || v.isNaN { best = v; bi = ih * W + iw }
                }
            }
            orow[j] = best
            irow?[j] = Int32(bi)
        }
        while j < vlo { scalarOutput(j); j += 1 }
        while j + 8 <= vhi {
            let ws = j * sw - pw
            // The last lane reads up to ws + 7·sw + kw − 1 (+1 for the 16-wide stride-2 load).
            if sw == 2 && (he - 1) * W + ws + 14 + kw >= H * W { break }
            var best = V8(repeating: -Float.infinity)
            var bi = SIMD8<Int32>(repeating: Int32(hs * W + ws)) &+ laneOffsets
            for ih in hs..<he {
                let row = src + ih * W + ws
                let rowIndex = SIMD8<Int32>(repeating: Int32(ih * W + ws)) &+ laneOffsets
                for kj in 0..<kw {
                    let v = loadStrided8(row + kj, sw)
                    let take = (v .> best) .| (v .!= v)
                    best.replace(with: v, where: take)
                    bi.replace(with: rowIndex &+ SIMD8<Int32>(repeating: Int32(kj)), where: take)
                }
            }
            store8(best, orow + j)
            if let irow { UnsafeMutableRawPointer(irow + j).storeBytes(of: bi, as: SIMD8<Int32>.self) }
            j += 8
        }
        while j < OW { scalarOutput(j); j += 1 }
    }
}

// MARK: - Average pooling

/// Average pooling like `torch.nn.functional.avg_pool2d` (floor mode). With `countIncludePad`
/// the divisor is the whole window; without, only the window's elements inside the input.
/// `stride` defaults to the kernel size.
public func avgPool2d(_ x: Tensor, kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0),
                      countIncludePad: Bool = true) throws -> Tensor {
    let op = "avgPool2d"
    let pp = try poolPlanes(x, op: op)
    let st = stride ?? kernel
    let (oh, ow) = try poolWindow(x, pp, kernel: kernel, stride: st, padding: padding, op: op)
    let H = pp.h, W = pp.w, kh = kernel.0, kw = kernel.1, sh = st.0, sw = st.1, ph = padding.0, pw = padding.1
    let inPlane = H * W, outPlane = oh * ow
    // Window bounds for output index i along one axis: clipped range and divisor factor.
    func bounds(_ i: Int, _ s: Int, _ p: Int, _ k: Int, _ n: Int) -> (Int, Int, Int) {
        let start = i * s - p
        let end = min(start + k, n + p)
        let padded = end - start
        let lo = max(start, 0), hi = min(end, n)
        return (lo, hi, countIncludePad ? padded : hi - lo)
    }
    let rows = (0..<oh).map { bounds($0, sh, ph, kh, H) }
    let cols = (0..<ow).map { bounds($0, sw, pw, kw, W) }
    let xc = x.contiguousData()
    let out = Tensor(uninitialized: pp.lead + [oh, ow])
    withExtendedLifetime(xc) {
        let px = xc.data, po = out.data
        rows.withUnsafeBufferPointer { rb in
            cols.withUnsafeBufferPointer { cb in
                forEachPlane(pp.planes, work: outPlane * kh * kw) { p in
                    let src = px + p * inPlane, dst = po + p * outPlane
                    for i in 0..<oh {
                        let (h0, h1, hd) = rb[i]
                        for j in 0..<ow {
                            let (w0, w1, wd) = cb[j]
                            var s: Float = 0
                            for ih in h0..<h1 {
                                let row = src + ih * W
                                for iw in w0..<w1 { s += row[iw] }
                            }
                            dst[i * ow + j] = s / Float(hd * wd)
                        }
                    }
                }
            }
        }
    }
    let planes = pp.planes
    return out.recorded("avgPool2d", [x]) { g in
        let gc = g.contiguousData()
        let gx = Tensor.zeros(x.shape)
        withExtendedLifetime(gc) {
            let pg = gc.data, pgx = gx.data
            rows.withUnsafeBufferPointer { rb in
                cols.withUnsafeBufferPointer { cb in
                    forEachPlane(planes, work: outPlane * kh * kw) { p in
                        let src = pg + p * outPlane, dst = pgx + p * inPlane
                        for i in 0..<oh {
                            let (h0, h1, hd) = rb[i]
                            for j in 0..<ow {
                                let (w0, w1, wd) = cb[j]
                                let v = src[i * ow + j] / Float(hd * wd)
                                for ih in h0..<h1 {
                                    let row = dst + ih * W
                                    for iw in w0..<w1 { row[iw] += v }
                                }
                            }
                        }
                    }
                }
            }
        }
        return [gx]
    }
}

// MARK: - Adaptive average pooling

/// Adaptive average pooling like `torch.nn.functional.adaptive_avg_pool2d`: output cell i of
/// an axis averages input `floor(i·in/out) ..< ceil((i+1)·in/out)`.
public func adaptiveAvgPool2d(_ x: Tensor, outputSize: (Int, Int)) throws -> Tensor {
    let op = "adaptiveAvgPool2d"
    let pp = try poolPlanes(x, op: op)
    try require(outputSize.0 > 0 && outputSize.1 > 0, op,
                "output size must be positive, got (\(outputSize.0), \(outputSize.1))")
    let H = pp.h, W = pp.w, oh = outputSize.0, ow = outputSize.1
    let inPlane = H * W, outPlane = oh * ow
    func bins(_ out: Int, _ n: Int) -> [(Int, Int)] {
        (0..<out).map { i in ((i * n) / out, ((i + 1) * n + out - 1) / out) }
    }
    let rows = bins(oh, H), cols = bins(ow, W)
    let xc = x.contiguousData()
    let out = Tensor(uninitialized: pp.lead + [oh, ow])
    withExtendedLifetime(xc) {
        let px = xc.data, po = out.data
        rows.withUnsafeBufferPointer { rb in
            cols.withUnsafeBufferPointer { cb in
                forEachPlane(pp.planes, work: inPlane) { p in
                    let src = px + p * inPlane, dst = po + p * outPlane
                    for i in 0..<oh {
                        let (h0, h1) = rb[i]
                        for j in 0..<ow {
                            let (w0, w1) = cb[j]
                            var s: Float = 0
                            for ih in h0..<h1 { s += sum8(src + ih * W + w0, w1 - w0) }
                            dst[i * ow + j] = s / Float((h1 - h0) * (w1 - w0))
                        }
                    }
                }
            }
        }
    }
    let planes = pp.planes
    return out.recorded("adaptiveAvgPool2d", [x]) { g in
        let gc = g.contiguousData()
        let gx = Tensor.zeros(x.shape)
        withExtendedLifetime(gc) {
            let pg = gc.data, pgx = gx.data
            rows.withUnsafeBufferPointer { rb in
                cols.withUnsafeBufferPointer { cb in
                    forEachPlane(planes, work: inPlane) { p in
                        let src = pg + p * outPlane, dst = pgx + p * inPlane
                        for i in 0..<oh {
                            let (h0, h1) = rb[i]
                            for j in 0..<ow {
                                let (w0, w1) = cb[j]
                                let v = splat(src[i * ow + j] / Float((h1 - h0) * (w1 - w0)))
                                for ih in h0..<h1 {
                                    let row = dst + ih * W + w0
                                    map8(row, row, w1 - w0) { $0 + v }
                                }
                            }
                        }
                    }
                }
            }
        }
        return [gx]
    }
}
