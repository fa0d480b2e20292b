// The contract between text encoders (one file per family: BERT, RoBERTa, DistilBERT, ELECTRA,
// MPNet, DeBERTa-v2) and the pipeline. An encoder is split into its embedding block and its
// stack of layers so the pipeline can cache what enters the first trainable layer
// (`trainable: {top_layers: N}`) and run only the layers above it on each step.
import Foundation
import Layers
import TensorEngine

/// A padded batch of token ids, row-major [batch, tokens].
public struct TokenBatch: Sendable, Equatable {
    public var batch: Int
    public var tokens: Int
    /// Token ids, `batch · tokens` values.
    public var ids: [Int32]
    /// Segment (token type) ids, same layout; zeros for single sequences.
    public var typeIds: [Int32]
    /// 1 for real tokens, 0 for padding; same layout.
    public var attentionMask: [Int32]

    public init(batch: Int, tokens: Int, ids: [Int32], typeIds: [Int32]? = nil, attentionMask: [Int32]? = nil) {
        self.batch = batch
        self.tokens = tokens
        self.ids = ids
        self.typeIds = typeIds ?? Array(repeating: 0, count: ids.count)
        self.attentionMask = attentionMask ?? Array(repeating: 1, count: ids.count)
    }

    /// Rows `range` of the batch.
    public func rows(_ range: Range<Int>) -> TokenBatch {
        let lo = range.lowerBound * tokens, hi = range.upperBound * tokens
        return TokenBatch(batch: range.count, tokens: tokens, ids: Array(ids[lo..<hi]),
                          typeIds: Array(typeIds[lo..<hi]), attentionMask: Array(attentionMask[lo..<hi]))
    }
}

/// The shape facts of a text encoder that the pipeline needs.
public struct TextEncoderShape: Sendable, Equatable, Codable {
    public var hidden: Int
    public var layers: Int
    public var heads: Int
    public var vocabularySize: Int
    public var maxPositions: Int

    public init(hidden: Int, layers: Int, heads: Int, vocabularySize: Int, maxPositions: Int) {
        self.hidden = hidden
        self.layers = layers
        self.heads = heads
        self.vocabularySize = vocabularySize
        self.maxPositions = maxPositions
    }
}

/// A pretrained transformer text encoder whose parameter keys equal its checkpoint's names.
///
/// `embed` followed by `encode(layers: 0..<shape.layers)` is the full forward pass. Encoders whose
/// layers need per-batch state beyond the hidden states (MPNet's relative position bias,
/// DeBERTa's relative embeddings) derive it inside `encode` from `batch`, so running the top
/// layers from cached hidden states gives the same result as the full pass.
public protocol TextEncoder: Module {
    var shape: TextEncoderShape { get }
    /// The `model_type` of the config it was built from (`bert`, `roberta`, …).
    var modelType: String { get }

    /// Embedding block: [batch, tokens, hidden].
    func embed(_ batch: TokenBatch) throws -> Tensor

    /// Runs layers `layers` (a sub-range of `0..<shape.layers`) on `hidden`.
    func encode(_ hidden: Tensor, batch: TokenBatch, layers: Range<Int>) throws -> Tensor

    /// Dotted-key prefixes of the parameters of layer `index` (for freezing all but the top N
    /// layers), e.g. `["encoder.layer.3."]`.
    func parameterPrefixes(ofLayer index: Int) -> [String]
}

extension TextEncoder {
    /// The last hidden states of the full forward pass.
    public func callAsFunction(_ batch: TokenBatch) throws -> Tensor {
        try encode(try embed(batch), batch: batch, layers: 0..<shape.layers)
    }
}

/// How token states become one vector per row.
public enum TextPooling: String, Codable, Sendable, CaseIterable {
    /// The first token's state (BERT's `[CLS]`, RoBERTa's `<s>`).
    case cls
    /// The mean over real (unmasked) tokens — sentence-transformers' default.
    case mean
    /// The element-wise maximum over real tokens.
    case max
}
