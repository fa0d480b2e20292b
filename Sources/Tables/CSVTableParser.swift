import CSV

/// Parses RFC 4180 CSV text (header row first) with yaslab/CSV.swift, adding what that reader
/// does not give: the line where each row starts, header checks, field-count checks and
/// missing-value markers.
///
/// Line numbers are counted here: a row starts on the line after the previous row's last line,
/// and a row spans one line plus the line breaks inside its quoted fields (`\n`, `\r\n` or a
/// lone `\r` each count once).
struct CSVTableParser {
    let source: String
    let missingMarkers: Set<String>

    func parse(_ text: String) throws -> Table {
        let reader: CSVReader
        do {
            reader = try CSVReader(string: text, hasHeaderRow: true)
        } catch {
            throw TableError.emptyFile(path: source)
        }
        let header = reader.headerRow ?? []
        if header.isEmpty || header == [""] { throw TableError.emptyFile(path: source) }
        try Self.validateHeader(header, path: source)

        var columns = [[String?]](repeating: [], count: header.count)
        var lineNumbers: [Int] = []
        var line = 1 + Self.lineSpan(of: header)
        while let row = reader.next() {
            let start = line
            line += Self.lineSpan(of: row)
            if row == [""] { continue }  // a blank line
            guard row.count == header.count else {
                throw TableError.raggedRow(path: source, line: start, expected: header.count, found: row.count)
            }
            for (index, cell) in row.enumerated() {
                columns[index].append(missingMarkers.contains(cell) ? nil : cell)
            }
            lineNumbers.append(start)
        }
        if lineNumbers.isEmpty { throw TableError.noRows(path: source) }
        return Table(source: source, columnNames: header, columns: columns, lineNumbers: lineNumbers)
    }

    /// Throws for empty or repeated header names, naming the 1-based column positions.
    static func validateHeader(_ header: [String], path: String) throws {
        let empty = header.indices.filter { header[$0].isEmpty }.map { $0 + 1 }
        if !empty.isEmpty { throw TableError.emptyHeader(path: path, positions: empty) }
        var positions = [String: [Int]]()
        for (index, name) in header.enumerated() { positions[name, default: []].append(index + 1) }
        if let name = header.first(where: { (positions[$0]?.count ?? 0) > 1 }) {
            throw TableError.duplicateHeader(path: path, name: name, positions: positions[name] ?? [])
        }
    }

    /// The number of physical lines a parsed row occupied.
    static func lineSpan(of row: [String]) -> Int {
        var lines = 1
        for field in row {
            var previousCR = false
            for byte in field.utf8 {
                if byte == 0x0A {
                    if !previousCR { lines += 1 }
                    previousCR = false
                } else if byte == 0x0D {
                    lines += 1
                    previousCR = true
                } else {
                    previousCR = false
                }
            }
        }
        return lines
    }
}
