import ArgumentParser
import Cache
import Foundation
import Registry

/// Where `runpipe runs` finds the registry: --registry, else RUNPIPE_REGISTRY, else
/// `registry.sqlite` in the cache that --cache-dir / --pipeline (or the defaults) name.
struct RegistryLocation: ParsableArguments {
    @OptionGroup var cache: CacheLocation

    @Option(help: ArgumentHelp("The run registry file (default: RUNPIPE_REGISTRY, else registry.sqlite in the cache folder).",
                               valueName: "FILE"))
    var registry: String?

    var url: URL {
        if let registry, !registry.isEmpty {
            return URL(fileURLWithPath: NSString(string: registry).expandingTildeInPath).standardizedFileURL
        }
        return RunRegistry.defaultURL(cacheRoot: cache.store().root, environment: ProcessInfo.processInfo.environment)
    }

    /// The stage cache the runs used: the one --cache-dir / --pipeline name, else the folder
    /// holding the registry when it is a cache, else the default.
    var store: ContentStore {
        if cache.cacheDir == nil && cache.pipeline == nil {
            let folder = url.deletingLastPathComponent()
            if FileManager.default.fileExists(atPath: folder.appendingPathComponent("objects").path) {
                return ContentStore(root: folder, diagnostics: { logLine("warning: \($0)") })
            }
        }
        return cache.store()
    }

    /// The registry, or nil after saying plainly that there is none or that it is empty (a
    /// missing registry is not created just to list nothing).
    func open(json: Bool) throws -> RunRegistry? {
        let url = self.url
        guard let registry = try RunRegistry.openExisting(url: url) else {
            say("no runs recorded yet: there is no run registry at \(url.path)\n(\(elsewhere))", json: json)
            return nil
        }
        if try registry.isEmpty() {
            say("the run registry \(url.path) records no runs yet", json: json)
            return nil
        }
        return registry
    }

    /// `reference` as a folder when one exists there; else a registry name — a sweep's id (when
    /// `sweeps`), then a run's id, folder name or path. With no registry the path is returned
    /// as given, for the command's own "not a run folder" error.
    func folder(for reference: String, sweeps: Bool) throws -> URL {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: reference, isDirectory: &isDir), isDir.boolValue {
            return URL(fileURLWithPath: reference).standardizedFileURL
        }
        guard let registry = try RunRegistry.openExisting(url: url) else { return URL(fileURLWithPath: reference) }
        if sweeps, let sweep = try registry.sweep(reference) { return URL(fileURLWithPath: sweep.directory) }
        return URL(fileURLWithPath: try registry.run(reference).runDirectory)
    }

    /// The registry, for a command that needs a run in it: an absent or empty one is an error.
    func openRequired() throws -> RunRegistry {
        let url = self.url
        guard let registry = try RunRegistry.openExisting(url: url) else {
            throw RegistryError.refused("no runs recorded yet: there is no run registry at \(url.path)", hint: elsewhere)
        }
        if try registry.isEmpty() {
            throw RegistryError.refused("the run registry \(url.path) records no runs yet",
                                        hint: "`runpipe train` and `runpipe sweep` record their runs there")
        }
        return registry
    }

    private var elsewhere: String {
        "runs are recorded beside the cache of their pipeline; pass --pipeline FILE, --cache-dir DIR or --registry FILE to look elsewhere"
    }

    /// Human text to standard output; with --json to standard error (standard output stays JSON).
    private func say(_ text: String, json: Bool) {
        if json { logLine(text) } else { print(text) }
    }
}

extension Runpipe {
    /// The run registry: what ran, with which settings and results; comparisons and clean-up.
    struct Runs: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "runs",
            abstract: "List, inspect, compare and remove recorded runs.",
            discussion: """
                Every `runpipe train` (and every sweep trial) is recorded in the run registry, an SQLite \
                file beside the stage cache (registry.sqlite). A run can be named by its id, its run-folder \
                name or its run-folder path.
                """,
            subcommands: [List.self, Show.self, Compare.self, Diff.self, Best.self, Remove.self, GC.self])

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Recorded runs, newest first.",
                discussion: "--pipeline both finds the registry beside that pipeline's cache and keeps only its runs.")
            @OptionGroup var location: RegistryLocation
            @Option(help: ArgumentHelp("Only this sweep's trials.", valueName: "ID")) var sweep: String?
            @Option(help: ArgumentHelp("Only runs with this status: \(statusNames).", valueName: "S")) var status: String?
            @Option(help: ArgumentHelp("At most this many runs.", valueName: "N")) var limit: Int?
            @Flag(help: "Print JSON (key-sorted) instead of a table.") var json = false

            func validate() throws {
                if let status, RunStatus(rawValue: status) == nil {
                    throw ValidationError("--status must be one of \(statusNames), got `\(status)`")
                }
                if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, got \(limit)") }
            }

            func run() throws {
                try reportingErrors {
                    guard let registry = try location.open(json: json) else {
                        if json { print("[]") }
                        return
                    }
                    let query = RunQuery(sweepID: sweep, pipeline: location.cache.pipeline,
                                         status: status.flatMap(RunStatus.init(rawValue:)), limit: limit)
                    let runs = try registry.list(query)
                    let monitors = Dictionary(try registry.sweeps().map { ($0.id, $0.monitor) }, uniquingKeysWith: { a, _ in a })
                    if json {
                        try printJSON(runs.map { RunSummary($0, monitor: monitors[$0.sweepID ?? ""]) })
                        return
                    }
                    if runs.isEmpty {
                        print("no recorded run matches these filters (\(registry.url.path))")
                        return
                    }
                    let rows = runs.map { r -> [String] in
                        let metric = monitoredMetric(r, monitor: monitors[r.sweepID ?? ""])
                        return [String(r.id), r.name, r.status.rawValue, formatDate(r.started), formatDuration(r.seconds),
                                metric.map { "\($0.name) \($0.value.map(formatMetric) ?? "nan")" } ?? "",
                                r.sweepID.map { s in r.trialIndex.map { "\(s) #\($0)" } ?? s } ?? "",
                                r.folderName]
                    }
                    print(table(["ID", "NAME", "STATUS", "STARTED", "DURATION", "METRIC", "SWEEP", "FOLDER"], rows, right: [0, 4]))
                }
            }
        }

        struct Show: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Everything about one run.")
            @OptionGroup var location: RegistryLocation
            @Argument(help: ArgumentHelp("The run: id, run-folder name or run-folder path.", valueName: "run")) var reference: String
            @Option(help: ArgumentHelp("History rows to show, from the end (0: all).", valueName: "N")) var historyRows = 10
            @Flag(help: "Print JSON (key-sorted) instead of text.") var json = false

            func run() throws {
                try reportingErrors {
                    let registry = try location.openRequired()
                    let r = try registry.run(reference)
                    if json {
                        try printJSON(r)
                        return
                    }
                    print(describe(r, historyRows: historyRows))
                }
            }
        }

        struct Compare: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Runs side by side: the parameters that differ and every metric (* marks the best).")
            @OptionGroup var location: RegistryLocation
            @Argument(help: "Two or more runs.") var runs: [String]
            @Flag(help: "Print JSON (key-sorted) instead of a table.") var json = false

            func validate() throws {
                if runs.count < 2 { throw ValidationError("compare needs at least two runs, got \(runs.count)") }
            }

            func run() throws {
                try reportingErrors {
                    let registry = try location.openRequired()
                    let records = try registry.runs(runs)
                    let comparison = RunComparison(records)
                    if json {
                        try printJSON(comparison)
                        return
                    }
                    let header = [""] + records.map { "#\($0.id) \($0.folderName)" }
                    var rows: [[String]] = []
                    if comparison.parameters.isEmpty {
                        rows.append(["(same parameters)"] + records.map { _ in "" })
                    }
                    for p in comparison.parameters { rows.append([p.key] + p.values.map { $0 ?? "—" }) }
                    rows.append(header.map { _ in "" })
                    for m in comparison.metrics {
                        let label = (m.split == "validation" ? "val" : m.split) + "." + m.name + (m.mode == .min ? " ↓" : " ↑")
                        rows.append([label] + m.values.indices.map { i in
                            (m.values[i].map(formatMetric) ?? "nan") + (m.best.contains(i) && m.best.count < m.values.count ? " *" : "")
                        })
                    }
                    print(table(header, rows, right: Set(1..<header.count)))
                }
            }
        }

        struct Diff: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "What differs between two runs: resolved pipeline key by key, data and checkpoint hashes, seed, threads, version, stage keys, metrics.")
            @OptionGroup var location: RegistryLocation
            @Argument(help: "The first run.") var first: String
            @Argument(help: "The second run.") var second: String
            @Flag(help: "Print JSON (key-sorted) instead of text.") var json = false

            func run() throws {
                try reportingErrors {
                    let registry = try location.openRequired()
                    let pair = try registry.runs([first, second])
                    let diff = RunDiff(pair[0], pair[1])
                    if json {
                        try printJSON(diff)
                        return
                    }
                    print("#\(pair[0].id) \(pair[0].folderName) → #\(pair[1].id) \(pair[1].folderName)")
                    if diff.isEmpty {
                        print("no differences")
                        return
                    }
                    for section in diff.sections where !section.changes.isEmpty || section.note != nil {
                        print("\(section.name):")
                        if let note = section.note { print("  (\(note))") }
                        for c in section.changes {
                            let place = c.path.isEmpty ? "value" : c.path
                            switch c.kind {
                            case "added": print("  + \(place): \(c.new ?? "")")
                            case "removed": print("  - \(place): \(c.old ?? "")")
                            default: print("  ~ \(place): \(c.old ?? "") → \(c.new ?? "")")
                            }
                        }
                    }
                }
            }
        }

        struct Best: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "A sweep's best finished or stopped trial and its run folder.")
            @OptionGroup var location: RegistryLocation
            @Argument(help: "The sweep id.") var sweep: String
            @Option(help: ArgumentHelp("The metric: val.<name>, test.<name> or a validation metric's name.", valueName: "M"))
            var metric: String
            @Option(help: ArgumentHelp("max or min (default: min for loss/error/rmse/mae/mse/log_loss, else max).", valueName: "MODE"))
            var mode: String?
            @Flag(help: "Print JSON (key-sorted) instead of text.") var json = false

            func validate() throws {
                if let mode, MetricMode(rawValue: mode) == nil { throw ValidationError("--mode must be max or min, got `\(mode)`") }
            }

            func run() throws {
                try reportingErrors {
                    let registry = try location.openRequired()
                    let best = try registry.best(sweep: sweep, metric: metric, mode: mode.flatMap(MetricMode.init(rawValue:)))
                    if json {
                        try printJSON(BestSummary(best))
                        return
                    }
                    let trial = best.run.trialIndex.map { ", trial \($0)" } ?? ""
                    print("best of sweep \(sweep) by \(metric) (\(best.mode.rawValue)): run \(best.run.id)\(trial), \(formatMetric(best.value))\(best.run.status == .stopped ? " (stopped early)" : "")")
                    print(best.run.runDirectory)
                }
            }
        }

        struct Remove: ParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "rm",
                abstract: "Remove runs: their records, their folders and the cache entries no other recorded run uses.")
            @OptionGroup var location: RegistryLocation
            @Argument(help: "The runs: ids, run-folder names or paths.") var runs: [String]
            @Flag(help: "Keep the run folders; remove only the records and unshared cache entries.") var keepFiles = false
            @Flag(help: "Say what would be removed; remove nothing.") var dryRun = false
            @Flag(help: "Also remove runs recorded as running (when their process is gone).") var force = false
            @Flag(help: "Print JSON (key-sorted) instead of text.") var json = false

            func validate() throws {
                if runs.isEmpty { throw ValidationError("name at least one run to remove (see `runpipe runs list`)") }
            }

            func run() throws {
                try reportingErrors {
                    let registry = try location.openRequired()
                    let ids = try registry.runs(runs).map(\.id)
                    let report = try registry.remove(ids: ids, store: location.store, keepFiles: keepFiles,
                                                     dryRun: dryRun, force: force)
                    try printReport(report, json: json)
                }
            }
        }

        struct GC: ParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "gc",
                abstract: "Forget runs whose folders are gone and free the cache entries only they used.")
            @OptionGroup var location: RegistryLocation
            @Flag(help: "Say what would be removed; remove nothing.") var dryRun = false
            @Flag(help: "Print JSON (key-sorted) instead of text.") var json = false

            func run() throws {
                try reportingErrors {
                    guard let registry = try location.open(json: json) else {
                        if json { try printJSON(RemovalReport(dryRun: dryRun, runs: [], cacheKeysRemoved: [], cacheBytesFreed: 0, cacheKeysShared: 0)) }
                        return
                    }
                    let report = try registry.collectGarbage(store: location.store, dryRun: dryRun)
                    if report.runs.isEmpty && !json {
                        print("every recorded run's folder is in place; nothing to collect")
                        return
                    }
                    try printReport(report, json: json)
                }
            }
        }
    }
}

// MARK: - Output

private let statusNames = RunStatus.allCases.map(\.rawValue).joined(separator: ", ")

/// One line of `runs list --json`.
private struct RunSummary: Encodable {
    var id: Int64
    var name: String
    var status: String
    var started: Date
    var ended: Date?
    var seconds: Double?
    var metric: String?
    var value: Double?
    var sweep_id: String?
    var trial_index: Int?
    var run_directory: String
    var pipeline: String

    init(_ r: RunRecord, monitor: String?) {
        let m = monitoredMetric(r, monitor: monitor)
        id = r.id; name = r.name; status = r.status.rawValue; started = r.started; ended = r.ended; seconds = r.seconds
        metric = m?.name; value = m?.value ?? nil
        sweep_id = r.sweepID; trial_index = r.trialIndex; run_directory = r.runDirectory; pipeline = r.pipeline
    }

    func encode(to encoder: Encoder) throws {
        // Explicit so that absent values are written as null (a stable set of keys).
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id); try c.encode(name, forKey: .name); try c.encode(status, forKey: .status)
        try c.encode(started, forKey: .started); try c.encode(ended, forKey: .ended); try c.encode(seconds, forKey: .seconds)
        try c.encode(metric, forKey: .metric); try c.encode(value, forKey: .value); try c.encode(sweep_id, forKey: .sweep_id)
        try c.encode(trial_index, forKey: .trial_index); try c.encode(run_directory, forKey: .run_directory)
        try c.encode(pipeline, forKey: .pipeline)
    }

    enum CodingKeys: String, CodingKey {
        case id, name, status, started, ended, seconds, metric, value, sweep_id, trial_index, run_directory, pipeline
    }
}

private struct BestSummary: Encodable {
    var sweep_id: String
    var metric: String
    var mode: String
    var value: Double
    var run_id: Int64
    var trial_index: Int?
    var status: String
    var run_directory: String

    init(_ b: BestTrial) {
        sweep_id = b.sweepID; metric = b.metric; mode = b.mode.rawValue; value = b.value; run_id = b.run.id
        trial_index = b.run.trialIndex; status = b.run.status.rawValue; run_directory = b.run.runDirectory
    }
}

/// The metric a run is judged by: its sweep's monitor, else its pipeline's `metric:`, else its
/// first validation metric. The value is nil for NaN.
private func monitoredMetric(_ r: RunRecord, monitor: String?) -> (name: String, value: Double?)? {
    for candidate in [monitor, r.metric].compactMap({ $0 }) {
        if let value = r.metricValue(candidate) { return (candidate, value) }
    }
    guard let first = r.metrics["validation"]?.keys.sorted().first else { return nil }
    return (first, r.metrics["validation"]?[first] ?? nil)
}

private func describe(_ r: RunRecord, historyRows: Int) -> String {
    var lines: [String] = []
    var facts: [[String]] = [
        ["folder", r.runDirectory],
        ["pipeline", r.pipeline + (r.pipelineSHA256.map { "  (sha256 \($0.prefix(12))…)" } ?? "")],
        ["command", ([r.command] + r.overrides.flatMap { ["--set", $0] }).joined(separator: " ")],
        ["started", formatDate(r.started) + (r.ended.map { "   ended \(formatDate($0))" } ?? "") + "   (\(formatDuration(r.seconds)))"],
        ["git", r.git.map { String($0.commit.prefix(12)) + ($0.dirty ? " (pipeline file has uncommitted changes)" : "") } ?? "—"],
        ["runpipe", (r.runpipeVersion ?? "—") + "   seed \(r.seed)   threads \(r.threads)"],
    ]
    if let sweep = r.sweepID { facts.append(["sweep", sweep + (r.trialIndex.map { ", trial \($0)" } ?? "")]) }
    if let error = r.errorMessage { facts.append(["error", error]) }
    lines.append("run \(r.id)  \(r.name)  \(r.status.rawValue)")
    lines.append(table(nil, facts, indent: "  "))

    if !r.parameters.isEmpty {
        lines.append("\nparameters")
        lines.append(table(nil, r.parameters.sorted { $0.key < $1.key }.map { [$0.key, $0.value] }, indent: "  "))
    }
    if !r.metrics.isEmpty {
        let splits = r.metrics.keys.sorted { ($0 == "validation" ? 0 : $0 == "test" ? 1 : 2, $0) < ($1 == "validation" ? 0 : $1 == "test" ? 1 : 2, $1) }
        let names = Set(r.metrics.values.flatMap(\.keys)).sorted()
        lines.append("\nmetrics")
        lines.append(table(["metric"] + splits, names.map { n in [n] + splits.map { s in
            r.metrics[s]?[n].map { $0.map(formatMetric) ?? "nan" } ?? "" } }, right: Set(1...splits.count), indent: "  "))
    }
    if let lock = r.lockJSON.flatMap({ try? JSONValue(parsing: Data($0.utf8)) }) {
        let data = (lock["data"]?.arrayValue ?? []).map { d in
            [d["role"]?.stringValue ?? "", d["path"]?.stringValue ?? "", String((d["sha256"]?.stringValue ?? "").prefix(12)) + "…",
             d["bytes"]?.intValue.map { formatSize($0) } ?? ""]
        }
        if !data.isEmpty {
            lines.append("\ndata")
            lines.append(table(nil, data, right: [3], indent: "  "))
        }
        let checkpoints = (lock["checkpoints"]?.arrayValue ?? []).map { c in
            [c["role"]?.stringValue ?? "", c["path"]?.stringValue ?? "",
             "weights " + String((c["weights_sha256"]?.stringValue ?? "").prefix(12)) + "…",
             c["tokenizer_sha256"]?.stringValue.map { "tokenizer " + $0.prefix(12) + "…" } ?? ""]
        }
        if !checkpoints.isEmpty {
            lines.append("\ncheckpoints")
            lines.append(table(nil, checkpoints, indent: "  "))
        }
    }
    if !r.history.rows.isEmpty {
        let shown = historyRows <= 0 ? r.history.rows : Array(r.history.rows.suffix(historyRows))
        let title = shown.count == r.history.rows.count ? "history" : "history (last \(shown.count) of \(r.history.rows.count) rows; --history-rows 0 shows all)"
        lines.append("\n" + title)
        lines.append(table(r.history.columns, shown.map { $0.map { $0.map(formatNumber) ?? "nan" } },
                           right: Set(r.history.columns.indices), indent: "  "))
    }
    if !r.stages.isEmpty {
        lines.append("\nstages")
        lines.append(table(nil, r.stages.sorted { $0.key < $1.key }.map { [$0.key, $0.value] }, indent: "  "))
    }
    return lines.joined(separator: "\n")
}

private func printReport(_ report: RemovalReport, json: Bool) throws {
    if json {
        try printJSON(report)
        return
    }
    let verb = report.dryRun ? "would remove" : "removed"
    for r in report.runs {
        let folder = r.folderRemoved ? "folder \(r.runDirectory) (\(formatSize(r.folderBytes)))" : "folder \(r.note ?? "kept")"
        print("\(verb) run \(r.id) (\(r.name)): \(folder)")
    }
    let folders = report.runs.filter(\.folderRemoved).count
    var summary = "\(report.dryRun ? "would free" : "freed") \(report.cacheKeysRemoved.count) cache entr\(report.cacheKeysRemoved.count == 1 ? "y" : "ies") (\(formatSize(report.cacheBytesFreed)))"
    summary += " and \(folders) run folder\(folders == 1 ? "" : "s") (\(formatSize(report.folderBytesFreed)))"
    if report.cacheKeysShared > 0 {
        summary += "; kept \(report.cacheKeysShared) cache entr\(report.cacheKeysShared == 1 ? "y" : "ies") that other recorded runs use"
    }
    print(summary)
}

private func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Aligned columns; `right` holds the indices of right-aligned columns.
func table(_ header: [String]?, _ rows: [[String]], right: Set<Int> = [], indent: String = "") -> String {
    let all = (header.map { [$0] } ?? []) + rows
    let count = all.map(\.count).max() ?? 0
    var widths = [Int](repeating: 0, count: count)
    for row in all { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
    return all.map { row in
        let cells = row.enumerated().map { i, cell -> String in
            let gap = String(repeating: " ", count: widths[i] - cell.count)
            return right.contains(i) ? gap + cell : (i == row.count - 1 ? cell : cell + gap)
        }
        return indent + cells.joined(separator: "  ")
    }.joined(separator: "\n")
}

private func formatDate(_ date: Date) -> String {
    let f = DateFormatter()
    f.locale = Locale(identifier: "en_US_POSIX")
    f.dateFormat = "yyyy-MM-dd HH:mm:ss"
    return f.string(from: date)
}

private func formatDuration(_ seconds: Double?) -> String {
    guard let s = seconds else { return "—" }
    if s < 60 { return String(format: "%.1f s", s) }
    let total = Int(s.rounded())
    if total < 3600 { return String(format: "%dm%02ds", total / 60, total % 60) }
    return String(format: "%dh%02dm", total / 3600, (total % 3600) / 60)
}

private func formatMetric(_ value: Double) -> String { String(format: "%.4f", value) }

private func formatNumber(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e9 ? String(Int(value)) : String(format: "%.6g", value)
}
