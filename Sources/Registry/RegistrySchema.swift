import GRDB

/// The registry's tables, one `DatabaseMigrator` migration per schema version. Each migration
/// ends by writing its number to `PRAGMA user_version`, which is what an older runpipe reads to
/// notice a registry it does not understand (before it opens anything for writing).
///
///     run             one row per run: paths, status, times, seed, threads, git, sweep, texts
///     run_parameter   a sweep trial's swept keys → values
///     metric          (run, split, name) → value; NaN is NULL
///     history         history.csv cell by cell: (run, row, position) → column, value
///     run_stage       (run, stage) → cache key, indexed by key for `rm` / `gc`
///     sweep           one row per sweep
enum RegistrySchema {
    /// The newest schema version this runpipe writes and reads.
    static let version = 1
    /// `PRAGMA application_id` of a runpipe registry ("rpip").
    static let applicationID: Int32 = 0x7270_6970

    static let tables: Set<String> = ["run", "run_parameter", "metric", "history", "run_stage", "sweep"]

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: runs, metrics, history, stages, sweeps") { db in
            try db.execute(sql: """
                CREATE TABLE sweep (
                    id TEXT PRIMARY KEY NOT NULL,
                    name TEXT NOT NULL,
                    pipeline TEXT NOT NULL,
                    directory TEXT NOT NULL,
                    method TEXT NOT NULL,
                    monitor TEXT NOT NULL,
                    mode TEXT NOT NULL,
                    trials INTEGER NOT NULL,
                    status TEXT NOT NULL,
                    created DATETIME NOT NULL,
                    updated DATETIME NOT NULL
                );
                CREATE TABLE run (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    name TEXT NOT NULL,
                    pipeline TEXT NOT NULL,
                    pipeline_sha256 TEXT,
                    run_directory TEXT NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'stopped', 'missing')),
                    stopped_early BOOLEAN NOT NULL DEFAULT 0,
                    command TEXT NOT NULL,
                    overrides TEXT NOT NULL DEFAULT '[]',
                    started DATETIME NOT NULL,
                    ended DATETIME,
                    seconds DOUBLE,
                    seed TEXT NOT NULL,
                    threads INTEGER NOT NULL,
                    runpipe_version TEXT,
                    git_commit TEXT,
                    git_dirty BOOLEAN,
                    sweep_id TEXT,
                    trial_index INTEGER,
                    error_message TEXT,
                    metric TEXT,
                    resolved_yaml TEXT,
                    lock_json TEXT
                );
                CREATE INDEX run_by_sweep ON run(sweep_id, trial_index);
                CREATE INDEX run_by_pipeline ON run(pipeline);
                CREATE INDEX run_by_directory ON run(run_directory);
                CREATE TABLE run_parameter (
                    run_id INTEGER NOT NULL REFERENCES run(id) ON DELETE CASCADE,
                    key TEXT NOT NULL,
                    value TEXT NOT NULL,
                    PRIMARY KEY (run_id, key)
                );
                CREATE TABLE metric (
                    run_id INTEGER NOT NULL REFERENCES run(id) ON DELETE CASCADE,
                    split TEXT NOT NULL,
                    name TEXT NOT NULL,
                    value DOUBLE,
                    PRIMARY KEY (run_id, split, name)
                );
                CREATE TABLE history (
                    run_id INTEGER NOT NULL REFERENCES run(id) ON DELETE CASCADE,
                    row INTEGER NOT NULL,
                    position INTEGER NOT NULL,
                    "column" TEXT NOT NULL,
                    value DOUBLE,
                    PRIMARY KEY (run_id, row, position)
                );
                CREATE TABLE run_stage (
                    run_id INTEGER NOT NULL REFERENCES run(id) ON DELETE CASCADE,
                    stage TEXT NOT NULL,
                    cache_key TEXT NOT NULL,
                    PRIMARY KEY (run_id, stage)
                );
                CREATE INDEX run_stage_by_key ON run_stage(cache_key);
                PRAGMA application_id = \(applicationID);
                PRAGMA user_version = 1;
                """)
        }
        return migrator
    }
}
