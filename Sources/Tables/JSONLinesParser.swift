/// Parses JSON Lines text: one flat JSON object per line.
///
/// Columns appear in the order their keys are first seen; a key absent from a line is a missing
/// cell. Values become cell text: strings as decoded, numbers exactly as written in the file,
/// booleans as `true` / `false`, `null` as missing. Nested arrays or objects, a line that is not
/// an object, and a key repeated within a line are errors naming the line. Blank lines are
/// skipped.
struct JSONLinesParser {
    let source: String
    let missingMarkers: Set<String>

    func parse(_ text: String) throws -> Table {
        var names: [String] = []
        var indexByName: [String: Int] = [:]
        var columns: [[String?]] = []
        var lineNumbers: [Int] = []
        var lineNumber = 0
        for rawLine in text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false) {
            lineNumber += 1
            var bytes = Array(rawLine)
            if bytes.last == 0x0D { bytes.removeLast() }
            if bytes.allSatisfy(JSONLineScanner.isWhitespace) { continue }
            var scanner = JSONLineScanner(bytes: bytes, path: source, line: lineNumber)
            let pairs = try scanner.parseObject()
            var row = [String?](repeating: nil, count: names.count)
            var seen = Set<String>()
            for (key, value) in pairs {
                guard seen.insert(key).inserted else {
                    throw TableError.invalidJSON(path: source, line: lineNumber, detail: "the key \"\(key)\" appears twice")
                }
                let column: Int
                if let existing = indexByName[key] {
                    column = existing
                } else {
                    column = names.count
                    indexByName[key] = column
                    names.append(key)
                    columns.append([String?](repeating: nil, count: lineNumbers.count))
                    row.append(nil)
                }
                row[column] = value.flatMap { missingMarkers.contains($0) ? nil : $0 }
            }
            for (index, cell) in row.enumerated() { columns[index].append(cell) }
            lineNumbers.append(lineNumber)
        }
        if lineNumbers.isEmpty { throw TableError.emptyFile(path: source) }
        if names.isEmpty {
            throw TableError.invalidJSON(path: source, line: lineNumbers[0],
                                         detail: "no line has any key, so the table has no columns")
        }
        return Table(source: source, columnNames: names, columns: columns, lineNumbers: lineNumbers)
    }
}

/// A strict scanner for one line holding one flat JSON object.
struct JSONLineScanner {
    let bytes: [UInt8]
    let path: String
    let line: Int
    var position = 0

    init(bytes: [UInt8], path: String, line: Int) {
        self.bytes = bytes
        self.path = path
        self.line = line
    }

    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A
    }

    private func fail(_ detail: String) -> TableError {
        TableError.invalidJSON(path: path, line: line, detail: detail + " (column \(position + 1))")
    }

    private mutating func skipWhitespace() {
        while position < bytes.count, Self.isWhitespace(bytes[position]) { position += 1 }
    }

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    /// Parses `{ "key": scalar, … }` followed only by whitespace; values are cell text or `nil`.
    mutating func parseObject() throws -> [(String, String?)] {
        skipWhitespace()
        guard current == UInt8(ascii: "{") else {
            throw TableError.invalidJSON(path: path, line: line, detail: "the line is not a JSON object (it must start with '{')")
        }
        position += 1
        var pairs: [(String, String?)] = []
        skipWhitespace()
        if current == UInt8(ascii: "}") {
            position += 1
        } else {
            while true {
                skipWhitespace()
                guard current == UInt8(ascii: "\"") else { throw fail("expected a quoted key") }
                let key = try parseString()
                if key.isEmpty { throw fail("a key is empty; name every field") }
                skipWhitespace()
                guard current == UInt8(ascii: ":") else { throw fail("expected ':' after the key \"\(key)\"") }
                position += 1
                skipWhitespace()
                pairs.append((key, try parseScalar(key: key)))
                skipWhitespace()
                if current == UInt8(ascii: ",") { position += 1; continue }
                if current == UInt8(ascii: "}") { position += 1; break }
                throw fail("expected ',' or '}' after the value of \"\(key)\"")
            }
        }
        skipWhitespace()
        if position != bytes.count { throw fail("unexpected text after the object") }
        return pairs
    }

    private mutating func parseScalar(key: String) throws -> String? {
        guard let byte = current else { throw fail("the value of \"\(key)\" is missing") }
        switch byte {
        case UInt8(ascii: "\""):
            return try parseString()
        case UInt8(ascii: "["), UInt8(ascii: "{"):
            throw TableError.invalidJSON(path: path, line: line,
                                         detail: "the value of \"\(key)\" is a nested \(byte == UInt8(ascii: "[") ? "array" : "object"); flatten it into separate keys or a string")
        case UInt8(ascii: "t"): try expectLiteral("true"); return "true"
        case UInt8(ascii: "f"): try expectLiteral("false"); return "false"
        case UInt8(ascii: "n"): try expectLiteral("null"); return nil
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try parseNumber(key: key)
        default:
            throw fail("the value of \"\(key)\" is not a JSON string, number, boolean or null")
        }
    }

    private mutating func expectLiteral(_ literal: String) throws {
        let expected = Array(literal.utf8)
        guard position + expected.count <= bytes.count,
              Array(bytes[position..<position + expected.count]) == expected else {
            throw fail("invalid literal (expected \(literal))")
        }
        position += expected.count
    }

    /// A JSON number (RFC 8259 grammar), returned exactly as written.
    private mutating func parseNumber(key: String) throws -> String {
        let start = position
        func digits() -> Int {
            let from = position
            while let byte = current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { position += 1 }
            return position - from
        }
        if current == UInt8(ascii: "-") { position += 1 }
        if current == UInt8(ascii: "0") {
            position += 1
        } else if digits() == 0 {
            throw fail("the value of \"\(key)\" is not a valid number")
        }
        if current == UInt8(ascii: ".") {
            position += 1
            if digits() == 0 { throw fail("the value of \"\(key)\" has no digits after '.'") }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            position += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
            if digits() == 0 { throw fail("the value of \"\(key)\" has no digits in its exponent") }
        }
        return String(decoding: bytes[start..<position], as: UTF8.self)
    }

    /// A quoted JSON string starting at the opening quote, with escapes decoded.
    private mutating func parseString() throws -> String {
        position += 1
        var out: [UInt8] = []
        while true {
            guard let byte = current else { throw fail("a string is not closed") }
            position += 1
            if byte == UInt8(ascii: "\"") { break }
            if byte < 0x20 { throw fail("a string contains a raw control character; escape it") }
            guard byte == UInt8(ascii: "\\") else { out.append(byte); continue }
            guard let escape = current else { throw fail("a string ends inside an escape") }
            position += 1
            switch escape {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var value = try hex4()
                if (0xD800...0xDBFF).contains(value) {
                    guard current == UInt8(ascii: "\\"), position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "u") else {
                        throw fail("a \\u escape is an unpaired surrogate")
                    }
                    position += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw fail("a \\u escape is an unpaired surrogate") }
                    value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(value) {
                    throw fail("a \\u escape is an unpaired surrogate")
                }
                guard let scalar = Unicode.Scalar(value) else { throw fail("invalid \\u escape") }
                out.append(contentsOf: Array(String(Character(scalar)).utf8))
            default:
                throw fail("invalid escape '\\\(Character(Unicode.Scalar(escape)))'")
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private mutating func hex4() throws -> UInt32 {
        guard position + 4 <= bytes.count else { throw fail("a \\u escape needs four hex digits") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw fail("a \\u escape needs four hex digits")
            }
            value = value * 16 + digit
            position += 1
        }
        return value
    }
}
