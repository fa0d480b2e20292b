import Foundation

/// The values an epoch or a validation reports, by the keys callbacks monitor.
public protocol TrainingValues {
    var trainLoss: Double { get }
    var learningRate: Double { get }
    var seconds: Double { get }
    var metrics: [String: Double] { get }
}

extension TrainingValues {
    /// The value of `key`: "train_loss", "lr", "seconds" or a metric key; nil when absent.
    public func value(_ key: String) -> Double? {
        switch key {
        case "train_loss": return trainLoss
        case "lr": return learningRate
        case "seconds": return seconds
        default: return metrics[key]
        }
    }

    /// Every key `value(_:)` answers, sorted.
    public var availableKeys: [String] { (["train_loss", "lr", "seconds"] + metrics.keys).sorted() }
}

/// What one training epoch produced (the part of it that ran, when training stopped inside it).
public struct EpochRecord: Codable, Sendable, Equatable, TrainingValues {
    /// 1-based epoch number.
    public var epoch: Int
    /// Mean training loss over the epoch, each micro-batch weighted by its size.
    public var trainLoss: Double
    /// The first parameter group's learning rate at the end of the epoch.
    public var learningRate: Double
    /// Seconds of the epoch including its validations (by the trainer's clock).
    public var seconds: Double
    /// The epoch's last validation results, keyed like "val.loss", "val.accuracy" (may hold NaN,
    /// e.g. an undefined ROC AUC); every validation is in `History.validations`.
    public var metrics: [String: Double]

    public init(epoch: Int, trainLoss: Double, learningRate: Double, seconds: Double, metrics: [String: Double] = [:]) {
        self.epoch = epoch
        self.trainLoss = trainLoss
        self.learningRate = learningRate
        self.seconds = seconds
        self.metrics = metrics
    }

    enum CodingKeys: String, CodingKey {
        case epoch, trainLoss = "train_loss", learningRate = "lr", seconds, metrics
    }

    // Non-finite numbers (JSON has none) are written as the strings "nan", "inf", "-inf", so the
    // default JSONEncoder can write a record that holds an undefined metric.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(epoch, forKey: .epoch)
        try c.encode(JSONDouble(trainLoss), forKey: .trainLoss)
        try c.encode(JSONDouble(learningRate), forKey: .learningRate)
        try c.encode(JSONDouble(seconds), forKey: .seconds)
        try c.encode(metrics.mapValues(JSONDouble.init), forKey: .metrics)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        epoch = try c.decode(Int.self, forKey: .epoch)
        trainLoss = try c.decode(JSONDouble.self, forKey: .trainLoss).value
        learningRate = try c.decode(JSONDouble.self, forKey: .learningRate).value
        seconds = try c.decode(JSONDouble.self, forKey: .seconds).value
        metrics = try c.decode([String: JSONDouble].self, forKey: .metrics).mapValues(\.value)
    }
}

/// A Double that encodes NaN and ±infinity as the strings "nan", "inf" and "-inf".
struct JSONDouble: Codable, Equatable {
    var value: Double
    init(_ value: Double) { self.value = value }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        if value.isNaN { try c.encode("nan") } else if value == .infinity { try c.encode("inf") } else if value == -.infinity {
            try c.encode("-inf")
        } else { try c.encode(value) }
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let d = try? c.decode(Double.self) { value = d; return }
        switch try c.decode(String.self) {
        case "nan": value = .nan
        case "inf": value = .infinity
        case "-inf": value = -.infinity
        case let s:
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "expected a number, \"nan\", \"inf\" or \"-inf\", got \"\(s)\"")
        }
    }
}

/// What one validation produced, mid-epoch or at the end of an epoch.
public struct ValidationRecord: Codable, Sendable, Equatable, TrainingValues {
    /// The epoch it ran in, 1-based.
    public var epoch: Int
    /// The global optimizer step after which it ran.
    public var step: Int
    /// Epochs done at that point, ((epoch − 1) · steps per epoch + step in epoch) / steps per epoch: 0.5 for
    /// the mid-epoch validation of epoch 1 with `validationInterval` 0.5, 1 at its end.
    public var epochProgress: Double
    /// Mean training loss of the epoch so far, each micro-batch weighted by its rows.
    public var trainLoss: Double
    /// The first parameter group's learning rate at that point.
    public var learningRate: Double
    /// Seconds since the fit began.
    public var seconds: Double
    /// Validation results, keyed like "val.loss", "val.accuracy" (may hold NaN).
    public var metrics: [String: Double]

    public init(epoch: Int, step: Int, epochProgress: Double, trainLoss: Double, learningRate: Double, seconds: Double,
                metrics: [String: Double] = [:]) {
        self.epoch = epoch
        self.step = step
        self.epochProgress = epochProgress
        self.trainLoss = trainLoss
        self.learningRate = learningRate
        self.seconds = seconds
        self.metrics = metrics
    }

    enum CodingKeys: String, CodingKey {
        case epoch, step, epochProgress = "epoch_progress", trainLoss = "train_loss", learningRate = "lr", seconds, metrics
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(epoch, forKey: .epoch)
        try c.encode(step, forKey: .step)
        try c.encode(epochProgress, forKey: .epochProgress)
        try c.encode(JSONDouble(trainLoss), forKey: .trainLoss)
        try c.encode(JSONDouble(learningRate), forKey: .learningRate)
        try c.encode(JSONDouble(seconds), forKey: .seconds)
        try c.encode(metrics.mapValues(JSONDouble.init), forKey: .metrics)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        epoch = try c.decode(Int.self, forKey: .epoch)
        step = try c.decode(Int.self, forKey: .step)
        epochProgress = try c.decode(Double.self, forKey: .epochProgress)
        trainLoss = try c.decode(JSONDouble.self, forKey: .trainLoss).value
        learningRate = try c.decode(JSONDouble.self, forKey: .learningRate).value
        seconds = try c.decode(JSONDouble.self, forKey: .seconds).value
        metrics = try c.decode([String: JSONDouble].self, forKey: .metrics).mapValues(\.value)
    }
}

/// The epoch and validation records of a training run, in order.
public struct History: Codable, Sendable, Equatable {
    /// One record per epoch (the last one partial when training stopped inside it).
    public var records: [EpochRecord]
    /// One record per validation.
    public var validations: [ValidationRecord]

    public init(records: [EpochRecord] = [], validations: [ValidationRecord] = []) {
        self.records = records
        self.validations = validations
    }

    enum CodingKeys: String, CodingKey { case records, validations }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        records = try c.decode([EpochRecord].self, forKey: .records)
        validations = try c.decodeIfPresent([ValidationRecord].self, forKey: .validations) ?? []
    }

    /// The metric keys that occur in any record, sorted.
    public var metricKeys: [String] {
        Array(Set(records.flatMap(\.metrics.keys) + validations.flatMap(\.metrics.keys))).sorted()
    }

    /// The record with the best value of `key` (`mode` says whether lower or higher is better;
    /// NaN values never win, the earliest epoch wins ties). Nil when no record has a value.
    public func best(_ key: String, mode: MonitorMode) -> EpochRecord? {
        var best: EpochRecord? = nil
        var bestValue = 0.0
        for r in records {
            guard let v = r.value(key), !v.isNaN else { continue }
            if best == nil || (mode == .min ? v < bestValue : v > bestValue) { best = r; bestValue = v }
        }
        return best
    }

    /// The history as CSV, one line per validation (per epoch when there was none):
    /// `epoch,step,train_loss,lr,seconds` then the metric keys in sorted order. `epoch` is the
    /// fractional epoch of the validation (`ValidationRecord.epochProgress`), `step` the global
    /// optimizer step; numbers as `%.6g` (`nan`, `inf` for non-finite values), a missing metric
    /// as an empty cell. Ends with a newline. Epoch lines carry the epoch's train loss, its
    /// learning rate at the end and its own seconds; their step is empty.
    ///
    ///     epoch,step,train_loss,lr,seconds,val.accuracy,val.loss
    ///     0.5,10,0.693147,0.001,1.25,0.5,0.6875
    public func csv() -> String {
        if validations.isEmpty {
            let keys = metricKeys
            var out = historyCSVHeader(keys)
            for r in records {
                out += csvLine([formatG(Double(r.epoch)), "", formatG(r.trainLoss), formatG(r.learningRate), formatG(r.seconds)], r.metrics, keys)
            }
            return out
        }
        return validationCSV(validations, keys: metricKeys)
    }
}

/// The header of the validation CSV for these metric keys.
func historyCSVHeader(_ keys: [String]) -> String {
    (["epoch", "step", "train_loss", "lr", "seconds"] + keys).joined(separator: ",") + "\n"
}

/// Validation rows as CSV with these metric columns (see `History.csv`).
func validationCSV(_ rows: [ValidationRecord], keys: [String]) -> String {
    var out = historyCSVHeader(keys)
    for r in rows {
        out += csvLine([formatG(r.epochProgress), String(r.step), formatG(r.trainLoss), formatG(r.learningRate), formatG(r.seconds)],
                       r.metrics, keys)
    }
    return out
}

func csvLine(_ leading: [String], _ metrics: [String: Double], _ keys: [String]) -> String {
    var cells = leading
    for k in keys { cells.append(metrics[k].map(formatG) ?? "") }
    return cells.joined(separator: ",") + "\n"
}

/// `%.6g` formatting (the same text on every platform).
func formatG(_ x: Double) -> String {
    if x.isNaN { return "nan" }
    if x.isInfinite { return x > 0 ? "inf" : "-inf" }
    return String(format: "%.6g", x)
}
