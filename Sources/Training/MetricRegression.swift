import Foundation

/// Validated regression inputs: equally long, non-empty, finite targets and predictions.
struct RegressionData {
    let targets: [Double]
    let predictions: [Double]

    init(targets: [Double], predictions: [Double], context: String) throws {
        guard !targets.isEmpty else {
            throw TrainingError.invalidMetricInput(metric: context, detail: "no samples (empty targets); evaluate at least one sample")
        }
        guard targets.count == predictions.count else {
            throw TrainingError.invalidMetricInput(
                metric: context, detail: "\(targets.count) targets but \(predictions.count) predictions; give one prediction per target")
        }
        if let i = targets.firstIndex(where: { !$0.isFinite }) {
            throw TrainingError.invalidMetricInput(metric: context, detail: "target at index \(i) is \(targets[i]); targets must be finite")
        }
        if let i = predictions.firstIndex(where: { !$0.isFinite }) {
            throw TrainingError.invalidMetricInput(
                metric: context, detail: "prediction at index \(i) is \(predictions[i]); predictions must be finite")
        }
        self.targets = targets
        self.predictions = predictions
    }

    var count: Int { targets.count }

    func rmse() -> Double {
        var s = 0.0
        for i in 0..<count { let d = targets[i] - predictions[i]; s += d * d }
        return (s / Double(count)).squareRoot()
    }

    func mae() -> Double {
        var s = 0.0
        for i in 0..<count { s += Swift.abs(targets[i] - predictions[i]) }
        return s / Double(count)
    }

    /// 1 − SS_res / SS_tot; with constant targets 1 for a perfect prediction, else 0
    /// (`sklearn.metrics.r2_score`, `force_finite=True`).
    func r2() -> Double {
        let m = arithmeticMean(targets)
        var res = 0.0, tot = 0.0
        for i in 0..<count {
            let e = targets[i] - predictions[i], c = targets[i] - m
            res += e * e
            tot += c * c
        }
        if tot == 0 { return res == 0 ? 1 : 0 }
        return 1 - res / tot
    }
}

func arithmeticMean(_ x: [Double]) -> Double {
    var s = 0.0
    for v in x { s += v }
    return s / Double(x.count)
}

/// Pearson correlation; NaN when either input is constant (or has fewer than two values).
/// The result is clamped to [−1, 1] against rounding, as scipy does.
func pearsonCorrelation(_ x: [Double], _ y: [Double]) -> Double {
    let n = x.count
    if n < 2 { return .nan }
    let mx = arithmeticMean(x), my = arithmeticMean(y)
    var sxy = 0.0, sxx = 0.0, syy = 0.0
    for i in 0..<n {
        let dx = x[i] - mx, dy = y[i] - my
        sxy += dx * dy
        sxx += dx * dx
        syy += dy * dy
    }
    if sxx == 0 || syy == 0 { return .nan }
    let r = sxy / (sxx.squareRoot() * syy.squareRoot())
    return Swift.max(-1, Swift.min(1, r))
}
