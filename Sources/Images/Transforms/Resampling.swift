// Separable resampling: per-axis filter weights computed once per (input size, output size), then
// a horizontal and a vertical pass over planar rows. This is the algorithm of PyTorch's
// `_upsample_bilinear2d_aa` (itself Pillow's ImagingResample) and of plain bilinear
// `interpolate(align_corners=False)`; crops and windows are expressed as axes too, so
// resize + center crop and crop + resize run as one resample with no intermediate image.

/// The filter for one axis: output sample `o` is `Σ_k weights[o·maxTaps + k] · input[starts[o] + k]`
/// for `k < counts[o]`.
struct ResampleAxis {
    var outSize: Int
    var starts: [Int]
    var counts: [Int]
    var weights: [Float]
    var maxTaps: Int
    /// Set when the axis only copies input samples `copyOffset ..< copyOffset + outSize` (inputs
    /// outside the image read as zero is not needed: copy axes are always in bounds).
    var copyOffset: Int?

    /// A window that copies `count` samples starting at `offset`.
    static func window(offset: Int, count: Int) -> ResampleAxis {
        ResampleAxis(outSize: count, starts: [], counts: [], weights: [], maxTaps: 1, copyOffset: offset)
    }

    /// Bilinear weights from `inSize` to `outSize` samples (both ≥ 1). With `antialias`, the
    /// triangle filter's support grows with the downscale factor (torch `_compute_indices_weights_aa`:
    /// support = scale when scale ≥ 1 else 1, centre = scale·(o + 0.5), window
    /// [int(centre − support + 0.5), int(centre + support + 0.5)) clipped to the input, weights
    /// normalised); without it, the two-tap align_corners=False bilinear interpolation.
    static func bilinear(inSize: Int, outSize: Int, antialias: Bool) -> ResampleAxis {
        precondition(inSize > 0 && outSize > 0, "ResampleAxis: sizes must be positive (callers check)")
        if inSize == outSize { return window(offset: 0, count: outSize) }
        if antialias {
            let scale = Double(inSize) / Double(outSize)
            let support = scale >= 1 ? scale : 1
            let invScale = scale >= 1 ? 1 / scale : 1
            let maxTaps = Int(support.rounded(.up)) * 2 + 1
            var starts = [Int](repeating: 0, count: outSize)
            var counts = [Int](repeating: 0, count: outSize)
            var weights = [Float](repeating: 0, count: outSize * maxTaps)
            var w = [Double](repeating: 0, count: maxTaps)
            for o in 0..<outSize {
                let center = scale * (Double(o) + 0.5)
                // Int(_:) truncates toward zero, as the C++ cast does.
                let lo = max(Int(center - support + 0.5), 0)
                let hi = min(Int(center + support + 0.5), inSize)
                let n = min(max(hi - lo, 0), maxTaps)
                var total = 0.0
                for k in 0..<n {
                    let t = abs((Double(k + lo) - center + 0.5) * invScale)
                    w[k] = t < 1 ? 1 - t : 0
                    total += w[k]
                }
                starts[o] = lo
                counts[o] = n
                for k in 0..<n { weights[o * maxTaps + k] = Float(total > 0 ? w[k] / total : 0) }
            }
            return ResampleAxis(outSize: outSize, starts: starts, counts: counts, weights: weights,
                                maxTaps: maxTaps, copyOffset: nil)
        }
        // Plain bilinear, computed in Float as PyTorch's CPU kernel does.
        let scale = Float(inSize) / Float(outSize)
        var starts = [Int](repeating: 0, count: outSize)
        var counts = [Int](repeating: 0, count: outSize)
        var weights = [Float](repeating: 0, count: outSize * 2)
        for o in 0..<outSize {
            let src = max(scale * (Float(o) + 0.5) - 0.5, 0)
            let i0 = min(Int(src), inSize - 1)
            let l1 = src - Float(i0)
            starts[o] = i0
            if i0 < inSize - 1 {
                counts[o] = 2
                weights[2 * o] = 1 - l1
                weights[2 * o + 1] = l1
            } else {
                counts[o] = 1
                weights[2 * o] = 1
            }
        }
        return ResampleAxis(outSize: outSize, starts: starts, counts: counts, weights: weights,
                            maxTaps: 2, copyOffset: nil)
    }

    /// Only output samples `range` of this axis.
    func sliced(_ range: Range<Int>) -> ResampleAxis {
        if let copyOffset { return .window(offset: copyOffset + range.lowerBound, count: range.count) }
        return ResampleAxis(outSize: range.count, starts: Array(starts[range]), counts: Array(counts[range]),
                            weights: Array(weights[(range.lowerBound * maxTaps)..<(range.upperBound * maxTaps)]),
                            maxTaps: maxTaps, copyOffset: nil)
    }

    /// The input samples the axis reads.
    var inputRange: Range<Int> {
        if let copyOffset { return copyOffset..<(copyOffset + outSize) }
        var lo = Int.max, hi = Int.min
        for o in 0..<outSize {
            lo = min(lo, starts[o])
            hi = max(hi, starts[o] + max(counts[o], 1))
        }
        return lo < hi ? lo..<hi : 0..<0
    }

    /// The same filter reading input samples `offset` further along (a crop before the resize).
    func shifted(by offset: Int) -> ResampleAxis {
        if let copyOffset { return .window(offset: copyOffset + offset, count: outSize) }
        var copy = self
        for o in 0..<outSize { copy.starts[o] += offset }
        return copy
    }
}

extension ImageTransforms {
    /// Applies `rows` to the vertical axis and `cols` to the horizontal axis of every channel.
    /// Every input index the axes read must lie inside the image.
    static func resample(_ image: RGBImage, rows: ResampleAxis, cols: ResampleAxis) -> RGBImage {
        let inH = image.height, inW = image.width
        let outH = rows.outSize, outW = cols.outSize
        if outH == 0 || outW == 0 { return RGBImage(width: outW, height: outH) }
        // Always horizontal first, then vertical: a fixed order keeps the fused windows (resize +
        // crop) bit-identical to resizing then cropping. The horizontal pass only covers the input
        // rows the vertical pass reads.
        let rowRange = rows.inputRange
        let usedRows = rowRange.count
        let localRows = rows.shifted(by: -rowRange.lowerBound)
        return image.pixels.withUnsafeBufferPointer { srcBuffer in
            guard let src = srcBuffer.baseAddress else { return RGBImage(width: outW, height: outH) }
            let tmp = UnsafeMutablePointer<Float>.allocate(capacity: 3 * usedRows * outW)
            defer { tmp.deallocate() }
            for c in 0..<3 {
                horizontalPass(src + (c * inH + rowRange.lowerBound) * inW, rows: usedRows, inWidth: inW,
                               into: tmp + c * usedRows * outW, cols)
            }
            return makeImage(width: outW, height: outH) { dst in
                verticalPass(tmp, inHeight: usedRows, width: outW, into: dst, localRows)
            }
        }
    }

    /// `rows` rows of `inWidth` samples → rows of `axis.outSize` samples.
    private static func horizontalPass(_ src: UnsafePointer<Float>, rows: Int, inWidth: Int,
                                       into dst: UnsafeMutablePointer<Float>, _ axis: ResampleAxis) {
        let outW = axis.outSize
        if let offset = axis.copyOffset {
            for r in 0..<rows { (dst + r * outW).update(from: src + r * inWidth + offset, count: outW) }
            return
        }
        axis.starts.withUnsafeBufferPointer { starts in
            axis.counts.withUnsafeBufferPointer { counts in
                axis.weights.withUnsafeBufferPointer { weights in
                    guard let st = starts.baseAddress, let ct = counts.baseAddress,
                          let wt = weights.baseAddress else { return }
                    let taps = axis.maxTaps
                    for r in 0..<rows {
                        let s = src + r * inWidth, d = dst + r * outW
                        for o in 0..<outW {
                            let p = s + st[o], w = wt + o * taps
                            var acc: Float = 0
                            for k in 0..<ct[o] { acc += w[k] * p[k] }
                            d[o] = acc
                        }
                    }
                }
            }
        }
    }

    /// Three planes of `inHeight` rows of `width` samples → three planes of `axis.outSize` rows.
    private static func verticalPass(_ src: UnsafePointer<Float>, inHeight: Int, width: Int,
                                     into dst: UnsafeMutablePointer<Float>, _ axis: ResampleAxis) {
        let outH = axis.outSize
        if let offset = axis.copyOffset {
            for c in 0..<3 {
                (dst + c * outH * width).update(from: src + (c * inHeight + offset) * width, count: outH * width)
            }
            return
        }
        let taps = axis.maxTaps
        for c in 0..<3 {
            for o in 0..<outH {
                let d = dst + (c * outH + o) * width
                let n = axis.counts[o], first = axis.starts[o]
                let w0 = axis.weights[o * taps]
                let s0 = src + (c * inHeight + first) * width
                for x in 0..<width { d[x] = w0 * s0[x] }
                if n > 1 {
                    for k in 1..<n {
                        let wk = axis.weights[o * taps + k]
                        let s = src + (c * inHeight + first + k) * width
                        for x in 0..<width { d[x] += wk * s[x] }
                    }
                }
            }
        }
    }
}
