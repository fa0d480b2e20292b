import Cache
import Foundation

/// Runs side by side (`runpipe runs compare`): the parameters that differ and every metric, with
/// the best value of each metric row marked.
public struct RunComparison: Codable, Equatable, Sendable {
    public struct ParameterRow: Codable, Equatable, Sendable {
        public var key: String
        /// One value per run, nil where the run does not set it.
        public var values: [String?]
    }
    public struct MetricRow: Codable, Equatable, Sendable {
        public var split: String
        public var name: String
        public var values: [Double?]
        public var mode: MetricMode
        /// Indices (into `runs`) of the best value; several when tied, none when no value.
        public var best: [Int]
    }

    public var runs: [Int64]
    public var parameters: [ParameterRow]
    public var metrics: [MetricRow]

    public init(_ records: [RunRecord]) {
        runs = records.map(\.id)
        let settings = records.map(Self.settings)
        let keys = Set(settings.flatMap(\.keys)).sorted()
        parameters = keys.compactMap { key in
            let values = settings.map { $0[key] }
            return Set(values.map { $0 ?? "\u{0}" }).count > 1 ? ParameterRow(key: key, values: values) : nil
        }
        var names = Set<[String]>()
        for r in records { for (split, values) in r.metrics { for name in values.keys { names.insert([split, name]) } } }
        let order = ["validation": 0, "test": 1]
        metrics = names.sorted { (order[$0[0]] ?? 2, $0[0], $0[1]) < (order[$1[0]] ?? 2, $1[0], $1[1]) }.map { key in
            let values = records.map { $0.metrics[key[0]]?[key[1]] ?? nil }
            let mode = MetricMode.default(for: key[1])
            let present = values.compactMap { $0 }
            var best: [Int] = []
            if let top = present.dropFirst().reduce(present.first, { acc, v in acc.map { mode.prefers(v, over: $0) ? v : $0 } }) {
                best = values.indices.filter { values[$0] == top }
            }
            return MetricRow(split: key[0], name: key[1], values: values, mode: mode, best: best)
        }
    }

    /// What a run set: its `--set` flags (key=value), its sweep parameters, seed and threads.
    static func settings(_ r: RunRecord) -> [String: String] {
        var result: [String: String] = ["seed": String(r.seed), "threads": String(r.threads)]
        for flag in r.overrides {
            guard let eq = flag.firstIndex(of: "=") else { continue }
            result[String(flag[..<eq])] = String(flag[flag.index(after: eq)...])
        }
        result.merge(r.parameters) { _, sweep in sweep }
        return result
    }
}

/// What differs between two runs (`runpipe runs diff`), section by section.
public struct RunDiff: Codable, Equatable, Sendable {
    public struct Change: Codable, Equatable, Sendable {
        public var path: String
        /// `added`, `removed` or `changed` (from the first run to the second).
        public var kind: String
        public var old: String?
        public var new: String?
    }
    public struct Section: Codable, Equatable, Sendable {
        /// `pipeline`, `data`, `checkpoints`, `run`, `stages`, `metrics`.
        public var name: String
        public var changes: [Change]
        /// Why the section could not be compared, when it could not.
        public var note: String?
    }

    public var runs: [Int64]
    public var sections: [Section]

    public var isEmpty: Bool { sections.allSatisfy { $0.changes.isEmpty && $0.note == nil } }

    public init(_ a: RunRecord, _ b: RunRecord) {
        runs = [a.id, b.id]
        var sections: [Section] = []

        var pipelineNote: String?
        var pipelineChanges: [Change] = []
        switch (a.resolvedYAML.map { try? yamlValue($0) }, b.resolvedYAML.map { try? yamlValue($0) }) {
        case let (x??, y??): pipelineChanges = Self.changes(from: x, to: y)
        case (nil, _), (_, nil): pipelineNote = "a run that did not finish has no resolved pipeline"
        default: pipelineNote = "a resolved.yaml does not parse"
        }
        sections.append(Section(name: "pipeline", changes: pipelineChanges, note: pipelineNote))

        let lockA = a.lockJSON.flatMap { try? JSONValue(parsing: Data($0.utf8)) }
        let lockB = b.lockJSON.flatMap { try? JSONValue(parsing: Data($0.utf8)) }
        for (name, field) in [("data", "data"), ("checkpoints", "checkpoints")] {
            sections.append(Section(name: name, changes: Self.changes(from: Self.byRole(lockA?[field]), to: Self.byRole(lockB?[field])),
                                    note: lockA == nil || lockB == nil ? "a run that did not finish has no lock.json" : nil))
        }
        sections.append(Section(name: "run", changes: Self.changes(from: Self.runFacts(a), to: Self.runFacts(b)), note: nil))
        sections.append(Section(name: "stages", changes: Self.changes(from: .object(a.stages.mapValues { .string($0) }),
                                                                       to: .object(b.stages.mapValues { .string($0) })), note: nil))
        sections.append(Section(name: "metrics", changes: Self.changes(from: Self.metrics(a), to: Self.metrics(b)), note: nil))
        self.sections = sections
    }

    private static func changes(from a: JSONValue, to b: JSONValue) -> [Change] {
        b.differences(from: a).map { d in
            let kind: String
            switch d.kind {
            case .added: kind = "added"
            case .removed: kind = "removed"
            case .changed: kind = "changed"
            }
            return Change(path: d.path, kind: kind, old: d.old, new: d.new)
        }
    }

    /// `[{role: train, path, sha256, bytes}, …]` → `{train: {path, sha256, bytes}}`.
    private static func byRole(_ list: JSONValue?) -> JSONValue {
        var object: [String: JSONValue] = [:]
        for (i, item) in (list?.arrayValue ?? []).enumerated() {
            var fields = item.objectValue ?? [:]
            let role = fields.removeValue(forKey: "role")?.stringValue ?? "#\(i)"
            object[role] = .object(fields)
        }
        return .object(object)
    }

    private static func runFacts(_ r: RunRecord) -> JSONValue {
        var facts: [String: JSONValue] = [
            "seed": .string(String(r.seed)), "threads": .int(Int64(r.threads)),
            "pipeline": .string(r.pipeline), "status": .string(r.status.rawValue),
        ]
        if let v = r.runpipeVersion { facts["runpipe_version"] = .string(v) }
        if let s = r.pipelineSHA256 { facts["pipeline_sha256"] = .string(s) }
        if let g = r.git { facts["git_commit"] = .string(g.commit); facts["git_dirty"] = .bool(g.dirty) }
        return .object(facts)
    }

    private static func metrics(_ r: RunRecord) -> JSONValue {
        .object(r.metrics.mapValues { .object($0.mapValues { $0.map(JSONValue.double) ?? .null }) })
    }
}

/// A sweep's best trial.
public struct BestTrial: Codable, Equatable, Sendable {
    public var sweepID: String
    public var metric: String
    public var mode: MetricMode
    public var value: Double
    public var run: RunRecord

    enum CodingKeys: String, CodingKey {
        case metric, mode, value, run
        case sweepID = "sweep_id"
    }
}

extension RunRegistry {
    /// The finished or stopped trial of `sweep` with the best `metric` (`val.accuracy`,
    /// `test.rmse`, or a bare validation name); `mode` defaults from the metric's name. Ties go
    /// to the lower trial index.
    public func best(sweep: String, metric: String, mode: MetricMode? = nil) throws -> BestTrial {
        let mode = mode ?? MetricMode.default(for: metric)
        let candidates = try runs(sweep: sweep).filter { $0.status == .finished || $0.status == .stopped }
        var best: (RunRecord, Double)?
        for run in candidates {
            guard let value = run.metricValue(metric) ?? nil else { continue }
            if let current = best?.1, !mode.prefers(value, over: current) { continue }
            best = (run, value)
        }
        guard let (run, value) = best else {
            var available = Set<String>()
            for r in candidates {
                for (split, values) in r.metrics { for name in values.keys { available.insert((split == "validation" ? "val" : split) + "." + name) } }
            }
            throw RegistryError.noMetric(sweep: sweep, metric: metric, available: available.sorted())
        }
        return BestTrial(sweepID: sweep, metric: metric, mode: mode, value: value, run: run)
    }
}
