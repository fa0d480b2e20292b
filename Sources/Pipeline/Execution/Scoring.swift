import Foundation
import Tables
import TensorEngine
import Training

/// Predictions and metrics of a network over encoded rows: used by validation each epoch, by
/// the evaluate and predict stages, and by `runpipe predict` / `evaluate`.
enum Scoring {
    /// Model outputs for every row of `part`, in eval mode without recording a tape:
    /// classification → row-major probabilities [rows × classes]; regression → predictions in
    /// the label's own units. Also the mean loss over rows with a label (NaN when none has one).
    static func outputs(network: FusionNetwork, processors: FittedProcessors, part: EncodedPart,
                        batchSize: Int = 512) throws -> (values: [Float], loss: Double) {
        let wasTraining = network.isTraining
        network.eval()
        defer { network.train(wasTraining) }
        let layout = processors.targets
        let width = layout?.outputCount ?? (processors.problem == .regression ? 1 : processors.classes.count)
        var values = [Float](repeating: 0, count: part.count * width)
        var lossSum = 0.0, labelled = 0
        // With token ids, rows go in order of length in small batches, so a batch pads to
        // similar lengths; outputs are written back in row order.
        var order = Array(0..<part.count)
        var size = batchSize
        if !part.text.isEmpty {
            let lengths = (0..<part.count).map { r in part.text.reduce(0) { $0 + Int($1.lengths[r]) } }
            order.sort { (lengths[$0], $0) < (lengths[$1], $1) }
            size = min(batchSize, 64)
        }
        // Pixels through a backbone: small batches bound the activation memory.
        let imageSource = network.imageBatchSource
        if let image = network.config.image, image.mode != .frozen || part.imageFeatures == nil { size = min(size, 32) }
        try withNoGrad {
            var start = 0
            while start < part.count {
                let positions = Array(order[start..<min(part.count, start + size)])
                let logits = try network.logits(try part.batch(positions, text: network.config.text?.mode, image: imageSource))
                let withLabel = positions.indices.filter { part.hasLabel(positions[$0]) }
                if !withLabel.isEmpty {
                    let rows = try indexSelect(logits, axis: 0, indices: withLabel)
                    let loss = try network.scoringLoss(rows, targets: part.targetValues(withLabel.map { positions[$0] }))
                    lossSum += Double(try loss.item()) * Double(withLabel.count)
                    labelled += withLabel.count
                }
                let out: [Float]
                if let layout {
                    // Several tasks or multi-label: each task's block of logits read as its problem reads it.
                    out = try layout.outputs(logits)
                } else {
                    switch processors.problem {
                    case .multilabel:
                        throw PipelineError.internalInconsistency("a multi-label problem without its target layout")
                    case .binary, .multiclass:
                        out = try softmax(logits, axis: -1).toArray()
                    case .regression:
                        out = logits.toArray().map { Float(processors.labelProcessor.inverse(Double($0))) }
                    }
                }
                for (i, row) in positions.enumerated() {
                    for j in 0..<width { values[row * width + j] = out[i * width + j] }
                }
                start += size
            }
        }
        return (values, labelled > 0 ? lossSum / Double(labelled) : .nan)
    }

    /// `val.loss` and `val.<metric>` for the trainer's validation step.
    static func validationScores(network: FusionNetwork, processors: FittedProcessors, part: EncodedPart,
                                 metrics: MetricSet, batchSize: Int) throws -> [String: Double] {
        let (values, loss) = try outputs(network: network, processors: processors, part: part, batchSize: batchSize)
        var scores = try score(values, processors: processors, part: part, metrics: metrics, prefix: "val.")
        scores["val.loss"] = loss
        return scores
    }

    /// The problem's standard metrics (plus the run's metric) over the rows that have a label.
    static func metrics(model: TrainedModel, processors: FittedProcessors, part: EncodedPart,
                        metric: Metric? = nil) throws -> [String: Double] {
        var list = Metric.standardSet(for: processors.problem)
        if let metric, !list.contains(metric) { list.append(metric) }
        let set = try MetricSet(problem: processors.problem, metrics: list)
        let (values, loss) = try outputs(network: model.network, processors: processors, part: part)
        var scores = try score(values, processors: processors, part: part, metrics: set, prefix: "")
        scores["loss"] = loss
        return scores
    }

    static func score(_ values: [Float], processors: FittedProcessors, part: EncodedPart, metrics: MetricSet,
                      prefix: String) throws -> [String: Double] {
        let rows = (0..<part.count).filter { part.hasLabel($0) }
        guard !rows.isEmpty else {
            throw PipelineError("no row has a label, so nothing can be scored",
                                hint: "evaluation needs the label column filled in")
        }
        if let layout = processors.targets {
            return try layout.score(values, targets: part.targets, rows: rows, first: metrics, keyPrefix: prefix)
        }
        switch processors.problem {
        case .multilabel:
            throw PipelineError.internalInconsistency("a multi-label problem without its target layout")
        case .binary, .multiclass:
            let c = processors.classes.count
            var probs: [Float] = []
            probs.reserveCapacity(rows.count * c)
            for r in rows { probs += values[(r * c)..<((r + 1) * c)] }
            return try metrics.evaluate(labels: rows.map { Int(part.targets[$0]) }, probabilities: probs,
                                        classCount: c, keyPrefix: prefix)
        case .regression:
            let targets = rows.map { processors.labelProcessor.inverse(Double(part.targets[$0])) }
            return try metrics.evaluate(targets: targets, predictions: rows.map { Double(values[$0]) }, keyPrefix: prefix)
        }
    }

    /// The input table's columns, then the prediction (`<label>_predicted`), and for
    /// classification one `proba_<class>` column per class, as CSV.
    static func predictionsCSV(model: TrainedModel, processors: FittedProcessors, table: Table, part: EncodedPart) throws -> Data {
        let (values, _) = try outputs(network: model.network, processors: processors, part: part)
        let classes = processors.classes
        var header = table.columnNames
        if let layout = processors.targets {
            header += layout.predictionHeader
        } else {
            header.append("\(processors.label)_predicted")
            if processors.problem != .regression { header += classes.map { "proba_\($0)" } }
        }
        var out = csvLine(header)
        // Rows `missing: skip_row` left out get no prediction (empty cells), not a guess from a
        // black image.
        let skipped = Set(part.pixels?.skipped ?? [])
        for (i, row) in part.rows.enumerated() {
            var cells = table.columns.map { $0[row] ?? "" }
            if skipped.contains(i) {
                cells += Array(repeating: "", count: header.count - cells.count)
                out += csvLine(cells)
                continue
            }
            if let layout = processors.targets {
                let k = layout.outputCount
                out += csvLine(cells + layout.predictionCells(values[(i * k)..<((i + 1) * k)]))
                continue
            }
            switch processors.problem {
            case .multilabel:
                throw PipelineError.internalInconsistency("a multi-label problem without its target layout")
            case .binary, .multiclass:
                let p = values[(i * classes.count)..<((i + 1) * classes.count)]
                var best = 0
                for (k, v) in p.enumerated() where v > p[p.startIndex + best] { best = k }
                cells.append(classes[best])
                cells += p.map { formatFloat($0) }
            case .regression:
                cells.append(formatFloat(values[i]))
            }
            out += csvLine(cells)
        }
        return Data(out.utf8)
    }
}

/// One CSV record (RFC 4180 quoting when needed), with a newline.
func csvLine(_ cells: [String]) -> String {
    cells.map { cell -> String in
        if cell.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
            return "\"" + cell.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return cell
    }.joined(separator: ",") + "\n"
}

/// Shortest text that reads back as the same Float.
func formatFloat(_ v: Float) -> String {
    v.isNaN ? "nan" : "\(v)"
}
