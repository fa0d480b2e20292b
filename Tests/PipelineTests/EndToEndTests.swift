import Cache
import Foundation
import Spec
import XCTest
@testable import Pipeline

final class EndToEndTests: XCTestCase {
    func testTrainWritesTheRunDirectoryContract() throws {
        let p = try Project()
        try p.write("train.csv", syntheticCSV(rows: 200, seed: 1))
        try p.write("test.csv", syntheticCSV(rows: 60, seed: 2))
        try p.write("pipeline.yaml", pipelineYAML())
        let (result, _) = try p.train()

        for f in ["resolved.yaml", "lock.json", "metrics.json", "history.csv", "test_predictions.csv",
                  "model/model.safetensors", "model/model.json", "model/processors.json", "model/columns.json"] {
            XCTAssertTrue(p.exists("runs/run/\(f)"), "missing \(f)")
        }
        // metrics.json = {"validation": {...}, "test": {...}} with the multiclass default metric.
        let metrics = try JSONSerialization.jsonObject(with: Data(contentsOf: p.url("runs/run/metrics.json"))) as? [String: [String: Any]]
        XCTAssertEqual(Set(metrics?.keys.map { $0 } ?? []), ["validation", "test"])
        XCTAssertNotNil(metrics?["test"]?["accuracy"])
        XCTAssertGreaterThan(result.metrics["test"]?["accuracy"] ?? 0, 0.6)

        // The resolved pipeline writes every default and loads back to the same spec.
        let resolved = try String(contentsOf: p.url("runs/run/resolved.yaml"), encoding: .utf8)
        XCTAssertTrue(resolved.contains("weight_decay"))
        try p.write("again.yaml", resolved)
        XCTAssertEqual(try PipelineLoader.load(p.url("again.yaml")), try PipelineLoader.load(p.url("pipeline.yaml")))

        // lock.json pins the data by content and the settings that decide the numbers.
        let lock = try JSONDecoder().decode(RunLock.self, from: Data(contentsOf: p.url("runs/run/lock.json")))
        XCTAssertEqual(lock.seed, 3)
        XCTAssertEqual(lock.threads, 2)
        XCTAssertEqual(lock.data.map(\.role), ["train", "test"])
        XCTAssertEqual(lock.data.first?.sha256.count, 64)

        // Predictions: the input columns, the predicted label, one probability per class.
        let predictions = try String(contentsOf: p.url("runs/run/test_predictions.csv"), encoding: .utf8)
            .split(separator: "\n")
        XCTAssertEqual(predictions.first, "id,x1,x2,color,target,target_predicted,proba_high,proba_low,proba_mid")
        XCTAssertEqual(predictions.count, 61)

        // history.csv has one row per validation that ran.
        let history = try String(contentsOf: p.url("runs/run/history.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertTrue(history.first?.hasPrefix("epoch,step,train_loss,lr,seconds,") ?? false, "\(history.first ?? "")")
        XCTAssertGreaterThan(history.count, 1)
    }

    func testSecondRunTakesEverythingFromTheCacheAndForceReproducesBitForBit() throws {
        let p = try Project()
        try p.write("train.csv", syntheticCSV(rows: 120))
        try p.write("test.csv", syntheticCSV(rows: 40, seed: 9))
        try p.write("pipeline.yaml", pipelineYAML())
        let (first, _) = try p.train(run: "a")
        XCTAssertTrue(first.stageStatus.allSatisfy { !$0.cached })

        let (second, _) = try p.train(run: "b")
        XCTAssertTrue(second.stageStatus.allSatisfy(\.cached), "\(second.stageStatus)")
        XCTAssertEqual(first.metrics, second.metrics)

        let (forced, _) = try p.train(run: "c", force: true)
        XCTAssertTrue(forced.stageStatus.allSatisfy { !$0.cached })
        XCTAssertEqual(first.metrics, forced.metrics)
        let weightsA = try Data(contentsOf: p.url("runs/a/model/model.safetensors"))
        let weightsC = try Data(contentsOf: p.url("runs/c/model/model.safetensors"))
        XCTAssertEqual(weightsA, weightsC, "same pipeline + seed + threads must give identical weights")
        XCTAssertEqual(try Data(contentsOf: p.url("runs/a/test_predictions.csv")),
                       try Data(contentsOf: p.url("runs/c/test_predictions.csv")))
    }

    func testPlanSaysWhatRunsAndWhy() throws {
        let p = try Project()
        try p.write("train.csv", syntheticCSV(rows: 120))
        try p.write("test.csv", syntheticCSV(rows: 40, seed: 9))
        try p.write("pipeline.yaml", pipelineYAML())

        let never = try p.session().plan(try p.session().compile(threads: 2))
        XCTAssertTrue(never.render().contains("because never run"))
        try p.train()

        let cached = try p.session().plan(try p.session().compile(threads: 2))
        XCTAssertEqual(cached.toRun, [])

        // A trainer change reruns training and what reads it, nothing upstream.
        let changed = p.session(overrides: ["trainer.epochs=9"])
        let plan = try changed.plan(try changed.compile(threads: 2))
        XCTAssertEqual(plan.toRun, ["train", "evaluate.validation", "predict.validation", "evaluate.test", "predict.test"])
        XCTAssertTrue(plan.render().contains("trainer.epochs"), plan.render())
        XCTAssertTrue(plan.render().contains("8 → 9"), plan.render())

        // Changed data content reruns everything downstream of the file, and says so.
        try p.write("train.csv", syntheticCSV(rows: 121))
        let dataPlan = try p.session().plan(try p.session().compile(threads: 2))
        XCTAssertTrue(dataPlan.toRun.contains("infer"))
        XCTAssertFalse(dataPlan.toRun.contains("encode.test") && !dataPlan.toRun.contains("fit"))
        XCTAssertTrue(dataPlan.render().contains("content changed"), dataPlan.render())
    }

    func testRegressionAndBinaryRuns() throws {
        let p = try Project()
        try p.write("train.csv", syntheticCSV(rows: 200, regression: true))
        try p.write("test.csv", syntheticCSV(rows: 50, seed: 5, regression: true))
        try p.write("pipeline.yaml", pipelineYAML(extra: ""))
        let (r, _) = try p.train(run: "reg")
        XCTAssertNotNil(r.metrics["test"]?["rmse"])
        XCTAssertNotNil(r.metrics["test"]?["r2"])
        XCTAssertGreaterThan(r.metrics["test"]?["r2"] ?? -1, 0.5, "\(r.metrics)")
        let header = try String(contentsOf: p.url("runs/reg/test_predictions.csv"), encoding: .utf8).split(separator: "\n").first
        XCTAssertEqual(header, "id,x1,x2,color,target,target_predicted")

        let b = try Project()
        try b.write("train.csv", syntheticCSV(rows: 200, classes: 2))
        try b.write("test.csv", syntheticCSV(rows: 50, seed: 5, classes: 2))
        try b.write("pipeline.yaml", pipelineYAML(extra: "metric: f1\n"))
        let (bin, _) = try b.train(run: "bin")
        XCTAssertNotNil(bin.metrics["test"]?["roc_auc"])
        XCTAssertNotNil(bin.metrics["test"]?["f1"])
    }

    func testFTTransformerBackboneTrains() throws {
        let p = try Project()
        try p.write("train.csv", syntheticCSV(rows: 120))
        try p.write("pipeline.yaml", pipelineYAML(test: false))
        let (r, _) = try p.train(overrides: ["backbones.tabular={kind: ft_transformer, d_token: 16, layers: 1, heads: 2}",
                                             "trainer.epochs=3"])
        XCTAssertNotNil(r.metrics["validation"]?["accuracy"])
        XCTAssertNil(r.metrics["test"])
    }

    func testPredictAndEvaluateFromARunFolder() throws {
        let p = try Project()
        try p.write("train.csv", syntheticCSV(rows: 120))
        try p.write("test.csv", syntheticCSV(rows: 40, seed: 9))
        try p.write("pipeline.yaml", pipelineYAML())
        let (result, _) = try p.train()
        let predictor = try Predictor(runDirectory: result.runDirectory)

        // Without the label column: predictions only.
        let unlabelled = syntheticCSV(rows: 10, seed: 4).split(separator: "\n").map { line in
            line.split(separator: ",", omittingEmptySubsequences: false).dropLast().joined(separator: ",")
        }.joined(separator: "\n") + "\n"
        try p.write("new.csv", unlabelled)
        XCTAssertEqual(try predictor.predictFile(p.url("new.csv"), to: p.url("out.csv"), overwrite: false), 10)
        let out = try String(contentsOf: p.url("out.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(out.first, "id,x1,x2,color,target_predicted,proba_high,proba_low,proba_mid")
        // Never replaces a file unless asked.
        XCTAssertNotNil(errorText { try predictor.predictFile(p.url("new.csv"), to: p.url("out.csv"), overwrite: false) })
        XCTAssertNoThrow(try predictor.predictFile(p.url("new.csv"), to: p.url("out.csv"), overwrite: true))

        // Evaluate on the test file gives the numbers the run recorded for it.
        let metrics = try predictor.evaluateFile(p.url("test.csv"))
        XCTAssertEqual(metrics["accuracy"], result.metrics["test"]?["accuracy"])

        // A file without a feature column is refused with the columns named.
        try p.write("bad.csv", "id,x1,color\n1,0.5,red\n")
        let message = errorText { try predictor.predictFile(p.url("bad.csv"), to: p.url("o2.csv"), overwrite: false) }
        XCTAssertTrue(message?.contains("'x2'") ?? false, message ?? "")
        XCTAssertFalse(p.exists("o2.csv"))
    }

    func testGraphRendersEveryStage() throws {
        let p = try Project()
        try p.write("train.csv", syntheticCSV(rows: 50))
        try p.write("test.csv", syntheticCSV(rows: 20, seed: 9))
        try p.write("pipeline.yaml", pipelineYAML())
        let graph = try p.session().compile(threads: 2).graph
        let ids = graph.nodes.map(\.id)
        XCTAssertEqual(ids, ["load.train", "load.test", "infer", "split", "fit", "encode.train", "encode.validation",
                             "encode.test", "train", "evaluate.validation", "predict.validation", "evaluate.test", "predict.test"])
        let dot = graph.render(.dot)
        XCTAssertTrue(dot.hasPrefix("digraph pipeline {"))
        XCTAssertTrue(dot.contains("\"fit\" -> \"encode.train\""))
        let mermaid = graph.render(.mermaid)
        XCTAssertTrue(mermaid.contains("train --> evaluate_test"))
        XCTAssertEqual(graph.render(.text).split(separator: "\n").count, ids.count)
    }
}

final class DataSourceTests: XCTestCase {
    /// JSON Lines training data and a separate validation file.
    func testJSONLinesAndAValidationFile() throws {
        let p = try Project()
        func jsonl(_ csv: String) -> String {
            let lines = csv.split(separator: "\n")
            let header = lines[0].split(separator: ",").map(String.init)
            return lines.dropFirst().map { line -> String in
                let cells = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                let fields = zip(header, cells).map { name, cell -> String in
                    if cell == "NA" { return "\"\(name)\": null" }
                    return Double(cell) != nil ? "\"\(name)\": \(cell)" : "\"\(name)\": \"\(cell)\""
                }
                return "{" + fields.joined(separator: ", ") + "}"
            }.joined(separator: "\n") + "\n"
        }
        try p.write("train.jsonl", jsonl(syntheticCSV(rows: 120)))
        try p.write("valid.csv", syntheticCSV(rows: 40, seed: 8))
        try p.write("pipeline.yaml", """
            version: 1
            data: {train: train.jsonl, validation: valid.csv, label: target}
            backbones: {tabular: {kind: mlp, hidden: [16]}}
            trainer: {epochs: 3, batch_size: 32}
            """)
        let (r, _) = try p.train()
        XCTAssertNotNil(r.metrics["validation"]?["accuracy"])
        let graph = try p.session().compile(threads: 2).graph
        XCTAssertEqual(graph.node("encode.validation")?.inputs.first, "load.validation")
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: p.url("runs/run/model/summary.json"))) as? [String: Any]
        XCTAssertEqual(summary?["validation_rows"] as? Int, 40)
        XCTAssertEqual(summary?["train_rows"] as? Int, 120)
    }
}
