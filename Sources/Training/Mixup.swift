import Foundation
import TensorEngine

/// Mixup and CutMix for an image batch, as timm's `Mixup` in batch mode (AutoMM's
/// `data.mixup`, which uses timm's class): one draw per batch decides whether and how the batch
/// mixes with itself reversed (row i with row N − 1 − i).
///
/// Per batch: with probability `prob` the batch mixes, otherwise λ = 1 (pixels untouched). When
/// it mixes and both alphas are > 0, CutMix is chosen with probability `switchProb`, else Mixup;
/// when only one alpha is > 0 that method is used. λ ~ Beta(α, α) of the chosen method.
/// * Mixup: `x ← λ·x + (1 − λ)·flip(x)`.
/// * CutMix (timm's `rand_bbox`): ratio √(1 − λ), box h = ⌊H·ratio⌋, w = ⌊W·ratio⌋ around a
///   uniform centre (cy, cx) ∈ [0, H) × [0, W), rows `clip(cy − h/2) ..< clip(cy + (h+1)/2)`
///   (integer halves, clipped to the image), columns alike; the box is copied from the flipped
///   batch, and with `correctLambda` (timm's default) λ becomes 1 − box area / (H·W).
/// * Targets: smoothed one-hot rows y (off `s/C`, on `1 − s + s/C`, s = `labelSmoothing`) mixed
///   as `λ·y + (1 − λ)·flip(y)`; rows sum to 1. Train on them with `softTargetCrossEntropy`.
///
/// Unlike timm's, the batch need not be even (AutoMM's subclass drops that check): an odd batch's
/// middle row mixes with itself. Random numbers come from Philox keyed by (seed, step), so a step
/// mixes the same way on every run and thread count (see `generator(step:)`).
public struct Mixup: Codable, Sendable, Equatable {
    /// Mixup's Beta parameter; Mixup is off when 0 (timm's `mixup_alpha`, AutoMM's default 0.8).
    public var mixupAlpha: Double
    /// CutMix's Beta parameter; CutMix is off when 0 (`cutmix_alpha`, AutoMM's default 1).
    public var cutmixAlpha: Double
    /// Probability that a batch is mixed at all (`prob`, default 1).
    public var prob: Double
    /// Probability of CutMix instead of Mixup when both are on (`switch_prob`, default 0.5).
    public var switchProb: Double
    /// Label smoothing of the targets (`label_smoothing`, AutoMM's default 0.1).
    public var labelSmoothing: Double
    /// Number of classes of the targets.
    public var classes: Int
    /// Recompute λ from the clipped CutMix box (`correct_lam`, default true).
    public var correctLambda: Bool
    /// Keys the per-step draws.
    public var seed: UInt64

    public init(mixupAlpha: Double = 0.8, cutmixAlpha: Double = 1, prob: Double = 1, switchProb: Double = 0.5,
                labelSmoothing: Double = 0.1, classes: Int, correctLambda: Bool = true, seed: UInt64) {
        self.mixupAlpha = mixupAlpha
        self.cutmixAlpha = cutmixAlpha
        self.prob = prob
        self.switchProb = switchProb
        self.labelSmoothing = labelSmoothing
        self.classes = classes
        self.correctLambda = correctLambda
        self.seed = seed
    }

    /// Throws `invalidHyperparameter` (component "mixup") for an unusable setting. `apply` checks
    /// it too; `draw` assumes valid settings.
    public func validate() throws {
        try requireHyper(mixupAlpha.isFinite && mixupAlpha >= 0, "mixup", "mixupAlpha", "must be a finite number >= 0 (0 turns Mixup off), got \(fmt(mixupAlpha))")
        try requireHyper(cutmixAlpha.isFinite && cutmixAlpha >= 0, "mixup", "cutmixAlpha", "must be a finite number >= 0 (0 turns CutMix off), got \(fmt(cutmixAlpha))")
        try requireHyper(mixupAlpha > 0 || cutmixAlpha > 0, "mixup", "mixupAlpha", "and cutmixAlpha are both 0; set one of them > 0 or leave mixup off")
        try requireHyper(prob >= 0 && prob <= 1, "mixup", "prob", "must be in [0, 1], got \(fmt(prob))")
        try requireHyper(switchProb >= 0 && switchProb <= 1, "mixup", "switchProb", "must be in [0, 1], got \(fmt(switchProb))")
        try requireHyper(labelSmoothing >= 0 && labelSmoothing <= 1, "mixup", "labelSmoothing", "must be in [0, 1], got \(fmt(labelSmoothing))")
        try requireHyper(classes >= 1, "mixup", "classes", "must be >= 1, got \(classes)")
    }

    /// What a batch's draw decided.
    public enum Method: String, Codable, Sendable, Equatable {
        case none, mixup, cutmix
    }

    /// The parameters drawn for one step.
    public struct Draw: Sendable, Equatable {
        /// What was applied.
        public var method: Method
        /// The weight of the original rows (after CutMix's correction); 1 when nothing mixed.
        public var lambda: Double
        /// The Beta draw before CutMix's correction (1 when nothing mixed).
        public var sampledLambda: Double
        /// CutMix's box: rows `top..<bottom`, columns `left..<right` (nil for Mixup or none).
        public var box: (top: Int, bottom: Int, left: Int, right: Int)?

        public static func == (a: Draw, b: Draw) -> Bool {
            a.method == b.method && a.lambda == b.lambda && a.sampledLambda == b.sampledLambda
                && a.box?.top == b.box?.top && a.box?.bottom == b.box?.bottom && a.box?.left == b.box?.left && a.box?.right == b.box?.right
        }
    }

    /// The generator of `step`'s draws: seeded with the first two words of
    /// `philox(counter: step, key: seed ^ 0x4D49_5855_505F_4358)`.
    public func generator(step: Int) -> RandomGenerator {
        let block = philox(counter: UInt64(truncatingIfNeeded: step), key: seed ^ 0x4D49_5855_505F_4358)
        return RandomGenerator(seed: UInt64(block.0) << 32 | UInt64(block.1))
    }

    /// The draw of `step` for images of `height` × `width`. Order of draws: the `prob` uniform;
    /// when both methods are on, the `switchProb` uniform; λ; for CutMix cy, then cx.
    public func draw(step: Int, height: Int, width: Int) -> Draw {
        var rng = generator(step: step)
        let none = Draw(method: .none, lambda: 1, sampledLambda: 1, box: nil)
        guard rng.nextUnitDouble() < prob else { return none }
        let cutmix: Bool
        if mixupAlpha > 0 && cutmixAlpha > 0 {
            cutmix = rng.nextUnitDouble() < switchProb
        } else {
            cutmix = cutmixAlpha > 0
        }
        let alpha = cutmix ? cutmixAlpha : mixupAlpha
        let lam = rng.nextBeta(alpha, alpha)
        guard cutmix else { return Draw(method: .mixup, lambda: lam, sampledLambda: lam, box: nil) }
        let ratio = (1 - lam).squareRoot()
        let cutH = Int(Double(height) * ratio), cutW = Int(Double(width) * ratio)
        let cy = rng.nextInt(below: height), cx = rng.nextInt(below: width)
        let top = Swift.min(Swift.max(cy - cutH / 2, 0), height), bottom = Swift.min(Swift.max(cy + (cutH + 1) / 2, 0), height)
        let left = Swift.min(Swift.max(cx - cutW / 2, 0), width), right = Swift.min(Swift.max(cx + (cutW + 1) / 2, 0), width)
        let corrected = correctLambda ? 1 - Double((bottom - top) * (right - left)) / Double(height * width) : lam
        return Draw(method: .cutmix, lambda: corrected, sampledLambda: lam, box: (top, bottom, left, right))
    }

    /// Mixes `pixels` [N, C, H, W] and their class indices for optimizer step `step`. Returns new
    /// tensors (the input is not changed): the mixed pixels, the soft targets [N, classes] and the
    /// draw (its `lambda` tells how to mix other inputs of the batch).
    public func apply(pixels: Tensor, targets: [Int], step: Int) throws -> (pixels: Tensor, targets: Tensor, draw: Draw) {
        guard pixels.rank == 4, pixels.shape.allSatisfy({ $0 >= 1 }) else {
            throw TrainingError.invalidParameter(component: "mixup", detail: "pixels must be [batch, channels, height, width], got \(shapeString(pixels.shape))")
        }
        try validate()
        let n = pixels.shape[0], h = pixels.shape[2], w = pixels.shape[3]
        let plane = pixels.count / n
        guard targets.count == n else {
            throw TrainingError.invalidParameter(component: "mixup", detail: "\(targets.count) targets for a batch of \(n) images")
        }
        let d = draw(step: step, height: h, width: w)
        let onehot = try smoothedOneHot(targets, classes: classes, smoothing: Float(labelSmoothing))
        let out = pixels.clone()
        let src = out.clone()
        let lam = Float(d.lambda)
        switch d.method {
        case .none:
            break
        case .mixup:
            for i in 0..<n {
                let a = src.data + i * plane, b = src.data + (n - 1 - i) * plane, o = out.data + i * plane
                for j in 0..<plane { o[j] = a[j] * lam + b[j] * (1 - lam) }
            }
        case .cutmix:
            guard let box = d.box else { break }
            let channels = pixels.shape[1]
            for i in 0..<n {
                for c in 0..<channels {
                    let a = (n - 1 - i) * plane + c * h * w, o = i * plane + c * h * w
                    for y in box.top..<box.bottom {
                        for x in box.left..<box.right { out.data[o + y * w + x] = src.data[a + y * w + x] }
                    }
                }
            }
        }
        let k = classes
        let mixed = Tensor(uninitialized: [n, k])
        let y = onehot.data
        for i in 0..<n {
            for j in 0..<k { mixed.data[i * k + j] = y[i * k + j] * lam + y[(n - 1 - i) * k + j] * (1 - lam) }
        }
        return (out, mixed, d)
    }
}

extension RandomGenerator {
    /// A uniform Double in [0, 1) with 53 random bits (one Philox counter).
    public mutating func nextUnitDouble() -> Double {
        let s = take(2)
        let bits = (UInt64(s.bits(0)) << 32 | UInt64(s.bits(1))) >> 11
        return Double(bits) * 0x1p-53
    }

    /// A standard normal draw (Box–Muller from two `nextUnitDouble`s, the cosine branch).
    public mutating func nextStandardNormal() -> Double {
        let u1 = 1 - nextUnitDouble(), u2 = nextUnitDouble()
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
    }

    /// A Gamma(shape, 1) draw by Marsaglia & Tsang (2000): for shape ≥ 1 with d = shape − 1/3,
    /// c = 1/√(9d), repeat x ~ N(0, 1), v = (1 + cx)³ (again when v ≤ 0), u ~ U[0, 1) until
    /// u < 1 − 0.0331x⁴ or log u < x²/2 + d(1 − v + log v), and return d·v; for shape < 1,
    /// Gamma(shape + 1)·U^(1/shape). `shape` must be > 0.
    public mutating func nextGamma(_ shape: Double) -> Double {
        if shape < 1 {
            let g = nextGamma(shape + 1)
            let u = 1 - nextUnitDouble()
            return g * Foundation.pow(u, 1 / shape)
        }
        let d = shape - 1.0 / 3, c = 1 / (9 * d).squareRoot()
        while true {
            var x = 0.0, v = 0.0
            repeat {
                x = nextStandardNormal()
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = nextUnitDouble()
            if u < 1 - 0.0331 * x * x * x * x { return d * v }
            if u > 0, Foundation.log(u) < 0.5 * x * x + d * (1 - v + Foundation.log(v)) { return d * v }
        }
    }

    /// A Beta(a, b) draw as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b); a, b > 0.
    public mutating func nextBeta(_ a: Double, _ b: Double) -> Double {
        let x = nextGamma(a), y = nextGamma(b)
        let s = x + y
        return s > 0 ? x / s : 0.5
    }
}
