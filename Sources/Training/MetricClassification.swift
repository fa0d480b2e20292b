import Foundation

/// Validated classification inputs: labels in `0..<classCount` and a row-major [n, classCount]
/// matrix of finite probabilities (or scores).
struct ClassificationData {
    let labels: [Int]
    let scores: [Double]
    let classCount: Int
    /// Arg-max of each row (first column on ties, like `numpy.argmax`).
    let predicted: [Int]

    var count: Int { labels.count }

    init(labels: [Int], rows: [[Double]], context: String) throws {
        guard let first = rows.first else {
            throw TrainingError.invalidMetricInput(metric: context, detail: "no samples (empty probabilities); evaluate at least one sample")
        }
        let k = first.count
        var flat: [Double] = []
        flat.reserveCapacity(rows.count * k)
        for (i, row) in rows.enumerated() {
            guard row.count == k else {
                throw TrainingError.invalidMetricInput(
                    metric: context, detail: "probability row \(i) has \(row.count) values but row 0 has \(k); give one column per class in every row")
            }
            flat += row
        }
        try self.init(labels: labels, scores: flat, rowCount: rows.count, classCount: k, context: context)
    }

    init(labels: [Int], flat: [Float], classCount: Int, context: String) throws {
        guard classCount > 0 else {
            throw TrainingError.invalidMetricInput(metric: context, detail: "classCount must be >= 2, got \(classCount)")
        }
        guard flat.count % classCount == 0 else {
            throw TrainingError.invalidMetricInput(
                metric: context, detail: "\(flat.count) probabilities are not a whole number of rows of \(classCount) classes")
        }
        try self.init(labels: labels, scores: flat.map(Double.init), rowCount: flat.count / classCount, classCount: classCount,
                      context: context)
    }

    private init(labels: [Int], scores: [Double], rowCount: Int, classCount k: Int, context: String) throws {
        guard !labels.isEmpty || rowCount > 0 else {
            throw TrainingError.invalidMetricInput(metric: context, detail: "no samples (empty labels); evaluate at least one sample")
        }
        guard labels.count == rowCount else {
            throw TrainingError.invalidMetricInput(
                metric: context, detail: "\(labels.count) labels but \(rowCount) probability rows; give one row per label")
        }
        guard k >= 2 else {
            throw TrainingError.invalidMetricInput(
                metric: context, detail: "needs one probability column per class (at least 2; binary: [P(0), P(1)]), got \(k)")
        }
        if let i = labels.firstIndex(where: { $0 < 0 || $0 >= k }) {
            throw TrainingError.invalidMetricInput(
                metric: context, detail: "label \(labels[i]) at index \(i) is out of range 0..<\(k) (the number of probability columns)")
        }
        if let j = scores.firstIndex(where: { !$0.isFinite }) {
            throw TrainingError.invalidMetricInput(
                metric: context, detail: "probability at row \(j / k), column \(j % k) is \(scores[j]); probabilities must be finite")
        }
        self.labels = labels
        self.scores = scores
        self.classCount = k
        var pred = [Int](repeating: 0, count: rowCount)
        for r in 0..<rowCount {
            var best = 0
            for c in 1..<k where scores[r * k + c] > scores[r * k + best] { best = c }
            pred[r] = best
        }
        self.predicted = pred
    }

    // MARK: Counting

    func accuracy() -> Double {
        var hits = 0
        for i in 0..<count where labels[i] == predicted[i] { hits += 1 }
        return Double(hits) / Double(count)
    }

    /// Per class: true positives, predicted count, actual count.
    func perClassCounts() -> (tp: [Int], predicted: [Int], actual: [Int]) {
        var tp = [Int](repeating: 0, count: classCount)
        var pc = tp, ac = tp
        for i in 0..<count {
            ac[labels[i]] += 1
            pc[predicted[i]] += 1
            if labels[i] == predicted[i] { tp[labels[i]] += 1 }
        }
        return (tp, pc, ac)
    }

    func balancedAccuracy() -> Double {
        let c = perClassCounts()
        var sum = 0.0, present = 0
        for k in 0..<classCount where c.actual[k] > 0 {
            sum += Double(c.tp[k]) / Double(c.actual[k])
            present += 1
        }
        return sum / Double(present)   // present ≥ 1: there is at least one label
    }

    /// Counts for class 1 as the positive class.
    func binaryCounts() -> (tp: Int, fp: Int, fn: Int) {
        let c = perClassCounts()
        return (c.tp[1], c.predicted[1] - c.tp[1], c.actual[1] - c.tp[1])
    }

    enum MacroKind { case precision, recall, f1 }

    /// Unweighted mean over the classes that occur in the labels or the predictions.
    func macro(_ kind: MacroKind) -> Double {
        let c = perClassCounts()
        var sum = 0.0, used = 0
        for k in 0..<classCount where c.actual[k] > 0 || c.predicted[k] > 0 {
            let tp = c.tp[k], fp = c.predicted[k] - tp, fn = c.actual[k] - tp
            switch kind {
            case .precision: sum += ratio(tp, tp + fp)
            case .recall: sum += ratio(tp, tp + fn)
            case .f1: sum += ratio(2 * tp, 2 * tp + fp + fn)
            }
            used += 1
        }
        return sum / Double(used)
    }

    // MARK: Probabilities

    /// Binary: AUC of column 1. More columns: mean over the classes present in the labels of the
    /// one-vs-rest AUC of that class's column. NaN when fewer than two classes are present.
    func rocAUC() -> Double {
        let n = count, k = classCount
        if k == 2 {
            return binaryAUC(positive: labels.map { $0 == 1 }, scores: (0..<n).map { scores[$0 * k + 1] })
        }
        let actual = perClassCounts().actual
        let present = (0..<k).filter { actual[$0] > 0 }
        if present.count < 2 { return .nan }
        var sum = 0.0
        for c in present {
            sum += binaryAUC(positive: labels.map { $0 == c }, scores: (0..<n).map { scores[$0 * k + c] })
        }
        return sum / Double(present.count)
    }

    /// Mean −log p(true class) with p clipped to [1e-15, 1 − 1e-15] and each row renormalised
    /// to sum to 1 after clipping.
    func logLoss() -> Double {
        let eps = 1e-15
        let k = classCount
        var total = 0.0
        for r in 0..<count {
            var rowSum = 0.0
            for c in 0..<k { rowSum += Swift.min(Swift.max(scores[r * k + c], eps), 1 - eps) }
            let p = Swift.min(Swift.max(scores[r * k + labels[r]], eps), 1 - eps) / rowSum
            total -= Foundation.log(p)
        }
        return total / Double(count)
    }
}

/// Area under the ROC curve from the Mann–Whitney statistic with average ranks for tied scores:
/// (Σ ranks of positives − P(P+1)/2) / (P·N). This is exactly the trapezoidal area sklearn
/// computes, ties included. NaN when either class is absent.
func binaryAUC(positive: [Bool], scores: [Double]) -> Double {
    let p = positive.reduce(0) { $0 + ($1 ? 1 : 0) }
    let n = positive.count - p
    if p == 0 || n == 0 { return .nan }
    let ranks = averageRanks(scores)
    var rankSum = 0.0
    for i in 0..<positive.count where positive[i] { rankSum += ranks[i] }
    let u = rankSum - Double(p) * Double(p + 1) / 2
    return u / (Double(p) * Double(n))
}

/// 1-based ranks of `values`, tied values sharing the mean of their positions
/// (`scipy.stats.rankdata(method="average")`).
func averageRanks(_ values: [Double]) -> [Double] {
    let order = values.indices.sorted { a, b in
        values[a] < values[b] || (values[a] == values[b] && a < b)
    }
    var ranks = [Double](repeating: 0, count: values.count)
    var start = 0
    while start < order.count {
        var end = start + 1
        while end < order.count && values[order[end]] == values[order[start]] { end += 1 }
        // positions start+1 ... end (1-based) share their mean
        let mean = Double(start + 1 + end) / 2
        for j in start..<end { ranks[order[j]] = mean }
        start = end
    }
    return ranks
}
