import Foundation

/// Every failure of the cache module. Each message names the path or key involved and, where
/// there is one, says how to fix it, e.g.
///
///     /data/.runpipe/cache/objects/3a/…/manifest.json: invalid JSON at byte 17: expected ':'
public enum CacheError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A cache key is not 64 lowercase hexadecimal characters (a SHA-256 digest).
    case invalidKey(String)
    /// A pipeline or stage identifier cannot be used as a file name.
    case invalidIdentifier(kind: String, value: String)
    /// A number in a JSON value is NaN or infinite; `path` is its dotted location.
    case nonFiniteNumber(path: String)
    /// Text that should be JSON is not; `source` names the file (or "JSON text").
    case invalidJSON(source: String, detail: String)
    /// A JSON document parsed but does not have the expected shape.
    case invalidDocument(path: String, detail: String)
    /// A file or directory cannot be read.
    case unreadable(path: String, reason: String)
    /// Creating, writing, renaming or removing a file failed.
    case writeFailed(path: String, reason: String)
    /// `AtomicFile.writeNew` found a file already at the destination.
    case alreadyExists(path: String)
    /// A stage's build step wrote something the store cannot hold (a symlink, a device, a file
    /// named `manifest.json` at the top level).
    case invalidStageOutput(stage: String, path: String, detail: String)
    /// Taking a lock on a lock file failed.
    case lockFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .invalidKey(let key):
            return "invalid cache key '\(key)': expected 64 lowercase hexadecimal characters "
                + "(a SHA-256 digest, e.g. from JSONValue.digest())"
        case .invalidIdentifier(let kind, let value):
            return "invalid \(kind) identifier '\(value)': use letters, digits, '.', '_' or '-' "
                + "and do not start with '.'"
        case .nonFiniteNumber(let path):
            return "\(path.isEmpty ? "(root)" : path): NaN or infinite number has no JSON form; "
                + "replace it with a finite value or null"
        case .invalidJSON(let source, let detail):
            return "\(source): invalid JSON: \(detail)"
        case .invalidDocument(let path, let detail):
            return "\(path): \(detail)"
        case .unreadable(let path, let reason):
            return "\(path): cannot read: \(reason)"
        case .writeFailed(let path, let reason):
            return "\(path): cannot write: \(reason) (check free space and permissions)"
        case .alreadyExists(let path):
            return "\(path): already exists; remove it first or write another name"
        case .invalidStageOutput(let stage, let path, let detail):
            return "stage '\(stage)' output \(path): \(detail)"
        case .lockFailed(let path, let reason):
            return "\(path): cannot lock: \(reason) (the cache directory must be on a local "
                + "file system that supports flock)"
        }
    }
}

/// Something the store noticed and handled by itself — reported instead of printed, so the
/// caller decides whether to log it.
public enum CacheDiagnostic: Equatable, Sendable, CustomStringConvertible {
    /// An entry failed a check and was removed; the next lookup is a miss.
    case corruptEntry(key: String, reason: String)
    /// A stage record could not be read and was ignored.
    case corruptRecord(path: String, reason: String)
    /// The stat cache of a `FileHasher` could not be read; every file is hashed again.
    case statCacheDiscarded(path: String, reason: String)
    /// Something under `objects/` that is not an entry; left in place.
    case unexpectedItem(path: String)

    public var description: String {
        switch self {
        case .corruptEntry(let key, let reason):
            return "cache entry \(key) is corrupt (\(reason)); removed it, the stage will run again"
        case .corruptRecord(let path, let reason):
            return "\(path): stage record unreadable (\(reason)); ignored"
        case .statCacheDiscarded(let path, let reason):
            return "\(path): stat cache unreadable (\(reason)); discarded, files will be hashed again"
        case .unexpectedItem(let path):
            return "\(path): not a cache entry; left in place (remove it by hand if unwanted)"
        }
    }
}
