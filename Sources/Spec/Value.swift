import Foundation

/// A plain data tree: what the field declarations encode a spec into, and what JSON Schema
/// fragments are built from. Maps keep their entries in declaration order; the JSON writer sorts
/// keys, the YAML writer keeps the order.
indirect enum Value: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case list([Value])
    case map([Entry])

    struct Entry: Equatable, Sendable {
        var key: String
        var value: Value
    }

    /// A map from `(key, value)` pairs, in order.
    static func object(_ pairs: [(String, Value)]) -> Value {
        .map(pairs.map { Entry(key: $0.0, value: $0.1) })
    }

    /// The value of `key` when this is a map.
    subscript(key: String) -> Value? {
        if case .map(let entries) = self { return entries.first { $0.key == key }?.value }
        return nil
    }

    /// This map with `pairs` appended (replacing entries of the same key).
    func adding(_ pairs: [(String, Value)]) -> Value {
        guard case .map(var entries) = self else { return self }
        for (k, v) in pairs {
            if let i = entries.firstIndex(where: { $0.key == k }) { entries[i].value = v } else { entries.append(Entry(key: k, value: v)) }
        }
        return .map(entries)
    }

    /// The shortest decimal text that reads back as the same Double.
    static func numberText(_ d: Double) -> String {
        if d == d.rounded(), Swift.abs(d) < 1e15 { return String(format: "%.1f", d) }
        return "\(d)"
    }
}

// MARK: - JSON

extension Value {
    /// Pretty-printed JSON with sorted keys and two-space indentation; byte-for-byte deterministic.
    func jsonText() -> String {
        var out = ""
        writeJSON(into: &out, indent: 0)
        return out + "\n"
    }

    private func writeJSON(into out: inout String, indent: Int) {
        let pad = String(repeating: " ", count: indent + 2), close = String(repeating: " ", count: indent)
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .uint(let u): out += String(u)
        case .double(let d): out += Value.numberText(d)
        case .string(let s): out += Value.jsonQuoted(s)
        case .list(let items):
            if items.isEmpty { out += "[]"; return }
            out += "[\n"
            for (i, item) in items.enumerated() {
                out += pad
                item.writeJSON(into: &out, indent: indent + 2)
                out += i + 1 < items.count ? ",\n" : "\n"
            }
            out += close + "]"
        case .map(let entries):
            if entries.isEmpty { out += "{}"; return }
            out += "{\n"
            let sorted = entries.sorted { $0.key < $1.key }
            for (i, e) in sorted.enumerated() {
                out += pad + Value.jsonQuoted(e.key) + ": "
                e.value.writeJSON(into: &out, indent: indent + 2)
                out += i + 1 < sorted.count ? ",\n" : "\n"
            }
            out += close + "}"
        }
    }

    /// A JSON (and YAML double-quoted) string literal.
    static func jsonQuoted(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 || u.value == 0x7F { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}

// MARK: - YAML

extension Value {
    /// Block-style YAML lines of a map or list, keys in declaration order.
    func yamlLines() -> [String] {
        switch self {
        case .map(let entries):
            if entries.isEmpty { return ["{}"] }
            var lines: [String] = []
            for e in entries {
                let key = Value.yamlScalar(e.key)
                switch e.value {
                case .map(let inner) where !inner.isEmpty:
                    lines.append(key + ":")
                    lines += e.value.yamlLines().map { "  " + $0 }
                case .list(let items) where items.contains(where: \.isCollection):
                    lines.append(key + ":")
                    lines += e.value.yamlLines().map { "  " + $0 }
                default:
                    lines.append(key + ": " + e.value.yamlFlow())
                }
            }
            return lines
        case .list(let items):
            if !items.contains(where: \.isCollection) { return [yamlFlow()] }
            var lines: [String] = []
            for item in items {
                let inner = item.isCollection ? item.yamlLines() : [item.yamlFlow()]
                for (i, line) in inner.enumerated() { lines.append((i == 0 ? "- " : "  ") + line) }
            }
            return lines
        default:
            return [yamlFlow()]
        }
    }

    private var isCollection: Bool {
        switch self {
        case .map(let e): return !e.isEmpty
        case .list(let l): return !l.isEmpty
        default: return false
        }
    }

    /// One-line (flow) YAML.
    func yamlFlow() -> String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .uint(let u): return String(u)
        case .double(let d): return Value.numberText(d)
        case .string(let s): return Value.yamlScalar(s)
        case .list(let items): return "[" + items.map { $0.yamlFlow() }.joined(separator: ", ") + "]"
        case .map(let entries): return "{" + entries.map { Value.yamlScalar($0.key) + ": " + $0.value.yamlFlow() }.joined(separator: ", ") + "}"
        }
    }

    /// A string as a plain YAML scalar when that reads back as the same string, else double-quoted.
    static func yamlScalar(_ s: String) -> String {
        let reserved: Set<String> = ["null", "~", "true", "false", "yes", "no", "on", "off", "y", "n", "nan", "none", ".nan", ".inf", "inf"]
        guard let first = s.unicodeScalars.first, CharacterSet.letters.contains(first) || first == "_" || first == "/",
              s.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) || "_./-".unicodeScalars.contains($0) }),
              !reserved.contains(s.lowercased()) else { return jsonQuoted(s) }
        return s
    }
}

// MARK: - Codable bridge

/// A string key for any coding container.
struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { return nil }
}

extension Value: Codable {
    func encode(to encoder: Encoder) throws {
        switch self {
        case .null: var c = encoder.singleValueContainer(); try c.encodeNil()
        case .bool(let b): var c = encoder.singleValueContainer(); try c.encode(b)
        case .int(let i): var c = encoder.singleValueContainer(); try c.encode(i)
        case .uint(let u): var c = encoder.singleValueContainer(); try c.encode(u)
        case .double(let d): var c = encoder.singleValueContainer(); try c.encode(d)
        case .string(let s): var c = encoder.singleValueContainer(); try c.encode(s)
        case .list(let items):
            var c = encoder.unkeyedContainer()
            for item in items { try c.encode(item) }
        case .map(let entries):
            var c = encoder.container(keyedBy: AnyKey.self)
            for e in entries { try c.encode(e.value, forKey: AnyKey(e.key)) }
        }
    }

    init(from decoder: Decoder) throws {
        if let c = try? decoder.container(keyedBy: AnyKey.self) {
            self = .map(try c.allKeys.sorted { $0.stringValue < $1.stringValue }.map {
                Entry(key: $0.stringValue, value: try c.decode(Value.self, forKey: $0))
            })
            return
        }
        if var c = try? decoder.unkeyedContainer() {
            var items: [Value] = []
            while !c.isAtEnd { items.append(try c.decode(Value.self)) }
            self = .list(items)
            return
        }
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let u = try? c.decode(UInt64.self) { self = .uint(u) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else { self = .string(try c.decode(String.self)) }
    }
}
