import Cache
import Foundation

/// A sweep folder's `sweep.json` (format `runpipe-sweep-1`), and where its trials' runs are.
struct SweepFolder {
    static let marker = "sweep.json"
    static let format = "runpipe-sweep-1"

    struct Trial {
        var index: Int
        var name: String
        /// Parameter values as the user wrote them ("1e-3", "mlp").
        var parameters: [String: String]
        /// queued, running, finished, failed or stopped (pruned early).
        var status: String
        var runDirectory: String?
        var metrics: [String: Double]
        var seconds: Double?
        var epochs: Int?
        var error: String?
    }

    let url: URL
    var id: String
    var name: String
    var pipeline: String?
    var method: String?
    var monitor: String
    /// "max" or "min".
    var mode: String
    var created: String?
    /// The sweep's own status, when the file has one.
    var status: String?
    /// `--set` flags every trial had.
    var overrides: [String]
    var parameters: [String]
    var trials: [Trial]
    var best: Int?

    init(url given: URL) throws {
        let url = given.standardizedFileURL
        self.url = url
        let file = url.appendingPathComponent(SweepFolder.marker)
        guard FileManager.default.fileExists(atPath: file.path) else { throw ReportError.missingFile(path: file.path) }
        let json = try readJSON(file)
        func fail(_ detail: String) -> ReportError { .malformed(path: file.path, detail: detail) }
        guard json["format"]?.stringValue == SweepFolder.format else {
            throw fail("format is \(json["format"].map { String(describing: $0) } ?? "missing"); expected \"\(SweepFolder.format)\"")
        }
        id = json["id"]?.stringValue ?? url.lastPathComponent
        name = json["name"]?.stringValue ?? id
        pipeline = json["pipeline"]?.stringValue
        method = json["method"]?.stringValue
        guard let monitor = json["monitor"]?.stringValue else { throw fail("no \"monitor\"") }
        self.monitor = monitor
        mode = json["mode"]?.stringValue ?? "max"
        guard mode == "max" || mode == "min" else { throw fail("mode is \"\(mode)\"; expected \"max\" or \"min\"") }
        created = json["created"]?.stringValue
        status = json["status"]?.stringValue
        overrides = json["overrides"]?.arrayValue?.compactMap(\.stringValue) ?? []
        parameters = json["parameters"]?.arrayValue?.compactMap(\.stringValue) ?? []
        best = json["best"]?.intValue.map(Int.init)
        guard let list = json["trials"]?.arrayValue else { throw fail("no \"trials\" list") }
        trials = try list.enumerated().map { k, t in
            guard case .object = t else { throw fail("trials[\(k)] is not an object") }
            var parameters: [String: String] = [:]
            for (key, value) in t["parameters"]?.objectValue ?? [:] {
                switch value {
                case .string(let s): parameters[key] = s
                case .int(let i): parameters[key] = String(i)
                case .double(let d): parameters[key] = String(d)
                case .bool(let b): parameters[key] = String(b)
                default: parameters[key] = ""
                }
            }
            var metrics: [String: Double] = [:]
            for (key, value) in t["metrics"]?.objectValue ?? [:] { metrics[key] = RunFolder.metricValue(value) }
            let index = t["index"]?.intValue.map(Int.init) ?? k
            return Trial(index: index, name: t["name"]?.stringValue ?? String(format: "%03d", index),
                         parameters: parameters, status: t["status"]?.stringValue ?? "unknown",
                         runDirectory: t["run_dir"]?.stringValue, metrics: metrics,
                         seconds: t["seconds"]?.doubleValue, epochs: t["epochs"]?.intValue.map(Int.init),
                         error: t["error"]?.stringValue)
        }
        // Parameters named only in trials still get a column and a plot.
        for t in trials { for key in t.parameters.keys.sorted() where !parameters.contains(key) { parameters.append(key) } }
    }

    /// The trial's monitored value, when it has a finite one.
    func score(_ trial: Trial) -> Double? {
        guard let v = trial.metrics[monitor], v.isFinite else { return nil }
        return v
    }

    /// Trials best first by the monitor; those without a value after, by index.
    var ranked: [Trial] {
        trials.sorted { a, b in
            switch (score(a), score(b)) {
            case let (x?, y?): return x != y ? (mode == "max" ? x > y : x < y) : a.index < b.index
            case (_?, nil): return true
            case (nil, _?): return false
            case (nil, nil): return a.index < b.index
            }
        }
    }

    /// The best trial: `best` from the file, else the top of `ranked` when it has a score.
    var bestTrial: Trial? {
        if let best, let t = trials.first(where: { $0.index == best }) { return t }
        return ranked.first.flatMap { score($0) != nil ? $0 : nil }
    }

    /// The trial's run folder, resolved against the sweep folder.
    func runFolder(_ trial: Trial) -> URL? {
        guard let dir = trial.runDirectory, !dir.isEmpty else { return nil }
        return dir.hasPrefix("/") ? URL(fileURLWithPath: dir) : url.appendingPathComponent(dir)
    }
}
