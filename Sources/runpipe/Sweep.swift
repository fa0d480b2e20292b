import ArgumentParser
import Foundation
import Reports
import Spec
import Sweeps
import TensorEngine

/// Set by SIGINT/SIGTERM; a watcher thread turns it into `SweepRunner.interrupt()`. A caught
/// signal (unlike an ignored one) is reset to its default in the trial processes.
nonisolated(unsafe) private var sweepSignal: Int32 = 0

extension Runpipe {
    /// Runs the trials of a sweep, sharing the stage cache between them.
    struct Sweep: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a grid, random or successive-halving sweep over pipeline keys.",
            discussion: """
                Trials come from the pipeline's `sweep:` section and/or --grid / --random flags; each \
                is `runpipe train` with the trial's values as --set overrides, run in its own process. \
                Trials share the stage cache: features that do not depend on a swept key are computed \
                once. An interrupted sweep continues with `runpipe sweep --resume DIR`.
                """)

        @Argument(help: "The pipeline file (YAML); not needed with --resume.")
        var pipeline: String?

        @Option(name: .customLong("set"), help: ArgumentHelp("Override a pipeline key for every trial (repeatable).", valueName: "KEY=VALUE"))
        var overrides: [String] = []

        @Option(help: ArgumentHelp("Sweep a key over values, e.g. --grid trainer.optimizer.lr=1e-3,3e-3 (repeatable).", valueName: "KEY=V1,V2,…"))
        var grid: [String] = []

        @Option(help: ArgumentHelp("Draw a key from choice(a,b), uniform(lo,hi), log_uniform(lo,hi) or int(lo,hi) (repeatable).",
                                   valueName: "KEY=DIST"))
        var random: [String] = []

        @Option(help: "grid, random or halving (default: the sweep section's, else grid; random with only --random flags).")
        var method: SweepMethod?

        @Option(help: "Trials that random and halving draw.")
        var trials: Int?

        @Option(help: "Trials run at once, each a process with the cores split between them.")
        var jobs: Int?

        @Option(help: "What trials are ranked by: auto, val.loss or val.<metric>.")
        var monitor: String?

        @Option(help: "auto, min or max.")
        var mode: String?

        @Option(help: ArgumentHelp("Sweep folder (default: sweeps/<name>-<time>).", valueName: "DIR"))
        var sweepDir: String?

        @Option(help: ArgumentHelp("Continue the interrupted sweep in DIR: finished trials stay, the rest run again.", valueName: "DIR"))
        var resume: String?

        @Option(help: ArgumentHelp("Cache folder (default: RUNPIPE_CACHE_DIR, else .runpipe/cache beside the pipeline file).", valueName: "DIR"))
        var cacheDir: String?

        @Option(help: "Cores to split between the jobs (default: RUNPIPE_THREADS, else every core).")
        var threads: Int?

        @Flag(help: "Print only the table of trials and the best run folder.")
        var quiet = false

        @Flag(help: "Check every trial and list them; run nothing, create nothing.")
        var dryRun = false

        func validate() throws {
            if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
            if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1, got \(jobs)") }
            if let trials, trials < 1 { throw ValidationError("--trials must be at least 1, got \(trials)") }
            if resume == nil && pipeline == nil { throw ValidationError("give a pipeline file, or --resume DIR") }
            if resume != nil && dryRun { throw ValidationError("--dry-run lists a new sweep's trials; it does not combine with --resume") }
            if resume != nil && (pipeline != nil || !grid.isEmpty || !random.isEmpty || !overrides.isEmpty || method != nil || trials != nil) {
                throw ValidationError("--resume continues a sweep as it was started; it takes only --jobs, --threads, --cache-dir and --quiet")
            }
        }

        func run() throws {
            BLASCore.restartWithBetterKernelsIfNeeded()
            try reportingErrors {
                if let threads { Parallel.threadCount = threads }
                let cores = Parallel.threadCount
                let log: (String) -> Void = quiet ? { _ in } : logLine
                let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
                let runner: SweepRunner
                if let resume {
                    runner = try SweepRunner.resume(folder: URL(fileURLWithPath: resume).standardizedFileURL, jobs: jobs, threads: cores,
                                                    executable: executable, cacheDir: cacheDir, log: log)
                } else {
                    var request = SweepRequest(pipeline: URL(fileURLWithPath: pipeline ?? ""), overrides: overrides, cacheDir: cacheDir,
                                               threads: cores, executable: executable, log: log)
                    request.flags = try grid.map(SweepSpec.gridFlag) + random.map(SweepSpec.randomFlag)
                    request.method = method
                    request.trials = trials
                    request.jobs = jobs
                    request.monitor = monitor
                    request.mode = mode
                    request.folder = sweepDir.map { URL(fileURLWithPath: $0).standardizedFileURL }
                    if dryRun {
                        let checked = try SweepRunner.checkedTrials(request)
                        print(SweepTable.preview(checked.trials, method: checked.plan.method, rungs: checked.rungs))
                        return
                    }
                    runner = try SweepRunner.prepare(request)
                }
                watchSignals(runner)
                try runner.run()
                print(SweepTable.result(runner.state))
                if runner.wasInterrupted {
                    logLine("sweep interrupted; continue it with: runpipe sweep --resume \(runner.folder.path)")
                    throw ExitCode(130)
                }
                if let best = runner.state.best {
                    print("best: trial \(runner.state.trials[best].name) → \(runner.folder.appendingPathComponent(runner.state.trials[best].runDir).path)")
                }
                print("sweep: \(runner.folder.path)")
                do {
                    print("report: \(try SweepReport.write(sweepFolder: runner.folder).path)")
                } catch {
                    logLine("warning: the sweep's report could not be written: \(error)")
                }
                let failed = runner.state.trials.filter { $0.status == .failed }
                if !failed.isEmpty {
                    logLine("\(failed.count) trial\(failed.count == 1 ? "" : "s") failed (\(failed.map(\.name).joined(separator: ", "))); "
                            + "their logs are in \(runner.folder.appendingPathComponent("logs").path). "
                            + "After a fix, `runpipe sweep --resume \(runner.folder.path)` runs only them again.")
                    throw ExitCode(1)
                }
            }
        }

        private func watchSignals(_ runner: SweepRunner) {
            signal(SIGINT) { s in sweepSignal = s }
            signal(SIGTERM) { s in sweepSignal = s }
            Thread.detachNewThread {
                while sweepSignal == 0 { Thread.sleep(forTimeInterval: 0.05) }
                logLine("\nstopping the sweep: ending the running trials …")
                runner.interrupt()
            }
        }
    }
}

extension SweepMethod: ExpressibleByArgument {}
