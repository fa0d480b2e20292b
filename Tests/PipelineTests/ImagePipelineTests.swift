import Cache
import Foundation
import XCTest
@testable import Pipeline

/// Image columns end to end on a tiny random ResNet (Tests/Fixtures/pipeline/tiny-resnet) and
/// 16×16 colour swatches whose tone is warm or cool (Tests/Fixtures/pipeline/swatches), both from
/// scripts/fixtures/make_pipeline_image_fixture.py.
final class ImagePipelineTests: XCTestCase {
    static let fixtures: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/pipeline")

    /// A project with the swatches under `data/` and the checkpoint file under `ckpt/`.
    func project(_ image: String = "{checkpoint: ckpt/model.safetensors, architecture: null, size: 32, trainable: frozen}",
                 label: String = "tone", columns: String = "{warmth: ignore}", processors: String = "{}",
                 epochs: Int = 15, extra: String = "") throws -> Project {
        let p = try Project()
        let fm = FileManager.default
        try fm.copyItem(at: Self.fixtures.appendingPathComponent("swatches"), to: p.url("data"))
        try fm.createDirectory(at: p.url("ckpt"), withIntermediateDirectories: true)
        try fm.copyItem(at: Self.fixtures.appendingPathComponent("tiny-resnet/model.safetensors"), to: p.url("ckpt/model.safetensors"))
        try p.write("pipeline.yaml", """
            version: 1
            name: swatches
            seed: 3
            data:
              train: data/train.csv
              test: data/test.csv
              label: \(label)
              columns: \(columns)
            processors:
              image: \(processors)
            backbones:
              tabular: {kind: mlp, hidden: [8]}
              image: \(image)
            trainer:
              optimizer: {lr: 1.0e-2}
              epochs: \(epochs)
              batch_size: 16
              callbacks: []
            \(extra)
            """)
        return p
    }

    func testFrozenBackboneCachesFeaturesAndLearnsTheTone() throws {
        let p = try project()
        let (first, log) = try p.train(run: "a")
        XCTAssertGreaterThanOrEqual(first.metrics["test"]?["accuracy"] ?? 0, 0.9, log.joined(separator: "\n"))
        let ran = first.stageStatus.filter { !$0.cached }.map(\.stage)
        for stage in ["pixels.train", "pixels.validation", "pixels.test", "embed_image.train", "embed_image.validation", "embed_image.test"] {
            XCTAssertTrue(ran.contains(stage), "\(stage) should have run: \(ran)")
        }
        XCTAssertTrue(log.contains { $0.contains("images: train:") && $0.contains("decoded") }, log.joined(separator: "\n"))

        // A change of the head's settings reuses the features; the pixels under them are not
        // even read.
        let (second, _) = try p.train(overrides: ["trainer.optimizer.lr=5.0e-3"], run: "b")
        let cached = Set(second.stageStatus.filter(\.cached).map(\.stage))
        XCTAssertTrue(cached.isSuperset(of: ["embed_image.train", "embed_image.validation", "embed_image.test"]), "\(second.stageStatus)")
        XCTAssertFalse(second.stageStatus.contains { $0.stage.hasPrefix("pixels") && !$0.cached }, "\(second.stageStatus)")
        XCTAssertFalse(cached.contains("train"))

        let lock = try JSONDecoder().decode(RunLock.self, from: Data(contentsOf: p.url("runs/a/lock.json")))
        XCTAssertEqual(lock.checkpoints.map(\.role), ["image"])
        XCTAssertFalse(p.exists("runs/a/model/image"), "a frozen backbone is read from its checkpoint, not copied")

        // The run predicts a file on its own, with the same numbers as the pipeline's scoring.
        let predictor = try Predictor(runDirectory: p.url("runs/a"))
        let metrics = try predictor.evaluateFile(p.url("data/test.csv"))
        XCTAssertEqual(metrics["accuracy"] ?? -1, first.metrics["test"]?["accuracy"] ?? -2, accuracy: 1e-9)
        XCTAssertEqual(metrics["log_loss"] ?? -1, first.metrics["test"]?["log_loss"] ?? -2, accuracy: 1e-5)
    }

    func testChangingAnImageFileReruns() throws {
        let p = try project(epochs: 1)
        try p.train(run: "a")
        // Another image under the same name: the CSV is unchanged, the pixels are not.
        try FileManager.default.removeItem(at: p.url("data/images/000.png"))
        try FileManager.default.copyItem(at: p.url("data/images/001.png"), to: p.url("data/images/000.png"))
        let session = p.session()
        let plan = try session.plan(try session.compile(threads: 2))
        XCTAssertTrue(plan.toRun.contains("pixels.train"), plan.render())
        XCTAssertTrue(plan.toRun.contains("train"), plan.render())
    }

    func testFineTuningAugmentsIsDeterministicAndSavesTheBackbone() throws {
        let p = try project("{checkpoint: ckpt/model.safetensors, size: 32, trainable: full}", epochs: 2)
        let session = p.session()
        let plan = try session.plan(try session.compile(threads: 2))
        XCTAssertFalse(plan.lines.contains { $0.node.id.hasPrefix("embed_image") })
        XCTAssertTrue(plan.render().contains("trivial_augment runs on every training step and is never cached"), plan.render())

        let (a, log) = try p.train(run: "a")
        XCTAssertTrue(log.contains { $0.contains("parameters:") }, log.joined(separator: "\n"))
        let (b, _) = try p.train(run: "b", force: true)
        XCTAssertEqual(a.metrics, b.metrics)
        XCTAssertEqual(try Data(contentsOf: p.url("runs/a/model/model.safetensors")),
                       try Data(contentsOf: p.url("runs/b/model/model.safetensors")))
        // The fine-tuned backbone is in the run's weights and the run predicts without the checkpoint.
        try FileManager.default.removeItem(at: p.url("ckpt"))
        let metrics = try Predictor(runDirectory: p.url("runs/a")).evaluateFile(p.url("data/test.csv"))
        XCTAssertEqual(metrics["accuracy"] ?? -1, a.metrics["test"]?["accuracy"] ?? -2, accuracy: 1e-9)
    }

    func testRestoringTheBestEpochRestoresBatchNormStatisticsToo() throws {
        // Fine-tuning changes BatchNorm's running statistics; the restored best epoch must score
        // on validation exactly as it did during training.
        let p = try project("{checkpoint: ckpt/model.safetensors, size: 32, trainable: full}", epochs: 3)
        let (result, log) = try p.train(overrides: ["trainer.callbacks=[{checkpoint: {monitor: val.loss}}]",
                                                    "trainer.optimizer.lr=5.0e-2"])
        struct Summary: Decodable { let best_value: Double? }
        let summary = try JSONDecoder().decode(Summary.self, from: Data(contentsOf: p.url("runs/run/model/summary.json")))
        let best = try XCTUnwrap(summary.best_value, log.joined(separator: "\n"))
        XCTAssertEqual(result.metrics["validation"]?["loss"] ?? -1, best, accuracy: 1e-6 * max(1, abs(best)), log.joined(separator: "\n"))
    }

    func testTopBlocksTrainsOnlyTheTop() throws {
        let p = try project("{checkpoint: ckpt/model.safetensors, size: 32, trainable: {top_blocks: 1}}", epochs: 1)
        let (_, log) = try p.train()
        let line = log.first { $0.contains("parameters:") } ?? ""
        // The top basic block of the 16-wide stage (2 convs of 16·16·9 + norms) and the head train.
        XCTAssertTrue(line.contains("trainable of"), line)
        let p2 = try project("{checkpoint: ckpt/model.safetensors, size: 32, trainable: {top_blocks: 9}}", epochs: 1)
        let message = errorText { try p2.train() } ?? ""
        XCTAssertTrue(message.contains("has 4 blocks"), message)
    }

    func testImageRegression() throws {
        // The random backbone's features carry the colour; a linear head reads the warmth off them.
        let p = try project(label: "warmth", columns: "{tone: ignore}", epochs: 60)
        let (result, log) = try p.train(overrides: ["fusion.hidden=[]", "trainer.optimizer.lr=3.0e-2"])
        XCTAssertGreaterThan(result.metrics["test"]?["r2"] ?? -1, 0.6, log.joined(separator: "\n"))
    }

    func testMissingImagesFollowThePolicy() throws {
        // Row 3 (line 4) names a file that does not exist; row 5 is empty.
        func damage(_ p: Project) throws {
            var lines = try String(contentsOf: p.url("data/train.csv"), encoding: .utf8).split(separator: "\n").map(String.init)
            lines[3] = lines[3].replacingOccurrences(of: "images/002.png", with: "images/nowhere.png")
            lines[5] = lines[5].replacingOccurrences(of: "images/004.png", with: "")
            try p.write("data/train.csv", lines.joined(separator: "\n") + "\n")
        }
        let strict = try project(processors: "{missing: error}", epochs: 1)
        try damage(strict)
        let message = errorText { try strict.train() } ?? ""
        XCTAssertTrue(message.contains("train.csv:4") && message.contains("photo") && message.contains("nowhere.png"), message)
        XCTAssertTrue(message.contains("processors.image.missing"), message)

        let zero = try project(processors: "{missing: zero}", epochs: 1)
        try damage(zero)
        let (_, log) = try zero.train()
        XCTAssertTrue(log.contains { $0.contains("1 empty cell") && $0.contains("1 unreadable") }, log.joined(separator: "\n"))

        let skip = try project(processors: "{missing: skip_row}", epochs: 1)
        try damage(skip)
        let (_, skipLog) = try skip.train()
        XCTAssertTrue(skipLog.contains { $0.contains("left out") }, skipLog.joined(separator: "\n"))
        // A test row without an image gets no prediction.
        var test = try String(contentsOf: skip.url("data/test.csv"), encoding: .utf8).split(separator: "\n").map(String.init)
        test[1] = test[1].replacingOccurrences(of: "images/072.png", with: "images/nowhere.png")
        try skip.write("data/test.csv", test.joined(separator: "\n") + "\n")
        try skip.train(run: "again")
        let predictions = try String(contentsOf: skip.url("runs/again/test_predictions.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertTrue(predictions[1].hasPrefix("images/nowhere.png,") && predictions[1].hasSuffix(",,"), String(predictions[1]))
        XCTAssertFalse(predictions[2].hasSuffix(",,"), String(predictions[2]))
    }

    func testEveryKindOfBrokenImageIsAnErrorNamingTheRow() throws {
        // The decoders' bad fixtures (Tests/Fixtures/images), one at a time in row 2 (line 3).
        let bad = Self.fixtures.deletingLastPathComponent().appendingPathComponent("images")
        let cases: [(file: String, says: String)] = [
            ("bad_truncated.png", "truncated"), ("bad_truncated.jpg", "truncated"), ("bad_empty.jpg", "empty"),
            ("bad_text.jpg", "text"), ("bad_huge.png", "max_pixels"), ("bad_huge.jpg", "max_pixels"),
        ]
        for (file, says) in cases {
            let p = try project(processors: "{missing: error}", epochs: 1)
            try FileManager.default.copyItem(at: bad.appendingPathComponent(file), to: p.url("data/images/\(file)"))
            var text = try String(contentsOf: p.url("data/train.csv"), encoding: .utf8)
            text = text.replacingOccurrences(of: "images/001.png", with: "images/\(file)")
            try p.write("data/train.csv", text)
            let message = errorText { try p.train() } ?? ""
            XCTAssertTrue(message.contains("train.csv:3") && message.contains(file), "\(file): \(message)")
            XCTAssertTrue(message.lowercased().contains(says), "\(file) should say \(says): \(message)")
            XCTAssertFalse(p.exists("runs/run"))
        }
    }

    func testPathsOutsideTheDataFolderAreRefusedUnlessAllowed() throws {
        let p = try project(processors: "{missing: error}", epochs: 1)
        try FileManager.default.copyItem(at: p.url("data/images/000.png"), to: p.url("outside.png"))
        var text = try String(contentsOf: p.url("data/train.csv"), encoding: .utf8)
        text = text.replacingOccurrences(of: "images/000.png", with: "../outside.png")
        try p.write("data/train.csv", text)
        let message = errorText { try p.train() } ?? ""
        XCTAssertTrue(message.contains("allow_outside"), message)
        let allowed = try project(processors: "{missing: error, allow_outside: true}", epochs: 1)
        try FileManager.default.copyItem(at: allowed.url("data/images/000.png"), to: allowed.url("outside.png"))
        try allowed.write("data/train.csv", text)
        XCTAssertNoThrow(try allowed.train())
    }

    func testBase64AndSeveralImagesPerCell() throws {
        let p = try project(epochs: 1)
        var lines = try String(contentsOf: p.url("data/train.csv"), encoding: .utf8).split(separator: "\n").map(String.init)
        let bytes = try Data(contentsOf: p.url("data/images/000.png"))
        // A data URI holds a comma, so the CSV field is quoted.
        lines[1] = lines[1].replacingOccurrences(of: "images/000.png", with: "\"data:image/png;base64,\(bytes.base64EncodedString())\"")
        lines[2] = lines[2].replacingOccurrences(of: "images/001.png", with: "images/001.png;images/003.png")
        try p.write("data/train.csv", lines.joined(separator: "\n") + "\n")
        let (result, log) = try p.train()
        XCTAssertNotNil(result.metrics["test"], log.joined(separator: "\n"))
        XCTAssertTrue(log.contains { $0.contains("images: train:") && !$0.contains("unreadable") }, log.joined(separator: "\n"))
    }

    func testImageColumnWithoutAnImageBackboneSaysHowToFixIt() throws {
        let p = try project("null", epochs: 1)
        let message = errorText { try p.train() } ?? ""
        XCTAssertTrue(message.contains("column 'photo' holds images") && message.contains("backbones"), message)
    }

    func testBadSettingsAreErrorsAtTheirLines() throws {
        let p = try project(processors: "{val_transforms: [resize_shorter_side, trivial_augment]}", epochs: 1)
        let message = errorText { try p.train() } ?? ""
        XCTAssertTrue(message.contains("pipeline.yaml:") && message.contains("random"), message)
        let q = try project(processors: "{train_transforms: [resize_shorter_side, squish]}", epochs: 1)
        let unknown = errorText { try q.train() } ?? ""
        XCTAssertTrue(unknown.contains("squish") && unknown.contains("center_crop"), unknown)
        let r = try project("{checkpoint: ckpt/model.safetensors, architecture: resnet19}", epochs: 1)
        let arch = errorText { try r.train() } ?? ""
        XCTAssertTrue(arch.contains("resnet19") && arch.contains("resnet18"), arch)
    }
}
