import Training

/// Encodes the label column, fitted on training rows only.
///
/// Classification: the classes seen in training, ordered numerically when every one is a
/// number and by Unicode scalars otherwise, map to indices `0..<classCount`. Regression: targets
/// are standardised with the training mean and population standard deviation, and
/// `decodeTarget` undoes it. Rows with a missing label are not encoded: find them with
/// `missingLabelRows`, drop them (and say how many) before fitting and encoding.
public struct LabelProcessor: Codable, Equatable, Sendable {
    /// The label column.
    public let column: String
    /// The problem type.
    public let problem: ProblemType
    /// The classes in index order (empty for regression).
    public let classes: [String]
    /// The training targets' mean (regression; 0 otherwise).
    public let mean: Double
    /// The training targets' population standard deviation (regression; 1 otherwise).
    public let standardDeviation: Double

    private let indexByClass: [String: Int32]

    /// Creates a processor from fitted state.
    public init(column: String, problem: ProblemType, classes: [String], mean: Double, standardDeviation: Double) {
        self.column = column
        self.problem = problem
        self.classes = classes
        self.mean = mean
        self.standardDeviation = standardDeviation
        var index = [String: Int32]()
        for (position, value) in classes.enumerated() { index[value] = Int32(position) }
        self.indexByClass = index
    }

    private enum CodingKeys: String, CodingKey { case column, problem, classes, mean, standardDeviation }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(column: try container.decode(String.self, forKey: .column),
                  problem: try container.decode(ProblemType.self, forKey: .problem),
                  classes: try container.decode([String].self, forKey: .classes),
                  mean: try container.decode(Double.self, forKey: .mean),
                  standardDeviation: try container.decode(Double.self, forKey: .standardDeviation))
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(column, forKey: .column)
        try container.encode(problem, forKey: .problem)
        try container.encode(classes, forKey: .classes)
        try container.encode(mean, forKey: .mean)
        try container.encode(standardDeviation, forKey: .standardDeviation)
    }

    public static func == (lhs: LabelProcessor, rhs: LabelProcessor) -> Bool {
        lhs.column == rhs.column && lhs.problem == rhs.problem && lhs.classes == rhs.classes
            && lhs.mean == rhs.mean && lhs.standardDeviation == rhs.standardDeviation
    }

    /// The number of classes (0 for regression).
    public var classCount: Int { classes.count }

    /// Row positions in `table` whose label is missing. - Throws: `columnNotFound`.
    public static func missingLabelRows(_ table: Table, column: String) throws -> [Int] {
        let cells = try table.requireColumn(named: column, role: "label")
        return cells.indices.filter { cells[$0] == nil }
    }

    /// Fits on the labelled rows of `table` (missing labels are skipped).
    /// - Throws: `columnNotFound`; `labelAllMissing`; `singleClass` for one class;
    ///   `problemTypeMismatch` for binary with other than two classes; for regression
    ///   `nonNumericValue` (with the line) or `nothingToFit` when the targets are constant.
    public static func fit(_ table: Table, column: String, problem: ProblemType) throws -> LabelProcessor {
        try fit(table.requireColumn(named: column, role: "label"), problem: problem, column: column,
                source: table.source, lineNumbers: table.lineNumbers)
    }

    /// Fits on training label cells; `source` and `lineNumbers` (one per cell) locate errors.
    /// Throws as `fit(_:column:problem:)` does.
    public static func fit(_ cells: [String?], problem: ProblemType, column: String, source: String,
                           lineNumbers: [Int]) throws -> LabelProcessor {
        let table = (source: source, lineNumbers: lineNumbers)
        let labelled = cells.indices.filter { cells[$0] != nil }
        guard !labelled.isEmpty else { throw TableError.labelAllMissing(column: column, path: table.source) }
        switch problem {
        case .regression:
            var targets: [Double] = []
            for row in labelled {
                let cell = cells[row] ?? ""
                guard let value = CellText.number(cell) else {
                    throw TableError.nonNumericValue(column: column, path: table.source, line: table.lineNumbers[row], value: cell)
                }
                targets.append(value)
            }
            var sum = 0.0
            for value in targets { sum += value }
            let mean = sum / Double(targets.count)
            var squares = 0.0
            for value in targets { squares += (value - mean) * (value - mean) }
            let deviation = (squares / Double(targets.count)).squareRoot()
            guard deviation > 0 else {
                throw TableError.nothingToFit(column: column, path: table.source,
                                              detail: "every training target is \(CellText.format(mean)), so there is nothing to regress")
            }
            return LabelProcessor(column: column, problem: problem, classes: [], mean: mean, standardDeviation: deviation)
        case .binary, .multiclass:
            let classes = ClassOrder.sorted(Array(Set(labelled.compactMap { cells[$0] })))
            if classes.count == 1 { throw TableError.singleClass(column: column, path: table.source, value: classes[0]) }
            if problem == .binary, classes.count != 2 {
                throw TableError.problemTypeMismatch(
                    column: column, problem: problem.rawValue,
                    detail: "the training rows have \(classes.count) classes (" + classes.prefix(10).map { "'\($0)'" }.joined(separator: ", ")
                        + ") and binary needs exactly 2; use multiclass")
            }
            return LabelProcessor(column: column, problem: problem, classes: classes, mean: 0, standardDeviation: 1)
        case .multilabel:
            throw TableError.problemTypeMismatch(column: column, problem: problem.rawValue,
                                                 detail: "multi-label labels are fitted by MultiLabelProcessor")
        }
    }

    /// Class indices for every row of `table` (classification).
    /// - Throws: `missingLabel` or `unseenLabel` naming the line; `problemTypeMismatch` for a
    ///   regression processor.
    public func encodeClasses(_ table: Table) throws -> [Int32] {
        guard problem != .regression else {
            throw TableError.problemTypeMismatch(column: column, problem: problem.rawValue, detail: "regression targets have no class indices; use encodeTargets")
        }
        let cells = try table.requireColumn(named: column, role: "label")
        return try cells.indices.map { row in
            guard let cell = cells[row] else {
                throw TableError.missingLabel(column: column, path: table.source, line: table.lineNumbers[row])
            }
            guard let value = indexByClass[cell] else {
                throw TableError.unseenLabel(column: column, path: table.source, line: table.lineNumbers[row], value: cell, known: classes)
            }
            return value
        }
    }

    /// Standardised targets for every row of `table` (regression).
    /// - Throws: `missingLabel` or `nonNumericValue` naming the line; `problemTypeMismatch` for a
    ///   classification processor.
    public func encodeTargets(_ table: Table) throws -> [Float] {
        guard problem == .regression else {
            throw TableError.problemTypeMismatch(column: column, problem: "regression", detail: "the processor was fitted for \(problem.rawValue); use encodeClasses")
        }
        let cells = try table.requireColumn(named: column, role: "label")
        return try cells.indices.map { row in
            guard let cell = cells[row] else {
                throw TableError.missingLabel(column: column, path: table.source, line: table.lineNumbers[row])
            }
            guard let value = CellText.number(cell) else {
                throw TableError.nonNumericValue(column: column, path: table.source, line: table.lineNumbers[row], value: cell)
            }
            return Float((value - mean) / standardDeviation)
        }
    }

    /// One label cell encoded as a float: the class index for classification, the standardised
    /// target for regression. - Throws: `unseenLabel` or `nonNumericValue` naming `line`.
    public func encode(_ cell: String, source: String, line: Int) throws -> Float {
        switch problem {
        case .regression:
            guard let value = CellText.number(cell) else {
                throw TableError.nonNumericValue(column: column, path: source, line: line, value: cell)
            }
            return Float((value - mean) / standardDeviation)
        case .binary, .multiclass:
            guard let index = indexByClass[cell] else {
                throw TableError.unseenLabel(column: column, path: source, line: line, value: cell, known: classes)
            }
            return Float(index)
        case .multilabel:
            throw TableError.problemTypeMismatch(column: column, problem: problem.rawValue,
                                                 detail: "multi-label labels are encoded by MultiLabelProcessor")
        }
    }

    /// A standardised regression value back in the label's units: `value · std + mean`.
    public func inverse(_ value: Double) -> Double {
        value * standardDeviation + mean
    }

    /// The class at `index`, or `nil` when out of range.
    public func decode(_ index: Int) -> String? {
        classes.indices.contains(index) ? classes[index] : nil
    }

    /// A target back in the label's units (regression): `value · std + mean`.
    public func decodeTarget(_ value: Float) -> Double {
        inverse(Double(value))
    }
}
