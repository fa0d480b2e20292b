import ArgumentParser
import Foundation
import Reports

extension Runpipe {
    /// Writes one self-contained HTML page about a run or a sweep. (Not named `Report`, so
    /// `Report` inside `Runpipe` still means the Reports module's entry point.)
    struct ReportCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "report",
            abstract: "Write an HTML report of a run or a sweep folder (one file, no network needed).",
            discussion: """
                A run folder (it holds lock.json) gets its metrics, learning curves, confusion matrix, \
                ROC, precision-recall and calibration plots (or, for regression, predicted-vs-true and \
                residuals) and its columns' detected modalities. A sweep folder (it holds sweep.json) \
                gets its trials ranked, the metric against each parameter, parallel coordinates and the \
                best trial's learning curves. The page has inline SVG plots, no scripts, and is the same \
                bytes for the same folder. An existing file is replaced only if runpipe wrote it.
                """)

        @Argument(help: ArgumentHelp("A run folder or a sweep folder, or a run's id or name or a sweep's id in the registry.",
                                     valueName: "run-or-sweep"))
        var folder: String

        @OptionGroup var location: RegistryLocation

        @Option(help: ArgumentHelp("Where to write the page (default: <folder>/report.html).", valueName: "file"))
        var output: String?

        func run() throws {
            try reportingErrors {
                let written = try Report.write(folder: try location.folder(for: folder, sweeps: true),
                                               output: output.map { URL(fileURLWithPath: $0) })
                print(written.path)
            }
        }
    }
}
