import Training

extension ProblemInference {
    /// Integer labels with at most this many distinct values can be classes.
    public static let multiclassMaximumIntegerClasses = 20
    /// …and only when distinct values are at most this fraction of the labelled rows.
    public static let multiclassMaximumUniqueRatio = 0.1

    /// Infers the problem type of `label`, or validates a `forced` one, as AutoGluon does:
    ///
    /// - non-numeric labels: `two-classes` → binary, `non-numeric-classes` → multiclass;
    /// - numeric labels: `two-classes` → binary; `few-integer-values` → multiclass when every
    ///   value is an integer, there are at most `multiclassMaximumIntegerClasses` of them and the
    ///   unique ratio is at most `multiclassMaximumUniqueRatio`; `continuous` → regression.
    ///
    /// Missing labels are left out (those rows are dropped from training).
    ///
    /// - Throws: `columnNotFound` (with a "did you mean"), `labelAllMissing`, `singleClass`, or
    ///   `problemTypeMismatch` when `forced` does not fit (regression on a non-number names the
    ///   first bad line; binary with other than two classes lists them).
    public static func infer(table: Table, label: String, forced: ProblemType? = nil) throws -> ProblemInference {
        let cells = try table.requireColumn(named: label, role: "label")
        let statistics = ColumnStatistics(cells)
        guard statistics.nonMissingCount > 0 else { throw TableError.labelAllMissing(column: label, path: table.source) }
        let classes = ClassOrder.sorted(Array(Set(statistics.values)))
        if classes.count == 1 { throw TableError.singleClass(column: label, path: table.source, value: classes[0]) }
        let evidence = [
            Evidence("labelled rows", "\(statistics.nonMissingCount)/\(statistics.rowCount)"),
            Evidence("distinct values", "\(classes.count)"),
            Evidence("unique ratio", CellText.format(statistics.uniqueRatio)),
            Evidence("numeric fraction", CellText.format(statistics.numericFraction)),
        ]
        let shown = classes.prefix(10).map { "'\($0)'" }.joined(separator: ", ") + (classes.count > 10 ? ", …" : "")

        if let forced {
            switch forced {
            case .regression:
                if let bad = cells.indices.first(where: { cells[$0].map { CellText.number($0) == nil } ?? false }) {
                    throw TableError.problemTypeMismatch(
                        column: label, problem: forced.rawValue,
                        detail: "\(table.source):\(table.lineNumbers[bad]) holds '\(cells[bad] ?? "")', which is not a number; "
                            + "use binary or multiclass, or fix the value")
                }
            case .binary:
                if classes.count != 2 {
                    throw TableError.problemTypeMismatch(
                        column: label, problem: forced.rawValue,
                        detail: "it has \(classes.count) classes (\(shown)) and binary needs exactly 2; use multiclass")
                }
            case .multiclass:
                break
            case .multilabel:
                throw TableError.problemTypeMismatch(
                    column: label, problem: forced.rawValue,
                    detail: "a multi-label task is read by MultiLabelProcessor, not inferred from one label column")
            }
            return ProblemInference(problem: forced, rule: "forced",
                                    reason: "set to \(forced.rawValue) in the pipeline; the label has \(classes.count) distinct values",
                                    classCount: forced == .regression ? nil : classes.count, evidence: evidence)
        }

        if classes.count == 2 {
            return ProblemInference(problem: .binary, rule: "two-classes",
                                    reason: "the label has exactly two values (\(shown))", classCount: 2, evidence: evidence)
        }
        guard let numbers = statistics.numbers else {
            return ProblemInference(problem: .multiclass, rule: "non-numeric-classes",
                                    reason: "the label has \(classes.count) distinct non-numeric values", classCount: classes.count,
                                    evidence: evidence)
        }
        let integers = numbers.allSatisfy { $0 == $0.rounded() }
        if integers, classes.count <= multiclassMaximumIntegerClasses, statistics.uniqueRatio <= multiclassMaximumUniqueRatio {
            return ProblemInference(problem: .multiclass, rule: "few-integer-values",
                                    reason: "the label has \(classes.count) distinct integer values, few for \(statistics.nonMissingCount) rows",
                                    classCount: classes.count, evidence: evidence)
        }
        let why = integers
            ? "the label's \(classes.count) distinct integers are too many to be classes (at most \(multiclassMaximumIntegerClasses) and a unique ratio ≤ \(multiclassMaximumUniqueRatio))"
            : "the label holds non-integer numbers"
        return ProblemInference(problem: .regression, rule: "continuous", reason: why, classCount: nil, evidence: evidence)
    }
}

/// The deterministic order of class values: numerically when every value is a number (ties
/// between spellings of one number broken by text), otherwise by Unicode scalars.
enum ClassOrder {
    static func sorted(_ values: [String]) -> [String] {
        let numbers = values.map(CellText.number)
        if numbers.allSatisfy({ $0 != nil }) {
            return zip(values, numbers).sorted { a, b in
                let (x, y) = (a.1 ?? 0, b.1 ?? 0)
                return x != y ? x < y : CellText.scalarLess(a.0, b.0)
            }.map(\.0)
        }
        return values.sorted(by: CellText.scalarLess)
    }
}
