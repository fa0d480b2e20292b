import Foundation
import TensorEngine

/// Settings of a `Trainer` run.
public struct TrainerOptions: Codable, Sendable, Equatable {
    /// Number of passes over the samples (≥ 1).
    public var epochs: Int
    /// Samples per optimizer step (≥ 1); the last batch of an epoch may be smaller.
    public var batchSize: Int
    /// Keys the per-epoch shuffles (see `Trainer.epochOrder`).
    public var seed: UInt64
    /// Visit samples in a fresh seeded order every epoch; false keeps 0, 1, 2, ….
    public var shuffle: Bool
    /// Skip the last batch of an epoch when it is smaller than `batchSize`.
    public var dropLast: Bool
    /// Clip the gradients' global L2 norm to this value before every optimizer step.
    public var gradClipNorm: Float?

    public init(epochs: Int, batchSize: Int, seed: UInt64, shuffle: Bool = true, dropLast: Bool = false, gradClipNorm: Float? = nil) {
        self.epochs = epochs
        self.batchSize = batchSize
        self.seed = seed
        self.shuffle = shuffle
        self.dropLast = dropLast
        self.gradClipNorm = gradClipNorm
    }

    /// Throws `invalidHyperparameter` (component "trainer") for an unusable setting.
    public func validate() throws {
        try requireHyper(epochs >= 1, "trainer", "epochs", "must be >= 1, got \(epochs)")
        try requireHyper(batchSize >= 1, "trainer", "batchSize", "must be >= 1, got \(batchSize)")
        if let c = gradClipNorm {
            try requireHyper(c.isFinite && c > 0, "trainer", "gradClipNorm", "must be a finite number > 0 (or unset), got \(fmt(c))")
        }
    }

    /// Optimizer steps per epoch for `sampleCount` samples.
    public func stepsPerEpoch(sampleCount: Int) -> Int {
        guard sampleCount > 0, batchSize > 0 else { return 0 }
        return dropLast ? sampleCount / batchSize : (sampleCount + batchSize - 1) / batchSize
    }
}

/// What the trainer reports to its callbacks, in this order:
/// `trainBegin`, then per epoch `epochBegin`, one `step` per batch, `validation` (only when a
/// validation closure is given), `epochEnd`; finally `trainEnd`. Epochs and steps are 1-based.
public enum TrainerEvent {
    /// Before the first epoch; `totalSteps` = epochs × steps per epoch.
    case trainBegin(totalSteps: Int)
    /// Before the first step of `epoch`.
    case epochBegin(epoch: Int)
    /// After the optimizer and scheduler steps of batch `step` of `epoch`. `globalStep` counts
    /// optimizer steps so far (this one included), `loss` is the batch loss and `lr` the first
    /// group's learning rate this step used.
    case step(epoch: Int, step: Int, globalStep: Int, loss: Double, lr: Double)
    /// The validation results of `epoch` (keys like "val.loss", "val.accuracy").
    case validation(epoch: Int, metrics: [String: Double])
    /// The finished epoch, already appended to the history.
    case epochEnd(EpochRecord)
    /// After the last epoch (decisions returned for it are ignored).
    case trainEnd(TrainingSummary)
}

/// A callback's answer to an event.
public enum TrainerDecision: Equatable, Sendable {
    /// Keep training.
    case proceed
    /// End training after the current epoch (before the first one when answered to `trainBegin`).
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
    /// The finished epochs of this fit.
    var history: History { get }
}

/// A callback that tracks the best epoch of a monitored value; the trainer copies the first such
/// callback's result into `TrainingSummary`.
public protocol MonitoringCallback: TrainerCallback {
    /// The key watched ("val.loss", "val.accuracy", "train_loss", …).
    var monitor: String { get }
    /// Epoch with the best value so far (nil before one was seen).
    var bestEpoch: Int? { get }
    /// The best value so far.
    var bestValue: Double? { get }
}

/// The result of `Trainer.fit`.
public struct TrainingSummary: Codable, Sendable, Equatable {
    /// One record per completed epoch.
    public var history: History
    /// The best epoch by the first monitoring callback (`EarlyStopping`, `BestWeights`), if any.
    public var bestEpoch: Int?
    /// The monitored value at `bestEpoch`.
    public var bestValue: Double?
    /// The monitored key.
    public var monitor: String?
    /// Why training ended before the last epoch, when a callback stopped it.
    public var stoppedEarly: String?
    /// Optimizer steps taken.
    public var steps: Int
    /// Wall-clock seconds of the whole fit.
    public var seconds: Double

    public init(history: History, bestEpoch: Int? = nil, bestValue: Double? = nil, monitor: String? = nil,
                stoppedEarly: String? = nil, steps: Int, seconds: Double) {
        self.history = history
        self.bestEpoch = bestEpoch
        self.bestValue = bestValue
        self.monitor = monitor
        self.stoppedEarly = stoppedEarly
        self.steps = steps
        self.seconds = seconds
    }
}

/// The generic training loop: it knows samples only by index and the model only through a
/// closure that builds the loss of a batch.
///
///     let trainer = try Trainer(options: TrainerOptions(epochs: 20, batchSize: 32, seed: 7, gradClipNorm: 1),
///                               parameters: model.namedParameters().map { ($0.key, $0.tensor) },
///                               optimizer: opt, scheduler: sched,
///                               callbacks: [EarlyStopping(monitor: "val.loss", mode: .min, patience: 3),
///                                           BestWeights(monitor: "val.loss", mode: .min), ProgressReporter()])
///     let summary = try trainer.fit(sampleCount: n,
///                                   step: { batch in try lossOf(rows: batch) },
///                                   validate: { ["val.loss": try validationLoss()] },
///                                   setTraining: { model.train($0) })
///
/// Every epoch visits `epochOrder(sampleCount:seed:epoch:shuffle:)` in consecutive batches. Per
/// batch: clear the gradients, `loss = step(batch)`, check that it is finite, backward, clip
/// (optional), optimizer step, scheduler step. After the batches: `setTraining(false)`,
/// `validate()` without recording, the callbacks. The model is left in evaluation mode.
/// Same seed, options and thread count ⇒ the same batches and bit-identical weights.
public final class Trainer: TrainerContext {
    public let options: TrainerOptions
    public let parameters: [(name: String, tensor: Tensor)]
    public let state: [(name: String, tensor: Tensor)]
    public let optimizer: any Optimizer
    public let scheduler: Scheduler?
    public let callbacks: [any TrainerCallback]

    public private(set) var epoch = 0
    public private(set) var globalStep = 0
    public private(set) var stepsPerEpoch = 0
    public private(set) var totalSteps = 0
    public private(set) var history = History()

    /// Throws when the options are invalid or two parameters share a name. `buffers` are the
    /// model's tensors that change in training without a gradient (BatchNorm running statistics):
    /// kept and restored with the parameters by `BestWeights`.
    public init(options: TrainerOptions, parameters: [(name: String, tensor: Tensor)], buffers: [(name: String, tensor: Tensor)] = [],
                optimizer: any Optimizer, scheduler: Scheduler? = nil, callbacks: [any TrainerCallback] = []) throws {
        try options.validate()
        var seen = Set<String>()
        for p in parameters where !seen.insert(p.name).inserted {
            throw TrainingError.invalidParameter(component: "trainer", detail: "parameter name '\(p.name)' appears more than once")
        }
        self.options = options
        self.parameters = parameters
        self.state = parameters + buffers
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.callbacks = callbacks
    }

    /// The order in which epoch `epoch` visits `0..<sampleCount`: the identity without shuffling,
    /// otherwise a Fisher–Yates permutation (`RandomGenerator.permutation`) drawn from Philox with
    /// the key `philox(counter: epoch, key: seed ^ 0x5348_5546_464C_4531)` (first two words) — a
    /// pure function of (seed, epoch, sampleCount), independent of threads and of other random draws.
    public static func epochOrder(sampleCount: Int, seed: UInt64, epoch: Int, shuffle: Bool = true) -> [Int] {
        guard sampleCount > 0 else { return [] }
        guard shuffle else { return Array(0..<sampleCount) }
        let block = philox(counter: UInt64(truncatingIfNeeded: epoch), key: seed ^ 0x5348_5546_464C_4531)
        var rng = RandomGenerator(seed: UInt64(block.0) << 32 | UInt64(block.1))
        return rng.permutation(sampleCount)
    }

    /// Trains for `options.epochs` epochs (fewer when a callback stops) and returns the summary.
    ///
    /// - Parameters:
    ///   - sampleCount: number of training samples; batches hold indices into `0..<sampleCount`.
    ///   - step: builds the graph for a batch and returns the scalar loss (recording on).
    ///   - validate: returns this epoch's validation values keyed "val.<name>" (including
    ///     "val.loss"); runs under `withNoGrad` after `setTraining(false)`.
    ///   - setTraining: switches the model between training (true) and evaluation (false) mode.
    public func fit(sampleCount: Int,
                    step: (_ batch: [Int]) throws -> Tensor,
                    validate: (() throws -> [String: Double])? = nil,
                    setTraining: (Bool) -> Void = { _ in }) throws -> TrainingSummary {
        try requireHyper(sampleCount >= 1, "trainer", "sampleCount", "must be >= 1, got \(sampleCount); there is nothing to train on")
        let perEpoch = options.stepsPerEpoch(sampleCount: sampleCount)
        try requireHyper(perEpoch >= 1, "trainer", "batchSize",
                         "(\(options.batchSize)) is larger than the \(sampleCount) samples with dropLast, so no batch is left; lower batchSize or set dropLast to false")
        epoch = 0
        globalStep = 0
        stepsPerEpoch = perEpoch
        totalSteps = perEpoch * options.epochs
        history = History()
        let clock = ContinuousClock()
        let fitStart = clock.now
        var stopReason = try dispatch(.trainBegin(totalSteps: totalSteps))
        let trained = optimizer.allParameters
        let n = sampleCount, bs = options.batchSize

        for e in 1...options.epochs where stopReason == nil {
            epoch = e
            let epochStart = clock.now
            setTraining(true)
            stopReason = try dispatch(.epochBegin(epoch: e))
            let order = Trainer.epochOrder(sampleCount: n, seed: options.seed, epoch: e, shuffle: options.shuffle)
            var lossSum = 0.0
            var lossCount = 0
            for s in 0..<perEpoch {
                let batch = Array(order[(s * bs)..<Swift.min((s + 1) * bs, n)])
                for p in parameters { p.tensor.grad = nil }
                optimizer.zeroGrad()
                let lr = currentLR
                let loss = try step(batch)
                guard loss.count == 1 else {
                    throw TrainingError.invalidParameter(
                        component: "trainer", detail: "step must return a scalar loss, got shape \(shapeString(loss.shape)) (reduce it with mean)")
                }
                let value = loss.toArray()[0]
                guard value.isFinite else {
                    throw TrainingError.nonFiniteLoss(epoch: e, step: s + 1, globalStep: globalStep + 1, value: value)
                }
                try loss.backward()
                if let maxNorm = options.gradClipNorm { clipGradNorm(trained, maxNorm: maxNorm) }
                try optimizer.step()
                scheduler?.step()
                globalStep += 1
                lossSum += Double(value) * Double(batch.count)
                lossCount += batch.count
                let decision = try dispatch(.step(epoch: e, step: s + 1, globalStep: globalStep, loss: Double(value), lr: lr))
                stopReason = stopReason ?? decision
            }
            var metrics: [String: Double] = [:]
            if let validate {
                setTraining(false)
                metrics = try withNoGrad { try validate() }
                let decision = try dispatch(.validation(epoch: e, metrics: metrics))
                stopReason = stopReason ?? decision
            }
            let record = EpochRecord(epoch: e, trainLoss: lossSum / Double(lossCount), learningRate: currentLR,
                                     seconds: seconds(epochStart.duration(to: clock.now)), metrics: metrics)
            history.records.append(record)
            let decision = try dispatch(.epochEnd(record))
            stopReason = stopReason ?? decision
        }
        setTraining(false)

        let tracker = callbacks.lazy.compactMap { $0 as? any MonitoringCallback }.first
        let summary = TrainingSummary(history: history, bestEpoch: tracker?.bestEpoch, bestValue: tracker?.bestValue,
                                      monitor: tracker?.monitor, stoppedEarly: stopReason, steps: globalStep,
                                      seconds: seconds(fitStart.duration(to: clock.now)))
        _ = try dispatch(.trainEnd(summary))
        return summary
    }

    /// The first group's learning rate as the decimal it prints as.
    var currentLR: Double { optimizer.groups.first.map { decimalDouble($0.lr) } ?? 0 }

    /// Sends `event` to every callback; returns the first stop reason.
    func dispatch(_ event: TrainerEvent) throws -> String? {
        var reason: String? = nil
        for c in callbacks {
            if case .stop(let r) = try c.on(event, trainer: self), reason == nil { reason = r }
        }
        return reason
    }
}

/// A `Duration` in seconds.
func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}
