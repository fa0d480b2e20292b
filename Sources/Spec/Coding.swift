import Foundation

// Codable through the same declarations: encoding writes the YAML keys with every default (maps
// in declaration order; use JSONEncoder's `.sortedKeys` for canonical bytes), decoding runs the
// same checks as the YAML loader and throws a `DecodingError` carrying the rendered errors.

enum SpecCoding {
    static func encode<V>(_ value: V, _ codec: Codec<V>, to encoder: Encoder) throws {
        try codec.encode(value).encode(to: encoder)
    }

    static func decode<V>(_ codec: Codec<V>, from decoder: Decoder) throws -> V {
        let value = try Value(from: decoder)
        let ctx = DecodeContext(topFile: URL(fileURLWithPath: "pipeline.yaml"))
        let path = decoder.codingPath.map(\.stringValue).joined(separator: ".")
        if let v = codec.decode(SpecNode(value, origin: .none), path, ctx), ctx.errors.isEmpty { return v }
        throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: SpecErrors(ctx.errors).description))
    }
}

extension PipelineSpec {
    public init(from decoder: Decoder) throws { self = try SpecCoding.decode(Sections.codec(PipelineSpec.self), from: decoder) }
    public func encode(to encoder: Encoder) throws { try SpecCoding.encode(self, Sections.codec(PipelineSpec.self), to: encoder) }
}
extension ProblemChoice {
    public init(from decoder: Decoder) throws { self = try SpecCoding.decode(PipelineSpec.problemCodec, from: decoder) }
    public func encode(to encoder: Encoder) throws { try SpecCoding.encode(self, PipelineSpec.problemCodec, to: encoder) }
}
extension DataSpec {
    public init(from decoder: Decoder) throws { self = try SpecCoding.decode(Sections.codec(DataSpec.self), from: decoder) }
    public func encode(to encoder: Encoder) throws { try SpecCoding.encode(self, Sections.codec(DataSpec.self), to: encoder) }
}
extension ValidationSpec {
    public init(from decoder: Decoder) throws { self = try SpecCoding.decode(DataSpec.validationCodec, from: decoder) }
    public func encode(to encoder: Encoder) throws { try SpecCoding.encode(self, DataSpec.validationCodec, to: encoder) }
}
extension ProcessorsSpec {
    public init(from decoder: Decoder) throws { self = try SpecCoding.decode(Sections.codec(ProcessorsSpec.self), from: decoder) }
    public func encode(to encoder: Encoder) throws { try SpecCoding.encode(self, Sections.codec(ProcessorsSpec.self), to: encoder) }
}
extension NumericProcessorSpec {
    public init(from decoder: Decoder) throws { self = try SpecCoding.decode(Sections.codec(NumericProcessorSpec.self), from: decoder) }
    public func encode(to encoder: Encoder) throws { try SpecCoding.encode(self, Sections.codec(NumericProcessorSpec.self), to: encoder) }
}
extension CategoricalProcessorSpec {
    public init(from decoder: Decoder) throws { self = try SpecCoding.decode(Sections.codec(CategoricalProcessorSpec.self), from: decoder) }
    public func encode(to encoder: Encoder) throws { try SpecCoding.encode(self, Sections.codec(CategoricalProcessorSpec.self), to: encoder) }
}
extension BackbonesSpec {
    public init(from decoder: Decoder) throws { self = try SpecCoding.decode(Sections.codec(BackbonesSpec.self), from: decoder) }
    public func encode(to encoder: Encoder) throws { try SpecCoding.encode(self, Sections.codec(BackbonesSpec.self), to: encoder) }
}
extension TabularBackboneSpec {
    public init(from decoder: Decoder) throws { self = try SpecCoding.decode(BackbonesSpec.tabularCodec, from: decoder) }
    public func encode(to encoder: Encoder) throws { try SpecCoding.encode(self, BackbonesSpec.tabularCodec, to: encoder) }
}
extension MLPBackboneSpec {
    public init(from decoder: Decoder) throws { self = try SpecCoding.decode(Sections.codec(MLPBackboneSpec.self), from: decoder) }
    public func encode(to encoder: Encoder) throws { try SpecCoding.encode(self, Sections.codec(MLPBackboneSpec.self), to: encoder) }
}
extension FTTransformerSpec {
    public init(from decoder: Decoder) throws { self = try SpecCoding.decode(Sections.codec(FTTransformerSpec.self), from: decoder) }
    public func encode(to encoder: Encoder) throws { try SpecCoding.encode(self, Sections.codec(FTTransformerSpec.self), to: encoder) }
}
extension FusionSpec {
    public init(from decoder: Decoder) throws { self = try SpecCoding.decode(FusionSections.codec, from: decoder) }
    public func encode(to encoder: Encoder) throws { try SpecCoding.encode(self, FusionSections.codec, to: encoder) }
}
extension FusionMLPSpec {
    public init(from decoder: Decoder) throws { self = try SpecCoding.decode(Sections.codec(FusionMLPSpec.self), from: decoder) }
    public func encode(to encoder: Encoder) throws { try SpecCoding.encode(self, Sections.codec(FusionMLPSpec.self), to: encoder) }
}
extension FusionTransformerSpec {
    public init(from decoder: Decoder) throws { self = try SpecCoding.decode(Sections.codec(FusionTransformerSpec.self), from: decoder) }
    public func encode(to encoder: Encoder) throws { try SpecCoding.encode(self, Sections.codec(FusionTransformerSpec.self), to: encoder) }
}
extension LossSpec {
    public init(from decoder: Decoder) throws { self = try SpecCoding.decode(Sections.codec(LossSpec.self), from: decoder) }
    public func encode(to encoder: Encoder) throws { try SpecCoding.encode(self, Sections.codec(LossSpec.self), to: encoder) }
}
extension MixupSpec {
    public init(from decoder: Decoder) throws { self = try SpecCoding.decode(Sections.codec(MixupSpec.self), from: decoder) }
    public func encode(to encoder: Encoder) throws { try SpecCoding.encode(self, Sections.codec(MixupSpec.self), to: encoder) }
}
extension LRMonitorSpec {
    public init(from decoder: Decoder) throws { self = try SpecCoding.decode(Sections.codec(LRMonitorSpec.self), from: decoder) }
    public func encode(to encoder: Encoder) throws { try SpecCoding.encode(self, Sections.codec(LRMonitorSpec.self), to: encoder) }
}
extension CSVLoggerSpec {
    public init(from decoder: Decoder) throws { self = try SpecCoding.decode(Sections.codec(CSVLoggerSpec.self), from: decoder) }
    public func encode(to encoder: Encoder) throws { try SpecCoding.encode(self, Sections.codec(CSVLoggerSpec.self), to: encoder) }
}
extension ProgressSpec {
    public init(from decoder: Decoder) throws { self = try SpecCoding.decode(Sections.codec(ProgressSpec.self), from: decoder) }
    public func encode(to encoder: Encoder) throws { try SpecCoding.encode(self, Sections.codec(ProgressSpec.self), to: encoder) }
}
extension TrainerSpec {
    public init(from decoder: Decoder) throws { self = try SpecCoding.decode(Sections.codec(TrainerSpec.self), from: decoder) }
    public func encode(to encoder: Encoder) throws { try SpecCoding.encode(self, Sections.codec(TrainerSpec.self), to: encoder) }
}
extension OptimizerSpec {
    public init(from decoder: Decoder) throws { self = try SpecCoding.decode(Sections.codec(OptimizerSpec.self), from: decoder) }
    public func encode(to encoder: Encoder) throws { try SpecCoding.encode(self, Sections.codec(OptimizerSpec.self), to: encoder) }
}
extension ScheduleSpec {
    public init(from decoder: Decoder) throws { self = try SpecCoding.decode(Sections.codec(ScheduleSpec.self), from: decoder) }
    public func encode(to encoder: Encoder) throws { try SpecCoding.encode(self, Sections.codec(ScheduleSpec.self), to: encoder) }
}
extension CallbackSpec {
    public init(from decoder: Decoder) throws { self = try SpecCoding.decode(TrainerSpec.callbackCodec, from: decoder) }
    public func encode(to encoder: Encoder) throws { try SpecCoding.encode(self, TrainerSpec.callbackCodec, to: encoder) }
}
extension EarlyStoppingSpec {
    public init(from decoder: Decoder) throws { self = try SpecCoding.decode(Sections.codec(EarlyStoppingSpec.self), from: decoder) }
    public func encode(to encoder: Encoder) throws { try SpecCoding.encode(self, Sections.codec(EarlyStoppingSpec.self), to: encoder) }
}
extension CheckpointSpec {
    public init(from decoder: Decoder) throws { self = try SpecCoding.decode(Sections.codec(CheckpointSpec.self), from: decoder) }
    public func encode(to encoder: Encoder) throws { try SpecCoding.encode(self, Sections.codec(CheckpointSpec.self), to: encoder) }
}

// MARK: - Resolved YAML, schema, paths

extension PipelineSpec {
    /// Every key with its value, defaults included, in declaration order, after a comment line.
    /// Loading it back (from the same folder) gives an equal spec.
    public func resolvedYAML() -> String {
        "# resolved by runpipe — every default written out\n" + Sections.encode(self).yamlLines().joined(separator: "\n") + "\n"
    }

    /// `path` (a value of the key `keyPath`, e.g. `data.train`) as a file URL: relative paths
    /// resolve against the folder of the file that declared the key (which matters with
    /// `extends`); values from `--set` resolve against the current directory; defaults and
    /// unrecorded keys against the pipeline file's folder. Absolute paths stay.
    public func resolve(_ path: String, declaredAt keyPath: String) -> URL {
        let entry = sources.entries[keyPath]
        let origin: Origin? = entry.map { e in
            if let f = e.flag { return .flag(f) }
            if let l = e.location, let u = e.file { return .file(l, u) }
            return .none
        }
        return PipelineSpec.resolve(path, origin: origin, topFile: file)
    }

    static func resolve(_ path: String, origin: Origin?, topFile: URL) -> URL {
        let expanded = (path as NSString).expandingTildeInPath
        if expanded.hasPrefix("/") { return URL(fileURLWithPath: expanded).standardizedFileURL }
        let base: URL
        switch origin {
        case .file(_, let u)?: base = u.deletingLastPathComponent()
        case .flag?: base = URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)
        default: base = topFile.deletingLastPathComponent()
        }
        return base.appendingPathComponent(expanded).standardizedFileURL
    }
}

/// The pipeline file's JSON Schema (draft 2020-12), generated from the same declarations.
public enum PipelineSchema {
    /// The schema's `$id`-less URI of the draft.
    public static let draft = "https://json-schema.org/draft/2020-12/schema"

    /// Pretty-printed JSON with sorted keys; the same bytes on every call.
    public static func jsonSchema() -> String {
        var root = Sections.schema(PipelineSpec.self)
        let extends = Value.object([
            ("type", .string("string")), ("minLength", .int(1)),
            ("description", .string("A base pipeline file (relative to this file) whose keys this file overrides: mappings merge key by key, lists and scalars replace.")),
        ])
        if case .map(var entries) = root, let i = entries.firstIndex(where: { $0.key == "properties" }),
           case .map(var props) = entries[i].value {
            props.insert(Value.Entry(key: "extends", value: extends), at: 0)
            entries[i].value = .map(props)
            root = .map(entries)
        }
        return root.adding([("$schema", .string(draft))]).jsonText()
    }
}
