// Every failure a text encoder reports: unsupported or malformed configurations, checkpoints
// whose tensors do not fit the model, and batches the model cannot read.
import TensorEngine

/// A typed error from building, loading or running a text encoder. Messages name the
/// `model_type`, the configuration key or the dotted checkpoint key involved, and say what
/// would be accepted.
public enum TextEncoderError: Error, CustomStringConvertible, Equatable {
    /// `config.json` names a `model_type` no encoder family handles (or none at all).
    case unsupportedModelType(String?, supported: [String])
    /// A configuration key is missing, of the wrong type, or out of range.
    case invalidConfiguration(modelType: String, key: String, reason: String)
    /// A configuration option the encoder does not implement (e.g. DeBERTa-v2's convolution).
    case unsupportedOption(modelType: String, option: String, value: String)
    /// The checkpoint folder has no `config.json`.
    case missingConfiguration(folder: String)
    /// Model parameters the checkpoint does not provide (dotted model keys).
    case missingWeights(keys: [String])
    /// Checkpoint tensors that match no parameter and are not known to be safe to ignore.
    case unexpectedWeights(keys: [String])
    /// A checkpoint tensor whose shape differs from its parameter's.
    case shapeMismatch(key: String, model: [Int], checkpoint: [Int])
    /// A token batch the encoder cannot read (inconsistent sizes, ids out of range, too long).
    case invalidBatch(String)
    /// A hidden-state tensor or layer range that does not fit the encoder.
    case invalidInput(String)

    public var description: String {
        switch self {
        case .unsupportedModelType(let type, let supported):
            let what = type.map { "model_type '\($0)' is not supported" } ?? "config.json has no model_type"
            return "\(what); supported: \(supported.joined(separator: ", "))"
        case .invalidConfiguration(let type, let key, let reason):
            return "\(type) config.json: '\(key)' \(reason)"
        case .unsupportedOption(let type, let option, let value):
            return "\(type) config.json: \(option) = \(value) is not supported by runpipe's \(type) encoder"
        case .missingConfiguration(let folder):
            return "checkpoint folder '\(folder)' has no config.json"
        case .missingWeights(let keys):
            return WeightMismatch.missing(keys)
        case .unexpectedWeights(let keys):
            return WeightMismatch.unexpected(keys)
        case .shapeMismatch(let key, let model, let checkpoint):
            return WeightMismatch.shape(key: key, model: model, checkpoint: checkpoint)
        case .invalidBatch(let detail):
            return "token batch: \(detail)"
        case .invalidInput(let detail):
            return "text encoder input: \(detail)"
        }
    }
}
