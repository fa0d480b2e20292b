import Foundation

// MARK: - 2-D pooling
//
// NCHW input (or unbatched [C, H, W]), PyTorch semantics in floor mode (no ceil_mode, no
// dilation, no divisor_override; padding at most half the kernel, as PyTorch requires). Every kernel works on one
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

/// Runs `body` on contiguous ranges of planes, split between workers (each plane is handled by
/// exactly one call, so per-plane results do not depend on the split).
@inline(__always)
func forEachPlane(_ planes: Int, work: Int, _ body: (Range<Int>) -> Void) {
    Parallel.forRange(planes, grain: max(1, 32768 / max(work, 1)), body)
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
    try require(H * W <= Int(Int32.max), op, "input planes of \(H)×\(W) are too large for 32-bit argmax indices")
    let xc = x.contiguousData()
    let out = Tensor(uninitialized: pp.lead + [oh, ow])
    let recording = needsGrad(x)
    let indices = PoolIndices(count: recording ? out.count : 0)
    let inPlane = H * W, outPlane = oh * ow
    withExtendedLifetime(xc) {
        let px = xc.data, po = out.data
        let pi: UnsafeMutablePointer<Int32>? = recording ? indices.pointer : nil
        forEachPlane(pp.planes, work: outPlane * kh * kw) { r in
            for p in r {
                maxPoolPlane(px + p * inPlane, po + p * outPlane, pi.map { $0 + p * outPlane },
                             H, W, oh, ow, kh, kw, sh, sw, ph, pw)
            }
        }
    }
    let planes = pp.planes
    return out.recorded("maxPool2d", [x]) { g in
        let gc = g.contiguousData()
        let gx = Tensor(uninitialized: x.shape)
        withExtendedLifetime((gc, indices)) {
            let pg = gc.data, pgx = gx.data, pi = indices.pointer
            forEachPlane(planes, work: inPlane) { r in
                for p in r {
                    let src = pg + p * outPlane, idx = pi + p * outPlane, dst = pgx + p * inPlane
                    zeroFill(dst, inPlane)
                    for i in 0..<outPlane { dst[Int(idx[i])] += src[i] }
                }
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
        // Eight outputs from column j; false (nothing written) when the strided load would
        // read past the plane.
        @inline(__always) func vectorOutput(_ j: Int) -> Bool {
            let ws = j * sw - pw
            // The last lane reads up to ws + 7·sw + kw − 1 (+1 for the 16-wide stride-2 load).
            if sw == 2 && (he - 1) * W + ws + 14 + kw >= H * W { return false }
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
            return true
        }
        while j + 8 <= vhi, vectorOutput(j) { j += 8 }
        // The remainder of the valid columns as one more vector ending at vhi, overlapping
        // outputs already written (recomputed identically).
        if j < vhi, vhi - 8 >= vlo, j + 8 > vhi, vectorOutput(vhi - 8) { j = vhi }
        while j < OW { scalarOutput(j); j += 1 }
    }
}

// MARK: - Average pooling

/// One axis of an averaging window: input range `lo ..< hi` and this axis's factor of the divisor.
struct AverageBin {
    let lo: Int, hi: Int, divisor: Int
}

/// Window averages of every plane: out[i][j] = Σ x[rows[i]][cols[j]] / (rows[i].divisor · cols[j].divisor).
/// Rows of a window are first summed with vector adds, then each window sums its columns.
func windowAverageForward(_ px: UnsafePointer<Float>, _ po: UnsafeMutablePointer<Float>, planes: Int, h: Int, w: Int,
                          rows: [AverageBin], cols: [AverageBin]) {
    let oh = rows.count, ow = cols.count
    rows.withUnsafeBufferPointer { rb in
        cols.withUnsafeBufferPointer { cb in
            forEachPlane(planes, work: h * w) { range in
                let rowStore = Storage(count: w)
                let acc = rowStore.pointer
                for p in range {
                    let src = px + p * h * w, dst = po + p * oh * ow
                    for i in 0..<oh {
                        let r = rb[i]
                        if r.hi > r.lo {
                            copyFloats(src + r.lo * w, acc, w)
                            for ih in (r.lo + 1)..<r.hi { zip8(acc, src + ih * w, acc, w) { $0 + $1 } }
                        } else {
                            zeroFill(acc, w)
                        }
                        for j in 0..<ow {
                            let c = cb[j]
                            dst[i * ow + j] = sum8(acc + c.lo, c.hi - c.lo) / Float(r.divisor * c.divisor)
                        }
                    }
                }
                withExtendedLifetime(rowStore) {}
            }
        }
    }
}

/// The adjoint of `windowAverageForward`: each output gradient spreads evenly over its window
/// (each input element gathers its terms in a fixed order).
func windowAverageBackward(_ pg: UnsafePointer<Float>, _ pgx: UnsafeMutablePointer<Float>, planes: Int, h: Int, w: Int,
                           rows: [AverageBin], cols: [AverageBin]) {
    let oh = rows.count, ow = cols.count
    rows.withUnsafeBufferPointer { rb in
        cols.withUnsafeBufferPointer { cb in
            forEachPlane(planes, work: h * w) { range in
                let rowStore = Storage(count: w)
                let acc = rowStore.pointer
                for p in range {
                    let src = pg + p * oh * ow, dst = pgx + p * h * w
                    zeroFill(dst, h * w)
                    for i in 0..<oh {
                        let r = rb[i]
                        if r.hi <= r.lo { continue }
                        zeroFill(acc, w)
                        for j in 0..<ow {
                            let c = cb[j]
                            let v = splat(src[i * ow + j] / Float(r.divisor * c.divisor))
                            map8(acc + c.lo, acc + c.lo, c.hi - c.lo) { $0 + v }
                        }
                        for ih in r.lo..<r.hi { zip8(dst + ih * w, acc, dst + ih * w, w) { $0 + $1 } }
                    }
                }
                withExtendedLifetime(rowStore) {}
            }
        }
    }
}

/// Forward and backward of a window average over planes, recorded on the tape.
func windowAverage(_ x: Tensor, _ pp: PoolPlanes, rows: [AverageBin], cols: [AverageBin], name: String) -> Tensor {
    let xc = x.contiguousData()
    let out = Tensor(uninitialized: pp.lead + [rows.count, cols.count])
    withExtendedLifetime(xc) {
        windowAverageForward(xc.data, out.data, planes: pp.planes, h: pp.h, w: pp.w, rows: rows, cols: cols)
    }
    return out.recorded(name, [x]) { g in
        let gc = g.contiguousData()
        let gx = Tensor(uninitialized: x.shape)
        withExtendedLifetime(gc) {
            windowAverageBackward(gc.data, gx.data, planes: pp.planes, h: pp.h, w: pp.w, rows: rows, cols: cols)
        }
        return [gx]
    }
}

/// Average pooling like `torch.nn.functional.avg_pool2d` (floor mode). With `countIncludePad`
/// the divisor is the whole window; without, only the window's elements inside the input.
/// `stride` defaults to the kernel size.
public func avgPool2d(_ x: Tensor, kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0),
                      countIncludePad: Bool = true) throws -> Tensor {
    let op = "avgPool2d"
    let pp = try poolPlanes(x, op: op)
    let st = stride ?? kernel
    let (oh, ow) = try poolWindow(x, pp, kernel: kernel, stride: st, padding: padding, op: op)
    // Window of output index i along one axis (PyTorch: the padded window is clipped to n + p).
    func bins(_ count: Int, _ s: Int, _ p: Int, _ k: Int, _ n: Int) -> [AverageBin] {
        (0..<count).map { i in
            let start = i * s - p
            let end = min(start + k, n + p)
            let lo = max(start, 0), hi = min(end, n)
            return AverageBin(lo: lo, hi: hi, divisor: countIncludePad ? end - start : hi - lo)
        }
    }
    return windowAverage(x, pp, rows: bins(oh, st.0, padding.0, kernel.0, pp.h),
                         cols: bins(ow, st.1, padding.1, kernel.1, pp.w), name: "avgPool2d")
}

// MARK: - Adaptive average pooling

/// Adaptive average pooling like `torch.nn.functional.adaptive_avg_pool2d`: output cell i of
/// an axis averages input `floor(i·in/out) ..< ceil((i+1)·in/out)`.
public func adaptiveAvgPool2d(_ x: Tensor, outputSize: (Int, Int)) throws -> Tensor {
    let op = "adaptiveAvgPool2d"
    let pp = try poolPlanes(x, op: op)
    try require(outputSize.0 > 0 && outputSize.1 > 0, op,
                "output size must be positive, got (\(outputSize.0), \(outputSize.1))")
    func bins(_ out: Int, _ n: Int) -> [AverageBin] {
        (0..<out).map { i in
            let lo = (i * n) / out, hi = ((i + 1) * n + out - 1) / out
            return AverageBin(lo: lo, hi: hi, divisor: hi - lo)
        }
    }
    return windowAverage(x, pp, rows: bins(outputSize.0, pp.h), cols: bins(outputSize.1, pp.w), name: "adaptiveAvgPool2d")
}
