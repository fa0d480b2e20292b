import Cache
import Foundation
import Models
import Spec

/// The text backbone's checkpoint folder as the compiler sees it, before any data is read: the
/// content hashes that key the tokenize and embed stages, and the facts of `config.json` the
/// pipeline needs (depth for `top_layers`, usable positions for `max_length`, the pooling a
/// sentence-transformers folder asks for).
struct TextCheckpoint: Codable, Equatable, Sendable {
    /// The folder, absolute.
    var folder: String
    var modelType: String
    var layers: Int
    var hidden: Int
    /// SHA-256 over config.json and the weight files (names and contents).
    var weightsHash: String
    /// SHA-256 over the tokenizer files (names and contents).
    var tokenizerHash: String
    /// `pooling` with `auto` resolved.
    var pooling: TextPooling
    /// `max_length` capped at what the checkpoint's positions allow.
    var maxLength: Int
    /// Why `maxLength` differs from the file's value, when it does.
    var maxLengthNote: String?

    enum CodingKeys: String, CodingKey {
        case folder
        case modelType = "model_type"
        case layers, hidden
        case weightsHash = "weights_sha256"
        case tokenizerHash = "tokenizer_sha256"
        case pooling
        case maxLength = "max_length"
        case maxLengthNote = "max_length_note"
    }

    var url: URL { URL(fileURLWithPath: folder, isDirectory: true) }

    /// Files that make up the weights (besides config.json) and the tokenizer.
    static let weightExtensions: Set<String> = ["safetensors", "bin", "pth", "pt"]
    static let weightIndexFiles: Set<String> = ["model.safetensors.index.json", "pytorch_model.bin.index.json"]
    static let tokenizerFiles: Set<String> = [
        "tokenizer.json", "vocab.txt", "vocab.json", "merges.txt", "tokenizer_config.json",
        "special_tokens_map.json", "added_tokens.json", "spm.model", "sentencepiece.bpe.model",
    ]

    /// Reads and hashes the checkpoint named by `backbones.text.checkpoint`.
    static func resolve(_ text: TextBackboneSpec, spec: PipelineSpec, hasher: FileHasher) throws -> TextCheckpoint {
        let key = "backbones.text.checkpoint"
        let location = spec.sources[key] ?? spec.sources["backbones.text"]
        let url = spec.resolve(text.checkpoint, declaredAt: key)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw PipelineError("text checkpoint '\(text.checkpoint)' does not exist (looked for \(url.path))", at: location,
                                hint: "scripts/fetch-models fetches all-MiniLM-L6-v2 and all-mpnet-base-v2 into models/; paths are relative to the file that declares them")
        }
        guard isDir.boolValue else {
            throw PipelineError("text checkpoint '\(text.checkpoint)' is a file; a text backbone needs a Hugging Face checkpoint folder (config.json, weights, tokenizer)",
                                at: location, hint: "point `checkpoint` at the folder that holds the file")
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path))?.sorted() ?? []
        guard names.contains("config.json") else {
            throw PipelineError("text checkpoint folder \(url.path) has no config.json (it holds: \(names.prefix(12).joined(separator: ", ")))",
                                at: location, hint: "a text backbone needs a Hugging Face folder with config.json, weights and tokenizer.json or vocab.txt")
        }
        let weightNames = weightFiles(in: names)
        guard !weightNames.isEmpty else {
            throw PipelineError("text checkpoint folder \(url.path) holds no weights (looked for model.safetensors, a sharded index, pytorch_model.bin)",
                                at: location, hint: "fetch the complete checkpoint folder")
        }
        let tokenizerNames = names.filter { tokenizerFiles.contains($0) }
        guard tokenizerNames.contains("tokenizer.json") || tokenizerNames.contains("vocab.txt") else {
            throw PipelineError("text checkpoint folder \(url.path) has no tokenizer.json or vocab.txt", at: location,
                                hint: "runpipe reads Hugging Face fast tokenizers (tokenizer.json) or a BERT vocab.txt; save the tokenizer into the folder")
        }

        func digest(_ files: [String]) throws -> String {
            try located(location) { try Self.digest(files, in: url, hasher: hasher) }
        }
        let weightsHash = try digest(["config.json"] + weightNames)
        var tokenizerExtra: [String] = []
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("1_Pooling/config.json").path) {
            tokenizerExtra.append("1_Pooling/config.json")
        }
        let tokenizerHash = try digest(tokenizerNames + tokenizerExtra)

        let config = try readObject(url.appendingPathComponent("config.json"), location: location)
        guard let modelType = config["model_type"] as? String else {
            throw PipelineError("\(url.path)/config.json has no model_type", at: location,
                                hint: "supported model types: \(TextEncoders.supportedModelTypes.joined(separator: ", "))")
        }
        guard TextEncoders.supportedModelTypes.contains(modelType) else {
            throw PipelineError("\(url.path)/config.json: model_type '\(modelType)' is not supported",
                                at: location, hint: "supported model types: \(TextEncoders.supportedModelTypes.joined(separator: ", "))")
        }
        let layers = intValue(config["num_hidden_layers"]) ?? intValue(config["n_layers"]) ?? 0
        let hidden = intValue(config["hidden_size"]) ?? intValue(config["dim"]) ?? 0
        guard layers > 0, hidden > 0 else {
            throw PipelineError("\(url.path)/config.json gives no layer count or hidden size", at: location,
                                hint: "the checkpoint's config.json looks incomplete")
        }
        if case .topLayers(let n) = text.trainable, n > layers {
            throw PipelineError("backbones.text.trainable.top_layers is \(n), but \(text.checkpoint) has \(layers) layers",
                                at: spec.sources["backbones.text.trainable.top_layers"] ?? location,
                                hint: "use top_layers between 1 and \(layers), or trainable: full")
        }

        // Usable positions: learned absolute positions less RoBERTa-style offsets, and the
        // tokenizer's own limit when it states one.
        var positions = intValue(config["max_position_embeddings"]) ?? 512
        if ["roberta", "xlm-roberta", "mpnet", "camembert"].contains(modelType) {
            positions -= (intValue(config["pad_token_id"]) ?? 1) + 1
        }
        if let tc = try? readObject(url.appendingPathComponent("tokenizer_config.json"), location: location),
           let m = intValue(tc["model_max_length"]), m > 0, m < positions {
            positions = m
        }
        var maxLength = text.maxLength
        var note: String?
        if maxLength > positions {
            note = "max_length \(maxLength) capped at \(positions), the most positions \(text.checkpoint) has"
            maxLength = positions
        }

        return TextCheckpoint(folder: url.standardizedFileURL.path, modelType: modelType, layers: layers, hidden: hidden,
                              weightsHash: weightsHash, tokenizerHash: tokenizerHash,
                              pooling: try resolvePooling(text.pooling, folder: url, location: location),
                              maxLength: maxLength, maxLengthNote: note)
    }

    /// Names of the weight files in a folder listing.
    static func weightFiles(in names: [String]) -> [String] {
        names.filter { weightExtensions.contains(($0 as NSString).pathExtension) || weightIndexFiles.contains($0) }
    }

    /// SHA-256 over the names and content hashes of `files` in `folder`.
    static func digest(_ files: [String], in folder: URL, hasher: FileHasher) throws -> String {
        var parts: [JSONValue] = []
        for name in files {
            parts.append(.array([.string(name), .string(try hasher.hash(of: folder.appendingPathComponent(name)))]))
        }
        return try JSONValue.array(parts).digest()
    }

    /// `auto`: a sentence-transformers `1_Pooling/config.json` decides; otherwise `cls`.
    static func resolvePooling(_ p: TextPoolingSpec, folder: URL, location: SourceLocation?) throws -> TextPooling {
        switch p {
        case .cls: return .cls
        case .mean: return .mean
        case .max: return .max
        case .auto:
            let file = folder.appendingPathComponent("1_Pooling/config.json")
            guard FileManager.default.fileExists(atPath: file.path) else { return .cls }
            let c = try readObject(file, location: location)
            if c["pooling_mode_mean_tokens"] as? Bool == true { return .mean }
            if c["pooling_mode_max_tokens"] as? Bool == true { return .max }
            if c["pooling_mode_cls_token"] as? Bool == true { return .cls }
            if let mode = c["pooling_mode"] as? String, let p = TextPooling(rawValue: mode == "lasttoken" ? "" : mode) { return p }
            return .cls
        }
    }

    private static func readObject(_ url: URL, location: SourceLocation?) throws -> [String: Any] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw PipelineError("cannot read \(url.path): \(error.localizedDescription)", at: location)
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw PipelineError("\(url.path) is not a JSON object", at: location, hint: "the checkpoint folder looks damaged; fetch it again")
        }
        return object
    }

    private static func intValue(_ v: Any?) -> Int? {
        if let i = v as? Int { return i }
        if let d = v as? Double, d == d.rounded(), abs(d) < 1e15 { return Int(d) }
        return nil
    }
}
