import Foundation
import XCTest
@testable import Spec

final class OverrideTests: XCTestCase {
    func load(_ flags: [String], text: String = minimalYAML) throws -> PipelineSpec {
        try PipelineLoader.load(try writeTemp(text), overrides: flags)
    }

    func testHappyPaths() throws {
        let spec = try load([
            "trainer.optimizer.lr=3e-4", "backbones.tabular.hidden=[64, 32]", "trainer.schedule.kind=linear",
            "trainer.callbacks[0].early_stopping.patience=3", "data.columns.age=ignore", "trainer.grad_clip=null",
            "seed=7", "backbones.tabular.trainable=false",
        ])
        XCTAssertEqual(spec.trainer.optimizer.lr, 3e-4)
        XCTAssertEqual(spec.trainer.schedule.kind, .linear)
        guard case .mlp(let mlp) = spec.backbones.tabular else { return XCTFail() }
        XCTAssertEqual(mlp.hidden, [64, 32])
        XCTAssertFalse(mlp.trainable)
        XCTAssertEqual(spec.trainer.callbacks[0], .earlyStopping(EarlyStoppingSpec(monitor: "auto", patience: 3, mode: .auto, minDelta: 0)))
        XCTAssertEqual(spec.trainer.callbacks.count, 2)
        XCTAssertEqual(spec.data.columns, ["age": .ignore])
        XCTAssertNil(spec.trainer.gradClip)
        XCTAssertEqual(spec.seed, 7)
        XCTAssertEqual(spec.sources.flag(of: "trainer.optimizer.lr"), "trainer.optimizer.lr=3e-4")
        XCTAssertNil(spec.sources["trainer.optimizer.lr"])

        let ft = try load(["backbones.tabular={kind: ft_transformer}", "backbones.tabular.heads=4"])
        var expected = FTTransformerSpec()
        expected.heads = 4
        XCTAssertEqual(ft.backbones.tabular, .ftTransformer(expected))
        // Later flags win; a flag path set in the file is replaced.
        let twice = try load(["trainer.epochs=3", "trainer.epochs=4"], text: minimalYAML + "trainer: {epochs: 9}\n")
        XCTAssertEqual(twice.trainer.epochs, 4)
        XCTAssertEqual(try load(["trainer.callbacks=[]"]).trainer.callbacks, [])
        XCTAssertEqual(try load(["data.validation=valid.csv"]).data.validation, .file("valid.csv"))
    }

    func testErrorsNameTheFlag() throws {
        func messages(_ flags: [String]) throws -> [String] {
            do { _ = try load(flags); return [] } catch let e as SpecErrors { return e.errors.map(\.description) }
        }
        XCTAssertEqual(try messages(["trainer.optimizer.lrr=1"]).map { $0.components(separatedBy: "\n")[0] },
                       ["--set trainer.optimizer.lrr=1: error: unknown key 'lrr' in trainer.optimizer; did you mean 'lr'?"])
        XCTAssertEqual(try messages(["trainer.epochs"]), ["--set trainer.epochs: error: expected KEY=VALUE\n    hint: e.g. --set trainer.optimizer.lr=3e-4"])
        XCTAssertEqual(try messages(["trainer.epochs=abc"]), ["--set trainer.epochs=abc: error: trainer.epochs expects an integer, found 'abc'"])
        XCTAssertEqual(try messages(["trainer..epochs=1"]).first?.hasPrefix("--set trainer..epochs=1: error: malformed key"), true)
        XCTAssertEqual(try messages(["trainer.callbacks[5].checkpoint.mode=min"]).first?.components(separatedBy: "\n")[0],
                       "--set trainer.callbacks[5].checkpoint.mode=min: error: index 5 is out of range: trainer.callbacks has 2 items")
        XCTAssertEqual(try messages(["trainer.epochs.x=1"]), ["--set trainer.epochs.x=1: error: trainer.epochs expects an integer, found a mapping"])
        XCTAssertEqual(try messages(["seed.x=1"], ).first?.components(separatedBy: "\n")[0],
                       "--set seed.x=1: error: seed expects a non-negative integer, found a mapping")
        XCTAssertEqual(try messages(["trainr.epochs=1"]).first?.components(separatedBy: "\n")[0],
                       "--set trainr.epochs=1: error: unknown key 'trainr' in the pipeline file; did you mean 'trainer'?")
        XCTAssertEqual(try messages(["trainer.optimizer.lr=[1"]).first?.hasPrefix("--set trainer.optimizer.lr=[1: error: invalid YAML"), true)
        XCTAssertEqual(try messages(["extends=x.yaml"]).count, 1)
    }

    func testSetBeforeAndAfterExtends() throws {
        let spec = try PipelineLoader.load(fixtures.appendingPathComponent("extends/child.yaml"), overrides: ["trainer.epochs=2", "data.train=elsewhere.csv"])
        XCTAssertEqual(spec.trainer.epochs, 2)
        XCTAssertEqual(spec.resolve(spec.data.train, declaredAt: "data.train"),
                       URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("elsewhere.csv").standardizedFileURL)
    }
}
