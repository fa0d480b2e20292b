import Foundation
import Images
import Models
import TensorEngine

/// Runs a frozen image backbone over a part's pixels once: the `embed_image.<part>` stage.
/// Output: [rows, columns × features], each column's slice the mean of the pooled features of
/// the row's images (a row without one reads the features of an all-zero image).
struct ImageFeatureExtractor {
    let encoder: any ImageEncoder
    let batcher: ImageBatcher
    /// Images per forward pass.
    var batchSize = 32

    func run(_ pixels: PixelSet, rows: Int) throws -> Tensor {
        let width = encoder.shape.features
        let columns = pixels.columns.count
        var out = [Float](repeating: 0, count: rows * columns * width)
        encoder.eval()
        try withNoGrad {
            for (c, column) in pixels.columns.enumerated() {
                var start = 0
                while start < rows {
                    // Whole rows per batch, about `batchSize` images.
                    var end = start, images = 0
                    while end < rows, images < batchSize || end == start {
                        images += max(1, Int(column.counts[end]))
                        end += 1
                    }
                    let (batch, owners) = try batcher.pack((start..<end).map { column.images(ofRow: $0) })
                    let features = try encoder.features(batch)
                    let mean = try matmul(try ImageBatcher.averaging(owners: owners, rows: end - start), features).toArray()
                    for r in 0..<(end - start) {
                        let dst = ((start + r) * columns + c) * width
                        for j in 0..<width { out[dst + j] = mean[r * width + j] }
                    }
                    start = end
                }
            }
        }
        return try Tensor(out, shape: [rows, columns * width])
    }
}
