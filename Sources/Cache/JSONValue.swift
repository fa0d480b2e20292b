import Foundation

/// A JSON value that keeps integers and doubles apart — the form of a cache key's inputs.
///
/// Build one from literals or from any `Encodable`, then hash its canonical form:
///
///     let components: JSONValue = ["stage": "train", "trainer": ["epochs": 10, "lr": 0.001]]
///     let key = try components.digest()      // SHA-256 hex of the canonical bytes
///     try components.canonicalString()       // {"stage":"train","trainer":{"epochs":10,"lr":0.001}}
///
/// Text is read with `JSONValue(parsing:)`, which treats a number as `.int` when it has no
/// fraction and no exponent (and fits in Int64), otherwise as `.double`; so the canonical text
/// of a value parses back to an equal value. Strings and object keys are compared as Swift
/// strings (canonically equivalent Unicode spellings are equal), but canonical bytes keep the
/// scalars exactly as given — normalise text before building keys if that matters.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Converts any `Encodable` by encoding it with `encoder` and parsing the result.
    ///
    /// `JSONEncoder` writes integral doubles without a fraction (`1.0` becomes `1`), so such
    /// values come back as `.int`; every other double stays `.double`. Build `JSONValue`s
    /// directly when that distinction must survive.
    public init(encoding value: some Encodable, encoder: JSONEncoder = JSONEncoder()) throws {
        let data: Data
        do {
            data = try encoder.encode(value)
        } catch {
            throw CacheError.invalidDocument(path: String(describing: type(of: value)),
                                             detail: "cannot encode as JSON: \(error)")
        }
        self = try JSONValue(parsing: data, source: "encoded \(type(of: value))")
    }

    /// Parses strict JSON (RFC 8259): no trailing commas or comments, no duplicate object keys,
    /// nesting at most 512 deep. `source` names the text in errors (usually a file path).
    public init(parsing data: Data, source: String = "JSON text") throws {
        var parser = JSONParser(bytes: [UInt8](data), source: source)
        self = try parser.parseDocument()
    }

    /// The value at `key` when this is an object.
    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    /// The string when this is `.string`.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The integer when this is `.int`.
    public var intValue: Int64? {
        if case .int(let value) = self { return value }
        return nil
    }

    /// The number when this is `.int` or `.double`.
    public var doubleValue: Double? {
        switch self {
        case .int(let value): return Double(value)
        case .double(let value): return value
        default: return nil
        }
    }

    /// The elements when this is `.array`.
    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    /// The members when this is `.object`.
    public var objectValue: [String: JSONValue]? {
        if case .object(let value) = self { return value }
        return nil
    }
}

// MARK: - Codable

extension JSONValue: Codable {
    /// Decodes from any decoder. Through `JSONDecoder` a number written `1.0` decodes as
    /// `.int(1)` (the decoder does not expose the text); use `JSONValue(parsing:)` for files
    /// written by `canonicalData()`.
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else if let value = try? container.decode([String: JSONValue].self) {
            self = .object(value)
        } else {
            throw DecodingError.dataCorruptedError(in: container,
                                                   debugDescription: "not a JSON value")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

// MARK: - Literals

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByStringLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}
