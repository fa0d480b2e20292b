import Foundation

/// The learning-curve figures of a `history.csv`: training and validation loss on one panel,
/// a validation metric on its own.
enum LearningCurves {
    /// `metricColumns` are tried in order; the first in the file is drawn.
    static func figures(history: CSVTable, metricColumns: [String], bestEpoch: Double?, idPrefix: String,
                        titleSuffix: String = "") -> [SVGFigure] {
        let (xs, xLabel) = axis(history)
        var figures: [SVGFigure] = []

        let train = history.column("train_loss")?.map { parseNumber($0) ?? .nan }
        let validation = history.column("val.loss")?.map { parseNumber($0) ?? .nan }
        let losses = (train ?? []) + (validation ?? [])
        if losses.contains(where: \.isFinite) {
            var chart = Chart(id: idPrefix + "loss", title: "Loss" + titleSuffix, xLabel: xLabel, yLabel: "loss",
                              x: .data(xs), y: .data(losses, includeZero: true))
            chart.legendPlace = .topRight
            if let train { chart.line(xs: xs, ys: train, color: Palette.series(0), label: "training loss") }
            if let validation { chart.line(xs: xs, ys: validation, color: Palette.series(1), label: "validation loss") }
            if let bestEpoch, xLabel == "epoch" { mark(&chart, at: bestEpoch) }
            figures.append(chart.figure())
        } else {
            figures.append(placeholderFigure(id: idPrefix + "loss", title: "Loss" + titleSuffix,
                                             message: "history.csv has no train_loss or val.loss values"))
        }

        if let column = metricColumns.first(where: { history.index(of: $0) != nil }),
           let values = history.column(column)?.map({ parseNumber($0) ?? .nan }), values.contains(where: \.isFinite) {
            var chart = Chart(id: idPrefix + "metric", title: "Validation \(column.dropFirst(4))" + titleSuffix,
                              xLabel: xLabel, yLabel: column, x: .data(xs), y: .data(values))
            chart.legendPlace = .bottomRight
            chart.line(xs: xs, ys: values, color: Palette.series(2), label: column)
            chart.points(xs: xs, ys: values, color: Palette.series(2), radius: 2.5, opacity: 1)
            if let bestEpoch, xLabel == "epoch" { mark(&chart, at: bestEpoch) }
            figures.append(chart.figure())
        } else {
            figures.append(placeholderFigure(id: idPrefix + "metric", title: "Validation metric" + titleSuffix,
                                             message: "history.csv has no column \(metricColumns.first ?? "val.<metric>")"))
        }
        return figures
    }

    /// Epochs when they increase row by row; else the step (validation several times an epoch
    /// repeats an epoch number); else the row number.
    static func axis(_ history: CSVTable) -> ([Double], String) {
        for name in ["epoch", "step"] {
            if let values = history.column(name)?.map({ parseNumber($0) ?? .nan }),
               values.allSatisfy(\.isFinite), zip(values, values.dropFirst()).allSatisfy({ $0 < $1 }) {
                return (values, name)
            }
        }
        return (history.rows.indices.map { Double($0 + 1) }, "validation")
    }

    private static func mark(_ chart: inout Chart, at epoch: Double) {
        chart.line(xs: [epoch, epoch], ys: [chart.y.domain.lower, chart.y.domain.upper], color: "#888888",
                   width: 1, dashed: true, label: "best epoch (\(formatNumber(epoch)))")
    }
}
