import Foundation
import Training
import XCTest

/// Reference values from scikit-learn 1.9.1 / scipy 1.17.1. Inputs (Python):
///
///     from sklearn import metrics as M; from scipy import stats; import numpy as np
///     yb = [0,1,1,0,1,0,1,1,0,0]; p1 = np.array([0.1,0.9,0.4,0.4,0.65,0.3,0.4,0.8,0.55,0.5])
///     Pb = np.stack([1-p1, p1], 1); pb = Pb.argmax(1)
///     ym = [0,0,0,0,0,0,0,1,1,2,0,1]; Pm = <multiclassRows below>; pm = Pm.argmax(1)
///     t = [3.0,-0.5,2.0,7.0,2.0,4.5]; p = [2.5,0.0,2.0,8.0,2.5,2.5]
final class MetricsTests: XCTestCase {
    // MARK: - Fixtures

    let binaryLabels = [0, 1, 1, 0, 1, 0, 1, 1, 0, 0]
    /// Tied scores (0.4 three times) and a 0.5/0.5 row, predicted as class 0 like numpy's argmax.
    var binaryRows: [[Double]] {
        [0.1, 0.9, 0.4, 0.4, 0.65, 0.3, 0.4, 0.8, 0.55, 0.5].map { [1 - $0, $0] }
    }

    /// Imbalanced: 8 × class 0, 3 × class 1, 1 × class 2; rows with tied maxima.
    let multiclassLabels = [0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 0, 1]
    let multiclassRows: [[Double]] = [
        [0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [0.2, 0.5, 0.3], [0.6, 0.2, 0.2], [0.4, 0.4, 0.2], [0.8, 0.1, 0.1],
        [0.3, 0.3, 0.4], [0.2, 0.6, 0.2], [0.5, 0.3, 0.2], [0.1, 0.3, 0.6], [0.9, 0.05, 0.05], [0.3, 0.4, 0.3],
    ]

    let targets = [3.0, -0.5, 2.0, 7.0, 2.0, 4.5]
    let predictions = [2.5, 0.0, 2.0, 8.0, 2.5, 2.5]

    func check(_ m: Metric, _ expected: Double, labels: [Int], rows: [[Double]], file: StaticString = #filePath, line: UInt = #line) throws {
        let got = try m.compute(classification: labels, probabilities: rows)
        XCTAssertEqual(got, expected, accuracy: 1e-12, "\(m.rawValue)", file: file, line: line)
        // The flat Float entry point agrees up to Float rounding of the inputs.
        let flat = rows.flatMap { $0.map(Float.init) }
        let gotFlat = try m.compute(classification: labels, probabilities: flat, classCount: rows[0].count)
        XCTAssertEqual(gotFlat, expected, accuracy: 1e-6, "\(m.rawValue) (flat Float)", file: file, line: line)
    }

    // MARK: - Classification against scikit-learn

    func testBinaryMatchesSklearn() throws {
        let y = binaryLabels, P = binaryRows
        try check(.accuracy, 0.7, labels: y, rows: P)                     // M.accuracy_score(yb, pb)
        try check(.balancedAccuracy, 0.7, labels: y, rows: P)             // M.balanced_accuracy_score(yb, pb)
        try check(.precision, 0.75, labels: y, rows: P)                   // M.precision_score(yb, pb)
        try check(.recall, 0.6, labels: y, rows: P)                       // M.recall_score(yb, pb)
        try check(.f1, 0.6666666666666666, labels: y, rows: P)            // M.f1_score(yb, pb)
        try check(.rocAUC, 0.8, labels: y, rows: P)                       // M.roc_auc_score(yb, p1)
        try check(.logLoss, 0.5056384406953066, labels: y, rows: P)       // M.log_loss(yb, Pb)
    }

    func testImbalancedMulticlassMatchesSklearn() throws {
        let y = multiclassLabels, P = multiclassRows
        try check(.accuracy, 0.75, labels: y, rows: P)                    // M.accuracy_score(ym, pm)
        try check(.balancedAccuracy, 0.8055555555555555, labels: y, rows: P) // M.balanced_accuracy_score(ym, pm)
        try check(.precisionMacro, 0.6746031746031745, labels: y, rows: P)   // M.precision_score(ym, pm, average="macro")
        try check(.recallMacro, 0.8055555555555555, labels: y, rows: P)      // M.recall_score(ym, pm, average="macro")
        try check(.f1Macro, 0.7111111111111111, labels: y, rows: P)          // M.f1_score(ym, pm, average="macro")
        try check(.rocAUC, 0.8809799382716049, labels: y, rows: P)           // M.roc_auc_score(ym, Pm, multi_class="ovr")
        try check(.logLoss, 0.730064003966914, labels: y, rows: P)           // M.log_loss(ym, Pm, labels=[0,1,2])
    }

    /// Class 3 is only predicted, never a label: macro averages include it (sklearn's default
    /// labels are the union), balanced accuracy does not.
    func testClassOnlyInPredictions() throws {
        let y = [0, 1, 2, 2, 1, 0]
        let predicted = [0, 3, 2, 3, 1, 1]
        let rows = predicted.map { p in (0..<4).map { $0 == p ? 0.7 : 0.1 } }
        try check(.balancedAccuracy, 0.5, labels: y, rows: rows)             // M.balanced_accuracy_score(yc, pc)
        try check(.precisionMacro, 0.625, labels: y, rows: rows)             // M.precision_score(yc, pc, average="macro")
        try check(.recallMacro, 0.375, labels: y, rows: rows)                // M.recall_score(yc, pc, average="macro")
        try check(.f1Macro, 0.45833333333333326, labels: y, rows: rows)      // M.f1_score(yc, pc, average="macro")
    }

    func testUndefinedCases() throws {
        // No predicted positives: precision 0 (sklearn zero_division result), f1 0.
        let allNegative = [[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]]
        XCTAssertEqual(try Metric.precision.compute(classification: [0, 1, 1], probabilities: allNegative), 0)
        XCTAssertEqual(try Metric.f1.compute(classification: [0, 1, 1], probabilities: allNegative), 0)
        // One class present: ROC AUC undefined → NaN.
        XCTAssert(try Metric.rocAUC.compute(classification: [1, 1, 1], probabilities: allNegative).isNaN)
        XCTAssert(try Metric.rocAUC.compute(classification: [2, 2], probabilities: [[0.1, 0.2, 0.7], [0.3, 0.3, 0.4]]).isNaN)
        // Multiclass OvR over the classes present (class 2 absent): mean of the two class AUCs.
        let auc = try Metric.rocAUC.compute(classification: [0, 1, 0, 1],
                                            probabilities: [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.1, 0.4], [0.4, 0.5, 0.1]])
        XCTAssertEqual(auc, 1.0)
        // All ties: AUC 0.5.
        XCTAssertEqual(try Metric.rocAUC.compute(classification: [0, 1, 0, 1], probabilities: Array(repeating: [0.5, 0.5], count: 4)), 0.5)
    }

    func testLogLossClipsAndRenormalises() throws {
        // Row [0.1, 0.3] renormalises to [0.25, 0.75].
        XCTAssertEqual(try Metric.logLoss.compute(classification: [0], probabilities: [[0.1, 0.3]]), -Foundation.log(0.25), accuracy: 1e-15)
        // Clipping comes first: [2, 6] → [1 − 1e-15, 1 − 1e-15] → [0.5, 0.5].
        XCTAssertEqual(try Metric.logLoss.compute(classification: [0], probabilities: [[2, 6]]), -Foundation.log(0.5), accuracy: 1e-15)
        // p = 0 clipped to 1e-15 (and the row renormalised by 1 + 1e-15 − 1e-15… ≈ 1).
        XCTAssertEqual(try Metric.logLoss.compute(classification: [0], probabilities: [[0, 1]]), -Foundation.log(1e-15), accuracy: 1e-9)
    }

    // MARK: - Regression against scikit-learn / scipy

    func testRegressionMatchesReference() throws {
        let t = targets, p = predictions
        func value(_ m: Metric) throws -> Double { try m.compute(regression: t, predictions: p) }
        XCTAssertEqual(try value(.rmse), 0.9789450103725609, accuracy: 1e-12)    // M.root_mean_squared_error(t, p)
        XCTAssertEqual(try value(.mae), 0.75, accuracy: 1e-12)                   // M.mean_absolute_error(t, p)
        XCTAssertEqual(try value(.r2), 0.823076923076923, accuracy: 1e-12)       // M.r2_score(t, p)
        XCTAssertEqual(try value(.pearson), 0.9173256791236964, accuracy: 1e-12) // stats.pearsonr(t, p)[0]
        XCTAssertEqual(try value(.spearman), 0.8932596002688613, accuracy: 1e-12) // stats.spearmanr(t, p)[0] (ties in both)
    }

    func testRegressionDegenerateCases() throws {
        XCTAssertEqual(try Metric.r2.compute(regression: [2, 2, 2], predictions: [2, 2, 2]), 1.0)   // M.r2_score([2,2,2],[2,2,2])
        XCTAssertEqual(try Metric.r2.compute(regression: [2, 2, 2], predictions: [2, 2, 3]), 0.0)   // M.r2_score([2,2,2],[2,2,3])
        XCTAssert(try Metric.pearson.compute(regression: [1, 2, 3], predictions: [5, 5, 5]).isNaN)
        XCTAssert(try Metric.spearman.compute(regression: [4, 4, 4], predictions: [1, 2, 3]).isNaN)
    }

    // MARK: - Validation

    func testInvalidInputsThrow() {
        assertThrowsContaining(["metric accuracy", "3 labels but 2 probability rows"]) {
            _ = try Metric.accuracy.compute(classification: [0, 1, 1], probabilities: [[0.5, 0.5], [0.5, 0.5]])
        }
        assertThrowsContaining(["metric accuracy", "no samples"]) {
            _ = try Metric.accuracy.compute(classification: [], probabilities: [])
        }
        assertThrowsContaining(["metric log_loss", "label 2 at index 1 is out of range 0..<2"]) {
            _ = try Metric.logLoss.compute(classification: [0, 2], probabilities: [[0.5, 0.5], [0.5, 0.5]])
        }
        assertThrowsContaining(["metric f1", "row 1 has 3 values"]) {
            _ = try Metric.f1.compute(classification: [0, 1], probabilities: [[0.5, 0.5], [0.2, 0.3, 0.5]])
        }
        assertThrowsContaining(["metric f1", "use f1_macro"]) {
            _ = try Metric.f1.compute(classification: [0, 1], probabilities: [[0.2, 0.3, 0.5], [0.2, 0.3, 0.5]])
        }
        assertThrowsContaining(["metric rmse", "3 targets but 2 predictions"]) {
            _ = try Metric.rmse.compute(regression: [1, 2, 3], predictions: [1, 2])
        }
        assertThrowsContaining(["metric mae", "empty targets"]) {
            _ = try Metric.mae.compute(regression: [Double](), predictions: [])
        }
        assertThrowsContaining(["metric rmse", "prediction at index 1 is nan"]) {
            _ = try Metric.rmse.compute(regression: [1, 2], predictions: [1, .nan])
        }
        assertThrowsContaining(["metric accuracy", "is a classification metric"]) {
            _ = try Metric.accuracy.compute(regression: [1, 2], predictions: [1, 2])
        }
        assertThrowsContaining(["metric r2", "is a regression metric"]) {
            _ = try Metric.r2.compute(classification: [0, 1], probabilities: [[0.5, 0.5], [0.5, 0.5]])
        }
        assertThrowsContaining(["metric f1", "does not apply to multiclass"]) {
            _ = try MetricSet(problem: .multiclass, metrics: [.accuracy, .f1])
        }
        assertThrowsContaining(["binary problem needs 2 probability columns"]) {
            _ = try MetricSet.evaluate(problem: .binary, labels: [0, 1], probabilities: [[0.2, 0.3, 0.5], [0.2, 0.3, 0.5]])
        }
    }

    // MARK: - Catalogue and sets

    func testCatalogue() {
        XCTAssertEqual(Metric.allCases.map(\.rawValue),
                       ["accuracy", "balanced_accuracy", "precision", "recall", "f1", "precision_macro", "recall_macro", "f1_macro",
                        "roc_auc", "log_loss", "rmse", "mae", "r2", "pearson", "spearman",
                        "f1_micro", "precision_micro", "recall_micro", "subset_accuracy", "hamming_loss"])
        XCTAssertEqual(Metric.defaultMetric(for: .binary), .rocAUC)
        XCTAssertEqual(Metric.defaultMetric(for: .multiclass), .accuracy)
        XCTAssertEqual(Metric.defaultMetric(for: .regression), .rmse)
        XCTAssertEqual(Metric.allCases.filter { !$0.higherIsBetter }, [.logLoss, .rmse, .mae, .hammingLoss])
        XCTAssertEqual(Metric.allCases.filter(\.needsProbabilities), [.rocAUC, .logLoss])
        for problem in ProblemType.allCases {
            XCTAssert(Metric.standardSet(for: problem).allSatisfy { $0.problems.contains(problem) })
            XCTAssert(Metric.defaultMetric(for: problem).problems.contains(problem))
        }
        XCTAssert(Metric.allCases.allSatisfy { !$0.summary.isEmpty && !$0.summary.contains("\n") })
    }

    func testMetricSetEvaluate() throws {
        let values = try MetricSet.standard(for: .multiclass)
            .evaluate(labels: multiclassLabels, probabilities: multiclassRows, keyPrefix: "val.")
        XCTAssertEqual(values.keys.sorted(), ["val.accuracy", "val.balanced_accuracy", "val.f1_macro", "val.log_loss",
                                              "val.precision_macro", "val.recall_macro", "val.roc_auc"])
        XCTAssertEqual(values["val.roc_auc"] ?? 0, 0.8809799382716049, accuracy: 1e-12)

        let reg = try MetricSet.evaluate(problem: .regression, targets: targets, predictions: predictions)
        XCTAssertEqual(Set(reg.keys), ["rmse", "mae", "r2", "pearson", "spearman"])
        XCTAssertEqual(reg["mae"], 0.75)

        let binary = try MetricSet.evaluate(problem: .binary, labels: binaryLabels,
                                            probabilities: binaryRows.flatMap { $0.map(Float.init) }, classCount: 2)
        XCTAssertEqual(binary.count, 7)
        XCTAssertEqual(binary["roc_auc"] ?? 0, 0.8, accuracy: 1e-6)

        let decoded = try JSONDecoder().decode(MetricSet.self, from: Data(#"{"problem":"binary","metrics":["f1","roc_auc"]}"#.utf8))
        XCTAssertEqual(decoded.metrics, [.f1, .rocAUC])
        XCTAssertThrowsError(try JSONDecoder().decode(MetricSet.self, from: Data(#"{"problem":"regression","metrics":["f1"]}"#.utf8)))
    }
}
