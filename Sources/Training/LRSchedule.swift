import Foundation
import TensorEngine

/// A learning-rate multiplier as a function of the scheduler step (0 before the first optimizer
/// step, like PyTorch's `LambdaLR.last_epoch`).
public protocol LearningRateSchedule {
    /// The factor applied to each group's base learning rate at `step`.
    func multiplier(step: Int) -> Double
    /// Throws when the schedule's settings are invalid.
    func validate() throws
}

extension LearningRateSchedule {
    public func validate() throws {}
}

/// The Hugging Face transformers schedules (`transformers.optimization`), formula for formula.
/// W = `warmupSteps`, T = `totalSteps`, t = step; every schedule starts with the linear warmup
/// `t / max(1, W)` for t < W.
public enum LRSchedule: LearningRateSchedule, Equatable, Sendable {
    /// 1 throughout (`get_constant_schedule`).
    case constant
    /// Warmup, then 1 (`get_constant_schedule_with_warmup`).
    case constantWithWarmup(warmupSteps: Int)
    /// Warmup, then `max(0, (T − t) / max(1, T − W))` (`get_linear_schedule_with_warmup`).
    case linear(warmupSteps: Int, totalSteps: Int)
    /// Warmup, then `max(0, ½(1 + cos(π · cycles · 2 · progress)))`, progress = (t − W) / max(1, T − W)
    /// (`get_cosine_schedule_with_warmup`, HF default cycles 0.5).
    case cosine(warmupSteps: Int, totalSteps: Int, numCycles: Double = 0.5)
    /// The cosine factor rescaled to end at `minLRRate`: `max(0, f·(1 − minLRRate) + minLRRate)`
    /// (`get_cosine_with_min_lr_schedule_with_warmup` with `min_lr_rate`).
    case cosineWithMinLR(warmupSteps: Int, totalSteps: Int, numCycles: Double = 0.5, minLRRate: Double)
    /// Warmup, then `cycles` hard restarts of a half cosine; 0 from T on
    /// (`get_cosine_with_hard_restarts_schedule_with_warmup`).
    case cosineWithHardRestarts(warmupSteps: Int, totalSteps: Int, numCycles: Int = 1)
    /// Warmup, then `((lrInit − lrEnd)·(1 − (t − W)/(T − W))^power + lrEnd) / lrInit`, and
    /// `lrEnd / lrInit` after T (`get_polynomial_decay_schedule_with_warmup`; `lrInit` is the
    /// optimizer's default lr, HF's `optimizer.defaults["lr"]`).
    case polynomial(warmupSteps: Int, totalSteps: Int, lrInit: Double, lrEnd: Double = 1e-7, power: Double = 1)
    /// Warmup, then `1 / √((t + timescale − W) / timescale)` (`get_inverse_sqrt_schedule`;
    /// timescale nil means W, or 10 000 when W is 0).
    case inverseSqrt(warmupSteps: Int, timescale: Int? = nil)

    static let component = "lr_schedule"

    public func multiplier(step t: Int) -> Double {
        switch self {
        case .constant:
            return 1
        case .constantWithWarmup(let w):
            if t < w { return warmup(t, w) }
            return 1
        case .linear(let w, let total):
            if t < w { return warmup(t, w) }
            return Swift.max(0, Double(total - t) / Double(Swift.max(1, total - w)))
        case .cosine(let w, let total, let cycles):
            if t < w { return warmup(t, w) }
            let progress = Double(t - w) / Double(Swift.max(1, total - w))
            return Swift.max(0, 0.5 * (1 + Foundation.cos(Double.pi * cycles * 2 * progress)))
        case .cosineWithMinLR(let w, let total, let cycles, let minRate):
            if t < w { return warmup(t, w) }
            let progress = Double(t - w) / Double(Swift.max(1, total - w))
            let f = 0.5 * (1 + Foundation.cos(Double.pi * cycles * 2 * progress))
            return Swift.max(0, f * (1 - minRate) + minRate)
        case .cosineWithHardRestarts(let w, let total, let cycles):
            if t < w { return warmup(t, w) }
            let progress = Double(t - w) / Double(Swift.max(1, total - w))
            if progress >= 1 { return 0 }
            let phase = pyMod1(Double(cycles) * progress)
            return Swift.max(0, 0.5 * (1 + Foundation.cos(Double.pi * phase)))
        case .polynomial(let w, let total, let lrInit, let lrEnd, let power):
            if t < w { return warmup(t, w) }
            if t > total { return lrEnd / lrInit }
            let range = lrInit - lrEnd
            let decaySteps = Double(total - w)
            let remaining = 1 - Double(t - w) / decaySteps
            return (range * Foundation.pow(remaining, power) + lrEnd) / lrInit
        case .inverseSqrt(let w, let timescale):
            if t < w { return warmup(t, w) }
            let ts = timescale ?? (w != 0 ? w : 10_000)
            let shift = ts - w
            return 1 / (Double(t + shift) / Double(ts)).squareRoot()
        }
    }

    public func validate() throws {
        let c = LRSchedule.component
        func steps(_ w: Int, _ total: Int?) throws {
            try requireHyper(w >= 0, c, "warmupSteps", "must be >= 0, got \(w)")
            if let total { try requireHyper(total >= 0, c, "totalSteps", "must be >= 0, got \(total)") }
        }
        switch self {
        case .constant:
            break
        case .constantWithWarmup(let w):
            try steps(w, nil)
        case .linear(let w, let total):
            try steps(w, total)
        case .cosine(let w, let total, let cycles):
            try steps(w, total)
            try requireHyper(cycles.isFinite, c, "numCycles", "must be finite, got \(fmt(cycles))")
        case .cosineWithMinLR(let w, let total, let cycles, let minRate):
            try steps(w, total)
            try requireHyper(cycles.isFinite, c, "numCycles", "must be finite, got \(fmt(cycles))")
            try requireHyper(minRate.isFinite && minRate >= 0 && minRate <= 1, c, "minLRRate", "must be in [0, 1], got \(fmt(minRate))")
        case .cosineWithHardRestarts(let w, let total, let cycles):
            try steps(w, total)
            try requireHyper(cycles >= 1, c, "numCycles", "must be >= 1, got \(cycles)")
        case .polynomial(let w, let total, let lrInit, let lrEnd, let power):
            try steps(w, total)
            try requireHyper(total > w, c, "totalSteps", "must be greater than warmupSteps (\(w)) for polynomial decay, got \(total)")
            try requireHyper(lrEnd.isFinite && lrEnd >= 0, c, "lrEnd", "must be a finite number >= 0, got \(fmt(lrEnd))")
            try requireHyper(lrInit.isFinite && lrInit > lrEnd, c, "lrEnd",
                             "(\(fmt(lrEnd))) must be smaller than the initial lr (\(fmt(lrInit)))")
            try requireHyper(power.isFinite && power >= 0, c, "power", "must be a finite number >= 0, got \(fmt(power))")
        case .inverseSqrt(let w, let timescale):
            try steps(w, nil)
            if let ts = timescale { try requireHyper(ts > 0, c, "timescale", "must be > 0, got \(ts)") }
        }
    }

    @inline(__always)
    func warmup(_ t: Int, _ w: Int) -> Double { Double(t) / Double(Swift.max(1, w)) }

    /// Python's `x % 1.0` (result in [0, 1) for any finite x).
    func pyMod1(_ x: Double) -> Double {
        let r = x - x.rounded(.down)
        return r >= 1 ? 0 : r
    }
}

/// Sets each group's `lr = baseLR · schedule.multiplier(step)`, like PyTorch's `LambdaLR`.
///
/// Base learning rates are the groups' `lr` when the scheduler is created (so layer-wise rates
/// keep their ratios). Creating the scheduler applies step 0; call `step()` after every
/// `optimizer.step()`. With warmup the first optimizer step therefore runs at lr 0, exactly as in
/// transformers' Trainer.
public final class Scheduler {
    public let optimizer: any Optimizer
    public let schedule: any LearningRateSchedule
    /// One base learning rate per optimizer group.
    public private(set) var baseLRs: [Float]
    /// Scheduler steps taken (PyTorch's `last_epoch`); the multiplier in force is for this step.
    public private(set) var currentStep: Int = 0

    public init(optimizer: any Optimizer, schedule: any LearningRateSchedule) throws {
        try schedule.validate()
        self.optimizer = optimizer
        self.schedule = schedule
        self.baseLRs = optimizer.groups.map(\.lr)
        apply()
    }

    /// Advances one step and updates the groups' learning rates.
    public func step() {
        currentStep += 1
        apply()
    }

    /// Jumps to `step` (resuming from a checkpoint) and updates the learning rates.
    public func setStep(_ step: Int) throws {
        try requireHyper(step >= 0, "scheduler", "step", "must be >= 0, got \(step)")
        currentStep = step
        apply()
    }

    /// Replaces the base learning rates (one per group), e.g. when restoring a checkpoint.
    public func setBaseLRs(_ lrs: [Float]) throws {
        try requireHyper(lrs.count == optimizer.groups.count, "scheduler", "baseLRs",
                         "needs one value per group (\(optimizer.groups.count)), got \(lrs.count)")
        for (i, lr) in lrs.enumerated() {
            try requireHyper(lr.isFinite && lr >= 0, "scheduler", "baseLRs", "must be finite numbers >= 0, got \(fmt(lr)) for group \(i)")
        }
        baseLRs = lrs
        apply()
    }

    /// The multiplier at the current step.
    public var currentMultiplier: Double { schedule.multiplier(step: currentStep) }

    /// The learning rates the groups hold now.
    public var lastLRs: [Float] { optimizer.groups.map(\.lr) }

    func apply() {
        var groups = optimizer.groups
        // Groups added after the scheduler was created keep their own lr as base.
        if baseLRs.count < groups.count { baseLRs += groups[baseLRs.count...].map(\.lr) }
        let m = schedule.multiplier(step: currentStep)
        for i in groups.indices {
            groups[i].lr = Float(decimalDouble(baseLRs[i]) * m)
        }
        optimizer.groups = groups
    }
}
