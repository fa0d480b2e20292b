import Foundation
import Images
import Spec
import Tables
import TensorEngine
import Training

// The data-side stages: column inference, the train/validation split, fitting processors,
// and encoding rows into model inputs.

/// `infer`: modality of every column (detection, or the file's overrides) and the problem type.
struct ColumnInferenceStage {
    let spec: PipelineSpec
    /// The training file's folder: where image cells' relative paths resolve.
    var dataFolder: URL? = nil

    func run(_ table: Table) throws -> ColumnsArtifact {
        var overrides: [String: ColumnModality] = [:]
        for (name, o) in spec.data.columns {
            overrides[name] = ColumnModality(rawValue: o.rawValue) ?? .ignore
        }
        let location = spec.sources["data.label"]
        var schema: ColumnSchema
        // Several label columns or a multi-label task: the columns are described as features
        // first, then the label columns are marked as the tasks' labels.
        let tasks = usesTargetLayout ? try TargetLayout.infer(spec, table: table) : nil
        do {
            let p = spec.processors.image
            schema = try ColumnDetector.infer(table: table, label: tasks == nil ? spec.data.label : nil, overrides: overrides,
                                              problemType: spec.problem.fixed,
                                              images: dataFolder.map { ImageSampling(baseFolder: $0, allowOutside: p.allowOutside,
                                                                                      limits: ImageDecodeLimits(maxPixels: p.maxPixels)) })
        } catch let e as TableError {
            // Point at the pipeline key the problem is about where there is one.
            let at: SourceLocation?
            switch e {
            case .nonNumericOverride(let column, _, _, _): at = spec.sources["data.columns.\(column)"] ?? spec.sources["data.columns"]
            default: at = location
            }
            throw PipelineError(e.description, at: at)
        }
        if let tasks { schema = Self.markingLabels(schema, tasks: tasks) }
        guard let problem = schema.problem else {
            throw PipelineError.internalInconsistency("column inference returned no problem type for label \(spec.data.label)")
        }
        let imageColumns = schema.features.filter { $0.modality == .image }
        if spec.backbones.image == nil, let f = imageColumns.first {
            throw PipelineError(
                "column '\(f.name)' holds images (\(f.reason)), and the pipeline has no image backbone to read it",
                at: spec.sources["data.columns.\(f.name)"] ?? spec.sources["backbones"] ?? spec.sources["data.train"],
                hint: "add `backbones: {image: {checkpoint: ../models/mobilenet_v2, architecture: mobilenet_v2}}` (scripts/fetch-models fetches it), or `\(f.name): ignore` under data.columns")
        }
        if spec.backbones.image != nil, imageColumns.isEmpty {
            throw PipelineError(
                "backbones.image is set, but no column of \(spec.data.train) holds images",
                at: spec.sources["backbones.image"],
                hint: "declare the image columns under data.columns (`photo: image`), or remove backbones.image; `runpipe inspect` shows how each column was classified")
        }
        let textColumns = schema.features.filter { $0.modality == .text }
        if spec.backbones.text == nil, let f = textColumns.first {
            throw PipelineError(
                "column '\(f.name)' holds text (\(f.reason)), and the pipeline has no text backbone to read it",
                at: spec.sources["data.columns.\(f.name)"] ?? spec.sources["backbones"] ?? spec.sources["data.train"],
                hint: "add `backbones: {text: {checkpoint: ../models/all-MiniLM-L6-v2}}` (scripts/fetch-models fetches it), or `\(f.name): ignore` (or `categorical`) under data.columns")
        }
        if spec.backbones.text != nil, textColumns.isEmpty {
            throw PipelineError(
                "backbones.text is set, but no column of \(spec.data.train) is text",
                at: spec.sources["backbones.text"],
                hint: "declare the text columns under data.columns (`review: text`), or remove backbones.text; `runpipe inspect` shows how each column was classified")
        }
        return ColumnsArtifact(schema: schema, problem: problem, tasks: tasks)
    }

    /// Whether the labels go through a `TargetLayout`: several label columns or multi-label.
    var usesTargetLayout: Bool {
        spec.data.labels.count > 1 || spec.problem.problem(for: spec.data.label) == .multilabel
    }

    /// `schema` with the tasks' columns marked as labels and the first task's problem.
    static func markingLabels(_ schema: ColumnSchema, tasks: [TaskInference]) -> ColumnSchema {
        var s = schema
        for task in tasks {
            for column in task.columns {
                guard let i = s.columns.firstIndex(where: { $0.name == column }) else { continue }
                let p = task.problem
                s.columns[i] = ColumnInference(
                    name: column, modality: p.problem == .regression ? .numeric : .categorical, rule: "label",
                    evidence: s.columns[i].evidence, reason: "a label (task '\(task.name)', \(p.problem.rawValue)): \(p.reason)", isLabel: true)
            }
        }
        s.label = tasks.first?.name
        s.problem = tasks.first?.problem
        return s
    }
}

/// `split`: training and validation rows of the training table.
struct Splitter {
    let spec: PipelineSpec

    /// Stream offset of the split's random draws, apart from initialisation and shuffling.
    static let randomStream: UInt64 = 0x5_0000_0000

    func split(_ table: Table, problem: ProblemType) throws -> SplitArtifact {
        let labelColumns = try located(spec.sources["data.label"]) { try spec.data.labels.map { try table.requireColumn(named: $0, role: "label") } }
        let labels = labelColumns[0]
        // With several label columns a row trains only when every one is filled in.
        let labelled = labels.indices.filter { r in labelColumns.allSatisfy { $0[r] != nil } }
        let dropped = labels.count - labelled.count
        switch spec.data.validation {
        case .file:
            return SplitArtifact(train: labelled, validation: [], droppedMissingLabel: dropped)
        case .holdout(let fraction, let stratify):
            var rng = RandomGenerator(seed: spec.seed, offset: Self.randomStream)
            var validation: [Int] = []
            if stratify && problem != .regression && problem != .multilabel {
                var byClass: [String: [Int]] = [:]
                for r in labelled { byClass[labels[r]!, default: []].append(r) }
                for cls in byClass.keys.sorted() {
                    let rows = byClass[cls]!
                    let order = rng.permutation(rows.count)
                    // Every class keeps at least one training row; classes with ≥ 2 rows give at least one to validation.
                    var take = Int((fraction * Double(rows.count)).rounded())
                    if rows.count >= 2 { take = min(max(take, 1), rows.count - 1) } else { take = 0 }
                    validation += order.prefix(take).map { rows[$0] }
                }
            } else {
                let order = rng.permutation(labelled.count)
                let take = min(max(Int((fraction * Double(labelled.count)).rounded()), 1), labelled.count - 1)
                validation = order.prefix(max(take, 0)).map { labelled[$0] }
            }
            validation.sort()
            let held = Set(validation)
            let train = labelled.filter { !held.contains($0) }
            guard !validation.isEmpty, !train.isEmpty else {
                throw PipelineError("\(table.source) has \(labelled.count) labelled row(s): too few to hold out a validation set",
                                    at: spec.sources["data.validation"] ?? spec.sources["data.train"],
                                    hint: "give more rows, or a separate validation file in data.validation")
            }
            return SplitArtifact(train: train, validation: validation, droppedMissingLabel: dropped)
        }
    }
}

/// `fit`: processors fitted on the training rows only.
struct ProcessorFitting {
    let spec: PipelineSpec

    func fit(_ table: Table, columns: ColumnsArtifact, trainRows: [Int]) throws -> FittedProcessors {
        let train = table.selectingRows(trainRows)
        let p = spec.processors
        var numeric: [FittedProcessors.NumericColumn] = []
        var categorical: [FittedProcessors.CategoricalColumn] = []
        var text: [String] = []
        var image: [String] = []
        var ignored: [String: String] = [:]
        for f in columns.schema.features {
            let cells = try train.requireColumn(named: f.name)
            switch f.modality {
            case .numeric:
                let proc = try NumericProcessor.fit(
                    cells, column: f.name, source: train.source, lineNumbers: train.lineNumbers,
                    impute: NumericImputation(rawValue: p.numeric.impute.rawValue) ?? .median,
                    scale: NumericScaling(rawValue: p.numeric.scale.rawValue) ?? .standard)
                numeric.append(.init(name: f.name, processor: proc))
            case .categorical:
                let proc = try CategoricalProcessor.fit(cells, minCount: p.categorical.minCount,
                                                        maxCategories: p.categorical.maxCategories)
                categorical.append(.init(name: f.name, processor: proc))
            case .text:
                text.append(f.name)
            case .image:
                image.append(f.name)
            case .ignore:
                ignored[f.name] = f.reason
            }
        }
        var targets: TargetLayout?
        let labelProcessor: LabelProcessor
        if let tasks = columns.tasks {
            let layout = try TargetLayout.fit(spec, tasks: tasks, train: train)
            targets = layout
            // The first task stands for the run where one label is asked for (its name and problem).
            let first = layout.tasks[0]
            labelProcessor = first.label ?? LabelProcessor(column: first.name, problem: .multilabel, classes: first.multilabel?.labels ?? [],
                                                           mean: 0, standardDeviation: 1)
        } else {
            let labelCells = try train.requireColumn(named: spec.data.label)
            labelProcessor = try LabelProcessor.fit(labelCells, problem: columns.problem.problem, column: spec.data.label,
                                                    source: train.source, lineNumbers: train.lineNumbers)
        }
        return FittedProcessors(label: targets?.tasks[0].name ?? spec.data.label, problem: columns.problem.problem,
                                labelProcessor: labelProcessor,
                                numeric: numeric, categorical: categorical, text: text, image: image, ignored: ignored,
                                trainColumns: table.columnNames, targets: targets)
    }
}

/// `encode.*`: rows → numeric matrix, categorical indices, token ids and targets, with fitted
/// processors and the text backbone's tokenizer.
struct FeatureEncoder {
    let processors: FittedProcessors
    /// Needed when there are text columns.
    var tokenizer: TextTokenizer? = nil
    /// Receives the tokenization counts.
    var report: (TokenizationReport) -> Void = { _ in }
    /// Receives the labels of label-set cells that training never saw, with their counts.
    var unknownLabels: ([String: Int]) -> Void = { _ in }

    /// Rows with a missing label get a NaN target; `requireLabels` (training and validation)
    /// drops nothing but fails when the label column itself is absent.
    func encode(_ table: Table, rows: [Int], requireLabels: Bool) throws -> EncodedPart {
        guard rows.count < (1 << 24) else {
            throw PipelineError("\(table.source) has \(rows.count) rows; runpipe encodes at most 16 777 215 rows per file",
                                hint: "split the file")
        }
        let part = table.selectingRows(rows)
        let n = part.rowCount
        var numeric: Tensor?
        if !processors.numeric.isEmpty {
            let k = processors.numeric.count
            var matrix = [Float](repeating: 0, count: n * k)
            for (j, col) in processors.numeric.enumerated() {
                let values = try col.processor.transform(try part.requireColumn(named: col.name), column: col.name,
                                                         source: part.source, lineNumbers: part.lineNumbers)
                for i in 0..<n { matrix[i * k + j] = values[i] }
            }
            numeric = try Tensor(matrix, shape: [n, k])
        }
        let c = processors.categorical.count
        var categorical = [Int32](repeating: 0, count: n * c)
        for (j, col) in processors.categorical.enumerated() {
            let ids = col.processor.transform(try part.requireColumn(named: col.name))
            for i in 0..<n { categorical[i * c + j] = ids[i] }
        }
        var text: [TokenizedText] = []
        if !processors.text.isEmpty {
            guard let tokenizer else { throw PipelineError.internalInconsistency("text columns without a tokenizer") }
            let columns = try processors.text.map { (name: $0, cells: try part.requireColumn(named: $0)) }
            let (t, r) = try tokenizer.tokenize(columns)
            text = t
            report(r)
        }
        if let layout = processors.targets {
            let (targets, unknown) = try layout.encode(part, requireLabels: requireLabels)
            if !unknown.isEmpty { unknownLabels(unknown) }
            return EncodedPart(rows: rows, numeric: numeric, categorical: categorical, categoricalCount: c, targets: targets,
                               targetWidth: layout.targetWidth, text: text)
        }
        var targets = [Float](repeating: .nan, count: n)
        if let labels = part.column(named: processors.label) {
            for i in 0..<n {
                guard let cell = labels[i] else { continue }
                targets[i] = try processors.labelProcessor.encode(cell, source: part.source, line: part.lineNumbers[i])
            }
        } else if requireLabels {
            _ = try part.requireColumn(named: processors.label, role: "label")
        }
        return EncodedPart(rows: rows, numeric: numeric, categorical: categorical, categoricalCount: c, targets: targets, text: text)
    }
}
