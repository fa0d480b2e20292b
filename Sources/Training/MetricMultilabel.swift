// Multi-label metrics as scikit-learn defines them for indicator matrices: a label is predicted
// present when its probability is at least 0.5; `f1_macro` averages over every label (sklearn
// uses all columns of an indicator matrix, not only those present); `roc_auc` is the mean of the
// per-label binary AUCs and NaN when some label is always or never present (sklearn raises).

/// True 0/1 indicators and probabilities, both row-major [rows × labels].
struct MultilabelData {
    let truth: [Bool]
    let predicted: [Bool]
    let scores: [Double]
    let rowCount: Int
    let labelCount: Int

    /// The threshold at which a label counts as predicted.
    static let threshold = 0.5

    init(indicators: [Float], probabilities: [Float], labelCount: Int, context: String) throws {
        guard labelCount >= 1 else {
            throw TrainingError.invalidMetricInput(metric: context, detail: "needs at least one label column, got \(labelCount)")
        }
        guard indicators.count == probabilities.count, indicators.count % labelCount == 0, !indicators.isEmpty else {
            throw TrainingError.invalidMetricInput(
                metric: context,
                detail: "needs indicators and probabilities of equal, non-zero length divisible by \(labelCount) labels, got \(indicators.count) and \(probabilities.count)")
        }
        var truth: [Bool] = []
        truth.reserveCapacity(indicators.count)
        for (i, v) in indicators.enumerated() {
            guard v == 0 || v == 1 else {
                throw TrainingError.invalidMetricInput(metric: context, detail: "indicator \(i) is \(v); indicators must be 0 or 1")
            }
            truth.append(v == 1)
        }
        guard probabilities.allSatisfy(\.isFinite) else {
            throw TrainingError.invalidMetricInput(metric: context, detail: "probabilities must be finite")
        }
        self.truth = truth
        self.scores = probabilities.map(Double.init)
        self.predicted = self.scores.map { $0 >= Self.threshold }
        self.rowCount = indicators.count / labelCount
        self.labelCount = labelCount
    }

    /// Per-label true positives, false positives and false negatives.
    func counts() -> (tp: [Int], fp: [Int], fn: [Int]) {
        var tp = [Int](repeating: 0, count: labelCount), fp = tp, fn = tp
        for r in 0..<rowCount {
            for l in 0..<labelCount {
                let i = r * labelCount + l
                switch (truth[i], predicted[i]) {
                case (true, true): tp[l] += 1
                case (false, true): fp[l] += 1
                case (true, false): fn[l] += 1
                case (false, false): break
                }
            }
        }
        return (tp, fp, fn)
    }

    func compute(_ metric: Metric) throws -> Double {
        let c = counts()
        let tp = c.tp.reduce(0, +), fp = c.fp.reduce(0, +), fn = c.fn.reduce(0, +)
        switch metric {
        case .f1Micro: return ratio(2 * tp, 2 * tp + fp + fn)
        case .precisionMicro: return ratio(tp, tp + fp)
        case .recallMicro: return ratio(tp, tp + fn)
        case .f1Macro:
            var sum = 0.0
            for l in 0..<labelCount { sum += ratio(2 * c.tp[l], 2 * c.tp[l] + c.fp[l] + c.fn[l]) }
            return sum / Double(labelCount)
        case .subsetAccuracy:
            var exact = 0
            for r in 0..<rowCount {
                let range = (r * labelCount)..<((r + 1) * labelCount)
                if truth[range] == predicted[range] { exact += 1 }
            }
            return Double(exact) / Double(rowCount)
        case .hammingLoss:
            var wrong = 0
            for i in truth.indices where truth[i] != predicted[i] { wrong += 1 }
            return Double(wrong) / Double(truth.count)
        case .rocAUC:
            var sum = 0.0
            for l in 0..<labelCount {
                let rows = 0..<rowCount
                let auc = binaryAUC(positive: rows.map { truth[$0 * labelCount + l] }, scores: rows.map { scores[$0 * labelCount + l] })
                if auc.isNaN { return .nan }
                sum += auc
            }
            return sum / Double(labelCount)
        default:
            throw TrainingError.invalidMetricInput(
                metric: metric.rawValue,
                detail: "does not apply to multi-label problems; choose from \(Metric.standardSet(for: .multilabel).map(\.rawValue).joined(separator: ", "))")
        }
    }
}

extension Metric {
    /// The metric from 0/1 indicators and per-label probabilities, both row-major
    /// [rows × `labelCount`]. Throws for a metric that is not multi-label or invalid inputs.
    public func compute(multilabel indicators: [Float], probabilities: [Float], labelCount: Int) throws -> Double {
        try MultilabelData(indicators: indicators, probabilities: probabilities, labelCount: labelCount, context: rawValue).compute(self)
    }
}

extension MetricSet {
    /// Every metric of a multi-label set from 0/1 indicators and per-label probabilities, both
    /// row-major [rows × `labelCount`], keyed `keyPrefix + metric.rawValue`.
    public func evaluate(indicators: [Float], probabilities: [Float], labelCount: Int, keyPrefix: String = "") throws -> [String: Double] {
        guard problem == .multilabel else {
            throw TrainingError.invalidMetricInput(metric: "evaluate", detail: "\(problem.rawValue) metrics do not read label indicators")
        }
        let d = try MultilabelData(indicators: indicators, probabilities: probabilities, labelCount: labelCount, context: "evaluate")
        var out: [String: Double] = [:]
        for m in metrics { out[keyPrefix + m.rawValue] = try d.compute(m) }
        return out
    }
}
