import Foundation

/// A small RFC 4180 reader for the CSV files a run writes (`history.csv`, `*_predictions.csv`):
/// a header row, then records; quoted cells may hold commas, doubled quotes and line breaks.
/// Lines end in LF or CRLF. Every record must have the header's width.
struct CSVTable {
    let header: [String]
    let rows: [[String]]

    init(header: [String], rows: [[String]]) {
        self.header = header
        self.rows = rows
    }

    init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ReportError.unreadable(path: url.path, reason: error.localizedDescription)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ReportError.malformed(path: url.path, detail: "not UTF-8 text")
        }
        try self.init(parsing: text, source: url.path)
    }

    init(parsing text: String, source: String) throws {
        var records: [[String]] = []
        var record: [String] = []
        var cell = ""
        var quoted = false, inQuotes = false, afterQuote = false
        var line = 1
        var recordLine = 1
        var scalars = Array(text.unicodeScalars)
        if scalars.first == "\u{FEFF}" { scalars.removeFirst() }
        var i = 0
        func endRecord() {
            record.append(cell)
            if !(record.count == 1 && record[0].isEmpty && !quoted) { records.append(record) }
            record = []
            cell = ""
            quoted = false
        }
        while i < scalars.count {
            let c = scalars[i]
            if inQuotes {
                if c == "\"" {
                    if i + 1 < scalars.count && scalars[i + 1] == "\"" {
                        cell.unicodeScalars.append("\"")
                        i += 1
                    } else {
                        inQuotes = false
                        afterQuote = true
                    }
                } else {
                    if c == "\n" { line += 1 }
                    cell.unicodeScalars.append(c)
                }
            } else if c == "," {
                record.append(cell)
                cell = ""
                quoted = false
                afterQuote = false
            } else if c == "\n" || c == "\r" {
                if c == "\r" && i + 1 < scalars.count && scalars[i + 1] == "\n" { i += 1 }
                endRecord()
                afterQuote = false
                line += 1
                recordLine = line
            } else if c == "\"" && cell.isEmpty && !afterQuote {
                inQuotes = true
                quoted = true
            } else {
                if afterQuote {
                    throw ReportError.malformed(path: source, detail: "line \(line): text after a closing quote")
                }
                cell.unicodeScalars.append(c)
            }
            i += 1
        }
        if inQuotes { throw ReportError.malformed(path: source, detail: "line \(recordLine): a quoted cell is not closed") }
        if !cell.isEmpty || !record.isEmpty || quoted { endRecord() }
        guard let first = records.first else { throw ReportError.malformed(path: source, detail: "no header row") }
        for (k, r) in records.enumerated().dropFirst() where r.count != first.count {
            throw ReportError.malformed(path: source, detail: "record \(k + 1) has \(r.count) cells; the header has \(first.count)")
        }
        header = first
        rows = Array(records.dropFirst())
    }

    /// The index of the column named `name`.
    func index(of name: String) -> Int? { header.firstIndex(of: name) }

    /// The column named `name`, one cell per row.
    func column(_ name: String) -> [String]? {
        guard let i = index(of: name) else { return nil }
        return rows.map { $0[i] }
    }
}

/// Reads a cell as a number: empty cells and words other than nan/inf are nil.
func parseNumber(_ cell: String) -> Double? {
    let t = cell.trimmingCharacters(in: .whitespaces)
    if t.isEmpty { return nil }
    switch t.lowercased() {
    case "nan": return .nan
    case "inf", "+inf", "infinity": return .infinity
    case "-inf", "-infinity": return -.infinity
    default: return Double(t)
    }
}
