import Cache
import Foundation
import Pipeline
import Registry
import Spec

/// What `runpipe sweep` was asked.
public struct SweepRequest {
    public var pipeline: URL
    /// `--set` flags every trial gets before its own.
    public var overrides: [String]
    public var cacheDir: String?
    /// `--grid` / `--random` parameters (on top of the file's `sweep:` section).
    public var flags: [SweepParameter] = []
    public var method: SweepMethod?
    public var trials: Int?
    public var jobs: Int?
    public var monitor: String?
    public var mode: String?
    /// The sweep folder (default: sweeps/<name>-<time> in the current folder).
    public var folder: URL?
    /// Cores to split between the jobs.
    public var threads: Int
    /// The `runpipe` executable that runs trials.
    public var executable: URL
    public var environment: [String: String]
    public var log: (String) -> Void

    public init(pipeline: URL, overrides: [String] = [], cacheDir: String? = nil, threads: Int, executable: URL,
                environment: [String: String] = ProcessInfo.processInfo.environment, log: @escaping (String) -> Void = { _ in }) {
        self.pipeline = pipeline.standardizedFileURL
        self.overrides = overrides
        self.cacheDir = cacheDir
        self.threads = threads
        self.executable = executable
        self.environment = environment
        self.log = log
    }
}

/// Runs a sweep's trials as `runpipe train` processes that share the stage cache, records the
/// sweep in `sweep.json` (and the registry), and resumes interrupted sweeps.
public final class SweepRunner: @unchecked Sendable {
    public let folder: URL
    public private(set) var state: SweepState
    let jobs: Int
    /// Cores of the whole sweep (what the shared stages are computed with).
    let threads: Int
    let cacheDir: String?
    let executable: URL
    let environment: [String: String]
    let log: (String) -> Void
    let registryURL: URL

    private let lock = NSLock()
    private var running: [Int: Process] = [:]
    private var interrupted = false
    /// Trials waiting for a free job, in index order.
    private var queue: [Int] = []

    // MARK: - Starting

    /// Loads the pipeline, makes the trials and checks every one as `--set` would (and the
    /// halving budget), creating nothing: what `prepare` and `--dry-run` start with.
    public static func checkedTrials(_ request: SweepRequest) throws -> (spec: PipelineSpec, plan: SweepPlan, trials: [Trial], rungs: [Int]?) {
        let spec = try Session(pipeline: request.pipeline, overrides: request.overrides, cacheDir: request.cacheDir,
                               environment: request.environment).load()
        let plan = SweepPlan(section: spec.sweep, flags: request.flags, method: request.method, trials: request.trials,
                             pipelineSeed: spec.seed)
        let trials = try plan.trials()
        let fileParameters = Dictionary((spec.sweep?.parameters ?? []).map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })

        // Every trial's pipeline, as `--set` would check it.
        for t in trials {
            do {
                _ = try PipelineLoader.load(request.pipeline, overrides: request.overrides + t.overrides)
            } catch let e as SpecErrors {
                let first = e.errors.first
                let key = first?.flag.flatMap { f in t.keys.first { f.hasPrefix($0 + "=") } }
                let location = key.flatMap { fileParameters[$0]?.location }
                let detail = e.errors.map { "    " + $0.description.replacingOccurrences(of: "\n", with: "\n    ") }.joined(separator: "\n")
                throw SweepError("trial \(t.name) (\(t.summary)) is not a valid pipeline; no trial was started:\n\(detail)",
                                 at: location, hint: "fix the swept values\(key.map { " of \($0)" } ?? "")")
            }
        }

        // Successive halving's rungs come from trainer.epochs, the budget every trial shares.
        var rungs: [Int]? = nil
        if plan.method == .halving {
            if let p = plan.parameters.first(where: { $0.key == "trainer.epochs" }) {
                throw SweepError("successive halving uses trainer.epochs as its budget; it cannot be swept", at: p.location,
                                 hint: "remove trainer.epochs from the parameters, or use method: random")
            }
            let r = plan.halving.rungs(epochs: spec.trainer.epochs)
            guard !r.isEmpty else {
                throw SweepError("successive halving has no rung below trainer.epochs (\(spec.trainer.epochs)) with min_epochs \(plan.halving.minEpochs)",
                                 at: spec.sources["sweep.halving.min_epochs"],
                                 hint: "lower sweep.halving.min_epochs or raise trainer.epochs")
            }
            rungs = r
        }
        return (spec, plan, trials, rungs)
    }

    /// Checks everything (every trial's pipeline, the monitor, the folder) before any trial
    /// starts (throwing with the trial and key named), then creates the sweep folder and state.
    public static func prepare(_ request: SweepRequest) throws -> SweepRunner {
        let session = Session(pipeline: request.pipeline, overrides: request.overrides, cacheDir: request.cacheDir,
                              environment: request.environment)
        let (spec, plan, trials, rungs) = try checkedTrials(request)

        // Jobs: never more than the cores or the trials; the cores split evenly.
        let cores = max(1, request.threads)
        var jobs = request.jobs ?? spec.sweep?.jobs ?? 1
        if jobs > cores {
            request.log("warning: --jobs \(jobs) is more than the \(cores) core\(cores == 1 ? "" : "s") available; running \(cores) at once")
            jobs = cores
        }
        jobs = max(1, min(jobs, trials.count))
        let threadsPerTrial = max(1, cores / jobs)

        let monitorText = request.monitor ?? spec.sweep?.monitor ?? "auto"
        let modeText = request.mode ?? spec.sweep?.mode.rawValue ?? "auto"
        let (monitor, higher) = try session.resolveMonitor(monitorText, mode: modeText, threads: threadsPerTrial, key: "sweep")

        let folder = request.folder ?? RunDirectory.defaultURL(
            name: spec.name, base: URL(fileURLWithPath: FileManager.default.currentDirectoryPath), folder: "sweeps")
        try Self.refuseExisting(folder)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)

        let created = ISO8601DateFormatter().string(from: Date())
        let state = SweepState(
            format: SweepState.format, id: folder.lastPathComponent, name: spec.name, pipeline: request.pipeline.path,
            overrides: request.overrides, method: plan.method.rawValue, monitor: monitor, mode: higher ? "max" : "min",
            created: created, parameters: plan.parameters.map(\.key), threadsPerTrial: threadsPerTrial,
            rungs: rungs, eta: rungs == nil ? nil : plan.halving.eta, status: "running",
            trials: trials.map {
                SweepState.TrialState(index: $0.index, name: $0.name, parameters: $0.parameters, status: .queued,
                                      runDir: "trials/\($0.name)", metrics: [:])
            }, best: nil)
        try state.write(to: folder)
        let store = try session.store()
        return SweepRunner(folder: folder, state: state, jobs: jobs, threads: cores, cacheDir: store.root.path, executable: request.executable,
                           environment: request.environment, log: request.log,
                           registryURL: RunRegistry.defaultURL(cacheRoot: store.root, environment: request.environment))
    }

    /// Picks an interrupted sweep up again: finished and stopped trials stay, the rest run anew.
    public static func resume(folder: URL, jobs: Int?, threads: Int, executable: URL,
                              environment: [String: String] = ProcessInfo.processInfo.environment,
                              cacheDir: String? = nil, log: @escaping (String) -> Void) throws -> SweepRunner {
        var state = try SweepState.read(from: folder)
        let pipeline = URL(fileURLWithPath: state.pipeline)
        guard FileManager.default.fileExists(atPath: pipeline.path) else {
            throw SweepError("the sweep's pipeline \(state.pipeline) is gone", hint: "restore it to resume the sweep")
        }
        let session = Session(pipeline: pipeline, overrides: state.overrides, cacheDir: cacheDir, environment: environment)
        let cores = max(1, threads)
        var j = jobs ?? 1
        if j > cores {
            log("warning: --jobs \(j) is more than the \(cores) core\(cores == 1 ? "" : "s") available; running \(cores) at once")
            j = cores
        }
        let store = try session.store()
        state.status = "running"
        // Results do not depend on the thread count, so a resumed sweep splits its cores anew.
        j = max(1, min(j, state.trials.filter { !$0.status.isDone }.count))
        state.threadsPerTrial = max(1, cores / j)
        let runner = SweepRunner(folder: folder, state: state, jobs: max(1, j), threads: cores, cacheDir: store.root.path, executable: executable,
                                 environment: environment, log: log,
                                 registryURL: RunRegistry.defaultURL(cacheRoot: store.root, environment: environment))
        runner.adoptFinishedTrials()
        return runner
    }

    init(folder: URL, state: SweepState, jobs: Int, threads: Int, cacheDir: String?, executable: URL, environment: [String: String],
         log: @escaping (String) -> Void, registryURL: URL) {
        self.folder = folder
        self.state = state
        self.jobs = jobs
        self.threads = threads
        self.cacheDir = cacheDir
        self.executable = executable
        self.environment = environment
        self.log = log
        self.registryURL = registryURL
    }

    static func refuseExisting(_ folder: URL) throws {
        let fm = FileManager.default
        guard fm.fileExists(atPath: folder.path) else { return }
        if fm.fileExists(atPath: folder.appendingPathComponent(SweepState.file).path) {
            throw SweepError("\(folder.path) already holds a sweep", hint: "resume it with `runpipe sweep --resume \(folder.path)`, or choose another --sweep-dir")
        }
        if let contents = try? fm.contentsOfDirectory(atPath: folder.path), !contents.isEmpty {
            throw SweepError("\(folder.path) is not empty and holds no sweep", hint: "choose another --sweep-dir")
        }
    }

    // MARK: - Running

    /// The trials that still need a run, in index order.
    var pendingTrials: [Int] { state.trials.filter { !$0.status.isDone }.map(\.index) }

    /// Runs every trial not yet done, `jobs` at a time. Returns when all are done or the sweep is
    /// interrupted (`wasInterrupted`).
    public func run() throws {
        let registry = try RunRegistry(url: registryURL)
        try registry.recordSweep(sweepRecord())
        let pending = pendingTrials
        log("sweep \(state.id): \(state.trials.count) trial\(state.trials.count == 1 ? "" : "s") (\(pending.count) to run), "
            + "\(jobs) at a time, \(state.threadsPerTrial) thread\(state.threadsPerTrial == 1 ? "" : "s") each; monitor \(state.monitor) (\(state.mode))")
        for i in pending { cleanTrialFolder(i) }
        try computeSharedStages(pending)

        lock.withLock { queue = pending }
        let group = DispatchGroup()
        for _ in 0..<jobs {
            group.enter()
            Thread.detachNewThread { [self] in
                defer { group.leave() }
                while let index = takeNext() { runTrial(index) }
            }
        }
        group.wait()

        lock.withLock {
            state.updateBest()
            if interrupted {
                state.status = "interrupted"
            } else {
                let failed = state.trials.filter { $0.status == .failed }.count
                state.status = failed == 0 ? "finished" : "finished with \(failed) failed"
            }
        }
        try state.write(to: folder)
        try? registry.recordSweep(sweepRecord())
    }

    /// When every pending trial needs the same stages before training (a sweep over trainer,
    /// fusion or head keys), computes them first with all the cores: otherwise the first trials
    /// would compute them on their share of the cores while the others wait for them.
    private func computeSharedStages(_ pending: [Int]) throws {
        guard jobs > 1, threads > 1, !pending.isEmpty else { return }
        let pipeline = URL(fileURLWithPath: state.pipeline)
        let sessions = pending.map { i in
            Session(pipeline: pipeline, overrides: state.overrides + trialOverrides(state.trials[i]),
                    cacheDir: cacheDir, environment: environment)
        }
        let first = try sessions[0].inputStageKeys(threads: threads)
        for s in sessions.dropFirst() where try s.inputStageKeys(threads: threads) != first { return }
        let start = Date()
        log("computing the stages every trial shares (\(first.count)) on \(threads) threads …")
        try sessions[0].computeInputs(threads: threads, log: { _ in })
        log(String(format: "shared stages ready (%.1f s)", Date().timeIntervalSince(start)))
    }

    func trialOverrides(_ t: SweepState.TrialState) -> [String] {
        state.parameters.compactMap { k in t.parameters[k].map { "\(k)=\($0)" } }
    }

    private func takeNext() -> Int? {
        lock.withLock {
            guard !interrupted, !queue.isEmpty else { return nil }
            return queue.removeFirst()
        }
    }

    public var wasInterrupted: Bool { lock.withLock { interrupted } }

    /// Stops the sweep: no new trial starts, running trial processes are ended; their trials
    /// are queued again for `--resume`.
    public func interrupt() {
        let processes: [Process] = lock.withLock {
            interrupted = true
            return Array(running.values)
        }
        for p in processes where p.isRunning { p.terminate() }
    }

    private func runTrial(_ index: Int) {
        let trial = lock.withLock { state.trials[index] }
        let runURL = folder.appendingPathComponent(trial.runDir)
        let logs = folder.appendingPathComponent("logs")
        try? FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        try? FileManager.default.createDirectory(at: runURL.deletingLastPathComponent(), withIntermediateDirectories: true)
        let logURL = logs.appendingPathComponent("\(trial.name).log")
        if !FileManager.default.fileExists(atPath: logURL.path) { _ = FileManager.default.createFile(atPath: logURL.path, contents: nil) }

        let process = Process()
        process.executableURL = executable
        var args = ["train", state.pipeline]
        for o in state.overrides + trialOverrides(trial) { args += ["--set", o] }
        args += ["--run-dir", runURL.path, "--threads", String(state.threadsPerTrial), "--quiet",
                 "--sweep-trial", "\(folder.path):\(index)"]
        if let cacheDir { args += ["--cache-dir", cacheDir] }
        process.arguments = args
        process.environment = environment
        let handle = try? FileHandle(forWritingTo: logURL)
        _ = try? handle?.seekToEnd()
        handle?.write(Data("$ runpipe \(args.joined(separator: " "))\n".utf8))
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice

        let start = Date()
        let launched: Bool = lock.withLock {
            guard !interrupted else { return false }
            do { try process.run() } catch {
                state.trials[index].status = .failed
                state.trials[index].error = "could not start \(executable.path): \(error.localizedDescription)"
                return false
            }
            running[index] = process
            state.trials[index].status = .running
            state.trials[index].error = nil
            return true
        }
        try? withStateLock { try state.write(to: folder) }
        guard launched else { try? handle?.close(); return }
        log("trial \(trial.name) started: \(summary(trial))")
        process.waitUntilExit()
        try? handle?.close()
        let seconds = Date().timeIntervalSince(start)

        lock.withLock {
            running[index] = nil
            var t = state.trials[index]
            let killed = process.terminationReason == .uncaughtSignal
            if process.terminationStatus == 0, FileManager.default.fileExists(atPath: runURL.appendingPathComponent("lock.json").path) {
                t = Self.readResult(t, runURL: runURL, folder: folder, rungs: state.rungs ?? [])
                t.seconds = seconds
            } else if interrupted || killed {
                // Ended by Ctrl-C, kill or the sweep's own interrupt: run again on --resume.
                t.status = .queued
                t.error = "interrupted"
                interrupted = true
            } else {
                t.status = .failed
                t.seconds = seconds
                t.error = Self.lastLines(of: logURL) + " (see logs/\(t.name).log)"
            }
            state.trials[index] = t
            state.updateBest()
        }
        try? withStateLock { try state.write(to: folder) }
        let t = lock.withLock { state.trials[index] }
        switch t.status {
        case .finished, .stopped:
            let value = t.metrics[state.monitor].map { String(format: "%.4f", $0) } ?? "n/a"
            log("trial \(t.name) \(t.status == .stopped ? "stopped at epoch \(t.stoppedAt ?? 0)" : "finished"): \(state.monitor) \(value) (\(String(format: "%.1f", seconds)) s)")
        case .failed:
            log("trial \(t.name) failed: \(t.error ?? "")")
        default:
            log("trial \(t.name) interrupted")
        }
    }

    private func withStateLock(_ body: () throws -> Void) throws {
        try lock.withLock { try body() }
    }

    private func summary(_ t: SweepState.TrialState) -> String {
        state.parameters.map { "\($0)=\(t.parameters[$0] ?? "")" }.joined(separator: " ")
    }

    /// A finished trial's metrics (validation metrics as `val.<name>`), epochs and pruning.
    static func readResult(_ trial: SweepState.TrialState, runURL: URL, folder: URL, rungs: [Int]) -> SweepState.TrialState {
        var t = trial
        t.metrics = [:]
        let run = try? RunFolder.read(runURL)
        for (split, values) in run?.metrics ?? [:] {
            let prefix = split == "validation" ? "val." : split + "."
            for (k, v) in values { t.metrics[prefix + k] = v ?? .nan }
        }
        t.epochs = run?.history.column("epoch")?.compactMap { $0 }.max().map { Int($0) }
        if t.metrics["val.loss"] == nil, let best = run?.history.column("val.loss")?.compactMap({ $0 }).min() {
            t.metrics["val.loss"] = best
        }
        t.stoppedAt = RungPruner.stoppedAt(folder: folder, trial: t.index, rungs: rungs)
        t.status = t.stoppedAt == nil ? .finished : .stopped
        t.error = nil
        return t
    }

    static func lastLines(of url: URL, count: Int = 3) -> String {
        guard let d = FileManager.default.contents(atPath: url.path), let text = String(data: d, encoding: .utf8) else { return "no output" }
        let lines = text.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("$ runpipe") && !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        return lines.suffix(count).joined(separator: " | ")
    }

    /// Before a trial (re)starts: what an interrupted attempt left behind goes, and a run it
    /// finished before the sweep could note it is adopted instead.
    private func cleanTrialFolder(_ index: Int) {
        let fm = FileManager.default
        let trial = state.trials[index]
        let runURL = folder.appendingPathComponent(trial.runDir)
        let parent = runURL.deletingLastPathComponent()
        for name in (try? fm.contentsOfDirectory(atPath: parent.path)) ?? []
        where name.hasPrefix(".\(trial.name).staging-") || name.hasPrefix(".\(trial.name).replaced-") {
            try? fm.removeItem(at: parent.appendingPathComponent(name))
        }
        if fm.fileExists(atPath: runURL.path), !fm.fileExists(atPath: runURL.appendingPathComponent("lock.json").path) {
            try? fm.removeItem(at: runURL)
        }
    }

    /// Trials whose run folder is complete although the state says otherwise (the sweep was
    /// killed between the trial's end and the state's update) count as done.
    func adoptFinishedTrials() {
        for (i, t) in state.trials.enumerated() where !t.status.isDone {
            let runURL = folder.appendingPathComponent(t.runDir)
            if FileManager.default.fileExists(atPath: runURL.appendingPathComponent("lock.json").path) {
                state.trials[i] = Self.readResult(t, runURL: runURL, folder: folder, rungs: state.rungs ?? [])
            } else if t.status == .running {
                state.trials[i].status = .queued
            }
        }
        state.updateBest()
    }

    func sweepRecord() -> SweepRecord {
        let f = ISO8601DateFormatter()
        return SweepRecord(id: state.id, name: state.name, pipeline: state.pipeline, directory: folder.path,
                           method: state.method, monitor: state.monitor, mode: state.mode, trials: state.trials.count,
                           status: state.status, created: f.date(from: state.created) ?? Date())
    }
}
