/// Every failure the `Tables` module reports about user input: table files, cells, column names
/// and overrides. Each message says where (file, line, column) and how to fix it.
public enum TableError: Error, CustomStringConvertible, Equatable, Sendable {
    // MARK: - Files

    /// The table file does not exist.
    case fileNotFound(path: String)
    /// The table file exists but could not be read.
    case unreadableFile(path: String, detail: String)
    /// The file's extension names no supported format and no format was given.
    case unknownFormat(path: String, fileExtension: String)
    /// The file holds no header row at all.
    case emptyFile(path: String)
    /// The file has a header but no data rows.
    case noRows(path: String)
    /// Two or more header cells carry the same name (1-based column positions).
    case duplicateHeader(path: String, name: String, positions: [Int])
    /// Header cells with an empty name (1-based column positions).
    case emptyHeader(path: String, positions: [Int])
    /// A CSV row with a different number of fields than the header.
    case raggedRow(path: String, line: Int, expected: Int, found: Int)
    /// A JSON Lines line that is not valid JSON (or not one flat object).
    case invalidJSON(path: String, line: Int, detail: String)

    // MARK: - Columns and overrides

    /// A column named in the pipeline (label, override) is not in the table.
    case columnNotFound(column: String, role: String, available: [String], suggestion: String?)
    /// A `numeric` override on a column holding a value that is not a number.
    case nonNumericOverride(column: String, path: String, line: Int, value: String)
    /// A modality override on the label column.
    case overrideOnLabel(column: String)

    // MARK: - Labels

    /// Every value of the label column is missing.
    case labelAllMissing(column: String, path: String)
    /// The label has one class only, so there is nothing to learn.
    case singleClass(column: String, path: String, value: String)
    /// A forced problem type that the label's values do not fit.
    case problemTypeMismatch(column: String, problem: String, detail: String)
    /// A label value at transform time that was not seen when fitting.
    case unseenLabel(column: String, path: String, line: Int, value: String, known: [String])
    /// A missing label reached encoding; drop `LabelProcessor.missingLabelRows` first.
    case missingLabel(column: String, path: String, line: Int)
    /// A label-set cell written as a JSON list that is not a list of strings.
    case malformedLabelSet(column: String, path: String, line: Int, value: String)

    // MARK: - Processors

    /// A numeric column holding a value that is not a finite number.
    case nonNumericValue(column: String, path: String, line: Int, value: String)
    /// A processor was fitted on a column with no usable values.
    case nothingToFit(column: String, path: String, detail: String)
    /// A processor option out of range (for instance `min_count: 0`).
    case invalidOption(column: String, option: String, detail: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "\(path): no such file; table paths are relative to the pipeline file's folder — check the path"
        case .unreadableFile(let path, let detail):
            return "\(path): cannot read the file (\(detail)); check its permissions"
        case .unknownFormat(let path, let ext):
            let shown = ext.isEmpty ? "no extension" : "extension '.\(ext)'"
            return "\(path): cannot tell the table format from \(shown); "
                + "name the file .csv, .jsonl or .ndjson, or set the format to csv or jsonl"
        case .emptyFile(let path):
            return "\(path): the file is empty; a table needs a header row naming its columns and at least one data row"
        case .noRows(let path):
            return "\(path): the file has a header but no data rows; add rows or point to the right file"
        case .duplicateHeader(let path, let name, let positions):
            return "\(path): line 1: the column name '\(name)' appears more than once (columns "
                + positions.map(String.init).joined(separator: ", ") + "); give every column a unique name"
        case .emptyHeader(let path, let positions):
            return "\(path): line 1: column" + (positions.count == 1 ? " " : "s ")
                + positions.map(String.init).joined(separator: ", ") + " of the header "
                + (positions.count == 1 ? "has" : "have") + " no name; name every column"
        case .raggedRow(let path, let line, let expected, let found):
            return "\(path):\(line): the row has \(found) field\(found == 1 ? "" : "s") but the header has \(expected); "
                + "quote fields that contain commas or newlines, and give every row \(expected) fields"
        case .invalidJSON(let path, let line, let detail):
            return "\(path):\(line): \(detail); each line must be one JSON object of strings, numbers, booleans or nulls"
        case .columnNotFound(let column, let role, let available, let suggestion):
            var text = "\(role) column '\(column)' is not in the table"
            if let suggestion { text += "; did you mean '\(suggestion)'?" }
            return text + " (columns: " + available.joined(separator: ", ") + ")"
        case .nonNumericOverride(let column, let path, let line, let value):
            return "\(path):\(line): column '\(column)' is overridden as numeric but holds '\(value)', which is not a number; "
                + "fix the value or override the column as categorical or text"
        case .overrideOnLabel(let column):
            return "column '\(column)' is the label; its modality follows the problem type — set problem_type instead of a column override"
        case .labelAllMissing(let column, let path):
            return "\(path): every value of the label column '\(column)' is missing; choose a label column with values"
        case .singleClass(let column, let path, let value):
            return "\(path): the label column '\(column)' has a single value ('\(value)'); a label needs at least two classes or distinct values"
        case .problemTypeMismatch(let column, let problem, let detail):
            return "label column '\(column)' cannot be a \(problem) problem: \(detail)"
        case .unseenLabel(let column, let path, let line, let value, let known):
            let shown = known.prefix(10).map { "'\($0)'" }.joined(separator: ", ") + (known.count > 10 ? ", …" : "")
            return "\(path):\(line): label '\(value)' in column '\(column)' was not seen in training (classes: \(shown)); "
                + "make sure the training data contains every class"
        case .malformedLabelSet(let column, let path, let line, let value):
            return "\(path):\(line): label-set cell '\(value)' in column '\(column)' starts like a JSON list but is not a list of strings; "
                + "write it as [\"a\", \"b\"] or as labels joined by data.label_separator"
        case .missingLabel(let column, let path, let line):
            return "\(path):\(line): the label column '\(column)' is missing here; drop rows without a label before encoding"
        case .nonNumericValue(let column, let path, let line, let value):
            return "\(path):\(line): column '\(column)' holds '\(value)', which is not a finite number; "
                + "fix the value, mark it missing, or treat the column as categorical or text"
        case .nothingToFit(let column, let path, let detail):
            return "\(path): cannot fit column '\(column)': \(detail)"
        case .invalidOption(let column, let option, let detail):
            return "column '\(column)': \(option) \(detail)"
        }
    }
}

extension TableError: CustomDebugStringConvertible {
    public var debugDescription: String { description }
}
