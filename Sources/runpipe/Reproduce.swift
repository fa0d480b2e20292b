import ArgumentParser
import Foundation
import Pipeline
import TensorEngine
import Training

extension Runpipe {
    /// Re-executes a run from its resolved pipeline and lock and compares the results.
    struct Reproduce: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a finished run again from its resolved pipeline and lock; compare metrics and weights bit for bit.",
            discussion: """
                Every stage is recomputed in a fresh cache with the run's seed and thread count. runpipe \
                refuses, naming the differing hashes, when a data file or checkpoint the run read has \
                changed. Exits 0 when everything is identical, 1 otherwise.
                """)

        @Argument(help: ArgumentHelp("The run: its folder, or its id or name in the registry.", valueName: "run"))
        var target: String

        @Option(help: ArgumentHelp("Keep the reproduction in DIR (default: a temporary folder, removed afterwards).", valueName: "DIR"))
        var runDir: String?

        @OptionGroup var location: RegistryLocation

        @Flag(help: "Print only the verdict.")
        var quiet = false

        func run() throws {
            BLASCore.restartWithBetterKernelsIfNeeded()
            try reportingErrors {
                let runURL = try location.folder(for: target, sweeps: false)
                let fm = FileManager.default
                let scratch = fm.temporaryDirectory.appendingPathComponent("runpipe-reproduce-\(UUID().uuidString.prefix(8))")
                try fm.createDirectory(at: scratch, withIntermediateDirectories: true)
                defer { try? fm.removeItem(at: scratch) }
                let into = runDir.map { URL(fileURLWithPath: $0).standardizedFileURL } ?? scratch.appendingPathComponent("run")
                let outcome = try Reproduction.run(runURL, into: into, cacheDir: scratch.appendingPathComponent("cache"),
                                                   environment: ProcessInfo.processInfo.environment,
                                                   log: quiet ? { _ in } : logLine,
                                                   progress: quiet ? { _ in } : ProgressReporter.writeToStandardError)
                if !quiet {
                    let width = outcome.comparisons.map(\.name.count).max() ?? 0
                    for c in outcome.comparisons {
                        print("\(c.identical ? "same" : "DIFF")  \(c.name.padding(toLength: width, withPad: " ", startingAt: 0))  \(c.detail)")
                    }
                }
                if outcome.identical {
                    print("reproduced: \(outcome.original.path) — metrics, predictions and weights identical bit for bit")
                } else {
                    print("NOT reproduced: \(outcome.comparisons.filter { !$0.identical }.map(\.name).joined(separator: ", ")) differ")
                    throw ExitCode(1)
                }
            }
        }
    }
}
