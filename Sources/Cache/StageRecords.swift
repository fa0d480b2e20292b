import Foundation

/// What was recorded for a stage of a pipeline at its last run.
public struct StageRecord: Equatable, Sendable {
    /// The key the stage ran (or was found cached) with.
    public var key: String
    /// The inputs that key was computed from.
    public var components: JSONValue
    /// When the record was written.
    public var recorded: Date
}

/// The last key and inputs of each stage of each pipeline, so `runpipe plan` can say why a
/// stage must run ("trainer.epochs changed 10 → 20", "never run"). Stored as
/// `<store root>/records/<pipeline>/<stage>.json`, written atomically; an unreadable record is
/// reported through `diagnostics` and treated as absent.
public struct StageRecords: Sendable {
    /// The `records` directory.
    public let directory: URL
    private let diagnostics: @Sendable (CacheDiagnostic) -> Void

    /// Records kept in `directory` (normally `store.records`).
    public init(directory: URL, diagnostics: @escaping @Sendable (CacheDiagnostic) -> Void = { _ in }) {
        self.directory = directory
        self.diagnostics = diagnostics
    }

    /// A pipeline identifier for a pipeline file: its base name plus 12 hex digits of its
    /// absolute path's hash (`train-3f2a9c01b7de`), so two `pipeline.yaml`s sharing a cache
    /// directory keep separate records.
    public static func pipelineID(for pipelineFile: URL) -> String {
        let path = pipelineFile.standardizedFileURL.path
        let base = pipelineFile.deletingPathExtension().lastPathComponent
        let safe = String(base.unicodeScalars.map { isSafe($0) ? Character($0) : "_" })
        let trimmed = safe.hasPrefix(".") ? "_" + safe.dropFirst() : safe
        return (trimmed.isEmpty ? "pipeline" : trimmed) + "-" + ContentHash.sha256(path).prefix(12)
    }

    private static func isSafe(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
            || scalar == "." || scalar == "_" || scalar == "-"
    }

    static func validate(_ value: String, kind: String) throws {
        guard !value.isEmpty, !value.hasPrefix("."), value.unicodeScalars.allSatisfy(isSafe) else {
            throw CacheError.invalidIdentifier(kind: kind, value: value)
        }
    }

    func url(pipeline: String, stage: String) throws -> URL {
        try Self.validate(pipeline, kind: "pipeline")
        try Self.validate(stage, kind: "stage")
        return directory.appendingPathComponent(pipeline).appendingPathComponent(stage + ".json")
    }

    /// Remembers that `stage` of `pipeline` last used `key`, computed from `components`.
    public func record(pipeline: String, stage: String, key: String, components: JSONValue) throws {
        try ContentStore.validate(key: key)
        let url = try url(pipeline: pipeline, stage: stage)
        let document: JSONValue = [
            "key": .string(key),
            "components": components,
            "recorded": .string(CacheManifest.formatDate(CacheManifest.now())),
        ]
        try makeDirectory(url.deletingLastPathComponent())
        try AtomicFile.write(try document.canonicalData(), to: url)
    }

    /// The last record of `stage` in `pipeline`, or nil when there is none. An unreadable
    /// record (or an identifier `record` would reject) is reported through `diagnostics` as
    /// `.corruptRecord` and also gives nil.
    public func last(pipeline: String, stage: String) -> StageRecord? {
        let path = directory.appendingPathComponent(pipeline).appendingPathComponent(stage + ".json").path
        do {
            let url = try url(pipeline: pipeline, stage: stage)
            guard try FileStatus.of(url.path) != nil else { return nil }
            let json = try JSONValue(parsing: try Data(contentsOf: url), source: url.path)
            guard let key = json["key"]?.stringValue, ContentHash.isDigest(key),
                  let components = json["components"],
                  let text = json["recorded"]?.stringValue,
                  let recorded = CacheManifest.parseDate(text) else {
                throw CacheError.invalidDocument(path: url.path, detail: "needs 'key', 'components' and 'recorded'")
            }
            return StageRecord(key: key, components: components, recorded: recorded)
        } catch {
            diagnostics(.corruptRecord(path: path, reason: "\(error)"))
            return nil
        }
    }

    /// Why `stage` must run with `key`/`components`, judged against its last record. Does not
    /// look at the store: use `ContentStore.status` for the whole answer.
    public func reason(pipeline: String, stage: String, key: String, components: JSONValue) throws -> RerunReason {
        guard let last = last(pipeline: pipeline, stage: stage) else { return .neverRun }
        let differences = components.differences(from: last.components)
        if !differences.isEmpty { return .inputsChanged(differences) }
        if last.key != key { return .keyChanged(old: last.key, new: key) }
        return .entryMissing
    }
}

extension ContentStore {
    /// The stage records kept in this store (`root/records`).
    public var records: StageRecords {
        StageRecords(directory: root.appendingPathComponent("records"), diagnostics: diagnostics)
    }

    /// Whether `stage` of `pipeline` can be taken from the cache, and if not, why it must run.
    public func status(pipeline: String, stage: String, key: String, components: JSONValue) throws -> StageStatus {
        if let entry = try entry(for: key) { return .cached(entry) }
        return .mustRun(try records.reason(pipeline: pipeline, stage: stage, key: key, components: components))
    }
}
