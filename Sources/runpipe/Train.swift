import ArgumentParser
import Foundation
import Glibc
import Pipeline
import Registry
import Sweeps
import TensorEngine
import Training

extension Runpipe {
    /// Compiles a pipeline, runs its stages through the cache, and writes a run directory.
    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train, evaluate and save a run from a pipeline file.",
            discussion: "Stages whose inputs have not changed are taken from the cache; `runpipe plan` shows which and why. "
                + "Every run is recorded in the registry (`runpipe runs`).")

        @OptionGroup var options: PipelineOptions

        @Option(help: ArgumentHelp("Run folder (default: runs/<name>-<time>).", valueName: "DIR"))
        var runDir: String?

        @Flag(help: "Replace the run folder if it already holds a run.")
        var overwrite = false

        @Flag(help: "Recompute every stage even when the cache holds it.")
        var force = false

        @Flag(help: "Print only the run folder and final metrics.")
        var quiet = false

        /// Set by `runpipe sweep` for its trial processes: the sweep folder and the trial's index.
        @Option(help: .hidden)
        var sweepTrial: String?

        func run() throws {
            // Commands that compute make sure OpenBLAS runs this CPU's kernels (see `BLASCore`).
            BLASCore.restartWithBetterKernelsIfNeeded()
            try reportingErrors {
                let threads = options.applyThreads()
                let session = options.session
                var request = TrainRequest(
                    threads: threads, runDirectory: runDir.map { URL(fileURLWithPath: $0) },
                    overwrite: overwrite, force: force,
                    log: quiet ? { _ in } : logLine,
                    progress: quiet ? { _ in } : ProgressReporter.writeToStandardError)
                var trial: (state: SweepState, folder: URL, index: Int)?
                if let sweepTrial {
                    let t = try SweepTrialArgument.parse(sweepTrial)
                    SweepTrialArgument.exitWithParent()
                    if let pruner = try RungPruner(sweepFolder: t.folder, trial: t.index) {
                        request.callbacks.append(pruner)
                        request.trainKeyExtras["pruning"] = pruner.keyMaterial
                    }
                    trial = (try SweepState.read(from: t.folder), t.folder, t.index)
                }
                // The folder is known before training so the registry can show the run as running.
                let spec = try session.load()
                let runURL = (request.runDirectory ?? RunDirectory.defaultURL(
                    name: spec.name, base: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))).standardizedFileURL
                request.runDirectory = runURL
                let registry = try RunRegistry(url: RunRegistry.defaultURL(cacheRoot: try session.store().root,
                                                                           environment: ProcessInfo.processInfo.environment))
                let id = try registry.begin(NewRun(
                    pipeline: session.pipeline.path, name: spec.name, runDirectory: runURL.path, overrides: options.overrides,
                    parameters: trial.map { $0.state.trials[$0.index].parameters } ?? [:],
                    sweepID: trial?.state.id, trialIndex: trial?.index, threads: threads, seed: spec.seed, command: "train"))
                let result: TrainResult
                do {
                    result = try session.train(request)
                } catch {
                    try? registry.fail(id: id, message: String(describing: error))
                    throw error
                }
                let stopped = trial.flatMap { t in t.state.rungs.flatMap { RungPruner.stoppedAt(folder: t.folder, trial: t.index, rungs: $0) } } != nil
                do {
                    try registry.finish(id: id, runDirectory: result.runDirectory, stoppedEarly: stopped)
                } catch {
                    // The run folder is complete; only its record is behind.
                    logLine("warning: the run in \(result.runDirectory.path) could not be recorded in the registry: \(error)")
                }
                print(result.summary)
            }
        }
    }
}

/// `--sweep-trial DIR:INDEX`.
enum SweepTrialArgument {
    static func parse(_ text: String) throws -> (folder: URL, index: Int) {
        guard let colon = text.lastIndex(of: ":"), let index = Int(text[text.index(after: colon)...]), index >= 0 else {
            throw ValidationError("--sweep-trial expects SWEEP_FOLDER:INDEX, got '\(text)'")
        }
        return (URL(fileURLWithPath: String(text[..<colon])).standardizedFileURL, index)
    }

    /// A trial process ends when the sweep that started it is gone (killed with -9, power cut on
    /// its side): nothing it would write could be recorded, and a resumed sweep restarts it.
    static func exitWithParent() {
        let parent = getppid()
        Thread.detachNewThread {
            while getppid() == parent { Thread.sleep(forTimeInterval: 0.5) }
            logLine("the sweep that started this trial has ended; stopping")
            exit(3)
        }
    }
}
