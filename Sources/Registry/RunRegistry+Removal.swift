import Cache
import Foundation
import GRDB

/// What `remove` / `collectGarbage` did (or, with `dryRun`, would do).
public struct RemovalReport: Codable, Equatable, Sendable {
    public struct RemovedRun: Codable, Equatable, Sendable {
        public var id: Int64
        public var name: String
        public var runDirectory: String
        /// Whether the run folder was (or would be) deleted.
        public var folderRemoved: Bool
        public var folderBytes: Int64
        /// Why the folder was left in place, when it was.
        public var note: String?

        enum CodingKeys: String, CodingKey {
            case id, name, note
            case runDirectory = "run_directory"
            case folderRemoved = "folder_removed"
            case folderBytes = "folder_bytes"
        }
    }

    public var dryRun: Bool
    public var runs: [RemovedRun]
    /// Cache entries only these runs used (that were in the store), sorted.
    public var cacheKeysRemoved: [String]
    public var cacheBytesFreed: Int64
    /// Keys these runs used that other recorded runs still use (left in the cache).
    public var cacheKeysShared: Int

    public init(dryRun: Bool, runs: [RemovedRun], cacheKeysRemoved: [String], cacheBytesFreed: Int64, cacheKeysShared: Int) {
        self.dryRun = dryRun
        self.runs = runs
        self.cacheKeysRemoved = cacheKeysRemoved
        self.cacheBytesFreed = cacheBytesFreed
        self.cacheKeysShared = cacheKeysShared
    }

    public var folderBytesFreed: Int64 { runs.reduce(0) { $0 + ($1.folderRemoved ? $1.folderBytes : 0) } }

    enum CodingKeys: String, CodingKey {
        case runs
        case dryRun = "dry_run"
        case cacheKeysRemoved = "cache_keys_removed"
        case cacheBytesFreed = "cache_bytes_freed"
        case cacheKeysShared = "cache_keys_shared"
    }
}

extension RunRegistry {
    /// Removes runs: their records, their folders (unless `keepFiles`; a folder that does not
    /// hold a run is never deleted) and the entries of `store` whose keys their stages used and no
    /// other recorded run uses. A run still `running` is refused unless `force`.
    public func remove(ids: [Int64], store: ContentStore?, keepFiles: Bool = false, dryRun: Bool = false,
                       force: Bool = false) throws -> RemovalReport {
        let ids = Array(Set(ids)).sorted()
        try refreshMissing()
        let (targets, keys, sharedKeys) = try reading { db -> ([Row], Set<String>, Set<String>) in
            let inList = Self.placeholders(ids.count)
            let rows = try Row.fetchAll(db, sql: "SELECT id, name, run_directory, status FROM run WHERE id IN \(inList) ORDER BY id",
                                        arguments: StatementArguments(ids))
            let keys = try String.fetchSet(db, sql: "SELECT cache_key FROM run_stage WHERE run_id IN \(inList)",
                                           arguments: StatementArguments(ids))
            let shared = try String.fetchSet(db, sql: "SELECT cache_key FROM run_stage WHERE run_id NOT IN \(inList)",
                                             arguments: StatementArguments(ids))
            return (rows, keys, shared)
        }
        let found = Set(targets.map { $0["id"] as Int64 })
        if let absent = ids.first(where: { !found.contains($0) }) {
            throw RegistryError.noSuchRun(reference: String(absent), nearMatches: [])
        }
        if !force, let running = targets.first(where: { ($0["status"] as String) == RunStatus.running.rawValue }) {
            throw RegistryError.refused("run \(running["id"] as Int64) (\(running["name"] as String)) is still running",
                                        hint: "wait for it to finish; if its process is gone, pass --force")
        }

        var report = RemovalReport(dryRun: dryRun, runs: [], cacheKeysRemoved: [], cacheBytesFreed: 0,
                                   cacheKeysShared: keys.intersection(sharedKeys).count)
        let fm = FileManager.default
        for row in targets {
            let directory: String = row["run_directory"]
            var removed = RemovalReport.RemovedRun(id: row["id"], name: row["name"], runDirectory: directory,
                                                   folderRemoved: false, folderBytes: 0, note: nil)
            if !fm.fileExists(atPath: directory) {
                removed.note = "already gone"
            } else if keepFiles {
                removed.note = "kept (--keep-files)"
            } else if !RunFolder.isFinishedRun(directory) {
                removed.note = "left in place: it does not hold a run (no lock.json)"
            } else {
                removed.folderBytes = treeSize(directory)
                removed.folderRemoved = true
                if !dryRun {
                    do {
                        try fm.removeItem(atPath: directory)
                    } catch {
                        throw RegistryError.refused("could not delete the run folder \(directory): \(error.localizedDescription)",
                                                    hint: "check its permissions; nothing was removed from the registry")
                    }
                }
            }
            report.runs.append(removed)
        }

        if let store {
            for key in keys.subtracting(sharedKeys).sorted() {
                guard let url = try? store.entryURL(for: key), fm.fileExists(atPath: url.path) else { continue }
                let size = treeSize(url.path)
                let removed = dryRun ? true : try store.remove(key)
                if removed {
                    report.cacheKeysRemoved.append(key)
                    report.cacheBytesFreed += size
                }
            }
        }
        if !dryRun {
            try writing { db in
                try db.execute(sql: "DELETE FROM run WHERE id IN \(Self.placeholders(ids.count))", arguments: StatementArguments(ids))
            }
        }
        return report
    }

    /// For runs whose folders are gone (`missing`): drops their records and frees the cache
    /// entries only they used.
    public func collectGarbage(store: ContentStore?, dryRun: Bool = false) throws -> RemovalReport {
        try refreshMissing()
        let missing = try reading { db in
            try Int64.fetchAll(db, sql: "SELECT id FROM run WHERE status = 'missing' ORDER BY id")
        }
        if missing.isEmpty {
            return RemovalReport(dryRun: dryRun, runs: [], cacheKeysRemoved: [], cacheBytesFreed: 0, cacheKeysShared: 0)
        }
        return try remove(ids: missing, store: store, keepFiles: true, dryRun: dryRun)
    }
}

/// Bytes of the regular files under `path` (or of `path` itself).
func treeSize(_ path: String) -> Int64 {
    let fm = FileManager.default
    var isDirectory: ObjCBool = false
    guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else { return 0 }
    guard isDirectory.boolValue else {
        return ((try? fm.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
    }
    var total: Int64 = 0
    if let enumerator = fm.enumerator(atPath: path) {
        while let relative = enumerator.nextObject() as? String {
            let attributes = try? fm.attributesOfItem(atPath: path + "/" + relative)
            if attributes?[.type] as? FileAttributeType == .typeRegular {
                total += (attributes?[.size] as? NSNumber)?.int64Value ?? 0
            }
        }
    }
    return total
}
