import ArgumentParser
import Foundation
import Tables

extension TableFormat: ExpressibleByArgument {}

extension Runpipe {
    /// Shows how runpipe reads a data file: each column's modality and the rule and figures
    /// that decided it.
    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show each column's detected modality with the rule and the figures behind it.")

        @Argument(help: "A CSV or JSON Lines file.")
        var data: String

        @Option(help: "The label column: reported with the problem type it implies, and left out of the features.")
        var label: String?

        @Option(help: "auto (by extension), csv or jsonl.")
        var format: TableFormat = .auto

        @Flag(help: "Print JSON instead of a table.")
        var json = false

        func run() throws {
            try reportingErrors {
                let url = URL(fileURLWithPath: data)
                let table = try TableReader(format: format).read(url, displayPath: data)
                // Image columns: a few cells are decoded, relative to the file's folder.
                let schema = try ColumnDetector.infer(table: table, label: label,
                                                      images: ImageSampling(baseFolder: url.deletingLastPathComponent()))
                if json {
                    let e = JSONEncoder()
                    e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                    print(String(decoding: try e.encode(schema), as: UTF8.self))
                } else {
                    let text = schema.rendered()
                    print(text, terminator: text.hasSuffix("\n") ? "" : "\n")
                }
            }
        }
    }
}
