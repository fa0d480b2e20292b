// Pieces every text encoder family shares: decoding config.json into a typed configuration
// with errors that name the key, the activation names Hugging Face configs use, batch checks,
// attention masks and position ids.
import Foundation
import Layers
import TensorEngine

// MARK: - Configuration decoding

enum TextConfigDecoding {
    /// Decodes `data` (a config.json) into `C`, turning decoding failures into
    /// `TextEncoderError.invalidConfiguration` naming the dotted key.
    static func decode<C: Decodable>(_ type: C.Type, from data: Data, modelType: String) throws -> C {
        do {
            return try JSONDecoder().decode(C.self, from: data)
        } catch let error as TextEncoderError {
            throw error
        } catch let DecodingError.keyNotFound(key, context) {
            throw TextEncoderError.invalidConfiguration(modelType: modelType, key: path(context.codingPath + [key]),
                                                        reason: "is required but missing")
        } catch let DecodingError.typeMismatch(expected, context) {
            throw TextEncoderError.invalidConfiguration(modelType: modelType, key: path(context.codingPath),
                                                        reason: "must be \(describe(expected))")
        } catch let DecodingError.valueNotFound(expected, context) {
            throw TextEncoderError.invalidConfiguration(modelType: modelType, key: path(context.codingPath),
                                                        reason: "must be \(describe(expected)), not null")
        } catch let DecodingError.dataCorrupted(context) {
            throw TextEncoderError.invalidConfiguration(modelType: modelType, key: path(context.codingPath).isEmpty ? "(file)" : path(context.codingPath),
                                                        reason: "is not valid: \(context.debugDescription)")
        } catch {
            throw TextEncoderError.invalidConfiguration(modelType: modelType, key: "(file)", reason: "could not be read: \(error)")
        }
    }

    static func path(_ keys: [CodingKey]) -> String { keys.map(\.stringValue).joined(separator: ".") }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: return "an integer"
        case is Float.Type, is Double.Type: return "a number"
        case is Bool.Type: return "true or false"
        case is String.Type: return "a string"
        default: return "\(type)"
        }
    }
}

extension KeyedDecodingContainer {
    /// The value for `key`, or `fallback` when the key is absent or null.
    func value<T: Decodable>(_ key: Key, default fallback: T) throws -> T {
        try decodeIfPresent(T.self, forKey: key) ?? fallback
    }
}

/// Checks shared by every family's configuration.
struct ConfigCheck {
    let modelType: String

    func positive(_ value: Int, _ key: String) throws {
        guard value > 0 else {
            throw TextEncoderError.invalidConfiguration(modelType: modelType, key: key, reason: "must be positive, got \(value)")
        }
    }

    func nonNegative(_ value: Int, _ key: String) throws {
        guard value >= 0 else {
            throw TextEncoderError.invalidConfiguration(modelType: modelType, key: key, reason: "must not be negative, got \(value)")
        }
    }

    func probability(_ value: Float, _ key: String) throws {
        guard value >= 0, value < 1 else {
            throw TextEncoderError.invalidConfiguration(modelType: modelType, key: key, reason: "must be in [0, 1), got \(value)")
        }
    }

    func divisible(_ hidden: Int, _ hiddenKey: String, by heads: Int, _ headsKey: String) throws {
        try positive(heads, headsKey)
        guard hidden % heads == 0 else {
            throw TextEncoderError.invalidConfiguration(modelType: modelType, key: hiddenKey,
                                                        reason: "(\(hidden)) must be a multiple of \(headsKey) (\(heads))")
        }
    }

    func epsilon(_ value: Float, _ key: String) throws {
        guard value > 0, value.isFinite else {
            throw TextEncoderError.invalidConfiguration(modelType: modelType, key: key, reason: "must be a positive number, got \(value)")
        }
    }

    /// The engine's activation for a Hugging Face `hidden_act` name.
    func activation(_ name: String, _ key: String) throws -> Activation {
        switch name {
        case "gelu", "gelu_python": return .gelu
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": return .gelu_tanh
        case "relu": return .relu
        case "silu", "swish": return .silu
        case "tanh": return .tanh
        default:
            throw TextEncoderError.unsupportedOption(
                modelType: modelType, option: key,
                value: "'\(name)' (supported: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu, silu, swish, tanh)")
        }
    }
}

// MARK: - Batches

extension TokenBatch {
    /// Throws unless the arrays match `batch × tokens` and every id lies in its table.
    /// `typeVocabulary` nil means the model has no segment embeddings (type ids are not read).
    func validate(vocabulary: Int, typeVocabulary: Int?) throws {
        guard batch >= 0, tokens >= 0 else {
            throw TextEncoderError.invalidBatch("batch \(batch) × tokens \(tokens) must not be negative")
        }
        let n = batch * tokens
        guard ids.count == n, typeIds.count == n, attentionMask.count == n else {
            throw TextEncoderError.invalidBatch(
                "\(batch) × \(tokens) needs \(n) values, got \(ids.count) ids, \(typeIds.count) type ids, \(attentionMask.count) mask values")
        }
        if let bad = ids.firstIndex(where: { $0 < 0 || Int($0) >= vocabulary }) {
            throw TextEncoderError.invalidBatch("token id \(ids[bad]) at row \(bad / max(tokens, 1)), position \(bad % max(tokens, 1)) is outside the vocabulary 0..<\(vocabulary)")
        }
        if let typeVocabulary, let bad = typeIds.firstIndex(where: { $0 < 0 || Int($0) >= typeVocabulary }) {
            throw TextEncoderError.invalidBatch("token type id \(typeIds[bad]) at row \(bad / max(tokens, 1)), position \(bad % max(tokens, 1)) is outside 0..<\(typeVocabulary)")
        }
        if let bad = attentionMask.firstIndex(where: { $0 != 0 && $0 != 1 }) {
            throw TextEncoderError.invalidBatch("attention mask value \(attentionMask[bad]) at flat position \(bad) is neither 0 nor 1")
        }
    }

    /// Position ids 0, 1, 2, … for every row (BERT, ELECTRA, DistilBERT, DeBERTa).
    func sequentialPositions(maxPositions: Int) throws -> [Int] {
        guard tokens <= maxPositions else {
            throw TextEncoderError.invalidBatch("\(tokens) tokens exceed the model's \(maxPositions) positions (max_position_embeddings)")
        }
        var out = [Int](repeating: 0, count: batch * tokens)
        for b in 0..<batch { for t in 0..<tokens { out[b * tokens + t] = t } }
        return out
    }

    /// fairseq's position ids (RoBERTa, XLM-R, MPNet): real tokens count up from `padding + 1`,
    /// padding tokens (id == `padding`) get `padding`. Decided by the ids, not the mask, as
    /// `transformers` does.
    func paddingOffsetPositions(padding: Int, maxPositions: Int) throws -> [Int] {
        var out = [Int](repeating: padding, count: batch * tokens)
        for b in 0..<batch {
            var count = 0
            for t in 0..<tokens where Int(ids[b * tokens + t]) != padding {
                count += 1
                out[b * tokens + t] = count + padding
            }
        }
        if let worst = out.max(), worst >= maxPositions {
            throw TextEncoderError.invalidBatch(
                "position id \(worst) (\(tokens) tokens after padding index \(padding)) exceeds the model's \(maxPositions) positions (max_position_embeddings)")
        }
        return out
    }

    /// The additive key mask [batch, tokens] (0 keep, float32 minimum drop) Hugging Face adds to
    /// attention scores; nil when every token is real (adding zeros changes nothing).
    func additiveKeyMask() throws -> Tensor? {
        guard attentionMask.contains(where: { $0 == 0 }) else { return nil }
        return try Tensor(attentionMask.map { $0 == 0 ? -Float.greatestFiniteMagnitude : 0 }, shape: [batch, tokens])
    }

    /// The mask as floats [batch, tokens, 1] (1 real, 0 padding), for multiplying states.
    func maskColumn() throws -> Tensor {
        try Tensor(attentionMask.map { Float($0) }, shape: [batch, tokens, 1])
    }

    var intIds: [Int] { ids.map { Int($0) } }
    var intTypeIds: [Int] { typeIds.map { Int($0) } }
}

// MARK: - Shared checks of encode's arguments

/// Throws unless `layers` lies in `0..<count` and `hidden` is [batch, tokens, width].
func checkEncodeArguments(_ hidden: Tensor, batch: TokenBatch, layers: Range<Int>, count: Int, width: Int) throws {
    guard layers.lowerBound >= 0, layers.upperBound <= count else {
        throw TextEncoderError.invalidInput("layers \(layers.lowerBound)..<\(layers.upperBound) are outside the encoder's 0..<\(count)")
    }
    guard hidden.shape == [batch.batch, batch.tokens, width] else {
        throw TextEncoderError.invalidInput("hidden states \(shapeString(hidden.shape)) must be [\(batch.batch), \(batch.tokens), \(width)] for this batch")
    }
}
