import Cache
import Foundation
import Spec
import XCTest
@testable import Pipeline

/// Text columns end to end on a tiny BERT checkpoint (Tests/Fixtures/pipeline/tiny-bert, from
/// scripts/fixtures/make_pipeline_text_fixture.py) and generated product reviews whose words
/// decide the sentiment.
final class TextPipelineTests: XCTestCase {
    /// `Tests/Fixtures/pipeline`, found from this file.
    static let fixtures: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/pipeline")

    /// A project with the reviews and a copy of the tiny checkpoint under `ckpt/`.
    func project(_ text: String, columns: String = "{title: text, body: text, price: numeric, score: ignore}",
                 label: String = "sentiment", extra: String = "", epochs: Int = 12) throws -> Project {
        let p = try Project()
        let fm = FileManager.default
        for f in ["train.csv", "test.csv"] {
            try fm.copyItem(at: Self.fixtures.appendingPathComponent("reviews/\(f)"), to: p.url(f))
        }
        try fm.copyItem(at: Self.fixtures.appendingPathComponent("tiny-bert"), to: p.url("ckpt"))
        try p.write("pipeline.yaml", """
            version: 1
            name: reviews
            seed: 5
            data:
              train: train.csv
              test: test.csv
              label: \(label)
              columns: \(columns)
            backbones:
              tabular: {kind: mlp, hidden: [16]}
              text: \(text)
            trainer:
              optimizer: {lr: 3.0e-2}
              epochs: \(epochs)
              batch_size: 16
              callbacks: []
            \(extra)
            """)
        return p
    }

    func testFrozenEncoderCachesFeaturesAndLearnsTheSentiment() throws {
        let p = try project("{checkpoint: ckpt, trainable: frozen, max_length: 48}")
        let (first, log) = try p.train(run: "a")
        XCTAssertGreaterThanOrEqual(first.metrics["test"]?["roc_auc"] ?? 0, 0.8, log.joined(separator: "\n"))
        let ran = first.stageStatus.filter { !$0.cached }.map(\.stage)
        XCTAssertTrue(ran.contains("embed.train") && ran.contains("embed.validation") && ran.contains("embed.test"), "\(ran)")

        // A change of the head's settings reuses the cached features.
        let (second, _) = try p.train(overrides: ["trainer.optimizer.lr=1.0e-2"], run: "b")
        let cached = Set(second.stageStatus.filter(\.cached).map(\.stage))
        XCTAssertTrue(cached.isSuperset(of: ["encode.train", "embed.train", "embed.validation", "embed.test"]), "\(second.stageStatus)")
        XCTAssertFalse(cached.contains("train"))

        // The frozen encoder's weights are not copied into the run; the tokenizer is.
        XCTAssertTrue(p.exists("runs/a/model/text/tokenizer.json"))
        let lock = try JSONDecoder().decode(RunLock.self, from: Data(contentsOf: p.url("runs/a/lock.json")))
        XCTAssertEqual(lock.checkpoints.first?.weightsSHA256.count, 64)

        // Predicting a file reads the checkpoint for the frozen encoder and matches the run's own predictions.
        let predictor = try Predictor(runDirectory: p.url("runs/a"))
        try predictor.predictFile(p.url("test.csv"), to: p.url("out.csv"), overwrite: false)
        XCTAssertEqual(try String(contentsOf: p.url("out.csv"), encoding: .utf8),
                       try String(contentsOf: p.url("runs/a/test_predictions.csv"), encoding: .utf8))
    }

    func testTopLayersCachesHiddenStatesAndMatchesTheFullPassAtPrediction() throws {
        let p = try project("{checkpoint: ckpt, trainable: {top_layers: 1}, pooling: mean}", epochs: 6)
        // A transformer layer and the fusion MLP train here: the head-only rate 3e-2 is too high for them.
        let (result, log) = try p.train(overrides: ["trainer.optimizer.lr=1.0e-2"], run: "a")
        XCTAssertGreaterThanOrEqual(result.metrics["test"]?["roc_auc"] ?? 0, 0.8, log.joined(separator: "\n"))
        XCTAssertTrue(log.contains { $0.contains("parameters:") })
        // The run holds the whole encoder (the top layer changed), so it predicts without the checkpoint.
        try FileManager.default.removeItem(at: p.url("ckpt"))
        let predictor = try Predictor(runDirectory: p.url("runs/a"))
        let metrics = try predictor.evaluateFile(p.url("test.csv"))
        // Prediction runs every layer from token ids; training read cached hidden states: same numbers.
        XCTAssertEqual(metrics["roc_auc"] ?? 0, result.metrics["test"]?["roc_auc"] ?? -1, accuracy: 1e-6)
    }

    func testFullFineTuningOfSeparateColumnsTrainsAndIsDeterministic() throws {
        let p = try project("{checkpoint: ckpt, trainable: full, combine: separate, max_length: 24}", epochs: 2)
        // Fine-tuning the encoder wants a smaller step than training a head on cached features.
        let lr = ["trainer.optimizer.lr=3.0e-3"]
        let (a, log) = try p.train(overrides: lr, run: "a")
        XCTAssertFalse(a.stageStatus.contains { $0.stage.hasPrefix("embed") }, "full fine-tuning caches no features")
        XCTAssertGreaterThanOrEqual(a.metrics["test"]?["roc_auc"] ?? 0, 0.7, log.joined(separator: "\n"))
        let (b, _) = try p.train(overrides: lr, run: "b", force: true)
        XCTAssertEqual(a.metrics, b.metrics)
        XCTAssertEqual(try Data(contentsOf: p.url("runs/a/model/model.safetensors")),
                       try Data(contentsOf: p.url("runs/b/model/model.safetensors")))
    }

    func testTextRegression() throws {
        let p = try project("{checkpoint: ckpt, trainable: frozen}",
                            columns: "{title: text, body: text, price: numeric, sentiment: ignore}", label: "score")
        let (result, log) = try p.train()
        // The score follows the sentiment (4.2 vs 1.8, noise 0.4) and the price is noise: only a model that
        // reads the words gets R² above 0 (the tiny random encoder's features allow about 0.3).
        XCTAssertGreaterThan(result.metrics["test"]?["r2"] ?? -1, 0.15, log.joined(separator: "\n"))
        XCTAssertGreaterThan(result.metrics["test"]?["pearson"] ?? -1, 0.5)
    }

    func testPlanSaysWhichStagesTheTextModeCaches() throws {
        let p = try project("{checkpoint: ckpt, trainable: {top_layers: 1}}")
        let session = p.session()
        let plan = try session.plan(try session.compile(threads: 2))
        let embed = plan.lines.map(\.node).filter { $0.id.hasPrefix("embed.") }
        XCTAssertEqual(embed.map(\.id), ["embed.train", "embed.validation", "embed.test"])
        XCTAssertTrue(embed.allSatisfy { $0.summary.contains("hidden states entering layer 1 of 2") }, "\(embed.map(\.summary))")
        XCTAssertTrue(plan.render().contains("embed.train"))
    }

    func testTruncationIsCountedInTheLog() throws {
        let p = try project("{checkpoint: ckpt, trainable: frozen, max_length: 6}", epochs: 1)
        let (_, log) = try p.train()
        XCTAssertTrue(log.contains { $0.contains("truncated to 6 tokens") }, log.joined(separator: "\n"))
    }

    func testTextColumnWithoutATextBackboneSaysHowToFixIt() throws {
        let p = try project("null")
        let message = errorText { try p.train() } ?? ""
        XCTAssertTrue(message.contains("column 'title' holds text") || message.contains("column 'body' holds text"), message)
        XCTAssertTrue(message.contains("backbones"), message)
        XCTAssertFalse(p.exists("runs/run"))
    }

    func testMissingCheckpointFolderIsAnErrorAtItsLine() throws {
        let p = try project("{checkpoint: nowhere, trainable: frozen}")
        let message = errorText { try p.train() } ?? ""
        XCTAssertTrue(message.contains("pipeline.yaml:") && message.contains("nowhere") && message.contains("fetch-models"), message)
    }

    func testUnsupportedModelTypeListsTheSupportedOnes() throws {
        let p = try project("{checkpoint: ckpt, trainable: frozen}")
        var config = try String(contentsOf: p.url("ckpt/config.json"), encoding: .utf8)
        config = config.replacingOccurrences(of: "\"model_type\": \"bert\"", with: "\"model_type\": \"gpt2\"")
        try p.write("ckpt/config.json", config)
        let message = errorText { try p.train() } ?? ""
        XCTAssertTrue(message.contains("'gpt2' is not supported") && message.contains("bert"), message)
    }

    func testTopLayersBeyondTheDepthIsAnError() throws {
        let p = try project("{checkpoint: ckpt, trainable: {top_layers: 5}}")
        let message = errorText { try p.train() } ?? ""
        XCTAssertTrue(message.contains("has 2 layers"), message)
    }

    func testInvalidUTF8InATextCellIsReplacedWithAWarning() throws {
        let p = try project("{checkpoint: ckpt, trainable: frozen}", epochs: 1)
        var bytes = try Data(contentsOf: p.url("train.csv"))
        // Corrupt one byte of the third data row (line 4) inside its body text.
        let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
        let offset = lines[0..<3].reduce(0) { $0 + $1.count + 1 } + 5
        bytes[offset] = 0xFF
        try bytes.write(to: p.url("train.csv"))
        let (_, log) = try p.train()
        XCTAssertTrue(log.contains { $0.contains("train.csv:4") && $0.contains("not UTF-8") }, log.joined(separator: "\n"))
    }
}
