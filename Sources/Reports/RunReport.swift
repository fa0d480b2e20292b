import Cache
import Foundation

/// The report of one run folder: what ran (name, problem, metrics, seed, data hashes), how it
/// learned (loss and metric curves), how its predictions look per task (confusion matrix,
/// ROC, precision–recall and calibration for classes; predicted-vs-true and residuals for
/// numbers), and what each column was taken for.
///
/// Figures have fixed ids: `fig-loss`, `fig-metric`, then per task `fig-confusion`,
/// `fig-roc`, `fig-pr`, `fig-calibration` or `fig-scatter`, `fig-residuals` — in a multi-task
/// run with the task's name in between (`fig-species-roc`).
public enum RunReport {
    /// Renders the report of the run in `runFolder`.
    public static func render(runFolder: URL) throws -> ReportDocument {
        let run = try RunFolder(url: runFolder)
        return render(run)
    }

    /// Renders and writes the report to `output` (default `<runFolder>/report.html`),
    /// atomically; an existing file is replaced only if it is a runpipe report. Returns the path.
    @discardableResult
    public static func write(runFolder: URL, output: URL? = nil) throws -> URL {
        let document = try render(runFolder: runFolder)
        let target = output ?? runFolder.appendingPathComponent(Report.fileName)
        try Report.save(document.html, to: target)
        return target
    }

    static func render(_ run: RunFolder) -> ReportDocument {
        var page = Page(title: "\(run.name) — runpipe run report")
        let problems = run.tasks.map { run.tasks.count > 1 ? "\($0.name): \($0.problem)" : $0.problem }
        var subtitle = ["run folder \(run.url.lastPathComponent)"]
        if !problems.isEmpty { subtitle.append(problems.joined(separator: ", ")) }
        let labels = run.tasks.flatMap(\.columns)
        if !labels.isEmpty { subtitle.append("label\(labels.count > 1 ? "s" : "") \(labels.joined(separator: ", "))") }
        if let metric = run.metric { subtitle.append("metric \(metric)") }
        page.title("Run report: \(run.name)", subtitle: subtitle.joined(separator: "  ·  "))
        for file in run.missing { page.note("\(file) is missing from the run folder; its section is left out.") }

        // Summary tables.
        page.tables([metricsTable(run), settingsTable(run)])
        if !run.lock.data.isEmpty { page.tables([dataTable(run.lock)]) }

        // Learning curves.
        page.heading("Learning curves", id: "learning-curves")
        if let history = run.history {
            page.figures(LearningCurves.figures(history: history, metricColumns: metricColumns(run),
                                                bestEpoch: run.bestEpoch, idPrefix: "fig-"))
        } else {
            page.note("No history.csv: nothing to draw.")
        }

        // Predictions, per task.
        var usedSlugs = Set<String>()
        for task in run.tasks {
            // Ids from task names: two names with one slug get a number.
            var taskSlug = slug(task.name)
            while usedSlugs.contains(taskSlug) { taskSlug += "-2" }
            usedSlugs.insert(taskSlug)
            let idPrefix = run.tasks.count > 1 ? "fig-\(taskSlug)-" : "fig-"
            let title = run.tasks.count > 1 ? "Task \(task.name) (\(task.problem))" : "Predictions (\(task.problem))"
            page.heading(title, id: "task-" + taskSlug)
            guard let predictions = run.predictions else {
                page.note("No validation_predictions.csv or test_predictions.csv in the run folder: no prediction plots.")
                continue
            }
            let source = "from \(predictions.file) (the \(predictions.split) split)"
            switch task.problem {
            case "binary", "multiclass":
                guard let rows = ClassifiedRows(table: predictions.table, task: task) else {
                    page.note("\(predictions.file) has no prediction columns for \(task.name).")
                    continue
                }
                guard rows.count > 0 else {
                    page.note("\(predictions.file) has no row with a label and a prediction for \(task.name).")
                    continue
                }
                page.note("\(rows.count) rows with a known \(task.columns.first ?? task.name) \(source); classes \(rows.classes.joined(separator: ", ")).")
                page.figures(ClassificationFigures.figures(rows, idPrefix: idPrefix))
            case "regression":
                guard let rows = RegressedRows(table: predictions.table, task: task) else {
                    page.note("\(predictions.file) has no prediction columns for \(task.name).")
                    continue
                }
                guard !rows.truth.isEmpty else {
                    page.note("\(predictions.file) has no row with a numeric label and prediction for \(task.name).")
                    continue
                }
                page.note("\(rows.truth.count) rows with a known \(task.columns.first ?? task.name) \(source).")
                page.figures(RegressionFigures.figures(rows, idPrefix: idPrefix, label: task.columns.first ?? task.name))
            default:
                page.note("No plots for \(task.problem) tasks yet; see metrics.json.")
            }
        }

        // Columns.
        page.heading("Columns", id: "columns")
        if run.columns.isEmpty {
            page.note("No model/columns.json: the detected modalities are unknown.")
        } else {
            page.tables([columnsTable(run.columns)])
        }
        return page.document()
    }

    /// Which history column the metric panel draws: the monitor when it is not the loss, then
    /// the run's metric (on the first task in a multi-task run), then any validation metric.
    static func metricColumns(_ run: RunFolder) -> [String] {
        var out: [String] = []
        if let m = run.monitor, m != "val.loss" { out.append(m) }
        if let metric = run.metric {
            out.append("val.\(metric)")
            if let first = run.tasks.first, first.namedInPredictions { out.append("val.\(first.name).\(metric)") }
        }
        out += (run.history?.header ?? []).filter { $0.hasPrefix("val.") && $0 != "val.loss" }
        return out
    }

    // MARK: Tables

    static func metricsTable(_ run: RunFolder) -> Table {
        let splits = run.metrics.map(\.split)
        var table = Table(columns: [.init(title: "metric", width: 220)] + splits.map { .init(title: $0, width: 110, numeric: true) })
        var names: [String] = []
        for s in run.metrics { for (n, _) in s.values where !names.contains(n) { names.append(n) } }
        names.sort()
        for name in names {
            var row = [Table.Cell(name)]
            for s in run.metrics {
                let v = s.values.first { $0.name == name }?.value
                row.append(Table.Cell(v.map { formatNumber($0) } ?? "–", tooltip: v.map { String($0) }))
            }
            table.rows.append(row)
        }
        if names.isEmpty { table.rows.append([Table.Cell("no metrics.json")] + splits.map { _ in Table.Cell("") }) }
        return table
    }

    static func settingsTable(_ run: RunFolder) -> Table {
        var table = Table(columns: [.init(title: "setting", width: 130), .init(title: "value", width: 330)])
        func add(_ key: String, _ value: String?) {
            if let value { table.rows.append([Table.Cell(key), Table.Cell(value)]) }
        }
        add("runpipe", run.lock.runpipe)
        add("seed", String(run.lock.seed))
        add("threads", String(run.lock.threads))
        add("created", run.lock.created)
        add("pipeline", run.lock.pipeline)
        add("monitor", run.monitor)
        add("best epoch", run.bestEpoch.map { formatNumber($0) })
        return table
    }

    static func dataTable(_ lock: RunLock) -> Table {
        var table = Table(columns: [.init(title: "data", width: 100), .init(title: "file", width: 420),
                                    .init(title: "sha256", width: 150), .init(title: "bytes", width: 110, numeric: true)])
        for d in lock.data {
            table.rows.append([Table.Cell(d.role), Table.Cell(d.path),
                               Table.Cell(String(d.sha256.prefix(12)), tooltip: d.sha256, style: "mono"),
                               Table.Cell(String(d.bytes))])
        }
        return table
    }

    static func columnsTable(_ columns: [RunFolder.Column]) -> Table {
        var table = Table(columns: [.init(title: "column", width: 240), .init(title: "modality", width: 110),
                                    .init(title: "role", width: 70), .init(title: "missing", width: 110, numeric: true),
                                    .init(title: "why", width: 670)])
        for c in columns {
            let missing = c.missing.map { m in c.rows.map { "\(m) of \($0)" } ?? String(m) } ?? "–"
            table.rows.append([Table.Cell(c.name), Table.Cell(c.modality), Table.Cell(c.isLabel ? "label" : "input"),
                               Table.Cell(missing), Table.Cell(c.reason)])
        }
        return table
    }
}
