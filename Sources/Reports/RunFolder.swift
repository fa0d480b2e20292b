import Cache
import Foundation
import Yams

/// What a report needs from a run folder (the layout `Pipeline.RunDirectory` writes), read
/// without the Pipeline module. Only `lock.json` must exist; a missing file becomes a note the
/// report shows in place of its section. A file that exists but cannot be parsed is an error.
struct RunFolder {
    static let marker = "lock.json"

    /// One predicted quantity: the single label, or one task of a multi-task run.
    struct Task {
        var name: String
        /// binary, multiclass, regression or multilabel.
        var problem: String
        /// The label column(s) in the data.
        var columns: [String]
        /// Prediction columns are `<name>_predicted`, `<name>_proba_<class>` in a multi-task run.
        var namedInPredictions: Bool
    }

    struct Column {
        var name: String
        var modality: String
        var isLabel: Bool
        var missing: Int?
        var rows: Int?
        var reason: String
    }

    let url: URL
    var name: String
    var metric: String?
    var lock: RunLock
    /// Splits in order (validation, test, then any other), each with its metrics sorted by name.
    var metrics: [(split: String, values: [(name: String, value: Double)])] = []
    var history: CSVTable?
    var monitor: String?
    var bestEpoch: Double?
    var tasks: [Task] = []
    var columns: [Column] = []
    var predictions: (split: String, file: String, table: CSVTable)?
    /// Files that were not there, said in the report where their section would be.
    var missing: [String] = []

    init(url given: URL) throws {
        let url = given.standardizedFileURL
        self.url = url
        let fm = FileManager.default
        func file(_ name: String) -> URL? {
            let u = url.appendingPathComponent(name)
            return fm.fileExists(atPath: u.path) ? u : nil
        }
        guard let lockURL = file(RunFolder.marker) else {
            throw ReportError.missingFile(path: url.appendingPathComponent(RunFolder.marker).path)
        }
        lock = try RunFolder.readLock(lockURL)
        name = url.lastPathComponent

        if let u = file("resolved.yaml") {
            let spec = try RunFolder.readYAML(u)
            if let n = spec?["name"]?.string { name = n }
            metric = spec?["metric"]?.string
        } else {
            missing.append("resolved.yaml")
        }
        if let u = file("metrics.json") { metrics = try RunFolder.readMetrics(u) } else { missing.append("metrics.json") }
        if let u = file("history.csv") { history = try CSVTable(contentsOf: u) } else { missing.append("history.csv") }
        if let u = file("model/summary.json") {
            let summary = try readJSON(u)
            monitor = summary["monitor"]?.stringValue
            bestEpoch = summary["best_epoch"]?.doubleValue
        }
        if let u = file("model/columns.json") {
            (tasks, columns) = try RunFolder.readColumns(u)
        } else {
            missing.append("model/columns.json")
        }
        for (split, fileName) in [("validation", "validation_predictions.csv"), ("test", "test_predictions.csv")] {
            if let u = file(fileName) {
                predictions = (split, fileName, try CSVTable(contentsOf: u))
                break
            }
        }
    }

    // MARK: Files

    static func readLock(_ url: URL) throws -> RunLock {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ReportError.unreadable(path: url.path, reason: error.localizedDescription)
        }
        do { return try JSONDecoder().decode(RunLock.self, from: data) } catch {
            throw ReportError.malformed(path: url.path, detail: "not a run lock: \(error)")
        }
    }

    static func readMetrics(_ url: URL) throws -> [(split: String, values: [(name: String, value: Double)])] {
        guard let splits = try readJSON(url).objectValue else {
            throw ReportError.malformed(path: url.path, detail: "not a JSON object of splits")
        }
        let order = ["validation": 0, "test": 1]
        let names = splits.keys.sorted { (order[$0] ?? 2, $0) < (order[$1] ?? 2, $1) }
        return try names.map { split in
            guard let values = splits[split]?.objectValue else {
                throw ReportError.malformed(path: url.path, detail: "\"\(split)\" is not an object of metrics")
            }
            return (split, values.keys.sorted().map { key in (key, metricValue(values[key])) })
        }
    }

    /// A metric as written: a number, or "nan" / "inf" / "-inf" as a string.
    static func metricValue(_ value: JSONValue?) -> Double {
        if let d = value?.doubleValue { return d }
        if let s = value?.stringValue, let d = parseNumber(s) { return d }
        return .nan
    }

    static func readYAML(_ url: URL) throws -> Node? {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw ReportError.unreadable(path: url.path, reason: error.localizedDescription)
        }
        do { return try Yams.compose(yaml: text) } catch {
            throw ReportError.malformed(path: url.path, detail: "not YAML: \(error)")
        }
    }

    /// The tasks and column summaries of `model/columns.json`.
    static func readColumns(_ url: URL) throws -> ([Task], [Column]) {
        let json = try readJSON(url)
        var tasks: [Task] = []
        if let list = json["tasks"]?.arrayValue, !list.isEmpty {
            for t in list {
                guard let name = t["name"]?.stringValue else {
                    throw ReportError.malformed(path: url.path, detail: "a task without a name")
                }
                let columns = t["columns"]?.arrayValue?.compactMap(\.stringValue) ?? [name]
                tasks.append(Task(name: name, problem: t["problem"]?["problem"]?.stringValue ?? "unknown",
                                  columns: columns, namedInPredictions: list.count > 1))
            }
        }
        let schema = json["schema"]
        if tasks.isEmpty, let label = schema?["label"] {
            let columns = label.stringValue.map { [$0] } ?? label.arrayValue?.compactMap(\.stringValue) ?? []
            if let first = columns.first {
                tasks.append(Task(name: first, problem: json["problem"]?["problem"]?.stringValue ?? "unknown",
                                  columns: columns, namedInPredictions: false))
            }
        }
        let rowCount = schema?["rowCount"]?.intValue.map(Int.init)
        var columns: [Column] = []
        for c in schema?["columns"]?.arrayValue ?? [] {
            var missing: Int?
            var rows = rowCount
            // "non-missing": "273/275"
            if let evidence = c["evidence"]?.arrayValue,
               let cell = evidence.first(where: { $0["label"]?.stringValue == "non-missing" })?["value"]?.stringValue {
                let parts = cell.split(separator: "/").compactMap { Int($0) }
                if parts.count == 2 {
                    missing = parts[1] - parts[0]
                    rows = parts[1]
                }
            }
            columns.append(Column(name: c["name"]?.stringValue ?? "?", modality: c["modality"]?.stringValue ?? "?",
                                  isLabel: c["isLabel"] == .bool(true), missing: missing, rows: rows,
                                  reason: c["reason"]?.stringValue ?? ""))
        }
        return (tasks, columns)
    }
}

/// Parses a JSON file, naming it in errors.
func readJSON(_ url: URL) throws -> JSONValue {
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
        throw ReportError.unreadable(path: url.path, reason: error.localizedDescription)
    }
    do { return try JSONValue(parsing: data, source: url.path) } catch {
        // The parser's message already starts with the path.
        var detail = String(describing: error)
        if detail.hasPrefix(url.path + ": ") { detail.removeFirst(url.path.count + 2) }
        throw ReportError.malformed(path: url.path, detail: detail)
    }
}
