import Foundation

// The one place a spec's shape is declared. A `Codec<V>` knows how one kind of value is read
// from the input tree (with errors), written out, and described in JSON Schema. A `Field<Root>`
// binds a key, a key path, a codec, a description and the default (read from `Root()`); a
// `SpecSection` lists its fields. The decoder, validation, resolved YAML, Codable and JSON
// Schema all walk these declarations.

// MARK: - Decoding context

/// Collects errors and source origins while one tree is decoded.
final class DecodeContext {
    var errors: [SpecError] = []
    var origins: [String: Origin] = [:]
    /// The pipeline file the user gave (relative paths of flags resolve against the cwd).
    var topFile: URL

    init(topFile: URL) { self.topFile = topFile }

    func record(_ path: String, _ origin: Origin) {
        if case .none = origin { return }
        origins[path] = origin
    }

    func fail(_ origin: Origin, _ path: String, _ message: String, hint: String? = nil) {
        errors.append(SpecError(location: origin.location, flag: origin.flag, path: path, message: message, hint: hint))
    }

    var sourceMap: SourceMap {
        var map = SourceMap()
        for (path, o) in origins {
            map.entries[path] = SourceMap.Entry(location: o.location, file: o.fileURL, flag: o.flag)
        }
        return map
    }
}

/// `a.b` joined, or `b` at the root.
func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : path + "." + key }

/// How a path is named in messages: the path, or "the pipeline file" at the root.
func named(_ path: String) -> String { path.isEmpty ? "the pipeline file" : path }

// MARK: - Codec

/// Reading, writing and describing one kind of value.
struct Codec<V> {
    /// The value's JSON Schema (without `description` and `default`, which fields add).
    var schema: () -> Value
    /// Reads a node; on failure records errors and returns nil.
    var decode: (SpecNode, String, DecodeContext) -> V?
    /// Writes a value.
    var encode: (V) -> Value
}

extension Codec {
    /// A codec that further validates what `self` decoded (`check` returns a message and hint).
    func checked(_ check: @escaping (V) -> (String, String?)?) -> Codec<V> {
        let base = self
        return Codec(schema: base.schema, decode: { node, path, ctx in
            guard let v = base.decode(node, path, ctx) else { return nil }
            if let (message, hint) = check(v) { ctx.fail(node.origin, path, message, hint: hint); return nil }
            return v
        }, encode: base.encode)
    }

    /// The same codec with extra schema keywords.
    func schemaAdding(_ pairs: [(String, Value)]) -> Codec<V> {
        var c = self
        let base = schema
        c.schema = { base().adding(pairs) }
        return c
    }
}

/// Formats a number for range messages (`1e-08`, `0.9`, `64`).
func show(_ d: Double) -> String { d == d.rounded() && Swift.abs(d) < 1e15 ? String(Int(d)) : "\(d)" }

enum Codecs {
    /// A plain scalar's text, or an error "expected X, found Y".
    static func plainScalar(_ node: SpecNode, _ path: String, _ ctx: DecodeContext, expected: String) -> String? {
        if case .scalar(let s, true) = node.kind, !node.isNull { return s }
        ctx.fail(node.origin, path, "\(path) expects \(expected), found \(node.shown)")
        return nil
    }

    /// An integer in `range`.
    static func int(_ range: ClosedRange<Int>? = nil, min: Int? = nil) -> Codec<Int> {
        Codec(schema: {
            var s: [(String, Value)] = [("type", .string("integer"))]
            if let r = range { s += [("minimum", .int(r.lowerBound)), ("maximum", .int(r.upperBound))] }
            if let min { s.append(("minimum", .int(min))) }
            return .object(s)
        }, decode: { node, path, ctx in
            guard let text = plainScalar(node, path, ctx, expected: "an integer") else { return nil }
            guard let v = Int(text.replacingOccurrences(of: "_", with: "")) else {
                ctx.fail(node.origin, path, "\(path) expects an integer, found '\(text)'")
                return nil
            }
            if let r = range, !r.contains(v) {
                ctx.fail(node.origin, path, "\(path) must be in \(r.lowerBound)...\(r.upperBound), found \(v)")
                return nil
            }
            if let min, v < min {
                ctx.fail(node.origin, path, "\(path) must be ≥ \(min), found \(v)")
                return nil
            }
            return v
        }, encode: { .int($0) })
    }

    /// A non-negative 64-bit integer.
    static var uint64: Codec<UInt64> {
        Codec(schema: { .object([("type", .string("integer")), ("minimum", .int(0))]) }, decode: { node, path, ctx in
            guard let text = plainScalar(node, path, ctx, expected: "a non-negative integer") else { return nil }
            guard let v = UInt64(text.replacingOccurrences(of: "_", with: "")) else {
                ctx.fail(node.origin, path, "\(path) expects a non-negative integer (at most \(UInt64.max)), found '\(text)'")
                return nil
            }
            return v
        }, encode: { .uint($0) })
    }

    /// A finite number with optional bounds (`Open` bounds are exclusive).
    static func double(min: Double? = nil, minOpen: Bool = false, max: Double? = nil, maxOpen: Bool = false) -> Codec<Double> {
        let rangeText: String = {
            switch (min, max) {
            case let (lo?, hi?): return "in \(minOpen ? "(" : "[")\(show(lo)), \(show(hi))\(maxOpen ? ")" : "]")"
            case let (lo?, nil): return "\(minOpen ? ">" : "≥") \(show(lo))"
            case let (nil, hi?): return "\(maxOpen ? "<" : "≤") \(show(hi))"
            default: return ""
            }
        }()
        return Codec(schema: {
            var s: [(String, Value)] = [("type", .string("number"))]
            if let min { s.append((minOpen ? "exclusiveMinimum" : "minimum", .double(min))) }
            if let max { s.append((maxOpen ? "exclusiveMaximum" : "maximum", .double(max))) }
            return .object(s)
        }, decode: { node, path, ctx in
            guard let text = plainScalar(node, path, ctx, expected: "a number") else { return nil }
            guard let v = Double(text.replacingOccurrences(of: "_", with: "")), v.isFinite else {
                ctx.fail(node.origin, path, "\(path) expects a finite number, found '\(text)'")
                return nil
            }
            let low = min.map { minOpen ? v <= $0 : v < $0 } ?? false
            let high = max.map { maxOpen ? v >= $0 : v > $0 } ?? false
            if low || high {
                ctx.fail(node.origin, path, "\(path) must be \(rangeText), found \(text)")
                return nil
            }
            return v
        }, encode: { .double($0) })
    }

    /// `true` or `false`.
    static var bool: Codec<Bool> {
        Codec(schema: { .object([("type", .string("boolean"))]) }, decode: { node, path, ctx in
            guard let text = plainScalar(node, path, ctx, expected: "true or false") else { return nil }
            switch text {
            case "true", "True", "TRUE": return true
            case "false", "False", "FALSE": return false
            default:
                ctx.fail(node.origin, path, "\(path) expects true or false, found '\(text)'")
                return nil
            }
        }, encode: { .bool($0) })
    }

    /// Any scalar, as text; `pattern` (a regular expression matched against the whole text).
    static func string(pattern: String? = nil, maxLength: Int? = nil, nonEmpty: Bool = false) -> Codec<String> {
        Codec(schema: {
            var s: [(String, Value)] = [("type", .string("string"))]
            if let pattern { s.append(("pattern", .string("^" + pattern + "$"))) }
            if let maxLength { s.append(("maxLength", .int(maxLength))) }
            if nonEmpty { s.append(("minLength", .int(1))) }
            return .object(s)
        }, decode: { node, path, ctx in
            guard case .scalar(let s, let plain) = node.kind, !(plain && s != "" && node.isNull) else {
                ctx.fail(node.origin, path, "\(path) expects a string, found \(node.shown)")
                return nil
            }
            if nonEmpty && s.isEmpty {
                ctx.fail(node.origin, path, "\(path) must not be empty")
                return nil
            }
            if let pattern, s.range(of: "^" + pattern + "$", options: .regularExpression) == nil {
                ctx.fail(node.origin, path, "\(path) must match \(pattern), found '\(s)'")
                return nil
            }
            if let maxLength, s.count > maxLength {
                ctx.fail(node.origin, path, "\(path) must be at most \(maxLength) characters, found \(s.count)")
                return nil
            }
            return s
        }, encode: { .string($0) })
    }

    /// One of a fixed set of words.
    static func words(_ allowed: [String], what: String = "value") -> Codec<String> {
        Codec(schema: { .object([("type", .string("string")), ("enum", .list(allowed.map(Value.string)))]) },
              decode: { node, path, ctx in
            guard case .scalar(let s, _) = node.kind, !node.isNull else {
                ctx.fail(node.origin, path, "\(path) expects one of \(allowed.joined(separator: ", ")), found \(node.shown)")
                return nil
            }
            guard allowed.contains(s) else {
                ctx.fail(node.origin, path, "unknown \(what) '\(s)' for \(path)\(Suggest.didYouMean(s, allowed))",
                         hint: "allowed: \(allowed.joined(separator: ", "))")
                return nil
            }
            return s
        }, encode: { .string($0) })
    }

    /// A String-backed enum, by raw value.
    static func enumeration<E: RawRepresentable & CaseIterable>(_ type: E.Type) -> Codec<E> where E.RawValue == String {
        let w = words(E.allCases.map(\.rawValue))
        return Codec(schema: w.schema, decode: { node, path, ctx in w.decode(node, path, ctx).flatMap(E.init(rawValue:)) },
                     encode: { .string($0.rawValue) })
    }

    /// A list of `item`s.
    static func list<T>(_ item: Codec<T>, minItems: Int? = nil, maxItems: Int? = nil) -> Codec<[T]> {
        Codec(schema: {
            var s: [(String, Value)] = [("type", .string("array")), ("items", item.schema())]
            if let minItems { s.append(("minItems", .int(minItems))) }
            if let maxItems { s.append(("maxItems", .int(maxItems))) }
            return .object(s)
        }, decode: { node, path, ctx in
            guard case .list(let nodes) = node.kind else {
                ctx.fail(node.origin, path, "\(path) expects a list, found \(node.shown)", hint: "write it as [a, b] or one `- item` per line")
                return nil
            }
            var out: [T] = []
            var ok = true
            for (i, n) in nodes.enumerated() {
                let p = "\(path)[\(i)]"
                ctx.record(p, n.origin)
                if let v = item.decode(n, p, ctx) { out.append(v) } else { ok = false }
            }
            guard ok else { return nil }
            if let minItems, maxItems == minItems, out.count != minItems {
                ctx.fail(node.origin, path, "\(path) must have exactly \(minItems) items, found \(out.count)")
                return nil
            }
            if let minItems, out.count < minItems {
                ctx.fail(node.origin, path, "\(path) must have at least \(minItems) item\(minItems == 1 ? "" : "s"), found \(out.count)")
                return nil
            }
            if let maxItems, out.count > maxItems {
                ctx.fail(node.origin, path, "\(path) must have at most \(maxItems) items, found \(out.count)")
                return nil
            }
            return out
        }, encode: { .list($0.map(item.encode)) })
    }

    /// `null` or a `wrapped` value.
    static func optional<T>(_ wrapped: Codec<T>) -> Codec<T?> {
        Codec(schema: { .object([("oneOf", .list([wrapped.schema(), .object([("type", .string("null"))])]))]) },
              decode: { node, path, ctx in
            if node.isNull { return .some(nil) }
            return wrapped.decode(node, path, ctx).map { .some($0) }
        }, encode: { $0.map(wrapped.encode) ?? .null })
    }

    /// A mapping from free-form names to `value`s (keys sorted when written).
    static func dictionary<T>(_ value: Codec<T>) -> Codec<[String: T]> {
        Codec(schema: { .object([("type", .string("object")), ("additionalProperties", value.schema())]) },
              decode: { node, path, ctx in
            if node.isNull { return [:] }
            guard let entries = node.mapEntries else {
                ctx.fail(node.origin, path, "\(path) expects a mapping of names to values, found \(node.shown)")
                return nil
            }
            var out: [String: T] = [:]
            var ok = true
            for e in entries {
                let p = join(path, e.key)
                ctx.record(p, e.keyOrigin)
                if let v = value.decode(e.value, p, ctx) { out[e.key] = v } else { ok = false }
            }
            return ok ? out : nil
        }, encode: { dict in .map(dict.keys.sorted().map { Value.Entry(key: $0, value: value.encode(dict[$0]!)) }) })
    }
}

// MARK: - Fields and sections

/// One key of a section: declared once, used by every consumer.
struct Field<Root> {
    let key: String
    let summary: String
    let required: Bool
    /// The default depends on context (e.g. `name`, the file's stem); not written in the schema.
    let contextualDefault: Bool
    /// A `key: value` line to suggest when a required key is missing.
    let example: String?
    /// When set, the key only applies if this holds (others reject it and omit it when writing).
    let appliesWhen: ((Root) -> Bool)?
    /// Names the condition, e.g. "kind: sgd".
    let condition: String?
    let valueSchema: () -> Value
    let decodeInto: (SpecNode, String, DecodeContext, inout Root) -> Bool
    let encodeFrom: (Root) -> Value

    init<V>(_ key: String, _ keyPath: WritableKeyPath<Root, V>, _ codec: Codec<V>, _ summary: String,
            required: Bool = false, contextualDefault: Bool = false, example: String? = nil, only condition: String? = nil, when applies: ((Root) -> Bool)? = nil) {
        self.key = key
        self.summary = summary
        self.required = required
        self.contextualDefault = contextualDefault
        self.example = example
        self.condition = condition
        self.appliesWhen = applies
        self.valueSchema = codec.schema
        self.decodeInto = { node, path, ctx, root in
            guard let v = codec.decode(node, path, ctx) else { return false }
            root[keyPath: keyPath] = v
            return true
        }
        self.encodeFrom = { codec.encode($0[keyPath: keyPath]) }
    }
}

/// A mapping of declared fields (a struct section of the pipeline file).
protocol SpecSection: Sendable {
    /// Every field at its default (required fields hold placeholders).
    init()
    /// Title for JSON Schema.
    static var title: String { get }
    /// What the section is, for JSON Schema and docs.
    static var summary: String { get }
    /// The keys, in the order they are written.
    static var fields: [Field<Self>] { get }
    /// Cross-field checks, run when every field decoded cleanly.
    static func validate(_ value: Self, _ scope: Scope)
}

extension SpecSection {
    static func validate(_ value: Self, _ scope: Scope) {}
}

/// Where a section is being decoded: lets cross-field checks report at a key's origin.
struct Scope {
    let path: String
    let origin: Origin
    let ctx: DecodeContext

    /// The origin of `key` in this section (the section's own origin when it was defaulted).
    func origin(of key: String) -> Origin { ctx.origins[join(path, key)] ?? origin }

    /// Whether `key` was written in a file or a flag.
    func isSet(_ key: String) -> Bool { ctx.origins[join(path, key)] != nil }

    func fail(_ key: String, _ message: String, hint: String? = nil) {
        ctx.fail(origin(of: key), join(path, key), message, hint: hint)
    }
}

enum Sections {
    /// Decodes a section's mapping; `extraKeys` (e.g. a union's `kind`) are skipped silently.
    static func decode<T: SpecSection>(_ type: T.Type, _ node: SpecNode, _ path: String, _ ctx: DecodeContext,
                                       extraKeys: [String] = [], context: String = "") -> T? {
        var value = T()
        if node.isNull { return finish(value, node, path, ctx, present: [], before: ctx.errors.count) }
        guard let entries = node.mapEntries else {
            ctx.fail(node.origin, path, "\(named(path)) expects a mapping, found \(node.shown)",
                     hint: "write `key: value` lines indented under \(path.isEmpty ? "the top level" : path)")
            return nil
        }
        let before = ctx.errors.count
        let fields = T.fields
        var present: [String] = []
        for e in entries where !extraKeys.contains(e.key) {
            let p = join(path, e.key)
            guard let field = fields.first(where: { $0.key == e.key }) else {
                let known = fields.map(\.key) + extraKeys
                ctx.fail(e.keyOrigin, p, "unknown key '\(e.key)' in \(named(path))\(context)\(Suggest.didYouMean(e.key, known))",
                         hint: "known keys: \(known.joined(separator: ", "))")
                continue
            }
            ctx.record(p, e.keyOrigin)
            present.append(e.key)
            _ = field.decodeInto(e.value, p, ctx, &value)
        }
        for f in fields where f.required && !present.contains(f.key) {
            ctx.fail(node.origin, join(path, f.key), "missing required key '\(f.key)' in \(named(path))",
                     hint: f.example.map { "add `\($0)`" + (path.isEmpty ? "" : " under \(path)") })
        }
        return finish(value, node, path, ctx, present: present, before: before)
    }

    private static func finish<T: SpecSection>(_ value: T, _ node: SpecNode, _ path: String, _ ctx: DecodeContext,
                                               present: [String], before: Int) -> T? {
        for f in T.fields where present.contains(f.key) {
            if let applies = f.appliesWhen, !applies(value) {
                let p = join(path, f.key)
                ctx.fail(ctx.origins[p] ?? node.origin, p, "'\(f.key)' applies only with \(f.condition ?? "another setting")",
                         hint: "remove '\(f.key)', or set \(f.condition ?? "the setting it needs")")
            }
        }
        guard ctx.errors.count == before else { return nil }
        T.validate(value, Scope(path: path, origin: node.origin, ctx: ctx))
        return ctx.errors.count == before ? value : nil
    }

    /// Every applicable field, in declaration order.
    static func encode<T: SpecSection>(_ value: T) -> Value {
        .map(T.fields.compactMap { f in
            if let applies = f.appliesWhen, !applies(value) { return nil }
            return Value.Entry(key: f.key, value: f.encodeFrom(value))
        })
    }

    /// The section's JSON Schema object; `extra` properties come first (e.g. a `kind` const).
    static func schema<T: SpecSection>(_ type: T.Type, extra: [(String, Value)] = [], extraRequired: [String] = []) -> Value {
        let defaults = T()
        var props: [(String, Value)] = extra
        for f in T.fields {
            var s: [(String, Value)] = [("description", .string(f.summary + (f.condition.map { " Only with \($0)." } ?? "")))]
            if !f.required && !f.contextualDefault { s.append(("default", f.encodeFrom(defaults))) }
            props.append((f.key, f.valueSchema().adding(s)))
        }
        let required = extraRequired + T.fields.filter(\.required).map(\.key)
        var out: [(String, Value)] = [
            ("type", .string("object")), ("title", .string(T.title)), ("description", .string(T.summary)),
            ("properties", .object(props)), ("additionalProperties", .bool(false)),
        ]
        if !required.isEmpty { out.append(("required", .list(required.map(Value.string)))) }
        return .object(out)
    }

    /// The codec of a section.
    static func codec<T: SpecSection>(_ type: T.Type) -> Codec<T> {
        Codec(schema: { schema(T.self) }, decode: { decode(T.self, $0, $1, $2) }, encode: { encode($0) })
    }
}

// MARK: - Unions

/// One alternative of a tagged union: its tag, and the section that holds its fields.
struct UnionCase<U> {
    let tag: String
    let summary: String
    let schema: (_ tagKey: String?, _ tagRequired: Bool) -> Value
    let decode: (SpecNode, String, DecodeContext, _ extraKeys: [String], _ context: String) -> U?
    let encode: (U) -> Value?

    init<T: SpecSection>(_ tag: String, _ type: T.Type, _ summary: String, wrap: @escaping (T) -> U, unwrap: @escaping (U) -> T?) {
        self.tag = tag
        self.summary = summary
        self.schema = { tagKey, tagRequired in
            guard let tagKey else { return Sections.schema(T.self) }
            let tagSchema = Value.object([("const", .string(tag)), ("description", .string(summary))])
            return Sections.schema(T.self, extra: [(tagKey, tagSchema)], extraRequired: tagRequired ? [tagKey] : [])
        }
        self.decode = { node, path, ctx, extra, context in
            Sections.decode(T.self, node, path, ctx, extraKeys: extra, context: context).map(wrap)
        }
        self.encode = { u in unwrap(u).map { Sections.encode($0) } }
    }
}

enum Unions {
    /// A mapping whose `tagKey` (e.g. `kind`) picks the case; absent → `defaultTag`.
    static func tagged<U>(_ tagKey: String, default defaultTag: String?, _ cases: [UnionCase<U>]) -> Codec<U> {
        let tags = cases.map(\.tag)
        return Codec(schema: {
            .object([("oneOf", .list(cases.map { $0.schema(tagKey, $0.tag != defaultTag) }))])
        }, decode: { node, path, ctx in
            var tag = defaultTag
            if let entries = node.mapEntries, let e = entries.first(where: { $0.key == tagKey }) {
                let p = join(path, tagKey)
                ctx.record(p, e.keyOrigin)
                guard let t = Codecs.words(tags, what: tagKey).decode(e.value, p, ctx) else { return nil }
                tag = t
            } else if !node.isNull, node.mapEntries == nil {
                ctx.fail(node.origin, path, "\(path) expects a mapping with `\(tagKey): \(tags.joined(separator: "|"))`, found \(node.shown)")
                return nil
            }
            guard let tag, let c = cases.first(where: { $0.tag == tag }) else {
                ctx.fail(node.origin, join(path, tagKey), "missing required key '\(tagKey)' in \(path)",
                         hint: "add `\(tagKey): \(tags[0])` (one of \(tags.joined(separator: ", ")))")
                return nil
            }
            return c.decode(node, path, ctx, [tagKey], " (\(tagKey): \(tag))")
        }, encode: { u in
            for c in cases { if case .map(let entries)? = c.encode(u) { return .map([Value.Entry(key: tagKey, value: .string(c.tag))] + entries) } }
            return .null
        })
    }

    /// A one-key mapping whose key picks the case (`- early_stopping: {patience: 3}`).
    static func keyed<U>(_ cases: [UnionCase<U>], what: String) -> Codec<U> {
        let tags = cases.map(\.tag)
        return Codec(schema: {
            .object([("oneOf", .list(cases.map { c in
                .object([("type", .string("object")), ("description", .string(c.summary)),
                         ("properties", .object([(c.tag, c.schema(nil, false))])), ("required", .list([.string(c.tag)])),
                         ("additionalProperties", .bool(false))])
            }))])
        }, decode: { node, path, ctx in
            let form = "a one-key mapping such as `\(tags[0]): {}` (one of \(tags.joined(separator: ", ")))"
            if case .scalar(let s, _) = node.kind, let c = cases.first(where: { $0.tag == s }) {
                let p = join(path, c.tag)
                ctx.record(p, node.origin)
                return c.decode(SpecNode(kind: .scalar("null", plain: true), origin: node.origin), p, ctx, [], "")
            }
            guard let entries = node.mapEntries, entries.count == 1, let e = entries.first else {
                ctx.fail(node.origin, path, "\(path) expects \(form), found \(node.shown)")
                return nil
            }
            guard let c = cases.first(where: { $0.tag == e.key }) else {
                ctx.fail(e.keyOrigin, join(path, e.key), "unknown \(what) '\(e.key)' in \(path)\(Suggest.didYouMean(e.key, tags))",
                         hint: "allowed: \(tags.joined(separator: ", "))")
                return nil
            }
            let p = join(path, c.tag)
            ctx.record(p, e.keyOrigin)
            return c.decode(e.value, p, ctx, [], "")
        }, encode: { u in
            for c in cases { if let v = c.encode(u) { return .object([(c.tag, v)]) } }
            return .null
        })
    }
}
