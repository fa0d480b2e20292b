import Cache
import Foundation

/// `sweep.json`: everything about a sweep that resuming, reports and the registry need. Written
/// atomically by the sweep's own process after every change of a trial; trial processes only
/// read it.
///
/// Folder layout:
///
///     sweep.json          this state
///     trials/000/         each trial's run folder (a normal run: lock.json, metrics.json, …)
///     logs/000.log        each trial process's output
///     rungs/<epoch>/000.value, 000.decision   successive halving's records
///     report.html         `runpipe report` of the sweep
public struct SweepState: Codable, Sendable {
    public static let file = "sweep.json"
    public static let format = "runpipe-sweep-1"

    public enum Status: String, Codable, Sendable {
        case queued, running, finished, failed, stopped
        /// Whether the trial has its final result (a resumed sweep keeps it).
        public var isDone: Bool { self == .finished || self == .stopped }
    }

    public struct TrialState: Codable, Sendable {
        public var index: Int
        public var name: String
        public var parameters: [String: String]
        public var status: Status
        /// Relative to the sweep folder.
        public var runDir: String
        /// Validation metrics (`val.<metric>` and the rest), from the run's metrics.json.
        public var metrics: [String: Double]
        public var seconds: Double?
        /// Epochs trained (from history.csv).
        public var epochs: Int?
        /// For a stopped trial: the rung (epoch) it stopped at.
        public var stoppedAt: Int?
        public var error: String?

        enum CodingKeys: String, CodingKey {
            case index, name, parameters, status, metrics, seconds, epochs, error
            case runDir = "run_dir"
            case stoppedAt = "stopped_at"
        }
    }

    public var format: String
    public var id: String
    public var name: String
    /// Absolute path of the pipeline file.
    public var pipeline: String
    /// `--set` flags every trial gets before its own.
    public var overrides: [String]
    public var method: String
    /// `val.<metric>` (resolved from `auto`).
    public var monitor: String
    public var mode: String
    public var created: String
    /// Swept keys in order.
    public var parameters: [String]
    /// Threads each trial process uses (fixed for the sweep: results do not depend on --jobs).
    public var threadsPerTrial: Int
    /// Successive halving: the rung epochs and the reduction factor (nil otherwise).
    public var rungs: [Int]?
    public var eta: Int?
    public var status: String
    public var trials: [TrialState]
    /// Index of the best trial by the monitor, among finished and stopped ones.
    public var best: Int?

    enum CodingKeys: String, CodingKey {
        case format, id, name, pipeline, overrides, method, monitor, mode, created, parameters, rungs, eta, status, trials, best
        case threadsPerTrial = "threads_per_trial"
    }

    public var higherIsBetter: Bool { mode == "max" }

    /// Whether `a` is better than `b` by the monitor (NaN is never better).
    public func better(_ a: Double, than b: Double) -> Bool {
        if a.isNaN { return false }
        if b.isNaN { return true }
        return higherIsBetter ? a > b : a < b
    }

    /// The trials by the monitor, best first; trials without a value last, by index.
    public func ranked() -> [TrialState] {
        trials.sorted { x, y in
            let a = x.status.isDone ? x.metrics[monitor] : nil, b = y.status.isDone ? y.metrics[monitor] : nil
            switch (a, b) {
            case let (a?, b?) where !(a.isNaN && b.isNaN):
                if better(a, than: b) { return true }
                if better(b, than: a) { return false }
                return x.index < y.index
            case (_?, nil): return true
            case (nil, _?): return false
            default: return x.index < y.index
            }
        }
    }

    mutating func updateBest() {
        let first = ranked().first
        best = first.flatMap { t in t.status.isDone && t.metrics[monitor].map { !$0.isNaN } == true ? t.index : nil }
    }

    public static func read(from folder: URL) throws -> SweepState {
        let url = folder.appendingPathComponent(file)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw SweepError("\(folder.path) holds no sweep (no \(file))", hint: "pass the folder `runpipe sweep` printed, e.g. sweeps/<name>-<time>")
        }
        let state: SweepState
        do {
            let d = JSONDecoder()
            d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            state = try d.decode(SweepState.self, from: data)
        } catch {
            throw SweepError("\(url.path) is not a readable sweep state: \(error)", hint: "it is written only by runpipe; restore it or start a new sweep")
        }
        guard state.format == format else {
            throw SweepError("\(url.path) has format '\(state.format)'; this runpipe reads \(format)", hint: "use the runpipe that wrote it")
        }
        return state
    }

    public func write(to folder: URL) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        var d = try e.encode(self)
        d.append(0x0A)
        try AtomicFile.write(d, to: folder.appendingPathComponent(Self.file))
    }
}
