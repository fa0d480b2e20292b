import Foundation

/// What identifies a data file's contents without reading it: if a file's path, size,
/// modification time (ns), inode and device are unchanged, its stored hash is reused.
public struct FileFingerprint: Codable, Equatable, Sendable {
    /// Absolute, standardised path.
    public var path: String
    public var size: Int64
    public var mtimeNanoseconds: Int64
    public var inode: UInt64
    public var device: UInt64
    /// SHA-256 hex of the contents.
    public var sha256: String
}

/// Content hashes of data files with a stat cache, so an unchanged multi-gigabyte table is not
/// read again on every `runpipe plan`.
///
/// The stat cache is a JSON file (written atomically after each newly computed hash). A
/// missing stat cache is empty; an unreadable or corrupt one is reported through `diagnostics`
/// and discarded. Like git's index, a file modified less than `racyWindow` seconds ago is
/// hashed but not remembered, since a write within the same timestamp tick could otherwise go
/// unnoticed. Safe to share between threads.
public final class FileHasher: @unchecked Sendable {
    /// Seconds after a file's modification during which its hash is not remembered.
    public static let racyWindow: Double = 2

    /// Where the stat cache lives; nil keeps it in memory only.
    public let statCacheURL: URL?
    private let diagnostics: @Sendable (CacheDiagnostic) -> Void
    private let lock = NSLock()
    private var entries: [String: FileFingerprint] = [:]
    private var loaded = false
    private var computed = 0
    /// Nesting depth of `deferringSaves`, and whether entries were added while it was open.
    private var deferSaves = 0
    private var unsaved = false

    /// A hasher whose stat cache is stored at `statCacheURL` (e.g.
    /// `<cache root>/stat-cache.json`). The file is read on first use.
    public init(statCacheURL: URL?, diagnostics: @escaping @Sendable (CacheDiagnostic) -> Void = { _ in }) {
        self.statCacheURL = statCacheURL
        self.diagnostics = diagnostics
    }

    /// How many files this hasher has read in full (stat-cache misses), for tests and logs.
    public var hashesComputed: Int {
        lock.lock()
        defer { lock.unlock() }
        return computed
    }

    /// SHA-256 hex of the file at `url`, reusing the stored hash when the file is unchanged.
    public func hash(of url: URL) throws -> String {
        try fingerprint(of: url).sha256
    }

    /// The fingerprint of the file at `url` (following symlinks to the data file). Throws
    /// `CacheError.unreadable` naming the path when it is missing or not a regular file.
    public func fingerprint(of url: URL) throws -> FileFingerprint {
        let path = url.standardizedFileURL.resolvingSymlinksInPath().path
        guard let before = try FileStatus.of(path) else {
            throw CacheError.unreadable(path: path, reason: "no such file")
        }
        guard before.kind == .regular else {
            throw CacheError.unreadable(path: path, reason: "not a regular file")
        }
        lock.lock()
        loadIfNeeded()
        let stored = entries[path]
        lock.unlock()
        if let stored, stored.size == before.size, stored.mtimeNanoseconds == before.mtimeNanoseconds,
           stored.inode == before.inode, stored.device == before.device {
            return stored
        }

        let (hash, bytesRead) = try ContentHash.sha256AndSize(fileAt: path)
        let fingerprint = FileFingerprint(path: path, size: before.size, mtimeNanoseconds: before.mtimeNanoseconds,
                                          inode: before.inode, device: before.device, sha256: hash)
        let after = try FileStatus.of(path)
        let stable = after == before && bytesRead == before.size
        let ageSeconds = Date().timeIntervalSince1970 - Double(before.mtimeNanoseconds) / 1e9
        lock.lock()
        computed += 1
        if stable && ageSeconds >= Self.racyWindow {
            entries[path] = fingerprint
            let deferred = deferSaves > 0
            if deferred { unsaved = true }
            lock.unlock()
            if !deferred { try save() }
        } else {
            lock.unlock()
        }
        return fingerprint
    }

    /// Runs `body` with the stat cache written once at the end instead of after every newly
    /// hashed file: for hashing many files at once (the images beside a data file), where
    /// rewriting the whole cache per file would cost time quadratic in their number.
    public func deferringSaves<T>(_ body: () throws -> T) throws -> T {
        lock.lock()
        deferSaves += 1
        lock.unlock()
        let result: T
        do {
            result = try body()
        } catch {
            try finishDeferring()
            throw error
        }
        try finishDeferring()
        return result
    }

    private func finishDeferring() throws {
        lock.lock()
        deferSaves -= 1
        let write = deferSaves == 0 && unsaved
        if write { unsaved = false }
        lock.unlock()
        if write { try save() }
    }

    /// Writes the stat cache now (atomically). Nothing happens without a `statCacheURL`.
    public func save() throws {
        guard let url = statCacheURL else { return }
        lock.lock()
        let snapshot = entries.values.sorted { $0.path < $1.path }
        lock.unlock()
        let document = StatCacheDocument(version: StatCacheDocument.currentVersion, files: snapshot)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data: Data
        do {
            data = try encoder.encode(document)
        } catch {
            throw CacheError.writeFailed(path: url.path, reason: "cannot encode stat cache: \(error)")
        }
        try makeDirectory(url.deletingLastPathComponent())
        try AtomicFile.write(data, to: url)
    }

    /// Must be called with `lock` held.
    private func loadIfNeeded() {
        guard !loaded else { return }
        loaded = true
        guard let url = statCacheURL else { return }
        let data: Data
        do {
            guard (try FileStatus.of(url.path)) != nil else { return }
            data = try Data(contentsOf: url)
        } catch {
            diagnostics(.statCacheDiscarded(path: url.path, reason: "\(error)"))
            return
        }
        do {
            let document = try JSONDecoder().decode(StatCacheDocument.self, from: data)
            guard document.version == StatCacheDocument.currentVersion else {
                diagnostics(.statCacheDiscarded(path: url.path, reason: "format version \(document.version), expected \(StatCacheDocument.currentVersion)"))
                return
            }
            for file in document.files where ContentHash.isDigest(file.sha256) {
                entries[file.path] = file
            }
        } catch {
            diagnostics(.statCacheDiscarded(path: url.path, reason: "not a stat cache: \(error)"))
        }
    }
}

private struct StatCacheDocument: Codable {
    static let currentVersion = 1
    var version: Int
    var files: [FileFingerprint]
}
