import Foundation

// MARK: - ls, verify, gc

extension ContentStore {
    /// Every key that has an entry directory under `objects/` (sound or not), sorted.
    /// Anything else found there is reported as `.unexpectedItem`.
    func storedKeys() throws -> [String] {
        guard try FileStatus.of(objectsURL.path) != nil else { return [] }
        var keys: [String] = []
        for prefix in try directoryNames(objectsURL.path) {
            let prefixPath = objectsURL.appendingPathComponent(prefix).path
            guard prefix.count == 2, try FileStatus.of(prefixPath)?.kind == .directory else {
                diagnostics(.unexpectedItem(path: prefixPath))
                continue
            }
            for rest in try directoryNames(prefixPath) {
                let key = prefix + rest
                if ContentHash.isDigest(key) {
                    keys.append(key)
                } else {
                    diagnostics(.unexpectedItem(path: prefixPath + "/" + rest))
                }
            }
        }
        return keys
    }

    /// A summary of every sound entry, oldest first (for `runpipe cache ls`). Corrupt entries
    /// are reported, removed and left out.
    public func list() throws -> [EntrySummary] {
        try withSharedAccess {
            var summaries: [EntrySummary] = []
            for key in try storedKeys() {
                guard let entry = try lookup(key, holdingKeyLock: false) else { continue }
                let manifestSize = treeSize(entry.url.appendingPathComponent(CacheManifest.fileName).path)
                summaries.append(EntrySummary(key: key, stage: entry.manifest.stage,
                                              description: entry.manifest.description,
                                              size: entry.manifest.totalSize + manifestSize,
                                              created: entry.manifest.created))
            }
            return summaries.sorted { ($0.created, $0.key) < ($1.created, $1.key) }
        }
    }

    /// Re-hashes every file of every entry; removes each entry whose contents no longer match
    /// its manifest (or that holds files the manifest does not list) and reports it with the
    /// reason, also through `diagnostics`.
    public func verify() throws -> VerifyReport {
        try withSharedAccess {
            var report = VerifyReport(verified: 0, removed: [])
            for key in try storedKeys() {
                try withKeyLock(key) {
                    let url = try entryURL(for: key)
                    guard try FileStatus.of(url.path) != nil else { return }
                    switch check(key: key, at: url, hashContents: true) {
                    case .success:
                        report.verified += 1
                    case .failure(let problem):
                        try removeCorrupt(key: key, reason: problem.reason)
                        report.removed.append(.init(key: key, reason: problem.reason))
                    }
                }
            }
            return report
        }
    }

    /// Removes entries, and the debris of interrupted runs, holding the store lock exclusively
    /// (it waits for running computations to finish, and they wait for it).
    ///
    /// An entry is removed when it is not in `keep` (if given) **and** was created before
    /// `olderThan` (if given) — so `gc(keep: used, olderThan: nil)` keeps exactly `used`,
    /// `gc(keep: nil, olderThan: monthAgo)` removes everything older than a month, and
    /// `gc(keep: nil, olderThan: nil)` empties the store. Corrupt entries are always removed.
    /// Temporary build directories older than `temporaryAge` seconds and lock files of keys
    /// without an entry are removed too (no one can hold a key lock while gc holds the store lock).
    public func gc(keep: Set<String>?, olderThan: Date?, temporaryAge: TimeInterval = 3600) throws -> GCReport {
        try makeDirectory(root)
        let storeLock = try FileLock(path: storeLockPath, mode: .exclusive)
        defer { storeLock.unlock() }
        var report = GCReport(removedKeys: [], temporaryDirectoriesRemoved: 0, lockFilesRemoved: 0, bytesFreed: 0)

        for key in try storedKeys() {
            let url = try entryURL(for: key)
            let remove: Bool
            switch check(key: key, at: url, hashContents: false) {
            case .failure(let problem):
                diagnostics(.corruptEntry(key: key, reason: problem.reason))
                remove = true
            case .success(let entry):
                let unkept = keep.map { !$0.contains(key) } ?? true
                let old = olderThan.map { entry.manifest.created < $0 } ?? true
                remove = unkept && old
            }
            guard remove else { continue }
            let bytes = treeSize(url.path)
            try discard(entryAt: url)
            report.removedKeys.append(key)
            report.bytesFreed += bytes
        }
        // Empty prefix directories.
        if try FileStatus.of(objectsURL.path) != nil {
            for prefix in try directoryNames(objectsURL.path) {
                let path = objectsURL.appendingPathComponent(prefix).path
                if (try? directoryNames(path))?.isEmpty == true { _ = try? FileManager.default.removeItem(atPath: path) }
            }
        }

        if try FileStatus.of(temporaryURL.path) != nil {
            let now = Date().timeIntervalSince1970
            for name in try directoryNames(temporaryURL.path) {
                let path = temporaryURL.appendingPathComponent(name).path
                guard let status = try FileStatus.of(path) else { continue }
                let age = now - Double(status.mtimeNanoseconds) / 1e9
                // Trash directories are half-finished removals: always garbage.
                guard name.hasPrefix("trash-") || age >= temporaryAge else { continue }
                let bytes = treeSize(path)
                try removeTree(path)
                report.temporaryDirectoriesRemoved += 1
                report.bytesFreed += bytes
            }
        }

        if try FileStatus.of(locksURL.path) != nil {
            for name in try directoryNames(locksURL.path) {
                let path = locksURL.appendingPathComponent(name).path
                let key = name.hasSuffix(".lock") ? String(name.dropLast(5)) : name
                if ContentHash.isDigest(key), try FileStatus.of(try entryURL(for: key).path) != nil { continue }
                // Held only by code that bypasses the store lock; leave it alone then.
                if FileLock.isHeld(path: path) { continue }
                if unlink(path) == 0 { report.lockFilesRemoved += 1 }
            }
        }
        return report
    }
}
