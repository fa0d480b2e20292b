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
        }
    }

    static func shapeText<T: BinaryInteger>(_ values: [T]) -> String {
        "[" + values.map { String($0) }.joined(separator: ", ") + "]"
    }
}

extension CheckpointError: LocalizedError {
    public var errorDescription: String? { description }
}
