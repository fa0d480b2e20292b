import Checkpoints
import Foundation
import Models
import Tables
import TensorEngine
import Training

// The typed results stages hand each other, and how each is stored in a cache entry.

/// `infer`: each column's modality with its evidence, and the problem type.
struct ColumnsArtifact: Codable {
    static let file = "columns.json"
    var schema: ColumnSchema
    /// The first task's problem (the only one of a single-task pipeline).
    var problem: ProblemInference
    /// Every task, when there are several label columns or a multi-label task.
    var tasks: [TaskInference]? = nil
}

/// `split`: which rows of the training table train and which validate (validation rows are
/// empty when a separate validation file is given). Rows whose label is missing are in neither.
struct SplitArtifact: Codable {
    static let file = "split.json"
    var train: [Int]
    var validation: [Int]
    var droppedMissingLabel: Int

    enum CodingKeys: String, CodingKey {
        case train, validation
        case droppedMissingLabel = "dropped_missing_label"
    }
}

/// `fit`: processors fitted on the training rows, in feature order.
struct FittedProcessors: Codable {
    static let file = "processors.json"

    struct NumericColumn: Codable {
        var name: String
        var processor: NumericProcessor
    }

    struct CategoricalColumn: Codable {
        var name: String
        var processor: CategoricalProcessor
    }

    var label: String
    var problem: ProblemType
    var labelProcessor: LabelProcessor
    var numeric: [NumericColumn]
    var categorical: [CategoricalColumn]
    /// Text columns, in table order (read by the text backbone's tokenizer; nothing to fit).
    var text: [String]
    /// Image columns, in table order (read by the image backbone; nothing to fit). Optional so
    /// runs written before images were read still load.
    var image: [String]?
    /// Columns the model does not read, with the reason (ignored by detection or override).
    var ignored: [String: String]
    /// Every column of the training file, to check test and prediction files against.
    var trainColumns: [String]
    /// The tasks of a pipeline with several label columns or a multi-label task; nil for one
    /// binary, multiclass or regression label (then `labelProcessor` is the whole story).
    var targets: TargetLayout? = nil

    enum CodingKeys: String, CodingKey {
        case label, problem, numeric, categorical, text, image, ignored, targets
        case labelProcessor = "label_processor"
        case trainColumns = "train_columns"
    }

    var tabularSchema: TabularSchema {
        TabularSchema(numericCount: numeric.count, cardinalities: categorical.map(\.processor.cardinality))
    }

    /// Class names in index order (classification), empty for regression.
    var classes: [String] { labelProcessor.classes }

    /// Every label column.
    var labelColumns: [String] { targets?.labelColumns ?? [label] }
}

/// `encode.*`: model inputs for a set of rows.
struct EncodedPart {
    static let file = "encoded.safetensors"
    /// Row indices into the part's source table, in order.
    var rows: [Int]
    /// [rows, numeric columns] or nil when there are none.
    var numeric: Tensor?
    /// Row-major [rows × categorical columns].
    var categorical: [Int32]
    var categoricalCount: Int
    /// Class index (classification) or standardised target (regression); NaN = missing label.
    /// With a `TargetLayout`, `targetWidth` floats per row.
    var targets: [Float]
    /// Target floats per row: 1, or the layout's `targetWidth`.
    var targetWidth: Int = 1
    /// Token ids of the text inputs (one when joined, one per column when separate).
    var text: [TokenizedText] = []
    /// What the `embed.*` stage computed for each text input (pooled features or hidden states);
    /// attached by the executor, not stored with the encoded part.
    var textFeatures: [Tensor] = []
    /// The part's image pixels (the `pixels.*` stage), attached by the executor.
    var pixels: PixelSet? = nil
    /// Pooled features of a frozen image backbone (the `embed_image.*` stage), attached by the executor.
    var imageFeatures: Tensor? = nil

    var count: Int { rows.count }

    /// Whether the row at `position` has its label (every task's, with several).
    func hasLabel(_ position: Int) -> Bool {
        !targets[position * targetWidth].isNaN
    }

    /// The targets of the rows at `positions`, row-major.
    func targetValues(_ positions: [Int]) -> [Float] {
        if targetWidth == 1 { return positions.map { targets[$0] } }
        return positions.flatMap { targets[($0 * targetWidth)..<(($0 + 1) * targetWidth)] }
    }

    /// Takes the row at `position` out of training and scoring.
    mutating func clearLabel(_ position: Int) {
        for j in 0..<targetWidth { targets[position * targetWidth + j] = .nan }
    }

    /// Positions that train and score: all but the rows `missing: skip_row` left out.
    var usablePositions: [Int] {
        guard let skipped = pixels?.skipped, !skipped.isEmpty else { return Array(0..<count) }
        let left = Set(skipped)
        return (0..<count).filter { !left.contains($0) }
    }

    /// The network inputs of the rows at `positions` (positions into this part, not table rows).
    /// Text inputs take the form `mode` reads: token ids, cached hidden states, or pooled features.
    func batch(_ positions: [Int], text mode: TextTrainMode?, image: ImageBatchSource? = nil) throws -> NetworkBatch {
        let numericBatch = try numeric.map { try indexSelect($0, axis: 0, indices: positions) }
        var cats: [Int32] = []
        if categoricalCount > 0 {
            cats.reserveCapacity(positions.count * categoricalCount)
            for p in positions {
                let s = p * categoricalCount
                cats.append(contentsOf: categorical[s..<(s + categoricalCount)])
            }
        }
        var inputs: [TextInput] = []
        if let mode {
            for (i, t) in text.enumerated() {
                // Without cached features (full fine-tuning, or prediction outside the pipeline)
                // the network reads token ids.
                guard mode != .full, i < textFeatures.count else {
                    inputs.append(.tokens(t.batch(positions)))
                    continue
                }
                if mode == .frozen {
                    inputs.append(.pooled(try indexSelect(textFeatures[i], axis: 0, indices: positions)))
                } else {
                    let tokens = t.batch(positions)
                    inputs.append(.hidden(try hiddenBatch(textFeatures[i], positions: positions, tokens: tokens.tokens), tokens))
                }
            }
        }
        var images: [ImageInput] = []
        if let image {
            if image.mode == .frozen, let imageFeatures {
                images.append(.pooled(try indexSelect(imageFeatures, axis: 0, indices: positions)))
            } else if let pixels {
                for (c, column) in pixels.columns.enumerated() {
                    images.append(try image.input(column, columnIndex: c, positions: positions, rowIds: rows))
                }
            }
        }
        return NetworkBatch(numeric: numericBatch, categorical: cats, text: inputs, images: images)
    }

    func save(to url: URL) throws {
        var tensors: [(String, Tensor)] = [
            ("rows", try Tensor(rows.map { Float($0) }, shape: [rows.count])),
            ("targets", try Tensor(targets, shape: targetWidth == 1 ? [targets.count] : [rows.count, targetWidth])),
            ("categorical", try Tensor(categorical.map { Float($0) }, shape: [rows.count, categoricalCount])),
        ]
        if let numeric { tensors.append(("numeric", numeric)) }
        for (i, t) in text.enumerated() { tensors += try t.tensors(prefix: "text.\(i)") }
        let names = text.map(\.name).joined(separator: "\n")
        try SafetensorsWriter.write(tensors, metadata: ["format": "runpipe-encoded-2", "text": names], to: url)
    }

    static func load(from url: URL) throws -> EncodedPart {
        let f = try SafetensorsFile(url: url)
        let rows = try f.tensor(named: "rows").toArray().map { Int($0) }
        let targetTensor = try f.tensor(named: "targets")
        let targets = targetTensor.toArray()
        let catTensor = try f.tensor(named: "categorical")
        let numeric = f.contains("numeric") ? try f.tensor(named: "numeric") : nil
        var text: [TokenizedText] = []
        let names = (f.metadata["text"] ?? "").split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var i = 0
        while f.contains("text.\(i).ids") {
            text.append(TokenizedText.from(ids: try f.tensor(named: "text.\(i).ids"), typeIds: try f.tensor(named: "text.\(i).type_ids"),
                                           lengths: try f.tensor(named: "text.\(i).lengths"), name: i < names.count ? names[i] : "text"))
            i += 1
        }
        return EncodedPart(rows: rows, numeric: numeric, categorical: catTensor.toArray().map { Int32($0) },
                           categoricalCount: catTensor.shape.count == 2 ? catTensor.shape[1] : 0, targets: targets,
                           targetWidth: targetTensor.shape.count == 2 ? targetTensor.shape[1] : 1, text: text)
    }
}
