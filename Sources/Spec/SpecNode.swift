import Foundation
import Yams

/// Where a node of the input tree came from.
enum Origin: Equatable, Sendable {
    /// A pipeline file: the location as shown to the user, and the file itself.
    case file(SourceLocation, URL)
    /// A `--set KEY=VALUE` flag.
    case flag(String)
    /// Neither (e.g. decoding through Codable).
    case none

    var location: SourceLocation? {
        if case .file(let l, _) = self { return l }
        return nil
    }
    var flag: String? {
        if case .flag(let f) = self { return f }
        return nil
    }
    var fileURL: URL? {
        if case .file(_, let u) = self { return u }
        return nil
    }
}

/// The input tree: YAML after composing, with every node's origin, before typed decoding.
struct SpecNode: Sendable {
    indirect enum Kind: Sendable {
        /// A scalar's text; `plain` is false for quoted and block scalars.
        case scalar(String, plain: Bool)
        case list([SpecNode])
        case map([SpecEntry])
    }
    var kind: Kind
    var origin: Origin

    /// A plain `null`, `~` or empty scalar.
    var isNull: Bool {
        if case .scalar(let s, true) = kind { return ["", "~", "null", "Null", "NULL"].contains(s) }
        return false
    }

    var mapEntries: [SpecEntry]? {
        if case .map(let e) = kind { return e }
        return nil
    }

    /// How the node reads in an error message: `'abc'`, `a list`, `a mapping`.
    var shown: String {
        switch kind {
        case .scalar(let s, let plain): return plain ? (isNull ? "null" : "'\(s)'") : "the string '\(s)'"
        case .list: return "a list"
        case .map: return "a mapping"
        }
    }

    /// The node for a plain data value (used for Codable and for materialised defaults).
    init(_ value: Value, origin: Origin) {
        self.origin = origin
        switch value {
        case .null: kind = .scalar("null", plain: true)
        case .bool(let b): kind = .scalar(b ? "true" : "false", plain: true)
        case .int(let i): kind = .scalar(String(i), plain: true)
        case .uint(let u): kind = .scalar(String(u), plain: true)
        case .double(let d): kind = .scalar(Value.numberText(d), plain: true)
        case .string(let s): kind = .scalar(s, plain: false)
        case .list(let items): kind = .list(items.map { SpecNode($0, origin: origin) })
        case .map(let entries): kind = .map(entries.map { SpecEntry(key: $0.key, keyOrigin: origin, value: SpecNode($0.value, origin: origin)) })
        }
    }

    init(kind: Kind, origin: Origin) {
        self.kind = kind
        self.origin = origin
    }

    /// Whether the dotted key `path` (`trainer.optimizer.lr`) names a node in this tree.
    func has(path: String) -> Bool {
        var node = self
        for part in path.split(separator: ".") {
            guard let next = node.mapEntries?.first(where: { $0.key == part })?.value else { return false }
            node = next
        }
        return true
    }
}

/// One `key: value` of a mapping.
struct SpecEntry: Sendable {
    var key: String
    var keyOrigin: Origin
    var value: SpecNode
}

// MARK: - From YAML

/// Composes YAML text into a `SpecNode`, reporting syntax errors and duplicate keys.
struct YAMLReader {
    let url: URL
    let display: String
    /// Origin used for nodes (a file, or a flag for `--set` values).
    let flag: String?

    private func origin(_ mark: Mark?) -> Origin {
        if let flag { return .flag(flag) }
        return .file(SourceLocation(file: display, line: mark?.line ?? 1, column: mark?.column ?? 1), url)
    }

    /// The root node (nil for an empty document), plus errors.
    func read(_ text: String) -> (SpecNode?, [SpecError]) {
        var text = text
        var renamed: [String: (key: String, mark: Mark)] = [:]
        var errors: [SpecError] = []
        for attempt in 0..<200 {
            do {
                guard let node = try Yams.compose(yaml: text) else { return (nil, errors) }
                var ctxErrors: [SpecError] = []
                let root = convert(node, renamed: renamed, errors: &ctxErrors)
                return (root, errors + ctxErrors)
            } catch let YamlError.duplicatedKeysInMapping(duplicates, context) {
                guard let key = duplicates.first,
                      let (newText, token) = rename(key, at: context.mark, in: text, index: attempt) else {
                    errors.append(error(context.mark, "duplicate key '\(duplicates.joined(separator: "', '"))' in a mapping", hint: "keep one of them"))
                    return (nil, errors)
                }
                text = newText
                renamed[token] = (key, context.mark)
            } catch let e as YamlError {
                errors.append(syntaxError(e))
                return (nil, errors)
            } catch {
                errors.append(SpecError(location: origin(nil).location, flag: flag, path: "", message: "cannot parse YAML: \(error)"))
                return (nil, errors)
            }
        }
        return (nil, errors)
    }

    private func error(_ mark: Mark?, _ message: String, hint: String? = nil) -> SpecError {
        let o = origin(mark)
        return SpecError(location: o.location, flag: o.flag, path: "", message: message, hint: hint)
    }

    private func syntaxError(_ e: YamlError) -> SpecError {
        switch e {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let ctx = context.map { " (\($0.text) at line \($0.mark.line), column \($0.mark.column))" } ?? ""
            return error(mark, "invalid YAML: \(problem)\(ctx)", hint: "check the indentation and quoting on this line")
        case .reader(let problem, _, _, _):
            return error(nil, "cannot read YAML: \(problem)")
        default:
            return error(nil, "invalid YAML: \(e)")
        }
    }

    /// Replaces the duplicate key at `mark` by a same-length private-use token, so the document
    /// composes and the other occurrence can be located.
    private func rename(_ key: String, at mark: Mark, in text: String, index: Int) -> (String, String)? {
        var lines = text.components(separatedBy: "\n")
        guard mark.line >= 1, mark.line <= lines.count, !key.isEmpty else { return nil }
        var scalars = Array(lines[mark.line - 1].unicodeScalars)
        var start = mark.column - 1
        guard start >= 0, start < scalars.count else { return nil }
        if scalars[start] == "\"" || scalars[start] == "'" { start += 1 }
        let keyScalars = Array(key.unicodeScalars)
        guard start + keyScalars.count <= scalars.count, Array(scalars[start..<start + keyScalars.count]) == keyScalars,
              let first = Unicode.Scalar(0xE000 + UInt32(index % 6000)), let fill = Unicode.Scalar(0xF8FF as UInt32) else { return nil }
        let token = [first] + Array(repeating: fill, count: keyScalars.count - 1)
        scalars.replaceSubrange(start..<start + keyScalars.count, with: token)
        var line = String.UnicodeScalarView()
        line.append(contentsOf: scalars)
        lines[mark.line - 1] = String(line)
        var tokenString = String.UnicodeScalarView()
        tokenString.append(contentsOf: token)
        return (lines.joined(separator: "\n"), String(tokenString))
    }

    private func convert(_ node: Node, renamed: [String: (key: String, mark: Mark)], errors: inout [SpecError]) -> SpecNode {
        switch node {
        case .scalar(let s):
            return SpecNode(kind: .scalar(s.string, plain: s.style == .plain || s.style == .any), origin: origin(s.mark))
        case .sequence(let seq):
            return SpecNode(kind: .list(seq.map { convert($0, renamed: renamed, errors: &errors) }), origin: origin(seq.mark))
        case .mapping(let map):
            var entries: [SpecEntry] = []
            for (k, v) in map {
                let keyText: String
                switch k {
                case .scalar(let s): keyText = s.string
                default:
                    errors.append(error(k.mark, "a mapping key must be a plain word, found a \(k.mapping != nil ? "mapping" : "list")"))
                    continue
                }
                if let (original, mark) = renamed[keyText] {
                    let later = map.first { $0.key.string == original }?.key.mark
                    let at = later.map { "line \($0.line)" } ?? "later"
                    errors.append(error(mark, "duplicate key '\(original)' (set again at \(at))", hint: "keep one of them"))
                    continue
                }
                entries.append(SpecEntry(key: keyText, keyOrigin: origin(k.mark), value: convert(v, renamed: renamed, errors: &errors)))
            }
            return SpecNode(kind: .map(entries), origin: origin(map.mark))
        case .alias(let a):
            errors.append(error(a.mark, "YAML aliases are not supported in pipeline files", hint: "use `extends` to share settings"))
            return SpecNode(kind: .scalar("null", plain: true), origin: origin(a.mark))
        }
    }
}
