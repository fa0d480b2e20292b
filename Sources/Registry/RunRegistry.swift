import Foundation
import GRDB

/// Every run and sweep, in an SQLite database beside the stage cache (`<cache root>/registry.sqlite`).
///
/// Several processes (a sweep's trials) write it at once: the database is in WAL mode, each
/// write is one short `BEGIN IMMEDIATE` transaction, and a writer that finds another one waits up
/// to `busyTimeout` before giving up with `RegistryError.locked`.
///
///     let registry = try RunRegistry(url: RunRegistry.defaultURL(cacheRoot: store.root, environment: env))
///     let id = try registry.begin(NewRun(pipeline: …, name: "penguins", runDirectory: …, threads: 2, seed: 7))
///     …train…
///     try registry.finish(id: id, runDirectory: runFolder)   // or: try registry.fail(id: id, message: "\(error)")
///
/// A file that cannot be opened is never deleted, rewritten or migrated: a damaged one, another
/// program's database, or one from a newer runpipe is reported as a `RegistryError` and left as is.
/// Finished runs whose folder lost its `lock.json` are marked `missing` whenever runs are listed.
public final class RunRegistry: Sendable {
    public static let fileName = "registry.sqlite"

    /// The registry file.
    public let url: URL
    /// How long a write waits for another process's write to end.
    public let busyTimeout: TimeInterval
    let queue: DatabaseQueue

    /// `<cache root>/registry.sqlite`, or `$RUNPIPE_REGISTRY` when set (relative paths from the
    /// current folder, `~` expanded).
    public static func defaultURL(cacheRoot: URL, environment: [String: String]) -> URL {
        if let variable = environment["RUNPIPE_REGISTRY"], !variable.isEmpty {
            return URL(fileURLWithPath: NSString(string: variable).expandingTildeInPath).standardizedFileURL
        }
        return cacheRoot.appendingPathComponent(fileName)
    }

    /// The registry at `url` when the file exists, else nil (nothing is created).
    public static func openExisting(url: URL, busyTimeout: TimeInterval = 5) throws -> RunRegistry? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        return try RunRegistry(url: url, busyTimeout: busyTimeout)
    }

    /// Opens the registry at `url`, creating and migrating it as needed. Throws `RegistryError`.
    public init(url: URL, busyTimeout: TimeInterval = 5) throws {
        self.url = url.standardizedFileURL
        self.busyTimeout = busyTimeout
        let path = self.url.path
        try Self.checkHeader(path)
        do {
            try FileManager.default.createDirectory(at: self.url.deletingLastPathComponent(), withIntermediateDirectories: true)
        } catch {
            throw RegistryError.database(path: path, detail: "cannot create its folder: \(error.localizedDescription)")
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout)
        // Not `.wal` here: switching the journal mode writes the file, which must wait until
        // `checkSchema` has said the file is ours.
        configuration.foreignKeysEnabled = true
        configuration.label = "runpipe.registry"
        queue = try Self.translating(path: path, seconds: busyTimeout) {
            try DatabaseQueue(path: path, configuration: configuration)
        }
        try Self.translating(path: path, seconds: busyTimeout) {
            try queue.read { db in try Self.checkSchema(db, path: path) }
            try migrate()
            try queue.writeWithoutTransaction { db in
                if try String.fetchOne(db, sql: "PRAGMA journal_mode")?.lowercased() != "wal" {
                    try db.execute(sql: "PRAGMA journal_mode = WAL")
                }
            }
        }
    }

    // MARK: - Opening safely

    /// Reads the SQLite header (without SQLite, so nothing can write): refuses files that are not
    /// SQLite databases, other programs' databases, and newer schema versions.
    static func checkHeader(_ path: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            if FileManager.default.fileExists(atPath: path) {
                throw RegistryError.database(path: path, detail: "the file cannot be opened for reading")
            }
            return
        }
        defer { try? handle.close() }
        let header = handle.readData(ofLength: 100)
        if header.isEmpty { return }   // an empty file is an empty database
        let magic = Data("SQLite format 3\u{0}".utf8)
        guard header.count == 100, header.prefix(16) == magic else {
            throw RegistryError.damaged(path: path, detail: "the file does not start with an SQLite header")
        }
        func int32(at offset: Int) -> Int32 {
            header[offset..<offset + 4].reduce(Int32(0)) { $0 << 8 | Int32($1) }
        }
        let userVersion = Int(int32(at: 60)), applicationID = int32(at: 68)
        if applicationID != 0 && applicationID != RegistrySchema.applicationID {
            throw RegistryError.notARegistry(path: path, detail: String(format: "its application id is 0x%08x", applicationID))
        }
        if userVersion > RegistrySchema.version {
            throw RegistryError.newerVersion(path: path, found: userVersion, known: RegistrySchema.version)
        }
    }

    /// The same checks through SQLite (which also sees changes still in the WAL file), plus
    /// migrations this runpipe does not know.
    static func checkSchema(_ db: Database, path: String) throws {
        let userVersion = try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0
        let applicationID = try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0
        if applicationID != 0 && applicationID != RegistrySchema.applicationID {
            throw RegistryError.notARegistry(path: path, detail: String(format: "its application id is 0x%08x", applicationID))
        }
        let superseded = try RegistrySchema.migrator.hasBeenSuperseded(db)
        if userVersion > RegistrySchema.version || superseded {
            throw RegistryError.newerVersion(path: path, found: max(userVersion, RegistrySchema.version + 1),
                                             known: RegistrySchema.version)
        }
        let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        let foreign = Set(tables).subtracting(RegistrySchema.tables).subtracting(["grdb_migrations"])
        if applicationID == 0 && !foreign.isEmpty {
            throw RegistryError.notARegistry(path: path, detail: "it holds other tables: \(foreign.sorted().prefix(5).joined(separator: ", "))")
        }
    }

    /// Applies missing migrations. Two processes opening a new file at once may both try: the
    /// loser's migration fails, and it is fine when the winner's is complete.
    private func migrate() throws {
        let migrator = RegistrySchema.migrator
        do {
            try migrator.migrate(queue)
        } catch {
            if (try? queue.read(migrator.hasCompletedMigrations)) == true { return }
            throw error
        }
    }

    /// Runs `body`, turning SQLite's errors into `RegistryError`s that say what to do.
    static func translating<T>(path: String, seconds: TimeInterval, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as RegistryError {
            throw error
        } catch let error as DatabaseError {
            switch error.resultCode {
            case .SQLITE_BUSY, .SQLITE_LOCKED:
                throw RegistryError.locked(path: path, seconds: seconds)
            case .SQLITE_NOTADB, .SQLITE_CORRUPT:
                throw RegistryError.damaged(path: path, detail: error.message ?? "\(error.resultCode)")
            default:
                throw RegistryError.database(path: path, detail: error.message ?? "\(error)")
            }
        } catch {
            throw RegistryError.database(path: path, detail: "\(error)")
        }
    }

    func reading<T>(_ body: (Database) throws -> T) throws -> T {
        try Self.translating(path: url.path, seconds: busyTimeout) { try queue.read(body) }
    }

    /// One `BEGIN IMMEDIATE` transaction (takes the write lock first, so it waits for other
    /// writers under the busy timeout instead of failing half-way).
    func writing<T>(_ body: (Database) throws -> T) throws -> T {
        try Self.translating(path: url.path, seconds: busyTimeout) {
            try queue.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
                guard let result else { throw RegistryError.database(path: url.path, detail: "a transaction returned nothing") }
                return result
            }
        }
    }

    // MARK: - Recording runs

    /// Records a run that is starting (status `running`, the start time, and the pipeline file's
    /// git commit when it is in a repository). Returns its id.
    public func begin(_ run: NewRun) throws -> Int64 {
        let git = GitState.probe(file: run.pipeline)
        let overrides = String(decoding: (try? JSONEncoder().encode(run.overrides)) ?? Data("[]".utf8), as: UTF8.self)
        return try writing { db in
            // An earlier attempt at the same folder that never ended (a killed trial a resumed
            // sweep restarts, a Ctrl-C'd train) is closed, so it does not stay `running`.
            try db.execute(sql: """
                UPDATE run SET status = 'failed', error_message = 'interrupted: the run was started again in the same folder'
                WHERE run_directory = ? AND status = 'running'
                """, arguments: [Self.absolute(run.runDirectory)])
            try db.execute(sql: """
                INSERT INTO run (name, pipeline, run_directory, status, command, overrides, started, seed, threads,
                                 git_commit, git_dirty, sweep_id, trial_index)
                VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [run.name, Self.absolute(run.pipeline), Self.absolute(run.runDirectory), run.command,
                                 overrides, Date(), String(run.seed), run.threads, git?.commit, git?.dirty,
                                 run.sweepID, run.trialIndex])
            let id = db.lastInsertedRowID
            for (key, value) in run.parameters {
                try db.execute(sql: "INSERT INTO run_parameter (run_id, key, value) VALUES (?, ?, ?)", arguments: [id, key, value])
            }
            return id
        }
    }

    /// Reads the finished run folder (lock.json, metrics.json, history.csv, resolved.yaml) and
    /// records it: status `finished` (or `stopped` when a sweep pruned it), metrics, history,
    /// lock hashes, stage keys, the end time and duration. Nothing is written when the folder
    /// cannot be read.
    public func finish(id: Int64, runDirectory: URL, stoppedEarly: Bool = false) throws {
        let folder = try RunFolder.read(runDirectory)
        let ended = Date()
        try writing { db in
            guard let started = try Date.fetchOne(db, sql: "SELECT started FROM run WHERE id = ?", arguments: [id]) else {
                throw RegistryError.noSuchRun(reference: String(id), nearMatches: [])
            }
            let lock = folder.lock
            try db.execute(sql: """
                UPDATE run SET status = ?, stopped_early = ?, ended = ?, seconds = ?, run_directory = ?,
                               pipeline_sha256 = ?, seed = ?, threads = ?, runpipe_version = ?, metric = ?,
                               resolved_yaml = ?, lock_json = ?, error_message = NULL
                WHERE id = ?
                """, arguments: [stoppedEarly ? RunStatus.stopped.rawValue : RunStatus.finished.rawValue, stoppedEarly,
                                 ended, ended.timeIntervalSince(started), runDirectory.standardizedFileURL.path,
                                 lock.pipelineSHA256, String(lock.seed), lock.threads, lock.runpipe, folder.metric,
                                 folder.resolvedYAML, folder.lockJSON, id])
            for table in ["metric", "history", "run_stage"] {
                try db.execute(sql: "DELETE FROM \(table) WHERE run_id = ?", arguments: [id])
            }
            for (split, values) in folder.metrics {
                for (name, value) in values {
                    try db.execute(sql: "INSERT INTO metric (run_id, split, name, value) VALUES (?, ?, ?, ?)",
                                   arguments: [id, split, name, value])
                }
            }
            let history = try db.makeStatement(sql: "INSERT INTO history (run_id, row, position, \"column\", value) VALUES (?, ?, ?, ?, ?)")
            for (row, values) in folder.history.rows.enumerated() {
                for (position, column) in folder.history.columns.enumerated() {
                    try history.execute(arguments: [id, row, position, column, position < values.count ? values[position] : nil])
                }
            }
            for (stage, key) in lock.stages {
                try db.execute(sql: "INSERT INTO run_stage (run_id, stage, cache_key) VALUES (?, ?, ?)", arguments: [id, stage, key])
            }
        }
    }

    /// Records that a run failed, with the error it failed with.
    public func fail(id: Int64, message: String) throws {
        let ended = Date()
        try writing { db in
            guard let started = try Date.fetchOne(db, sql: "SELECT started FROM run WHERE id = ?", arguments: [id]) else {
                throw RegistryError.noSuchRun(reference: String(id), nearMatches: [])
            }
            try db.execute(sql: "UPDATE run SET status = 'failed', ended = ?, seconds = ?, error_message = ? WHERE id = ?",
                           arguments: [ended, ended.timeIntervalSince(started), message, id])
        }
    }

    /// Creates the sweep's row, or updates it (everything but `created`).
    public func recordSweep(_ sweep: SweepRecord) throws {
        try writing { db in
            try db.execute(sql: """
                INSERT INTO sweep (id, name, pipeline, directory, method, monitor, mode, trials, status, created, updated)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET name = excluded.name, pipeline = excluded.pipeline,
                    directory = excluded.directory, method = excluded.method, monitor = excluded.monitor,
                    mode = excluded.mode, trials = excluded.trials, status = excluded.status, updated = excluded.updated
                """, arguments: [sweep.id, sweep.name, Self.absolute(sweep.pipeline), Self.absolute(sweep.directory),
                                 sweep.method, sweep.monitor, sweep.mode, sweep.trials, sweep.status, sweep.created, Date()])
        }
    }

    static func absolute(_ path: String) -> String {
        URL(fileURLWithPath: NSString(string: path).expandingTildeInPath).standardizedFileURL.path
    }
}
