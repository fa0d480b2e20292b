import Cache
import Checkpoints
import Foundation
import Spec
import Tables
import TensorEngine
import Models
import Tokenizers
import Training

/// Runs a compiled pipeline demand-first: asking for a stage's result loads it from the content
/// store when its key is there, and otherwise computes it (asking for its inputs the same way),
/// stores it under a per-key lock, and records the key for `plan`. A fully cached run therefore
/// reads only the small artifacts the run folder needs — not the data, not the encoded tables.
public final class Executor {
    let compiled: CompiledPipeline
    let store: ContentStore
    let pipelineID: String
    let force: Bool
    let log: (String) -> Void
    let progress: (String) -> Void

    private var tables: [String: Table] = [:]
    private var columns: ColumnsArtifact?
    private var split: SplitArtifact?
    private var processors: FittedProcessors?
    private var encoded: [String: EncodedPart] = [:]
    private var embedded: [String: [Tensor]] = [:]
    private var tokenizer: TextTokenizer?
    /// The pretrained encoder the `embed` stages share (they never change its weights).
    private var embeddingEncoder: (any TextEncoder)?
    private var pixelSets: [String: PixelSet] = [:]
    private var imageEmbedded: [String: (features: Tensor, skipped: [Int])] = [:]
    /// The pretrained image backbone the `embed_image` stages share.
    private var imageEmbeddingEncoder: LoadedImageEncoder?
    private var trained: TrainedModel?
    private var metrics: [String: [String: Double]] = [:]
    private var predictionFiles: [String: URL] = [:]
    private(set) var status: [(stage: String, cached: Bool)] = []
    /// Seconds spent in stages computed inside the stage being computed, per open stage.
    private var nestedSeconds: [Double] = []

    var spec: PipelineSpec { compiled.spec }

    /// The library user's callbacks for the `train` stage.
    let callbacks: [any TrainerCallback]

    init(compiled: CompiledPipeline, store: ContentStore, pipelineID: String, force: Bool,
         log: @escaping (String) -> Void, progress: @escaping (String) -> Void, callbacks: [any TrainerCallback] = []) {
        self.callbacks = callbacks
        self.progress = progress
        self.compiled = compiled
        self.store = store
        self.pipelineID = pipelineID
        self.force = force
        self.log = log
    }

    /// What a full run produced.
    struct Outcome {
        var metrics: [String: [String: Double]]
    }

    /// Evaluates every evaluate/predict stage (and so everything they need).
    func runAll() throws -> Outcome {
        _ = try trainedModel()
        for node in compiled.graph.nodes {
            switch node.kind {
            case .evaluate: _ = try evaluation(node.id)
            case .predict: _ = try predictionFile(node.id)
            default: break
            }
        }
        return Outcome(metrics: metrics)
    }

    // MARK: - The cache protocol every stored stage follows

    /// Returns the stage's entry, computing it when the store lacks it (or `--force`).
    private func entry(_ id: String, build: (URL) throws -> Void) throws -> CacheEntry {
        guard let node = compiled.graph.node(id) else { throw PipelineError.internalInconsistency("no stage \(id)") }
        let start = Date()
        // Inputs are computed on demand inside `build`; their time is logged with them, not here.
        nestedSeconds.append(0)
        defer { nestedSeconds.removeLast() }
        if force { try store.remove(node.key) }
        let (entry, wasCached) = try store.getOrCompute(key: node.key, stage: id, description: node.summary,
                                                       components: node.keyMaterial, build: build)
        try store.records.record(pipeline: pipelineID, stage: id, key: node.key, components: node.keyMaterial)
        status.append((id, wasCached))
        let elapsed = Date().timeIntervalSince(start)
        if wasCached {
            log("  cached  \(id)")
        } else {
            log(String(format: "  ran     %@  (%.2f s)", id, max(0, elapsed - (nestedSeconds.last ?? 0))))
        }
        if nestedSeconds.count >= 2 { nestedSeconds[nestedSeconds.count - 2] += elapsed }
        return entry
    }

    private func recordSource(_ id: String) throws {
        guard let node = compiled.graph.node(id) else { return }
        try store.records.record(pipeline: pipelineID, stage: id, key: node.key, components: node.keyMaterial)
    }

    // MARK: - load

    func table(_ role: String) throws -> Table {
        if let t = tables[role] { return t }
        guard let source = compiled.sources[role] else { throw PipelineError.internalInconsistency("no \(role) source") }
        let reader = TableReader(format: TableFormat(rawValue: spec.data.format.rawValue) ?? .auto,
                                 missingMarkers: Set(spec.data.missingValues))
        let t = try located(source.location) { try reader.read(source.url, displayPath: source.declared) }
        if let first = t.invalidUTF8Lines.first {
            let more = t.invalidUTF8Lines.count - 1
            log("  warning: \(source.declared):\(first): bytes that are not UTF-8 were read as U+FFFD\(more > 0 ? " (and on \(more) more line\(more == 1 ? "" : "s"))" : "")")
        }
        tables[role] = t
        try recordSource("load.\(role)")
        return t
    }

    // MARK: - infer

    func columnsArtifact() throws -> ColumnsArtifact {
        if let columns { return columns }
        let e = try entry("infer") { dir in
            let table = try self.table("train")
            let folder = self.compiled.sources["train"]?.url.deletingLastPathComponent()
            let artifact = try ColumnInferenceStage(spec: self.spec, dataFolder: folder).run(table)
            try writeJSON(artifact, to: dir.appendingPathComponent(ColumnsArtifact.file))
        }
        let a = try readJSON(ColumnsArtifact.self, from: e.file(named: ColumnsArtifact.file))
        columns = a
        return a
    }

    // MARK: - split

    func splitArtifact() throws -> SplitArtifact {
        if let split { return split }
        let e = try entry("split") { dir in
            let table = try self.table("train")
            let cols = try self.columnsArtifact()
            let s = try Splitter(spec: self.spec).split(table, problem: cols.problem.problem)
            try writeJSON(s, to: dir.appendingPathComponent(SplitArtifact.file))
        }
        let s = try readJSON(SplitArtifact.self, from: e.file(named: SplitArtifact.file))
        split = s
        return s
    }

    // MARK: - fit

    func fittedProcessors() throws -> FittedProcessors {
        if let processors { return processors }
        let e = try entry("fit") { dir in
            let table = try self.table("train")
            let p = try ProcessorFitting(spec: self.spec).fit(table, columns: try self.columnsArtifact(),
                                                               trainRows: try self.splitArtifact().train)
            try writeJSON(p, to: dir.appendingPathComponent(FittedProcessors.file))
        }
        let p = try readJSON(FittedProcessors.self, from: e.file(named: FittedProcessors.file))
        processors = p
        return p
    }

    // MARK: - encode

    func encodedPart(_ part: String) throws -> EncodedPart {
        if let p = encoded[part] { return p }
        let e = try entry("encode.\(part)") { dir in
            let p = try self.fittedProcessors()
            var encoder = FeatureEncoder(processors: p)
            encoder.unknownLabels = { self.log(unknownLabelsLine($0, part: part)) }
            if !p.text.isEmpty {
                encoder.tokenizer = try self.textTokenizer()
                let maxLength = self.compiled.text?.maxLength ?? 0
                encoder.report = { self.log($0.line(part: part, maxLength: maxLength)) }
            }
            let result: EncodedPart
            switch part {
            case "train":
                result = try encoder.encode(try self.table("train"), rows: try self.splitArtifact().train, requireLabels: true)
            case "validation":
                if self.compiled.sources["validation"] != nil {
                    let t = try self.table("validation")
                    try checkColumns(t, against: p, role: "validation", location: self.compiled.sources["validation"]?.location)
                    result = try encoder.encode(t, rows: Array(0..<t.rowCount), requireLabels: true)
                } else {
                    result = try encoder.encode(try self.table("train"), rows: try self.splitArtifact().validation, requireLabels: true)
                }
            default:
                let t = try self.table(part)
                try checkColumns(t, against: p, role: part, location: self.compiled.sources[part]?.location)
                result = try encoder.encode(t, rows: Array(0..<t.rowCount), requireLabels: false)
            }
            try result.save(to: dir.appendingPathComponent(EncodedPart.file))
        }
        let p = try EncodedPart.load(from: e.file(named: EncodedPart.file))
        encoded[part] = p
        return p
    }

    // MARK: - text

    /// The checkpoint's tokenizer, loaded once.
    func textTokenizer() throws -> TextTokenizer {
        if let tokenizer { return tokenizer }
        guard let text = compiled.text, let t = spec.backbones.text else {
            throw PipelineError.internalInconsistency("text columns without backbones.text")
        }
        let location = spec.sources["backbones.text.checkpoint"]
        let loaded = try located(location) { try Tokenizer.load(folder: text.url) }
        if let note = text.maxLengthNote { log("  note: \(note)") }
        let tk = TextTokenizer(tokenizer: loaded, maxLength: text.maxLength,
                               combine: t.combine == .separate ? .separate : .join)
        tokenizer = tk
        return tk
    }

    /// The pretrained text encoder with the checkpoint's weights (a fresh copy on every call:
    /// training changes the weights of the one it is given).
    func pretrainedEncoder() throws -> any TextEncoder {
        guard let text = compiled.text else { throw PipelineError.internalInconsistency("no text checkpoint") }
        return try located(spec.sources["backbones.text.checkpoint"]) {
            try TextEncoders.load(folder: text.url, rng: RandomSource(seed: spec.seed))
        }
    }

    /// `embed.<part>`: the output of the encoder layers that do not train.
    func textFeatures(_ part: String) throws -> [Tensor] {
        if let f = embedded[part] { return f }
        let id = "embed.\(part)"
        guard let node = compiled.graph.node(id), let text = compiled.text else { return [] }
        let e = try entry(id) { dir in
            let data = try self.encodedPart(part)
            let encoder = try self.embeddingEncoder ?? self.pretrainedEncoder()
            self.embeddingEncoder = encoder
            let pooled = node.components["output"]?.stringValue == "pooled"
            let upTo = Int(node.components["layers"]?.intValue ?? Int64(text.layers))
            let extractor = TextFeatureExtractor(encoder: encoder, pooling: text.pooling, upToLayer: upTo,
                                                 pooled: pooled, batchSize: 32)
            var tensors: [(String, Tensor)] = []
            let start = Date()
            for (i, t) in data.text.enumerated() { tensors.append(("text.\(i)", try extractor.run(t))) }
            let seconds = Date().timeIntervalSince(start)
            self.log(String(format: "  text: %@: encoded %d text input%@ in %.1f s (%.0f rows/s)", part, data.count * data.text.count,
                            data.count * data.text.count == 1 ? "" : "s", seconds, Double(data.count * data.text.count) / max(seconds, 1e-9)))
            try SafetensorsWriter.write(tensors, metadata: ["format": "runpipe-text-features-1"],
                                        to: dir.appendingPathComponent("features.safetensors"))
        }
        let file = try SafetensorsFile(url: e.file(named: "features.safetensors"))
        var features: [Tensor] = []
        var i = 0
        while file.contains("text.\(i)") {
            features.append(try file.tensor(named: "text.\(i)"))
            i += 1
        }
        embedded[part] = features
        return features
    }

    // MARK: - images

    /// The rows of `part` in its source table, and that table.
    private func partRows(_ part: String) throws -> (Table, [Int]) {
        switch part {
        case "train": return (try table("train"), try splitArtifact().train)
        case "validation":
            if compiled.sources["validation"] != nil {
                let t = try table("validation")
                return (t, Array(0..<t.rowCount))
            }
            return (try table("train"), try splitArtifact().validation)
        default:
            let t = try table(part)
            return (t, Array(0..<t.rowCount))
        }
    }

    /// `pixels.<part>`: the part's image cells decoded and through the deterministic transforms.
    func pixelSet(_ part: String) throws -> PixelSet? {
        if let p = pixelSets[part] { return p }
        guard compiled.graph.node("pixels.\(part)") != nil, let image = compiled.image else { return nil }
        let e = try entry("pixels.\(part)") { dir in
            let p = try self.fittedProcessors()
            let (table, rows) = try self.partRows(part)
            let role = part == "validation" && self.compiled.sources["validation"] == nil ? "train" : part
            guard let source = self.compiled.sources[role] else { throw PipelineError.internalInconsistency("no \(role) source") }
            let transforms = part == "train" && image.mode != .frozen
                ? try image.reading.trainingPipelines().fixed : try image.reading.evaluationPipeline()
            let start = Date()
            let reader = ImagePixelReader(reading: image.reading, transforms: transforms,
                                          baseFolder: source.url.deletingLastPathComponent(),
                                          location: self.spec.sources["processors.image.missing"] ?? source.location)
            let set = try reader.read(table, rows: rows, columns: p.image ?? [])
            self.log(set.report.line(part: part, skipped: set.skipped.count)
                     + String(format: " (%.1f s)", Date().timeIntervalSince(start)))
            try set.save(to: dir.appendingPathComponent(PixelSet.file))
        }
        let set = try PixelSet.load(from: e.file(named: PixelSet.file))
        pixelSets[part] = set
        return set
    }

    /// The pretrained image backbone with the checkpoint's weights (a fresh copy on every call).
    func pretrainedImageEncoder() throws -> LoadedImageEncoder {
        guard let image = compiled.image else { throw PipelineError.internalInconsistency("no image checkpoint") }
        return try located(spec.sources["backbones.image.checkpoint"]) { try image.checkpoint.load(seed: spec.seed) }
    }

    /// `embed_image.<part>`: pooled features of the frozen backbone, with the rows left out.
    func imageFeatures(_ part: String) throws -> (features: Tensor, skipped: [Int])? {
        if let f = imageEmbedded[part] { return f }
        guard compiled.graph.node("embed_image.\(part)") != nil, let image = compiled.image else { return nil }
        let e = try entry("embed_image.\(part)") { dir in
            guard let pixels = try self.pixelSet(part) else { throw PipelineError.internalInconsistency("no pixels for \(part)") }
            let pretrained = try self.imageEmbeddingEncoder ?? self.pretrainedImageEncoder()
            self.imageEmbeddingEncoder = pretrained
            let shape = pretrained.encoder.shape
            let extractor = ImageFeatureExtractor(encoder: pretrained.encoder,
                                                  batcher: ImageBatcher(size: image.reading.size, mean: shape.mean, std: shape.std))
            let rows = pixels.columns.first?.counts.count ?? 0
            let start = Date()
            let features = try extractor.run(pixels, rows: rows)
            let seconds = Date().timeIntervalSince(start)
            self.log(String(format: "  images: %@: features of %d row%@ in %.1f s (%.0f rows/s)", part, rows, rows == 1 ? "" : "s",
                            seconds, Double(rows) / max(seconds, 1e-9)))
            try SafetensorsWriter.write([("features", features), ("skipped", try Tensor(pixels.skipped.map { Float($0) }, shape: [pixels.skipped.count]))],
                                        metadata: ["format": "runpipe-image-features-1"],
                                        to: dir.appendingPathComponent("features.safetensors"))
        }
        let file = try SafetensorsFile(url: e.file(named: "features.safetensors"))
        let result = (try file.tensor(named: "features"), try file.tensor(named: "skipped").toArray().map { Int($0) })
        imageEmbedded[part] = result
        return result
    }

    /// An encoded part with its cached text and image inputs attached: what the network reads.
    /// Rows `missing: skip_row` left out lose their target, so no metric counts them.
    func modelData(_ part: String) throws -> EncodedPart {
        var p = try encodedPart(part)
        p.textFeatures = try textFeatures(part)
        if let (features, skipped) = try imageFeatures(part) {
            p.imageFeatures = features
            p.pixels = PixelSet(columns: [], skipped: skipped, report: ImageReadReport())
        } else if let pixels = try pixelSet(part) {
            p.pixels = pixels
        }
        for i in p.pixels?.skipped ?? [] { p.clearLabel(i) }
        return p
    }

    // MARK: - train

    func trainedModel() throws -> TrainedModel {
        if let trained { return trained }
        let e = try entry("train") { dir in
            let p = try self.fittedProcessors()
            let trainPart = try self.modelData("train")
            let validationPart = try self.modelData("validation")
            let model = try TrainStage(spec: self.spec, processors: p, text: self.compiled.text,
                                       encoder: { try self.pretrainedEncoder() },
                                       image: self.compiled.image,
                                       imageEncoder: { try self.imageEmbeddingEncoder ?? self.pretrainedImageEncoder() },
                                       log: self.log, progress: self.progress, userCallbacks: self.callbacks)
                .run(train: trainPart, validation: validationPart)
            try model.save(to: dir)
        }
        let m = try TrainedModel.load(from: e.url)
        trained = m
        return m
    }

    // MARK: - evaluate / predict

    func evaluation(_ id: String) throws -> [String: Double] {
        let part = String(id.dropFirst("evaluate.".count))
        if let m = metrics[part] { return m }
        let e = try entry(id) { dir in
            let model = try self.trainedModel()
            let p = try self.fittedProcessors()
            let data = try self.modelData(part)
            let m = try Scoring.metrics(model: model, processors: p, part: data,
                                        metric: try resolvedMetric(self.spec, problem: p.problem))
            try writeJSON(m, to: dir.appendingPathComponent("metrics.json"))
        }
        let m = try readJSON([String: Double].self, from: e.file(named: "metrics.json"))
        metrics[part] = m
        return m
    }

    func predictionFile(_ id: String) throws -> URL {
        let part = String(id.dropFirst("predict.".count))
        if let u = predictionFiles[part] { return u }
        let e = try entry(id) { dir in
            let model = try self.trainedModel()
            let p = try self.fittedProcessors()
            let (table, _) = try self.partRows(part)
            let data = try self.modelData(part)
            let csv = try Scoring.predictionsCSV(model: model, processors: p, table: table, part: data)
            try csv.write(to: dir.appendingPathComponent("predictions.csv"))
        }
        let u = e.file(named: "predictions.csv")
        predictionFiles[part] = u
        return u
    }

    // Accessors for the run writer (everything is cached by now).
    func modelArtifacts() throws -> (TrainedModel, FittedProcessors, ColumnsArtifact) {
        (try trainedModel(), try fittedProcessors(), try columnsArtifact())
    }
}

/// A test or validation file must have the training file's columns (the label may be absent
/// from files that are only predicted).
func checkColumns(_ table: Table, against p: FittedProcessors, role: String, location: SourceLocation?) throws {
    let have = Set(table.columnNames)
    let want = Set(p.trainColumns)
    let missing = p.trainColumns.filter { !have.contains($0) }
    let extra = table.columnNames.filter { !want.contains($0) }
    guard missing.isEmpty && extra.isEmpty else {
        var parts: [String] = []
        if !missing.isEmpty { parts.append("missing \(missing.map { "'\($0)'" }.joined(separator: ", "))") }
        if !extra.isEmpty { parts.append("not in the training file: \(extra.map { "'\($0)'" }.joined(separator: ", "))") }
        throw PipelineError("the \(role) file \(table.source) has different columns from the training file: \(parts.joined(separator: "; "))",
                            at: location, hint: "the \(role) file needs the same header as the training file")
    }
}

func writeJSON<T: Encodable>(_ value: T, to url: URL) throws {
    try prettyJSON(value).write(to: url)
}

func readJSON<T: Decodable>(_ type: T.Type, from url: URL) throws -> T {
    let data = try Data(contentsOf: url)
    do {
        return try JSONDecoder().decode(T.self, from: data)
    } catch {
        throw PipelineError("cannot read \(url.path): \(error)", hint: "the file is damaged; `runpipe cache verify` removes damaged cache entries")
    }
}
