// The per-image transform sequence the pipeline runs: a list of `ImageTransform` steps, AutoMM's
// default train/eval recipes, and parsing of AutoMM-style transform names from config strings.

/// One step of an image pipeline.
public enum ImageTransform: Sendable, Equatable, Codable {
    /// torchvision `Resize(size)`: shorter side → size.
    case resizeShorterSide(Int)
    /// Resize to (height, width).
    case resize(Int, Int)
    /// Center crop to (height, width), zero-padding smaller images.
    case centerCrop(Int, Int)
    case randomResizedCrop(RandomResizedCrop)
    /// torchvision `RandomHorizontalFlip(p)`.
    case horizontalFlip(p: Double)
    case colorJitter(ColorJitter)
    /// torchvision `TrivialAugmentWide()` with its defaults (31 bins, nearest, fill 0).
    case trivialAugment
    /// `(x - mean) / std`; usually left to batch packing (`ImageTransforms.normalize(_:mean:std:into:)`).
    case normalize(mean: [Float], std: [Float])

    /// Whether the step draws random numbers.
    public var isRandom: Bool {
        switch self {
        case .resizeShorterSide, .resize, .centerCrop, .normalize: return false
        case .randomResizedCrop, .trivialAugment: return true
        case .horizontalFlip(let p): return p > 0 && p < 1
        case .colorJitter(let jitter): return jitter.isActive
        }
    }

    /// Throws `ImageTransformError.invalidParameter` for sizes below 1 and out-of-range parameters.
    public func validate() throws {
        func positive(_ name: String, _ values: Int...) throws {
            guard values.allSatisfy({ $0 > 0 }) else {
                throw ImageTransformError.invalidParameter(transform: name, parameter: "size",
                                                           message: "\(values.map(String.init).joined(separator: "×")) must be positive")
            }
        }
        switch self {
        case .resizeShorterSide(let s): try positive("resize_shorter_side", s)
        case .resize(let h, let w): try positive("resize", h, w)
        case .centerCrop(let h, let w): try positive("center_crop", h, w)
        case .randomResizedCrop(let t): try t.validate()
        case .horizontalFlip(let p): try RandomHorizontalFlip(p: p).validate()
        case .colorJitter(let t): try t.validate()
        case .trivialAugment: break
        case .normalize(let mean, let std):
            guard [1, 3].contains(mean.count), [1, 3].contains(std.count) else {
                throw ImageTransformError.invalidParameter(transform: "normalize", parameter: "mean/std",
                                                           message: "need 1 or 3 values each, got \(mean.count) and \(std.count)")
            }
            guard std.allSatisfy({ $0 != 0 && $0.isFinite }), mean.allSatisfy(\.isFinite) else {
                throw ImageTransformError.invalidParameter(transform: "normalize", parameter: "std",
                                                           message: "std \(std) must be finite and non-zero")
            }
        }
    }

    /// Applies the step; deterministic steps ignore `random`.
    public func apply(_ image: RGBImage, random: inout AugmentationRandom) -> RGBImage {
        switch self {
        case .resizeShorterSide(let s): return ImageTransforms.resizeShorterSide(image, to: s)
        case .resize(let h, let w): return ImageTransforms.resize(image, height: h, width: w)
        case .centerCrop(let h, let w): return ImageTransforms.centerCrop(image, height: h, width: w)
        case .randomResizedCrop(let t): return t.apply(image, random: &random)
        case .horizontalFlip(let p): return RandomHorizontalFlip(p: p).apply(image, random: &random)
        case .colorJitter(let t): return t.apply(image, random: &random)
        case .trivialAugment: return TrivialAugmentWide().apply(image, random: &random)
        case .normalize(let mean, let std): return ImageTransforms.normalize(image, mean: mean, std: std)
        }
    }
}

/// A sequence of transforms: what the pipeline applies to one image.
public struct ImageTransformPipeline: Sendable, Equatable, Codable {
    public var steps: [ImageTransform]

    public init(_ steps: [ImageTransform]) { self.steps = steps }

    public init(steps: [ImageTransform]) { self.steps = steps }

    /// Whether any step draws random numbers (evaluation pipelines should have none).
    public var isRandom: Bool { steps.contains { $0.isRandom } }

    /// Validates every step (see `ImageTransform.validate()`).
    public func validate() throws {
        for step in steps { try step.validate() }
    }

    /// Runs the steps in order. A resize immediately followed by a center crop that fits runs as
    /// one resample producing only the cropped pixels (same values as the two steps).
    public func apply(_ image: RGBImage, random: inout AugmentationRandom) -> RGBImage {
        var out = image
        var i = 0
        while i < steps.count {
            if i + 1 < steps.count, case .centerCrop(let ch, let cw) = steps[i + 1] {
                switch steps[i] {
                case .resizeShorterSide(let s):
                    out = ImageTransforms.resizeShorterSideAndCenterCrop(out, size: s, cropHeight: ch, cropWidth: cw)
                    i += 2
                    continue
                case .resize(let h, let w) where ch > 0 && cw > 0 && ch <= h && cw <= w && out.width > 0 && out.height > 0:
                    let o = ImageTransforms.centerCropOrigin(height: h, width: w, cropHeight: ch, cropWidth: cw)
                    let rows = ResampleAxis.bilinear(inSize: out.height, outSize: h, antialias: true)
                        .sliced(o.top..<(o.top + ch))
                    let cols = ResampleAxis.bilinear(inSize: out.width, outSize: w, antialias: true)
                        .sliced(o.left..<(o.left + cw))
                    out = ImageTransforms.resample(out, rows: rows, cols: cols)
                    i += 2
                    continue
                default:
                    break
                }
            }
            out = steps[i].apply(out, random: &random)
            i += 1
        }
        return out
    }

    /// Runs a pipeline without a per-image random stream: meant for pipelines whose `isRandom`
    /// is false. Random steps, if any, draw from the fixed stream (seed 0, epoch 0, row 0).
    public func apply(_ image: RGBImage) -> RGBImage {
        var random = AugmentationRandom(seed: 0, epoch: 0, row: 0)
        return apply(image, random: &random)
    }
}

// MARK: - Defaults and names

extension ImageTransformPipeline {
    /// AutoMM's evaluation transforms: resize the shorter side to `size`, center crop `size`×`size`.
    public static func evaluation(size: Int) -> Self {
        Self([.resizeShorterSide(size), .centerCrop(size, size)])
    }

    /// AutoMM's default training transforms (`train_transforms: ["resize_shorter_side",
    /// "center_crop", "trivial_augment"]`): the evaluation steps followed by TrivialAugmentWide.
    public static func training(size: Int) -> Self {
        Self([.resizeShorterSide(size), .centerCrop(size, size), .trivialAugment])
    }

    /// The transform names `named(_:size:)` accepts, with what each becomes.
    public static let knownNames: [String] = [
        "resize_shorter_side", "resize", "center_crop", "random_resize_crop", "random_horizontal_flip",
        "color_jitter", "trivial_augment",
    ]

    /// Builds a pipeline from AutoMM transform names for images of `size`×`size`:
    /// `resize_shorter_side` → shorter side to `size`; `resize` → `size`×`size`;
    /// `center_crop` → `size`×`size`; `random_resize_crop` → RandomResizedCrop(size) with
    /// torchvision's default scale and ratio; `random_horizontal_flip` → p = 0.5;
    /// `color_jitter` → ColorJitter(brightness: 0.1, contrast: 0.1, saturation: 0.1) (AutoMM's
    /// setting); `trivial_augment` → TrivialAugmentWide().
    /// Throws `ImageTransformError.unknownTransform` (listing the known names) or
    /// `.invalidParameter` when `size < 1`.
    public static func named(_ names: [String], size: Int) throws -> ImageTransformPipeline {
        guard size > 0 else {
            throw ImageTransformError.invalidParameter(transform: names.first ?? "image transforms",
                                                       parameter: "size", message: "\(size) must be positive")
        }
        let steps: [ImageTransform] = try names.map { name in
            switch name {
            case "resize_shorter_side": return .resizeShorterSide(size)
            case "resize": return .resize(size, size)
            case "center_crop": return .centerCrop(size, size)
            case "random_resize_crop": return .randomResizedCrop(RandomResizedCrop(height: size, width: size))
            case "random_horizontal_flip": return .horizontalFlip(p: 0.5)
            case "color_jitter": return .colorJitter(ColorJitter(brightness: 0.1, contrast: 0.1, saturation: 0.1))
            case "trivial_augment": return .trivialAugment
            default: throw ImageTransformError.unknownTransform(name: name, known: knownNames)
            }
        }
        return ImageTransformPipeline(steps)
    }
}

// MARK: - Errors

/// Why a transform configuration was rejected.
public enum ImageTransformError: Error, Equatable, CustomStringConvertible {
    /// A transform name no entry of `known` matches.
    case unknownTransform(name: String, known: [String])
    /// A parameter out of range.
    case invalidParameter(transform: String, parameter: String, message: String)

    public var description: String {
        switch self {
        case .unknownTransform(let name, let known):
            return "unknown image transform \"\(name)\"; known transforms: \(known.joined(separator: ", "))"
        case .invalidParameter(let transform, let parameter, let message):
            return "image transform \(transform): \(parameter) \(message)"
        }
    }
}
