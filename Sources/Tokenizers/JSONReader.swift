import Foundation

// A small strict JSON reader for tokenizer.json. It keeps object members in file order with
// their exact keys: Swift `String` equality is canonical equivalence, so a `[String: Int]`
// built by `JSONDecoder` would merge vocabulary entries such as "é" (U+00E9) and "e\u{301}",
// which real vocabularies contain as different tokens. Values are then read through
// `JSONNode`, which knows its path for error messages.

/// A parsed JSON value.
enum JSONValue {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

struct JSONSyntaxError: Error {
    let offset: Int
    let reason: String
}

/// Parses UTF-8 JSON text. Rejects trailing garbage, unescaped control characters, invalid
/// escapes and nesting deeper than 512.
struct JSONParser {
    private let bytes: [UInt8]
    private var i = 0
    private var depth = 0

    static func parse(_ data: Data) throws -> JSONValue {
        var p = JSONParser(bytes: [UInt8](data))
        p.skipSpace()
        let v = try p.value()
        p.skipSpace()
        guard p.i == p.bytes.count else { throw JSONSyntaxError(offset: p.i, reason: "unexpected text after the value") }
        return v
    }

    private init(bytes: [UInt8]) {
        self.bytes = bytes
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }
    }

    /// Line and column (1-based) of a byte offset, for messages.
    static func lineColumn(_ data: Data, offset: Int) -> (Int, Int) {
        var line = 1, col = 1
        for (k, b) in data.enumerated() {
            if k >= offset { break }
            if b == UInt8(ascii: "\n") { line += 1; col = 1 } else { col += 1 }
        }
        return (line, col)
    }

    private mutating func skipSpace() {
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }

    private func fail(_ reason: String) -> JSONSyntaxError { JSONSyntaxError(offset: i, reason: reason) }

    private mutating func value() throws -> JSONValue {
        guard i < bytes.count else { throw fail("unexpected end of file") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw fail("unexpected character '\(Unicode.Scalar(bytes[i]))'")
        }
    }

    private mutating func literal(_ word: String) throws {
        let w = Array(word.utf8)
        guard i + w.count <= bytes.count, Array(bytes[i..<(i + w.count)]) == w else { throw fail("invalid literal") }
        i += w.count
    }

    private mutating func nest() throws {
        depth += 1
        if depth > 512 { throw fail("nesting deeper than 512") }
    }

    private mutating func object() throws -> JSONValue {
        try nest()
        i += 1
        var members: [(key: String, value: JSONValue)] = []
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; depth -= 1; return .object(members) }
        while true {
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a member name") }
            let key = try string()
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            i += 1
            skipSpace()
            members.append((key, try value()))
            skipSpace()
            guard i < bytes.count else { throw fail("unexpected end of file in an object") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "}") { i += 1; break }
            throw fail("expected ',' or '}'")
        }
        depth -= 1
        return .object(members)
    }

    private mutating func array() throws -> JSONValue {
        try nest()
        i += 1
        var items: [JSONValue] = []
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; depth -= 1; return .array(items) }
        while true {
            skipSpace()
            items.append(try value())
            skipSpace()
            guard i < bytes.count else { throw fail("unexpected end of file in an array") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "]") { i += 1; break }
            throw fail("expected ',' or ']'")
        }
        depth -= 1
        return .array(items)
    }

    private mutating func hex4() throws -> UInt32 {
        guard i + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[i]
            let d: UInt32
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(b - UInt8(ascii: "A") + 10)
            default: throw fail("invalid \\u escape")
            }
            v = v * 16 + d
            i += 1
        }
        return v
    }

    private mutating func string() throws -> String {
        i += 1
        let start = i
        // Fast path: no escapes.
        while i < bytes.count, bytes[i] != UInt8(ascii: "\""), bytes[i] != UInt8(ascii: "\\"), bytes[i] >= 0x20 { i += 1 }
        guard i < bytes.count else { throw fail("unterminated string") }
        if bytes[i] == UInt8(ascii: "\"") {
            let s = bytes.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[start..<i]), as: UTF8.self) }
            i += 1
            return s
        }
        var out = Array(bytes[start..<i])
        while true {
            guard i < bytes.count else { throw fail("unterminated string") }
            let b = bytes[i]
            if b == UInt8(ascii: "\"") { i += 1; break }
            if b < 0x20 { throw fail("unescaped control character in a string") }
            if b != UInt8(ascii: "\\") { out.append(b); i += 1; continue }
            i += 1
            guard i < bytes.count else { throw fail("unterminated escape") }
            let e = bytes[i]
            i += 1
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
                var code = try hex4()
                if (0xD800...0xDBFF).contains(code) {
                    if i + 6 <= bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") {
                        i += 2
                        let low = try hex4()
                        if (0xDC00...0xDFFF).contains(low) {
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            code = 0xFFFD
                            i -= 6  // re-read the second escape on its own
                        }
                    } else {
                        code = 0xFFFD
                    }
                } else if (0xDC00...0xDFFF).contains(code) {
                    code = 0xFFFD
                }
                let scalar = Unicode.Scalar(code) ?? "\u{FFFD}"
                out.append(contentsOf: Array(String(scalar).utf8))
            default: throw fail("invalid escape '\\\(Unicode.Scalar(e))'")
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private mutating func number() throws -> Double {
        let start = i
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        func digits() -> Int {
            let s = i
            while i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") { i += 1 }
            return i - s
        }
        guard digits() > 0 else { throw fail("invalid number") }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard digits() > 0 else { throw fail("invalid number") }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { throw fail("invalid number") }
        }
        let text = String(decoding: bytes[start..<i], as: UTF8.self)
        guard let d = Double(text) else { throw fail("invalid number") }
        return d
    }
}

/// A JSON value together with its path in the file, with typed accessors that throw
/// `ConfigError` naming the path (`model.vocab`, `normalizer.normalizers[2].type`).
struct JSONNode {
    let value: JSONValue
    let path: String

    init(_ value: JSONValue, path: String = "") {
        self.value = value
        self.path = path
    }

    func error(_ reason: String) -> ConfigError { ConfigError(path: path, reason: reason) }

    private func childPath(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    var isNull: Bool { if case .null = value { return true } else { return false } }

    /// The member `key`; a missing member is an error.
    subscript(key: String) -> JSONNode {
        get throws {
            guard let n = optional(key) else { throw ConfigError(path: childPath(key), reason: "missing") }
            return n
        }
    }

    /// The member `key`, or nil when absent or null.
    func optional(_ key: String) -> JSONNode? {
        guard case .object(let members) = value else { return nil }
        for m in members where m.key.utf8.elementsEqual(key.utf8) {
            if case .null = m.value { return nil }
            return JSONNode(m.value, path: childPath(key))
        }
        return nil
    }

    func has(_ key: String) -> Bool { optional(key) != nil }

    func string() throws -> String {
        guard case .string(let s) = value else { throw error("expected a string, found \(value.typeName)") }
        return s
    }

    func bool() throws -> Bool {
        guard case .bool(let b) = value else { throw error("expected true or false, found \(value.typeName)") }
        return b
    }

    func double() throws -> Double {
        guard case .number(let d) = value else { throw error("expected a number, found \(value.typeName)") }
        return d
    }

    func int() throws -> Int {
        guard case .number(let d) = value, d.rounded() == d, abs(d) < 9e15 else {
            throw error("expected an integer, found \(value.typeName)")
        }
        return Int(d)
    }

    /// A non-negative integer that fits a token id.
    func tokenId() throws -> Int {
        let v = try int()
        guard v >= 0, v <= Int(Int32.max) else { throw error("token id \(v) out of range") }
        return v
    }

    func array() throws -> [JSONNode] {
        guard case .array(let items) = value else { throw error("expected an array, found \(value.typeName)") }
        return items.enumerated().map { JSONNode($0.element, path: "\(path)[\($0.offset)]") }
    }

    func members() throws -> [(key: String, node: JSONNode)] {
        guard case .object(let ms) = value else { throw error("expected an object, found \(value.typeName)") }
        return ms.map { ($0.key, JSONNode($0.value, path: childPath($0.key))) }
    }

    // Optional members with defaults, as serde's `#[serde(default)]` reads them.
    func bool(_ key: String, default d: Bool) throws -> Bool { try optional(key)?.bool() ?? d }
    func string(_ key: String, default d: String) throws -> String { try optional(key)?.string() ?? d }
    func int(_ key: String, default d: Int) throws -> Int { try optional(key)?.int() ?? d }
    func optionalString(_ key: String) throws -> String? { try optional(key)?.string() }
    func optionalBool(_ key: String) throws -> Bool? { try optional(key)?.bool() }

    /// Builds a component with the constructor its `type` names in `registry`; an unknown
    /// type is an error listing the supported ones.
    func make<T>(_ kind: String, _ registry: [String: @Sendable (JSONNode) throws -> T]) throws -> T {
        let typeNode = try self["type"]
        let t = try typeNode.string()
        guard let build = registry[t] else {
            throw typeNode.error("unknown \(kind) \"\(t)\"; supported: \(registry.keys.sorted().joined(separator: ", "))")
        }
        return try build(self)
    }
}
