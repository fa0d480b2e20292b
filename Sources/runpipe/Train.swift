import ArgumentParser
import TensorEngine
import Foundation
import Pipeline
import Training

extension Runpipe {
    /// Compiles a pipeline, runs its stages through the cache, and writes a run directory.
    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train, evaluate and save a run from a pipeline file.",
            discussion: "Stages whose inputs have not changed are taken from the cache; `runpipe plan` shows which and why.")

        @OptionGroup var options: PipelineOptions

        @Option(help: ArgumentHelp("Run folder (default: runs/<name>-<time>).", valueName: "DIR"))
        var runDir: String?

        @Flag(help: "Replace the run folder if it already holds a run.")
        var overwrite = false

        @Flag(help: "Recompute every stage even when the cache holds it.")
        var force = false

        @Flag(help: "Print only the run folder and final metrics.")
        var quiet = false

        func run() throws {
            // Commands that compute make sure OpenBLAS runs this CPU's kernels (see `BLASCore`).
            BLASCore.restartWithBetterKernelsIfNeeded()
            try reportingErrors {
                let threads = options.applyThreads()
                let session = options.session
                let result = try session.train(TrainRequest(
                    threads: threads, runDirectory: runDir.map { URL(fileURLWithPath: $0) },
                    overwrite: overwrite, force: force,
                    log: quiet ? { _ in } : logLine,
                    progress: quiet ? { _ in } : ProgressReporter.writeToStandardError))
                print(result.summary)
            }
        }
    }
}
