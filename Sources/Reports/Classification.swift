import Foundation

// The numbers behind the classification figures, computed as scikit-learn defines them
// (`sklearn.metrics.roc_curve`, `precision_recall_curve`, `average_precision_score`,
// `sklearn.calibration.calibration_curve`), so a report agrees with a notebook.

// MARK: - Confusion matrix

/// Counts of (true class, predicted class) pairs. Rows are true classes, columns predictions,
/// both in `classes` order.
public struct ConfusionMatrix: Equatable, Sendable {
    public let classes: [String]
    /// `counts[t][p]`: rows whose true class is `classes[t]` and prediction `classes[p]`.
    public let counts: [[Int]]

    /// Counts the pairs. Classes seen in `truth` or `predicted` but missing from `classes` are
    /// appended in sorted order, so no row is dropped.
    public init(classes: [String], truth: [String], predicted: [String]) {
        precondition(truth.count == predicted.count, "one prediction per true label")
        var all = classes
        let known = Set(classes)
        all += Set(truth + predicted).subtracting(known).sorted()
        var index: [String: Int] = [:]
        for (i, c) in all.enumerated() where index[c] == nil { index[c] = i }
        var counts = [[Int]](repeating: [Int](repeating: 0, count: all.count), count: all.count)
        for (t, p) in zip(truth, predicted) {
            if let i = index[t], let j = index[p] { counts[i][j] += 1 }
        }
        self.classes = all
        self.counts = counts
    }

    public var total: Int { counts.reduce(0) { $0 + $1.reduce(0, +) } }
    public var maximum: Int { counts.flatMap { $0 }.max() ?? 0 }
}

// MARK: - Ranking curves

/// True- and false-positive counts at every distinct score, highest score first: the common
/// ground of the ROC and precision–recall curves. Rows with equal scores move together.
struct ThresholdCounts {
    var thresholds: [Double] = []
    var truePositives: [Int] = []
    var falsePositives: [Int] = []
    var positives = 0
    var negatives = 0

    init(positive: [Bool], scores: [Double]) {
        precondition(positive.count == scores.count, "one score per label")
        let order = scores.indices.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
        var tp = 0, fp = 0
        for (k, i) in order.enumerated() {
            if positive[i] { tp += 1 } else { fp += 1 }
            let last = k == order.count - 1 || scores[order[k + 1]] != scores[i]
            if last {
                thresholds.append(scores[i])
                truePositives.append(tp)
                falsePositives.append(fp)
            }
        }
        positives = tp
        negatives = fp
    }
}

/// A receiver operating characteristic curve (`roc_curve(drop_intermediate=False)`): points
/// from (0, 0) through one point per distinct score to (1, 1), and the trapezoidal area.
public struct ROCCurve: Equatable, Sendable {
    public let falsePositiveRate: [Double]
    public let truePositiveRate: [Double]
    /// The score at each point after the first (the first is "nothing predicted positive").
    public let thresholds: [Double]
    /// Area under the curve; nil when only one class is present (the curve is undefined).
    public let auc: Double?

    public init(positive: [Bool], scores: [Double]) {
        let c = ThresholdCounts(positive: positive, scores: scores)
        let p = Double(c.positives), n = Double(c.negatives)
        var fpr = [0.0], tpr = [0.0]
        for k in c.thresholds.indices {
            fpr.append(n > 0 ? Double(c.falsePositives[k]) / n : .nan)
            tpr.append(p > 0 ? Double(c.truePositives[k]) / p : .nan)
        }
        falsePositiveRate = fpr
        truePositiveRate = tpr
        thresholds = c.thresholds
        if p > 0 && n > 0 {
            var area = 0.0
            for k in 1..<fpr.count { area += (fpr[k] - fpr[k - 1]) * (tpr[k] + tpr[k - 1]) / 2 }
            auc = area
        } else {
            auc = nil
        }
    }
}

/// A precision–recall curve (`precision_recall_curve`), ordered by increasing threshold as
/// scikit-learn returns it and ending at (recall 0, precision 1), with the average precision
/// `AP = Σₙ (Rₙ − Rₙ₋₁) Pₙ` (`average_precision_score`, no interpolation).
public struct PRCurve: Equatable, Sendable {
    public let precision: [Double]
    public let recall: [Double]
    public let thresholds: [Double]
    /// Average precision; nil when there is no positive row.
    public let averagePrecision: Double?
    /// The share of positive rows: the precision of a classifier that guesses.
    public let prevalence: Double

    public init(positive: [Bool], scores: [Double]) {
        let c = ThresholdCounts(positive: positive, scores: scores)
        let p = Double(c.positives)
        var precisionDown: [Double] = [], recallDown: [Double] = []
        for k in c.thresholds.indices {
            let tp = Double(c.truePositives[k]), fp = Double(c.falsePositives[k])
            precisionDown.append(tp + fp > 0 ? tp / (tp + fp) : 0)
            recallDown.append(p > 0 ? tp / p : .nan)
        }
        if p > 0 {
            var ap = 0.0, previous = 0.0
            for k in precisionDown.indices {
                ap += (recallDown[k] - previous) * precisionDown[k]
                previous = recallDown[k]
            }
            averagePrecision = ap
        } else {
            averagePrecision = nil
        }
        precision = precisionDown.reversed() + [1]
        recall = recallDown.reversed() + [0]
        thresholds = c.thresholds.reversed()
        let rows = c.positives + c.negatives
        prevalence = rows > 0 ? p / Double(rows) : 0
    }
}

// MARK: - Calibration

/// A reliability diagram's bins: `binCount` equal-width bins over [0, 1], a probability p
/// falling in bin ⌊p·binCount⌋ as `calibration_curve(strategy="uniform")` assigns it (1.0 in
/// the last bin). Empty bins are kept, with `count` 0 and nil means.
public struct CalibrationBins: Equatable, Sendable {
    public struct Bin: Equatable, Sendable {
        public let lower: Double
        public let upper: Double
        public let count: Int
        /// The mean predicted probability of the rows in the bin.
        public let meanPredicted: Double?
        /// The share of the bin's rows whose event happened.
        public let observedFrequency: Double?
    }

    public let bins: [Bin]

    /// `probabilities[i]` is the predicted probability of the event that `happened[i]` says
    /// did or did not happen (positive class, or the predicted class being right).
    public init(probabilities: [Double], happened: [Bool], binCount: Int = 10) {
        precondition(probabilities.count == happened.count && binCount > 0, "one outcome per probability")
        var sums = [Double](repeating: 0, count: binCount)
        var hits = [Int](repeating: 0, count: binCount)
        var counts = [Int](repeating: 0, count: binCount)
        // numpy.linspace's edges: i · step, so 0.3 is 0.30000000000000004 as in scikit-learn.
        let step = 1.0 / Double(binCount)
        let edges = (0...binCount).map { $0 == binCount ? 1.0 : Double($0) * step }
        for (p, event) in zip(probabilities, happened) where p.isFinite {
            // searchsorted(edges[1:-1], p, side="right"), as scikit-learn does.
            var b = 0
            while b < binCount - 1 && p >= edges[b + 1] { b += 1 }
            sums[b] += p
            counts[b] += 1
            if event { hits[b] += 1 }
        }
        bins = (0..<binCount).map { b in
            Bin(lower: edges[b], upper: edges[b + 1], count: counts[b],
                meanPredicted: counts[b] > 0 ? sums[b] / Double(counts[b]) : nil,
                observedFrequency: counts[b] > 0 ? Double(hits[b]) / Double(counts[b]) : nil)
        }
    }
}
