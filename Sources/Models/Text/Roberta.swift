// RoBERTa and XLM-RoBERTa: BERT's layout with fairseq position ids (counted from
// `pad_token_id + 1`, decided by the token ids). Reference:
// transformers/models/roberta/modeling_roberta.py (`RobertaEmbeddings`,
// `create_position_ids_from_input_ids`); XLM-R's modeling file is the same model.
import Foundation
import Layers
import TensorEngine

/// RoBERTa's config.json (`model_type: roberta` or `xlm-roberta`): BERT's keys with RoBERTa's
/// defaults (50265 tokens, `pad_token_id` 1, one token type).
public struct RobertaConfiguration: Codable, Sendable, Equatable {
    public var bert: BertConfiguration

    public init(_ bert: BertConfiguration) { self.bert = bert }

    public init(from decoder: Decoder) throws {
        bert = try BertConfiguration(from: decoder, defaults: BertConfiguration(vocabularySize: 50265, padTokenId: 1))
    }

    public func encode(to encoder: Encoder) throws { try bert.encode(to: encoder) }
}

extension BertEncoder {
    /// A RoBERTa / XLM-R encoder with freshly initialised weights; `modelType` is `roberta` or
    /// `xlm-roberta` (they differ only in vocabulary).
    public convenience init(roberta configuration: RobertaConfiguration, modelType: String = "roberta",
                            rng: RandomSource) throws {
        let c = configuration.bert
        guard c.padTokenId >= 0, c.padTokenId < c.maxPositions else {
            throw TextEncoderError.invalidConfiguration(modelType: modelType, key: "pad_token_id",
                                                        reason: "(\(c.padTokenId)) must be a position index below max_position_embeddings (\(c.maxPositions))")
        }
        try self.init(c, modelType: modelType, positions: .afterPadding(c.padTokenId), embeddingSize: nil, rng: rng)
    }
}
