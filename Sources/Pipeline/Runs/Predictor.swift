import Cache
import Foundation
import Tables

/// A trained run loaded for serving: `runpipe predict` and `runpipe evaluate`.
public final class Predictor {
    public let run: RunDirectory
    let model: TrainedModel
    let processors: FittedProcessors

    public init(runDirectory: URL) throws {
        run = try RunDirectory.open(runDirectory)
        model = try TrainedModel.load(from: run.modelURL)
        processors = try readJSON(FittedProcessors.self, from: run.modelURL.appendingPathComponent(FittedProcessors.file))
    }

    /// The problem type and, for classification, the classes in output order.
    public var problem: String { processors.problem.rawValue }
    public var classes: [String] { processors.classes }

    /// Reads a data file, checking it has every feature column the model reads.
    func readTable(_ url: URL, needLabel: Bool) throws -> Table {
        let t = try TableReader().read(url, displayPath: url.path)
        let needed = processors.numeric.map(\.name) + processors.categorical.map(\.name) + (needLabel ? [processors.label] : [])
        let missing = needed.filter { t.columnIndex(named: $0) == nil }
        guard missing.isEmpty else {
            throw PipelineError("\(url.path) lacks column(s) the model reads: \(missing.map { "'\($0)'" }.joined(separator: ", ")) (it has \(t.columnNames.map { "'\($0)'" }.joined(separator: ", ")))",
                                hint: "give a file with the training file's header")
        }
        return t
    }

    /// Predicts every row of `data` and writes the predictions CSV to `out` (atomically;
    /// an existing `out` is replaced only with `overwrite`). Returns the row count.
    @discardableResult
    public func predictFile(_ data: URL, to out: URL, overwrite: Bool) throws -> Int {
        if !overwrite && FileManager.default.fileExists(atPath: out.path) {
            throw PipelineError("\(out.path) already exists", hint: "pass --overwrite to replace it, or choose another --out")
        }
        let table = try readTable(data, needLabel: false)
        let part = try FeatureEncoder(processors: processors).encode(table, rows: Array(0..<table.rowCount), requireLabels: false)
        let csv = try Scoring.predictionsCSV(model: model, processors: processors, table: table, part: part)
        try AtomicFile.write(csv, to: out)
        return table.rowCount
    }

    /// The problem's standard metrics on a labelled file (rows without a label are skipped).
    public func evaluateFile(_ data: URL) throws -> [String: Double] {
        let table = try readTable(data, needLabel: true)
        let part = try FeatureEncoder(processors: processors).encode(table, rows: Array(0..<table.rowCount), requireLabels: false)
        return try Scoring.metrics(model: model, processors: processors, part: part)
    }
}
