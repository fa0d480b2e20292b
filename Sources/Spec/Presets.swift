import Foundation

// `preset:` — AutoMM's three presets as a layer of values under the pipeline file's own. The
// loader builds the preset's values as a tree whose nodes carry the `preset:` key's location,
// then merges the file over it exactly as `extends` merges a file over its base: every key the
// file (or a base, or `--set`) gives wins, everything else comes from the preset. The resolved
// pipeline therefore records every value the preset set, and an error in one points at the
// `preset:` line.

/// `preset`.
public enum PresetName: String, Codable, CaseIterable, Sendable {
    /// Small backbones, a higher learning rate, few epochs: fast.
    case medium_quality
    /// Base-size backbones and AutoMM's recipe.
    case high_quality
    /// The largest available backbones, longer inputs and training.
    case best_quality
}

/// What a preset chose, in the order it matters to a reader of `runpipe plan`.
public struct PresetReport: Equatable, Sendable {
    /// One value the preset sets.
    public struct Choice: Equatable, Sendable {
        /// Dotted key (`backbones.text.checkpoint`).
        public var key: String
        /// The value as YAML flow text.
        public var value: String
        /// False when the pipeline file gives the key itself (its value wins).
        public var applied: Bool
    }

    /// A checkpoint the preset wanted and did not find in the models folder.
    public struct Missing: Equatable, Sendable {
        /// `text backbone` or `image backbone`.
        public var role: String
        /// The model folder name it looked for.
        public var wanted: String
        /// The command that fetches it.
        public var fetch: String
        /// What it used instead (nil: nothing, so that modality has no preset backbone).
        public var usedInstead: String?
    }

    public var name: PresetName
    /// Where checkpoints were looked for (nil: no models folder was found).
    public var modelsFolder: String?
    public var choices: [Choice]
    public var missing: [Missing]

    /// Lines for `plan` and `train`: what the preset set, what the file kept, what is missing.
    public var lines: [String] {
        var out = ["preset \(name.rawValue)" + (modelsFolder.map { " (checkpoints from \($0))" } ?? " (no models folder found)")]
        for c in choices { out.append("  \(c.key) = \(c.value)" + (c.applied ? "" : "   (the file's own value wins)")) }
        for m in missing {
            out.append("  could not find \(m.role) \(m.wanted)" + (m.usedInstead.map { ", using \($0)" } ?? "")
                       + " — fetch it with `\(m.fetch)`")
        }
        return out
    }
}

/// The three presets: which checkpoints each prefers (in order, as `scripts/fetch-models` names
/// their folders) and the training recipe. The recipe follows AutoMM's `default` preset family
/// (fusion MLP, FT-Transformer on tabular columns, AdamW with weight decay 1e-3, layer-wise
/// learning-rate decay 0.9, cosine schedule with 10 % warmup, validation twice per epoch, top-3
/// greedy soup, gradient clipping at norm 1, effective batch 128), sized for CPUs.
enum Presets {
    struct Candidate {
        var folder: String
        /// The image `architecture` key the folder needs (its files do not name it).
        var architecture: String?
    }

    struct Definition {
        var text: [Candidate]
        var image: [Candidate]
        var lr: Double
        var epochs: Int
        var batchSize: Int
        var accumulate: Int
        var maxLength: Int
    }

    static func definition(_ name: PresetName) -> Definition {
        let minilm = Candidate(folder: "all-MiniLM-L6-v2"), mpnet = Candidate(folder: "all-mpnet-base-v2")
        let mobilenet = Candidate(folder: "mobilenet_v2", architecture: "mobilenet_v2")
        let efficientnet = Candidate(folder: "efficientnet_lite0", architecture: "efficientnet_lite0")
        switch name {
        case .medium_quality:
            return Definition(text: [minilm], image: [mobilenet], lr: 4e-4, epochs: 10, batchSize: 64, accumulate: 2, maxLength: 128)
        case .high_quality:
            return Definition(text: [mpnet, minilm], image: [efficientnet, mobilenet], lr: 1e-4, epochs: 20, batchSize: 32, accumulate: 4,
                              maxLength: 256)
        case .best_quality:
            return Definition(text: [mpnet, minilm], image: [efficientnet, mobilenet], lr: 1e-4, epochs: 30, batchSize: 32, accumulate: 4,
                              maxLength: 512)
        }
    }

    /// The folder checkpoints are looked up in: `$RUNPIPE_MODELS`, else the nearest `models/`
    /// folder in the pipeline file's folder or one of its parents.
    static func modelsFolder(near file: URL, environment: [String: String] = ProcessInfo.processInfo.environment) -> URL? {
        if let env = environment["RUNPIPE_MODELS"], !env.isEmpty { return URL(fileURLWithPath: env, isDirectory: true) }
        var dir = file.standardizedFileURL.deletingLastPathComponent()
        for _ in 0..<32 {
            let candidate = dir.appendingPathComponent("models", isDirectory: true)
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDir), isDir.boolValue { return candidate }
            let parent = dir.deletingLastPathComponent()
            if parent.path == dir.path { break }
            dir = parent
        }
        return nil
    }

    /// `target` written relative to the folder `base` when it lies below a common ancestor
    /// (`../models/x`), else absolute.
    static func relativePath(_ target: URL, from base: URL) -> String {
        let t = target.standardizedFileURL.pathComponents, b = base.standardizedFileURL.pathComponents
        var common = 0
        while common < t.count, common < b.count, t[common] == b[common] { common += 1 }
        guard common > 1 else { return target.standardizedFileURL.path }
        return (Array(repeating: "..", count: b.count - common) + t[common...]).joined(separator: "/")
    }

    /// The preset's values as a tree, and the report of what it chose. `declaringFile` is the
    /// file whose `preset:` key named it (relative checkpoint paths are written from its folder).
    static func layer(_ name: PresetName, declaringFile: URL, environment: [String: String] = ProcessInfo.processInfo.environment)
        -> (Value, PresetReport) {
        let d = definition(name)
        let folder = modelsFolder(near: declaringFile, environment: environment)
        let base = declaringFile.standardizedFileURL.deletingLastPathComponent()
        var missing: [PresetReport.Missing] = []

        func pick(_ candidates: [Candidate], role: String) -> (Candidate, String)? {
            var chosen: (Candidate, String)?
            var wanted: [Candidate] = []
            for c in candidates {
                if let folder {
                    let url = folder.appendingPathComponent(c.folder, isDirectory: true)
                    if FileManager.default.fileExists(atPath: url.path) { chosen = (c, relativePath(url, from: base)); break }
                }
                wanted.append(c)
            }
            for w in wanted {
                missing.append(.init(role: role, wanted: w.folder, fetch: "scripts/fetch-models --only \(w.folder)",
                                     usedInstead: chosen?.0.folder))
            }
            return chosen
        }

        var backbones: [(String, Value)] = [("tabular", .object([("kind", .string("ft_transformer"))]))]
        if let (_, path) = pick(d.text, role: "text backbone") {
            backbones.append(("text", .object([("checkpoint", .string(path)), ("max_length", .int(d.maxLength)),
                                                ("trainable", .string("full"))])))
        }
        if let (c, path) = pick(d.image, role: "image backbone") {
            var image: [(String, Value)] = [("checkpoint", .string(path))]
            if let a = c.architecture { image.append(("architecture", .string(a))) }
            image += [("size", .int(224)), ("trainable", .string("full"))]
            backbones.append(("image", .object(image)))
        }
        let trainer: Value = .object([
            ("optimizer", .object([("kind", .string("adamw")), ("lr", .double(d.lr)), ("weight_decay", .double(1e-3)),
                                   ("lr_choice", .string("layerwise_decay")), ("lr_decay", .double(0.9))])),
            ("schedule", .object([("kind", .string("cosine")), ("warmup", .double(0.1))])),
            ("epochs", .int(d.epochs)),
            ("batch_size", .int(d.batchSize)),
            ("accumulate", .int(d.accumulate)),
            ("grad_clip", .double(1)),
            ("val_check_interval", .double(0.5)),
        ])
        let tree: Value = .object([
            ("backbones", .object(backbones)),
            ("fusion", .object([("kind", .string("mlp"))])),
            ("trainer", trainer),
        ])
        let report = PresetReport(name: name, modelsFolder: folder.map { relativePath($0, from: base) },
                                  choices: [], missing: missing)
        return (tree, report)
    }

    /// Every leaf of `value` as (dotted key, flow text).
    static func leaves(_ value: Value, prefix: String = "") -> [(String, String)] {
        switch value {
        case .map(let entries):
            return entries.flatMap { leaves($0.value, prefix: prefix.isEmpty ? $0.key : prefix + "." + $0.key) }
        default:
            return [(prefix, value.yamlFlow())]
        }
    }
}
