// ELECTRA (the discriminator's encoder): BERT's layers on embeddings of width
// `embedding_size`, projected to `hidden_size` by `embeddings_project` when the two differ.
// Reference: transformers/models/electra/modeling_electra.py (`ElectraModel`).
import Foundation
import Layers
import TensorEngine

/// ELECTRA's config.json (`model_type: electra`): BERT's keys plus `embedding_size`, with
/// ELECTRA's defaults (the small model's sizes).
public struct ElectraConfiguration: Codable, Sendable, Equatable {
    public var bert: BertConfiguration
    /// Width of the embedding tables (and their LayerNorm).
    public var embeddingSize: Int

    enum CodingKeys: String, CodingKey { case embeddingSize = "embedding_size" }

    public init(_ bert: BertConfiguration, embeddingSize: Int) {
        self.bert = bert
        self.embeddingSize = embeddingSize
    }

    public init(from decoder: Decoder) throws {
        bert = try BertConfiguration(from: decoder, defaults: BertConfiguration(hiddenSize: 256, heads: 4, intermediateSize: 1024))
        embeddingSize = try decoder.container(keyedBy: CodingKeys.self).value(.embeddingSize, default: 128)
    }

    public func encode(to encoder: Encoder) throws {
        try bert.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(embeddingSize, forKey: .embeddingSize)
    }
}

extension BertEncoder {
    /// An ELECTRA encoder with freshly initialised weights.
    public convenience init(electra configuration: ElectraConfiguration, rng: RandomSource) throws {
        try self.init(configuration.bert, modelType: "electra", positions: .sequential,
                      embeddingSize: configuration.embeddingSize, rng: rng)
    }
}
