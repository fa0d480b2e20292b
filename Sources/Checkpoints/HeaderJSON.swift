import Foundation

// The safetensors header is parsed by this small strict JSON (RFC 8259) reader rather than
// JSONSerialization or JSONDecoder. For the 1.3 MB header of a 20 000-tensor file (release
// build, Linux) JSONSerialization plus converting its Foundation containers took about 2 s and a
// generic Codable enum about 1.2 s; this reader takes well under 0.1 s. It also tells `2.0` from
// `2`, keeps 64-bit integers exact and rejects duplicate keys, which those cannot.

/// A decoded JSON value, keeping integers exact (offsets may exceed 2^53).
enum JSONValue {
    case null
    case bool(Bool)
    case integer(Int64)
    case unsigned(UInt64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The value as a non-negative integer, when it is one (not a float, bool or string).
    var nonNegativeInteger: UInt64? {
        switch self {
        case .integer(let v): return v >= 0 ? UInt64(v) : nil
        case .unsigned(let v): return v
        default: return nil
        }
    }

    var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .integer, .unsigned, .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// Short rendering for error messages.
    var compactText: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return String(b)
        case .integer(let v): return String(v)
        case .unsigned(let v): return String(v)
        case .number(let v): return String(v)
        case .string(let s): return "\"" + (s.count > 40 ? String(s.prefix(40)) + "…" : s) + "\""
        case .array(let items):
            let shown = items.prefix(8).map(\.compactText).joined(separator: ", ")
            return "[" + shown + (items.count > 8 ? ", …" : "") + "]"
        case .object: return "{…}"
        }
    }
}

// MARK: - Parsing

extension JSONValue {
    struct ParseError: Error {
        let message: String
    }

    /// Nesting deeper than this is rejected (a header needs 3 levels).
    static let maxDepth = 64

    /// Parses one JSON value filling `bytes` (surrounding whitespace allowed). The bytes must
    /// be valid UTF-8; objects must not repeat a key.
    static func parse(_ bytes: UnsafeRawBufferPointer) throws -> JSONValue {
        if String(bytes: bytes, encoding: .utf8) == nil {
            throw ParseError(message: "the bytes are not valid UTF-8")
        }
        var parser = Parser(bytes: bytes.bindMemory(to: UInt8.self))
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        if parser.index < parser.bytes.count {
            throw parser.error("unexpected \(parser.describeCurrent()) after the top-level value")
        }
        return value
    }

    private struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        func error(_ message: String) -> ParseError {
            ParseError(message: "\(message) at byte \(index)")
        }

        func describeCurrent() -> String {
            guard index < bytes.count else { return "end of header" }
            let b = bytes[index]
            if b >= 0x21 && b < 0x7F { return "'\(Character(Unicode.Scalar(b)))'" }
            return "byte 0x" + String(b, radix: 16)
        }

        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        mutating func value(depth: Int) throws -> JSONValue {
            guard index < bytes.count else { throw error("expected a value but found end of header") }
            switch bytes[index] {
            case UInt8(ascii: "{"): return try object(depth: depth + 1)
            case UInt8(ascii: "["): return try array(depth: depth + 1)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
            default: throw error("expected a value but found \(describeCurrent())")
            }
        }

        mutating func literal(_ word: StaticString) throws {
            let n = word.utf8CodeUnitCount
            guard index + n <= bytes.count else { throw error("expected '\(word)'") }
            let w = word.utf8Start
            for k in 0..<n where bytes[index + k] != w[k] { throw error("expected '\(word)'") }
            index += n
        }

        mutating func object(depth: Int) throws -> JSONValue {
            if depth > JSONValue.maxDepth { throw error("nesting deeper than \(JSONValue.maxDepth) levels") }
            index += 1  // {
            var members: [String: JSONValue] = [:]
            skipWhitespace()
            if index < bytes.count && bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
            while true {
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                    throw error("expected a string key but found \(describeCurrent())")
                }
                let keyStart = index
                let key = try string()
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                    throw error("expected ':' after key \"\(key)\" but found \(describeCurrent())")
                }
                index += 1
                skipWhitespace()
                let v = try value(depth: depth)
                if members.updateValue(v, forKey: key) != nil {
                    throw ParseError(message: "duplicate key \"\(key)\" at byte \(keyStart)")
                }
                skipWhitespace()
                guard index < bytes.count else { throw error("unterminated object: expected ',' or '}'") }
                let c = bytes[index]
                index += 1
                if c == UInt8(ascii: "}") { return .object(members) }
                if c != UInt8(ascii: ",") {
                    index -= 1
                    throw error("expected ',' or '}' but found \(describeCurrent())")
                }
            }
        }

        mutating func array(depth: Int) throws -> JSONValue {
            if depth > JSONValue.maxDepth { throw error("nesting deeper than \(JSONValue.maxDepth) levels") }
            index += 1  // [
            var items: [JSONValue] = []
            skipWhitespace()
            if index < bytes.count && bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
            while true {
                skipWhitespace()
                items.append(try value(depth: depth))
                skipWhitespace()
                guard index < bytes.count else { throw error("unterminated array: expected ',' or ']'") }
                let c = bytes[index]
                index += 1
                if c == UInt8(ascii: "]") { return .array(items) }
                if c != UInt8(ascii: ",") {
                    index -= 1
                    throw error("expected ',' or ']' but found \(describeCurrent())")
                }
            }
        }

        mutating func number() throws -> JSONValue {
            let start = index
            var negative = false
            if bytes[index] == UInt8(ascii: "-") { negative = true; index += 1 }
            let digitsStart = index
            var magnitude: UInt64 = 0
            var overflow = false
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                let (m1, o1) = magnitude.multipliedReportingOverflow(by: 10)
                let (m2, o2) = m1.addingReportingOverflow(UInt64(bytes[index] - UInt8(ascii: "0")))
                magnitude = m2
                overflow = overflow || o1 || o2
                index += 1
            }
            let digitCount = index - digitsStart
            if digitCount == 0 { throw error("expected a digit") }
            if digitCount > 1 && bytes[digitsStart] == UInt8(ascii: "0") {
                index = digitsStart
                throw error("leading zero in a number")
            }
            var isInteger = true
            if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
                isInteger = false
                index += 1
                try digits(what: "after the decimal point")
            }
            if index < bytes.count && (bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E")) {
                isInteger = false
                index += 1
                if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) {
                    index += 1
                }
                try digits(what: "in the exponent")
            }
            if isInteger && !overflow {
                if !negative {
                    return magnitude <= UInt64(Int64.max) ? .integer(Int64(magnitude)) : .unsigned(magnitude)
                }
                if magnitude <= UInt64(Int64.max) { return .integer(-Int64(magnitude)) }
                if magnitude == UInt64(Int64.max) + 1 { return .integer(.min) }
            }
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            guard let d = Double(text) else {
                index = start
                throw error("malformed number")
            }
            return .number(d)
        }

        mutating func digits(what: String) throws {
            let start = index
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                index += 1
            }
            if index == start { throw error("expected a digit \(what)") }
        }

        /// Reads a string starting at the opening quote.
        mutating func string() throws -> String {
            index += 1  // "
            let start = index
            // Fast path: no escapes, one copy. (`parse` checked the whole input is UTF-8, and a
            // run between ASCII quotes of valid UTF-8 is itself valid.)
            while index < bytes.count {
                let b = bytes[index]
                if b == UInt8(ascii: "\"") {
                    let s = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                    index += 1
                    return s
                }
                if b == UInt8(ascii: "\\") { break }
                if b < 0x20 { throw error("unescaped control character 0x\(String(b, radix: 16)) in a string") }
                index += 1
            }
            // Slow path: decode escapes into a byte buffer.
            var out = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
            while index < bytes.count {
                let b = bytes[index]
                if b == UInt8(ascii: "\"") {
                    index += 1
                    return String(decoding: out, as: UTF8.self)
                }
                if b < 0x20 { throw error("unescaped control character 0x\(String(b, radix: 16)) in a string") }
                if b != UInt8(ascii: "\\") {
                    out.append(b)
                    index += 1
                    continue
                }
                index += 1
                guard index < bytes.count else { break }
                let e = bytes[index]
                index += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
                              bytes[index + 1] == UInt8(ascii: "u") else {
                            throw error("unpaired surrogate \\u\(String(scalar, radix: 16))")
                        }
                        index += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else {
                            throw error("unpaired surrogate \\u\(String(scalar, radix: 16))")
                        }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw error("unpaired surrogate \\u\(String(scalar, radix: 16))")
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw error("invalid \\u escape") }
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default:
                    index -= 1
                    throw error("invalid escape '\\\(Character(Unicode.Scalar(e)))'")
                }
            }
            throw error("unterminated string")
        }

        mutating func hex4() throws -> UInt32 {
            guard index + 4 <= bytes.count else { throw error("truncated \\u escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[index]
                let d: UInt8
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
                default: throw error("invalid hex digit in \\u escape")
                }
                v = v << 4 | UInt32(d)
                index += 1
            }
            return v
        }
    }
}
