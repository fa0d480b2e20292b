import Training

/// The detected layout of a table: every column's modality (file order, label included) and the
/// label's problem type. Codable so it can be cached and shown by `runpipe inspect`.
public struct ColumnSchema: Codable, Equatable, Sendable {
    /// The table's source path.
    public var source: String
    /// Rows in the table the schema was inferred from.
    public var rowCount: Int
    /// One inference per column, in file order.
    public var columns: [ColumnInference]
    /// The label column's name, if any.
    public var label: String?
    /// The label's problem type, if there is a label.
    public var problem: ProblemInference?

    /// Creates a schema.
    public init(source: String, rowCount: Int, columns: [ColumnInference], label: String?, problem: ProblemInference?) {
        self.source = source
        self.rowCount = rowCount
        self.columns = columns
        self.label = label
        self.problem = problem
    }

    /// The columns used as model inputs: not the label and not ignored, in file order.
    public var features: [ColumnInference] {
        columns.filter { !$0.isLabel && $0.modality != .ignore }
    }

    /// The inference for the column named `name`.
    public func column(named name: String) -> ColumnInference? {
        columns.first { $0.name == name }
    }

    /// A plain-text report: the label's problem type, then one line per column with its
    /// modality, rule and evidence, then each column's reason.
    public func rendered() -> String {
        var lines = ["table: \(source) (\(rowCount) rows, \(columns.count) columns)"]
        if let label, let problem {
            let classes = problem.classCount.map { ", \($0) classes" } ?? ""
            lines.append("label: \(label) → \(problem.problem.rawValue) [\(problem.rule)\(classes)] — \(problem.reason)")
        }
        let header = ["column", "modality", "rule", "evidence"]
        let rows = columns.map { column -> [String] in
            [column.name + (column.isLabel ? " (label)" : ""), column.modality.rawValue, column.rule,
             column.evidence.map { "\($0.label) \($0.value)" }.joined(separator: ", ")]
        }
        let widths = (0..<3).map { index in ([header] + rows).map { $0[index].count }.max() ?? 0 }
        func format(_ row: [String]) -> String {
            (0..<3).map { row[$0] + String(repeating: " ", count: widths[$0] - row[$0].count) }.joined(separator: "  ")
                + "  " + row[3]
        }
        lines.append("")
        lines.append(format(header))
        lines.append(format(widths.map { String(repeating: "-", count: $0) } + ["--------"]))
        lines.append(contentsOf: rows.map(format))
        lines.append("")
        lines.append(contentsOf: columns.map { "\($0.name): \($0.reason)" })
        return lines.joined(separator: "\n")
    }
}
