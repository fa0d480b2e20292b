/// Evaluation metrics, defined as scikit-learn defines them (the reference AutoGluon reports).
///
///     let auc = try Metric.rocAUC.compute(classification: [0, 1, 1], probabilities: [[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
///     let scores = try MetricSet.standard(for: .binary).evaluate(labels: labels, probabilities: probs, keyPrefix: "val.")
///     // ["val.accuracy": …, "val.roc_auc": …, "val.log_loss": …, …]
///
/// Classification metrics take the true class indices and one row of class probabilities (or
/// scores) per sample, one column per class — binary problems give two columns, [P(0), P(1)],
/// and class 1 is the positive class. Predicted classes are each row's arg-max (the first
/// column on ties). Regression metrics take targets and predictions.
///
/// Undefined values follow scikit-learn where it returns a number and are NaN where it raises:
/// - precision/recall/F1 with an empty denominator are 0 (sklearn's `zero_division="warn"` result);
/// - `*_macro` average over the classes present in the labels or the predictions (sklearn's
///   default `labels`);
/// - balanced accuracy averages recall over the classes present in the labels;
/// - ROC AUC with a single class in the labels is NaN (sklearn raises); the multiclass
///   one-vs-rest macro average runs over the classes present in the labels and is NaN with fewer
///   than two (sklearn raises unless every column's class is present — when it is, the values agree);
/// - R² with constant targets is 1 for a perfect prediction and 0 otherwise (sklearn's `force_finite`);
/// - Pearson and Spearman with a constant input are NaN (scipy's result).
///
/// Sums run in Double in sample order, so results do not depend on the thread count.
public enum Metric: String, Codable, Sendable, CaseIterable {
    /// Fraction of correctly predicted samples.
    case accuracy
    /// Mean recall over the classes present in the labels.
    case balancedAccuracy = "balanced_accuracy"
    /// TP / (TP + FP) for class 1 of a binary problem.
    case precision
    /// TP / (TP + FN) for class 1 of a binary problem.
    case recall
    /// Harmonic mean of precision and recall for class 1 of a binary problem.
    case f1
    /// Unweighted mean of per-class precision.
    case precisionMacro = "precision_macro"
    /// Unweighted mean of per-class recall.
    case recallMacro = "recall_macro"
    /// Unweighted mean of per-class F1.
    case f1Macro = "f1_macro"
    /// Area under the ROC curve (binary), one-vs-rest macro average (multiclass).
    case rocAUC = "roc_auc"
    /// Mean negative log-likelihood of the true class.
    case logLoss = "log_loss"
    /// Root mean squared error.
    case rmse
    /// Mean absolute error.
    case mae
    /// Coefficient of determination.
    case r2
    /// Pearson correlation of predictions and targets.
    case pearson
    /// Spearman rank correlation of predictions and targets (average ranks for ties).
    case spearman
    /// Multi-label: F1 of the true/false positives and false negatives pooled over every label.
    case f1Micro = "f1_micro"
    /// Multi-label: precision pooled over every label.
    case precisionMicro = "precision_micro"
    /// Multi-label: recall pooled over every label.
    case recallMicro = "recall_micro"
    /// Multi-label: fraction of rows whose predicted label set is exactly the true one.
    case subsetAccuracy = "subset_accuracy"
    /// Multi-label: fraction of (row, label) pairs predicted wrongly.
    case hammingLoss = "hamming_loss"

    /// Whether larger values are better (false for losses and errors).
    public var higherIsBetter: Bool {
        switch self {
        case .logLoss, .rmse, .mae, .hammingLoss: return false
        default: return true
        }
    }

    /// The problem types the metric applies to.
    public var problems: Set<ProblemType> {
        switch self {
        case .precision, .recall, .f1: return [.binary]
        case .accuracy, .balancedAccuracy, .precisionMacro, .recallMacro, .logLoss: return [.binary, .multiclass]
        case .f1Macro, .rocAUC: return [.binary, .multiclass, .multilabel]
        case .f1Micro, .precisionMicro, .recallMicro, .subsetAccuracy, .hammingLoss: return [.multilabel]
        case .rmse, .mae, .r2, .pearson, .spearman: return [.regression]
        }
    }

    /// Whether the metric reads the probabilities themselves rather than only the arg-max class.
    public var needsProbabilities: Bool {
        switch self {
        case .rocAUC, .logLoss: return true
        default: return false
        }
    }

    /// Whether the metric takes labels and probabilities (as opposed to regression targets).
    public var isClassification: Bool { !problems.contains(.regression) }

    /// One line describing the metric (documentation and the pipeline schema).
    public var summary: String {
        switch self {
        case .accuracy: return "Fraction of samples whose arg-max class is the true class."
        case .balancedAccuracy: return "Mean recall over the classes present in the labels (robust to class imbalance)."
        case .precision: return "Binary: true positives / predicted positives for class 1 (0 when nothing is predicted positive)."
        case .recall: return "Binary: true positives / actual positives for class 1."
        case .f1: return "Binary: harmonic mean of precision and recall for class 1."
        case .precisionMacro: return "Unweighted mean of per-class precision over the classes in the labels or predictions."
        case .recallMacro: return "Unweighted mean of per-class recall over the classes in the labels or predictions."
        case .f1Macro: return "Unweighted mean of per-class F1 over the classes in the labels or predictions; multi-label: over every label (threshold 0.5)."
        case .rocAUC: return "Area under the ROC curve of P(class 1); multiclass: one-vs-rest macro average; multi-label: mean over labels. NaN with one class (multi-label: when a label is always or never present)."
        case .logLoss: return "Mean −log P(true class), probabilities clipped to [1e-15, 1 − 1e-15] and rows renormalised."
        case .rmse: return "Root mean squared error."
        case .mae: return "Mean absolute error."
        case .r2: return "Coefficient of determination 1 − SS_res / SS_tot (constant targets: 1 if perfect, else 0)."
        case .pearson: return "Pearson correlation of predictions and targets (NaN when either is constant)."
        case .spearman: return "Spearman rank correlation with average ranks for ties (NaN when either is constant)."
        case .f1Micro: return "Multi-label: F1 of the counts pooled over every label, a label predicted when P ≥ 0.5."
        case .precisionMicro: return "Multi-label: precision of the counts pooled over every label (threshold 0.5)."
        case .recallMicro: return "Multi-label: recall of the counts pooled over every label (threshold 0.5)."
        case .subsetAccuracy: return "Multi-label: fraction of rows whose predicted label set equals the true one (threshold 0.5)."
        case .hammingLoss: return "Multi-label: fraction of (row, label) pairs predicted wrongly (threshold 0.5)."
        }
    }

    /// AutoGluon-Multimodal's default evaluation metric: ROC AUC (binary), accuracy (multiclass),
    /// RMSE (regression). Multi-label (which AutoMM lacks): micro F1 at threshold 0.5 — defined
    /// whatever labels a validation set happens to lack, where macro ROC AUC is not.
    public static func defaultMetric(for problem: ProblemType) -> Metric {
        switch problem {
        case .binary: return .rocAUC
        case .multiclass: return .accuracy
        case .regression: return .rmse
        case .multilabel: return .f1Micro
        }
    }

    /// The metrics a run reports for `problem`.
    public static func standardSet(for problem: ProblemType) -> [Metric] {
        switch problem {
        case .binary: return [.accuracy, .balancedAccuracy, .precision, .recall, .f1, .rocAUC, .logLoss]
        case .multiclass: return [.accuracy, .balancedAccuracy, .precisionMacro, .recallMacro, .f1Macro, .rocAUC, .logLoss]
        case .regression: return [.rmse, .mae, .r2, .pearson, .spearman]
        case .multilabel: return [.f1Micro, .f1Macro, .precisionMicro, .recallMicro, .subsetAccuracy, .hammingLoss, .rocAUC]
        }
    }

    // MARK: - Computing

    /// The metric from true class indices and per-sample rows of class probabilities.
    /// Throws when the metric is a regression metric or the inputs are invalid.
    public func compute(classification labels: [Int], probabilities: [[Double]]) throws -> Double {
        try compute(on: ClassificationData(labels: labels, rows: probabilities, context: rawValue))
    }

    /// The metric from true class indices and probabilities stored row-major, `classCount` per sample
    /// (e.g. the `toArray()` of a softmax output of shape [n, classCount]).
    public func compute(classification labels: [Int], probabilities: [Float], classCount: Int) throws -> Double {
        try compute(on: ClassificationData(labels: labels, flat: probabilities, classCount: classCount, context: rawValue))
    }

    /// The metric from regression targets and predictions. Throws when the metric is a
    /// classification metric or the inputs are invalid.
    public func compute(regression targets: [Double], predictions: [Double]) throws -> Double {
        try compute(on: RegressionData(targets: targets, predictions: predictions, context: rawValue))
    }

    func compute(on d: ClassificationData) throws -> Double {
        switch self {
        case .accuracy: return d.accuracy()
        case .balancedAccuracy: return d.balancedAccuracy()
        case .precision, .recall, .f1:
            guard d.classCount == 2 else {
                throw TrainingError.invalidMetricInput(
                    metric: rawValue,
                    detail: "applies to binary problems (2 probability columns), got \(d.classCount) columns; use \(rawValue)_macro for multiclass")
            }
            let c = d.binaryCounts()
            if self == .precision { return ratio(c.tp, c.tp + c.fp) }
            if self == .recall { return ratio(c.tp, c.tp + c.fn) }
            return ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn)
        case .precisionMacro: return d.macro(.precision)
        case .recallMacro: return d.macro(.recall)
        case .f1Macro: return d.macro(.f1)
        case .rocAUC: return d.rocAUC()
        case .logLoss: return d.logLoss()
        case .f1Micro, .precisionMicro, .recallMicro, .subsetAccuracy, .hammingLoss:
            throw TrainingError.invalidMetricInput(
                metric: rawValue, detail: "is a multi-label metric; call compute(multilabel:probabilities:labelCount:)")
        case .rmse, .mae, .r2, .pearson, .spearman:
            throw TrainingError.invalidMetricInput(
                metric: rawValue, detail: "is a regression metric; call compute(regression:predictions:) with targets and predictions")
        }
    }

    func compute(on d: RegressionData) throws -> Double {
        switch self {
        case .rmse: return d.rmse()
        case .mae: return d.mae()
        case .r2: return d.r2()
        case .pearson: return pearsonCorrelation(d.targets, d.predictions)
        case .spearman: return pearsonCorrelation(averageRanks(d.targets), averageRanks(d.predictions))
        default:
            throw TrainingError.invalidMetricInput(
                metric: rawValue,
                detail: "is a classification metric; call compute(classification:probabilities:) with labels and class probabilities")
        }
    }
}

/// `num / den`, or 0 when `den` is 0 (sklearn's zero-division result).
@inline(__always)
func ratio(_ num: Int, _ den: Int) -> Double { den == 0 ? 0 : Double(num) / Double(den) }

// MARK: - Metric sets

/// The metrics evaluated together for one problem, keyed by their raw names.
///
///     let set = MetricSet.standard(for: .multiclass)
///     let values = try set.evaluate(labels: y, probabilities: probs, classCount: 3, keyPrefix: "val.")
///     values["val.f1_macro"]
public struct MetricSet: Codable, Sendable, Equatable {
    /// The problem the metrics are evaluated for.
    public let problem: ProblemType
    /// The metrics in reporting order, each once.
    public let metrics: [Metric]

    /// Throws when a metric does not apply to `problem`. Repeated metrics are kept once.
    public init(problem: ProblemType, metrics: [Metric]) throws {
        var seen = Set<Metric>()
        var unique: [Metric] = []
        for m in metrics where seen.insert(m).inserted {
            guard m.problems.contains(problem) else {
                let fitting = Metric.allCases.filter { $0.problems.contains(problem) }.map(\.rawValue)
                throw TrainingError.invalidMetricInput(
                    metric: m.rawValue,
                    detail: "does not apply to \(problem.rawValue) problems; choose from \(fitting.joined(separator: ", "))")
            }
            unique.append(m)
        }
        self.problem = problem
        self.metrics = unique
    }

    /// The metrics a run reports for `problem` (`Metric.standardSet(for:)`).
    public static func standard(for problem: ProblemType) -> MetricSet {
        MetricSet(checked: problem, Metric.standardSet(for: problem))
    }

    init(checked problem: ProblemType, _ metrics: [Metric]) {
        self.problem = problem
        self.metrics = metrics
    }

    enum CodingKeys: String, CodingKey { case problem, metrics }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(problem: c.decode(ProblemType.self, forKey: .problem), metrics: c.decode([Metric].self, forKey: .metrics))
    }

    /// Every metric from labels and probability rows, keyed `keyPrefix + metric.rawValue`.
    public func evaluate(labels: [Int], probabilities: [[Double]], keyPrefix: String = "") throws -> [String: Double] {
        try evaluate(ClassificationData(labels: labels, rows: probabilities, context: "evaluate"), keyPrefix: keyPrefix)
    }

    /// Every metric from labels and row-major probabilities with `classCount` columns.
    public func evaluate(labels: [Int], probabilities: [Float], classCount: Int, keyPrefix: String = "") throws -> [String: Double] {
        try evaluate(ClassificationData(labels: labels, flat: probabilities, classCount: classCount, context: "evaluate"),
                     keyPrefix: keyPrefix)
    }

    /// Every metric from regression targets and predictions.
    public func evaluate(targets: [Double], predictions: [Double], keyPrefix: String = "") throws -> [String: Double] {
        guard problem == .regression else {
            throw TrainingError.invalidMetricInput(
                metric: "evaluate", detail: "\(problem.rawValue) metrics need labels and probabilities, not regression targets")
        }
        let d = try RegressionData(targets: targets, predictions: predictions, context: "evaluate")
        var out: [String: Double] = [:]
        for m in metrics { out[keyPrefix + m.rawValue] = try m.compute(on: d) }
        return out
    }

    /// Evaluates `metrics` (default: the standard set) for a classification problem.
    public static func evaluate(problem: ProblemType, metrics: [Metric]? = nil, labels: [Int], probabilities: [[Double]],
                                keyPrefix: String = "") throws -> [String: Double] {
        try MetricSet(problem: problem, metrics: metrics ?? Metric.standardSet(for: problem))
            .evaluate(labels: labels, probabilities: probabilities, keyPrefix: keyPrefix)
    }

    /// Evaluates `metrics` (default: the standard set) for a classification problem from row-major probabilities.
    public static func evaluate(problem: ProblemType, metrics: [Metric]? = nil, labels: [Int], probabilities: [Float],
                                classCount: Int, keyPrefix: String = "") throws -> [String: Double] {
        try MetricSet(problem: problem, metrics: metrics ?? Metric.standardSet(for: problem))
            .evaluate(labels: labels, probabilities: probabilities, classCount: classCount, keyPrefix: keyPrefix)
    }

    /// Evaluates `metrics` (default: the standard regression set) from targets and predictions.
    public static func evaluate(problem: ProblemType, metrics: [Metric]? = nil, targets: [Double], predictions: [Double],
                                keyPrefix: String = "") throws -> [String: Double] {
        try MetricSet(problem: problem, metrics: metrics ?? Metric.standardSet(for: problem))
            .evaluate(targets: targets, predictions: predictions, keyPrefix: keyPrefix)
    }

    func evaluate(_ d: ClassificationData, keyPrefix: String) throws -> [String: Double] {
        switch problem {
        case .regression:
            throw TrainingError.invalidMetricInput(
                metric: "evaluate", detail: "regression metrics need targets and predictions, not labels and probabilities")
        case .binary:
            guard d.classCount == 2 else {
                throw TrainingError.invalidMetricInput(
                    metric: "evaluate", detail: "a binary problem needs 2 probability columns [P(0), P(1)], got \(d.classCount)")
            }
        case .multiclass:
            break
        case .multilabel:
            throw TrainingError.invalidMetricInput(
                metric: "evaluate", detail: "multi-label metrics need 0/1 indicators per label; call evaluate(indicators:probabilities:labelCount:)")
        }
        var out: [String: Double] = [:]
        for m in metrics { out[keyPrefix + m.rawValue] = try m.compute(on: d) }
        return out
    }
}
