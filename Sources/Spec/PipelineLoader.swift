import Foundation

/// Reads pipeline files: YAML with locations, `extends`, `--set` overrides, decoding and every
/// check, reporting all errors at once.
public enum PipelineLoader {
    /// Loads `file`, its `extends` chain, then applies `overrides` (`KEY=VALUE`, in order).
    ///
    /// - Throws: ``SpecErrors`` with every problem found, sorted by file and line.
    public static func load(_ file: URL, overrides: [String] = []) throws -> PipelineSpec {
        let ctx = DecodeContext(topFile: file)
        let tree = FileTrees(ctx: ctx).load(file.standardizedFileURL, display: file.relativePath, chain: [], from: nil)
        return try finish(tree, file: file, overrides: overrides, ctx: ctx)
    }

    /// Loads YAML text as if it were the contents of `file` (which need not exist unless the
    /// text uses `extends`).
    public static func load(yaml: String, file: URL, overrides: [String] = []) throws -> PipelineSpec {
        let ctx = DecodeContext(topFile: file)
        let tree = FileTrees(ctx: ctx).parse(yaml, url: file.standardizedFileURL, display: file.relativePath, chain: [])
        return try finish(tree, file: file, overrides: overrides, ctx: ctx)
    }

    private static func finish(_ tree: SpecNode?, file: URL, overrides: [String], ctx: DecodeContext) throws -> PipelineSpec {
        var root = tree
        if root != nil {
            for flag in overrides { Overrides.apply(flag, to: &root!, ctx: ctx) }
        }
        guard var root else { throw SpecErrors(ctx.errors) }
        let preset = applyPreset(&root, ctx: ctx)
        var spec = Sections.decode(PipelineSpec.self, root, "", ctx)
        guard ctx.errors.isEmpty, spec != nil else { throw SpecErrors(ctx.errors) }
        if ctx.origins["name"] == nil { spec?.name = defaultName(for: file) }
        spec?.file = file
        spec?.sources = ctx.sourceMap
        spec?.presetReport = preset
        guard let spec else { throw SpecErrors(ctx.errors) }
        return spec
    }

    /// Puts the values of the preset that `root`'s `preset:` key names under `root` (the file's
    /// own keys win) and says what it chose. A value that is not a preset name is left for the
    /// decoder to report.
    private static func applyPreset(_ root: inout SpecNode, ctx: DecodeContext) -> PresetReport? {
        guard let entry = root.mapEntries?.first(where: { $0.key == "preset" }),
              case .scalar(let text, _) = entry.value.kind, let name = PresetName(rawValue: text),
              let declaringFile = entry.value.origin.fileURL ?? Optional(ctx.topFile) else { return nil }
        let (values, partial) = Presets.layer(name, declaringFile: declaringFile)
        let layer = SpecNode(values, origin: entry.value.origin)
        let own = root
        root = FileTrees.merge(layer, own)
        var report = partial
        report.choices = Presets.leaves(values).map { key, value in
            PresetReport.Choice(key: key, value: value, applied: !own.has(path: key))
        }
        return report
    }

    /// The file's stem with characters outside `[A-Za-z0-9._-]` replaced by `_`, at most 64.
    static func defaultName(for file: URL) -> String {
        let stem = file.deletingPathExtension().lastPathComponent
        let allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        var out = String.UnicodeScalarView()
        for u in stem.unicodeScalars { out.append(allowed.contains(u) ? u : "_") }
        let name = String(String(out).prefix(64))
        return name.isEmpty ? "pipeline" : name
    }
}

/// Reads a file and its `extends` chain into one merged tree.
struct FileTrees {
    let ctx: DecodeContext

    func load(_ url: URL, display: String, chain: [(URL, String)], from extendsNode: SpecNode?) -> SpecNode? {
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            let reason = FileManager.default.fileExists(atPath: url.path) ? "it is not readable UTF-8 text" : "no such file"
            if let n = extendsNode {
                ctx.fail(n.origin, "extends", "cannot read '\(display)' (extended here): \(reason)", hint: "extends is relative to the file that declares it")
            } else {
                ctx.errors.append(SpecError(location: nil, path: "", message: "cannot read pipeline file '\(display)': \(reason)"))
            }
            return nil
        }
        return parse(text, url: url, display: display, chain: chain)
    }

    func parse(_ text: String, url: URL, display: String, chain: [(URL, String)]) -> SpecNode? {
        let (node, errors) = YAMLReader(url: url, display: display, flag: nil).read(text)
        ctx.errors += errors
        guard errors.isEmpty else { return nil }
        let start = Origin.file(SourceLocation(file: display, line: 1, column: 1), url)
        guard let node, !node.isNull else {
            ctx.fail(start, "", "'\(display)' is empty", hint: "start with `version: 1` and a `data:` section")
            return nil
        }
        guard var entries = node.mapEntries else {
            ctx.fail(node.origin, "", "a pipeline file must be a mapping of keys, found \(node.shown)")
            return nil
        }
        guard let i = entries.firstIndex(where: { $0.key == "extends" }) else { return node }
        let ext = entries.remove(at: i)
        let own = SpecNode(kind: .map(entries), origin: node.origin)
        guard case .scalar(let rel, _) = ext.value.kind, !ext.value.isNull, !rel.isEmpty else {
            ctx.fail(ext.value.origin, "extends", "extends expects a path to a base pipeline file, found \(ext.value.shown)")
            return nil
        }
        let baseURL = PipelineSpec.resolve(rel, origin: ext.value.origin, topFile: url)
        let baseDisplay = rel.hasPrefix("/") ? rel : Self.joinDisplay(display, rel)
        let here = chain + [(url, display)]
        if here.contains(where: { $0.0 == baseURL }) {
            let names = here.map(\.1) + [baseDisplay]
            ctx.fail(ext.value.origin, "extends", "extends cycle: \(names.joined(separator: " → "))", hint: "remove one of these extends")
            return nil
        }
        guard let base = load(baseURL, display: baseDisplay, chain: here, from: ext.value) else { return nil }
        return Self.merge(base, own)
    }

    /// `rel` next to the file shown as `display` (`pipelines/a.yaml` + `base.yaml` → `pipelines/base.yaml`).
    static func joinDisplay(_ display: String, _ rel: String) -> String {
        let dir = (display as NSString).deletingLastPathComponent
        var parts = dir.isEmpty ? [] : dir.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        for comp in rel.split(separator: "/").map(String.init) {
            if comp == "." { continue }
            if comp == "..", let last = parts.last, last != "..", last != "" { parts.removeLast(); continue }
            parts.append(comp)
        }
        return parts.joined(separator: "/")
    }

    /// `over` on top of `base`: mappings merge key by key (deeply), everything else replaces. A
    /// mapping whose `kind` differs from the base's replaces it whole (its keys belong to the
    /// other kind).
    static func merge(_ base: SpecNode, _ over: SpecNode) -> SpecNode {
        guard var baseEntries = base.mapEntries, let overEntries = over.mapEntries else { return over }
        func kind(_ e: [SpecEntry]) -> String? {
            if case .scalar(let s, _)? = e.first(where: { $0.key == "kind" })?.value.kind { return s }
            return nil
        }
        if let a = kind(baseEntries), let b = kind(overEntries), a != b { return over }
        for e in overEntries {
            if let i = baseEntries.firstIndex(where: { $0.key == e.key }) {
                baseEntries[i] = SpecEntry(key: e.key, keyOrigin: e.keyOrigin, value: merge(baseEntries[i].value, e.value))
            } else {
                baseEntries.append(e)
            }
        }
        return SpecNode(kind: .map(baseEntries), origin: over.origin)
    }
}
