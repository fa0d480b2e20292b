import Cache
import Foundation
import Models
import Tables
import TensorEngine
import Tokenizers

/// A trained run loaded for serving: `runpipe predict` and `runpipe evaluate`.
public final class Predictor {
    public let run: RunDirectory
    let model: TrainedModel
    let processors: FittedProcessors

    /// Tokenizes text columns (nil without text).
    let tokenizer: TextTokenizer?

    public init(runDirectory: URL) throws {
        run = try RunDirectory.open(runDirectory)
        model = try TrainedModel.load(from: run.modelURL)
        processors = try readJSON(FittedProcessors.self, from: run.modelURL.appendingPathComponent(FittedProcessors.file))
        if let text = model.network.config.text {
            let folder = run.modelURL.appendingPathComponent(TrainedModel.textFolder, isDirectory: true)
            tokenizer = TextTokenizer(tokenizer: try Tokenizer.load(folder: folder), maxLength: text.checkpoint.maxLength,
                                      combine: text.segments > 1 ? .separate : .join)
            if text.mode == .frozen { try attachFrozenEncoder(text) }
        } else {
            tokenizer = nil
        }
        if let image = model.network.config.image, image.mode == .frozen { try attachFrozenImageEncoder(image) }
    }

    /// A frozen image backbone's weights are the checkpoint's: load them, refusing a checkpoint
    /// whose weights changed since training.
    private func attachFrozenImageEncoder(_ image: ImageBranchConfig) throws {
        let url = image.checkpoint.url
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw PipelineError("the run's image backbone was frozen, so its weights were not copied into the run; they are read from \(url.path), which no longer exists",
                                hint: "put the checkpoint back (scripts/fetch-models), or retrain with trainable: full")
        }
        let now = try ImageCheckpoint.weightsHash(of: url, hasher: FileHasher(statCacheURL: nil))
        guard now == image.checkpoint.weightsHash else {
            throw PipelineError("the image checkpoint at \(url.path) changed since this run was trained (weights sha256 \(now.prefix(12))…, trained with \(image.checkpoint.weightsHash.prefix(12))…)",
                                hint: "restore the checkpoint the run was trained with, or retrain")
        }
        model.network.attachFrozenImageEncoder(try image.checkpoint.load(seed: 0).encoder)
    }

    /// The image pixels of `table`'s rows, read as in training (paths relative to the file's folder).
    func pixels(_ table: Table, file: URL) throws -> PixelSet? {
        guard let image = model.network.config.image else { return nil }
        let reader = ImagePixelReader(reading: image.reading, transforms: try image.reading.evaluationPipeline(),
                                      baseFolder: file.deletingLastPathComponent())
        return try reader.read(table, rows: Array(0..<table.rowCount), columns: image.columns)
    }

    /// A frozen encoder's weights are the checkpoint's: load them from its folder, refusing a
    /// folder whose weights changed since training.
    private func attachFrozenEncoder(_ text: TextBranchConfig) throws {
        let url = text.checkpoint.url
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw PipelineError("the run's text encoder was frozen, so its weights were not copied into the run; they are read from \(url.path), which no longer exists",
                                hint: "put the checkpoint folder back (scripts/fetch-models), or retrain with trainable: full")
        }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).sorted()
        let hash = try TextCheckpoint.digest(["config.json"] + TextCheckpoint.weightFiles(in: names), in: url,
                                             hasher: FileHasher(statCacheURL: nil))
        guard hash == text.checkpoint.weightsHash else {
            throw PipelineError("the text checkpoint at \(url.path) changed since this run was trained (weights sha256 \(hash.prefix(12))…, trained with \(text.checkpoint.weightsHash.prefix(12))…)",
                                hint: "restore the checkpoint the run was trained with, or retrain")
        }
        model.network.attachFrozenEncoder(try TextEncoders.load(folder: url, rng: RandomSource(seed: 0)))
    }

    /// The problem type and, for classification, the classes in output order.
    public var problem: String { processors.problem.rawValue }
    public var classes: [String] { processors.classes }

    var encoder: FeatureEncoder { FeatureEncoder(processors: processors, tokenizer: tokenizer) }

    /// Reads a data file, checking it has every feature column the model reads.
    func readTable(_ url: URL, needLabel: Bool) throws -> Table {
        let t = try TableReader().read(url, displayPath: url.path)
        let needed = processors.numeric.map(\.name) + processors.categorical.map(\.name) + processors.text
            + (processors.image ?? []) + (needLabel ? processors.labelColumns : [])
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
        var part = try encoder.encode(table, rows: Array(0..<table.rowCount), requireLabels: false)
        part.pixels = try pixels(table, file: data)
        let csv = try Scoring.predictionsCSV(model: model, processors: processors, table: table, part: part)
        try AtomicFile.write(csv, to: out)
        return table.rowCount
    }

    /// The problem's standard metrics on a labelled file (rows without a label are skipped).
    public func evaluateFile(_ data: URL) throws -> [String: Double] {
        let table = try readTable(data, needLabel: true)
        var part = try encoder.encode(table, rows: Array(0..<table.rowCount), requireLabels: false)
        part.pixels = try pixels(table, file: data)
        for i in part.pixels?.skipped ?? [] { part.clearLabel(i) }
        return try Scoring.metrics(model: model, processors: processors, part: part)
    }
}
