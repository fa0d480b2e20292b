import Foundation

/// The description of a cache entry kept in its `manifest.json`.
public struct CacheManifest: Equatable, Sendable {
    /// One file the stage wrote.
    public struct File: Equatable, Sendable {
        /// Path relative to the entry directory, `/`-separated.
        public var path: String
        public var size: Int64
        /// SHA-256 hex of the contents.
        public var sha256: String
    }

    /// Version of the manifest layout; entries with another version are treated as corrupt.
    public static let formatVersion: Int64 = 1
    /// Name of the manifest inside an entry directory (reserved: a stage cannot write it).
    public static let fileName = "manifest.json"

    public var key: String
    public var stage: String
    /// Human description, e.g. "fit processors for train.csv".
    public var description: String
    public var created: Date
    /// The inputs the key was computed from.
    public var components: JSONValue
    /// Every file, sorted by path.
    public var files: [File]

    /// Total bytes of the stage's files (without the manifest).
    public var totalSize: Int64 { files.reduce(0) { $0 + $1.size } }

    var json: JSONValue {
        .object([
            "format": .int(Self.formatVersion),
            "key": .string(key),
            "stage": .string(stage),
            "description": .string(description),
            "created": .string(Self.formatDate(created)),
            "components": components,
            "files": .array(files.map {
                .object(["path": .string($0.path), "size": .int($0.size), "sha256": .string($0.sha256)])
            }),
        ])
    }

    /// UTC ISO 8601 with milliseconds, e.g. `2025-03-01T12:00:00.250Z`; `parseDate(formatDate(d))`
    /// equals `d` for every date on the millisecond grid (see `now()`).
    static func formatDate(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        let (seconds, fraction) = milliseconds.quotientAndRemainder(dividingBy: 1000)
        let (wholeSeconds, millis) = fraction < 0 ? (seconds - 1, fraction + 1000) : (seconds, fraction)
        let text = secondsStyle.format(Date(timeIntervalSince1970: Double(wholeSeconds)))
        let digits = String(millis)
        return String(text.dropLast()) + "." + String(repeating: "0", count: 3 - digits.count) + digits + "Z"
    }

    /// Reads `formatDate`'s form; nil for anything else.
    static func parseDate(_ text: String) -> Date? {
        let parts = text.split(separator: ".")
        guard parts.count == 2, parts[1].count == 4, parts[1].hasSuffix("Z"),
              let millis = Int64(parts[1].dropLast()),
              let seconds = try? secondsStyle.parse(String(parts[0]) + "Z") else { return nil }
        return Date(timeIntervalSince1970: Double(Int64(seconds.timeIntervalSince1970) * 1000 + millis) / 1000)
    }

    private static let secondsStyle = Date.ISO8601FormatStyle()

    /// The current time on the millisecond grid manifests store, so an entry read back equals
    /// the one `put` returned.
    static func now() -> Date {
        Date(timeIntervalSince1970: (Date().timeIntervalSince1970 * 1000).rounded(.down) / 1000)
    }

    /// Reads a manifest, checking every field; `source` names the file in errors.
    init(json: JSONValue, source: String) throws {
        func fail(_ detail: String) -> CacheError { .invalidDocument(path: source, detail: detail) }
        guard case .object = json else { throw fail("manifest is not a JSON object") }
        guard json["format"]?.intValue == Self.formatVersion else {
            throw fail("manifest format \(json["format"]?.shortRendering ?? "missing"), expected \(Self.formatVersion)")
        }
        guard let key = json["key"]?.stringValue, ContentHash.isDigest(key) else { throw fail("'key' missing or not a digest") }
        guard let stage = json["stage"]?.stringValue else { throw fail("'stage' missing or not a string") }
        guard let description = json["description"]?.stringValue else { throw fail("'description' missing or not a string") }
        guard let createdText = json["created"]?.stringValue,
              let created = Self.parseDate(createdText) else {
            throw fail("'created' missing or not an ISO 8601 date")
        }
        guard let components = json["components"] else { throw fail("'components' missing") }
        guard let fileValues = json["files"]?.arrayValue else { throw fail("'files' missing or not an array") }
        var files: [File] = []
        for (index, value) in fileValues.enumerated() {
            guard let path = value["path"]?.stringValue, Self.isSafeRelativePath(path),
                  let size = value["size"]?.intValue, size >= 0,
                  let sha256 = value["sha256"]?.stringValue, ContentHash.isDigest(sha256) else {
                throw fail("files[\(index)] needs a relative 'path', a 'size' ≥ 0 and a 'sha256' digest")
            }
            files.append(File(path: path, size: size, sha256: sha256))
        }
        self.init(key: key, stage: stage, description: description, created: created,
                  components: components, files: files)
    }

    init(key: String, stage: String, description: String, created: Date, components: JSONValue, files: [File]) {
        self.key = key
        self.stage = stage
        self.description = description
        self.created = created
        self.components = components
        self.files = files
    }

    /// Relative, `/`-separated, no empty, `.` or `..` parts, and not the manifest itself.
    static func isSafeRelativePath(_ path: String) -> Bool {
        guard !path.isEmpty, !path.hasPrefix("/"), path != fileName else { return false }
        return path.split(separator: "/", omittingEmptySubsequences: false).allSatisfy {
            !$0.isEmpty && $0 != "." && $0 != ".."
        }
    }
}

/// A complete entry of a `ContentStore`: a read-only directory of the files a stage wrote.
public struct CacheEntry: Equatable, Sendable {
    /// The 64-hex key.
    public let key: String
    /// The entry directory.
    public let url: URL
    public let manifest: CacheManifest

    /// The URL of a file the stage wrote, by its path relative to the entry
    /// (`"processors.json"`, `"checkpoints/best.safetensors"`). Check `contains(_:)` first
    /// when the file is optional.
    public func file(named relativePath: String) -> URL {
        url.appendingPathComponent(relativePath)
    }

    /// Whether the manifest lists `relativePath`.
    public func contains(_ relativePath: String) -> Bool {
        manifest.files.contains { $0.path == relativePath }
    }
}

/// One line of `runpipe cache ls`.
public struct EntrySummary: Equatable, Sendable {
    public var key: String
    public var stage: String
    public var description: String
    /// Bytes on disk: the stage's files plus the manifest.
    public var size: Int64
    public var created: Date
}

/// What `ContentStore.verify()` found.
public struct VerifyReport: Equatable, Sendable {
    /// An entry found corrupt (and removed).
    public struct CorruptEntry: Equatable, Sendable {
        public var key: String
        public var reason: String
    }

    /// Entries whose files all hashed to their manifest's digests.
    public var verified: Int
    /// Entries found corrupt and removed, with the reason.
    public var removed: [CorruptEntry]
}

/// What `ContentStore.gc(keep:olderThan:)` removed.
public struct GCReport: Equatable, Sendable {
    /// Keys of the removed entries.
    public var removedKeys: [String]
    /// Temporary build directories left by interrupted runs.
    public var temporaryDirectoriesRemoved: Int
    /// Lock files of keys no one holds.
    public var lockFilesRemoved: Int
    /// Bytes of files deleted (entries and temporary directories).
    public var bytesFreed: Int64

    /// Number of removed entries.
    public var entriesRemoved: Int { removedKeys.count }
}

/// Whether a stage can be taken from the cache, and if not, why it must run.
public enum StageStatus: Equatable, Sendable {
    /// An entry for the key exists.
    case cached(CacheEntry)
    /// The stage must run.
    case mustRun(RerunReason)
}

/// Why a stage must run, for `runpipe plan` and run logs.
public enum RerunReason: Equatable, Sendable, CustomStringConvertible {
    /// No record of an earlier run of this stage in this pipeline.
    case neverRun
    /// The inputs differ from the last run's.
    case inputsChanged([JSONDifference])
    /// The inputs are those of the last run, but its entry is gone (gc'd or found corrupt).
    case entryMissing
    /// The key differs but the recorded inputs are equal (the key covers more than the
    /// components, e.g. a code version).
    case keyChanged(old: String, new: String)

    public var description: String {
        switch self {
        case .neverRun: return "never run"
        case .inputsChanged(let differences): return differences.map(\.description).joined(separator: "; ")
        case .entryMissing: return "inputs unchanged but the cached result is gone (removed by gc or found corrupt)"
        case .keyChanged(let old, let new): return "cache key changed \(old.prefix(12))… → \(new.prefix(12))… with equal inputs"
        }
    }
}
