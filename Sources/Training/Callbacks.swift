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
    /// The validation loss at the best epoch, which breaks ties of the monitored value.
    var bestTieBreak: Double?
    /// Epochs since the last improvement.
    var wait = 0

    /// Breaks exact ties of any other monitored value: a metric that saturates (accuracy or
    /// ROC AUC of 1.0 on a small validation set) would otherwise keep the first epoch that
    /// reached it, however much the model improves afterwards.
    static let tieBreakKey = "val.loss"

    mutating func reset() {
        bestValue = nil
        bestEpoch = nil
        bestTieBreak = nil
        wait = 0
    }

    /// Records `record`'s monitored value; true when it improves on the best by more than
    /// `minDelta` (the first finite value always does, NaN never does), or equals the best
    /// exactly with a lower validation loss.
    mutating func update(_ record: EpochRecord) throws -> Bool {
        guard let v = record.value(monitor) else {
            throw TrainingError.unknownMonitor(component: component, key: monitor, available: record.availableKeys)
        }
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
            wait = 0
        } else {
            wait += 1
        }
        return improved
    }
}

/// Stops training once `monitor` has not improved by more than `minDelta` for `patience`
/// consecutive epochs (Keras' `EarlyStopping`): with patience 3 and the best value at epoch 4,
/// training ends after epoch 7. The monitored key is looked up in each epoch record
/// ("train_loss", "lr" or a validation key); a key no record holds is an error.
public final class EarlyStopping: MonitoringCallback {
    public let monitor: String
    public let mode: MonitorMode
    public let patience: Int
    public let minDelta: Double
    var tracker: ImprovementTracker

    public var bestEpoch: Int? { tracker.bestEpoch }
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
        case .epochEnd(let record):
            if try !tracker.update(record), tracker.wait >= patience {
                let best = tracker.bestValue.map { "best \(formatG($0)) at epoch \(tracker.bestEpoch ?? 0)" } ?? "no finite value yet"
                return .stop(reason: "early stopping: \(monitor) did not improve for \(tracker.wait) epoch(s) (\(best))")
            }
        default:
            break
        }
        return .proceed
    }
}

/// Keeps a copy of the parameters from the epoch with the best `monitor` value and writes it
/// back into the same tensors at the end of training, so the model ends at its best epoch.
public final class BestWeights: MonitoringCallback {
    public let monitor: String
    public let mode: MonitorMode
    var tracker: ImprovementTracker
    var snapshot: [Tensor] = []
    /// The epoch whose weights were restored at the end of the last fit (nil before).
    public private(set) var restoredEpoch: Int?

    public var bestEpoch: Int? { tracker.bestEpoch }
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
        case .epochEnd(let record):
            if try tracker.update(record) {
                snapshot = trainer.state.map { $0.tensor.clone() }
            }
        case .trainEnd:
            try restore(into: trainer.state)
        default:
            break
        }
        return .proceed
    }

    func restore(into parameters: [(name: String, tensor: Tensor)]) throws {
        guard !snapshot.isEmpty, snapshot.count == parameters.count else { return }
        for ((name, p), saved) in zip(parameters, snapshot) {
            guard p.isContiguous, p.count == saved.count else {
                throw TrainingError.invalidParameter(
                    component: "best_weights",
                    detail: "cannot restore '\(name)' \(shapeString(p.shape)): it must be a contiguous tensor of \(saved.count) elements")
            }
            p.data.update(from: saved.data, count: saved.count)
        }
        restoredEpoch = tracker.bestEpoch
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
        case .step(let epoch, let step, let globalStep, let loss, _):
            epochLossSum += loss
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
        case .validation:
            break
        }
        return .proceed
    }

    /// The per-epoch summary line.
    public static func epochLine(_ r: EpochRecord, epochs: Int, keys shown: [String]? = nil) -> String {
        let keys = shown?.filter { r.metrics[$0] != nil } ?? r.metrics.keys.sorted { a, b in
            let la = a.hasSuffix("loss"), lb = b.hasSuffix("loss")
            return la != lb ? la : a < b
        }
        var parts = ["epoch \(r.epoch)/\(epochs)", "train_loss \(number(r.trainLoss))"]
        for k in keys { parts.append("\(k) \(number(r.metrics[k] ?? .nan))") }
        parts.append(String(format: "%.1fs", r.seconds))
        return parts.joined(separator: "  ")
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
