import Foundation

/// The file format of a table.
public enum TableFormat: String, Codable, Sendable, CaseIterable {
    /// Decide from the file extension: `.csv` → CSV, `.jsonl` / `.ndjson` → JSON Lines.
    case auto
    /// Comma-separated values per RFC 4180 with a header row.
    case csv
    /// JSON Lines: one flat JSON object per line.
    case jsonl
}

/// Reads CSV and JSON Lines files into a `Table`.
///
/// Cells are never trimmed; a cell exactly equal to one of `missingMarkers` becomes missing
/// (`nil`). A UTF-8 byte-order mark at the start of the file is skipped. Blank lines are skipped
/// (a one-column table writes its missing values with a marker such as `NA`).
public struct TableReader: Sendable {
    /// The cells read as missing unless the pipeline says otherwise (pandas' common markers).
    public static let defaultMissingMarkers: Set<String> = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]

    /// The format to read, or `.auto` to decide by extension.
    public var format: TableFormat
    /// Cell texts that mean "missing".
    public var missingMarkers: Set<String>

    /// - Parameters:
    ///   - format: `.auto` (by extension), `.csv` or `.jsonl`.
    ///   - missingMarkers: cell texts read as missing values.
    public init(format: TableFormat = .auto, missingMarkers: Set<String> = TableReader.defaultMissingMarkers) {
        self.format = format
        self.missingMarkers = missingMarkers
    }

    /// Reads the table at `url`.
    ///
    /// - Parameter displayPath: how to name the file in errors and in `Table.source` (for
    ///   instance the path as written in the pipeline file); defaults to `url.path`.
    /// - Throws: `TableError` naming the file and line of any problem.
    public func read(_ url: URL, displayPath: String? = nil) throws -> Table {
        let path = displayPath ?? url.path
        let resolved = try resolvedFormat(for: url.pathExtension, path: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw TableError.fileNotFound(path: path)
        }
        if isDirectory.boolValue {
            throw TableError.unreadableFile(path: path, detail: "it is a directory, not a file")
        }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw TableError.unreadableFile(path: path, detail: error.localizedDescription)
        }
        return try read(data: data, format: resolved, source: path)
    }

    /// Reads a table from bytes already in memory. With `.auto`, `source`'s extension decides.
    public func read(data: Data, format: TableFormat, source: String) throws -> Table {
        let resolved: TableFormat
        if format == .auto {
            resolved = try resolvedFormat(for: (source as NSString).pathExtension, path: source)
        } else {
            resolved = format
        }
        let (text, invalidLines) = decodeUTF8(data)
        var table: Table
        switch resolved {
        case .csv, .auto:
            table = try CSVTableParser(source: source, missingMarkers: missingMarkers).parse(text)
        case .jsonl:
            table = try JSONLinesParser(source: source, missingMarkers: missingMarkers).parse(text)
        }
        table.invalidUTF8Lines = invalidLines
        return table
    }

    private func resolvedFormat(for fileExtension: String, path: String) throws -> TableFormat {
        guard format == .auto else { return format }
        switch fileExtension.lowercased() {
        case "csv": return .csv
        case "jsonl", "ndjson": return .jsonl
        default: throw TableError.unknownFormat(path: path, fileExtension: fileExtension)
        }
    }
}

/// Decodes `data` as UTF-8 without a leading byte-order mark. Invalid byte sequences become
/// U+FFFD (as Python's `errors="replace"` does); the lines that held them are returned so the
/// caller can warn with the rows.
func decodeUTF8(_ data: Data) -> (text: String, invalidLines: [Int]) {
    var bytes = data[...]
    if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = bytes.dropFirst(3) }
    if let text = String(validating: bytes, as: UTF8.self) { return (text, []) }
    var lines: [Int] = []
    var line = 1
    var iterator = bytes.makeIterator()
    var decoder = UTF8()
    var scalars = String.UnicodeScalarView()
    decoding: while true {
        switch decoder.decode(&iterator) {
        case .scalarValue(let scalar):
            if scalar == "\n" { line += 1 }
            scalars.append(scalar)
        case .emptyInput: break decoding
        case .error:
            if lines.last != line { lines.append(line) }
            scalars.append("\u{FFFD}")
        }
    }
    return (String(scalars), lines)
}
