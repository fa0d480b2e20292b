import ArgumentParser
import Foundation
import Pipeline
import TensorEngine

/// Options shared by the commands that read a pipeline file.
struct PipelineOptions: ParsableArguments {
    @Argument(help: "The pipeline file (YAML).")
    var pipeline: String

    @Option(name: .customLong("set"), help: ArgumentHelp(
        "Override a pipeline key, e.g. --set trainer.optimizer.lr=3e-4 (repeatable).", valueName: "KEY=VALUE"))
    var overrides: [String] = []

    @Option(help: ArgumentHelp("Cache folder (default: RUNPIPE_CACHE_DIR, else .runpipe/cache beside the pipeline file).",
                               valueName: "DIR"))
    var cacheDir: String?

    @Option(help: "Worker threads (default: RUNPIPE_THREADS, else every core). Results do not depend on it.")
    var threads: Int?

    var pipelineURL: URL { URL(fileURLWithPath: pipeline) }

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    /// Applies `--threads` and returns the thread count the run uses.
    func applyThreads() -> Int {
        if let threads { Parallel.threadCount = threads }
        return Parallel.threadCount
    }

    var session: Session {
        Session(pipeline: pipelineURL, overrides: overrides, cacheDir: cacheDir,
                environment: ProcessInfo.processInfo.environment)
    }
}

/// Runs a command body, printing runpipe's own errors (which carry file:line:column and a hint)
/// to standard error and exiting with status 1 instead of ArgumentParser's generic rendering.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as ExitCode {
        throw e
    } catch let e as CleanExit {
        throw e
    } catch {
        FileHandle.standardError.write(Data((String(describing: error) + "\n").utf8))
        throw ExitCode(1)
    }
}

/// Writes a line to standard error (progress and logs, so standard output stays machine-readable).
func logLine(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

/// Applies a `--threads` value given to a command without `PipelineOptions`.
func setThreads(_ n: Int) throws {
    guard n >= 1 else { throw ValidationError("--threads must be at least 1, got \(n)") }
    Parallel.threadCount = n
}
