import Foundation
import XCTest
import Training
@testable import Spec

final class LoaderTests: XCTestCase {
    func testMinimalFileHasEveryDefault() throws {
        let spec = try PipelineLoader.load(fixtures.appendingPathComponent("minimal.yaml"))
        XCTAssertEqual(spec.version, 1)
        XCTAssertEqual(spec.name, "minimal")
        XCTAssertEqual(spec.seed, 0)
        XCTAssertEqual(spec.data, DataSpec(train: "train.csv", label: "target"))
        XCTAssertEqual(spec.data.validation, .holdout(fraction: 0.2, stratify: true))
        XCTAssertEqual(spec.data.missingValues, ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"])
        XCTAssertEqual(spec.problem, .auto)
        XCTAssertNil(spec.metric)
        XCTAssertEqual(spec.processors, ProcessorsSpec())
        XCTAssertEqual(spec.backbones.tabular, .mlp(MLPBackboneSpec(hidden: [128, 128], dropout: 0.1, activation: .relu,
                                                                    embeddingDim: nil, trainable: true, checkpoint: nil)))
        XCTAssertEqual(spec.fusion, .mlp(FusionMLPSpec(hidden: [128], activation: .leaky_relu, dropout: 0.1, adaptWidth: .max,
                                                        auxLossWeight: nil, modalityDropout: 0)))
        XCTAssertEqual(spec.peft, PEFTSpec())
        XCTAssertNil(spec.preset)
        XCTAssertNil(spec.presetReport)
        let t = spec.trainer
        XCTAssertEqual(t.optimizer, OptimizerSpec(kind: .adamw, lr: 1e-3, weightDecay: 1e-4, betas: [0.9, 0.999], eps: 1e-8, momentum: 0.9, nesterov: false))
        XCTAssertEqual(t.optimizer.lrChoice, .layerwise_decay)
        XCTAssertEqual(t.optimizer.lrDecay, 0.9)
        XCTAssertEqual(t.gradClipAlgorithm, .norm)
        XCTAssertEqual(t.accumulate, 1)
        XCTAssertEqual(t.valCheckInterval, 1.0)
        XCTAssertNil(t.timeLimit)
        XCTAssertEqual(t.loss, LossSpec())
        XCTAssertNil(t.mixup)
        XCTAssertEqual(t.schedule, ScheduleSpec(kind: .cosine, warmup: 0.1, power: 1, minLRRatio: 0))
        XCTAssertEqual(t.epochs, 30)
        XCTAssertEqual(t.batchSize, 64)
        XCTAssertEqual(t.gradClip, 1.0)
        XCTAssertEqual(t.callbacks, [.earlyStopping(EarlyStoppingSpec(monitor: "auto", patience: 10, mode: .auto, minDelta: 0)),
                                     .checkpoint(CheckpointSpec(monitor: "auto", mode: .auto, topK: 3, average: .greedy_soup))])
        XCTAssertEqual(spec.sources["data.label"], SourceLocation(file: spec.file.relativePath, line: 4, column: 3))
        XCTAssertNil(spec.sources["trainer.epochs"])
    }

    func testFullFile() throws {
        let spec = try PipelineLoader.load(fixtures.appendingPathComponent("full.yaml"))
        XCTAssertEqual(spec.name, "full-example")
        XCTAssertEqual(spec.seed, 42)
        XCTAssertEqual(spec.data.validation, .holdout(fraction: 0.25, stratify: false))
        XCTAssertEqual(spec.data.columns, ["age": .numeric, "id": .ignore])
        XCTAssertEqual(spec.data.missingValues, ["", "?"])
        XCTAssertEqual(spec.problem, .fixed(.binary))
        XCTAssertEqual(spec.metric, .rocAUC)
        XCTAssertEqual(spec.backbones.tabular, .ftTransformer(FTTransformerSpec(dToken: 64, layers: 2, heads: 4, attentionDropout: 0.1, ffnDropout: 0.05,
                                                                                residualDropout: 0, ffnFactor: 2, trainable: false, checkpoint: "weights/ft.safetensors")))
        XCTAssertEqual(spec.trainer.optimizer.kind, .sgd)
        XCTAssertEqual(spec.trainer.optimizer.momentum, 0.8)
        XCTAssertTrue(spec.trainer.optimizer.nesterov)
        XCTAssertEqual(spec.trainer.schedule.power, 2)
        XCTAssertNil(spec.trainer.gradClip)
        XCTAssertEqual(spec.trainer.callbacks, [.earlyStopping(EarlyStoppingSpec(monitor: "val.roc_auc", patience: 3, mode: .max, minDelta: 0.001)),
                                                .checkpoint(CheckpointSpec(monitor: "val.loss", mode: .auto))])
        XCTAssertEqual(spec.sources["trainer.callbacks[0].early_stopping.patience"]?.line, 52)
        XCTAssertEqual(spec.sources["data.columns.age"]?.line, 11)
        XCTAssertEqual(spec.resolve(spec.data.train, declaredAt: "data.train"), fixtures.appendingPathComponent("data/train.csv").standardizedFileURL)
        XCTAssertEqual(spec.resolve("/abs/x.csv", declaredAt: "data.train").path, "/abs/x.csv")
    }

    func testResolvedYAMLRoundTrips() throws {
        for name in ["minimal.yaml", "full.yaml", "extends/child.yaml"] {
            let url = fixtures.appendingPathComponent(name)
            let spec = try PipelineLoader.load(url)
            let text = spec.resolvedYAML()
            XCTAssertTrue(text.hasPrefix("# resolved by runpipe — every default written out\n"))
            let again = try PipelineLoader.load(yaml: text, file: url)
            XCTAssertEqual(again, spec, text)
            XCTAssertEqual(again.resolvedYAML(), text)
        }
        let minimal = try PipelineLoader.load(fixtures.appendingPathComponent("minimal.yaml")).resolvedYAML()
        XCTAssertTrue(minimal.contains("  missing_values: [\"\", NA, N/A, \"NaN\", \"nan\", \"null\", \"NULL\", \"None\"]"), minimal)
        XCTAssertTrue(minimal.contains("    - early_stopping:\n        monitor: auto\n        patience: 10"), minimal)
        XCTAssertFalse(minimal.contains("momentum"), "sgd-only keys are not written for adamw")
    }

    func testCodableIsDeterministicAndRoundTrips() throws {
        let spec = try PipelineLoader.load(fixtures.appendingPathComponent("full.yaml"))
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let a = try enc.encode(spec), b = try enc.encode(spec)
        XCTAssertEqual(a, b)
        let json = String(decoding: a, as: UTF8.self)
        XCTAssertTrue(json.contains("\"batch_size\":128"), json)
        XCTAssertFalse(json.contains("sources"))
        XCTAssertEqual(try JSONDecoder().decode(PipelineSpec.self, from: a), spec)
        let trainer = try enc.encode(spec.trainer)
        XCTAssertEqual(try JSONDecoder().decode(TrainerSpec.self, from: trainer), spec.trainer)
        XCTAssertThrowsError(try JSONDecoder().decode(OptimizerSpec.self, from: Data(#"{"lr": -1}"#.utf8)))
    }

    func testExtendsMergesAndResolvesRelativeToDeclaringFile() throws {
        let url = fixtures.appendingPathComponent("extends/child.yaml")
        let spec = try PipelineLoader.load(url)
        XCTAssertEqual(spec.name, "child")
        XCTAssertEqual(spec.trainer.epochs, 10)
        XCTAssertEqual(spec.trainer.optimizer.kind, .adam)
        XCTAssertEqual(spec.trainer.optimizer.lr, 0.002)
        XCTAssertEqual(spec.trainer.callbacks, [])
        XCTAssertEqual(spec.data.columns, ["age": .numeric, "id": .ignore])
        XCTAssertEqual(spec.resolve(spec.data.train, declaredAt: "data.train"),
                       fixtures.appendingPathComponent("extends/data/train.csv").standardizedFileURL)
        XCTAssertEqual(spec.resolve(spec.data.test ?? "", declaredAt: "data.test"),
                       fixtures.appendingPathComponent("extends/data/test.csv").standardizedFileURL)
        XCTAssertEqual(spec.sources.declaringFile(of: "data.train"), fixtures.appendingPathComponent("extends/shared/base.yaml").standardizedFileURL)
        XCTAssertEqual(spec.sources["trainer.epochs"]?.line, 8)
        XCTAssertTrue(spec.sources["trainer.epochs"]?.file.hasSuffix("extends/shared/base.yaml") ?? false)
        XCTAssertEqual(spec.sources["trainer.optimizer.lr"]?.line, 8)
        XCTAssertTrue(spec.sources["trainer.optimizer.lr"]?.file.hasSuffix("extends/child.yaml") ?? false)
    }

    func testExtendsCycle() throws {
        let url = fixtures.appendingPathComponent("extends/cycle_a.yaml")
        XCTAssertThrowsError(try PipelineLoader.load(url)) { error in
            guard let e = (error as? SpecErrors)?.errors else { return XCTFail("\(error)") }
            XCTAssertEqual(e.count, 1)
            XCTAssertEqual(e[0].location?.line, 2)
            XCTAssertTrue(e[0].location?.file.hasSuffix("cycle_b.yaml") ?? false)
            XCTAssertTrue(e[0].message.hasSuffix("cycle_a.yaml → \(url.relativePath.replacingOccurrences(of: "cycle_a", with: "cycle_b")) → \(url.relativePath)"), e[0].message)
        }
    }

    func testExtendsWithKindChangeReplacesBackbone() throws {
        let url = try writeTemp("""
        extends: base.yaml
        backbones:
          tabular: {kind: ft_transformer, heads: 4}
        """, extra: ["base.yaml": minimalYAML + "backbones:\n  tabular: {kind: mlp, hidden: [8]}\n"])
        let spec = try PipelineLoader.load(url)
        var ft = FTTransformerSpec()
        ft.heads = 4
        XCTAssertEqual(spec.backbones.tabular, .ftTransformer(ft))
    }

    func testErrorRendering() throws {
        let url = try writeTemp(minimalYAML + "trainer:\n  optimizer:\n    lrr: 1\n")
        XCTAssertThrowsError(try PipelineLoader.load(url)) { error in
            let text = "\(error)"
            XCTAssertEqual(text, "\(url.relativePath):7:5: error: unknown key 'lrr' in trainer.optimizer; did you mean 'lr'?\n"
                           + "    hint: known keys: kind, lr, weight_decay, betas, eps, momentum, nesterov, lr_choice, lr_decay, lr_mult")
        }
    }

    func testSeveralErrorsAtOnceSorted() throws {
        let e = try errors("""
        version: 2
        data:
          train: train.csv
          lable: target
        trainer:
          epochs: 0
          batch_size: abc
          optimizer: {kind: adamx, lr: -1}
        fusion:
          dropout: 1.0
        """)
        XCTAssertEqual(brief(e), [
            "1:10 unsupported version 2; this runpipe reads version 1",
            "3:3 missing required key 'label' in data",
            "4:3 unknown key 'lable' in data; did you mean 'label'?",
            "6:11 trainer.epochs must be in 1...100000, found 0",
            "7:15 trainer.batch_size expects an integer, found 'abc'",
            "8:21 unknown value 'adamx' for trainer.optimizer.kind; did you mean 'adamw'?",
            "8:32 trainer.optimizer.lr must be > 0, found -1",
            "10:12 fusion.dropout must be in [0, 1), found 1.0",
        ])
        XCTAssertEqual(e[1].hint, "add `label: target` under data")
    }

    func testDuplicateKeysAndSyntaxErrors() throws {
        let dup = try errors(minimalYAML + "seed: 1\nseed: 2\n")
        XCTAssertEqual(brief(dup), ["5:1 duplicate key 'seed' (set again at line 6)"])
        let syntax = try errors("version: 1\ndata:\n  train: [a, b\n")
        XCTAssertEqual(syntax.count, 1)
        XCTAssertTrue(syntax[0].message.hasPrefix("invalid YAML"), syntax[0].message)
        XCTAssertEqual(syntax[0].location?.line, 4)
        let empty = try errors("")
        XCTAssertEqual(empty.count, 1)
        XCTAssertEqual(empty.first?.location?.line, 1)
        XCTAssertTrue(empty.first?.message.hasSuffix("is empty") ?? false)
    }

    func testMissingTopLevelKeysAtFileStart() throws {
        XCTAssertEqual(brief(try errors("seed: 3\n")), [
            "1:1 missing required key 'version' in the pipeline file",
            "1:1 missing required key 'data' in the pipeline file",
        ])
    }

    func testCrossFieldErrors() throws {
        XCTAssertEqual(brief(try errors(minimalYAML + """
        problem: regression
        metric: accuracy
        trainer:
          callbacks:
            - early_stopping: {monitor: val.roc_auc}
            - checkpoint: {monitor: val.rmse, mode: max}

        """)), [
            "6:1 metric 'accuracy' does not apply to problem 'regression'",
            "9:24 monitor 'val.roc_auc' is not computed for problem 'regression'",
            "10:20 monitor 'val.rmse' and metric 'accuracy' belong to different problem types",
        ])
        XCTAssertEqual(brief(try errors(minimalYAML + "trainer:\n  callbacks:\n    - early_stopping: {monitor: val.accuracy, mode: min}\n")),
                       ["7:47 mode: min contradicts monitor val.accuracy, where higher is better"])
        XCTAssertEqual(brief(try errors(minimalYAML + "metric: accuracy\ntrainer:\n  callbacks: [{checkpoint: {monitor: val.r2}}]\n")),
                       ["7:29 monitor 'val.r2' and metric 'accuracy' belong to different problem types"])
        XCTAssertEqual(brief(try errors(minimalYAML + "trainer:\n  optimizer: {momentum: 0.5, nesterov: true}\n")), [
            "6:15 'momentum' applies only with kind: sgd",
            "6:30 'nesterov' applies only with kind: sgd",
        ])
        XCTAssertEqual(brief(try errors(minimalYAML + "backbones:\n  tabular: {kind: ft_transformer, d_token: 64, heads: 5}\n")),
                       ["6:48 heads (5) must divide d_token (64)"])
        XCTAssertEqual(brief(try errors(minimalYAML.replacingOccurrences(of: "  label", with: "  test: ./train.csv\n  label"))),
                       ["4:3 data.test is the same file as data.train (train.csv)"])
        XCTAssertEqual(brief(try errors(minimalYAML + "metric: acuracy\n")),
                       ["5:9 unknown metric 'acuracy' for metric; did you mean 'accuracy'?"])
    }

    func testPipelinesFolderFilesDeclareSchemaAndLoad() throws {
        let folder = packageRoot.appendingPathComponent("pipelines")
        guard let walker = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil) else { return }
        for case let url as URL in walker where url.pathExtension == "yaml" {
            let rel = url.standardizedFileURL.path.dropFirst(folder.standardizedFileURL.path.count + 1)
            let depth = rel.split(separator: "/").count - 1
            let expected = "# yaml-language-server: $schema=" + String(repeating: "../", count: depth + 1) + "schemas/pipeline.schema.json"
            let text = try String(contentsOf: url, encoding: .utf8)
            XCTAssertEqual(text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init), expected, "\(url.path)")
            XCTAssertNoThrow(try PipelineLoader.load(url), "\(url.path)")
        }
    }
}
