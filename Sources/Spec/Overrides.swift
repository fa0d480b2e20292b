import Foundation

/// `--set KEY=VALUE`: KEY is a dotted path (`trainer.callbacks[0].early_stopping.patience`),
/// VALUE a YAML flow value. The value is placed into the merged tree, which is then decoded with
/// the same rules as the file; errors name the flag.
enum Overrides {
    enum Segment: Equatable {
        case key(String)
        case index(Int)
    }

    /// Parses `a.b[0].c`; nil when malformed.
    static func parsePath(_ text: String) -> [Segment]? {
        var segments: [Segment] = []
        for part in text.split(separator: ".", omittingEmptySubsequences: false) {
            var rest = Substring(part)
            guard let bracket = rest.firstIndex(of: "[") ?? Optional(rest.endIndex) else { return nil }
            let name = rest[rest.startIndex..<bracket]
            guard !name.isEmpty, name.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) || $0 == "_" }) else { return nil }
            segments.append(.key(String(name)))
            rest = rest[bracket...]
            while !rest.isEmpty {
                guard rest.first == "[", let close = rest.firstIndex(of: "]"),
                      let n = Int(rest[rest.index(after: rest.startIndex)..<close]), n >= 0 else { return nil }
                segments.append(.index(n))
                rest = rest[rest.index(after: close)...]
            }
        }
        return segments.isEmpty ? nil : segments
    }

    static func apply(_ flag: String, to root: inout SpecNode, ctx: DecodeContext) {
        let origin = Origin.flag(flag)
        guard let eq = flag.firstIndex(of: "=") else {
            ctx.fail(origin, "", "expected KEY=VALUE", hint: "e.g. --set trainer.optimizer.lr=3e-4")
            return
        }
        let keyText = String(flag[..<eq]), valueText = String(flag[flag.index(after: eq)...])
        guard let segments = parsePath(keyText) else {
            ctx.fail(origin, keyText, "malformed key '\(keyText)'", hint: "use a dotted path such as trainer.optimizer.lr or trainer.callbacks[0].early_stopping.patience")
            return
        }
        if segments == [.key("extends")] {
            ctx.fail(origin, "extends", "extends cannot be set with --set", hint: "write `extends:` in the pipeline file")
            return
        }
        let (parsed, errors) = YAMLReader(url: ctx.topFile, display: "", flag: flag).read(valueText)
        guard errors.isEmpty else { ctx.errors += errors; return }
        let value = parsed ?? SpecNode(kind: .scalar("", plain: true), origin: origin)
        let defaults = Sections.encode(PipelineSpec())
        if let message = set(&root, segments[...], value: value, origin: origin, defaults: defaults, path: "") {
            ctx.fail(origin, keyText, message.0, hint: message.1)
        }
    }

    /// Places `value` at `segments` under `node`; returns an error message and hint on failure.
    private static func set(_ node: inout SpecNode, _ segments: ArraySlice<Segment>, value: SpecNode, origin: Origin,
                            defaults: Value?, path: String) -> (String, String?)? {
        guard let first = segments.first else {
            node = FileTrees.merge(node, value)
            return nil
        }
        let rest = segments.dropFirst()
        switch first {
        case .key(let k):
            if node.isNull { node = SpecNode(kind: .map([]), origin: origin) }
            guard var entries = node.mapEntries else {
                return ("cannot set a key inside \(named(path)): it is \(node.shown), not a mapping", nil)
            }
            let p = join(path, k)
            if let i = entries.firstIndex(where: { $0.key == k }) {
                var child = entries[i].value
                if let err = set(&child, rest, value: value, origin: origin, defaults: defaults?[k], path: p) { return err }
                entries[i] = SpecEntry(key: k, keyOrigin: rest.isEmpty ? origin : entries[i].keyOrigin, value: child)
            } else {
                var child: SpecNode
                if case .index? = rest.first {
                    guard case .list? = defaults?[k] else {
                        return ("\(p) is not in the file and has no default list to index", "set the whole list, e.g. --set \(p)=[...]")
                    }
                    child = SpecNode(defaults![k]!, origin: origin)
                } else {
                    child = SpecNode(kind: .map([]), origin: origin)
                }
                if let err = set(&child, rest, value: value, origin: origin, defaults: defaults?[k], path: p) { return err }
                entries.append(SpecEntry(key: k, keyOrigin: origin, value: child))
            }
            node = SpecNode(kind: .map(entries), origin: node.origin)
            return nil
        case .index(let n):
            guard case .list(var items) = node.kind else {
                return ("cannot index \(path): it is \(node.shown), not a list", nil)
            }
            let p = "\(path)[\(n)]"
            var itemDefaults: Value? = nil
            if case .list(let d)? = defaults, n < d.count { itemDefaults = d[n] }
            if n < items.count {
                if let err = set(&items[n], rest, value: value, origin: origin, defaults: itemDefaults, path: p) { return err }
            } else if n == items.count {
                var child = SpecNode(kind: .scalar("", plain: true), origin: origin)
                if let err = set(&child, rest, value: value, origin: origin, defaults: nil, path: p) { return err }
                items.append(child)
            } else {
                return ("index \(n) is out of range: \(path) has \(items.count) item\(items.count == 1 ? "" : "s")",
                        "use an index up to \(items.count) (\(items.count) appends)")
            }
            node = SpecNode(kind: .list(items), origin: node.origin)
            return nil
        }
    }
}
