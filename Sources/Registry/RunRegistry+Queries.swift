import Foundation
import GRDB

extension RunRegistry {
    // MARK: - Runs

    /// Runs matching `query`, newest first (after marking runs whose folders are gone `missing`).
    public func list(_ query: RunQuery = RunQuery()) throws -> [RunRecord] {
        try refreshMissing()
        return try reading { db in
            var conditions: [String] = []
            var arguments = StatementArguments()
            if let sweep = query.sweepID { conditions.append("sweep_id = ?"); arguments += [sweep] }
            if let pipeline = query.pipeline { conditions.append("pipeline = ?"); arguments += [Self.absolute(pipeline)] }
            if let status = query.status { conditions.append("status = ?"); arguments += [status.rawValue] }
            var sql = "SELECT * FROM run"
            if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
            sql += " ORDER BY started DESC, id DESC"
            if let limit = query.limit { sql += " LIMIT ?"; arguments += [max(0, limit)] }
            return try Self.records(db, rows: try Row.fetchAll(db, sql: sql, arguments: arguments),
                                    includeHistory: query.includeHistory)
        }
    }

    /// A sweep's trials with their history, by trial index. Throws when the registry knows
    /// neither the sweep nor any run of it.
    public func runs(sweep: String) throws -> [RunRecord] {
        let runs = try list(RunQuery(sweepID: sweep, includeHistory: true))
        if runs.isEmpty, try self.sweep(sweep) == nil {
            throw RegistryError.noSuchSweep(id: sweep, known: try sweeps().map(\.id))
        }
        return runs.sorted { ($0.trialIndex ?? Int.max, $0.id) < ($1.trialIndex ?? Int.max, $1.id) }
    }

    /// One run, by id, run-folder path or run-folder name. Errors list near matches.
    public func run(_ reference: String) throws -> RunRecord {
        try runs([reference])[0]
    }

    /// Several runs by reference, in the order given.
    public func runs(_ references: [String]) throws -> [RunRecord] {
        try refreshMissing()
        return try reading { db in
            let index = try Row.fetchAll(db, sql: "SELECT id, run_directory FROM run").map {
                (id: $0["id"] as Int64, directory: $0["run_directory"] as String)
            }
            var ids: [Int64] = []
            for reference in references {
                ids.append(try Self.resolve(reference, index: index))
            }
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM run WHERE id IN \(Self.placeholders(Set(ids).count))",
                                        arguments: StatementArguments(Array(Set(ids))))
            let byID = Dictionary(uniqueKeysWithValues: try Self.records(db, rows: rows, includeHistory: true).map { ($0.id, $0) })
            return ids.compactMap { byID[$0] }
        }
    }

    /// Whether the registry records no run and no sweep.
    public func isEmpty() throws -> Bool {
        try reading { db in
            try Int.fetchOne(db, sql: "SELECT (SELECT COUNT(*) FROM run) + (SELECT COUNT(*) FROM sweep)") == 0
        }
    }

    // MARK: - Sweeps

    public func sweeps() throws -> [SweepRecord] {
        try reading { db in try Row.fetchAll(db, sql: "SELECT * FROM sweep ORDER BY created DESC").map(Self.sweep) }
    }

    public func sweep(_ id: String) throws -> SweepRecord? {
        try reading { db in try Row.fetchOne(db, sql: "SELECT * FROM sweep WHERE id = ?", arguments: [id]).map(Self.sweep) }
    }

    // MARK: - Missing folders

    /// Marks `missing` every finished or stopped run whose folder no longer holds `lock.json`,
    /// and gives a missing run back its status when its folder is back.
    public func refreshMissing() throws {
        let candidates = try reading { db in
            try Row.fetchAll(db, sql: "SELECT id, run_directory, status, stopped_early FROM run WHERE status IN ('finished', 'stopped', 'missing')")
        }
        var changes: [(Int64, RunStatus, RunStatus)] = []
        for row in candidates {
            let status = RunStatus(rawValue: row["status"]) ?? .finished
            let present = RunFolder.isFinishedRun(row["run_directory"])
            if status == .missing, present {
                changes.append((row["id"], status, (row["stopped_early"] as Bool) ? .stopped : .finished))
            } else if status != .missing, !present {
                changes.append((row["id"], status, .missing))
            }
        }
        guard !changes.isEmpty else { return }
        try writing { db in
            for (id, old, new) in changes {
                try db.execute(sql: "UPDATE run SET status = ? WHERE id = ? AND status = ?", arguments: [new.rawValue, id, old.rawValue])
            }
        }
    }

    // MARK: - Rows → records

    static func placeholders(_ count: Int) -> String {
        "(" + Array(repeating: "?", count: max(count, 1)).joined(separator: ",") + ")"
    }

    /// An id (written without leading zeros), a run-folder path, or a run-folder name. Sweep
    /// trial folders are named `000`, `001`…, so `002` is a folder name, never id 2, and a
    /// reference that is both an id and another run's folder name is ambiguous.
    static func resolve(_ reference: String, index: [(id: Int64, directory: String)]) throws -> Int64 {
        let byID = Int64(reference).flatMap { id in String(id) == reference ? index.first { $0.id == id } : nil }
        let path = absolute(reference)
        var matches = index.filter { $0.directory == path }
        if matches.isEmpty, !reference.contains("/") {
            matches = index.filter { URL(fileURLWithPath: $0.directory).lastPathComponent == reference }
        }
        if let byID {
            if matches.allSatisfy({ $0.id == byID.id }) { return byID.id }
            throw RegistryError.ambiguousRun(reference: reference,
                                             matches: ([byID] + matches).map { "\($0.id) (\($0.directory))" })
        }
        if matches.count == 1 { return matches[0].id }
        if matches.count > 1 {
            throw RegistryError.ambiguousRun(reference: reference, matches: matches.map { "\($0.id) (\($0.directory))" })
        }
        let names = Int64(reference) != nil ? index.map { String($0.id) }
            : index.map { URL(fileURLWithPath: $0.directory).lastPathComponent }
        throw RegistryError.noSuchRun(reference: reference, nearMatches: nearMatches(of: reference, among: names))
    }

    static func records(_ db: Database, rows: [Row], includeHistory: Bool) throws -> [RunRecord] {
        var records = try rows.map(record)
        guard !records.isEmpty else { return [] }
        var position: [Int64: Int] = [:]
        for (i, r) in records.enumerated() { position[r.id] = i }
        for chunk in stride(from: 0, to: records.count, by: 500).map({ Array(records[$0..<min($0 + 500, records.count)].map(\.id)) }) {
            let inList = placeholders(chunk.count)
            let arguments = StatementArguments(chunk)
            for row in try Row.fetchAll(db, sql: "SELECT * FROM run_parameter WHERE run_id IN \(inList)", arguments: arguments) {
                guard let i = position[row["run_id"]] else { continue }
                records[i].parameters[row["key"]] = row["value"] as String
            }
            for row in try Row.fetchAll(db, sql: "SELECT * FROM metric WHERE run_id IN \(inList)", arguments: arguments) {
                guard let i = position[row["run_id"]] else { continue }
                records[i].metrics[row["split"], default: [:]][row["name"]] = .some(row["value"] as Double?)
            }
            for row in try Row.fetchAll(db, sql: "SELECT * FROM run_stage WHERE run_id IN \(inList)", arguments: arguments) {
                guard let i = position[row["run_id"]] else { continue }
                records[i].stages[row["stage"]] = row["cache_key"] as String
            }
            guard includeHistory else { continue }
            let cells = try Row.fetchAll(db, sql: "SELECT * FROM history WHERE run_id IN \(inList) ORDER BY run_id, row, position",
                                         arguments: arguments)
            for row in cells {
                guard let i = position[row["run_id"]] else { continue }
                let r: Int = row["row"], p: Int = row["position"]
                if r == 0 && p == records[i].history.columns.count { records[i].history.columns.append(row["column"]) }
                while records[i].history.rows.count <= r { records[i].history.rows.append([]) }
                records[i].history.rows[r].append(row["value"] as Double?)
            }
        }
        return records
    }

    private static func record(_ row: Row) throws -> RunRecord {
        let overridesText: String = row["overrides"] ?? "[]"
        let overrides = (try? JSONDecoder().decode([String].self, from: Data(overridesText.utf8))) ?? []
        let commit: String? = row["git_commit"]
        let status: String = row["status"]
        return RunRecord(
            id: row["id"], name: row["name"], pipeline: row["pipeline"], pipelineSHA256: row["pipeline_sha256"],
            runDirectory: row["run_directory"], status: RunStatus(rawValue: status) ?? .failed, command: row["command"],
            overrides: overrides, parameters: [:], started: row["started"], ended: row["ended"], seconds: row["seconds"],
            seed: UInt64(row["seed"] as String? ?? "") ?? 0, threads: row["threads"], runpipeVersion: row["runpipe_version"],
            git: commit.map { GitState(commit: $0, dirty: row["git_dirty"] ?? false) },
            sweepID: row["sweep_id"], trialIndex: row["trial_index"], errorMessage: row["error_message"],
            metric: row["metric"], resolvedYAML: row["resolved_yaml"], lockJSON: row["lock_json"],
            metrics: [:], stages: [:], history: RunHistory())
    }

    private static func sweep(_ row: Row) -> SweepRecord {
        SweepRecord(id: row["id"], name: row["name"], pipeline: row["pipeline"], directory: row["directory"],
                    method: row["method"], monitor: row["monitor"], mode: row["mode"], trials: row["trials"],
                    status: row["status"], created: row["created"])
    }
}
