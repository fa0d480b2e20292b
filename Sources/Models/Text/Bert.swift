// BERT (and the encoders that share its layout: RoBERTa/XLM-R in Roberta.swift, ELECTRA in
// Electra.swift). Reference: transformers/models/bert/modeling_bert.py (`BertModel`).
//
// Parameter keys equal the checkpoint's: `embeddings.{word,position,token_type}_embeddings`,
// `embeddings.LayerNorm`, `encoder.layer.N.…` (Layers' `TransformerEncoderLayer`). The pooler
// (`pooler.dense`) is not part of the encoder: runpipe pools with `TextPooling`.
import Foundation
import Layers
import TensorEngine

// MARK: - Configuration

/// BERT's config.json (`model_type: bert`), with `transformers`' defaults for absent keys.
public struct BertConfiguration: Codable, Sendable, Equatable {
    public var vocabularySize: Int
    public var hiddenSize: Int
    public var layers: Int
    public var heads: Int
    public var intermediateSize: Int
    public var hiddenAct: String
    public var hiddenDropout: Float
    public var attentionDropout: Float
    public var maxPositions: Int
    public var typeVocabularySize: Int
    public var layerNormEps: Float
    /// Only `absolute` is implemented.
    public var positionEmbeddingType: String
    public var padTokenId: Int

    enum CodingKeys: String, CodingKey {
        case vocabularySize = "vocab_size"
        case hiddenSize = "hidden_size"
        case layers = "num_hidden_layers"
        case heads = "num_attention_heads"
        case intermediateSize = "intermediate_size"
        case hiddenAct = "hidden_act"
        case hiddenDropout = "hidden_dropout_prob"
        case attentionDropout = "attention_probs_dropout_prob"
        case maxPositions = "max_position_embeddings"
        case typeVocabularySize = "type_vocab_size"
        case layerNormEps = "layer_norm_eps"
        case positionEmbeddingType = "position_embedding_type"
        case padTokenId = "pad_token_id"
    }

    public init(vocabularySize: Int = 30522, hiddenSize: Int = 768, layers: Int = 12, heads: Int = 12,
                intermediateSize: Int = 3072, hiddenAct: String = "gelu", hiddenDropout: Float = 0.1,
                attentionDropout: Float = 0.1, maxPositions: Int = 512, typeVocabularySize: Int = 2,
                layerNormEps: Float = 1e-12, positionEmbeddingType: String = "absolute", padTokenId: Int = 0) {
        self.vocabularySize = vocabularySize
        self.hiddenSize = hiddenSize
        self.layers = layers
        self.heads = heads
        self.intermediateSize = intermediateSize
        self.hiddenAct = hiddenAct
        self.hiddenDropout = hiddenDropout
        self.attentionDropout = attentionDropout
        self.maxPositions = maxPositions
        self.typeVocabularySize = typeVocabularySize
        self.layerNormEps = layerNormEps
        self.positionEmbeddingType = positionEmbeddingType
        self.padTokenId = padTokenId
    }

    public init(from decoder: Decoder) throws {
        try self.init(from: decoder, defaults: BertConfiguration())
    }

    /// Decodes with another family's defaults for absent keys (RoBERTa, ELECTRA).
    init(from decoder: Decoder, defaults d: BertConfiguration) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(vocabularySize: try c.value(.vocabularySize, default: d.vocabularySize),
                  hiddenSize: try c.value(.hiddenSize, default: d.hiddenSize),
                  layers: try c.value(.layers, default: d.layers),
                  heads: try c.value(.heads, default: d.heads),
                  intermediateSize: try c.value(.intermediateSize, default: d.intermediateSize),
                  hiddenAct: try c.value(.hiddenAct, default: d.hiddenAct),
                  hiddenDropout: try c.value(.hiddenDropout, default: d.hiddenDropout),
                  attentionDropout: try c.value(.attentionDropout, default: d.attentionDropout),
                  maxPositions: try c.value(.maxPositions, default: d.maxPositions),
                  typeVocabularySize: try c.value(.typeVocabularySize, default: d.typeVocabularySize),
                  layerNormEps: try c.value(.layerNormEps, default: d.layerNormEps),
                  positionEmbeddingType: try c.value(.positionEmbeddingType, default: d.positionEmbeddingType),
                  padTokenId: try c.value(.padTokenId, default: d.padTokenId))
    }

    /// Throws `TextEncoderError` naming the first invalid or unsupported key.
    func validate(modelType: String) throws -> ConfigCheck {
        let check = ConfigCheck(modelType: modelType)
        try check.positive(vocabularySize, "vocab_size")
        try check.positive(hiddenSize, "hidden_size")
        try check.positive(layers, "num_hidden_layers")
        try check.divisible(hiddenSize, "hidden_size", by: heads, "num_attention_heads")
        try check.positive(intermediateSize, "intermediate_size")
        try check.positive(maxPositions, "max_position_embeddings")
        try check.nonNegative(typeVocabularySize, "type_vocab_size")
        try check.probability(hiddenDropout, "hidden_dropout_prob")
        try check.probability(attentionDropout, "attention_probs_dropout_prob")
        try check.epsilon(layerNormEps, "layer_norm_eps")
        guard positionEmbeddingType == "absolute" else {
            throw TextEncoderError.unsupportedOption(modelType: modelType, option: "position_embedding_type",
                                                     value: "'\(positionEmbeddingType)' (only 'absolute')")
        }
        return check
    }

    var shape: TextEncoderShape {
        TextEncoderShape(hidden: hiddenSize, layers: layers, heads: heads, vocabularySize: vocabularySize, maxPositions: maxPositions)
    }
}

// MARK: - Embeddings

/// How a family numbers positions.
enum PositionScheme: Equatable {
    /// 0, 1, 2, … (BERT, ELECTRA).
    case sequential
    /// fairseq's: real tokens from `padding + 1`, padding at `padding` (RoBERTa, XLM-R).
    case afterPadding(Int)

    func positions(_ batch: TokenBatch, maxPositions: Int) throws -> [Int] {
        switch self {
        case .sequential: return try batch.sequentialPositions(maxPositions: maxPositions)
        case .afterPadding(let pad): return try batch.paddingOffsetPositions(padding: pad, maxPositions: maxPositions)
        }
    }
}

/// word + position + token-type embeddings → LayerNorm → dropout, keyed like BERT's
/// `embeddings` (`word_embeddings`, `position_embeddings`, `token_type_embeddings`, `LayerNorm`).
/// The width is `hidden_size`, or ELECTRA's `embedding_size`.
final class BertEmbeddings: Module {
    let words: Embedding
    let positions: Embedding
    let types: Embedding?
    let norm: LayerNorm
    let dropout: Dropout
    let scheme: PositionScheme

    init(vocabulary: Int, width: Int, maxPositions: Int, typeVocabulary: Int, eps: Float, dropout p: Float,
         scheme: PositionScheme, rng: RandomSource) {
        words = Embedding(vocabulary, width, rng: rng)
        positions = Embedding(maxPositions, width, rng: rng)
        types = typeVocabulary > 0 ? Embedding(typeVocabulary, width, rng: rng) : nil
        norm = LayerNorm(width, eps: eps)
        dropout = Dropout(p, rng: rng)
        self.scheme = scheme
        super.init()
        register(child: "word_embeddings", words)
        register(child: "position_embeddings", positions)
        if let types { register(child: "token_type_embeddings", types) }
        register(child: "LayerNorm", norm)
        register(child: "dropout", dropout)
    }

    func callAsFunction(_ batch: TokenBatch) throws -> Tensor {
        try batch.validate(vocabulary: words.weight.shape[0], typeVocabulary: types?.weight.shape[0])
        let shape = [batch.batch, batch.tokens]
        var sum = try words(batch.intIds, shape: shape)
        if let types { sum = try add(sum, try types(batch.intTypeIds, shape: shape)) }
        let ids = try scheme.positions(batch, maxPositions: positions.weight.shape[0])
        sum = try add(sum, try positions(ids, shape: shape))
        return try dropout(try norm(sum))
    }
}

// MARK: - Model

/// A BERT-layout encoder: `BertEmbeddings`, an optional `embeddings_project` (ELECTRA with
/// `embedding_size ≠ hidden_size`) and a stack of post-norm layers with BERT's names. Serves
/// `bert`, `roberta`, `xlm-roberta` and `electra` checkpoints; `modelType` tells which.
public final class BertEncoder: Module, TextEncoder {
    public let shape: TextEncoderShape
    public let modelType: String
    let embeddings: BertEmbeddings
    let projection: Linear?
    let encoder: TransformerEncoder

    /// A BERT encoder with freshly initialised weights.
    public convenience init(_ configuration: BertConfiguration, rng: RandomSource) throws {
        try self.init(configuration, modelType: "bert", positions: .sequential, embeddingSize: nil, rng: rng)
    }

    init(_ c: BertConfiguration, modelType: String, positions: PositionScheme, embeddingSize: Int?,
         rng: RandomSource) throws {
        let check = try c.validate(modelType: modelType)
        let activation = try check.activation(c.hiddenAct, "hidden_act")
        if let embeddingSize { try check.positive(embeddingSize, "embedding_size") }
        let width = embeddingSize ?? c.hiddenSize
        shape = c.shape
        self.modelType = modelType
        embeddings = BertEmbeddings(vocabulary: c.vocabularySize, width: width, maxPositions: c.maxPositions,
                                    typeVocabulary: c.typeVocabularySize, eps: c.layerNormEps, dropout: c.hiddenDropout,
                                    scheme: positions, rng: rng)
        projection = width != c.hiddenSize ? Linear(width, c.hiddenSize, rng: rng) : nil
        let layer = TransformerLayerConfig(hidden: c.hiddenSize, heads: c.heads, intermediate: c.intermediateSize,
                                           activation: activation, hiddenDropout: c.hiddenDropout,
                                           attentionDropout: c.attentionDropout, layerNormEps: c.layerNormEps)
        encoder = try TransformerEncoder(layer, depth: c.layers, rng: rng)
        super.init()
        register(child: "embeddings", embeddings)
        if let projection { register(child: "embeddings_project", projection) }
        register(child: "encoder", encoder)
    }

    public func embed(_ batch: TokenBatch) throws -> Tensor {
        let e = try embeddings(batch)
        return try projection.map { try $0(e) } ?? e
    }

    public func encode(_ hidden: Tensor, batch: TokenBatch, layers: Range<Int>) throws -> Tensor {
        try checkEncodeArguments(hidden, batch: batch, layers: layers, count: shape.layers, width: shape.hidden)
        let mask = try batch.additiveKeyMask()
        var h = hidden
        for i in layers { h = try encoder.layers[i](h, mask: mask) }
        return h
    }

    public func parameterPrefixes(ofLayer index: Int) -> [String] { ["encoder.layer.\(index)."] }
}
