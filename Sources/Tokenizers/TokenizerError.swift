import Foundation

/// Everything that can go wrong while loading a tokenizer. Messages name the file and, for
/// content errors, the JSON path of the offending value (`normalizer.normalizers[2].type`).
///
/// Encoding and decoding never throw: any string, including invalid or unusual Unicode, encodes.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// The file or folder could not be read.
    case unreadable(file: String, reason: String)
    /// The file is not well-formed JSON; `offset` is the byte where parsing stopped.
    case malformedJSON(file: String, line: Int, column: Int, reason: String)
    /// A value in the file is missing, has the wrong type, or is not supported.
    case invalid(file: String, path: String, reason: String)
    /// A folder holds neither `tokenizer.json` nor `vocab.txt`.
    case noTokenizer(folder: String)

    public var description: String {
        switch self {
        case .unreadable(let file, let reason):
            return "\(file): cannot read: \(reason)"
        case .malformedJSON(let file, let line, let column, let reason):
            return "\(file):\(line):\(column): malformed JSON: \(reason)"
        case .invalid(let file, let path, let reason):
            return path.isEmpty ? "\(file): \(reason)" : "\(file): \(path): \(reason)"
        case .noTokenizer(let folder):
            return "\(folder): no tokenizer.json or vocab.txt in this folder"
        }
    }
}

/// An error found while reading a value, before the file name is known; `JSONNode` turns it
/// into `TokenizerError.invalid` with the file name.
struct ConfigError: Error {
    let path: String
    let reason: String
}
