import ArgumentParser
import TensorEngine
import Foundation
import Pipeline

extension Runpipe {
    /// Predicts a data file with a trained run.
    struct Predict: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Predict a data file with a trained run: its columns plus the prediction and class probabilities.")

        @Argument(help: "A run folder written by `runpipe train`.")
        var runDir: String

        @Option(help: "CSV or JSON Lines file to predict.")
        var data: String

        @Option(help: "Where to write the predictions (CSV).")
        var out: String

        @Flag(help: "Replace --out if it exists.")
        var overwrite = false

        @Option(help: "Worker threads (default: RUNPIPE_THREADS, else every core).")
        var threads: Int?

        func run() throws {
            // Commands that compute make sure OpenBLAS runs this CPU's kernels (see `BLASCore`).
            BLASCore.restartWithBetterKernelsIfNeeded()
            try reportingErrors {
                if let threads { try setThreads(threads) }
                let predictor = try Predictor(runDirectory: URL(fileURLWithPath: runDir))
                let n = try predictor.predictFile(URL(fileURLWithPath: data), to: URL(fileURLWithPath: out), overwrite: overwrite)
                logLine("wrote \(n) prediction(s) to \(out)")
            }
        }
    }

    /// Scores a trained run on a labelled data file.
    struct Evaluate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Score a trained run on a labelled data file; prints the metrics as JSON.")

        @Argument(help: "A run folder written by `runpipe train`.")
        var runDir: String

        @Option(help: "CSV or JSON Lines file with the label column.")
        var data: String

        @Option(help: "Worker threads (default: RUNPIPE_THREADS, else every core).")
        var threads: Int?

        func run() throws {
            // Commands that compute make sure OpenBLAS runs this CPU's kernels (see `BLASCore`).
            BLASCore.restartWithBetterKernelsIfNeeded()
            try reportingErrors {
                if let threads { try setThreads(threads) }
                let predictor = try Predictor(runDirectory: URL(fileURLWithPath: runDir))
                let metrics = try predictor.evaluateFile(URL(fileURLWithPath: data))
                print(try metricsJSON(metrics), terminator: "")
            }
        }
    }
}
