// One vector per row from an encoder's token states, as sentence-transformers and AutoMM pool.
import Foundation
import TensorEngine

/// Pools `hidden` [batch, tokens, width] into [batch, width], differentiably.
///
/// - `cls`: the first token's state.
/// - `mean`: the mean over real tokens (attention mask 1): Σ mask·h / max(Σ mask, 1e-9), as
///   sentence-transformers computes it — a row without real tokens pools to zeros.
/// - `max`: the element-wise maximum over real tokens; padding is treated as −1e9, so a row
///   without real tokens pools to about −1e9 (sentence-transformers' behaviour).
public func pool(_ hidden: Tensor, batch: TokenBatch, _ pooling: TextPooling) throws -> Tensor {
    guard hidden.rank == 3, hidden.shape[0] == batch.batch, hidden.shape[1] == batch.tokens else {
        throw TextEncoderError.invalidInput("pooling: hidden states \(shapeString(hidden.shape)) must be [\(batch.batch), \(batch.tokens), width]")
    }
    guard batch.attentionMask.count == batch.batch * batch.tokens else {
        throw TextEncoderError.invalidBatch("\(batch.attentionMask.count) mask values for \(batch.batch) × \(batch.tokens) tokens")
    }
    let b = batch.batch, t = batch.tokens, width = hidden.shape[2]
    switch pooling {
    case .cls:
        guard t > 0 else { throw TextEncoderError.invalidBatch("cls pooling needs at least one token per row") }
        return try hidden.slice(axis: 1, start: 0, end: 1).reshaped([b, width])
    case .mean:
        let summed = try sum(try mul(hidden, try batch.maskColumn()), axes: [1])
        var counts = [Float](repeating: 0, count: b)
        for r in 0..<b {
            var n = 0
            for i in 0..<t where batch.attentionMask[r * t + i] != 0 { n += 1 }
            counts[r] = Swift.max(Float(n), 1e-9)
        }
        return try div(summed, try Tensor(counts, shape: [b, 1]))
    case .max:
        guard t > 0 else { throw TextEncoderError.invalidBatch("max pooling needs at least one token per row") }
        if !batch.attentionMask.contains(0) { return try max(hidden, axis: 1) }
        // Padding replaced (not offset) by −1e9: h·mask + (mask − 1)·1e9.
        let keep = try batch.maskColumn()
        let fill = try Tensor(batch.attentionMask.map { $0 == 0 ? -1e9 : 0 }, shape: [b, t, 1])
        return try max(try add(try mul(hidden, keep), fill), axis: 1)
    }
}
