import Foundation
import TensorEngine

/// How a checkpoint's weights are stored on disk.
public enum WeightFormat: String, Sendable, CaseIterable {
    /// One `*.safetensors` file.
    case safetensors
    /// Several safetensors shards listed by `model.safetensors.index.json`.
    case safetensorsSharded
    /// One PyTorch zip checkpoint (`torch.save` since 1.6).
    case pytorchZip
    /// Several PyTorch shards listed by `pytorch_model.bin.index.json` (each shard may be zip or
    /// legacy; they are told apart by their bytes).
    case pytorchZipSharded
    /// One legacy (pre-zip) PyTorch pickle, e.g. older torchvision `.pth` weights.
    case pytorchLegacy
}

/// A checkpoint on disk: a Hugging Face style folder, a folder holding exactly one weights file,
/// or a weights file (or shard index) itself.
///
///     let checkpoint = try CheckpointFolder(URL(fileURLWithPath: "models/all-MiniLM-L6-v2"))
///     let config = try checkpoint.configData()        // config.json, when present
///     let weights = try checkpoint.loadTensors()      // [String: Tensor], Float32
///
/// In a folder the weights are chosen in this order, the first present winning:
/// `model.safetensors`, `model.safetensors.index.json` (shards), `pytorch_model.bin`,
/// `pytorch_model.bin.index.json` (shards), then the folder's only `*.safetensors`, `*.bin`,
/// `*.pth` or `*.pt` file. Several such files and no index is an error (`ambiguousWeights`), as
/// is a folder with none (`noWeights`, listing the names it looked for).
///
/// Whether a `.bin`/`.pth`/`.pt` file is a zip or a legacy PyTorch checkpoint is judged from its
/// first bytes, never its name. A shard index must name shards that exist inside the folder;
/// loading then checks that every listed tensor is in the shard the index names and that no
/// shard holds a tensor the index does not assign to it.
public struct CheckpointFolder: Sendable {
    /// The folder holding the checkpoint (for a file argument: the file's folder).
    public let root: URL
    /// `config.json` in `root`, when present.
    public let configURL: URL?
    /// The weights files, in load order (shards sorted by name).
    public let weightFiles: [URL]
    public let format: WeightFormat
    /// The shard index (`*.index.json`) of a sharded checkpoint.
    public let indexURL: URL?
    /// Sharded checkpoints: each tensor key and the shard file name the index assigns it to.
    public let shardMap: [String: String]

    /// The names a folder is searched for, in order of preference.
    public static let preferredNames = [
        "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json",
    ]
    /// Extensions of a folder's single weights file when none of `preferredNames` is present.
    public static let weightExtensions = ["safetensors", "bin", "pth", "pt"]

    /// Resolves `url` (a folder, a weights file, or a `*.index.json`) without reading tensors.
    /// Shard indexes are read and checked here (every shard they name must exist).
    public init(_ url: URL) throws {
        let url = url.standardizedFileURL
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw CheckpointError.fileNotFound(path: url.path)
        }
        let root = isDirectory.boolValue ? url : url.deletingLastPathComponent()
        self.root = root
        let config = root.appendingPathComponent("config.json")
        configURL = Self.isFile(config) ? config : nil

        let weights: URL
        if isDirectory.boolValue {
            if let preferred = Self.preferredNames.map({ root.appendingPathComponent($0) }).first(where: Self.isFile) {
                weights = preferred
            } else {
                let candidates = try Self.candidates(in: root)
                guard let only = candidates.first else {
                    throw CheckpointError.noWeights(
                        path: root.path,
                        lookedFor: Self.preferredNames + Self.weightExtensions.map { "*." + $0 },
                        hasConfig: configURL != nil)
                }
                if candidates.count > 1 {
                    throw CheckpointError.ambiguousWeights(path: root.path, candidates: candidates.map(\.lastPathComponent))
                }
                weights = only
            }
        } else {
            weights = url
        }

        if weights.lastPathComponent.hasSuffix(".index.json") {
            let index = try ShardIndex(url: weights)
            indexURL = weights
            shardMap = index.map
            weightFiles = index.files.map { root.appendingPathComponent($0) }
            format = weights.lastPathComponent.hasSuffix(".safetensors.index.json") ? .safetensorsSharded : .pytorchZipSharded
        } else {
            indexURL = nil
            shardMap = [:]
            weightFiles = [weights]
            format = try Self.sniff(weights)
        }
    }

    /// Every tensor of the checkpoint as a contiguous Float32 tensor, by key. Elements stored as
    /// F16, BF16, F64, integers or bools are converted.
    public func loadTensors() throws -> [String: Tensor] {
        switch format {
        case .safetensors:
            guard let file = weightFiles.first else { return [:] }
            return try SafetensorsFile(url: file).tensors()
        case .pytorchZip, .pytorchLegacy:
            guard let file = weightFiles.first else { return [:] }
            return try PyTorchCheckpoint(url: file).tensors
        case .safetensorsSharded, .pytorchZipSharded:
            return try loadShards()
        }
    }

    /// The raw bytes of `config.json`, or nil when the checkpoint has none.
    public func configData() throws -> Data? {
        guard let configURL else { return nil }
        do {
            return try Data(contentsOf: configURL)
        } catch {
            throw CheckpointError.unreadable(path: configURL.path, reason: error.localizedDescription)
        }
    }

    // MARK: - Shards

    private func loadShards() throws -> [String: Tensor] {
        let indexPath = indexURL?.path ?? root.path
        var all: [String: Tensor] = [:]
        all.reserveCapacity(shardMap.count)
        // Shard names as the index spells them, in the same sorted order as `weightFiles`.
        for shardName in Set(shardMap.values).sorted(by: utf8Less) {
            let file = root.appendingPathComponent(shardName)
            func check(_ key: String) throws {
                guard let assigned = shardMap[key] else {
                    throw CheckpointError.shardMismatch(
                        path: file.path, tensor: key, detail: "the shard holds it but the index \(indexPath) does not list it")
                }
                if assigned != shardName {
                    throw CheckpointError.shardMismatch(
                        path: file.path, tensor: key, detail: "the index \(indexPath) assigns it to '\(assigned)', not this shard")
                }
            }
            let tensors: [String: Tensor]
            if try Self.sniff(file) == .safetensors {
                let shard = try SafetensorsFile(url: file)
                for key in shard.tensorNames { try check(key) }  // before reading any data
                tensors = try shard.tensors()
            } else {
                let shard = try PyTorchCheckpoint(url: file)
                for key in shard.keys { try check(key) }
                tensors = shard.tensors
            }
            for (key, tensor) in tensors { all[key] = tensor }
        }
        for key in shardMap.keys.sorted(by: utf8Less) where all[key] == nil {
            let shard = shardMap[key] ?? ""
            throw CheckpointError.shardMismatch(
                path: root.appendingPathComponent(shard).path, tensor: key,
                detail: "the index \(indexPath) lists it in this shard but the shard does not hold it")
        }
        return all
    }

    // MARK: - Files

    private static func isFile(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && !isDirectory.boolValue
    }

    /// Visible files in `folder` with a weights extension, sorted by name.
    private static func candidates(in folder: URL) throws -> [URL] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        } catch {
            throw CheckpointError.unreadable(path: folder.path, reason: error.localizedDescription)
        }
        return names
            .filter { !$0.hasPrefix(".") && weightExtensions.contains(($0 as NSString).pathExtension.lowercased()) }
            .sorted(by: utf8Less)
            .map { folder.appendingPathComponent($0) }
            .filter(isFile)
    }

    /// The format of one weights file: `.safetensors` by name or by content (an 8-byte length
    /// followed by `{`), otherwise whatever PyTorch layout its first bytes show.
    static func sniff(_ url: URL) throws -> WeightFormat {
        if url.pathExtension.lowercased() == "safetensors" { return .safetensors }
        let region = try ByteRegion(mapping: url.path)
        let head = region.prefix(9)
        if head.count == 9, head[8] == UInt8(ascii: "{"), head.first != 0x80, !head.starts(with: [0x50, 0x4B]) {
            return .safetensors
        }
        switch try PyTorchCheckpoint.detect(region, path: url.path) {
        case .zip: return .pytorchZip
        case .legacy: return .pytorchLegacy
        }
    }
}

/// A Hugging Face shard index: `{"metadata": {...}, "weight_map": {"tensor.key": "shard-file", ...}}`.
struct ShardIndex {
    /// Tensor key → shard file name (relative to the index's folder).
    let map: [String: String]
    /// The distinct shard names, sorted.
    let files: [String]

    init(url: URL) throws {
        let path = url.path
        let region = try ByteRegion(mapping: path)
        let json: JSONValue
        do {
            json = try JSONValue.parse(UnsafeRawBufferPointer(start: region.base, count: region.count))
        } catch let error as JSONValue.ParseError {
            throw CheckpointError.invalidShardIndex(path: path, detail: "not valid JSON: \(error.message)")
        }
        guard case .object(let top) = json else {
            throw CheckpointError.invalidShardIndex(path: path, detail: "the file holds \(json.kindName), not an object")
        }
        guard let weightMap = top["weight_map"] else {
            throw CheckpointError.invalidShardIndex(path: path, detail: "no \"weight_map\" object")
        }
        guard case .object(let entries) = weightMap else {
            throw CheckpointError.invalidShardIndex(path: path, detail: "\"weight_map\" is \(weightMap.kindName), not an object")
        }
        if entries.isEmpty { throw CheckpointError.invalidShardIndex(path: path, detail: "\"weight_map\" lists no tensors") }
        var map: [String: String] = [:]
        var firstKey: [String: String] = [:]
        for key in entries.keys.sorted(by: utf8Less) {
            guard case .string(let file)? = entries[key] else {
                throw CheckpointError.invalidShardIndex(
                    path: path, detail: "tensor '\(key)' maps to \(entries[key]?.kindName ?? "nothing"), not a file name")
            }
            let parts = file.split(separator: "/", omittingEmptySubsequences: false)
            if file.isEmpty || file.hasPrefix("/") || parts.contains("..") || parts.contains("") {
                throw CheckpointError.invalidShardIndex(
                    path: path, detail: "tensor '\(key)' maps to '\(file)', which is not a file name inside the folder")
            }
            map[key] = file
            if firstKey[file] == nil { firstKey[file] = key }
        }
        let folder = url.deletingLastPathComponent()
        let files = firstKey.keys.sorted(by: utf8Less)
        for file in files {
            var isDirectory: ObjCBool = false
            let shard = folder.appendingPathComponent(file)
            if !FileManager.default.fileExists(atPath: shard.path, isDirectory: &isDirectory) || isDirectory.boolValue {
                throw CheckpointError.missingShard(index: path, shard: file, tensor: firstKey[file] ?? "")
            }
        }
        self.map = map
        self.files = files
    }
}
