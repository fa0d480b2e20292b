import Foundation

/// The report of a sweep folder: every trial ranked by the monitored metric, the metric
/// against each swept parameter, all parameters at once as parallel coordinates, and the
/// best trial's learning curves.
///
/// Figures: `fig-param-<parameter>` (one per parameter, in `sweep.json` order),
/// `fig-parallel`, `fig-best-loss`, `fig-best-metric`.
public enum SweepReport {
    public static func render(sweepFolder: URL) throws -> ReportDocument {
        try render(SweepFolder(url: sweepFolder))
    }

    /// Renders and writes the report to `output` (default `<sweepFolder>/report.html`),
    /// atomically; an existing file is replaced only if it is a runpipe report. Returns the path.
    @discardableResult
    public static func write(sweepFolder: URL, output: URL? = nil) throws -> URL {
        let document = try render(sweepFolder: sweepFolder)
        let target = output ?? sweepFolder.appendingPathComponent(Report.fileName)
        try Report.save(document.html, to: target)
        return target
    }

    static func render(_ sweep: SweepFolder) throws -> ReportDocument {
        var page = Page(title: "\(sweep.name) — runpipe sweep report")
        var counts: [String: Int] = [:]
        for t in sweep.trials { counts[t.status, default: 0] += 1 }
        let statusOrder = ["finished", "stopped", "failed", "running", "queued"]
        let statuses = counts.keys.sorted { (statusOrder.firstIndex(of: $0) ?? 9, $0) < (statusOrder.firstIndex(of: $1) ?? 9, $1) }
        var subtitle = ["sweep \(sweep.id)"]
        if let m = sweep.method { subtitle.append("\(m) search") }
        subtitle.append("\(sweep.mode == "max" ? "maximising" : "minimising") \(sweep.monitor)")
        subtitle.append("\(sweep.trials.count) trial\(sweep.trials.count == 1 ? "" : "s"): " +
                        statuses.map { "\(counts[$0] ?? 0) \($0)" }.joined(separator: ", "))
        page.title("Sweep report: \(sweep.name)", subtitle: subtitle.joined(separator: "  ·  "))

        var settings = Table(columns: [.init(title: "setting", width: 130), .init(title: "value", width: 560)])
        func add(_ key: String, _ value: String?) { if let value { settings.rows.append([.init(key), .init(value)]) } }
        add("pipeline", sweep.pipeline)
        add("overrides", sweep.overrides.isEmpty ? nil : sweep.overrides.joined(separator: "  "))
        add("created", sweep.created)
        add("status", sweep.status)
        add("parameters", sweep.parameters.joined(separator: ", "))
        let best = sweep.bestTrial
        add("best trial", best.map { t in "\(t.name): \(sweep.monitor) = \(sweep.score(t).map { formatNumber($0) } ?? "–")" })
        page.tables([settings])

        page.heading("Trials, best first by \(sweep.monitor)", id: "trials")
        page.tables([trialsTable(sweep, best: best)])

        page.heading("\(sweep.monitor) against each parameter", id: "parameters")
        let scored = sweep.trials.filter { sweep.score($0) != nil }
        if scored.isEmpty {
            page.note("No trial has a value of \(sweep.monitor) yet: nothing to plot.")
        } else {
            if scored.count < sweep.trials.count {
                page.note("\(sweep.trials.count - scored.count) trial(s) without a value of \(sweep.monitor) (failed, queued or running) are not plotted.")
            }
            page.figures(sweep.parameters.enumerated().map { parameterFigure(sweep, parameter: $0.element, index: $0.offset, best: best) })
            page.heading("Parallel coordinates", id: "parallel")
            page.figures([parallelCoordinates(sweep, best: best)])
        }

        page.heading("Learning curves of the best trial", id: "best-trial")
        if let best, let folder = sweep.runFolder(best) {
            let historyURL = folder.appendingPathComponent("history.csv")
            if FileManager.default.fileExists(atPath: historyURL.path) {
                let history = try CSVTable(contentsOf: historyURL)
                page.figures(LearningCurves.figures(history: history, metricColumns: metricColumns(sweep, history: history),
                                                    bestEpoch: nil, idPrefix: "fig-best-", titleSuffix: " — trial \(best.name)"))
            } else {
                page.note("Trial \(best.name) has no history.csv at \(best.runDirectory ?? "?")/history.csv.")
            }
        } else {
            page.note(best == nil ? "No best trial yet." : "The best trial has no run folder.")
        }
        return page.document()
    }

    /// The best trial's metric panel: the monitor unless it is the loss (already drawn beside
    /// it), then any other validation metric.
    static func metricColumns(_ sweep: SweepFolder, history: CSVTable) -> [String] {
        let others = history.header.filter { $0.hasPrefix("val.") && $0 != "val.loss" }
        return sweep.monitor == "val.loss" ? others + [sweep.monitor] : [sweep.monitor] + others
    }

    // MARK: Table

    static func trialsTable(_ sweep: SweepFolder, best: SweepFolder.Trial?) -> Table {
        var metricNames = [sweep.monitor]
        // The monitor first, then the other validation metrics, then the rest (test.*).
        let others = Set(sweep.trials.flatMap(\.metrics.keys)).subtracting([sweep.monitor])
            .sorted { ($0.hasPrefix("val.") ? 0 : 1, $0) < ($1.hasPrefix("val.") ? 0 : 1, $1) }
        // Fixed columns take 40 + 60 + 75 + 65 + 80 + 150; parameters and metrics share the rest.
        let fixed = 40 + 60 + 75 + 65 + 80 + 150
        let parameterWidth = sweep.parameters.isEmpty ? 0 : min(150, max(80, (Page.contentWidth - fixed - 110) / 2 / sweep.parameters.count))
        var room = Page.contentWidth - fixed - parameterWidth * sweep.parameters.count - 110
        for m in others where room >= 100 {
            metricNames.append(m)
            room -= 100
        }
        var columns: [Table.Column] = [.init(title: "#", width: 40, numeric: true), .init(title: "trial", width: 60)]
        columns += sweep.parameters.map { .init(title: $0, width: parameterWidth) }
        columns += metricNames.enumerated().map { .init(title: $0.element, width: $0.offset == 0 ? 110 : 100, numeric: true) }
        columns += [.init(title: "seconds", width: 75, numeric: true), .init(title: "epochs", width: 65, numeric: true),
                    .init(title: "status", width: 80), .init(title: "error", width: max(100, 150 + room))]
        var table = Table(columns: columns)
        for (rank, t) in sweep.ranked.enumerated() {
            var row: [Table.Cell] = [.init(String(rank + 1)), .init(t.name)]
            row += sweep.parameters.map { .init(t.parameters[$0] ?? "–") }
            row += metricNames.map { m in .init(t.metrics[m].map { formatNumber($0) } ?? "–", tooltip: t.metrics[m].map { String($0) }) }
            row += [.init(t.seconds.map { formatNumber($0, digits: 3) } ?? "–"), .init(t.epochs.map(String.init) ?? "–"),
                    .init(t.status, style: t.status == "failed" || t.status == "stopped" ? t.status : nil),
                    .init(t.error ?? "", style: t.error == nil ? nil : "failed")]
            if t.index == best?.index { table.highlighted.insert(rank) }
            table.rows.append(row)
        }
        return table
    }

    // MARK: Parameter axes

    /// How a parameter's values lie on an axis: numbers (on a log scale when they span two
    /// decades or more) or categories in order of first appearance.
    enum ParameterAxis {
        case numeric([Double], log: Bool)
        case categorical([String])

        init(values: [String]) {
            let numbers = values.compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
            if !values.isEmpty && numbers.count == values.count && numbers.allSatisfy(\.isFinite) {
                self = .numeric(numbers, log: Scale.spansDecades(numbers))
            } else {
                var seen: [String] = []
                for v in values where !seen.contains(v) { seen.append(v) }
                self = .categorical(seen)
            }
        }

        /// The position of `value` in data coordinates (category index for categories).
        func position(_ value: String) -> Double? {
            switch self {
            case .numeric: return Double(value.trimmingCharacters(in: .whitespaces))
            case .categorical(let names): return names.firstIndex(of: value).map(Double.init)
            }
        }
    }

    static func statusColor(_ status: String) -> String {
        status == "stopped" ? Palette.series(1) : Palette.series(0)
    }

    static func parameterFigure(_ sweep: SweepFolder, parameter: String, index: Int, best: SweepFolder.Trial?) -> SVGFigure {
        let trials = sweep.trials.filter { sweep.score($0) != nil && $0.parameters[parameter] != nil }
        let values = trials.map { $0.parameters[parameter] ?? "" }
        let axis = ParameterAxis(values: values)
        let scores = trials.map { sweep.score($0) ?? .nan }
        let id = "fig-param-" + slug(parameter)
        guard !trials.isEmpty else {
            return placeholderFigure(id: id, title: parameter, message: "no scored trial sets \(parameter)")
        }
        let xDomain: Chart.Domain
        var xs: [Double]
        var title = "\(sweep.monitor) vs \(parameter)"
        switch axis {
        case .numeric(let numbers, let log):
            xDomain = log ? .log(numbers) : .data(numbers)
            xs = numbers
            if log { title += " (log axis)" }
        case .categorical(let names):
            xDomain = .categories(names)
            // A fixed spread within each category, so equal scores stay visible.
            xs = trials.map { t in (axis.position(t.parameters[parameter] ?? "") ?? 0) + jitter(t.index) }
        }
        var chart = Chart(id: id, title: title, xLabel: parameter, yLabel: sweep.monitor, x: xDomain, y: .data(scores))
        chart.legendPlace = sweep.mode == "max" ? .bottomRight : .topRight
        let tips = trials.map { t in "trial \(t.name) (\(t.status)): \(parameter) = \(t.parameters[parameter] ?? ""), \(sweep.monitor) = \(formatNumber(sweep.score(t) ?? .nan))" }
        chart.points(xs: xs, ys: scores, color: Palette.series(0), radius: 4.5, opacity: 0.8,
                     colors: trials.map { statusColor($0.status) }, tooltips: tips, label: "finished")
        if trials.contains(where: { $0.status == "stopped" }) {
            chart.legend.append(.init(label: "stopped early", color: Palette.series(1), point: true))
        }
        if let best, let k = trials.firstIndex(where: { $0.index == best.index }) {
            chart.points(xs: [xs[k]], ys: [scores[k]], color: Palette.series(2), radius: 6.5, opacity: 1,
                         tooltips: [tips[k]], label: "best (trial \(best.name))")
        }
        return chart.figure()
    }

    /// A deterministic horizontal offset in [-0.2, 0.2] for a trial in a category strip.
    static func jitter(_ index: Int) -> Double {
        let k = (index &* 7919) % 17
        return (Double(k) / 16 - 0.5) * 0.4
    }

    // MARK: Parallel coordinates

    static func parallelCoordinates(_ sweep: SweepFolder, best: SweepFolder.Trial?) -> SVGFigure {
        let id = "fig-parallel"
        let width = Page.contentWidth, height = 400
        let trials = sweep.trials.filter { sweep.score($0) != nil }
        let scores = trials.map { sweep.score($0) ?? .nan }
        var s = svgOpen(id: id, width: width, height: height,
                        title: "Parallel coordinates: one line per trial, coloured by \(sweep.monitor)")
        let top = 60.0, bottom = Double(height) - 46
        let left = 100.0, right = Double(width) - 160
        let axisCount = sweep.parameters.count + 1
        let spacing = axisCount > 1 ? (right - left) / Double(axisCount - 1) : 0
        // One vertical scale per axis.
        var positions: [(SweepFolder.Trial) -> Double?] = []
        var tickSets: [[(Double, String)]] = []
        var names: [String] = []
        for p in sweep.parameters {
            let axis = ParameterAxis(values: trials.compactMap { $0.parameters[p] })
            names.append(p + (axis.isLog ? " (log)" : ""))
            switch axis {
            case .numeric(let numbers, let log):
                let scale = log ? Scale.log(numbers, range: (bottom, top)) : Scale.linear(numbers, range: (bottom, top))
                positions.append { t in t.parameters[p].flatMap(axis.position).map { scale($0) } }
                tickSets.append(scale.ticks().map { (scale($0.value), $0.label) })
            case .categorical(let cats):
                let scale = Scale.linear([], fixed: (-0.5, Double(max(cats.count, 1)) - 0.5), range: (bottom, top))
                positions.append { t in t.parameters[p].flatMap(axis.position).map { scale($0) } }
                tickSets.append(cats.enumerated().map { (scale(Double($0.offset)), $0.element) })
            }
        }
        let metricScale = Scale.linear(scores, range: (bottom, top))
        positions.append { t in sweep.score(t).map { metricScale($0) } }
        tickSets.append(metricScale.ticks().map { (metricScale($0.value), $0.label) })
        names.append(sweep.monitor)

        // Colours: viridis over the score range, yellow for the best (highest, or lowest when
        // the monitor is minimised).
        let lo = scores.min() ?? 0, hi = scores.max() ?? 1
        let maximising = sweep.mode == "max"
        func colour(_ v: Double) -> String {
            let t = hi > lo ? (v - lo) / (hi - lo) : 0.5
            return Palette.viridis(maximising ? t : 1 - t)
        }
        // Lines: the best trial last, on top.
        let ordered = trials.sorted { a, b in
            (a.index == best?.index ? 1 : 0, a.index) < (b.index == best?.index ? 1 : 0, b.index)
        }
        s += "<g fill=\"none\" stroke-linejoin=\"round\">"
        for t in ordered {
            var points: [String] = []
            for (k, position) in positions.enumerated() {
                if let y = position(t) { points.append("\(px(left + Double(k) * spacing)),\(px(y))") }
            }
            guard points.count >= 2 else { continue }
            let isBest = t.index == best?.index
            let widthAttr = isBest ? "3.5" : "1.8"
            s += "<polyline stroke=\"\(colour(sweep.score(t) ?? lo))\" stroke-width=\"\(widthAttr)\" stroke-opacity=\"\(isBest ? "1" : "0.8")\" points=\"\(points.joined(separator: " "))\"><title>trial \(escape(t.name)): \(escape(sweep.monitor)) = \(formatNumber(sweep.score(t) ?? .nan))</title></polyline>"
        }
        s += "</g>\n"
        // Axes on top of the lines.
        let labelLimit = min(28, max(6, Int(spacing / 7.5)))
        for k in 0..<axisCount {
            let x = left + Double(k) * spacing
            s += "<line x1=\"\(px(x))\" y1=\"\(px(top))\" x2=\"\(px(x))\" y2=\"\(px(bottom))\" stroke=\"#555\" stroke-width=\"1.2\"/>"
            s += "<text x=\"\(px(x))\" y=\"\(px(top - 14))\" font-size=\"12\" font-weight=\"bold\" text-anchor=\"middle\" fill=\"#222\">\(escape(shorten(names[k], labelLimit)))<title>\(escape(names[k]))</title></text>"
            s += "<g font-size=\"10\" fill=\"#333\">"
            for (y, label) in tickSets[k] where y >= top - 0.5 && y <= bottom + 0.5 {
                s += "<line x1=\"\(px(x - 4))\" y1=\"\(px(y))\" x2=\"\(px(x))\" y2=\"\(px(y))\" stroke=\"#555\"/>"
                s += "<text x=\"\(px(x - 6))\" y=\"\(px(y + 3.5))\" text-anchor=\"end\" stroke=\"#ffffff\" stroke-width=\"3\" paint-order=\"stroke\">\(escape(shorten(label, 12)))</text>"
            }
            s += "</g>\n"
        }
        // Colour bar.
        let barX = Double(width) - 110
        for i in 0..<24 {
            let t = 1 - Double(i) / 23
            s += "<rect x=\"\(px(barX))\" y=\"\(px(top + Double(i) * (bottom - top) / 24))\" width=\"16\" height=\"\(px((bottom - top) / 24 + 0.5))\" fill=\"\(Palette.viridis(t))\"/>"
        }
        s += "<rect x=\"\(px(barX))\" y=\"\(px(top))\" width=\"16\" height=\"\(px(bottom - top))\" fill=\"none\" stroke=\"#999\"/>"
        s += "<g font-size=\"11\" fill=\"#333\"><text x=\"\(px(barX + 22))\" y=\"\(px(top + 8))\">\(escape(formatNumber(maximising ? hi : lo)))</text>"
        s += "<text x=\"\(px(barX + 22))\" y=\"\(px(bottom))\">\(escape(formatNumber(maximising ? lo : hi)))</text></g>"
        s += "<text x=\"\(px(barX - 6))\" y=\"\(px(bottom + 24))\" font-size=\"11\" fill=\"#333\">\(escape(shorten(sweep.monitor, 20)))</text>"
        if let best {
            s += "<text x=\"\(px(left))\" y=\"\(px(bottom + 30))\" font-size=\"11\" fill=\"#333\">thick line: best trial \(escape(best.name))</text>"
        }
        s += "\n</svg>"
        return SVGFigure(id: id, width: width, height: height, svg: s)
    }
}

extension SweepReport.ParameterAxis {
    var isLog: Bool { if case .numeric(_, true) = self { return true } else { return false } }
}
