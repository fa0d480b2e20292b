import Foundation
import XCTest
import Checkpoints
import Models
import TensorEngine

/// The real sentence-transformers checkpoints against reference sentence embeddings
/// (Tests/Fixtures/text/real/<name>.safetensors, made by scripts/fixtures/make_text_fixtures.py
/// from the same weights in float64): mean pooling over the mask, then L2 normalisation, within
/// 1e-4. The weights are not committed; scripts/fetch-models puts them in models/. Without them
/// the tests skip.
final class TextEncoderRealWeightsTests: XCTestCase {
    func testAllMiniLML6v2() throws { try check("all-MiniLM-L6-v2", modelType: "bert", layers: 6) }

    func testAllMpnetBaseV2() throws { try check("all-mpnet-base-v2", modelType: "mpnet", layers: 12) }

    func check(_ name: String, modelType: String, layers: Int) throws {
        let folder = try TextFixtures.repositoryRoot().appendingPathComponent("models").appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("model.safetensors").path) else {
            throw XCTSkip("models/\(name) is absent; run scripts/fetch-models to fetch it")
        }
        let loaded = try TextEncoders.loadWithReport(folder: folder, rng: RandomSource(seed: 1))
        let encoder = loaded.encoder
        XCTAssertEqual(encoder.modelType, modelType)
        XCTAssertEqual(encoder.shape.layers, layers)
        XCTAssertTrue(loaded.report.ignoredKeys.contains("pooler.dense.weight"), "\(loaded.report.ignoredKeys)")

        let ref = try SafetensorsFile(url: try TextFixtures.root().appendingPathComponent("real").appendingPathComponent("\(name).safetensors"))
        let batch = try TextFixtures.batch(ref)
        let embeddings = try withNoGrad { () throws -> Tensor in
            let pooled = try pool(try encoder(batch), batch: batch, .mean)
            let norms = try sqrt(try sum(try mul(pooled, pooled), axes: [1], keepDims: true))
            return try div(pooled, try clamp(norms, min: 1e-12))
        }
        let err = assertTensorsClose(embeddings, try ref.tensor(named: "sentence_embeddings"), atol: 1e-4, "\(name) sentence embeddings")
        print("\(name): max abs error of the sentence embeddings \(err)")
    }
}
