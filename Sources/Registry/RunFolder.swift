import Cache
import Foundation
import Yams

/// What `RunRegistry.finish` reads from a finished run folder (the layout `RunDirectory` in the
/// Pipeline target documents), `lock.json` decoded as the `RunLock` the writer encodes. Sweeps
/// read their finished trials through it too.
public struct RunFolder {
    static let lockFile = "lock.json"

    var lock: RunLock
    var lockJSON: String
    /// split → metric → value (nil for NaN).
    public var metrics: [String: [String: Double?]]
    public var history: RunHistory
    var resolvedYAML: String?
    /// The pipeline's `metric:` when resolved.yaml names one.
    var metric: String?

    /// Whether `directory` holds a finished run (its `lock.json`, written last).
    static func isFinishedRun(_ directory: String) -> Bool {
        FileManager.default.fileExists(atPath: URL(fileURLWithPath: directory).appendingPathComponent(lockFile).path)
    }

    public static func read(_ directory: URL) throws -> RunFolder {
        let path = directory.path
        func text(_ name: String, required: Bool) throws -> String? {
            let url = directory.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else {
                if required { throw RegistryError.unreadableRun(path: path, detail: "\(name) is missing") }
                return nil
            }
            do {
                return try String(contentsOf: url, encoding: .utf8)
            } catch {
                throw RegistryError.unreadableRun(path: path, detail: "\(name) could not be read as UTF-8 text: \(error.localizedDescription)")
            }
        }

        guard let lockText = try text(lockFile, required: true) else { throw RegistryError.unreadableRun(path: path, detail: "lock.json is missing") }
        let lock: RunLock
        do {
            lock = try JSONDecoder().decode(RunLock.self, from: Data(lockText.utf8))
        } catch {
            throw RegistryError.unreadableRun(path: path, detail: "lock.json does not parse: \(describe(error))")
        }

        var metrics: [String: [String: Double?]] = [:]
        if let metricsText = try text("metrics.json", required: false) {
            metrics = try parseMetrics(metricsText, path: path)
        }
        let history = try text("history.csv", required: false).map { try parseHistory($0, path: path) } ?? RunHistory()
        let resolved = try text("resolved.yaml", required: false)
        return RunFolder(lock: lock, lockJSON: lockText, metrics: metrics, history: history, resolvedYAML: resolved,
                         metric: resolved.flatMap(pipelineMetric))
    }

    /// `{"validation": {"accuracy": 0.8, "f1": "nan"}, …}`; numbers, or "nan"/"inf"/"-inf" strings.
    static func parseMetrics(_ text: String, path: String) throws -> [String: [String: Double?]] {
        let value: JSONValue
        do {
            value = try JSONValue(parsing: Data(text.utf8), source: "metrics.json")
        } catch {
            throw RegistryError.unreadableRun(path: path, detail: "metrics.json does not parse: \(error)")
        }
        guard let splits = value.objectValue else {
            throw RegistryError.unreadableRun(path: path, detail: "metrics.json is not an object of splits")
        }
        var result: [String: [String: Double?]] = [:]
        for (split, entries) in splits {
            guard let entries = entries.objectValue else {
                throw RegistryError.unreadableRun(path: path, detail: "metrics.json: `\(split)` is not an object of metrics")
            }
            var values: [String: Double?] = [:]
            for (name, entry) in entries {
                switch entry {
                case .int(let v): values[name] = Double(v)
                case .double(let v): values[name] = v.isNaN ? nil : v
                case .string(let s): values[name] = Double(s).flatMap { $0.isNaN ? nil : $0 }
                case .null: values[name] = .some(nil)
                default:
                    throw RegistryError.unreadableRun(path: path, detail: "metrics.json: \(split).\(name) is not a number")
                }
            }
            result[split] = values
        }
        return result
    }

    /// `epoch,step,train_loss,…` then one numeric row per validation.
    static func parseHistory(_ text: String, path: String) throws -> RunHistory {
        let lines = text.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.isEmpty }
        guard let header = lines.first else { return RunHistory() }
        let columns = header.split(separator: ",", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        var rows: [[Double?]] = []
        for (offset, line) in lines.dropFirst().enumerated() {
            let cells = line.split(separator: ",", omittingEmptySubsequences: false)
            guard cells.count == columns.count else {
                throw RegistryError.unreadableRun(
                    path: path, detail: "history.csv line \(offset + 2) has \(cells.count) fields, the header \(columns.count)")
            }
            rows.append(cells.map { Double($0.trimmingCharacters(in: .whitespaces)).flatMap { $0.isNaN ? nil : $0 } })
        }
        return RunHistory(columns: columns, rows: rows)
    }

    /// The top-level `metric:` of a resolved pipeline, when it is a single name.
    static func pipelineMetric(_ yaml: String) -> String? {
        guard case .object(let top)? = try? yamlValue(yaml), case .string(let metric)? = top["metric"] else { return nil }
        return metric
    }
}

/// A YAML document as a JSON value (scalars typed by YAML's core schema), for key-by-key diffs.
func yamlValue(_ text: String) throws -> JSONValue {
    guard let node = try Yams.compose(yaml: text) else { return .null }
    return jsonValue(node)
}

private func jsonValue(_ node: Node) -> JSONValue {
    switch node {
    case .scalar(let scalar):
        if scalar.style == .plain {
            if node.null != nil { return .null }
            if let b = node.bool { return .bool(b) }
            if let i = node.int { return .int(Int64(i)) }
            if let d = node.float { return .double(d) }
        }
        return .string(scalar.string)
    case .mapping(let mapping):
        var object: [String: JSONValue] = [:]
        for (key, value) in mapping { object[key.string ?? "\(key)"] = jsonValue(value) }
        return .object(object)
    case .sequence(let sequence):
        return .array(sequence.map(jsonValue))
    case .alias:
        return .string("*alias")
    }
}

private func describe(_ error: Error) -> String {
    switch error {
    case DecodingError.keyNotFound(let key, let context):
        return "missing key `\((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))`"
    case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context),
         DecodingError.dataCorrupted(let context):
        let at = context.codingPath.map(\.stringValue).joined(separator: ".")
        return at.isEmpty ? context.debugDescription : "`\(at)`: \(context.debugDescription)"
    default:
        return String(describing: error)
    }
}
