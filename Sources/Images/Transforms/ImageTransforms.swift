// Deterministic image transforms with torchvision parity: resize (antialiased bilinear), crops,
// flips and normalisation. Reference: torchvision/transforms/functional.py and
// _functional_tensor.py (float tensor paths); the random transforms build on these.

/// The deterministic transforms, as free functions on `RGBImage`. Each matches the
/// torchvision functional op of the same name applied to a float [3, H, W] tensor (see
/// `scripts/fixtures/make_transform_fixtures.py` and the parity tests for the exact calls).
public enum ImageTransforms {
    // MARK: - Resize

    /// Bilinear resize with antialiasing when downscaling — torchvision
    /// `F.resize(tensor, [height, width], interpolation=BILINEAR, antialias=True)` on float tensors:
    /// the separable triangle filter whose support is scaled by the downscale factor, weights
    /// normalised per output pixel, align_corners=False centres. With `antialias: false`, plain
    /// bilinear interpolation (`interpolate(..., align_corners=False)`).
    ///
    /// Sizes below 1 give an empty image; an empty input gives a black image of the requested size.
    public static func resize(_ image: RGBImage, height: Int, width: Int, antialias: Bool = true) -> RGBImage {
        let height = max(height, 0), width = max(width, 0)
        if image.width == 0 || image.height == 0 || width == 0 || height == 0 {
            return RGBImage(width: width, height: height)
        }
        if height == image.height && width == image.width { return image }
        let rows = ResampleAxis.bilinear(inSize: image.height, outSize: height, antialias: antialias)
        let cols = ResampleAxis.bilinear(inSize: image.width, outSize: width, antialias: antialias)
        return resample(image, rows: rows, cols: cols)
    }

    /// The output size of torchvision `Resize(size, max_size=maxSize)` with an int `size`: the
    /// shorter side becomes `size`, the longer `int(size * long / short)`; when `maxSize` is given
    /// and the longer side would exceed it, the longer side becomes `maxSize` and the shorter
    /// `int(maxSize * short / long)`. Returns (height, width); (0, 0) when `size < 1`.
    public static func shorterSideOutputSize(height: Int, width: Int, size: Int, maxSize: Int? = nil) -> (height: Int, width: Int) {
        guard size > 0 else { return (0, 0) }
        guard height > 0, width > 0 else { return (height, width) }
        let short = min(height, width), long = max(height, width)
        var newShort = size
        var newLong = Int(Double(size) * Double(long) / Double(short))
        if let maxSize, maxSize > 0, newLong > maxSize {
            newShort = Int(Double(maxSize) * Double(newShort) / Double(newLong))
            newLong = maxSize
        }
        return width <= height ? (newLong, newShort) : (newShort, newLong)
    }

    /// torchvision `Resize(size)` with an int: the shorter side becomes `size`, the longer side is
    /// scaled and truncated as torchvision computes it (`int(size * long / short)`); with
    /// `maxSize`, the longer side is capped as `shorterSideOutputSize` describes. Antialiased
    /// bilinear, as `resize`.
    public static func resizeShorterSide(_ image: RGBImage, to size: Int, maxSize: Int? = nil) -> RGBImage {
        let out = shorterSideOutputSize(height: image.height, width: image.width, size: size, maxSize: maxSize)
        return resize(image, height: out.height, width: out.width)
    }

    // MARK: - Crops and flips

    /// torchvision `F.crop`: the `height`×`width` window whose top-left corner is (`top`, `left`);
    /// parts of the window outside the image are zero (torchvision pads with zeros too).
    public static func crop(_ image: RGBImage, top: Int, left: Int, height: Int, width: Int) -> RGBImage {
        let height = max(height, 0), width = max(width, 0)
        let inW = image.width, inH = image.height
        // Columns [x0, x1) of the window that fall inside the image, as window coordinates.
        let x0 = min(max(-left, 0), width), x1 = max(min(inW - left, width), x0)
        return image.pixels.withUnsafeBufferPointer { src in
            makeImage(width: width, height: height) { dst in
                for c in 0..<3 {
                    for y in 0..<height {
                        let d = dst + (c * height + y) * width
                        let sy = top + y
                        guard sy >= 0, sy < inH, x1 > x0, let base = src.baseAddress else {
                            d.initialize(repeating: 0, count: width)
                            continue
                        }
                        if x0 > 0 { d.initialize(repeating: 0, count: x0) }
                        (d + x0).initialize(from: base + (c * inH + sy) * inW + left + x0, count: x1 - x0)
                        if x1 < width { (d + x1).initialize(repeating: 0, count: width - x1) }
                    }
                }
            }
        }
    }

    /// Where torchvision `center_crop` takes its window, in the coordinates of the unpadded image:
    /// when the crop is larger than the image along an edge, torchvision first pads with zeros
    /// (`(crop - size) // 2` before, the rest after); the offset is then
    /// `int(round((size - crop) / 2))`, Python's round half to even.
    public static func centerCropOrigin(height: Int, width: Int, cropHeight: Int, cropWidth: Int) -> (top: Int, left: Int) {
        func origin(_ size: Int, _ crop: Int) -> Int {
            let padBefore = crop > size ? (crop - size) / 2 : 0
            let padded = crop > size ? size + padBefore + (crop - size + 1) / 2 : size
            let offset = Int((Double(padded - crop) / 2).rounded(.toNearestOrEven))
            return offset - padBefore
        }
        return (origin(height, cropHeight), origin(width, cropWidth))
    }

    /// torchvision `center_crop` (crop offsets rounded as torchvision does; pads with zeros when
    /// the image is smaller than the crop).
    public static func centerCrop(_ image: RGBImage, height: Int, width: Int) -> RGBImage {
        let o = centerCropOrigin(height: image.height, width: image.width, cropHeight: height, cropWidth: width)
        return crop(image, top: o.top, left: o.left, height: height, width: width)
    }

    /// torchvision `hflip`: mirrors each row.
    public static func horizontalFlip(_ image: RGBImage) -> RGBImage {
        let w = image.width, rows = 3 * image.height
        return image.pixels.withUnsafeBufferPointer { src in
            makeImage(width: w, height: image.height) { dst in
                guard let s = src.baseAddress else { return }
                for r in 0..<rows {
                    let sr = s + r * w, dr = dst + r * w
                    for x in 0..<w { (dr + x).initialize(to: sr[w - 1 - x]) }
                }
            }
        }
    }

    // MARK: - Normalisation

    /// torchvision `normalize`: `(x - mean[c]) / std[c]` for each channel `c`. `mean` and `std`
    /// hold 3 values (or 1, used for every channel); `ImageTransform.validate()` checks this and
    /// that no `std` is zero before a pipeline runs.
    public static func normalize(_ image: RGBImage, mean: [Float], std: [Float]) -> RGBImage {
        var out = image
        out.pixels.withUnsafeMutableBufferPointer { buffer in
            if let base = buffer.baseAddress {
                normalize(image, mean: mean, std: std, into: base)
            }
        }
        return out
    }

    /// Writes the normalised samples of `image` (`3 · height · width` floats, planar) straight into
    /// `destination`, e.g. the image's slot in an NCHW batch buffer.
    public static func normalize(_ image: RGBImage, mean: [Float], std: [Float], into destination: UnsafeMutablePointer<Float>) {
        precondition((mean.count == 3 || mean.count == 1) && (std.count == 3 || std.count == 1),
                     "normalize: mean and std need 1 or 3 values (validate the transform first)")
        let n = image.planeSize
        image.pixels.withUnsafeBufferPointer { src in
            guard let s = src.baseAddress else { return }
            for c in 0..<3 {
                let m = mean[mean.count == 3 ? c : 0]
                let inv = 1 / std[std.count == 3 ? c : 0]
                let sp = s + c * n, dp = destination + c * n
                for i in 0..<n { dp[i] = (sp[i] - m) * inv }
            }
        }
    }
}

// MARK: - Helpers

/// Builds an image by letting `body` initialise all `3 · height · width` samples in place.
@inline(__always)
func makeImage(width: Int, height: Int, _ body: (UnsafeMutablePointer<Float>) -> Void) -> RGBImage {
    let n = 3 * width * height
    let pixels = [Float](unsafeUninitializedCapacity: n) { buffer, count in
        if n > 0, let base = buffer.baseAddress { body(base) }
        count = n
    }
    return RGBImage(width: width, height: height, pixels: pixels)
}
