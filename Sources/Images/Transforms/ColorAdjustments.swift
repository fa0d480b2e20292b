// Photometric ops with torchvision parity (torchvision/transforms/_functional_tensor.py, float
// tensors): brightness, contrast, saturation and sharpness as blends, hue through HSV, solarize,
// autocontrast, and the two ops torchvision defines on uint8 only — posterize and equalize —
// which here quantise each sample to 8 bits as `round(x · 255)` (round half to even, as
// `torch.round`), apply the uint8 op and map back with `/ 255`. Their output is therefore on the
// 8-bit grid, exactly torchvision's result on the uint8 image divided by 255.

extension ImageTransforms {
    // MARK: - Blends

    /// torchvision `adjust_brightness`: blend with black, `clamp(factor · x, 0, 1)`.
    public static func adjustBrightness(_ image: RGBImage, factor: Double) -> RGBImage {
        mapSamples(image) { x in min(max(Float(factor) * x, 0), 1) }
    }

    /// torchvision `adjust_contrast`: blend with the mean of the grayscale image
    /// (0.2989 R + 0.587 G + 0.114 B averaged over all pixels).
    public static func adjustContrast(_ image: RGBImage, factor: Double) -> RGBImage {
        let n = image.planeSize
        guard n > 0 else { return image }
        var sum = 0.0
        image.pixels.withUnsafeBufferPointer { p in
            for i in 0..<n { sum += Double(gray(p[i], p[n + i], p[2 * n + i])) }
        }
        let mean = Float(sum / Double(n))
        let r = Float(factor), bias = Float(1 - factor) * mean
        return mapSamples(image) { x in min(max(r * x + bias, 0), 1) }
    }

    /// torchvision `adjust_saturation`: blend with the grayscale image.
    public static func adjustSaturation(_ image: RGBImage, factor: Double) -> RGBImage {
        let n = image.planeSize
        let r = Float(factor), q = Float(1 - factor)
        return image.pixels.withUnsafeBufferPointer { src in
            makeImage(width: image.width, height: image.height) { dst in
                guard let s = src.baseAddress else { return }
                for i in 0..<n {
                    let g = q * gray(s[i], s[n + i], s[2 * n + i])
                    for c in 0..<3 { dst[c * n + i] = min(max(r * s[c * n + i] + g, 0), 1) }
                }
            }
        }
    }

    /// torchvision `adjust_sharpness`: blend with the image blurred by the 3×3 kernel
    /// [[1,1,1],[1,5,1],[1,1,1]] / 13 on interior pixels (border pixels are kept as they are).
    /// Images narrower or shorter than 3 pixels are returned unchanged.
    public static func adjustSharpness(_ image: RGBImage, factor: Double) -> RGBImage {
        let w = image.width, h = image.height
        guard w > 2, h > 2 else { return image }
        let r = Float(factor), q = Float(1 - factor)
        let centre: Float = 5 / 13, edge: Float = 1 / 13
        return image.pixels.withUnsafeBufferPointer { src in
            makeImage(width: w, height: h) { dst in
                guard let s = src.baseAddress else { return }
                for c in 0..<3 {
                    let sp = s + c * h * w, dp = dst + c * h * w
                    for y in 0..<h {
                        for x in 0..<w {
                            let v = sp[y * w + x]
                            var blurred = v
                            if y > 0, y < h - 1, x > 0, x < w - 1 {
                                let up = sp + (y - 1) * w + x, mid = sp + y * w + x, down = sp + (y + 1) * w + x
                                var acc = edge * up[-1] + edge * up[0]
                                acc += edge * up[1] + edge * mid[-1]
                                acc += centre * mid[0] + edge * mid[1]
                                acc += edge * down[-1] + edge * down[0] + edge * down[1]
                                blurred = acc
                            }
                            dp[y * w + x] = min(max(r * v + q * blurred, 0), 1)
                        }
                    }
                }
            }
        }
    }

    // MARK: - Hue

    /// torchvision `adjust_hue`: RGB → HSV, `h = (h + factor) mod 1`, HSV → RGB, with
    /// torchvision's formulas (`_rgb2hsv`, `_hsv2rgb`). `factor` is in [-0.5, 0.5].
    public static func adjustHue(_ image: RGBImage, factor: Double) -> RGBImage {
        let n = image.planeSize
        let shift = Float(factor)
        return image.pixels.withUnsafeBufferPointer { src in
            makeImage(width: image.width, height: image.height) { dst in
                guard let s = src.baseAddress else { return }
                for i in 0..<n {
                    let r = s[i], g = s[n + i], b = s[2 * n + i]
                    let maxc = max(r, g, b), minc = min(r, g, b)
                    let equal = maxc == minc
                    let cr = maxc - minc
                    let sat = cr / (equal ? 1 : maxc)
                    let div: Float = equal ? 1 : cr
                    let rc = (maxc - r) / div, gc = (maxc - g) / div, bc = (maxc - b) / div
                    var hue: Float
                    if maxc == r { hue = bc - gc } else if maxc == g { hue = 2 + rc - bc } else { hue = 4 + gc - rc }
                    hue = (hue / 6 + 1).truncatingRemainder(dividingBy: 1)
                    hue += shift
                    hue -= hue.rounded(.down)
                    let rgb = hsvToRGB(hue, sat, maxc)
                    dst[i] = rgb.0
                    dst[n + i] = rgb.1
                    dst[2 * n + i] = rgb.2
                }
            }
        }
    }

    // MARK: - Thresholds and histograms

    /// torchvision `solarize` on a float image: samples `>= threshold` become `1 - x`.
    /// (TrivialAugment's thresholds, given on the uint8 scale, are divided by 255.)
    public static func solarize(_ image: RGBImage, threshold: Float) -> RGBImage {
        mapSamples(image) { x in x >= threshold ? 1 - x : x }
    }

    /// torchvision `autocontrast`: each channel stretched so its minimum maps to 0 and its maximum
    /// to 1; constant channels are left as they are.
    public static func autocontrast(_ image: RGBImage) -> RGBImage {
        var out = image
        let n = image.planeSize
        guard n > 0 else { return image }
        out.pixels.withUnsafeMutableBufferPointer { p in
            for c in 0..<3 {
                var lo = Float.infinity, hi = -Float.infinity
                for i in c * n..<(c + 1) * n { lo = min(lo, p[i]); hi = max(hi, p[i]) }
                var scale = 1 / (hi - lo)
                if !scale.isFinite { lo = 0; scale = 1 }
                for i in c * n..<(c + 1) * n { p[i] = min(max((p[i] - lo) * scale, 0), 1) }
            }
        }
        return out
    }

    /// torchvision `posterize` on the 8-bit quantised image: keeps the top `bits` bits of
    /// `round(x · 255)` (`bits` clamped to 0...8), then divides by 255.
    public static func posterize(_ image: RGBImage, bits: Int) -> RGBImage {
        let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - min(max(bits, 0), 8)))
        return mapSamples(image) { x in Float(quantize(x) & mask) / 255 }
    }

    /// torchvision `equalize` on the 8-bit quantised image, channel by channel: the histogram's
    /// cumulative sum mapped through torchvision's lookup table (`step = (Σ nonzero bins but the
    /// last) // 255`; channels with `step == 0` keep their quantised values), then divided by 255.
    public static func equalize(_ image: RGBImage) -> RGBImage {
        let n = image.planeSize
        var out = image
        out.pixels.withUnsafeMutableBufferPointer { p in
            var hist = [Int](repeating: 0, count: 256)
            var lut = [Float](repeating: 0, count: 256)
            for c in 0..<3 {
                for k in 0..<256 { hist[k] = 0 }
                for i in c * n..<(c + 1) * n { hist[Int(quantize(p[i]))] += 1 }
                var lastNonzero = 0, total = 0
                for k in 0..<256 where hist[k] != 0 { lastNonzero = hist[k]; total += hist[k] }
                let step = (total - lastNonzero) / 255
                if step == 0 {
                    for k in 0..<256 { lut[k] = Float(k) / 255 }
                } else {
                    var cumulative = 0
                    for k in 0..<256 {
                        lut[k] = Float(min((cumulative + step / 2) / step, 255)) / 255
                        cumulative += hist[k]
                    }
                }
                for i in c * n..<(c + 1) * n { p[i] = lut[Int(quantize(p[i]))] }
            }
        }
        return out
    }
}

// MARK: - Helpers

/// torchvision's `rgb_to_grayscale` weights, evaluated in Float in the same order.
@inline(__always)
func gray(_ r: Float, _ g: Float, _ b: Float) -> Float {
    let rg = 0.2989 * r + 0.587 * g
    return rg + 0.114 * b
}

/// `round(x · 255)` clamped to 0...255, rounding half to even like `torch.round` (NaN → 0).
@inline(__always)
func quantize(_ x: Float) -> UInt8 {
    let v = (x * 255).rounded(.toNearestOrEven)
    return v >= 255 ? 255 : (v > 0 ? UInt8(v) : 0)
}

/// torchvision `_hsv2rgb` for one pixel.
@inline(__always)
func hsvToRGB(_ h: Float, _ s: Float, _ v: Float) -> (Float, Float, Float) {
    let i6 = (h * 6).rounded(.down)
    let f = h * 6 - i6
    let p = min(max(v * (1 - s), 0), 1)
    let q = min(max(v * (1 - s * f), 0), 1)
    let t = min(max(v * (1 - s * (1 - f)), 0), 1)
    var i = i6.isFinite ? Int(i6) % 6 : 0
    if i < 0 { i += 6 }
    switch i {
    case 0: return (v, t, p)
    case 1: return (q, v, p)
    case 2: return (p, v, t)
    case 3: return (p, q, v)
    case 4: return (t, p, v)
    default: return (v, p, q)
    }
}

extension ImageTransforms {
    /// Applies `f` to every sample.
    @inline(__always)
    static func mapSamples(_ image: RGBImage, _ f: (Float) -> Float) -> RGBImage {
        var out = image
        out.pixels.withUnsafeMutableBufferPointer { p in
            for i in 0..<p.count { p[i] = f(p[i]) }
        }
        return out
    }
}
