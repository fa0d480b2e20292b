import Foundation
import XCTest
@testable import Checkpoints
import TensorEngine

/// Loads the real pretrained weights `scripts/fetch-models` puts in `models/`, when present.
/// The expected shapes, counts and sums were read from the same files with PyTorch
/// (`torch.load` / `safetensors.torch.load_file`).
final class FetchedModelsTests: XCTestCase {
    private func modelFolder(_ name: String) throws -> URL {
        guard let root = CheckpointFixtures.packageRoot else { throw XCTSkip("package root not found from \(#filePath)") }
        let folder = root.appendingPathComponent("models").appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: folder.path) else {
            throw XCTSkip("models/\(name) is absent; run scripts/fetch-models --only \(name)")
        }
        return folder
    }

    /// Σ x and Σ x·(i mod 7) over the Float32 tensors' row-major elements (i per tensor), in Double.
    private func sums(_ tensors: [String: Tensor], floatKeys: (String) -> Bool) -> (Double, Double) {
        var plain = 0.0, weighted = 0.0
        for (key, tensor) in tensors where floatKeys(key) {
            for (i, x) in tensor.toArray().enumerated() {
                plain += Double(x)
                weighted += Double(x) * Double(i % 7)
            }
        }
        return (plain, weighted)
    }

    func testAllMiniLML6V2() throws {
        let folder = try CheckpointFolder(modelFolder("all-MiniLM-L6-v2"))
        XCTAssertEqual(folder.format, .safetensors)
        XCTAssertNotNil(folder.configURL)
        let tensors = try folder.loadTensors()
        XCTAssertEqual(tensors.count, 104)
        XCTAssertEqual(tensors["embeddings.word_embeddings.weight"]?.shape, [30522, 384])
        XCTAssertEqual(tensors["encoder.layer.5.output.dense.weight"]?.shape, [384, 1536])
        XCTAssertEqual(tensors["embeddings.position_ids"]?.toArray().prefix(3), [0, 1, 2])
        XCTAssertEqual(tensors["embeddings.LayerNorm.bias"]?.toArray().first, 0.16954053938388824)
    }

    func testAllMpnetBaseV2() throws {
        let folder = try CheckpointFolder(modelFolder("all-mpnet-base-v2"))
        XCTAssertEqual(folder.format, .safetensors)
        let tensors = try folder.loadTensors()
        XCTAssertEqual(tensors.count, 200)
        XCTAssertEqual(tensors["encoder.layer.11.output.dense.weight"]?.shape, [768, 3072])
        XCTAssertEqual(tensors["encoder.layer.11.output.dense.weight"]?.toArray().prefix(2),
                       [0.014699912630021572, -0.036921482533216476])
        XCTAssertEqual(tensors["embeddings.position_ids"]?.shape, [1, 514])
    }

    func testMobileNetV2LegacyPth() throws {
        let folder = try CheckpointFolder(modelFolder("mobilenet_v2"))
        XCTAssertEqual(folder.format, .pytorchLegacy, "torchvision's .pth is a legacy pickle")
        XCTAssertNil(folder.configURL)
        let tensors = try folder.loadTensors()
        XCTAssertEqual(tensors.count, 314)
        XCTAssertEqual(tensors["features.0.0.weight"]?.shape, [32, 3, 3, 3])
        XCTAssertEqual(tensors["features.0.0.weight"]?.toArray().prefix(2), [0.013185339979827404, -0.004321294371038675])
        XCTAssertEqual(tensors["classifier.1.weight"]?.shape, [1000, 1280])
        XCTAssertEqual(tensors["features.0.1.num_batches_tracked"]?.shape, [])
        XCTAssertEqual(tensors["features.0.1.num_batches_tracked"]?.toArray(), [1431430])
        let (plain, weighted) = sums(tensors) { !$0.hasSuffix("num_batches_tracked") }
        XCTAssertEqual(plain, 7344.640338408416, accuracy: 1e-3)
        XCTAssertEqual(weighted, 21852.268145497146, accuracy: 1e-3)
    }

    func testEfficientNetLite0LegacyPthWithStridedViews() throws {
        let folder = try CheckpointFolder(modelFolder("efficientnet_lite0"))
        XCTAssertEqual(folder.format, .pytorchLegacy)
        let tensors = try folder.loadTensors()
        XCTAssertEqual(tensors.count, 296)
        // Stored channels-last: strides (1, 32, 288, 96) over its storage.
        let stem = try XCTUnwrap(tensors["_conv_stem.weight"])
        XCTAssertEqual(stem.shape, [32, 3, 3, 3])
        XCTAssertEqual(Array(stem.toArray().prefix(4)), [-1.1103360652923584, -1.3087704181671143, -0.010156914591789246, 0.9208119511604309])
        XCTAssertEqual(tensors["_fc.weight"]?.shape, [1000, 1280])
        let (plain, weighted) = sums(tensors) { !$0.hasSuffix("num_batches_tracked") }
        XCTAssertEqual(plain, 425663.2450015556, accuracy: 1e-3)
        XCTAssertEqual(weighted, 1266932.5437420914, accuracy: 1e-3)
    }
}
