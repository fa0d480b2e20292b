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
    /// Worker threads the run uses; part of the training key (GEMM splits depend on it).
    public let threads: Int
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

    public static func compile(_ spec: PipelineSpec, hasher: FileHasher, threads: Int) throws -> CompiledPipeline {
        var graph = StageGraph()
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

        try graph.add(.inferColumns, inputs: ["load.train"],
                      summary: "detect column modalities and the problem type (label '\(spec.data.label)')",
                      components: .object([
                          "label": .string(spec.data.label),
                          "columns": try JSONValue(encoding: spec.data.columns),
                          "problem": try JSONValue(encoding: spec.problem),
                          "rules": .int(Int64(ColumnRules.version)),
                      ]))

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

        try graph.add(.encode, part: "train", inputs: ["load.train", "split", "fit"],
                      summary: "encode the training rows", components: .object(["part": .string("train")]))
        let validationLoad = validationFile == nil ? "load.train" : "load.validation"
        try graph.add(.encode, part: "validation", inputs: [validationLoad, "split", "fit"],
                      summary: "encode the validation rows", components: .object(["part": .string("validation")]))
        if test != nil {
            try graph.add(.encode, part: "test", inputs: ["load.test", "fit"],
                          summary: "encode \(spec.data.test ?? "the test file")", components: .object(["part": .string("test")]))
        }

        try graph.add(.train, inputs: ["encode.train", "encode.validation", "fit"],
                      summary: trainSummary(spec),
                      components: .object([
                          "backbones": try JSONValue(encoding: spec.backbones),
                          "fusion": try JSONValue(encoding: spec.fusion),
                          "trainer": try JSONValue(encoding: spec.trainer),
                          "metric": spec.metric.map { .string($0.rawValue) } ?? .string("auto"),
                          "seed": .int(Int64(bitPattern: spec.seed)),
                          "threads": .int(Int64(threads)),
                          "runpipe": .string(runpipeVersion),
                      ]))

        try graph.add(.evaluate, part: "validation", inputs: ["train", "encode.validation", "fit"],
                      summary: "score the model on the validation rows", components: .object([:]))
        if test != nil {
            try graph.add(.evaluate, part: "test", inputs: ["train", "encode.test", "fit"],
                          summary: "score the model on the test file", components: .object([:]))
            try graph.add(.predict, part: "test", inputs: ["train", "load.test", "encode.test", "fit"],
                          summary: "predict the test file's rows", components: .object([:]))
        }
        return CompiledPipeline(spec: spec, graph: graph, sources: sources, threads: threads)
    }

    private static func trainSummary(_ spec: PipelineSpec) -> String {
        let backbone: String
        switch spec.backbones.tabular {
        case .mlp(let m): backbone = "tabular MLP \(m.hidden.map(String.init).joined(separator: "→"))"
        case .ftTransformer(let f): backbone = "FT-Transformer \(f.layers)×\(f.dToken)"
        }
        let t = spec.trainer
        return "train \(backbone), \(t.optimizer.kind.rawValue) lr \(t.optimizer.lr), \(t.epochs) epochs × batch \(t.batchSize)"
    }
}

/// Detection-rule version: bump when `Tables` changes how columns are classified, so cached
/// column schemas stop matching.
enum ColumnRules {
    static let version = 1
}

func formatBytes(_ n: Int64) -> String {
    if n < 1024 { return "\(n) B" }
    if n < 1024 * 1024 { return String(format: "%.1f KB", Double(n) / 1024) }
    if n < 1024 * 1024 * 1024 { return String(format: "%.1f MB", Double(n) / 1048576) }
    return String(format: "%.2f GB", Double(n) / 1073741824)
}
