/// Imputes and scales one numeric column, fitted on training rows only.
///
/// Missing cells are filled with the training median or mean; then the column is scaled:
/// - `standard`: (x − mean) / std with the population standard deviation, as scikit-learn's
///   `StandardScaler`;
/// - `quantile`: mapped to a standard normal through the training column's empirical CDF, as
///   scikit-learn's `QuantileTransformer(output_distribution="normal")`: `min(1000, n)`
///   quantiles at evenly spaced probabilities (numpy's linear percentiles, made non-decreasing),
///   a value's probability interpolated linearly (averaged over both directions so repeated
///   quantiles map to their middle), values at or beyond the ends mapped to probability 0 or 1,
///   then the normal quantile function clipped to ±`clipBound` (≈ 5.1993). Unlike scikit-learn
///   there is no random subsampling above 10 000 rows: every training value is used.
/// - `none`: the imputed value itself.
///
/// Scaling statistics are computed on the imputed training column, as a scikit-learn
/// `SimpleImputer` → scaler pipeline does. A constant column scales to 0 (standard and
/// quantile) without dividing by zero.
public struct NumericProcessor: Codable, Equatable, Sendable {
    /// How missing values are filled.
    public enum Imputation: String, Codable, Sendable, CaseIterable {
        /// The training median (the mean of the two middle values for an even count).
        case median
        /// The training mean.
        case mean
    }

    /// How imputed values are scaled.
    public enum Scaling: String, Codable, Sendable, CaseIterable {
        /// Zero mean, unit variance.
        case standard
        /// Empirical CDF mapped to a standard normal.
        case quantile
        /// No scaling.
        case none
    }

    /// The most quantiles the quantile scaling keeps (scikit-learn's default `n_quantiles`).
    public static let maximumQuantiles = 1000
    /// Probabilities within this distance of the ends are clamped (scikit-learn's `BOUNDS_THRESHOLD`).
    static let boundsThreshold = 1e-7
    /// Quantile outputs are clipped to ±this: Φ⁻¹(1 − (1e-7 − ε)) ≈ 5.1993, as scikit-learn clips.
    public static let clipBound = -StandardNormal.quantile(boundsThreshold - Double.ulpOfOne)

    /// The column this processor reads.
    public let column: String
    /// The imputation used.
    public let imputation: Imputation
    /// The scaling used.
    public let scaling: Scaling
    /// The value missing cells are replaced with.
    public let fillValue: Double
    /// The imputed training column's mean.
    public let mean: Double
    /// The imputed training column's population standard deviation.
    public let standardDeviation: Double
    /// Whether every imputed training value is the same.
    public let isConstant: Bool
    /// The quantiles at evenly spaced probabilities 0…1 (empty unless `scaling == .quantile`).
    public let quantiles: [Double]

    /// Fits on the column `column` of `table` (the training rows).
    /// - Throws: `columnNotFound`; `nonNumericValue` naming the line of a non-number;
    ///   `nothingToFit` when every cell is missing.
    public static func fit(_ table: Table, column: String, imputation: Imputation = .median,
                           scaling: Scaling = .standard) throws -> NumericProcessor {
        try fit(table.requireColumn(named: column, role: "numeric"), column: column, source: table.source,
                lineNumbers: table.lineNumbers, impute: imputation, scale: scaling)
    }

    /// Fits on training cells; `source` and `lineNumbers` (one per cell) locate errors.
    /// - Throws: `nonNumericValue` naming the line of a non-number; `nothingToFit` when every
    ///   cell is missing.
    public static func fit(_ cells: [String?], column: String, source: String, lineNumbers: [Int],
                           impute imputation: Imputation = .median, scale scaling: Scaling = .standard) throws -> NumericProcessor {
        let table = (path: source, lines: lineNumbers)
        var observed: [Double] = []
        observed.reserveCapacity(cells.count)
        for (row, cell) in cells.enumerated() {
            guard let cell else { continue }
            guard let value = CellText.number(cell) else {
                throw TableError.nonNumericValue(column: column, path: table.path, line: table.lines[row], value: cell)
            }
            observed.append(value)
        }
        guard !observed.isEmpty else {
            throw TableError.nothingToFit(column: column, path: table.path, detail: "every training value is missing")
        }
        let fill: Double
        switch imputation {
        case .mean: fill = Self.mean(of: observed)
        case .median:
            let sorted = observed.sorted()
            let middle = sorted.count / 2
            fill = sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
        }
        let imputed = cells.map { cell in cell.flatMap(CellText.number) ?? fill }
        let mean = Self.mean(of: imputed)
        var squares = 0.0
        for value in imputed { squares += (value - mean) * (value - mean) }
        let deviation = (squares / Double(imputed.count)).squareRoot()
        let constant = imputed.allSatisfy { $0 == imputed[0] }
        return NumericProcessor(column: column, imputation: imputation, scaling: scaling, fillValue: fill, mean: mean,
                                standardDeviation: deviation, isConstant: constant,
                                quantiles: scaling == .quantile ? Self.quantiles(of: imputed) : [])
    }

    /// Transforms the column `column` of `table` (any rows).
    /// - Throws: `columnNotFound`, or `nonNumericValue` with the column and line of a non-number.
    public func transform(_ table: Table) throws -> [Float] {
        try transform(table.requireColumn(named: column, role: "numeric"), column: column, source: table.source,
                      lineNumbers: table.lineNumbers)
    }

    /// Transforms cells; `column`, `source` and `lineNumbers` (one per cell) locate errors.
    /// - Throws: `nonNumericValue` with the column and line of a non-number.
    public func transform(_ cells: [String?], column: String, source: String, lineNumbers: [Int]) throws -> [Float] {
        let negatedQuantiles = quantiles.reversed().map { -$0 }
        let references = Self.references(count: quantiles.count)
        let negatedReferences = references.reversed().map { -$0 }
        var output = [Float]()
        output.reserveCapacity(cells.count)
        for (row, cell) in cells.enumerated() {
            var value = fillValue
            if let cell {
                guard let number = CellText.number(cell) else {
                    throw TableError.nonNumericValue(column: column, path: source, line: lineNumbers[row], value: cell)
                }
                value = number
            }
            output.append(Float(scaled(value, references: references, negatedQuantiles: negatedQuantiles,
                                       negatedReferences: negatedReferences)))
        }
        return output
    }

    /// The scaled form of one (already imputed) value.
    public func scaled(_ value: Double) -> Double {
        let references = Self.references(count: quantiles.count)
        return scaled(value, references: references, negatedQuantiles: quantiles.reversed().map { -$0 },
                      negatedReferences: references.reversed().map { -$0 })
    }

    private func scaled(_ value: Double, references: [Double], negatedQuantiles: [Double], negatedReferences: [Double]) -> Double {
        switch scaling {
        case .none:
            return value
        case .standard:
            return isConstant || standardDeviation == 0 ? 0 : (value - mean) / standardDeviation
        case .quantile:
            if isConstant { return 0 }
            let probability: Double
            if value - Self.boundsThreshold < quantiles[0] {
                probability = 0
            } else if value + Self.boundsThreshold > quantiles[quantiles.count - 1] {
                probability = 1
            } else {
                probability = 0.5 * (Self.interpolate(value, quantiles, references)
                                     - Self.interpolate(-value, negatedQuantiles, negatedReferences))
            }
            return min(max(StandardNormal.quantile(probability), -Self.clipBound), Self.clipBound)
        }
    }

    // MARK: - Helpers

    private static func mean(of values: [Double]) -> Double {
        var sum = 0.0
        for value in values { sum += value }
        return sum / Double(values.count)
    }

    /// `count` evenly spaced probabilities from 0 to 1.
    static func references(count: Int) -> [Double] {
        count < 2 ? [0] : (0..<count).map { Double($0) / Double(count - 1) }
    }

    /// numpy-style linear percentiles at `references(min(1000, n))`, made non-decreasing.
    static func quantiles(of values: [Double]) -> [Double] {
        let sorted = values.sorted()
        let n = sorted.count
        var result = references(count: min(maximumQuantiles, n)).map { p -> Double in
            let position = p * Double(n - 1)
            let low = min(Int(position.rounded(.down)), n - 1)
            let high = min(low + 1, n - 1)
            return sorted[low] + (position - Double(low)) * (sorted[high] - sorted[low])
        }
        for index in result.indices.dropFirst() where result[index] < result[index - 1] {
            result[index] = result[index - 1]
        }
        return result
    }

    /// numpy's `interp(x, xp, fp)` for non-decreasing `xp`.
    static func interpolate(_ x: Double, _ xp: [Double], _ fp: [Double]) -> Double {
        guard let first = xp.first, let last = xp.last else { return 0 }
        if x < first { return fp[0] }
        if x >= last { return fp[fp.count - 1] }
        var low = 0
        var high = xp.count - 1  // xp[low] <= x < xp[high]
        while high - low > 1 {
            let middle = (low + high) / 2
            if xp[middle] <= x { low = middle } else { high = middle }
        }
        let slope = (fp[high] - fp[low]) / (xp[high] - xp[low])
        return slope * (x - xp[low]) + fp[low]
    }
}

/// The imputation choices of `NumericProcessor` (pipeline key `impute`).
public typealias NumericImputation = NumericProcessor.Imputation
/// The scaling choices of `NumericProcessor` (pipeline key `scale`).
public typealias NumericScaling = NumericProcessor.Scaling
