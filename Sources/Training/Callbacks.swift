import Foundation
import TensorEngine

/// Whether a monitored value improves downwards (losses, errors) or upwards (accuracy, AUC).
public enum MonitorMode: String, Codable, Sendable, CaseIterable {
    case min, max

    /// The mode a key implies: keys ending in "loss" → min; otherwise the metric named by the
    /// part after the last "." (e.g. "val.roc_auc" → max, "val.rmse" → min); nil when unknown.
    public static func inferred(for key: String) -> MonitorMode? {
        if key.hasSuffix("loss") { return .min }
        let name = key.split(separator: ".").last.map(String.init) ?? key
        guard let metric = Metric(rawValue: name) else { return nil }
        return metric.higherIsBetter ? .max : .min
    }
}

/// Best-so-far bookkeeping shared by `EarlyStopping` and `BestWeights`.
struct ImprovementTracker {
    let component: String
    let monitor: String
    let mode: MonitorMode
    let minDelta: Double
    var bestValue: Double?
    var bestEpoch: Int?
    var bestStep: Int?
    /// The validation loss at the best validation, which breaks ties of the monitored value.
    var bestTieBreak: Double?
    /// Validations since the last improvement.
    var wait = 0

    /// Breaks exact ties of any other monitored value: a metric that saturates (accuracy or
    /// ROC AUC of 1.0 on a small validation set) would otherwise keep the first validation that
    /// reached it, however much the model improves afterwards.
    static let tieBreakKey = "val.loss"

    mutating func reset() {
        bestValue = nil
        bestEpoch = nil
        bestStep = nil
        bestTieBreak = nil
        wait = 0
    }

    /// Records `record`'s monitored value; true when it improves on the best by more than
    /// `minDelta` (the first finite value always does, NaN never does), or equals the best
    /// exactly with a lower validation loss.
    mutating func update(_ record: ValidationRecord) throws -> Bool {
        let v = try monitoredValue(record, monitor, component: component)
        let loss = monitor == Self.tieBreakKey ? nil : record.value(Self.tieBreakKey).flatMap { $0.isNaN ? nil : $0 }
        let improved: Bool
        if v.isNaN {
            improved = false
        } else if let best = bestValue {
            let better = mode == .min ? v < best - minDelta : v > best + minDelta
            var tieWon = false
            if v == best, let loss, let bestLoss = bestTieBreak { tieWon = loss < bestLoss }
            improved = better || tieWon
        } else {
            improved = true
        }
        if improved {
            bestValue = v
            bestTieBreak = loss
            bestEpoch = record.epoch
            bestStep = record.step
            wait = 0
        } else {
            wait += 1
        }
        return improved
    }
}

/// `record`'s value of `key`, or `unknownMonitor` naming the keys it has.
func monitoredValue(_ record: ValidationRecord, _ key: String, component: String) throws -> Double {
    guard let v = record.value(key) else {
        throw TrainingError.unknownMonitor(component: component, key: key, available: record.availableKeys)
    }
    return v
}

/// Stops training once `monitor` has not improved by more than `minDelta` for `patience`
/// consecutive validations (Keras' `EarlyStopping`; like Lightning's, patience counts validation
/// checks, so with `validationInterval` 0.5 a patience of 10 is five epochs): with patience 3 and
/// the best value at the 4th validation, training ends after the 7th. The monitored key is looked
/// up in each validation record ("train_loss", "lr" or a validation key); a key no record holds
/// is an error. Without a validation closure it never stops.
public final class EarlyStopping: MonitoringCallback {
    public let monitor: String
    public let mode: MonitorMode
    public let patience: Int
    public let minDelta: Double
    var tracker: ImprovementTracker

    public var bestEpoch: Int? { tracker.bestEpoch }
    public var bestStep: Int? { tracker.bestStep }
    public var bestValue: Double? { tracker.bestValue }

    /// Throws when `patience` < 0 or `minDelta` is negative or not finite.
    public init(monitor: String, mode: MonitorMode, patience: Int, minDelta: Double = 0) throws {
        try requireHyper(patience >= 0, "early_stopping", "patience", "must be >= 0, got \(patience)")
        try requireHyper(minDelta.isFinite && minDelta >= 0, "early_stopping", "minDelta", "must be a finite number >= 0, got \(fmt(minDelta))")
        self.monitor = monitor
        self.mode = mode
        self.patience = patience
        self.minDelta = minDelta
        self.tracker = ImprovementTracker(component: "early_stopping", monitor: monitor, mode: mode, minDelta: minDelta)
    }

    public func on(_ event: TrainerEvent, trainer: any TrainerContext) throws -> TrainerDecision {
        switch event {
        case .trainBegin:
            tracker.reset()
        case .validation(let record):
            if try !tracker.update(record), tracker.wait >= patience {
                let best = tracker.bestValue.map { "best \(formatG($0)) at epoch \(tracker.bestEpoch ?? 0), step \(tracker.bestStep ?? 0)" }
                    ?? "no finite value yet"
                return .stop(reason: "early stopping: \(monitor) did not improve for \(tracker.wait) validation(s) (\(best))")
            }
        default:
            break
        }
        return .proceed
    }
}

/// Keeps a copy of the weights (`TrainerContext.state`: parameters and buffers) from the
/// validation with the best `monitor` value and writes it back into the same tensors at the end
/// of training, so the model ends at its best point. Every new best copy is announced as a
/// `.checkpoint` event with rank 1.
///
/// `TopKCheckpoints(k: 1, averaging: .best)` keeps the same copy when values never tie; this
/// callback adds `minDelta` and breaks exact ties of a saturated metric by the validation loss.
public final class BestWeights: MonitoringCallback {
    public let monitor: String
    public let mode: MonitorMode
    var tracker: ImprovementTracker
    var snapshot: [Tensor] = []
    /// The epoch whose weights were restored at the end of the last fit (nil before).
    public private(set) var restoredEpoch: Int?
    /// The global step whose weights were restored at the end of the last fit (nil before).
    public private(set) var restoredStep: Int?

    public var bestEpoch: Int? { tracker.bestEpoch }
    public var bestStep: Int? { tracker.bestStep }
    public var bestValue: Double? { tracker.bestValue }

    public init(monitor: String, mode: MonitorMode, minDelta: Double = 0) throws {
        try requireHyper(minDelta.isFinite && minDelta >= 0, "best_weights", "minDelta", "must be a finite number >= 0, got \(fmt(minDelta))")
        self.monitor = monitor
        self.mode = mode
        self.tracker = ImprovementTracker(component: "best_weights", monitor: monitor, mode: mode, minDelta: minDelta)
    }

    public func on(_ event: TrainerEvent, trainer: any TrainerContext) throws -> TrainerDecision {
        switch event {
        case .trainBegin:
            tracker.reset()
            snapshot = []
            restoredEpoch = nil
            restoredStep = nil
        case .validation(let record):
            if try tracker.update(record) {
                snapshot = takeSnapshot(trainer.state)
                trainer.reportCheckpoint(CheckpointRecord(source: "best_weights", monitor: monitor, value: tracker.bestValue ?? .nan,
                                                          step: record.step, epoch: record.epoch,
                                                          epochProgress: record.epochProgress, rank: 1))
            }
        case .trainEnd:
            if !snapshot.isEmpty {
                try install(snapshot, into: trainer.state, component: "best_weights")
                restoredEpoch = tracker.bestEpoch
                restoredStep = tracker.bestStep
            }
        default:
            break
        }
        return .proceed
    }
}

/// Reports progress through `output`. Interactive (a terminal): one progress line — epoch,
/// a bar, step/total, running loss, ETA — redrawn in place with "\r" at most ten times a
/// second, and a summary line per epoch. Otherwise one plain line per epoch:
///
///     epoch 3/20  train_loss 0.4123  val.loss 0.3990  val.accuracy 0.9130  1.2s
///
/// Loss keys come first, then the other metrics in key order. At the end it writes why
/// training stopped early and the best epoch, when known.
public final class ProgressReporter: TrainerCallback {
    /// Whether the one-line redrawn bar is used.
    public let interactive: Bool
    /// The validation keys each epoch line shows (nil: all of them).
    public let shownKeys: [String]?
    let output: (String) -> Void
    let clock = ContinuousClock()
    var fitStart: ContinuousClock.Instant?
    var lastDraw: ContinuousClock.Instant?
    var lastWidth = 0
    var epochLossSum = 0.0
    var epochSteps = 0

    /// - Parameters:
    ///   - interactive: nil decides by whether standard error is a terminal.
    ///   - shownKeys: the validation keys each epoch line shows, in this order (nil: all, sorted).
    ///   - output: receives the text (default: standard error).
    public init(interactive: Bool? = nil, shownKeys: [String]? = nil,
                output: @escaping (String) -> Void = ProgressReporter.writeToStandardError) {
        self.interactive = interactive ?? (isatty(STDERR_FILENO) != 0)
        self.shownKeys = shownKeys
        self.output = output
    }

    /// Writes `text` to standard error unbuffered.
    public static func writeToStandardError(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

    public func on(_ event: TrainerEvent, trainer: any TrainerContext) throws -> TrainerDecision {
        switch event {
        case .trainBegin:
            fitStart = clock.now
            lastDraw = nil
            lastWidth = 0
        case .epochBegin:
            epochLossSum = 0
            epochSteps = 0
        case .step(let r):
            let (epoch, step, globalStep) = (r.epoch, r.step, r.globalStep)
            epochLossSum += r.loss
            epochSteps += 1
            guard interactive else { break }
            let now = clock.now
            if let last = lastDraw, step < trainer.stepsPerEpoch, seconds(last.duration(to: now)) < 0.1 { break }
            lastDraw = now
            var eta = ""
            if let start = fitStart, globalStep > 0 {
                let perStep = seconds(start.duration(to: now)) / Double(globalStep)
                eta = "  ETA " + ProgressReporter.duration(perStep * Double(trainer.totalSteps - globalStep))
            }
            let line = "epoch \(epoch)/\(trainer.options.epochs) \(ProgressReporter.bar(step, trainer.stepsPerEpoch)) "
                + "\(step)/\(trainer.stepsPerEpoch)  loss \(ProgressReporter.number(epochLossSum / Double(epochSteps)))\(eta)"
            redraw(line)
        case .epochEnd(let record):
            let line = ProgressReporter.epochLine(record, epochs: trainer.options.epochs, keys: shownKeys)
            if interactive { redraw(line); output("\n"); lastWidth = 0 } else { output(line + "\n") }
        case .trainEnd(let summary):
            if let reason = summary.stoppedEarly { output("stopped after epoch \(summary.history.records.count): \(reason)\n") }
            if let epoch = summary.bestEpoch, let value = summary.bestValue, let monitor = summary.monitor {
                output("best epoch \(epoch): \(monitor) \(ProgressReporter.number(value))\n")
            }
        case .validation(let r):
            // Mid-epoch validations get a line of their own; the epoch line shows the last one.
            guard r.step % Swift.max(trainer.stepsPerEpoch, 1) != 0 else { break }
            let line = ProgressReporter.validationLine(r, keys: shownKeys)
            if interactive { redraw(line); output("\n"); lastWidth = 0 } else { output(line + "\n") }
        case .checkpoint:
            break
        }
        return .proceed
    }

    /// The per-epoch summary line.
    public static func epochLine(_ r: EpochRecord, epochs: Int, keys shown: [String]? = nil) -> String {
        let keys = orderedKeys(r.metrics, shown)
        var parts = ["epoch \(r.epoch)/\(epochs)", "train_loss \(number(r.trainLoss))"]
        for k in keys { parts.append("\(k) \(number(r.metrics[k] ?? .nan))") }
        parts.append(String(format: "%.1fs", r.seconds))
        return parts.joined(separator: "  ")
    }

    /// The line of a mid-epoch validation:
    ///
    ///     validation at epoch 1.5 (step 30)  val.loss 0.3990  val.accuracy 0.9130
    public static func validationLine(_ r: ValidationRecord, keys shown: [String]? = nil) -> String {
        var parts = ["validation at epoch \(formatG(r.epochProgress)) (step \(r.step))"]
        for k in orderedKeys(r.metrics, shown) { parts.append("\(k) \(number(r.metrics[k] ?? .nan))") }
        return parts.joined(separator: "  ")
    }

    /// `shown` keys present in `metrics`, or all keys with losses first.
    static func orderedKeys(_ metrics: [String: Double], _ shown: [String]?) -> [String] {
        shown?.filter { metrics[$0] != nil } ?? metrics.keys.sorted { a, b in
            let la = a.hasSuffix("loss"), lb = b.hasSuffix("loss")
            return la != lb ? la : a < b
        }
    }

    func redraw(_ line: String) {
        let pad = Swift.max(0, lastWidth - line.count)
        output("\r" + line + String(repeating: " ", count: pad))
        lastWidth = line.count
    }

    static func number(_ x: Double) -> String { x.isFinite ? String(format: "%.4f", x) : formatG(x) }

    static func bar(_ done: Int, _ total: Int, width: Int = 20) -> String {
        let filled = total > 0 ? Swift.min(width, done * width / total) : 0
        return "[" + String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled) + "]"
    }

    static func duration(_ s: Double) -> String {
        guard s.isFinite, s >= 0 else { return "?" }
        let t = Int(s.rounded())
        if t >= 3600 { return String(format: "%dh%02dm", t / 3600, (t % 3600) / 60) }
        if t >= 60 { return String(format: "%dm%02ds", t / 60, t % 60) }
        return "\(t)s"
    }
}
