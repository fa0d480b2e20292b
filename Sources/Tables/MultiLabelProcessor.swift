import Foundation
import Training

/// Encodes the labels of a multi-label task as one 0/1 indicator per label, fitted on
/// training rows only. The labels come from one of two layouts:
///
/// - several binary columns, each a label: cells `0`/`1`, `true`/`false` or `yes`/`no`
///   (any case); the labels are the column names, in the order given;
/// - one column of label sets: `drama;comedy` (labels joined by `separator`, spaces around
///   each trimmed) or a JSON list `["drama", "comedy"]`; `[]` is the empty set. The vocabulary
///   is every label of the training rows, ordered as class values are (numbers numerically,
///   otherwise by Unicode scalars).
///
/// A missing cell is a missing label (the row does not train). At encoding time a label-set
/// cell may hold labels the training rows never had: they are left out of the indicators and
/// returned, so the pipeline can report them.
public struct MultiLabelProcessor: Codable, Equatable, Sendable {
    /// Where the labels are read from.
    public enum Source: Codable, Equatable, Sendable {
        /// Binary columns, one per label.
        case columns([String])
        /// One column of label sets, and what separates labels in a cell.
        case labelSets(column: String, separator: String)
    }

    /// Where the labels are read from.
    public let source: Source
    /// The labels in indicator order.
    public let labels: [String]

    /// Creates a processor from fitted state.
    public init(source: Source, labels: [String]) {
        self.source = source
        self.labels = labels
    }

    /// The columns the labels are read from.
    public var columns: [String] {
        switch source {
        case .columns(let c): return c
        case .labelSets(let column, _): return [column]
        }
    }

    /// The number of labels (the task's logits).
    public var labelCount: Int { labels.count }

    /// What binary cells may say, lower-cased.
    static let truthy: Set<String> = ["1", "true", "yes"]
    static let falsy: Set<String> = ["0", "false", "no"]

    /// A binary cell's value, nil when it is not one of the accepted spellings.
    static func binary(_ cell: String) -> Bool? {
        let t = cell.trimmingCharacters(in: .whitespaces).lowercased()
        if truthy.contains(t) { return true }
        if falsy.contains(t) { return false }
        if let n = CellText.number(t) { return n == 1 ? true : n == 0 ? false : nil }
        return nil
    }

    /// Fits on the labelled rows of `table` (a row is labelled when every label cell is there).
    /// - Throws: `columnNotFound`; `problemTypeMismatch` naming a non-binary column with sample
    ///   values; `labelAllMissing`; `malformedLabelSet`; `nothingToFit` when the training rows
    ///   of a label-set column hold no label at all (an empty vocabulary).
    public static func fit(_ table: Table, source: Source) throws -> MultiLabelProcessor {
        switch source {
        case .columns(let names):
            for name in names {
                let cells = try table.requireColumn(named: name, role: "label")
                let present = cells.compactMap { $0 }
                guard !present.isEmpty else { throw TableError.labelAllMissing(column: name, path: table.source) }
                let bad = ClassOrder.sorted(Array(Set(present.filter { binary($0) == nil })))
                if !bad.isEmpty {
                    let values = ClassOrder.sorted(Array(Set(present)))
                    let shown = values.prefix(8).map { "'\($0)'" }.joined(separator: ", ") + (values.count > 8 ? ", …" : "")
                    throw TableError.problemTypeMismatch(
                        column: name, problem: "multilabel",
                        detail: "it holds \(shown), and the columns of a multi-label task must be binary (0/1, true/false, yes/no); "
                            + "use a problem mapping to make '\(name)' a task of its own, or write its cells as 0/1")
                }
            }
            return MultiLabelProcessor(source: source, labels: names)
        case .labelSets(let column, let separator):
            let cells = try table.requireColumn(named: column, role: "label")
            guard cells.contains(where: { $0 != nil }) else { throw TableError.labelAllMissing(column: column, path: table.source) }
            var vocabulary: Set<String> = []
            for (row, cell) in cells.enumerated() {
                guard let cell else { continue }
                vocabulary.formUnion(try parse(cell, separator: separator, column: column, source: table.source, line: table.lineNumbers[row]))
            }
            guard !vocabulary.isEmpty else {
                throw TableError.nothingToFit(
                    column: column, path: table.source,
                    detail: "no training row holds a label, so the vocabulary is empty; check data.label_separator ('\(separator)') and the column's cells")
            }
            return MultiLabelProcessor(source: source, labels: ClassOrder.sorted(Array(vocabulary)))
        }
    }

    /// The labels of one label-set cell: a JSON list of strings, or labels joined by
    /// `separator` (trimmed, empty pieces dropped). - Throws: `malformedLabelSet`.
    public static func parse(_ cell: String, separator: String, column: String, source: String, line: Int) throws -> [String] {
        let text = cell.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("[") {
            guard let list = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [Any] else {
                throw TableError.malformedLabelSet(column: column, path: source, line: line, value: cell)
            }
            var labels: [String] = []
            for item in list {
                guard let s = item as? String else { throw TableError.malformedLabelSet(column: column, path: source, line: line, value: cell) }
                let t = s.trimmingCharacters(in: .whitespaces)
                if !t.isEmpty { labels.append(t) }
            }
            return labels
        }
        return text.components(separatedBy: separator).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// The indicators of every row of `table`, row-major [rows × labels]; a row with a missing
    /// label cell gets NaN indicators. Also the labels the training rows never had, with how
    /// many cells held each.
    /// - Throws: `columnNotFound` when `requireColumns` and a label column is absent (without
    ///   it, an absent column gives NaN rows); `problemTypeMismatch` for a non-binary cell
    ///   (with its line); `malformedLabelSet`.
    public func encode(_ table: Table, requireColumns: Bool = true) throws -> (indicators: [Float], unknown: [String: Int]) {
        let n = table.rowCount, k = labelCount
        var out = [Float](repeating: .nan, count: n * k)
        var unknown: [String: Int] = [:]
        switch source {
        case .columns(let names):
            for (j, name) in names.enumerated() {
                guard let cells = requireColumns ? try table.requireColumn(named: name, role: "label") : table.column(named: name) else {
                    continue
                }
                for row in 0..<n {
                    guard let cell = cells[row] else { continue }
                    guard let value = Self.binary(cell) else {
                        throw TableError.problemTypeMismatch(
                            column: name, problem: "multilabel",
                            detail: "\(table.source):\(table.lineNumbers[row]) holds '\(cell)'; the columns of a multi-label task hold 0/1, true/false or yes/no")
                    }
                    out[row * k + j] = value ? 1 : 0
                }
            }
            // A row is labelled only when all its label cells are.
            for row in 0..<n where out[(row * k)..<((row + 1) * k)].contains(where: \.isNaN) {
                for j in 0..<k { out[row * k + j] = .nan }
            }
        case .labelSets(let column, let separator):
            guard let cells = requireColumns ? try table.requireColumn(named: column, role: "label") : table.column(named: column) else {
                return (out, unknown)
            }
            var index: [String: Int] = [:]
            for (i, l) in labels.enumerated() { index[l] = i }
            for row in 0..<n {
                guard let cell = cells[row] else { continue }
                for j in 0..<k { out[row * k + j] = 0 }
                for label in try Self.parse(cell, separator: separator, column: column, source: table.source, line: table.lineNumbers[row]) {
                    if let j = index[label] { out[row * k + j] = 1 } else { unknown[label, default: 0] += 1 }
                }
            }
        }
        return (out, unknown)
    }

    /// The labels whose probability is at least `threshold`, joined by `separator`.
    public func decode(_ probabilities: ArraySlice<Float>, threshold: Float = 0.5, separator: String) -> String {
        zip(labels, probabilities).filter { $0.1 >= threshold }.map(\.0).joined(separator: separator)
    }
}
