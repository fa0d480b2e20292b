import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A content-addressed store of stage results, shared safely by threads and processes.
///
/// Layout under `root`:
///
///     objects/3a/7bd3…/        one entry per key: the stage's files + manifest.json, read-only
///     tmp/                     entries being built (renamed into objects/ when complete)
///     locks/<key>.lock         per-key flock: one builder per key at a time
///     store.lock               shared by every reader/writer, exclusive for gc
///     records/<pipeline>/<stage>.json   last key and inputs of each stage (`StageRecords`)
///
/// Typical use by the executor:
///
///     let store = ContentStore(root: root) { log.warning("\($0)") }
///     let key = try components.digest()
///     let (entry, wasCached) = try store.getOrCompute(key: key, stage: "fit", description: "fit processors",
///                                                     components: components) { dir in
///         try processors.write(to: dir.appendingPathComponent("processors.json"))
///     }
///
/// A corrupt entry (missing file, wrong size, unreadable manifest) is reported through
/// `diagnostics`, removed and treated as a miss. Lock order is always store lock (shared) →
/// key lock, and `gc` takes the store lock exclusively, so it never removes an entry that a
/// running `getOrCompute`, `put`, `entry(for:)` or `withSharedAccess` block is using.
public final class ContentStore: Sendable {
    /// The store's directory.
    public let root: URL
    /// Receives what the store noticed and repaired by itself.
    public let diagnostics: @Sendable (CacheDiagnostic) -> Void
    /// Hashes data files with a stat cache kept in the store (`root/stat-cache.json`).
    public let fileHasher: FileHasher

    /// A store at `root` (created on first write). `diagnostics` receives corrupt entries etc.
    public init(root: URL, diagnostics: @escaping @Sendable (CacheDiagnostic) -> Void = { _ in }) {
        self.root = root.standardizedFileURL
        self.diagnostics = diagnostics
        fileHasher = FileHasher(statCacheURL: self.root.appendingPathComponent("stat-cache.json"),
                                diagnostics: diagnostics)
    }

    /// Where the cache of `pipelineFile` lives: `override` (the `--cache-dir` option) if given,
    /// else `RUNPIPE_CACHE_DIR` if set and non-empty, else `<pipeline file's folder>/.runpipe/cache`.
    /// Relative paths are taken from the current directory; `~` is expanded.
    public static func defaultRoot(pipelineFile: URL, override: String?,
                                   environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        func resolve(_ path: String) -> URL {
            let expanded = NSString(string: path).expandingTildeInPath
            return URL(fileURLWithPath: expanded).standardizedFileURL
        }
        if let override, !override.isEmpty { return resolve(override) }
        if let variable = environment["RUNPIPE_CACHE_DIR"], !variable.isEmpty { return resolve(variable) }
        return pipelineFile.standardizedFileURL.deletingLastPathComponent()
            .appendingPathComponent(".runpipe").appendingPathComponent("cache")
    }

    // MARK: - Paths

    var objectsURL: URL { root.appendingPathComponent("objects") }
    var temporaryURL: URL { root.appendingPathComponent("tmp") }
    var locksURL: URL { root.appendingPathComponent("locks") }
    var storeLockPath: String { root.appendingPathComponent("store.lock").path }

    /// The directory an entry for `key` lives in (whether or not it exists).
    public func entryURL(for key: String) throws -> URL {
        try Self.validate(key: key)
        return objectsURL.appendingPathComponent(String(key.prefix(2)), isDirectory: true)
            .appendingPathComponent(String(key.dropFirst(2)), isDirectory: true)
    }

    func keyLockPath(_ key: String) -> String {
        locksURL.appendingPathComponent(key + ".lock").path
    }

    static func validate(key: String) throws {
        guard ContentHash.isDigest(key) else { throw CacheError.invalidKey(key) }
    }

    // MARK: - Locks

    /// Runs `body` holding the store's shared lock, so `gc` (which takes it exclusively) waits
    /// until `body` returns. Wrap a whole pipeline run in it to keep every entry the run reads
    /// alive. Do not call `gc` inside `body` on the same store: it would wait for itself.
    public func withSharedAccess<T>(_ body: () throws -> T) throws -> T {
        try makeDirectory(root)
        let lock = try FileLock(path: storeLockPath, mode: .shared)
        defer { lock.unlock() }
        return try body()
    }

    func withKeyLock<T>(_ key: String, _ body: () throws -> T) throws -> T {
        try makeDirectory(locksURL)
        let lock = try FileLock(path: keyLockPath(key), mode: .exclusive)
        defer { lock.unlock() }
        return try body()
    }

    /// Whether some thread or process holds `key`'s build lock right now.
    public func isComputing(key: String) throws -> Bool {
        try Self.validate(key: key)
        return FileLock.isHeld(path: keyLockPath(key))
    }

    // MARK: - Lookup

    /// The complete entry for `key`, or nil. This is the fast check: the manifest parses and
    /// every listed file exists with its recorded size (contents are hashed only by `verify`).
    /// An entry failing the check is reported as `.corruptEntry`, removed, and nil is returned.
    public func entry(for key: String) throws -> CacheEntry? {
        try Self.validate(key: key)
        return try withSharedAccess { try lookup(key, holdingKeyLock: false) }
    }

    /// `entry(for:)` for a caller that already holds the store's shared lock.
    func lookup(_ key: String, holdingKeyLock: Bool) throws -> CacheEntry? {
        let url = try entryURL(for: key)
        guard try FileStatus.of(url.path) != nil else { return nil }
        switch check(key: key, at: url, hashContents: false) {
        case .success(let entry):
            return entry
        case .failure(let problem):
            if holdingKeyLock {
                try removeCorrupt(key: key, reason: problem.reason)
                return nil
            }
            // Re-check under the key lock so an entry another thread has just replaced with a
            // sound one is never removed.
            return try withKeyLock(key) { try lookup(key, holdingKeyLock: true) }
        }
    }

    struct EntryProblem: Error { var reason: String }

    /// Checks an entry directory: manifest, then every file's kind and size (and contents when
    /// `hashContents`).
    func check(key: String, at url: URL, hashContents: Bool) -> Result<CacheEntry, EntryProblem> {
        let manifestURL = url.appendingPathComponent(CacheManifest.fileName)
        let manifest: CacheManifest
        do {
            guard let status = try FileStatus.of(url.path), status.kind == .directory else {
                return .failure(EntryProblem(reason: "not a directory"))
            }
            guard try FileStatus.of(manifestURL.path) != nil else {
                return .failure(EntryProblem(reason: "manifest.json missing (partial entry)"))
            }
            let data = try Data(contentsOf: manifestURL)
            manifest = try CacheManifest(json: JSONValue(parsing: data, source: manifestURL.path),
                                         source: manifestURL.path)
        } catch {
            return .failure(EntryProblem(reason: "\(error)"))
        }
        guard manifest.key == key else {
            return .failure(EntryProblem(reason: "manifest names key \(manifest.key)"))
        }
        for file in manifest.files {
            let path = url.appendingPathComponent(file.path).path
            do {
                guard let status = try FileStatus.of(path) else {
                    return .failure(EntryProblem(reason: "file \(file.path) missing"))
                }
                guard status.kind == .regular else {
                    return .failure(EntryProblem(reason: "\(file.path) is not a regular file"))
                }
                guard status.size == file.size else {
                    return .failure(EntryProblem(reason: "file \(file.path) has \(status.size) bytes, manifest says \(file.size)"))
                }
                if hashContents {
                    let hash = try ContentHash.sha256AndSize(fileAt: path).hash
                    guard hash == file.sha256 else {
                        return .failure(EntryProblem(reason: "file \(file.path) content changed: SHA-256 \(hash.prefix(12))…, manifest says \(file.sha256.prefix(12))…"))
                    }
                }
            } catch {
                return .failure(EntryProblem(reason: "\(error)"))
            }
        }
        if hashContents {
            do {
                let listed = Set(manifest.files.map(\.path)).union([CacheManifest.fileName])
                let present = try Self.relativeFiles(in: url.path)
                if let extra = present.first(where: { !listed.contains($0.path) }) {
                    return .failure(EntryProblem(reason: "unexpected file \(extra.path) not in the manifest"))
                }
            } catch {
                return .failure(EntryProblem(reason: "\(error)"))
            }
        }
        return .success(CacheEntry(key: key, url: url, manifest: manifest))
    }

    /// Removes the entry for `key` if there is one (e.g. for `--force`), waiting for anyone
    /// building it. Returns whether an entry was removed.
    @discardableResult
    public func remove(_ key: String) throws -> Bool {
        try Self.validate(key: key)
        return try withSharedAccess {
            try withKeyLock(key) {
                let url = try entryURL(for: key)
                guard try FileStatus.of(url.path) != nil else { return false }
                try discard(entryAt: url)
                return true
            }
        }
    }

    /// Reports and removes a corrupt entry. The caller holds the key lock.
    func removeCorrupt(key: String, reason: String) throws {
        diagnostics(.corruptEntry(key: key, reason: reason))
        try discard(entryAt: try entryURL(for: key))
    }

    /// Moves an entry directory out of `objects/` (so it disappears at once), then deletes it.
    func discard(entryAt url: URL) throws {
        guard try FileStatus.of(url.path) != nil else { return }
        try makeDirectory(temporaryURL)
        // Renaming a directory into another parent needs write permission on it (for "..").
        _ = chmod(url.path, 0o755)
        let trash = temporaryURL.appendingPathComponent("trash-" + UUID().uuidString).path
        if rename(url.path, trash) == 0 {
            try removeTree(trash)
        } else {
            try removeTree(url.path)
        }
    }

    // MARK: - Storing

    /// Builds and stores an entry: `build` writes the stage's files into a fresh temporary
    /// directory, the manifest is computed, and the directory is renamed into place in one step
    /// and made read-only (files 0444, directories 0555). If another process stored `key`
    /// meanwhile, its entry is kept and returned and ours is discarded. If `build` throws,
    /// nothing is stored and the error is rethrown.
    ///
    /// `build` may write files and subdirectories, but no symlinks or special files, and not
    /// `manifest.json` at the top level.
    @discardableResult
    public func put(key: String, stage: String, description: String, components: JSONValue,
                    build: (URL) throws -> Void) throws -> CacheEntry {
        try Self.validate(key: key)
        return try withSharedAccess {
            let staged = try stageEntry(key: key, stage: stage, description: description,
                                        components: components, build: build)
            return try withKeyLock(key) { try publish(staged, key: key) }
        }
    }

    /// The entry for `key`, computing it with `build` when there is none. Two threads or
    /// processes asking for the same key never build it twice at once: the second waits for the
    /// first and then takes its entry. `wasCached` is false only for the caller that built it.
    public func getOrCompute(key: String, stage: String, description: String, components: JSONValue,
                             build: (URL) throws -> Void) throws -> (entry: CacheEntry, wasCached: Bool) {
        try Self.validate(key: key)
        return try withSharedAccess {
            if let entry = try lookup(key, holdingKeyLock: false) { return (entry, true) }
            return try withKeyLock(key) {
                if let entry = try lookup(key, holdingKeyLock: true) { return (entry, true) }
                let staged = try stageEntry(key: key, stage: stage, description: description,
                                            components: components, build: build)
                return (try publish(staged, key: key), false)
            }
        }
    }

    /// A built, not yet published entry.
    struct StagedEntry {
        var directory: URL
        var manifest: CacheManifest
    }

    private func stageEntry(key: String, stage: String, description: String, components: JSONValue,
                            build: (URL) throws -> Void) throws -> StagedEntry {
        // Fail before running a long build if the components cannot be written.
        _ = try components.canonicalData()
        try makeDirectory(temporaryURL)
        let directory = temporaryURL.appendingPathComponent("build-\(key.prefix(12))-\(UUID().uuidString)")
        try makeDirectory(directory)
        do {
            try build(directory)
            let manifestPath = directory.appendingPathComponent(CacheManifest.fileName).path
            if try FileStatus.of(manifestPath) != nil {
                throw CacheError.invalidStageOutput(stage: stage, path: CacheManifest.fileName,
                                                    detail: "the name is reserved for the cache manifest; write it under another name")
            }
            var files: [CacheManifest.File] = []
            for item in try Self.relativeFiles(in: directory.path) {
                guard item.kind == .regular else {
                    throw CacheError.invalidStageOutput(stage: stage, path: item.path,
                                                        detail: "only regular files and directories can be cached; copy the file instead of linking it")
                }
                let absolute = directory.path + "/" + item.path
                let (hash, size) = try ContentHash.sha256AndSize(fileAt: absolute)
                syncPath(absolute)
                files.append(CacheManifest.File(path: item.path, size: size, sha256: hash))
            }
            let manifest = CacheManifest(key: key, stage: stage, description: description, created: CacheManifest.now(),
                                         components: components, files: files)
            try AtomicFile.writeNew(try manifest.json.canonicalData(),
                                    to: directory.appendingPathComponent(CacheManifest.fileName))
            return StagedEntry(directory: directory, manifest: manifest)
        } catch {
            try? removeTree(directory.path)
            throw error
        }
    }

    /// Renames a staged entry into `objects/`. The caller holds the key lock.
    private func publish(_ staged: StagedEntry, key: String) throws -> CacheEntry {
        let destination = try entryURL(for: key)
        try makeDirectory(destination.deletingLastPathComponent())
        for _ in 0..<3 {
            if rename(staged.directory.path, destination.path) == 0 {
                syncPath(destination.deletingLastPathComponent().path)
                try Self.makeReadOnly(destination.path)
                return CacheEntry(key: key, url: destination, manifest: staged.manifest)
            }
            let code = errno
            guard code == EEXIST || code == ENOTEMPTY else {
                try? removeTree(staged.directory.path)
                throw CacheError.writeFailed(path: destination.path, reason: "rename from \(staged.directory.path): \(errnoDescription(code))")
            }
            // Someone stored this key first (a put without the key lock held, or another
            // process): keep theirs if it is sound.
            if let existing = try lookup(key, holdingKeyLock: true) {
                try? removeTree(staged.directory.path)
                return existing
            }
        }
        try? removeTree(staged.directory.path)
        throw CacheError.writeFailed(path: destination.path, reason: "could not replace an existing directory there; run `runpipe cache gc`")
    }

    /// Files 0444, directories 0555, the top directory last.
    static func makeReadOnly(_ path: String) throws {
        guard let status = try FileStatus.of(path) else { return }
        switch status.kind {
        case .directory:
            for name in try directoryNames(path) { try makeReadOnly(path + "/" + name) }
            try setMode(path, 0o555)
        case .regular:
            try setMode(path, 0o444)
        default:
            break
        }
    }

    /// Every non-directory below `directory` as a `/`-separated relative path, sorted.
    static func relativeFiles(in directory: String) throws -> [(path: String, kind: FileStatus.Kind)] {
        var result: [(path: String, kind: FileStatus.Kind)] = []
        func walk(_ relative: String) throws {
            let absolute = relative.isEmpty ? directory : directory + "/" + relative
            for name in try directoryNames(absolute) {
                let child = relative.isEmpty ? name : relative + "/" + name
                guard let status = try FileStatus.of(directory + "/" + child) else { continue }
                if status.kind == .directory {
                    try walk(child)
                } else {
                    result.append((child, status.kind))
                }
            }
        }
        try walk("")
        return result.sorted { $0.path.unicodeScalars.lexicographicallyPrecedes($1.path.unicodeScalars) }
    }
}
