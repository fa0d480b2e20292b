import Foundation
import XCTest
@testable import Pipeline

/// Multi-label and multi-task pipelines end to end on Tests/Fixtures/multilabel/tasks.csv
/// (from `scripts/fixtures/make_multilabel_fixtures.py`): features x1, x2, color; labels
/// genres (label sets), action/comedy/drama (the same as binary columns), kind (3 classes)
/// and size (a number).
final class MultilabelPipelineTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/multilabel")

    func project(_ labels: String, _ extra: String = "", ignore: [String] = []) throws -> Project {
        let p = try Project()
        for name in ["tasks.csv", "tasks_test.csv"] {
            try p.write(name, try String(contentsOf: Self.fixtures.appendingPathComponent(name), encoding: .utf8))
        }
        let ignored = ignore.isEmpty ? "" : "  columns: {\(ignore.map { "\($0): ignore" }.joined(separator: ", "))}\n"
        try p.write("pipeline.yaml", """
        version: 1
        seed: 5
        data:
          train: tasks.csv
          test: tasks_test.csv
          label: \(labels)
        \(ignored)backbones:
          tabular: {kind: mlp, hidden: [32]}
        trainer:
          optimizer: {lr: 2.0e-2}
          epochs: 25
          batch_size: 32
        \(extra)
        """)
        return p
    }

    func lines(_ p: Project, _ file: String) throws -> [String] {
        try String(contentsOf: p.url(file), encoding: .utf8).split(separator: "\n").map(String.init)
    }

    func testMultilabelOverBinaryColumns() throws {
        let p = try project("[action, comedy, drama]", "problem: multilabel", ignore: ["genres", "kind", "size"])
        let (result, _) = try p.train()
        let test = try XCTUnwrap(result.metrics["test"])
        XCTAssertEqual(Set(test.keys), ["f1_micro", "f1_macro", "precision_micro", "recall_micro", "subset_accuracy",
                                        "hamming_loss", "roc_auc", "loss"])
        XCTAssertGreaterThan(test["f1_micro"] ?? 0, 0.8)
        XCTAssertGreaterThan(test["roc_auc"] ?? 0, 0.85)
        let predictions = try lines(p, "runs/run/test_predictions.csv")
        XCTAssertEqual(predictions.first, "x1,x2,color,genres,action,comedy,drama,kind,size,labels_predicted,proba_action,proba_comedy,proba_drama")
        XCTAssertEqual(predictions.count, 41)
        let processors = try String(contentsOf: p.url("runs/run/model/processors.json"), encoding: .utf8)
        XCTAssertTrue(processors.contains("\"targets\""))
        let history = try lines(p, "runs/run/history.csv")
        XCTAssertTrue(history[0].contains("val.f1_micro"), history[0])

        // predict and evaluate through the run folder read the same layout back.
        let predictor = try Predictor(runDirectory: p.url("runs/run"))
        try predictor.predictFile(p.url("tasks_test.csv"), to: p.url("again.csv"), overwrite: false)
        XCTAssertEqual(try lines(p, "again.csv"), predictions)
        XCTAssertEqual(try predictor.evaluateFile(p.url("tasks_test.csv"))["f1_micro"], test["f1_micro"])
    }

    func testLabelSetColumnReportsUnknownLabels() throws {
        let p = try project("genres", "problem: multilabel\nmetric: subset_accuracy", ignore: ["action", "comedy", "drama", "kind", "size"])
        let (result, log) = try p.train()
        XCTAssertNotNil(result.metrics["validation"]?["subset_accuracy"])
        XCTAssertGreaterThan(result.metrics["test"]?["f1_micro"] ?? 0, 0.8)
        XCTAssertTrue(log.contains { $0.contains("'genres: western' ×1") }, log.joined(separator: "\n"))
        let predictions = try lines(p, "runs/run/test_predictions.csv")
        XCTAssertEqual(predictions.first?.hasSuffix("genres_predicted,proba_action,proba_comedy,proba_drama"), true)
        // A predicted set is the labels at P ≥ 0.5 joined by the separator.
        let cells = predictions[1].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let probabilities = cells.suffix(3).compactMap(Float.init)
        let expected = zip(["action", "comedy", "drama"], probabilities).filter { $0.1 >= 0.5 }.map(\.0).joined(separator: ";")
        XCTAssertEqual(cells[cells.count - 4], expected)
    }

    func testSeveralTasksAtOnce() throws {
        let p = try project("[kind, size, genres]",
                            "problem: {genres: multilabel}\ntrainer:\n  optimizer: {lr: 2.0e-2}\n  epochs: 25\n  batch_size: 32\n"
                                + "  callbacks: [{early_stopping: {monitor: val.size.rmse, patience: 5}}, {checkpoint: {monitor: auto}}]",
                            ignore: ["action", "comedy", "drama"])
        // The trainer section is given twice above; drop the first.
        let yaml = try String(contentsOf: p.url("pipeline.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "trainer:\n  optimizer: {lr: 2.0e-2}\n  epochs: 25\n  batch_size: 32\nproblem", with: "problem")
        try p.write("pipeline.yaml", yaml)
        let (result, _) = try p.train()
        let test = try XCTUnwrap(result.metrics["test"])
        for key in ["kind.accuracy", "kind.log_loss", "size.rmse", "size.r2", "genres.f1_micro", "genres.hamming_loss", "loss"] {
            XCTAssertNotNil(test[key], "missing \(key) in \(test.keys.sorted())")
        }
        XCTAssertGreaterThan(test["kind.accuracy"] ?? 0, 0.6)
        XCTAssertGreaterThan(test["size.r2"] ?? 0, 0.6)
        XCTAssertGreaterThan(test["genres.f1_micro"] ?? 0, 0.7)
        let header = try lines(p, "runs/run/test_predictions.csv")[0]
        XCTAssertTrue(header.hasSuffix(",kind_predicted,kind_proba_high,kind_proba_low,kind_proba_mid,size_predicted,"
                                       + "genres_predicted,genres_proba_action,genres_proba_comedy,genres_proba_drama"), header)
        let history = try lines(p, "runs/run/history.csv")[0]
        for key in ["val.loss", "val.kind.accuracy", "val.size.rmse", "val.genres.f1_micro"] {
            XCTAssertTrue(history.contains(key), history)
        }

        // A forced rerun reproduces the weights bit for bit, so every number is the same.
        let (again, _) = try p.train(run: "again", force: true)
        XCTAssertEqual(again.metrics, result.metrics)
        XCTAssertEqual(try Data(contentsOf: p.url("runs/again/model/model.safetensors")),
                       try Data(contentsOf: p.url("runs/run/model/model.safetensors")))

        // Loss weights retrain, and only train and what follows it.
        let (weighted, _) = try p.train(overrides: ["data.label_weights={size: 0.25}"], run: "weighted")
        XCTAssertEqual(weighted.stageStatus.first { $0.stage == "fit" }?.cached, true)
        XCTAssertEqual(weighted.stageStatus.first { $0.stage == "train" }?.cached, false)
        XCTAssertNotEqual(weighted.metrics["test"]?["size.rmse"], test["size.rmse"])
    }

    func testBadLabelInputFailsBeforeTrainingWithTheKey() throws {
        let missing = try project("[kind, sise]")
        var message = errorText { try missing.train() } ?? ""
        XCTAssertTrue(message.contains("pipeline.yaml:6:") && message.contains("'sise'") && message.contains("did you mean 'size'"), message)

        let nonBinary = try project("[action, kind]", "problem: multilabel", ignore: ["genres", "comedy", "drama", "size"])
        message = errorText { try nonBinary.train() } ?? ""
        XCTAssertTrue(message.contains("'kind'") && message.contains("'high'") && message.contains("must be binary"), message)
        XCTAssertFalse(nonBinary.exists("runs/run"))

        let regressionSet = try project("[kind, genres]", "problem: {genres: regression}")
        message = errorText { try regressionSet.train() } ?? ""
        XCTAssertTrue(message.contains("pipeline.yaml:13:") && message.contains("genres") && message.contains("not a number"), message)
    }
}
