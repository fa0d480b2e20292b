import Foundation

/// Where a run is in its life. `missing`: it finished, but its folder (or its `lock.json`) is gone.
public enum RunStatus: String, Codable, CaseIterable, Sendable {
    case running, finished, failed, stopped, missing
}

/// A run that is starting (what `RunRegistry.begin` records).
public struct NewRun: Sendable {
    /// The pipeline file, absolute.
    public var pipeline: String
    /// The pipeline's `name:`.
    public var name: String
    /// The run folder it will write, absolute.
    public var runDirectory: String
    /// The `--set` flags, in order.
    public var overrides: [String]
    /// A sweep trial's swept keys → values (empty outside sweeps).
    public var parameters: [String: String]
    public var sweepID: String?
    public var trialIndex: Int?
    public var threads: Int
    public var seed: UInt64
    /// The runpipe command that started it, e.g. `train`.
    public var command: String

    public init(pipeline: String, name: String, runDirectory: String, overrides: [String] = [],
                parameters: [String: String] = [:], sweepID: String? = nil, trialIndex: Int? = nil,
                threads: Int, seed: UInt64, command: String = "train") {
        self.pipeline = pipeline
        self.name = name
        self.runDirectory = runDirectory
        self.overrides = overrides
        self.parameters = parameters
        self.sweepID = sweepID
        self.trialIndex = trialIndex
        self.threads = threads
        self.seed = seed
        self.command = command
    }
}

/// A sweep's row (created by the first `recordSweep`, updated by the later ones).
public struct SweepRecord: Codable, Equatable, Sendable {
    public var id: String
    public var name: String
    public var pipeline: String
    /// The sweep's folder.
    public var directory: String
    /// `grid`, `random`…
    public var method: String
    /// The metric the sweep optimises, e.g. `val.accuracy`.
    public var monitor: String
    /// `max` or `min`.
    public var mode: String
    public var trials: Int
    /// `running`, `finished` or `interrupted`.
    public var status: String
    public var created: Date

    public init(id: String, name: String, pipeline: String, directory: String, method: String, monitor: String,
                mode: String, trials: Int, status: String, created: Date) {
        self.id = id
        self.name = name
        self.pipeline = pipeline
        self.directory = directory
        self.method = method
        self.monitor = monitor
        self.mode = mode
        self.trials = trials
        self.status = status
        self.created = created
    }
}

/// The git commit a pipeline file was at when its run began.
public struct GitState: Codable, Equatable, Sendable {
    public var commit: String
    /// The pipeline file had uncommitted changes (or was not tracked).
    public var dirty: Bool

    public init(commit: String, dirty: Bool) {
        self.commit = commit
        self.dirty = dirty
    }
}

/// `history.csv` as recorded: its columns in file order and one row per validation
/// (nil where the file held NaN or nothing).
public struct RunHistory: Codable, Equatable, Sendable {
    public var columns: [String]
    public var rows: [[Double?]]

    public init(columns: [String] = [], rows: [[Double?]] = []) {
        self.columns = columns
        self.rows = rows
    }

    /// One column's values, top to bottom (nil when there is no such column).
    public func column(_ name: String) -> [Double?]? {
        guard let index = columns.firstIndex(of: name) else { return nil }
        return rows.map { index < $0.count ? $0[index] : nil }
    }
}

/// Everything the registry knows about one run.
public struct RunRecord: Codable, Equatable, Sendable {
    public var id: Int64
    public var name: String
    public var pipeline: String
    public var pipelineSHA256: String?
    public var runDirectory: String
    public var status: RunStatus
    public var command: String
    public var overrides: [String]
    public var parameters: [String: String]
    public var started: Date
    public var ended: Date?
    public var seconds: Double?
    public var seed: UInt64
    public var threads: Int
    public var runpipeVersion: String?
    public var git: GitState?
    public var sweepID: String?
    public var trialIndex: Int?
    public var errorMessage: String?
    /// The pipeline's `metric:` from resolved.yaml (what its run reports first).
    public var metric: String?
    public var resolvedYAML: String?
    public var lockJSON: String?
    /// split (`validation`, `test`) → metric → value; nil for NaN.
    public var metrics: [String: [String: Double?]]
    /// stage id → cache key.
    public var stages: [String: String]
    /// Filled by `run(_:)` and `runs(sweep:)`; empty from `list` unless asked for.
    public var history: RunHistory

    enum CodingKeys: String, CodingKey {
        case id, name, pipeline, status, command, overrides, parameters, started, ended, seconds, seed, threads
        case git, metric, metrics, stages, history
        case pipelineSHA256 = "pipeline_sha256"
        case runDirectory = "run_directory"
        case runpipeVersion = "runpipe_version"
        case sweepID = "sweep_id"
        case trialIndex = "trial_index"
        case errorMessage = "error_message"
        case resolvedYAML = "resolved_yaml"
        case lockJSON = "lock_json"
    }

    /// The run folder's last path component, e.g. `penguins-20261130-045135`.
    public var folderName: String { URL(fileURLWithPath: runDirectory).lastPathComponent }

    /// A metric by `split.name` (`val.` is accepted for `validation.`), or by bare name in the
    /// validation split. The outer optional is "no such metric", the inner one "NaN".
    public func metricValue(_ reference: String) -> Double?? {
        let (split, name) = MetricName.split(reference)
        guard let values = metrics[split], let value = values[name] else { return nil }
        return .some(value)
    }
}

/// Which runs `RunRegistry.list` returns.
public struct RunQuery: Sendable {
    public var sweepID: String?
    /// An absolute pipeline path.
    public var pipeline: String?
    public var status: RunStatus?
    public var limit: Int?
    public var includeHistory: Bool

    public init(sweepID: String? = nil, pipeline: String? = nil, status: RunStatus? = nil, limit: Int? = nil,
                includeHistory: Bool = false) {
        self.sweepID = sweepID
        self.pipeline = pipeline
        self.status = status
        self.limit = limit
        self.includeHistory = includeHistory
    }
}

/// Whether larger or smaller values of a metric are better.
public enum MetricMode: String, Codable, CaseIterable, Sendable {
    case max, min

    /// `min` for losses and errors (loss, error, rmse, mae, mse, log_loss, hamming_loss…), else `max`.
    public static func `default`(for metric: String) -> MetricMode {
        let base = MetricName.split(metric).name.lowercased()
        let lowerIsBetter = ["loss", "error", "rmse", "mae", "mse", "log_loss"]
        for word in lowerIsBetter where base == word || base.hasSuffix("_" + word) || base.hasPrefix(word + "_") {
            return .min
        }
        return .max
    }

    /// Whether `a` is better than `b`.
    public func prefers(_ a: Double, over b: Double) -> Bool {
        self == .max ? a > b : a < b
    }
}

/// `val.accuracy` → (validation, accuracy); `test.rmse` → (test, rmse); `accuracy` → (validation, accuracy).
public enum MetricName {
    public static func split(_ reference: String) -> (split: String, name: String) {
        for (prefix, split) in [("val.", "validation"), ("validation.", "validation"), ("test.", "test")]
        where reference.hasPrefix(prefix) {
            return (split, String(reference.dropFirst(prefix.count)))
        }
        return ("validation", reference)
    }
}
