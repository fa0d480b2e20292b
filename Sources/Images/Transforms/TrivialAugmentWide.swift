// torchvision `TrivialAugmentWide` (torchvision/transforms/autoaugment.py): one op drawn uniformly
// from 14, one magnitude bin drawn uniformly from 31, the sign flipped with probability 0.5 for
// signed ops, then `_apply_op` with nearest interpolation and zero fill.
//
// torchvision runs this policy on uint8 images; runpipe's images are float. Differences, all
// deliberate: colour ops (brightness, color, contrast, sharpness, autocontrast) run on floats
// without 8-bit rounding; solarize thresholds (0...255) are divided by 255; posterize and equalize
// quantise to 8 bits as round(x · 255), apply the uint8 op and divide by 255.

import Foundation

/// One TrivialAugmentWide operation, in torchvision's `_augmentation_space` order.
public enum AugmentOperation: String, Sendable, CaseIterable, Codable {
    case identity = "Identity"
    case shearX = "ShearX"
    case shearY = "ShearY"
    case translateX = "TranslateX"
    case translateY = "TranslateY"
    case rotate = "Rotate"
    case brightness = "Brightness"
    case color = "Color"
    case contrast = "Contrast"
    case sharpness = "Sharpness"
    case posterize = "Posterize"
    case solarize = "Solarize"
    case autoContrast = "AutoContrast"
    case equalize = "Equalize"

    /// The `numBins` magnitudes of the wide augmentation space (nil: the op takes none), computed
    /// as `torch.linspace` does in Float.
    public func magnitudes(numBins: Int = 31) -> [Double]? {
        switch self {
        case .identity, .autoContrast, .equalize: return nil
        case .shearX, .shearY, .brightness, .color, .contrast, .sharpness: return linspace(0, 0.99, numBins)
        case .translateX, .translateY: return linspace(0, 32, numBins)
        case .rotate: return linspace(0, 135, numBins)
        case .solarize: return linspace(255, 0, numBins)
        case .posterize:
            // 8 - round(arange(n) / ((n - 1) / 6)), computed in Float like torch.
            let divisor = Float(numBins - 1) / 6
            return (0..<numBins).map { 8 - Double((Float($0) / divisor).rounded(.toNearestOrEven)) }
        }
    }

    /// Whether the magnitude's sign is flipped with probability 0.5.
    public var isSigned: Bool {
        switch self {
        case .shearX, .shearY, .translateX, .translateY, .rotate, .brightness, .color, .contrast, .sharpness:
            return true
        default:
            return false
        }
    }

    /// torchvision `_apply_op(image, op, magnitude, NEAREST, fill=None)` on a float image.
    public func apply(_ image: RGBImage, magnitude: Double) -> RGBImage {
        switch self {
        case .identity:
            return image
        case .shearX:
            // torchvision: shear = degrees(atan(magnitude)) about the top-left corner.
            return ImageTransforms.affine(image, angle: 0, translate: (0, 0), scale: 1,
                                          shear: (degrees(atan(magnitude)), 0), center: (0, 0))
        case .shearY:
            return ImageTransforms.affine(image, angle: 0, translate: (0, 0), scale: 1,
                                          shear: (0, degrees(atan(magnitude))), center: (0, 0))
        case .translateX:
            return ImageTransforms.affine(image, angle: 0, translate: (Double(Int(magnitude)), 0), scale: 1,
                                          shear: (0, 0))
        case .translateY:
            return ImageTransforms.affine(image, angle: 0, translate: (0, Double(Int(magnitude))), scale: 1,
                                          shear: (0, 0))
        case .rotate:
            return ImageTransforms.rotate(image, degrees: magnitude)
        case .brightness:
            return ImageTransforms.adjustBrightness(image, factor: 1 + magnitude)
        case .color:
            return ImageTransforms.adjustSaturation(image, factor: 1 + magnitude)
        case .contrast:
            return ImageTransforms.adjustContrast(image, factor: 1 + magnitude)
        case .sharpness:
            return ImageTransforms.adjustSharpness(image, factor: 1 + magnitude)
        case .posterize:
            return ImageTransforms.posterize(image, bits: Int(magnitude))
        case .solarize:
            return ImageTransforms.solarize(image, threshold: Float(magnitude / 255))
        case .autoContrast:
            return ImageTransforms.autocontrast(image)
        case .equalize:
            return ImageTransforms.equalize(image)
        }
    }
}

/// torchvision `TrivialAugmentWide(num_magnitude_bins=31, interpolation=NEAREST, fill=None)`.
public struct TrivialAugmentWide: Sendable, Equatable, Codable {
    public var numMagnitudeBins: Int

    public init(numMagnitudeBins: Int = 31) { self.numMagnitudeBins = numMagnitudeBins }

    public func validate() throws {
        guard numMagnitudeBins >= 2 else {
            throw ImageTransformError.invalidParameter(transform: "trivial_augment", parameter: "num_magnitude_bins",
                                                       message: "\(numMagnitudeBins) must be at least 2")
        }
    }

    /// The draws of one application, in torchvision's order: the op, then (for ops with
    /// magnitudes) the bin, then (for signed ops) the sign.
    public func parameters(random: inout AugmentationRandom) -> (operation: AugmentOperation, magnitude: Double) {
        let ops = AugmentOperation.allCases
        let op = ops[random.int(below: ops.count)]
        guard let magnitudes = op.magnitudes(numBins: numMagnitudeBins), !magnitudes.isEmpty else {
            return (op, 0)
        }
        var magnitude = magnitudes[random.int(below: magnitudes.count)]
        if op.isSigned && random.int(below: 2) == 1 { magnitude = -magnitude }
        return (op, magnitude)
    }

    public func apply(_ image: RGBImage, random: inout AugmentationRandom) -> RGBImage {
        let p = parameters(random: &random)
        return p.operation.apply(image, magnitude: p.magnitude)
    }
}

// MARK: - Helpers

private func degrees(_ radians: Double) -> Double { radians * 180 / .pi }

/// `torch.linspace(start, end, steps)` in Float: the first half counted up from `start`, the
/// second down from `end`.
private func linspace(_ start: Float, _ end: Float, _ steps: Int) -> [Double] {
    guard steps > 1 else { return steps == 1 ? [Double(start)] : [] }
    let step = (end - start) / Float(steps - 1)
    let half = steps / 2
    return (0..<steps).map { i in
        Double(i < half ? start + step * Float(i) : end - step * Float(steps - 1 - i))
    }
}
