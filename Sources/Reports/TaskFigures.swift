import Foundation

/// One classification task's rows from a predictions file: the true class, the predicted
/// class and the probability of every class, for the rows that have all three.
struct ClassifiedRows {
    let classes: [String]
    let truth: [String]
    let predicted: [String]
    /// `probabilities[i][k]`: row i, class `classes[k]`.
    let probabilities: [[Double]]

    init(classes: [String], truth: [String], predicted: [String], probabilities: [[Double]]) {
        self.classes = classes
        self.truth = truth
        self.predicted = predicted
        self.probabilities = probabilities
    }

    /// Reads the columns of `task` (`<label>_predicted`, `proba_<class>`, or with the task's
    /// name in front in a multi-task file). Nil when the file does not have them.
    init?(table: CSVTable, task: RunFolder.Task) {
        let label = task.columns.first ?? task.name
        let predictedName = (task.namedInPredictions ? task.name : label) + "_predicted"
        let probaPrefix = task.namedInPredictions ? task.name + "_proba_" : "proba_"
        guard let truthIndex = table.index(of: label), let predictedIndex = table.index(of: predictedName) else { return nil }
        let probaColumns = table.header.enumerated().filter { $0.element.hasPrefix(probaPrefix) }
        guard !probaColumns.isEmpty else { return nil }
        classes = probaColumns.map { String($0.element.dropFirst(probaPrefix.count)) }
        var truth: [String] = [], predicted: [String] = [], probabilities: [[Double]] = []
        for row in table.rows {
            let t = row[truthIndex], p = row[predictedIndex]
            let probs = probaColumns.map { parseNumber(row[$0.offset]) ?? .nan }
            guard !t.isEmpty, !p.isEmpty, probs.allSatisfy(\.isFinite) else { continue }
            truth.append(t)
            predicted.append(p)
            probabilities.append(probs)
        }
        self.truth = truth
        self.predicted = predicted
        self.probabilities = probabilities
    }

    var count: Int { truth.count }
}

/// One regression task's rows: true and predicted values where both are numbers.
struct RegressedRows {
    let truth: [Double]
    let predicted: [Double]

    init(truth: [Double], predicted: [Double]) {
        self.truth = truth
        self.predicted = predicted
    }

    init?(table: CSVTable, task: RunFolder.Task) {
        let label = task.columns.first ?? task.name
        let predictedName = (task.namedInPredictions ? task.name : label) + "_predicted"
        guard let ti = table.index(of: label), let pi = table.index(of: predictedName) else { return nil }
        var truth: [Double] = [], predicted: [Double] = []
        for row in table.rows {
            guard let t = parseNumber(row[ti]), let p = parseNumber(row[pi]), t.isFinite, p.isFinite else { continue }
            truth.append(t)
            predicted.append(p)
        }
        self.truth = truth
        self.predicted = predicted
    }
}

// MARK: - Classification figures

enum ClassificationFigures {
    /// Confusion matrix, ROC, precision–recall and calibration figures for `rows`.
    static func figures(_ rows: ClassifiedRows, idPrefix: String) -> [SVGFigure] {
        [confusion(rows, id: idPrefix + "confusion"), roc(rows, id: idPrefix + "roc"),
         precisionRecall(rows, id: idPrefix + "pr"), calibration(rows, id: idPrefix + "calibration")]
    }

    /// The (class, positive flags, scores) curves to draw: class 1 of a binary problem, else
    /// every class one-vs-rest.
    static func curves(_ rows: ClassifiedRows) -> [(name: String, positive: [Bool], scores: [Double])] {
        let picked = rows.classes.count == 2 ? [1] : Array(rows.classes.indices)
        return picked.map { k in
            (rows.classes[k], rows.truth.map { $0 == rows.classes[k] }, rows.probabilities.map { $0[k] })
        }
    }

    static func confusion(_ rows: ClassifiedRows, id: String) -> SVGFigure {
        let m = ConfusionMatrix(classes: rows.classes, truth: rows.truth, predicted: rows.predicted)
        let n = m.classes.count
        let width = Page.figureWidth, height = 360
        var s = svgOpen(id: id, width: width, height: height, title: "Confusion matrix (\(m.total) rows)")
        let left = 130.0, top = 40.0
        let side = Double(height) - top - 62
        let cell = side / Double(max(n, 1))
        let maximum = max(m.maximum, 1)
        let showCounts = cell >= 16
        for t in 0..<n {
            for p in 0..<n {
                let v = m.counts[t][p]
                let fraction = Double(v) / Double(maximum)
                let x = left + Double(p) * cell, y = top + Double(t) * cell
                s += "<rect x=\"\(px(x))\" y=\"\(px(y))\" width=\"\(px(cell))\" height=\"\(px(cell))\" fill=\"\(Palette.blues(fraction))\" stroke=\"#ffffff\"><title>true \(escape(m.classes[t])), predicted \(escape(m.classes[p])): \(v)</title></rect>"
                if showCounts {
                    let color = fraction > 0.55 ? "#ffffff" : "#222222"
                    let size = min(14, Int(cell / 2.6))
                    s += "<text x=\"\(px(x + cell / 2))\" y=\"\(px(y + cell / 2 + Double(size) / 3))\" font-size=\"\(size)\" text-anchor=\"middle\" fill=\"\(color)\">\(v)</text>"
                }
            }
        }
        s += "<rect x=\"\(px(left))\" y=\"\(px(top))\" width=\"\(px(side))\" height=\"\(px(side))\" fill=\"none\" stroke=\"#999\"/>\n"
        let labelSize = n > 20 ? 8 : 11
        let every = max(1, Int((Double(labelSize) + 2) / cell) + 1)
        s += "<g font-size=\"\(labelSize)\" fill=\"#444\">"
        for (k, name) in m.classes.enumerated() where k % every == 0 {
            let c = Double(k) * cell + cell / 2
            s += "<text x=\"\(px(left - 6))\" y=\"\(px(top + c + 4))\" text-anchor=\"end\">\(escape(shorten(name, 16)))<title>\(escape(name))</title></text>"
            let xLabel = shorten(name, max(3, Int(cell / 7)))
            s += "<text x=\"\(px(left + c))\" y=\"\(px(top + side + 15))\" text-anchor=\"middle\">\(escape(xLabel))<title>\(escape(name))</title></text>"
        }
        s += "</g>\n"
        s += "<text x=\"\(px(left + side / 2))\" y=\"\(height - 22)\" font-size=\"12\" text-anchor=\"middle\" fill=\"#222\">predicted class</text>\n"
        s += "<text transform=\"translate(16 \(px(top + side / 2))) rotate(-90)\" font-size=\"12\" text-anchor=\"middle\" fill=\"#222\">true class</text>\n"
        // Colour bar.
        let barX = left + side + 30, barH = side
        for i in 0..<20 {
            let t = 1 - Double(i) / 19
            s += "<rect x=\"\(px(barX))\" y=\"\(px(top + Double(i) * barH / 20))\" width=\"14\" height=\"\(px(barH / 20 + 0.5))\" fill=\"\(Palette.blues(t))\"/>"
        }
        s += "<rect x=\"\(px(barX))\" y=\"\(px(top))\" width=\"14\" height=\"\(px(barH))\" fill=\"none\" stroke=\"#999\"/>"
        s += "<g font-size=\"11\" fill=\"#444\"><text x=\"\(px(barX + 20))\" y=\"\(px(top + 10))\">\(maximum)</text><text x=\"\(px(barX + 20))\" y=\"\(px(top + barH))\">0</text><text x=\"\(px(barX + 20))\" y=\"\(px(top + barH / 2 + 4))\">rows</text></g>\n"
        // Per-class recall, right of the colour bar.
        let recallX = barX + 70
        s += "<g font-size=\"11\" fill=\"#444\"><text x=\"\(px(recallX))\" y=\"\(px(top - 6))\" font-weight=\"bold\">recall</text>"
        if cell >= 12 {
            for t in 0..<n {
                let actual = m.counts[t].reduce(0, +)
                let text = actual > 0 ? formatNumber(Double(m.counts[t][t]) / Double(actual), digits: 3) : "–"
                s += "<text x=\"\(px(recallX))\" y=\"\(px(top + Double(t) * cell + cell / 2 + 4))\">\(escape(text))</text>"
            }
        }
        s += "</g>\n</svg>"
        return SVGFigure(id: id, width: width, height: height, svg: s)
    }

    static func roc(_ rows: ClassifiedRows, id: String) -> SVGFigure {
        let list = curves(rows)
        let binary = rows.classes.count == 2
        var chart = Chart(id: id, title: binary ? "ROC curve (positive class \(rows.classes[1]))" : "ROC curves, one class vs the rest",
                          xLabel: "false positive rate", yLabel: "true positive rate", x: .fixed(0, 1), y: .fixed(0, 1))
        chart.diagonal()
        var aucs: [Double] = []
        for (i, c) in list.enumerated() {
            let curve = ROCCurve(positive: c.positive, scores: c.scores)
            let auc = curve.auc.map { formatNumber($0, digits: 3) } ?? "undefined"
            if let a = curve.auc { aucs.append(a) }
            chart.line(xs: curve.falsePositiveRate, ys: curve.truePositiveRate, color: Palette.series(i),
                       label: binary ? "AUC \(auc)" : "\(c.name) (AUC \(auc))")
        }
        if !binary && !aucs.isEmpty {
            chart.legend.append(.init(label: "macro AUC \(formatNumber(aucs.reduce(0, +) / Double(aucs.count), digits: 3))",
                                      color: "#ffffff"))
        }
        return chart.figure()
    }

    static func precisionRecall(_ rows: ClassifiedRows, id: String) -> SVGFigure {
        let list = curves(rows)
        let binary = rows.classes.count == 2
        var chart = Chart(id: id, title: binary ? "Precision–recall (positive class \(rows.classes[1]))" : "Precision–recall, one class vs the rest",
                          xLabel: "recall", yLabel: "precision", x: .fixed(0, 1), y: .fixed(0, 1))
        chart.legendPlace = .bottomLeft
        for (i, c) in list.enumerated() {
            let curve = PRCurve(positive: c.positive, scores: c.scores)
            let ap = curve.averagePrecision.map { formatNumber($0, digits: 3) } ?? "undefined"
            chart.line(xs: curve.recall, ys: curve.precision, color: Palette.series(i),
                       label: binary ? "AP \(ap)" : "\(c.name) (AP \(ap))")
            if binary {
                chart.horizontal(at: curve.prevalence, label: "chance (\(formatNumber(curve.prevalence, digits: 3)))")
            }
        }
        return chart.figure()
    }

    static func calibration(_ rows: ClassifiedRows, id: String) -> SVGFigure {
        let probabilities: [Double], happened: [Bool], what: String
        if rows.classes.count == 2 {
            probabilities = rows.probabilities.map { $0[1] }
            happened = rows.truth.map { $0 == rows.classes[1] }
            what = "P(\(rows.classes[1]))"
        } else {
            probabilities = rows.probabilities.map { $0.max() ?? 0 }
            happened = zip(rows.truth, rows.predicted).map { $0 == $1 }
            what = "probability of the predicted class"
        }
        let bins = CalibrationBins(probabilities: probabilities, happened: happened)
        var chart = Chart(id: id, title: "Calibration (10 bins; bar labels: rows per bin)", xLabel: "predicted \(what)",
                          yLabel: rows.classes.count == 2 ? "observed frequency" : "observed accuracy",
                          x: .fixed(0, 1), y: .fixed(0, 1))
        chart.legendPlace = .topLeft
        let maxCount = Double(bins.bins.map(\.count).max() ?? 1)
        for b in bins.bins where b.count > 0 {
            // Bars up to a third of the height show how many rows each bin holds.
            chart.bar(from: b.lower, to: b.upper, top: 0.33 * Double(b.count) / maxCount, color: "#dde3ea", text: String(b.count))
        }
        chart.diagonal(label: "perfectly calibrated")
        let filled = bins.bins.filter { $0.count > 0 }
        chart.line(xs: filled.map { $0.meanPredicted ?? .nan }, ys: filled.map { $0.observedFrequency ?? .nan },
                   color: Palette.series(0), label: "model")
        chart.points(xs: filled.map { $0.meanPredicted ?? .nan }, ys: filled.map { $0.observedFrequency ?? .nan },
                     color: Palette.series(0), radius: 4, opacity: 1,
                     tooltips: filled.map { "[\(formatNumber($0.lower)), \(formatNumber($0.upper))): \($0.count) rows, mean predicted \(formatNumber($0.meanPredicted ?? .nan, digits: 3)), observed \(formatNumber($0.observedFrequency ?? .nan, digits: 3))" })
        return chart.figure()
    }
}

// MARK: - Regression figures

enum RegressionFigures {
    /// Most dots a scatter draws; beyond that every k-th row is shown (the page stays small).
    static let maximumPoints = 4000

    static func figures(_ rows: RegressedRows, idPrefix: String, label: String) -> [SVGFigure] {
        let all = rows.truth.count
        let stride = (all + maximumPoints - 1) / maximumPoints
        let shown = stride > 1 ? RegressedRows(truth: Swift.stride(from: 0, to: all, by: stride).map { rows.truth[$0] },
                                               predicted: Swift.stride(from: 0, to: all, by: stride).map { rows.predicted[$0] })
                               : rows
        let what = stride > 1 ? "1 row in \(stride) of \(all)" : "\(all) rows"
        return [scatter(shown, id: idPrefix + "scatter", label: label, rowsText: what),
                residuals(shown, id: idPrefix + "residuals", label: label)]
    }

    static func scatter(_ rows: RegressedRows, id: String, label: String, rowsText: String) -> SVGFigure {
        let all = rows.truth + rows.predicted
        var chart = Chart(id: id, title: "Predicted vs true (\(rowsText))", xLabel: "true \(label)",
                          yLabel: "predicted \(label)", x: .data(all), y: .data(all))
        chart.legendPlace = .topLeft
        chart.diagonal(label: "y = x")
        chart.points(xs: rows.truth, ys: rows.predicted, color: Palette.series(0), opacity: 0.6, label: "rows")
        return chart.figure()
    }

    static func residuals(_ rows: RegressedRows, id: String, label: String) -> SVGFigure {
        let residuals = zip(rows.truth, rows.predicted).map { $0 - $1 }
        let bound = residuals.map(abs).max() ?? 1
        var chart = Chart(id: id, title: "Residuals (true − predicted) vs predicted", xLabel: "predicted \(label)",
                          yLabel: "residual", x: .data(rows.predicted), y: .data([-bound, bound]))
        chart.horizontal(at: 0, color: "#666666")
        chart.points(xs: rows.predicted, ys: residuals, color: Palette.series(1), opacity: 0.6)
        return chart.figure()
    }
}
