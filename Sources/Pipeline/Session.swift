import Cache
import Foundation
import Spec
import Training

/// The library's front door, one per pipeline file and set of overrides: load → compile →
/// plan or train. Each step is available alone so commands stay thin.
public struct Session: Sendable {
    public let pipeline: URL
    public let overrides: [String]
    public let cacheDir: String?
    public let environment: [String: String]
    /// The pipeline's text when it is not the file's (a run's resolved.yaml, read as if it were
    /// the file, so relative paths resolve as they did).
    public var yaml: String?

    public init(pipeline: URL, overrides: [String] = [], cacheDir: String? = nil, environment: [String: String] = [:]) {
        self.pipeline = pipeline.standardizedFileURL
        self.overrides = overrides
        self.cacheDir = cacheDir
        self.environment = environment
    }

    /// The typed, validated spec (every error of the file at once, before any data is read).
    public func load() throws -> PipelineSpec {
        if let yaml { return try PipelineLoader.load(yaml: yaml, file: pipeline, overrides: overrides) }
        return try PipelineLoader.load(pipeline, overrides: overrides)
    }

    /// The content store this session uses.
    public func store() throws -> ContentStore {
        let root = ContentStore.defaultRoot(pipelineFile: pipeline, override: cacheDir, environment: environment)
        return ContentStore(root: root)
    }

    /// Loads and compiles; hashes the data files (reusing hashes of unchanged files).
    public func compile(threads: Int, trainKeyExtras: [String: JSONValue] = [:]) throws -> CompiledPipeline {
        let spec = try load()
        let store = try store()
        return try Compiler.compile(spec, hasher: store.fileHasher, threads: threads, trainKeyExtras: trainKeyExtras)
    }

    /// Which stages the cache holds and why the others must run.
    public func plan(_ compiled: CompiledPipeline) throws -> ExecutionPlan {
        try ExecutionPlan(compiled: compiled, store: try store(), pipelineID: pipelineID(compiled.spec))
    }

    /// Runs every stage a run needs (through the cache) and writes the run directory.
    public func train(_ request: TrainRequest) throws -> TrainResult {
        let compiled = try compile(threads: request.threads, trainKeyExtras: request.trainKeyExtras)
        let spec = compiled.spec
        let runURL = request.runDirectory ?? RunDirectory.defaultURL(
            name: spec.name, base: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
        // Refuse early, before any work, when the folder holds something we must not replace.
        try RunDirectory.refuseExisting(runURL, overwrite: request.overwrite)
        let store = try store()
        let executor = Executor(compiled: compiled, store: store, pipelineID: pipelineID(spec),
                                force: request.force, log: request.log, progress: request.progress,
                                callbacks: request.callbacks)
        let outcome = try executor.runAll()
        let pipelineBytes = yaml.map { Data($0.utf8) } ?? (try? Data(contentsOf: pipeline)) ?? Data()
        let run = try RunDirectory.create(at: runURL, overwrite: request.overwrite) { dir in
            try RunWriter(compiled: compiled, outcome: outcome, executor: executor,
                          pipelineSHA256: ContentHash.sha256(pipelineBytes)).write(into: dir)
        }
        request.log("run written to \(run.url.path)")
        return TrainResult(runDirectory: run.url, metrics: outcome.metrics, stageStatus: executor.status)
    }

    /// The validation key a monitor names (`auto` → `val.<metric>`, or `val.<task>.<metric>` with
    /// several tasks) and whether higher is better, checked against the problem detection finds.
    /// Runs the stages up to `fit` through the cache (what a sweep's trials then reuse).
    public func resolveMonitor(_ text: String, mode: String, threads: Int, key: String) throws -> (key: String, higherIsBetter: Bool) {
        let compiled = try compile(threads: threads)
        let executor = Executor(compiled: compiled, store: try store(), pipelineID: pipelineID(compiled.spec),
                                force: false, log: { _ in }, progress: { _ in }, callbacks: [])
        let processors = try executor.fittedProcessors()
        let metric = try resolvedMetric(compiled.spec, problem: processors.problem)
        guard let m = MonitorModeSpec(rawValue: mode) else {
            throw PipelineError("\(key): unknown mode '\(mode)'", hint: "use auto, min or max")
        }
        let (name, resolved) = try TrainStage.resolveMonitor(text, m, metric: metric, problem: processors.problem, key: key,
                                                             spec: compiled.spec, processors: processors)
        return (name, resolved == .max)
    }

    /// Stage id → key of every stage before training (what a sweep's trials may share).
    public func inputStageKeys(threads: Int) throws -> [String: String] {
        let compiled = try compile(threads: threads)
        var keys: [String: String] = [:]
        for n in compiled.graph.nodes where ![.train, .evaluate, .predict].contains(n.kind) { keys[n.id] = n.key }
        return keys
    }

    /// Computes, through the cache, everything the network reads for each part (encoded rows,
    /// text and image features): all stages before training, with `threads` workers.
    public func computeInputs(threads: Int, log: @escaping (String) -> Void) throws {
        let compiled = try compile(threads: threads)
        let executor = Executor(compiled: compiled, store: try store(), pipelineID: pipelineID(compiled.spec),
                                force: false, log: log, progress: { _ in }, callbacks: [])
        for part in ["train", "validation", "test"] where compiled.graph.node("encode.\(part)") != nil {
            _ = try executor.modelData(part)
        }
    }

    /// Identifies this pipeline in the cache's stage records (name plus the file's location).
    func pipelineID(_ spec: PipelineSpec) -> String {
        "\(spec.name)-\(ContentHash.sha256(Data(pipeline.path.utf8)).prefix(12))"
    }
}

/// What `train` needs besides the pipeline.
public struct TrainRequest {
    public var threads: Int
    public var runDirectory: URL?
    public var overwrite: Bool
    public var force: Bool
    /// One line per stage ("cached"/"ran") and the run folder.
    public var log: (String) -> Void
    /// Training progress text, written as is (it may redraw a line with carriage returns).
    public var progress: (String) -> Void
    /// A library user's own callbacks, run after the pipeline's: they see every step,
    /// validation and checkpoint event and may stop training. They run only when the `train`
    /// stage computes (a cached model does not train again).
    public var callbacks: [any TrainerCallback]
    /// Joins the training stage's cache key: whatever else decides the weights (a sweep's
    /// pruning callback, which can stop training early).
    public var trainKeyExtras: [String: JSONValue] = [:]

    public init(threads: Int, runDirectory: URL? = nil, overwrite: Bool = false, force: Bool = false,
                log: @escaping (String) -> Void = { _ in }, progress: @escaping (String) -> Void = { _ in },
                callbacks: [any TrainerCallback] = []) {
        self.callbacks = callbacks
        self.progress = progress
        self.threads = threads
        self.runDirectory = runDirectory
        self.overwrite = overwrite
        self.force = force
        self.log = log
    }
}

/// The outcome of `train`.
public struct TrainResult {
    public let runDirectory: URL
    /// `validation` and (with a test file) `test` → metric name → value.
    public let metrics: [String: [String: Double]]
    /// Stage id → `cached` or `ran`.
    public let stageStatus: [(stage: String, cached: Bool)]

    /// The run folder and the final metrics, for standard output.
    public var summary: String {
        var lines = [runDirectory.path]
        for part in ["validation", "test"] {
            guard let m = metrics[part] else { continue }
            let figures = m.keys.sorted().map { "\($0) \(formatMetric(m[$0]!))" }.joined(separator: "  ")
            lines.append("\(part): \(figures)")
        }
        return lines.joined(separator: "\n")
    }
}

func formatMetric(_ v: Double) -> String {
    v.isNaN ? "nan" : String(format: "%.4f", v)
}

/// Metrics as the pretty, sorted JSON that `metrics.json` and `runpipe evaluate` print.
public func metricsJSON(_ metrics: [String: Double]) throws -> String {
    String(decoding: try prettyJSON(metrics), as: UTF8.self)
}
