import Checkpoints
import Foundation
import Models
import TensorEngine

/// The `embed.*` stage: runs the part of the text encoder that does not train over every row of
/// a part, once, so that epochs, runs and sweep trials read the result from the cache.
///
/// - frozen: pooled features `[rows, hidden]` per text input;
/// - top N layers: the hidden states entering the first trainable layer, `[rows, tokens, hidden]`
///   (positions past a row's length are zero; the attention mask hides them).
///
/// Rows are processed in order of length so batches carry little padding; results are written
/// back in row order, so they do not depend on the batching.
struct TextFeatureExtractor {
    let encoder: any TextEncoder
    let pooling: TextPooling
    /// Layers to run: all of them (pooled output) or those below the first trainable one.
    let upToLayer: Int
    let pooled: Bool
    let batchSize: Int

    func run(_ text: TokenizedText) throws -> Tensor {
        encoder.eval()
        let rows = text.rows, hidden = encoder.shape.hidden
        let order = (0..<rows).sorted { (text.lengths[$0], $0) < (text.lengths[$1], $1) }
        let out = pooled ? Tensor.zeros([rows, hidden]) : Tensor.zeros([rows, text.tokens, hidden])
        try withNoGrad {
            var start = 0
            while start < rows {
                let positions = Array(order[start..<min(rows, start + batchSize)])
                let batch = text.batch(positions)
                var h = try encoder.embed(batch)
                h = try encoder.encode(h, batch: batch, layers: 0..<upToLayer)
                if pooled {
                    let p = try pool(h, batch: batch, pooling).clone()
                    for (i, row) in positions.enumerated() {
                        (out.data + row * hidden).update(from: p.data + i * hidden, count: hidden)
                    }
                } else {
                    let c = h.clone()
                    for (i, row) in positions.enumerated() {
                        let length = Int(text.lengths[row])
                        (out.data + row * text.tokens * hidden).update(from: c.data + i * batch.tokens * hidden,
                                                                       count: length * hidden)
                    }
                }
                start += batchSize
            }
        }
        return out
    }
}

/// Cached hidden states `[rows, tokens, hidden]` cut to a batch: the rows at `positions`,
/// the first `tokens` positions.
func hiddenBatch(_ states: Tensor, positions: [Int], tokens: Int) throws -> Tensor {
    let rows = try indexSelect(states, axis: 0, indices: positions)
    return tokens == states.shape[1] ? rows : try rows.slice(axis: 1, start: 0, end: tokens).clone()
}
