import Foundation

// MARK: - Canonical form

/// The canonical text of a `JSONValue`, the bytes that are hashed into cache keys:
///
/// - no whitespace; object members sorted by key, comparing Unicode scalar values;
/// - `.int` as plain decimal digits (`-12`);
/// - `.double` as the shortest decimal that reads back to the same double (Swift's
///   `description`, the same on every platform), always with a fraction or an exponent so it
///   never reads back as an integer: `1.0`, `0.1`, `1e-05`, `1e+16`; `-0.0` is written `0.0`;
///   NaN and infinities throw `CacheError.nonFiniteNumber` with the value's path;
/// - strings as UTF-8 with only `"`, `\` and U+0000…U+001F escaped — `\b \f \n \r \t` where
///   they exist, otherwise `\u00XX` with lowercase hex; `/` and non-ASCII are written as is.
extension JSONValue {
    /// The canonical UTF-8 bytes (see the extension's documentation).
    public func canonicalData() throws -> Data {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        try writeCanonical(into: &out, path: "")
        return Data(out)
    }

    /// The canonical text as a `String`.
    public func canonicalString() throws -> String {
        String(decoding: try canonicalData(), as: UTF8.self)
    }

    /// SHA-256 hex of `canonicalData()` — the value's identity as a cache key.
    public func digest() throws -> String {
        ContentHash.sha256(try canonicalData())
    }

    /// The canonical form of a finite double (see the extension's documentation).
    static func canonicalNumber(_ value: Double) -> String {
        if value == 0 { return "0.0" }
        return value.description
    }

    private func writeCanonical(into out: inout [UInt8], path: String) throws {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let value): out.append(contentsOf: (value ? "true" : "false").utf8)
        case .int(let value): out.append(contentsOf: String(value).utf8)
        case .double(let value):
            guard value.isFinite else { throw CacheError.nonFiniteNumber(path: path) }
            out.append(contentsOf: Self.canonicalNumber(value).utf8)
        case .string(let value): Self.writeString(value, into: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (offset, element) in elements.enumerated() {
                if offset > 0 { out.append(UInt8(ascii: ",")) }
                try element.writeCanonical(into: &out, path: path + "[\(offset)]")
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (offset, key) in Self.sortedKeys(members).enumerated() {
                if offset > 0 { out.append(UInt8(ascii: ",")) }
                Self.writeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                try (members[key] ?? .null).writeCanonical(into: &out, path: JSONPath.appending(key: key, to: path))
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    static func sortedKeys(_ members: [String: JSONValue]) -> [String] {
        members.keys.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    static func writeString(_ value: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x08: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x0C: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x00..<0x20:
                out.append(contentsOf: Array("\\u00".utf8))
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0x0f)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

// MARK: - Paths

/// Dotted paths into a JSON value: `trainer.optimizer.lr`, `layers[0].units`, and
/// `data["train.csv"]` for keys that are not plain identifiers. The root is the empty path.
enum JSONPath {
    static func appending(key: String, to path: String) -> String {
        let plain = !key.isEmpty && key.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
                || $0 == "_" || $0 == "-"
        }
        if plain { return path.isEmpty ? key : path + "." + key }
        var quoted: [UInt8] = []
        JSONValue.writeString(key, into: &quoted)
        return path + "[" + String(decoding: quoted, as: UTF8.self) + "]"
    }
}
