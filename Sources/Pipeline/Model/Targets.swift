import Foundation
import Spec
import Tables
import TensorEngine
import Training

// Several label columns at once, and multi-label tasks. A pipeline with one label column that
// is binary, multiclass or regression keeps the single-task path (`FittedProcessors.label…`,
// `TaskHead`'s loss) and has no `TargetLayout`; everything else goes through the layout here:
//
// - each task owns a block of the network's logits (classes, 1 for regression, one per label
//   for multi-label) — one head per task, stored as row blocks of one `head` matrix, which is
//   the same function as separate linear heads since each task's logits read only its rows;
// - each row's targets are a block of floats per task (class index, standardised value, or
//   one 0/1 indicator per label); NaN marks a missing label, and a row trains and scores only
//   when every task has its label;
// - the loss is the sum of the tasks' mean losses (cross-entropy, MSE on standardised
//   targets, binary cross-entropy with logits), each times its `data.label_weights` weight (1
//   by default);
// - metrics are per task, `<task>.<metric>` (`val.species.accuracy`), except for a single
//   multi-label task, whose keys stay `<metric>`.

/// How `problem` was settled for one task (the `infer` stage).
struct TaskInference: Codable, Equatable {
    /// The task's name: its column, or `labels` for the binary columns of a multi-label task.
    var name: String
    /// The columns the task reads.
    var columns: [String]
    var problem: ProblemInference
}

/// One task: what it reads, how its targets are encoded, and its block of logits.
struct TargetTask: Codable, Equatable {
    /// The task's name (its column, or `labels` for several binary columns).
    var name: String
    var problem: ProblemType
    /// Binary, multiclass or regression tasks.
    var label: LabelProcessor?
    /// Multi-label tasks.
    var multilabel: MultiLabelProcessor?
    /// The task's weight in the summed loss; nil means 1.
    var weight: Double? = nil

    /// Logits of the task.
    var outputs: Int {
        if let multilabel { return multilabel.labelCount }
        return problem == .regression ? 1 : (label?.classCount ?? 0)
    }

    /// Target floats per row.
    var width: Int { multilabel?.labelCount ?? 1 }

    /// The columns the task reads.
    var columns: [String] { multilabel?.columns ?? [label?.column ?? name] }
}

/// The tasks of a pipeline with several label columns or a multi-label task, in label order.
struct TargetLayout: Codable, Equatable {
    var tasks: [TargetTask]
    /// What joins predicted labels in the predictions file.
    var separator: String

    /// The name `processors.json` and `model.json` give the task of several binary columns.
    static let multilabelTaskName = "labels"

    /// Logits per row, over every task.
    var outputCount: Int { tasks.reduce(0) { $0 + $1.outputs } }
    /// Target floats per row, over every task.
    var targetWidth: Int { tasks.reduce(0) { $0 + $1.width } }
    /// Whether metric keys name their task.
    var namesTasks: Bool { tasks.count > 1 }
    /// Every label column.
    var labelColumns: [String] { tasks.flatMap(\.columns) }

    /// Each task's first logit and first target float.
    var offsets: [(logit: Int, target: Int)] {
        var out: [(Int, Int)] = []
        var l = 0, t = 0
        for task in tasks {
            out.append((l, t))
            l += task.outputs
            t += task.width
        }
        return out
    }

    /// The metric-key prefix of a task: `<task>.` when the layout names tasks, else empty.
    func prefix(_ task: TargetTask) -> String { namesTasks ? task.name + "." : "" }

    // MARK: - Inference and fitting

    /// The tasks of `spec` and their problem types, read from the training table.
    /// - Throws: a located `PipelineError` for a missing column (did-you-mean), a `problem`
    ///   the column cannot have, a non-binary column of a multi-label task (with sample
    ///   values) or a label-set column without labels.
    static func infer(_ spec: PipelineSpec, table: Table) throws -> [TaskInference] {
        let location = spec.sources["data.label"]
        for (i, column) in spec.data.labels.enumerated() {
            try located(spec.sources["data.label[\(i)]"] ?? location) { _ = try table.requireColumn(named: column, role: "label") }
        }
        if spec.problem == .fixed(.multilabel) {
            return [try inferMultilabel(spec, table: table, columns: spec.data.labels)]
        }
        return try spec.data.labels.enumerated().map { i, column in
            let forced = spec.problem.problem(for: column)
            let at = spec.sources["problem.\(column)"] ?? spec.sources["data.label[\(i)]"] ?? location
            if forced == .multilabel { return try inferMultilabel(spec, table: table, columns: [column], at: at) }
            let p = try located(at) { try ProblemInference.infer(table: table, label: column, forced: forced) }
            return TaskInference(name: column, columns: [column], problem: p)
        }
    }

    private static func inferMultilabel(_ spec: PipelineSpec, table: Table, columns: [String],
                                        at: SourceLocation? = nil) throws -> TaskInference {
        let processor = try located(at ?? spec.sources["problem"] ?? spec.sources["data.label"]) {
            try MultiLabelProcessor.fit(table, source: source(spec, columns))
        }
        let layout = columns.count == 1 ? "a column of label sets (separator '\(spec.data.labelSeparator)' or JSON lists)"
            : "\(columns.count) binary columns"
        let shown = processor.labels.prefix(10).joined(separator: ", ") + (processor.labelCount > 10 ? ", …" : "")
        let problem = ProblemInference(problem: .multilabel, rule: "forced",
                                       reason: "set to multilabel in the pipeline: \(layout), \(processor.labelCount) labels (\(shown))",
                                       classCount: processor.labelCount,
                                       evidence: [Evidence("labels", "\(processor.labelCount)")])
        return TaskInference(name: columns.count == 1 ? columns[0] : multilabelTaskName, columns: columns, problem: problem)
    }

    private static func source(_ spec: PipelineSpec, _ columns: [String]) -> MultiLabelProcessor.Source {
        columns.count == 1 ? .labelSets(column: columns[0], separator: spec.data.labelSeparator) : .columns(columns)
    }

    /// The tasks fitted on the training rows `train`.
    static func fit(_ spec: PipelineSpec, tasks: [TaskInference], train: Table) throws -> TargetLayout {
        let fitted = try tasks.map { t -> TargetTask in
            let at = spec.sources["problem.\(t.name)"] ?? spec.sources["data.label"]
            if t.problem.problem == .multilabel {
                let p = try located(at) { try MultiLabelProcessor.fit(train, source: source(spec, t.columns)) }
                return TargetTask(name: t.name, problem: .multilabel, label: nil, multilabel: p)
            }
            let column = t.columns[0]
            let p = try located(at) {
                try LabelProcessor.fit(train.requireColumn(named: column, role: "label"), problem: t.problem.problem, column: column,
                                       source: train.source, lineNumbers: train.lineNumbers)
            }
            return TargetTask(name: t.name, problem: t.problem.problem, label: p, multilabel: nil)
        }
        return TargetLayout(tasks: fitted, separator: spec.data.labelSeparator)
    }

    /// The layout with each named task's loss weight (`data.label_weights`; others weigh 1).
    func weighted(_ weights: [String: Double]) -> TargetLayout {
        var out = self
        for i in out.tasks.indices { out.tasks[i].weight = weights[out.tasks[i].name] }
        return out
    }

    // MARK: - Encoding

    /// Targets of every row of `part`, row-major [rows × targetWidth] (NaN: missing label), and
    /// the unknown labels of label-set columns with their counts. With `requireLabels`, an absent
    /// label column is an error; otherwise its targets are NaN.
    func encode(_ part: Table, requireLabels: Bool) throws -> (targets: [Float], unknown: [String: Int]) {
        let n = part.rowCount, w = targetWidth
        var out = [Float](repeating: .nan, count: n * w)
        var unknown: [String: Int] = [:]
        for (task, offset) in zip(tasks, offsets) {
            if let m = task.multilabel {
                let (values, u) = try m.encode(part, requireColumns: requireLabels)
                unknown.merge(u.map { ("\(task.name): \($0.key)", $0.value) }) { $0 + $1 }
                for r in 0..<n {
                    for j in 0..<task.width { out[r * w + offset.target + j] = values[r * task.width + j] }
                }
            } else if let l = task.label {
                guard let cells = requireLabels ? try part.requireColumn(named: l.column, role: "label") : part.column(named: l.column) else {
                    continue
                }
                for r in 0..<n {
                    guard let cell = cells[r] else { continue }
                    out[r * w + offset.target] = try l.encode(cell, source: part.source, line: part.lineNumbers[r])
                }
            }
        }
        // A row trains and scores only when every task has its label.
        for r in 0..<n where out[(r * w)..<((r + 1) * w)].contains(where: \.isNaN) {
            for j in 0..<w { out[r * w + j] = .nan }
        }
        return (out, unknown)
    }

    // MARK: - Loss and outputs

    /// The weighted sum of the tasks' mean losses over a batch: `logits` [B, outputCount],
    /// `targets` row-major [B × targetWidth] without NaN.
    func loss(_ logits: Tensor, targets: [Float]) throws -> Tensor {
        let b = logits.shape[0], w = targetWidth
        guard logits.rank == 2, logits.shape[1] == outputCount, targets.count == b * w else {
            throw PipelineError.internalInconsistency(
                "logits \(logits.shape) and \(targets.count) targets do not fit \(tasks.count) tasks of \(outputCount) outputs")
        }
        var total: Tensor?
        for (task, offset) in zip(tasks, offsets) {
            let block = try logits.slice(axis: 1, start: offset.logit, end: offset.logit + task.outputs)
            let column = { (j: Int) in (0..<b).map { targets[$0 * w + offset.target + j] } }
            var l: Tensor
            switch task.problem {
            case .binary, .multiclass:
                l = try crossEntropy(block, targets: column(0).map { Int($0) })
            case .regression:
                l = try mseLoss(block, try Tensor(column(0), shape: [b, 1]))
            case .multilabel:
                var y = [Float](repeating: 0, count: b * task.width)
                for r in 0..<b {
                    for j in 0..<task.width { y[r * task.width + j] = targets[r * w + offset.target + j] }
                }
                l = try binaryCrossEntropyWithLogits(block, targets: try Tensor(y, shape: [b, task.width]))
            }
            if let w = task.weight, w != 1 { l = try l * Float(w) }
            total = try total.map { try $0 + l } ?? l
        }
        guard let total else { throw PipelineError.internalInconsistency("a target layout without tasks") }
        return total
    }

    /// Outputs from logits `[B, outputCount]`, row-major [B × outputCount]: class probabilities
    /// (softmax per task), regression values in the label's units, label probabilities (sigmoid).
    func outputs(_ logits: Tensor) throws -> [Float] {
        let b = logits.shape[0], k = outputCount
        let x = logits.toArray()
        var out = [Float](repeating: 0, count: b * k)
        for (task, offset) in zip(tasks, offsets) {
            for r in 0..<b {
                let s = r * k + offset.logit
                switch task.problem {
                case .binary, .multiclass:
                    let row = x[s..<(s + task.outputs)]
                    let m = row.max() ?? 0
                    var sum: Float = 0
                    for (j, v) in row.enumerated() { out[s + j] = Foundation.exp(v - m); sum += out[s + j] }
                    for j in 0..<task.outputs { out[s + j] /= sum }
                case .regression:
                    out[s] = Float(task.label?.inverse(Double(x[s])) ?? Double(x[s]))
                case .multilabel:
                    for j in 0..<task.outputs { out[s + j] = 1 / (1 + Foundation.exp(-x[s + j])) }
                }
            }
        }
        return out
    }

    // MARK: - Metrics

    /// Each task's metrics over `rows` (positions with labels), keyed `keyPrefix + <task>.<metric>`;
    /// the first task's set is `first` (the run's metric among them), the others' are standard.
    func score(_ values: [Float], targets: [Float], rows: [Int], first: MetricSet, keyPrefix: String) throws -> [String: Double] {
        let k = outputCount, w = targetWidth
        var scores: [String: Double] = [:]
        for (i, (task, offset)) in zip(tasks, offsets).enumerated() {
            let set = i == 0 ? first : MetricSet.standard(for: task.problem)
            let prefix = keyPrefix + self.prefix(task)
            let probs = rows.flatMap { values[($0 * k + offset.logit)..<($0 * k + offset.logit + task.outputs)] }
            let s: [String: Double]
            switch task.problem {
            case .binary, .multiclass:
                s = try set.evaluate(labels: rows.map { Int(targets[$0 * w + offset.target]) }, probabilities: probs,
                                     classCount: task.outputs, keyPrefix: prefix)
            case .regression:
                let l = task.label
                s = try set.evaluate(targets: rows.map { l?.inverse(Double(targets[$0 * w + offset.target])) ?? 0 },
                                     predictions: probs.map(Double.init), keyPrefix: prefix)
            case .multilabel:
                let truth = rows.flatMap { targets[($0 * w + offset.target)..<($0 * w + offset.target + task.width)] }
                s = try set.evaluate(indicators: truth, probabilities: probs, labelCount: task.width, keyPrefix: prefix)
            }
            scores.merge(s) { a, _ in a }
        }
        return scores
    }

    /// The key of `metric` on the first task, without `val.`: `<task>.<metric>` when tasks are
    /// named, else `<metric>`.
    func monitorKey(_ metric: Metric) -> String {
        (tasks.first.map(prefix) ?? "") + metric.rawValue
    }

    // MARK: - Predictions

    /// The predictions file's header after the input columns: per task `<task>_predicted`, then
    /// `<task>_proba_<class>` per class (`proba_<class>` with one task) or `proba_<label>` per label.
    var predictionHeader: [String] {
        var header: [String] = []
        for task in tasks {
            header.append("\(task.name)_predicted")
            let p = namesTasks ? "\(task.name)_proba_" : "proba_"
            switch task.problem {
            case .binary, .multiclass: header += (task.label?.classes ?? []).map { p + $0 }
            case .multilabel: header += (task.multilabel?.labels ?? []).map { p + $0 }
            case .regression: break
            }
        }
        return header
    }

    /// One row's prediction cells from its outputs (`predictionHeader` order): the arg-max class
    /// and probabilities, the value, or the labels at P ≥ 0.5 joined by the separator.
    func predictionCells(_ row: ArraySlice<Float>) -> [String] {
        var cells: [String] = []
        let base = row.startIndex
        for (task, offset) in zip(tasks, offsets) {
            let p = row[(base + offset.logit)..<(base + offset.logit + task.outputs)]
            switch task.problem {
            case .binary, .multiclass:
                var best = p.startIndex
                for j in p.indices where p[j] > p[best] { best = j }
                cells.append(task.label?.decode(best - p.startIndex) ?? "")
                cells += p.map(formatFloat)
            case .regression:
                cells.append(formatFloat(p[p.startIndex]))
            case .multilabel:
                cells.append(task.multilabel?.decode(p, separator: separator) ?? "")
                cells += p.map(formatFloat)
            }
        }
        return cells
    }
}

extension TargetLayout {
    /// Checks a `val.<task>.<metric>` monitor against the tasks: the task exists and computes the metric.
    static func checkMonitor(_ layout: TargetLayout?, task: String, metric: Metric, text: String, key: String,
                             at location: SourceLocation?) throws {
        guard let layout, layout.namesTasks else {
            throw PipelineError("\(key) monitors \(text), but this pipeline has one task", at: location,
                                hint: "monitor val.\(metric.rawValue), val.loss or auto")
        }
        guard let t = layout.tasks.first(where: { $0.name == task }) else {
            let names = layout.tasks.map(\.name)
            throw PipelineError("\(key) monitors \(text), and '\(task)' is not a task\(suggestion(task, names))", at: location,
                                hint: "use val.<task>.<metric> with a task among \(names.joined(separator: ", "))")
        }
        guard metric.problems.contains(t.problem) else {
            throw PipelineError("\(key) monitors \(text), which task '\(task)' (\(t.problem.rawValue)) does not produce", at: location,
                                hint: "monitor one of: \(Metric.standardSet(for: t.problem).map { "val.\(task).\($0.rawValue)" }.joined(separator: ", "))")
        }
    }

    private static func suggestion(_ word: String, _ names: [String]) -> String {
        names.min(by: { editDistance($0, word) < editDistance($1, word) }).flatMap { editDistance($0, word) <= 2 ? "; did you mean '\($0)'?" : nil } ?? ""
    }

    private static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var prev = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var cur = [i] + [Int](repeating: 0, count: b.count)
            for j in stride(from: 1, through: b.count, by: 1) {
                cur[j] = Swift.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            prev = cur
        }
        return prev[b.count]
    }
}

/// The log line for labels of label-set cells that training never saw (they are left out).
func unknownLabelsLine(_ unknown: [String: Int], part: String) -> String {
    let shown = unknown.keys.sorted().prefix(10).map { "'\($0)' ×\(unknown[$0] ?? 0)" }.joined(separator: ", ")
    return "  \(part): \(unknown.count) label(s) the training rows never had, left out of the targets: \(shown)"
        + (unknown.count > 10 ? ", …" : "")
}
