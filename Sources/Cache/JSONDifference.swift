import Foundation

/// One place where two JSON values differ, for "why did this stage run again" messages:
///
///     trainer.epochs changed 10 → 20
///     trainer.warmup added: 100
///     data["train.csv"].sha256 changed "3a7bd3e2360a…" → "9f86d081884c…"
public struct JSONDifference: Equatable, Sendable, CustomStringConvertible {
    /// What happened at `path`.
    public enum Kind: Equatable, Sendable {
        /// Present only in the new value.
        case added
        /// Present only in the old value.
        case removed
        /// Present in both with different values (or different types).
        case changed
    }

    /// Dotted path (`trainer.optimizer.lr`, `layers[0]`, `data["train.csv"]`); empty for the root.
    public var path: String
    public var kind: Kind
    /// The old value, rendered short (nil when added).
    public var old: String?
    /// The new value, rendered short (nil when removed).
    public var new: String?

    public init(path: String, kind: Kind, old: String?, new: String?) {
        self.path = path
        self.kind = kind
        self.old = old
        self.new = new
    }

    public var description: String {
        let place = path.isEmpty ? "value" : path
        switch kind {
        case .added: return "\(place) added: \(new ?? "")"
        case .removed: return "\(place) removed (was \(old ?? ""))"
        case .changed: return "\(place) changed \(old ?? "") → \(new ?? "")"
        }
    }
}

extension JSONValue {
    /// The differences from `old` to `self`, in path order (object keys sorted by Unicode
    /// scalars, array elements by index). Empty when the values are equal.
    public func differences(from old: JSONValue) -> [JSONDifference] {
        var result: [JSONDifference] = []
        Self.compare(old: old, new: self, path: "", into: &result)
        return result
    }

    private static func compare(old: JSONValue, new: JSONValue, path: String, into result: inout [JSONDifference]) {
        switch (old, new) {
        case (.object(let before), .object(let after)):
            let keys = Set(before.keys).union(after.keys)
                .sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
            for key in keys {
                let child = JSONPath.appending(key: key, to: path)
                switch (before[key], after[key]) {
                case (let b?, let a?): compare(old: b, new: a, path: child, into: &result)
                case (let b?, nil): result.append(.init(path: child, kind: .removed, old: b.shortRendering, new: nil))
                case (nil, let a?): result.append(.init(path: child, kind: .added, old: nil, new: a.shortRendering))
                case (nil, nil): break
                }
            }
        case (.array(let before), .array(let after)):
            for index in 0..<max(before.count, after.count) {
                let child = path + "[\(index)]"
                if index < before.count, index < after.count {
                    compare(old: before[index], new: after[index], path: child, into: &result)
                } else if index < before.count {
                    result.append(.init(path: child, kind: .removed, old: before[index].shortRendering, new: nil))
                } else {
                    result.append(.init(path: child, kind: .added, old: nil, new: after[index].shortRendering))
                }
            }
        default:
            if !sameValue(old, new) {
                result.append(.init(path: path, kind: .changed, old: old.shortRendering, new: new.shortRendering))
            }
        }
    }

    /// Equality that also holds for NaN (same bits) so a NaN never shows as a change.
    private static func sameValue(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if case .double(let x) = a, case .double(let y) = b { return x == y || x.bitPattern == y.bitPattern }
        return a == b
    }

    /// At most 60 characters of JSON text; 64-hex digests are cut to their first 12 digits.
    public var shortRendering: String {
        let text: String
        switch self {
        case .string(let value) where ContentHash.isDigest(value):
            text = "\"" + value.prefix(12) + "…\""
        case .double(let value) where !value.isFinite:
            text = value.description
        default:
            text = (try? canonicalString()) ?? "…"
        }
        if text.count <= 60 { return text }
        return String(text.prefix(59)) + "…"
    }
}
