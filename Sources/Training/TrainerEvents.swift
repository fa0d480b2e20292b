import Foundation
import TensorEngine

/// What the trainer reports to its callbacks, in this order: `trainBegin`; per epoch
/// `epochBegin`, then per optimizer step `step` followed — when a validation is due — by
/// `validation` and any `checkpoint`s that the validation produced; `epochEnd`; finally
/// `trainEnd`. Epochs and steps are 1-based.
public enum TrainerEvent {
    /// Before the first epoch; `totalSteps` = epochs × optimizer steps per epoch.
    case trainBegin(totalSteps: Int)
    /// Before the first step of `epoch`.
    case epochBegin(epoch: Int)
    /// After an optimizer step and its scheduler step.
    case step(StepRecord)
    /// A validation's results (only when a validation closure is given).
    case validation(ValidationRecord)
    /// A callback kept a copy of the weights (`BestWeights`, `TopKCheckpoints`).
    case checkpoint(CheckpointRecord)
    /// The finished (or, when training stopped, partial) epoch, already appended to the history.
    case epochEnd(EpochRecord)
    /// After the last epoch (decisions returned for it are ignored).
    case trainEnd(TrainingSummary)
}

/// One optimizer step.
public struct StepRecord: Sendable, Equatable {
    /// The epoch, 1-based.
    public var epoch: Int
    /// The optimizer step within the epoch, 1-based.
    public var step: Int
    /// Optimizer steps so far in this fit, this one included.
    public var globalStep: Int
    /// The step's loss: the mean over its micro-batches, each weighted by its rows.
    public var loss: Double
    /// The first group's learning rate this step used.
    public var lr: Double
    /// Every group's learning rate this step used, in group order.
    public var learningRates: [Double]
    /// Training rows the step saw (all its micro-batches).
    public var rows: Int

    public init(epoch: Int, step: Int, globalStep: Int, loss: Double, lr: Double, learningRates: [Double]? = nil, rows: Int = 0) {
        self.epoch = epoch
        self.step = step
        self.globalStep = globalStep
        self.loss = loss
        self.lr = lr
        self.learningRates = learningRates ?? [lr]
        self.rows = rows
    }
}

/// A new kept copy of the weights.
public struct CheckpointRecord: Sendable, Equatable {
    /// The callback that took it ("best_weights", "top_k_checkpoints").
    public var source: String
    /// The monitored key.
    public var monitor: String
    /// The monitored value of the validation the weights belong to.
    public var value: Double
    /// Its global optimizer step.
    public var step: Int
    /// Its epoch, 1-based.
    public var epoch: Int
    /// Its fractional epoch (see `ValidationRecord.epochProgress`).
    public var epochProgress: Double
    /// 1 for the best kept copy, 2 for the runner-up, ….
    public var rank: Int

    public init(source: String, monitor: String, value: Double, step: Int, epoch: Int, epochProgress: Double, rank: Int) {
        self.source = source
        self.monitor = monitor
        self.value = value
        self.step = step
        self.epoch = epoch
        self.epochProgress = epochProgress
        self.rank = rank
    }
}

/// A callback's answer to an event.
public enum TrainerDecision: Equatable, Sendable {
    /// Keep training.
    case proceed
    /// End training after the current optimizer step (before the first one when answered to
    /// `trainBegin`). A validation closure runs once more first when the last validation is older
    /// than that step; `epochEnd` and `trainEnd` still follow.
    case stop(reason: String)
}

/// Observes training and may stop it. Callbacks run in the order given to the trainer; all of
/// them see every event even when an earlier one answered `.stop`; the first reason is kept.
/// A thrown error ends training and propagates out of `fit`.
public protocol TrainerCallback: AnyObject {
    func on(_ event: TrainerEvent, trainer: any TrainerContext) throws -> TrainerDecision
}

/// What callbacks can see of the running trainer.
public protocol TrainerContext: AnyObject {
    /// The run's settings.
    var options: TrainerOptions { get }
    /// The current 1-based epoch (0 before the first).
    var epoch: Int { get }
    /// Optimizer steps taken in this fit.
    var globalStep: Int { get }
    /// Optimizer steps per epoch.
    var stepsPerEpoch: Int { get }
    /// Optimizer steps of the whole fit.
    var totalSteps: Int { get }
    /// The model's parameters by name, in a fixed order.
    var parameters: [(name: String, tensor: Tensor)] { get }
    /// Everything that makes up the model's weights: the parameters plus tensors that change
    /// without a gradient, such as BatchNorm's running statistics. What `BestWeights` keeps.
    var state: [(name: String, tensor: Tensor)] { get }
    /// The optimizer's parameter-group names in group order ("group<i>" for unnamed groups).
    var groupNames: [String] { get }
    /// The epochs and validations of this fit so far.
    var history: History { get }
    /// Announces a kept copy of the weights: the trainer sends `.checkpoint(record)` to every
    /// callback right after the current event's dispatch.
    func reportCheckpoint(_ record: CheckpointRecord)
}

/// A callback that tracks the best validation of a monitored value; the trainer copies the first
/// such callback's result into `TrainingSummary`.
public protocol MonitoringCallback: TrainerCallback {
    /// The key watched ("val.loss", "val.accuracy", "train_loss", …).
    var monitor: String { get }
    /// Epoch of the best validation so far (nil before one was seen).
    var bestEpoch: Int? { get }
    /// Global optimizer step of the best validation so far.
    var bestStep: Int? { get }
    /// The best value so far.
    var bestValue: Double? { get }
}

/// The result of `Trainer.fit`.
public struct TrainingSummary: Codable, Sendable, Equatable {
    /// One record per (possibly partial) epoch and one per validation.
    public var history: History
    /// The epoch of the best validation by the first monitoring callback (`EarlyStopping`,
    /// `BestWeights`, `TopKCheckpoints`), if any.
    public var bestEpoch: Int?
    /// The global optimizer step of that validation.
    public var bestStep: Int?
    /// The monitored value there.
    public var bestValue: Double?
    /// The monitored key.
    public var monitor: String?
    /// Why training ended before the last epoch (a callback or the time limit).
    public var stoppedEarly: String?
    /// Optimizer steps taken.
    public var steps: Int
    /// Wall-clock seconds of the whole fit (by the trainer's clock).
    public var seconds: Double

    public init(history: History, bestEpoch: Int? = nil, bestStep: Int? = nil, bestValue: Double? = nil, monitor: String? = nil,
                stoppedEarly: String? = nil, steps: Int, seconds: Double) {
        self.history = history
        self.bestEpoch = bestEpoch
        self.bestStep = bestStep
        self.bestValue = bestValue
        self.monitor = monitor
        self.stoppedEarly = stoppedEarly
        self.steps = steps
        self.seconds = seconds
    }
}

/// A monotonic source of seconds for the trainer's timings and its time limit. Tests inject a
/// clock they advance by hand.
public protocol TrainingClock: AnyObject {
    /// Seconds since an arbitrary fixed origin; never decreases.
    func now() -> Double
}

/// `ContinuousClock` seconds since the clock was made.
public final class SystemTrainingClock: TrainingClock {
    let clock = ContinuousClock()
    let origin: ContinuousClock.Instant

    public init() { origin = clock.now }

    public func now() -> Double { seconds(origin.duration(to: clock.now)) }
}

/// A `Duration` in seconds.
func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}
