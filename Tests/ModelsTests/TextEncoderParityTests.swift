import Foundation
import XCTest
import Checkpoints
import Layers
@testable import Models
import TensorEngine

/// Every text encoder family against `transformers`, through the tiny random-initialised
/// checkpoints of Tests/Fixtures/text (scripts/fixtures/make_text_fixtures.py): batch 3 × 12
/// tokens, rows 1 and 2 padded, references computed in float64.
///
/// Tolerances: hidden states, embeddings and pooled vectors within 1e-4 (absolute); gradients of
/// Σ mean-pool ⊙ R within 1e-4 + 1e-3·|expected| (they pass through 2–3 layers of float32
/// arithmetic and are up to ~10 in size).
final class TextEncoderParityTests: XCTestCase {
    static let hiddenTolerance: Float = 1e-4
    static let gradientTolerance: (atol: Float, rtol: Float) = (1e-4, 1e-3)

    func testHiddenStatesAndPoolingMatchTransformers() throws {
        var summary: [String] = []
        for family in TextFixtures.families {
            let ref = try TextFixtures.reference(family)
            let encoder = try TextFixtures.load(family).encoder
            let batch = try TextFixtures.batch(ref)
            let (embedded, hidden) = try withNoGrad { () throws -> (Tensor, Tensor) in
                let e = try encoder.embed(batch)
                return (e, try encoder.encode(e, batch: batch, layers: 0..<encoder.shape.layers))
            }
            let tol = Self.hiddenTolerance
            let eErr = assertTensorsClose(embedded, try ref.tensor(named: "embeddings"), atol: tol, "\(family) embeddings")
            let hErr = assertTensorsClose(hidden, try ref.tensor(named: "last_hidden_state"), atol: tol, "\(family) last hidden state")
            var pErr: Float = 0
            for pooling in TextPooling.allCases {
                let pooled = try withNoGrad { try pool(hidden, batch: batch, pooling) }
                pErr = Swift.max(pErr, assertTensorsClose(pooled, try ref.tensor(named: "pooled_\(pooling.rawValue)"), atol: tol,
                                                          "\(family) \(pooling) pooling"))
            }
            summary.append("\(family): embeddings \(eErr), hidden \(hErr), pooled \(pErr)")
        }
        print("text encoder parity (max abs error):\n  " + summary.joined(separator: "\n  "))
    }

    func testGradientsMatchTransformers() throws {
        var summary: [String] = []
        for family in TextFixtures.families {
            let ref = try TextFixtures.reference(family)
            let encoder = try TextFixtures.load(family).encoder
            let batch = try TextFixtures.batch(ref)
            // The embedding output as a leaf, so its gradient can be compared too; the embedding
            // block's own parameters get theirs by continuing backward from it.
            let embedded = try encoder.embed(batch)
            let leaf = Tensor.parameter(embedded.detached())
            let hidden = try encoder.encode(leaf, batch: batch, layers: 0..<encoder.shape.layers)
            let loss = try sum(try mul(try pool(hidden, batch: batch, .mean), try ref.tensor(named: "upstream")))
            try loss.backward()
            try embedded.backward(try XCTUnwrap(leaf.grad))

            let tol = Self.gradientTolerance
            var worst = assertTensorsClose(leaf.grad, try ref.tensor(named: "grad.embeddings"), atol: tol.atol, rtol: tol.rtol,
                                           "\(family) gradient of the embeddings")
            let params = encoder.namedParameters()
            XCTAssertEqual(Set(params.map { "grad." + $0.key }),
                           Set(ref.tensorNames.filter { $0.hasPrefix("grad.") && $0 != "grad.embeddings" }),
                           "\(family): every transformers parameter (pooler aside) has a runpipe parameter of the same name")
            for (key, p) in params where ref.contains("grad.\(key)") {
                worst = Swift.max(worst, assertTensorsClose(p.grad ?? Tensor.zeros(p.shape), try ref.tensor(named: "grad.\(key)"),
                                                            atol: tol.atol, rtol: tol.rtol, "\(family) gradient of \(key)"))
            }
            summary.append("\(family): \(params.count) parameters, worst gradient error \(worst)")
        }
        print("text encoder gradients:\n  " + summary.joined(separator: "\n  "))
    }

    /// The pipeline caches what enters the first trainable layer and runs only the layers above
    /// it: that must equal the full pass exactly, for every split point.
    func testTopLayersOnCachedStatesEqualTheFullPass() throws {
        for family in TextFixtures.families {
            let encoder = try TextFixtures.load(family).encoder
            let batch = try TextFixtures.batch(try TextFixtures.reference(family))
            let depth = encoder.shape.layers
            let full = try withNoGrad { try encoder(batch) }
            for k in 0...depth {
                let cached = try withNoGrad { try encoder.encode(try encoder.embed(batch), batch: batch, layers: 0..<k) }
                let top = try encoder.encode(cached, batch: batch, layers: k..<depth)
                XCTAssertEqual(top.toArray(), full.toArray(), "\(family): layers \(k)..<\(depth) on cached 0..<\(k)")
            }
        }
    }

    /// Training only the top layer from cached states gives that layer the same gradients as
    /// the full pass does.
    func testTopLayerGradientsFromCachedStates() throws {
        for family in ["bert", "mpnet", "deberta-v3"] {
            let ref = try TextFixtures.reference(family)
            let batch = try TextFixtures.batch(ref)
            let upstream = try ref.tensor(named: "upstream")
            let top = try TextFixtures.load(family).encoder.shape.layers - 1

            let fullModel = try TextFixtures.load(family).encoder
            try sum(try mul(try pool(try fullModel(batch), batch: batch, .mean), upstream)).backward()

            let partial = try TextFixtures.load(family).encoder
            try partial.freeze()
            for prefix in partial.parameterPrefixes(ofLayer: top) {
                try partial.unfreeze(matching: "^" + NSRegularExpression.escapedPattern(for: prefix))
            }
            let cached = try withNoGrad { try partial.encode(try partial.embed(batch), batch: batch, layers: 0..<top) }
            try sum(try mul(try pool(try partial.encode(cached, batch: batch, layers: top..<(top + 1)), batch: batch, .mean), upstream)).backward()

            let expected = Dictionary(uniqueKeysWithValues: fullModel.namedParameters().map { ($0.key, $0.tensor) })
            var trained = 0
            for (key, p) in partial.namedParameters() {
                if p.requiresGrad {
                    trained += 1
                    XCTAssertTrue(partial.parameterPrefixes(ofLayer: top).contains { key.hasPrefix($0) }, key)
                    assertTensorsClose(p.grad, try XCTUnwrap(expected[key]?.grad), atol: 1e-5, rtol: 1e-5, "\(family) \(key)")
                } else {
                    XCTAssertNil(p.grad, "\(family): frozen \(key) got a gradient")
                }
            }
            XCTAssertGreaterThan(trained, 8, family)
        }
    }

    /// The fixtures' configs have dropout 0.1: evaluation mode (what `load` returns) matches the
    /// dropout-free reference, training mode does not, and switching back restores it.
    func testEvalModeTurnsDropoutOff() throws {
        for family in ["bert", "distilbert", "mpnet", "deberta-v2"] {
            let ref = try TextFixtures.reference(family)
            let batch = try TextFixtures.batch(ref)
            let encoder = try TextFixtures.load(family).encoder
            let expected = try ref.tensor(named: "last_hidden_state")
            assertTensorsClose(try withNoGrad { try encoder(batch) }, expected, atol: Self.hiddenTolerance, "\(family) eval")
            encoder.train()
            let dropped = try withNoGrad { try encoder(batch) }
            let difference = zip(dropped.toArray(), expected.toArray()).map { Swift.abs($0 - $1) }.max() ?? 0
            XCTAssertGreaterThan(difference, 1e-2, "\(family): training mode should apply dropout")
            encoder.eval()
            assertTensorsClose(try withNoGrad { try encoder(batch) }, expected, atol: Self.hiddenTolerance, "\(family) eval again")
        }
    }

    /// The bucket functions against `transformers`' own over a range of relative positions.
    func testRelativePositionBucketsMatchTransformers() throws {
        let mpnet = try TextFixtures.reference("mpnet")
        let rel = try mpnet.tensor(named: "buckets.relative").toArray().map { Int($0) }
        let expected = try mpnet.tensor(named: "buckets.value").toArray().map { Int($0) }
        XCTAssertEqual(rel.map { MPNetBuckets.bucket($0) }, expected, "MPNet relative_position_bucket")

        let deberta = try TextFixtures.reference("deberta-v3")
        let drel = try deberta.tensor(named: "buckets.relative").toArray().map { Int($0) }
        let dexpected = try deberta.tensor(named: "buckets.value").toArray().map { Int($0) }
        XCTAssertEqual(drel.map { DebertaRelativePositions.logBucket($0, bucketSize: 256, maxPosition: 512) }, dexpected,
                       "DeBERTa make_log_bucket_position(·, 256, 512)")
    }
}
