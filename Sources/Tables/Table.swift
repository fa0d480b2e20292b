/// A table read from a file: named columns of text cells in file order.
///
/// Cells are kept as the file wrote them (`nil` = missing); modality detection and the fitted
/// processors decide what they mean. Every row remembers the physical line of the file where it
/// starts, so errors found later (a bad number, an unseen label) can point at the line.
public struct Table: Sendable, Equatable {
    /// Where the table came from (a file path), used as the prefix of error messages.
    public let source: String
    /// Column names in file order.
    public let columnNames: [String]
    /// One array of cells per column, parallel to `columnNames`.
    public let columns: [[String?]]
    /// For every row, the 1-based line of the file where the row starts.
    public let lineNumbers: [Int]
    /// Lines of the file that held bytes that are not UTF-8 (read as U+FFFD), in order.
    public var invalidUTF8Lines: [Int] = []

    private let indexByName: [String: Int]

    /// Builds a table from columns of equal length.
    ///
    /// - Parameters:
    ///   - source: a file path or description used in error messages.
    ///   - columnNames: unique column names.
    ///   - columns: one cell array per name, all of the same length.
    ///   - lineNumbers: the line where each row starts; defaults to `2, 3, …` (a header on line 1).
    /// - Precondition: names are unique and every column has the same length as `lineNumbers`
    ///   (the readers guarantee this; it is a programming error otherwise).
    public init(source: String, columnNames: [String], columns: [[String?]], lineNumbers: [Int]? = nil) {
        precondition(columnNames.count == columns.count, "Table: \(columnNames.count) names for \(columns.count) columns")
        let rows = columns.first?.count ?? (lineNumbers?.count ?? 0)
        precondition(columns.allSatisfy { $0.count == rows }, "Table: columns of different lengths")
        let lines = lineNumbers ?? Array((0..<rows).map { $0 + 2 })
        precondition(lines.count == rows, "Table: \(lines.count) line numbers for \(rows) rows")
        var index = [String: Int]()
        for (position, name) in columnNames.enumerated() {
            precondition(index[name] == nil, "Table: duplicate column name '\(name)'")
            index[name] = position
        }
        self.source = source
        self.columnNames = columnNames
        self.columns = columns
        self.lineNumbers = lines
        self.indexByName = index
    }

    /// The number of data rows.
    public var rowCount: Int { lineNumbers.count }

    /// The position of the column named `name`, or `nil`.
    public func columnIndex(named name: String) -> Int? { indexByName[name] }

    /// The cells of the column named `name`, or `nil` when there is no such column.
    public func column(named name: String) -> [String?]? {
        indexByName[name].map { columns[$0] }
    }

    /// The cells of the column named `name`; throws `columnNotFound` (with a "did you mean")
    /// when absent. `role` names what the column is for in the message ("label", "override").
    public func requireColumn(named name: String, role: String = "the") throws -> [String?] {
        if let cells = column(named: name) { return cells }
        throw TableError.columnNotFound(column: name, role: role, available: columnNames,
                                        suggestion: closestName(to: name, among: columnNames))
    }

    /// A table of the rows at `indices` (in that order, repeats allowed), keeping each row's line
    /// number. - Precondition: every index is in `0..<rowCount`.
    public func selectingRows(_ indices: [Int]) -> Table {
        precondition(indices.allSatisfy { $0 >= 0 && $0 < rowCount }, "Table.selectingRows: index out of range")
        return Table(source: source, columnNames: columnNames,
                     columns: columns.map { column in indices.map { column[$0] } },
                     lineNumbers: indices.map { lineNumbers[$0] })
    }

    public static func == (lhs: Table, rhs: Table) -> Bool {
        lhs.source == rhs.source && lhs.columnNames == rhs.columnNames
            && lhs.columns == rhs.columns && lhs.lineNumbers == rhs.lineNumbers
    }
}

/// The name among `candidates` closest to `name` by edit distance (case-insensitive), when it is
/// close enough to be a likely typo: at most 2 edits, and fewer than half the name's length.
func closestName(to name: String, among candidates: [String]) -> String? {
    let target = Array(name.lowercased().unicodeScalars)
    var best: (name: String, distance: Int)?
    for candidate in candidates {
        let distance = editDistance(target, Array(candidate.lowercased().unicodeScalars))
        if distance <= 2, distance * 2 < max(target.count, 1) + 1, best.map({ distance < $0.distance }) ?? true {
            best = (candidate, distance)
        }
    }
    return best?.name
}

/// Levenshtein distance between two scalar arrays.
func editDistance(_ a: [Unicode.Scalar], _ b: [Unicode.Scalar]) -> Int {
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
            current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
