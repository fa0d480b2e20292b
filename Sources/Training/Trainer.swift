import Foundation
import TensorEngine

/// The generic training loop: it knows samples only by index and the model only through a
/// closure that builds the loss of a batch.
///
///     let options = TrainerOptions(epochs: 20, batchSize: 32, seed: 7, gradClip: .norm(1), accumulation: 4,
///                                  validationInterval: 0.5)
///     let trainer = try Trainer(options: options,
///                               parameters: model.namedParameters().map { ($0.key, $0.tensor) },
///                               optimizer: opt, scheduler: sched,
///                               callbacks: [EarlyStopping(monitor: "val.loss", mode: .min, patience: 3),
///                                           BestWeights(monitor: "val.loss", mode: .min), ProgressReporter()])
///     let summary = try trainer.fit(sampleCount: n,
///                                   step: { batch in try lossOf(rows: batch) },
///                                   validate: { ["val.loss": try validationLoss()] },
///                                   setTraining: { model.train($0) })
///
/// Every epoch visits `epochOrder(sampleCount:seed:epoch:shuffle:)` in consecutive micro-batches
/// of `batchSize`; `accumulation` consecutive micro-batches make one optimizer step (the last
/// step of an epoch takes the rest). Per optimizer step: clear the gradients; per micro-batch
/// `loss = step(batch)`, check that it is finite, backward of `loss × rows / step rows` (of
/// `loss` itself when the step has one micro-batch); clip (optional); optimizer step; scheduler
/// step. A validation — `setTraining(false)`, `validate()` without recording, the callbacks,
/// `setTraining(true)` — follows every `options.validationEvery(stepsPerEpoch:)`-th step of an
/// epoch and its last step. The model is left in evaluation mode.
/// Same seed, options and thread count ⇒ the same batches and bit-identical weights.
public final class Trainer: TrainerContext {
    public let options: TrainerOptions
    public let parameters: [(name: String, tensor: Tensor)]
    public let state: [(name: String, tensor: Tensor)]
    public let optimizer: any Optimizer
    public let scheduler: Scheduler?
    public let callbacks: [any TrainerCallback]
    /// Times the fit and enforces `options.timeLimit`.
    public let clock: any TrainingClock

    public private(set) var epoch = 0
    public private(set) var globalStep = 0
    public private(set) var stepsPerEpoch = 0
    public private(set) var totalSteps = 0
    public private(set) var history = History()
    var pendingCheckpoints: [CheckpointRecord] = []

    /// Throws when the options are invalid or two parameters share a name. `buffers` are the
    /// model's tensors that change in training without a gradient (BatchNorm running statistics):
    /// kept and restored with the parameters by `BestWeights` and `TopKCheckpoints`.
    public init(options: TrainerOptions, parameters: [(name: String, tensor: Tensor)], buffers: [(name: String, tensor: Tensor)] = [],
                optimizer: any Optimizer, scheduler: Scheduler? = nil, callbacks: [any TrainerCallback] = [],
                clock: any TrainingClock = SystemTrainingClock()) throws {
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
        self.clock = clock
    }

    public var groupNames: [String] {
        optimizer.groups.enumerated().map { i, g in g.name ?? "group\(i)" }
    }

    public func reportCheckpoint(_ record: CheckpointRecord) { pendingCheckpoints.append(record) }

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

    /// Trains for `options.epochs` epochs (fewer when a callback or the time limit stops it) and
    /// returns the summary.
    ///
    /// - Parameters:
    ///   - sampleCount: number of training samples; batches hold indices into `0..<sampleCount`.
    ///   - step: builds the graph for a micro-batch and returns its scalar mean loss (recording on).
    ///   - validate: returns the validation values keyed "val.<name>" (including "val.loss");
    ///     runs under `withNoGrad` after `setTraining(false)`.
    ///   - setTraining: switches the model between training (true) and evaluation (false) mode.
    public func fit(sampleCount: Int,
                    step: (_ batch: [Int]) throws -> Tensor,
                    validate: (() throws -> [String: Double])? = nil,
                    setTraining: (Bool) -> Void = { _ in }) throws -> TrainingSummary {
        try requireHyper(sampleCount >= 1, "trainer", "sampleCount", "must be >= 1, got \(sampleCount); there is nothing to train on")
        let batches = options.batchesPerEpoch(sampleCount: sampleCount)
        try requireHyper(batches >= 1, "trainer", "batchSize",
                         "(\(options.batchSize)) is larger than the \(sampleCount) samples with dropLast, so no batch is left; lower batchSize or set dropLast to false")
        let k = options.accumulation
        try requireHyper(k <= batches, "trainer", "accumulation",
                         "(\(k)) is larger than the \(batches) batch(es) of an epoch (\(sampleCount) samples, batchSize \(options.batchSize)); "
                            + "set accumulation to at most \(batches) or lower batchSize")
        let perEpoch = options.stepsPerEpoch(sampleCount: sampleCount)
        let every = options.validationEvery(stepsPerEpoch: perEpoch)
        epoch = 0
        globalStep = 0
        stepsPerEpoch = perEpoch
        totalSteps = perEpoch * options.epochs
        history = History()
        pendingCheckpoints = []
        let fitStart = clock.now()
        var stopReason = try dispatch(.trainBegin(totalSteps: totalSteps))
        let trained = optimizer.allParameters
        let n = sampleCount, bs = options.batchSize
        var lastValidationStep = -1

        for e in 1...options.epochs where stopReason == nil {
            epoch = e
            let epochStart = clock.now()
            setTraining(true)
            stopReason = try dispatch(.epochBegin(epoch: e))
            let order = Trainer.epochOrder(sampleCount: n, seed: options.seed, epoch: e, shuffle: options.shuffle)
            var lossSum = 0.0
            var lossCount = 0
            var lastMetrics: [String: Double] = [:]

            /// Validates after step `s` (1-based within the epoch) and records the result.
            func runValidation(_ s: Int, _ validate: () throws -> [String: Double]) throws {
                setTraining(false)
                let metrics = try withNoGrad { try validate() }
                let record = ValidationRecord(epoch: e, step: globalStep, epochProgress: Double((e - 1) * perEpoch + s) / Double(perEpoch),
                                              trainLoss: lossSum / Double(Swift.max(lossCount, 1)), learningRate: currentLR,
                                              seconds: clock.now() - fitStart, metrics: metrics)
                history.validations.append(record)
                lastMetrics = metrics
                lastValidationStep = globalStep
                let decision = try dispatch(.validation(record))
                stopReason = stopReason ?? decision
                setTraining(true)
            }

            for s in 0..<perEpoch where stopReason == nil {
                let micro = (s * k)..<Swift.min((s + 1) * k, batches)
                let slices = micro.map { m in (m * bs)..<Swift.min((m + 1) * bs, n) }
                let rows = slices.reduce(0) { $0 + $1.count }
                for p in parameters { p.tensor.grad = nil }
                optimizer.zeroGrad()
                let lr = currentLR
                let lrs = optimizer.groups.map { decimalDouble($0.lr) }
                var stepLoss = 0.0
                for slice in slices {
                    let loss = try step(Array(order[slice]))
                    guard loss.count == 1 else {
                        throw TrainingError.invalidParameter(
                            component: "trainer", detail: "step must return a scalar loss, got shape \(shapeString(loss.shape)) (reduce it with mean)")
                    }
                    let value = loss.toArray()[0]
                    guard value.isFinite else {
                        throw TrainingError.nonFiniteLoss(epoch: e, step: s + 1, globalStep: globalStep + 1, value: value)
                    }
                    if slices.count == 1 {
                        try loss.backward()
                        stepLoss = Double(value)
                    } else {
                        let share = Double(slice.count) / Double(rows)
                        try mulScalar(loss, Float(share)).backward()
                        stepLoss += Double(value) * share
                    }
                    lossSum += Double(value) * Double(slice.count)
                    lossCount += slice.count
                }
                options.gradClip?.apply(to: trained)
                try optimizer.step()
                scheduler?.step()
                globalStep += 1
                let record = StepRecord(epoch: e, step: s + 1, globalStep: globalStep, loss: stepLoss, lr: lr, learningRates: lrs, rows: rows)
                let decision = try dispatch(.step(record))
                stopReason = stopReason ?? decision
                if stopReason == nil, let limit = options.timeLimit, clock.now() - fitStart >= limit {
                    stopReason = "time limit of \(formatG(limit)) s reached after step \(globalStep)"
                }
                if let validate, (s + 1) % every == 0 || s + 1 == perEpoch || (stopReason != nil && lastValidationStep < globalStep) {
                    try runValidation(s + 1, validate)
                }
            }
            // An epoch that a stop at its beginning left without a step leaves no record.
            guard lossCount > 0 else { continue }
            let record = EpochRecord(epoch: e, trainLoss: lossSum / Double(lossCount), learningRate: currentLR,
                                     seconds: clock.now() - epochStart, metrics: lastMetrics)
            history.records.append(record)
            let decision = try dispatch(.epochEnd(record))
            stopReason = stopReason ?? decision
        }
        setTraining(false)

        let tracker = callbacks.lazy.compactMap { $0 as? any MonitoringCallback }.first
        let summary = TrainingSummary(history: history, bestEpoch: tracker?.bestEpoch, bestStep: tracker?.bestStep,
                                      bestValue: tracker?.bestValue, monitor: tracker?.monitor, stoppedEarly: stopReason,
                                      steps: globalStep, seconds: clock.now() - fitStart)
        _ = try dispatch(.trainEnd(summary))
        return summary
    }

    /// The first group's learning rate as the decimal it prints as.
    var currentLR: Double { optimizer.groups.first.map { decimalDouble($0.lr) } ?? 0 }

    /// Sends `event` to every callback, then the checkpoints they reported; returns the first
    /// stop reason.
    func dispatch(_ event: TrainerEvent) throws -> String? {
        var reason: String? = nil
        for c in callbacks {
            if case .stop(let r) = try c.on(event, trainer: self), reason == nil { reason = r }
        }
        while !pendingCheckpoints.isEmpty {
            let record = pendingCheckpoints.removeFirst()
            for c in callbacks {
                if case .stop(let r) = try c.on(.checkpoint(record), trainer: self), reason == nil { reason = r }
            }
        }
        return reason
    }
}
