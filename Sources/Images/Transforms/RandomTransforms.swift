// Seeded random transforms with torchvision semantics: RandomResizedCrop (the exact `get_params`
// algorithm), RandomHorizontalFlip and ColorJitter. Randomness comes from `AugmentationRandom`,
// so results are reproducible per (seed, epoch, row); the draws follow torchvision's order but
// not its generator, so individual outcomes differ from a PyTorch run with the same seed.

import Foundation

// MARK: - RandomResizedCrop

/// torchvision `RandomResizedCrop(size, scale, ratio, antialias=True)`: a random window of
/// relative area in `scale` and aspect ratio (log-uniform) in `ratio`, resized to
/// `height`×`width` with antialiased bilinear.
public struct RandomResizedCrop: Sendable, Equatable, Codable {
    public var height: Int
    public var width: Int
    public var scaleLower: Double
    public var scaleUpper: Double
    public var ratioLower: Double
    public var ratioUpper: Double

    public init(height: Int, width: Int, scale: (Double, Double) = (0.08, 1.0),
                ratio: (Double, Double) = (3.0 / 4.0, 4.0 / 3.0)) {
        self.height = height
        self.width = width
        (scaleLower, scaleUpper) = scale
        (ratioLower, ratioUpper) = ratio
    }

    /// The range of the crop's area relative to the image's.
    public var scale: (Double, Double) { (scaleLower, scaleUpper) }
    /// The range of the crop's aspect ratio (width / height).
    public var ratio: (Double, Double) { (ratioLower, ratioUpper) }

    /// Checks sizes and ranges; call before applying to user-supplied values.
    public func validate() throws {
        let name = "random_resize_crop"
        guard height > 0, width > 0 else {
            throw ImageTransformError.invalidParameter(transform: name, parameter: "size",
                                                       message: "\(height)×\(width) must be positive")
        }
        guard scaleLower > 0, scaleLower <= scaleUpper, scaleUpper.isFinite else {
            throw ImageTransformError.invalidParameter(transform: name, parameter: "scale",
                                                       message: "(\(scaleLower), \(scaleUpper)) must be finite and satisfy 0 < lower <= upper")
        }
        guard ratioLower > 0, ratioLower <= ratioUpper, ratioUpper.isFinite else {
            throw ImageTransformError.invalidParameter(transform: name, parameter: "ratio",
                                                       message: "(\(ratioLower), \(ratioUpper)) must be finite and satisfy 0 < lower <= upper")
        }
    }

    /// torchvision `RandomResizedCrop.get_params`: up to 10 attempts drawing an area
    /// `uniform(scale) · H · W` and a ratio `exp(uniform(log ratio))`, `w = round(sqrt(area · r))`,
    /// `h = round(sqrt(area / r))` (round half to even); the first that fits gets a uniform
    /// position. Otherwise the central fallback: the whole image, cut to the nearest allowed ratio.
    /// Returns the window (top, left, height, width), always inside the image.
    public func parameters(imageHeight: Int, imageWidth: Int, random: inout AugmentationRandom)
        -> (top: Int, left: Int, height: Int, width: Int) {
        guard imageHeight > 0, imageWidth > 0 else { return (0, 0, max(imageHeight, 0), max(imageWidth, 0)) }
        let area = Double(imageHeight * imageWidth)
        let logLower = log(ratioLower), logUpper = log(ratioUpper)
        for _ in 0..<10 {
            let targetArea = area * random.uniform(scaleLower, scaleUpper)
            let aspect = exp(random.uniform(logLower, logUpper))
            let w = Int((targetArea * aspect).squareRoot().rounded(.toNearestOrEven))
            let h = Int((targetArea / aspect).squareRoot().rounded(.toNearestOrEven))
            if w > 0, w <= imageWidth, h > 0, h <= imageHeight {
                let top = random.int(below: imageHeight - h + 1)
                let left = random.int(below: imageWidth - w + 1)
                return (top, left, h, w)
            }
        }
        let inRatio = Double(imageWidth) / Double(imageHeight)
        var w = imageWidth, h = imageHeight
        if inRatio < min(ratioLower, ratioUpper) {
            h = Int((Double(w) / min(ratioLower, ratioUpper)).rounded(.toNearestOrEven))
        } else if inRatio > max(ratioLower, ratioUpper) {
            w = Int((Double(h) * max(ratioLower, ratioUpper)).rounded(.toNearestOrEven))
        }
        return ((imageHeight - h) / 2, (imageWidth - w) / 2, h, w)
    }

    /// Draws a window and resizes it (crop and resize run as one resample).
    public func apply(_ image: RGBImage, random: inout AugmentationRandom) -> RGBImage {
        guard image.width > 0, image.height > 0, height > 0, width > 0 else {
            return RGBImage(width: max(width, 0), height: max(height, 0))
        }
        let p = parameters(imageHeight: image.height, imageWidth: image.width, random: &random)
        return ImageTransforms.resizedCrop(image, top: p.top, left: p.left, height: p.height, width: p.width,
                                           outputHeight: height, outputWidth: width)
    }
}

extension ImageTransforms {
    /// torchvision `resized_crop(image, top, left, height, width, [outputHeight, outputWidth],
    /// BILINEAR, antialias=True)`: crop, then antialiased resize. Windows reaching outside the image
    /// fall back to a zero-padded crop followed by a resize.
    public static func resizedCrop(_ image: RGBImage, top: Int, left: Int, height: Int, width: Int,
                                   outputHeight: Int, outputWidth: Int) -> RGBImage {
        guard top >= 0, left >= 0, height > 0, width > 0, top + height <= image.height,
              left + width <= image.width, outputHeight > 0, outputWidth > 0 else {
            return resize(crop(image, top: top, left: left, height: height, width: width),
                          height: outputHeight, width: outputWidth)
        }
        let rows = ResampleAxis.bilinear(inSize: height, outSize: outputHeight, antialias: true).shifted(by: top)
        let cols = ResampleAxis.bilinear(inSize: width, outSize: outputWidth, antialias: true).shifted(by: left)
        return resample(image, rows: rows, cols: cols)
    }

    /// `resizeShorterSide` followed by `centerCrop`, computing only the cropped pixels when the
    /// crop fits inside the resized image (the same values as the two steps, without the
    /// intermediate image).
    public static func resizeShorterSideAndCenterCrop(_ image: RGBImage, size: Int, maxSize: Int? = nil,
                                                      cropHeight: Int, cropWidth: Int) -> RGBImage {
        let r = shorterSideOutputSize(height: image.height, width: image.width, size: size, maxSize: maxSize)
        guard image.width > 0, image.height > 0, r.height > 0, r.width > 0,
              cropHeight > 0, cropWidth > 0, cropHeight <= r.height, cropWidth <= r.width else {
            return centerCrop(resize(image, height: r.height, width: r.width), height: cropHeight, width: cropWidth)
        }
        let o = centerCropOrigin(height: r.height, width: r.width, cropHeight: cropHeight, cropWidth: cropWidth)
        let rows = ResampleAxis.bilinear(inSize: image.height, outSize: r.height, antialias: true)
            .sliced(o.top..<(o.top + cropHeight))
        let cols = ResampleAxis.bilinear(inSize: image.width, outSize: r.width, antialias: true)
            .sliced(o.left..<(o.left + cropWidth))
        return resample(image, rows: rows, cols: cols)
    }
}

// MARK: - RandomHorizontalFlip

/// torchvision `RandomHorizontalFlip(p)`: flips when a uniform draw is below `p`.
public struct RandomHorizontalFlip: Sendable, Equatable, Codable {
    public var p: Double

    public init(p: Double = 0.5) { self.p = p }

    public func validate() throws {
        guard p >= 0, p <= 1 else {
            throw ImageTransformError.invalidParameter(transform: "random_horizontal_flip", parameter: "p",
                                                       message: "\(p) must be in [0, 1]")
        }
    }

    /// Always draws one number, so later transforms see the same stream whatever `p` is.
    public func apply(_ image: RGBImage, random: inout AugmentationRandom) -> RGBImage {
        Double(random.uniform()) < p ? ImageTransforms.horizontalFlip(image) : image
    }
}

// MARK: - ColorJitter

/// torchvision `ColorJitter(brightness, contrast, saturation, hue)`: factors drawn uniformly from
/// [max(0, 1 − b), 1 + b] (likewise contrast and saturation) and hue from [−h, h]; a parameter of 0
/// turns its op off. The four ops run in a random order (torchvision's `randperm(4)`), then each
/// enabled op draws its factor in the fixed order brightness, contrast, saturation, hue — as
/// torchvision's `get_params`. Every op clamps to [0, 1].
public struct ColorJitter: Sendable, Equatable, Codable {
    public var brightness: Double
    public var contrast: Double
    public var saturation: Double
    public var hue: Double

    public init(brightness: Double = 0, contrast: Double = 0, saturation: Double = 0, hue: Double = 0) {
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
        self.hue = hue
    }

    public func validate() throws {
        for (name, value) in [("brightness", brightness), ("contrast", contrast), ("saturation", saturation)]
        where !(value >= 0 && value.isFinite) {
            throw ImageTransformError.invalidParameter(transform: "color_jitter", parameter: name,
                                                       message: "\(value) must be a finite number >= 0")
        }
        guard hue >= 0, hue <= 0.5 else {
            throw ImageTransformError.invalidParameter(transform: "color_jitter", parameter: "hue",
                                                       message: "\(hue) must be in [0, 0.5]")
        }
    }

    /// True when at least one op is on.
    public var isActive: Bool { brightness > 0 || contrast > 0 || saturation > 0 || hue > 0 }

    /// The draws of one application: the op order (0 brightness, 1 contrast, 2 saturation, 3 hue)
    /// and each enabled op's factor.
    public func parameters(random: inout AugmentationRandom)
        -> (order: [Int], brightness: Double?, contrast: Double?, saturation: Double?, hue: Double?) {
        let order = random.permutation(4)
        func factor(_ b: Double) -> Double? { b > 0 ? random.uniform(max(0, 1 - b), 1 + b) : nil }
        let b = factor(brightness), c = factor(contrast), s = factor(saturation)
        let h = hue > 0 ? random.uniform(-hue, hue) : nil
        return (order, b, c, s, h)
    }

    public func apply(_ image: RGBImage, random: inout AugmentationRandom) -> RGBImage {
        let p = parameters(random: &random)
        var out = image
        for op in p.order {
            switch op {
            case 0: if let f = p.brightness { out = ImageTransforms.adjustBrightness(out, factor: f) }
            case 1: if let f = p.contrast { out = ImageTransforms.adjustContrast(out, factor: f) }
            case 2: if let f = p.saturation { out = ImageTransforms.adjustSaturation(out, factor: f) }
            default: if let f = p.hue { out = ImageTransforms.adjustHue(out, factor: f) }
            }
        }
        return out
    }
}
