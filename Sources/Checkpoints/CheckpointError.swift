import Foundation

/// Every failure reading or writing a checkpoint file. Each message starts with the file path,
/// names the tensor when one is involved, and says what was wrong, e.g.
///
///     model.safetensors: tensor 'encoder.layer.0.attention.self.query.weight': data_offsets
///     [0, 400] hold 400 bytes but shape [10, 20] of F32 needs 800
public enum CheckpointError: Error, CustomStringConvertible, Equatable, Sendable {
    /// No file (or no directory) at the path.
    case fileNotFound(path: String)
    /// The file exists but cannot be opened, mapped or is not a regular file.
    case unreadable(path: String, reason: String)
    /// The file ends before the data its header describes (or before the header itself).
    case truncated(path: String, detail: String)
    /// The header length prefix is larger than the limit the reader accepts.
    case headerTooLarge(path: String, length: UInt64, limit: UInt64)
    /// The header is not valid UTF-8 JSON, or not shaped like a safetensors header.
    case invalidHeader(path: String, detail: String)
    /// A tensor entry is malformed (missing or mistyped field); `tensor` is its key.
    case invalidEntry(path: String, tensor: String, detail: String)
    /// A tensor's dtype string is not one the reader knows.
    case unknownDType(path: String, tensor: String, dtype: String)
    /// A tensor's data_offsets are reversed or reach past the end of the data region.
    case offsetsOutOfBounds(path: String, tensor: String, begin: UInt64, end: UInt64, dataSize: Int)
    /// A tensor's byte range does not match its shape and dtype.
    case sizeMismatch(path: String, tensor: String, begin: UInt64, end: UInt64,
                      shape: [Int], dtype: String, expectedBytes: String)
    /// Two tensors' byte ranges overlap.
    case overlapping(path: String, tensor: String, other: String,
                     range: [UInt64], otherRange: [UInt64])
    /// The tensors leave bytes of the data region uncovered (a gap or trailing bytes).
    case incompleteData(path: String, detail: String)
    /// `tensor(named:)` asked for a name the file does not hold.
    case missingTensor(path: String, tensor: String, suggestion: String?, available: [String], total: Int)
    /// A value cannot be written as asked (bad name, unsupported dtype, …).
    case invalidWrite(path: String, tensor: String?, detail: String)
    /// Creating, writing or renaming the output file failed.
    case writeFailed(path: String, reason: String)

    // MARK: PyTorch pickles

    /// The file is none of the formats the reader knows (judged by its first bytes).
    case unrecognizedFormat(path: String, detail: String)
    /// A pickle names a global outside the allow-list (tensor rebuilding, storages, plain
    /// containers). Nothing was executed: globals are only ever names to the reader.
    /// `offset` is the byte offset of the opcode within the pickle.
    case forbiddenGlobal(path: String, global: String, offset: Int)
    /// A pickle uses an opcode the reader does not implement (named, with its byte offset).
    case unsupportedOpcode(path: String, opcode: String, offset: Int)
    /// A pickle is malformed or does something a checkpoint never does (calls a storage class,
    /// nests too deeply, a tensor whose arguments have the wrong types, …).
    case invalidPickle(path: String, offset: Int, detail: String)
    /// A tensor's storage class (e.g. `torch.ComplexFloatStorage`) has no Float32 conversion.
    case unknownStorageType(path: String, tensor: String, type: String)
    /// A tensor view reaches past the end of its storage, or a storage holds fewer bytes than it
    /// declares.
    case storageTooShort(path: String, tensor: String, detail: String)
    /// A PyTorch zip archive lacks a record, or a record is damaged.
    case invalidArchive(path: String, detail: String)
    /// Two tensors end up with the same key (across shards, or when flattening nested dicts).
    case duplicateTensor(path: String, tensor: String, detail: String)

    // MARK: Checkpoint folders

    /// A folder holds no weights file the reader recognises. `lookedFor` lists the names tried.
    case noWeights(path: String, lookedFor: [String], hasConfig: Bool)
    /// A folder holds several candidate weight files and no index saying how they fit together.
    case ambiguousWeights(path: String, candidates: [String])
    /// A `*.index.json` shard index is malformed.
    case invalidShardIndex(path: String, detail: String)
    /// A shard index maps `tensor` to `shard`, which does not exist.
    case missingShard(index: String, shard: String, tensor: String)
    /// A shard disagrees with the index: a listed tensor is absent, or the shard holds a tensor
    /// the index does not assign to it.
    case shardMismatch(path: String, tensor: String, detail: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "\(path): no such file"
        case .unreadable(let path, let reason):
            return "\(path): cannot read file: \(reason)"
        case .truncated(let path, let detail):
            return "\(path): truncated file: \(detail)"
        case .headerTooLarge(let path, let length, let limit):
            return "\(path): header length \(length) bytes exceeds the \(limit)-byte limit "
                + "(corrupt length prefix or not a safetensors file)"
        case .invalidHeader(let path, let detail):
            return "\(path): invalid safetensors header: \(detail)"
        case .invalidEntry(let path, let tensor, let detail):
            return "\(path): tensor '\(tensor)': \(detail)"
        case .unknownDType(let path, let tensor, let dtype):
            let known = SafetensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
            return "\(path): tensor '\(tensor)': unknown dtype '\(dtype)' (supported: \(known))"
        case .offsetsOutOfBounds(let path, let tensor, let begin, let end, let dataSize):
            if begin > end {
                return "\(path): tensor '\(tensor)': data_offsets [\(begin), \(end)] are reversed (begin > end)"
            }
            return "\(path): tensor '\(tensor)': data_offsets [\(begin), \(end)] reach past the end of "
                + "the data region (\(dataSize) bytes)"
        case .sizeMismatch(let path, let tensor, let begin, let end, let shape, let dtype, let expected):
            return "\(path): tensor '\(tensor)': data_offsets [\(begin), \(end)] hold \(end &- begin) bytes "
                + "but shape \(Self.shapeText(shape)) of \(dtype) needs \(expected)"
        case .overlapping(let path, let tensor, let other, let range, let otherRange):
            return "\(path): tensor '\(tensor)': data_offsets \(Self.shapeText(range)) overlap tensor "
                + "'\(other)' at \(Self.shapeText(otherRange))"
        case .incompleteData(let path, let detail):
            return "\(path): tensor data does not cover the data region: \(detail)"
        case .missingTensor(let path, let tensor, let suggestion, let available, let total):
            var text = "\(path): no tensor named '\(tensor)'"
            if let s = suggestion { text += "; did you mean '\(s)'?" }
            if total == 0 {
                text += " (the file holds no tensors)"
            } else {
                let shown = available.map { "'\($0)'" }.joined(separator: ", ")
                text += " (file holds \(total) tensor\(total == 1 ? "" : "s"): \(shown)"
                    + (total > available.count ? ", …)" : ")")
            }
            return text
        case .invalidWrite(let path, let tensor, let detail):
            if let t = tensor { return "\(path): cannot write tensor '\(t)': \(detail)" }
            return "\(path): cannot write: \(detail)"
        case .writeFailed(let path, let reason):
            return "\(path): write failed: \(reason)"
        case .unrecognizedFormat(let path, let detail):
            return "\(path): not a checkpoint runpipe can read: \(detail)"
        case .forbiddenGlobal(let path, let global, let offset):
            return "\(path): refused: the pickle references '\(global)' (byte \(offset)); only tensor "
                + "rebuilding, storages and plain containers are allowed. Nothing in the file was run; "
                + "a checkpoint that names other globals may be trying to execute code"
        case .unsupportedOpcode(let path, let opcode, let offset):
            return "\(path): unsupported pickle opcode \(opcode) at byte \(offset)"
        case .invalidPickle(let path, let offset, let detail):
            return "\(path): invalid pickle at byte \(offset): \(detail)"
        case .unknownStorageType(let path, let tensor, let type):
            let known = TorchStorageType.supportedNames.joined(separator: ", ")
            return "\(path): tensor '\(tensor)': storage type '\(type)' cannot be read as Float32 "
                + "(supported: \(known))"
        case .storageTooShort(let path, let tensor, let detail):
            return "\(path): tensor '\(tensor)': \(detail)"
        case .invalidArchive(let path, let detail):
            return "\(path): damaged PyTorch zip checkpoint: \(detail)"
        case .duplicateTensor(let path, let tensor, let detail):
            return "\(path): tensor '\(tensor)' appears twice: \(detail)"
        case .noWeights(let path, let lookedFor, let hasConfig):
            return "\(path): no weights found (looked for \(lookedFor.joined(separator: ", ")))"
                + (hasConfig ? "; the folder has a config.json but no weights file"
                             : "; the folder has no config.json either — is this a checkpoint folder?")
        case .ambiguousWeights(let path, let candidates):
            return "\(path): several weight files and no index to combine them: "
                + candidates.joined(separator: ", ") + "; pass the file to use instead of the folder"
        case .invalidShardIndex(let path, let detail):
            return "\(path): invalid shard index: \(detail)"
        case .missingShard(let index, let shard, let tensor):
            return "\(index): shard '\(shard)' (holding tensor '\(tensor)') does not exist"
        case .shardMismatch(let path, let tensor, let detail):
            return "\(path): tensor '\(tensor)': \(detail)"
        }
    }

    static func shapeText<T: BinaryInteger>(_ values: [T]) -> String {
        "[" + values.map { String($0) }.joined(separator: ", ") + "]"
    }
}

extension CheckpointError: LocalizedError {
    public var errorDescription: String? { description }
}
