import Foundation
import TensorEngine

/// How the gradients are limited before every optimizer step (Lightning's
/// `gradient_clip_algorithm` with `gradient_clip_val`; AutoMM's default is `.norm(1)`).
public enum GradientClipping: Codable, Sendable, Equatable {
    /// Scale all gradients together so that their global L2 norm is at most this value
    /// (`clipGradNorm`, `torch.nn.utils.clip_grad_norm_`).
    case norm(Float)
    /// Clamp every gradient element to [−value, value] (`clipGradValue`,
    /// `torch.nn.utils.clip_grad_value_`).
    case value(Float)

    /// Applies the clipping to the gradients of `params`.
    func apply(to params: [Tensor]) {
        switch self {
        case .norm(let maxNorm): clipGradNorm(params, maxNorm: maxNorm)
        case .value(let limit): clipGradValue(params, clipValue: limit)
        }
    }
}

/// Settings of a `Trainer` run.
public struct TrainerOptions: Codable, Sendable, Equatable {
    /// Number of passes over the samples (≥ 1).
    public var epochs: Int
    /// Samples per micro-batch, i.e. per call of the step closure (≥ 1); the last batch of an
    /// epoch may be smaller. An optimizer step sees `batchSize × accumulation` samples.
    public var batchSize: Int
    /// Keys the per-epoch shuffles (see `Trainer.epochOrder`).
    public var seed: UInt64
    /// Visit samples in a fresh seeded order every epoch; false keeps 0, 1, 2, ….
    public var shuffle: Bool
    /// Skip the last batch of an epoch when it is smaller than `batchSize`.
    public var dropLast: Bool
    /// Gradient clipping before every optimizer step (nil: none).
    public var gradClip: GradientClipping?
    /// Micro-batches whose gradients are summed into one optimizer step (≥ 1; Lightning's
    /// `accumulate_grad_batches`). Each micro-batch's loss is weighted by its share of the step's
    /// rows, so for a mean loss the step equals one step on the concatenated batch. The last
    /// step of an epoch takes whatever micro-batches are left.
    public var accumulation: Int
    /// How often validation runs, as a fraction of an epoch in (0, 1] (Lightning's float
    /// `val_check_interval`; AutoMM's default is 0.5, this type's default 1 validates once per
    /// epoch): after every ⌈interval × optimizer steps per epoch⌉ optimizer steps and after the
    /// last step of each epoch, never twice at the same step.
    public var validationInterval: Double
    /// Wall-clock budget in seconds (nil: none). Training stops after the optimizer step during
    /// which the budget ran out, validates once more if the last validation is older than that
    /// step, and ends normally (callbacks see `epochEnd` and `trainEnd`).
    public var timeLimit: Double?

    public init(epochs: Int, batchSize: Int, seed: UInt64, shuffle: Bool = true, dropLast: Bool = false,
                gradClip: GradientClipping? = nil, accumulation: Int = 1, validationInterval: Double = 1,
                timeLimit: Double? = nil) {
        self.epochs = epochs
        self.batchSize = batchSize
        self.seed = seed
        self.shuffle = shuffle
        self.dropLast = dropLast
        self.gradClip = gradClip
        self.accumulation = accumulation
        self.validationInterval = validationInterval
        self.timeLimit = timeLimit
    }

    /// The earlier spelling: `gradClipNorm: c` is `gradClip: .norm(c)`.
    public init(epochs: Int, batchSize: Int, seed: UInt64, shuffle: Bool = true, dropLast: Bool = false, gradClipNorm: Float?) {
        self.init(epochs: epochs, batchSize: batchSize, seed: seed, shuffle: shuffle, dropLast: dropLast,
                  gradClip: gradClipNorm.map { .norm($0) })
    }

    /// Throws `invalidHyperparameter` (component "trainer") for an unusable setting.
    public func validate() throws {
        try requireHyper(epochs >= 1, "trainer", "epochs", "must be >= 1, got \(epochs)")
        try requireHyper(batchSize >= 1, "trainer", "batchSize", "must be >= 1, got \(batchSize)")
        switch gradClip {
        case .norm(let c)?:
            try requireHyper(c.isFinite && c > 0, "trainer", "gradClip", "norm must be a finite number > 0 (or no clipping), got \(fmt(c))")
        case .value(let c)?:
            try requireHyper(c.isFinite && c > 0, "trainer", "gradClip", "value must be a finite number > 0 (or no clipping), got \(fmt(c))")
        case nil:
            break
        }
        try requireHyper(accumulation >= 1, "trainer", "accumulation", "must be >= 1 (1 = no accumulation), got \(accumulation)")
        try requireHyper(validationInterval.isFinite && validationInterval > 0 && validationInterval <= 1, "trainer", "validationInterval",
                         "must be a fraction of an epoch in (0, 1] (0.5 validates twice per epoch), got \(fmt(validationInterval))")
        if let t = timeLimit {
            try requireHyper(t.isFinite && t > 0, "trainer", "timeLimit", "must be a finite number of seconds > 0 (or unset), got \(fmt(t))")
        }
    }

    /// Micro-batches (calls of the step closure) per epoch for `sampleCount` samples.
    public func batchesPerEpoch(sampleCount: Int) -> Int {
        guard sampleCount > 0, batchSize > 0 else { return 0 }
        return dropLast ? sampleCount / batchSize : (sampleCount + batchSize - 1) / batchSize
    }

    /// Optimizer steps per epoch for `sampleCount` samples: ⌈batches / accumulation⌉. What a
    /// learning-rate schedule counts.
    public func stepsPerEpoch(sampleCount: Int) -> Int {
        let batches = batchesPerEpoch(sampleCount: sampleCount)
        let k = Swift.max(1, accumulation)
        return (batches + k - 1) / k
    }

    /// Optimizer steps of a whole fit that no callback or time limit cuts short.
    public func totalSteps(sampleCount: Int) -> Int { stepsPerEpoch(sampleCount: sampleCount) * epochs }

    /// Optimizer steps between two validations inside an epoch: ⌈interval × stepsPerEpoch⌉, at
    /// least 1 (the product is rounded down by 1e-9 first so that 0.1 × 30 gives 3, not 4).
    public func validationEvery(stepsPerEpoch: Int) -> Int {
        Swift.max(1, Int((validationInterval * Double(stepsPerEpoch) - 1e-9).rounded(.up)))
    }
}
