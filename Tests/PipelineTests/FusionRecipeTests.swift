import Foundation
import Training
import XCTest
@testable import Pipeline

/// Issue #6 in the pipeline: AutoMM's fusion modules over text + tabular columns, PEFT on the
/// text encoder (merged for prediction), the trainer recipe and its callbacks, and the errors.
final class FusionRecipeTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/pipeline")

    /// The reviews table (title and body text, a price, a pos/neg label) with the tiny BERT.
    func project(text: String = "{checkpoint: ckpt, trainable: full, pooling: mean, max_length: 48}",
                 trainer: String = "optimizer: {lr: 1.0e-2}\n  epochs: 4\n  batch_size: 16\n  callbacks: []", extra: String = "") throws -> Project {
        let p = try Project()
        for f in ["train.csv", "test.csv"] {
            try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("reviews/\(f)"), to: p.url(f))
        }
        try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("tiny-bert"), to: p.url("ckpt"))
        try p.write("pipeline.yaml", """
            version: 1
            name: reviews
            seed: 5
            data:
              train: train.csv
              test: test.csv
              label: sentiment
              columns: {title: text, body: text, price: numeric, score: ignore}
            backbones:
              tabular: {kind: mlp, hidden: [16]}
              text: \(text)
            trainer:
              \(trainer)
            \(extra)
            """)
        return p
    }

    func errorMessage(_ p: Project, overrides: [String] = []) -> String {
        let message = errorText { try p.train(overrides: overrides) }
        XCTAssertNotNil(message, "expected an error")
        XCTAssertFalse(p.exists("runs/run"), "a failed run leaves no run folder")
        return message ?? ""
    }

    func testLoRAOnTheTopLayerTrainsAdaptersAndPredictsWithMergedWeights() throws {
        let p = try project(text: "{checkpoint: ckpt, trainable: {top_layers: 1}, pooling: mean, max_length: 48}",
                            extra: "peft: {method: lora, rank: 4, alpha: 8}")
        let plan = try p.session().plan(try p.session().compile(threads: 2)).render()
        XCTAssertTrue(plan.contains("peft lora (rank 4, alpha 8) on the text backbone"), plan)
        XCTAssertTrue(plan.contains("weights train with lora (adapters on 2 layers)"), plan)
        let (result, log) = try p.train()
        let all = log.joined(separator: "\n")
        XCTAssertTrue(all.contains("peft lora on the text backbone"), all)
        XCTAssertTrue(all.contains("adapters on 2 layers"), all)  // query and value of the top layer
        XCTAssertTrue(all.contains("merged the adapters of 2 layers"), all)
        XCTAssertTrue(all.contains("fusion: 2 backbone outputs → fusion MLP"), all)
        // The layers below the adapted one are a cached stage.
        XCTAssertTrue(result.stageStatus.contains { $0.stage == "embed.train" }, "\(result.stageStatus)")
        // The run holds plain (merged) weights: prediction from token ids through every layer
        // gives the run's own test predictions.
        try FileManager.default.removeItem(at: p.url("ckpt"))
        let predictor = try Predictor(runDirectory: p.url("runs/run"))
        try predictor.predictFile(p.url("test.csv"), to: p.url("out.csv"), overwrite: false)
        XCTAssertEqual(try String(contentsOf: p.url("out.csv"), encoding: .utf8),
                       try String(contentsOf: p.url("runs/run/test_predictions.csv"), encoding: .utf8))
        let weights = try String(decoding: Data(contentsOf: p.url("runs/run/model/model.safetensors")).prefix(20_000), as: UTF8.self)
        XCTAssertFalse(weights.contains("lora_A"), "adapters are merged before saving")
    }

    func testBitFitAndTransformerFusionWithAuxHeads() throws {
        let p = try project(extra: "peft: {method: bit_fit}\nfusion: {kind: transformer, heads: 4, aux_loss_weight: 0.5, modality_dropout: 0.2}")
        let (result, log) = try p.train()
        let all = log.joined(separator: "\n")
        XCTAssertTrue(all.contains("peft bit_fit on the text backbone"), all)
        XCTAssertTrue(all.contains("fusion transformer (3 blocks, 4 heads"), all)
        XCTAssertTrue(all.contains("auxiliary heads × 0.5"), all)
        XCTAssertNotNil(result.metrics["test"]?["roc_auc"])
        // Same seed, same threads: the same numbers again.
        let (again, _) = try p.train(run: "again", force: true)
        XCTAssertEqual(again.metrics, result.metrics)
    }

    func testCheckpointSoupLRMonitorCSVLoggerAndValidationTwicePerEpoch() throws {
        let p = try project(text: "{checkpoint: ckpt, trainable: frozen, pooling: mean, max_length: 48}", trainer: """
            optimizer: {lr: 1.0e-2, lr_choice: two_stages, lr_mult: 2}
              epochs: 3
              batch_size: 16
              accumulate: 2
              val_check_interval: 0.5
              callbacks:
                - checkpoint: {monitor: val.loss, top_k: 3, average: greedy_soup}
                - lr_monitor: {}
                - csv_logger: {path: 'logs/{name}.csv'}
                - progress: {style: none}
            """)
        let (_, log) = try p.train()
        let all = log.joined(separator: "\n")
        XCTAssertTrue(all.contains("final weights: greedy_soup of the validation"), all)
        let history = try String(contentsOf: p.url("runs/run/history.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(history.count, 1 + 6, "two validations in each of 3 epochs:\n\(history.joined(separator: "\n"))")
        let live = try String(contentsOf: p.url("logs/reviews.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(live.count, 7)
        let rates = try String(contentsOf: p.url("runs/run/model/lr.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertGreaterThan(rates.count, 2)
    }

    func testTimeLimitStopsTrainingAndKeepsAModel() throws {
        let p = try project(text: "{checkpoint: ckpt, trainable: frozen, pooling: mean, max_length: 48}",
                            trainer: "optimizer: {lr: 1.0e-2}\n  epochs: 50\n  batch_size: 16\n  time_limit: 0.001\n  callbacks: [checkpoint]")
        let (result, _) = try p.train()
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: p.url("runs/run/model/summary.json"))) as? [String: Any]
        XCTAssertEqual(summary?["steps"] as? Int, 1, "the limit passed during the first step")
        XCTAssertNotNil(summary?["stopped_early"] as? String)
        XCTAssertNotNil(result.metrics["test"]?["accuracy"])
    }

    func testBadSettingsAreReportedAtTheirKeysBeforeTraining() throws {
        var p = try project(text: "{checkpoint: ckpt, trainable: frozen, max_length: 48}", extra: "peft: {method: lora}")
        var m = errorMessage(p)
        XCTAssertTrue(m.contains("pipeline.yaml:17:") && m.contains("backbones.text is frozen") && m.contains("trainable: full"), m)

        p = try project(extra: "peft: {method: lora, targets: [query, nonexistent]}")
        m = errorMessage(p)
        XCTAssertTrue(m.contains("pipeline.yaml:17:") && m.contains("'nonexistent' matches no Linear layer") && m.contains("query"), m)

        p = try project(trainer: "epochs: 1\n  batch_size: 64\n  accumulate: 8")
        m = errorMessage(p)
        XCTAssertTrue(m.contains("trainer.accumulate is 8, but an epoch has only 2 batches") && m.contains("pipeline.yaml:15:"), m)

        p = try project(extra: "fusion: {kind: transformer, heads: 5}")
        m = errorMessage(p)
        XCTAssertTrue(m.contains("not divisible by 5 heads") && m.contains("pipeline.yaml:17:29:"), m)

        p = try project()
        m = errorMessage(p, overrides: ["trainer.mixup={}"])
        XCTAssertTrue(m.contains("mixup"), m)

        p = try project()
        m = errorMessage(p, overrides: ["trainer.loss={kind: focal, alpha: [1, 2, 3]}"])
        XCTAssertTrue(m.contains("trainer.loss.alpha has 3 weight(s) for 2 classes"), m)
    }

    func testPlanShowsWhatThePresetChoseAndWhatIsMissing() throws {
        let p = try Project()
        try p.write("train.csv", syntheticCSV(rows: 60))
        try FileManager.default.createDirectory(at: p.url("models"), withIntermediateDirectories: true)
        try p.write("pipeline.yaml", "version: 1\ndata: {train: train.csv, label: target}\npreset: medium_quality\ntrainer: {epochs: 3}\n")
        let session = p.session()
        let plan = try session.plan(try session.compile(threads: 2)).render()
        XCTAssertTrue(plan.contains("preset medium_quality (checkpoints from models)"), plan)
        XCTAssertTrue(plan.contains("trainer.epochs = 10   (the file's own value wins)"), plan)
        XCTAssertTrue(plan.contains("backbones.tabular.kind = ft_transformer"), plan)
        XCTAssertTrue(plan.contains("could not find image backbone mobilenet_v2"), plan)
        XCTAssertTrue(plan.contains("could not find text backbone all-MiniLM-L6-v2 — fetch it with `scripts/fetch-models --only all-MiniLM-L6-v2`"), plan)
    }

    /// A library user's callback sees the pipeline's training events and can stop it.
    func testUserCallbackSeesEventsAndStopsTraining() throws {
        final class StopAfter: TrainerCallback {
            var steps = 0, validations = 0, checkpoints = 0
            func on(_ event: TrainerEvent, trainer: any TrainerContext) throws -> TrainerDecision {
                switch event {
                case .step: steps += 1
                case .validation: validations += 1
                case .checkpoint: checkpoints += 1
                default: break
                }
                return steps >= 5 ? .stop(reason: "five steps are enough") : .proceed
            }
        }
        let p = try project(text: "{checkpoint: ckpt, trainable: frozen, pooling: mean, max_length: 48}",
                            trainer: "optimizer: {lr: 1.0e-2}\n  epochs: 20\n  batch_size: 16\n  callbacks: [checkpoint]")
        let user = StopAfter()
        let result = try p.session().train(TrainRequest(threads: 2, runDirectory: p.url("runs/run"), callbacks: [user]))
        XCTAssertEqual(user.steps, 5)
        XCTAssertGreaterThanOrEqual(user.validations, 1)
        XCTAssertGreaterThanOrEqual(user.checkpoints, 1)
        XCTAssertNotNil(result.metrics["test"])
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: p.url("runs/run/model/summary.json"))) as? [String: Any]
        XCTAssertEqual(summary?["stopped_early"] as? String, "five steps are enough")
    }
}
