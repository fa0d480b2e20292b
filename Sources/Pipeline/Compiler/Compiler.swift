import Cache
import Foundation
import Spec

/// A data file the pipeline reads, with the content hash its stages are keyed by.
public struct DataSource: Sendable {
    /// `train`, `validation` or `test`.
    public let role: String
    /// The path as written in the pipeline file.
    public let declared: String
    public let url: URL
    public let sha256: String
    public let byteCount: Int64
    /// Where the path was declared (for errors about this file's content).
    public let location: SourceLocation?
}

/// A spec compiled into a stage graph, with everything needed to execute or explain it.
public struct CompiledPipeline: Sendable {
    public let spec: PipelineSpec
    public let graph: StageGraph
    public let sources: [String: DataSource]
    /// Worker threads the run uses. Not part of any key: results do not depend on it (chunks and
    /// GEMM cuts follow the problem's shape), so runs with other thread counts — a sweep's
    /// single-threaded trials among them — share every stage.
    public let threads: Int
    /// The text backbone's checkpoint, resolved and hashed; nil without one.
    let text: TextCheckpoint?
    /// The image backbone's checkpoint and reading settings; nil without one.
    let image: (checkpoint: ImageCheckpoint, reading: ImageReading, mode: ImageTrainMode)?
    /// Lines `plan` shows before the stages (how the pretrained backbones are fine-tuned).
    public var notes: [String] = []
    /// The stages a `train` run needs, in graph order.
    public var targets: [String] {
        graph.nodes.filter { [.train, .evaluate, .predict].contains($0.kind) }.map(\.id)
    }
}

/// Turns a validated spec into a typed stage graph whose cache keys are known before any data
/// is read: data files are keyed by content hash, every other stage by the spec sections that
/// affect it plus its inputs' keys.
public enum Compiler {
    /// Version of runpipe written into training keys: new numerics must not reuse old models.
    public static let runpipeVersion = "0.1.0"

    /// `trainKeyExtras` joins the training stage's key: what else decides the trained weights
    /// (a sweep's early-stopping rungs, which cut a trial short).
    public static func compile(_ spec: PipelineSpec, hasher: FileHasher, threads: Int,
                               trainKeyExtras: [String: JSONValue] = [:]) throws -> CompiledPipeline {
        var graph = StageGraph()
        var augmentationNote: String?
        var sources: [String: DataSource] = [:]

        func source(_ role: String, _ path: String, key: String) throws -> DataSource {
            let url = spec.resolve(path, declaredAt: key)
            let location = spec.sources[key]
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), !isDir.boolValue else {
                throw PipelineError("\(role) data file '\(path)' does not exist (looked for \(url.path))", at: location,
                                    hint: "paths in a pipeline file are relative to the file that declares them")
            }
            guard FileManager.default.isReadableFile(atPath: url.path) else {
                throw PipelineError("\(role) data file '\(path)' is not readable", at: location,
                                    hint: "check the file's permissions")
            }
            let hash = try located(location) { try hasher.hash(of: url) }
            let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.int64Value ?? 0
            let s = DataSource(role: role, declared: path, url: url, sha256: hash, byteCount: size, location: location)
            sources[role] = s
            return s
        }

        func loadNode(_ s: DataSource) throws {
            try graph.add(.load, part: s.role, inputs: [], summary: "read \(s.declared) (\(formatBytes(s.byteCount)))",
                          components: .object([
                              "sha256": .string(s.sha256),
                              "format": .string(spec.data.format.rawValue),
                              "missing_values": .array(spec.data.missingValues.map { .string($0) }),
                          ]), stored: false)
        }

        let text = try spec.backbones.text.map { try TextCheckpoint.resolve($0, spec: spec, hasher: hasher) }
        let textMode = spec.backbones.text.map { TextTrainMode($0.trainable) }
        var image: (checkpoint: ImageCheckpoint, reading: ImageReading, mode: ImageTrainMode)?
        if let b = spec.backbones.image {
            let reading = ImageReading(spec, backbone: b)
            try reading.validate(spec)
            image = (try ImageCheckpoint.resolve(b, spec: spec, hasher: hasher), reading, ImageTrainMode(b.trainable))
        }
        let train = try source("train", spec.data.train, key: "data.train")
        try loadNode(train)
        var validationFile: DataSource?
        if case .file(let path) = spec.data.validation {
            validationFile = try source("validation", path, key: "data.validation")
            try loadNode(validationFile!)
        }
        var test: DataSource?
        if let path = spec.data.test {
            test = try source("test", path, key: "data.test")
            try loadNode(test!)
        }

        var inferComponents: [String: JSONValue] = [
            "label": .string(spec.data.label),
            "columns": try JSONValue(encoding: spec.data.columns),
            "problem": try JSONValue(encoding: spec.problem),
            "rules": .int(Int64(ColumnRules.version)),
        ]
        let labelsShown = spec.data.labels.map { "'\($0)'" }.joined(separator: ", ")
        if ColumnInferenceStage(spec: spec).usesTargetLayout {
            inferComponents["label"] = .array(spec.data.labels.map(JSONValue.string))
            inferComponents["label_separator"] = .string(spec.data.labelSeparator)
        }
        try graph.add(.inferColumns, inputs: ["load.train"],
                      summary: "detect column modalities and the problem type (label\(spec.data.labels.count > 1 ? "s" : "") \(labelsShown))",
                      components: .object(inferComponents))

        let splitSummary: String
        switch spec.data.validation {
        case .file(let p): splitSummary = "validate on \(p); train on every row of \(spec.data.train)"
        case .holdout(let fraction, let stratify):
            splitSummary = "hold out \(Int((fraction * 100).rounded()))% of \(spec.data.train) for validation\(stratify ? ", stratified" : "")"
        }
        try graph.add(.split, inputs: ["load.train", "infer"], summary: splitSummary,
                      components: .object([
                          "validation": try JSONValue(encoding: spec.data.validation),
                          "seed": .int(Int64(bitPattern: spec.seed)),
                      ]))

        try graph.add(.fitProcessors, inputs: ["load.train", "infer", "split"],
                      summary: "fit column processors and the label encoder on the training rows",
                      components: try JSONValue(encoding: spec.processors))

        // Tokenization depends on the tokenizer files and settings only, not on the weights.
        var textEncoding: JSONValue = .null
        if let text, let t = spec.backbones.text {
            textEncoding = .object([
                "tokenizer_sha256": .string(text.tokenizerHash),
                "max_length": .int(Int64(text.maxLength)),
                "combine": .string(t.combine.rawValue),
            ])
        }
        func encodeComponents(_ part: String) -> JSONValue {
            textEncoding == .null ? .object(["part": .string(part)]) : .object(["part": .string(part), "text": textEncoding])
        }
        let tokenNote = text == nil ? "" : " (text → token ids)"
        try graph.add(.encode, part: "train", inputs: ["load.train", "split", "fit"],
                      summary: "encode the training rows\(tokenNote)", components: encodeComponents("train"))
        let validationLoad = validationFile == nil ? "load.train" : "load.validation"
        try graph.add(.encode, part: "validation", inputs: [validationLoad, "split", "fit"],
                      summary: "encode the validation rows\(tokenNote)", components: encodeComponents("validation"))
        if test != nil {
            try graph.add(.encode, part: "test", inputs: ["load.test", "fit"],
                          summary: "encode \(spec.data.test ?? "the test file")\(tokenNote)", components: encodeComponents("test"))
        }

        // Image cells → pixels once per part (deterministic transforms only); a frozen backbone's
        // features once per part on top.
        var imageInputs: [String: String] = [:]
        if let image {
            let fixedTrain = try image.reading.trainingPipelines()
            let evaluation = image.reading.valTransforms
            let random = image.mode == .frozen ? [] : Array(image.reading.trainTransforms.dropFirst(fixedTrain.fixed.steps.count))
            var folderDigests: [URL: String] = [:]
            let encodeInputs = ["train": ["load.train", "split", "fit"], "validation": [validationLoad, "split", "fit"], "test": ["load.test", "fit"]]
            for part in ["train", "validation"] + (test == nil ? [] : ["test"]) {
                let names = part == "train" && image.mode != .frozen
                    ? Array(image.reading.trainTransforms.prefix(fixedTrain.fixed.steps.count)) : evaluation
                let role = part == "validation" && validationFile == nil ? "train" : part
                guard let source = sources[role] else { throw PipelineError.internalInconsistency("no \(role) source for pixels.\(part)") }
                // Train, validation and test files usually share a folder: walked once.
                let folder = source.url.deletingLastPathComponent().standardizedFileURL
                let folderDigest: String
                if let known = folderDigests[folder] {
                    folderDigest = known
                } else {
                    folderDigest = try located(source.location) { try ImageFolderDigest.digest(folder: folder, hasher: hasher) }
                    folderDigests[folder] = folderDigest
                }
                try graph.add(.pixels, part: part, inputs: encodeInputs[part] ?? [],
                              summary: "decode the \(part) rows' images and apply \(names.isEmpty ? "no transform" : names.joined(separator: ", ")) (size \(image.reading.size))",
                              components: .object([
                                  "part": .string(part),
                                  "transforms": .array(names.map { .string($0) }),
                                  "size": .int(Int64(image.reading.size)),
                                  "missing": .string(image.reading.missing.rawValue),
                                  "max_pixels": .int(Int64(image.reading.maxPixels)),
                                  "allow_outside": .bool(image.reading.allowOutside),
                                  "max_images_per_cell": .int(Int64(image.reading.maxImagesPerCell)),
                                  "image_files_sha256": .string(folderDigest),
                              ]))
                imageInputs[part] = "pixels.\(part)"
                if image.mode == .frozen {
                    try graph.add(.embedImage, part: part, inputs: ["pixels.\(part)"],
                                  summary: "compute pooled features of the frozen image backbone for the \(part) rows",
                                  components: .object([
                                      "weights_sha256": .string(image.checkpoint.weightsHash),
                                      "architecture": image.checkpoint.architecture.map { .string($0) } ?? .null,
                                  ]))
                    imageInputs[part] = "embed_image.\(part)"
                }
            }
            if !random.isEmpty { augmentationNote = "\(random.joined(separator: ", ")) run\(random.count == 1 ? "s" : "") on every training step and \(random.count == 1 ? "is" : "are") never cached (random augmentation)" }
        }

        // The encoder's layers that do not train run once per part; their output is cached.
        var embedded: [String: String] = [:]
        if let text, let mode = textMode, mode != .full {
            let upTo = mode == .frozen ? text.layers : text.layers - (mode.topLayers ?? 0)
            let what = mode == .frozen
                ? "\(text.pooling.rawValue)-pooled features of the frozen \(text.modelType) encoder (\(text.layers) layers)"
                : "hidden states entering layer \(upTo) of \(text.layers) (the \(mode.topLayers ?? 0) top layer\(mode.topLayers == 1 ? "" : "s") train)"
            for part in ["train", "validation"] + (test == nil ? [] : ["test"]) {
                try graph.add(.embed, part: part, inputs: ["encode.\(part)"], summary: "compute \(what) for the \(part) rows",
                              components: .object([
                                  "weights_sha256": .string(text.weightsHash),
                                  "model_type": .string(text.modelType),
                                  "output": .string(mode == .frozen ? "pooled" : "hidden"),
                                  "pooling": mode == .frozen ? .string(text.pooling.rawValue) : .null,
                                  "layers": .int(Int64(upTo)),
                              ]))
                embedded[part] = "embed.\(part)"
            }
        }
        func withEmbedding(_ inputs: [String], _ part: String) -> [String] {
            let text = embedded[part].map { inputs + [$0] } ?? inputs
            return imageInputs[part].map { text + [$0] } ?? text
        }

        let notes = try PEFTPlan.check(spec)
        // How progress is shown does not change the model.
        var keyedTrainer = spec.trainer
        keyedTrainer.callbacks.removeAll { if case .progress = $0 { return true }; return false }
        var trainComponents: [String: JSONValue] = [
            "backbones": try JSONValue(encoding: spec.backbones),
            "fusion": try JSONValue(encoding: spec.fusion),
            "trainer": try JSONValue(encoding: keyedTrainer),
            "peft": try JSONValue(encoding: spec.peft),
            "metric": spec.metric.map { .string($0.rawValue) } ?? .string("auto"),
            "seed": .int(Int64(bitPattern: spec.seed)),
            "runpipe": .string(runpipeVersion),
        ]
        for (k, v) in trainKeyExtras { trainComponents[k] = v }
        if !spec.data.labelWeights.isEmpty {
            trainComponents["label_weights"] = try JSONValue(encoding: spec.data.labelWeights)
        }
        if let text {
            // The checkpoint's content, not its path: moving the folder keeps the cache.
            trainComponents["text_checkpoint"] = .object([
                "weights_sha256": .string(text.weightsHash),
                "tokenizer_sha256": .string(text.tokenizerHash),
                "pooling": .string(text.pooling.rawValue),
                "max_length": .int(Int64(text.maxLength)),
            ])
        }
        if let image {
            trainComponents["image_checkpoint"] = .object([
                "weights_sha256": .string(image.checkpoint.weightsHash),
                "train_transforms": .array(image.reading.trainTransforms.map { .string($0) }),
            ])
        }
        try graph.add(.train, inputs: withEmbedding(withEmbedding(["encode.train", "encode.validation", "fit"], "train"), "validation"),
                      summary: trainSummary(spec, text: text), components: .object(trainComponents), note: augmentationNote)

        try graph.add(.evaluate, part: "validation", inputs: withEmbedding(["train", "encode.validation", "fit"], "validation"),
                      summary: "score the model on the validation rows", components: .object([:]))
        // The validation rows' predictions and probabilities: what a report's confusion matrix,
        // ROC, calibration and residual plots are drawn from.
        try graph.add(.predict, part: "validation", inputs: withEmbedding(["train", validationLoad, "encode.validation", "fit"], "validation"),
                      summary: "predict the validation rows", components: .object([:]))
        if test != nil {
            try graph.add(.evaluate, part: "test", inputs: withEmbedding(["train", "encode.test", "fit"], "test"),
                          summary: "score the model on the test file", components: .object([:]))
            try graph.add(.predict, part: "test", inputs: withEmbedding(["train", "load.test", "encode.test", "fit"], "test"),
                          summary: "predict the test file's rows", components: .object([:]))
        }
        return CompiledPipeline(spec: spec, graph: graph, sources: sources, threads: threads, text: text, image: image, notes: notes)
    }

    private static func trainSummary(_ spec: PipelineSpec, text: TextCheckpoint?) -> String {
        var backbone: String
        switch spec.backbones.tabular {
        case .mlp(let m): backbone = "tabular MLP \(m.hidden.map(String.init).joined(separator: "→"))"
        case .ftTransformer(let f): backbone = "FT-Transformer \(f.layers)×\(f.dToken)"
        }
        if let text, let t = spec.backbones.text {
            backbone += " + \(text.modelType) text encoder (\(TextTrainMode(t.trainable).summary))"
        }
        if let i = spec.backbones.image {
            backbone += " + \(i.architecture ?? "image") backbone (\(ImageTrainMode(i.trainable).summary))"
        }
        let t = spec.trainer
        return "train \(backbone), \(t.optimizer.kind.rawValue) lr \(t.optimizer.lr), \(t.epochs) epochs × batch \(t.batchSize)"
    }
}

extension TextTrainMode {
    init(_ t: TextTrainable) {
        switch t {
        case .full: self = .full
        case .frozen: self = .frozen
        case .topLayers(let n): self = .topLayers(n)
        }
    }

    var topLayers: Int? {
        if case .topLayers(let n) = self { return n }
        return nil
    }
}

/// Detection-rule version: bump when `Tables` changes how columns are classified, so cached
/// column schemas stop matching.
enum ColumnRules {
    static let version = 2
}

func formatBytes(_ n: Int64) -> String {
    if n < 1024 { return "\(n) B" }
    if n < 1024 * 1024 { return String(format: "%.1f KB", Double(n) / 1024) }
    if n < 1024 * 1024 * 1024 { return String(format: "%.1f MB", Double(n) / 1048576) }
    return String(format: "%.2f GB", Double(n) / 1073741824)
}
