import Foundation
import XCTest
@testable import Spec

/// The keys issue #6 added: `fusion` kinds, `peft`, the trainer recipe, the new callbacks, presets.
final class FusionPEFTPresetTests: XCTestCase {
    func testFusionKinds() throws {
        let url = try writeTemp(minimalYAML + "fusion: {kind: transformer, adapt_width: min, heads: 4}\n")
        let spec = try PipelineLoader.load(url)
        guard case .transformer(let t) = spec.fusion else { return XCTFail("expected a transformer fusion, got \(spec.fusion)") }
        XCTAssertEqual(t.adaptWidth, .min)
        XCTAssertEqual(t.blocks, 3)
        XCTAssertEqual(t.ffnWidth, 192)
        XCTAssertEqual(t.attentionDropout, 0.2)
        // Round trip through the resolved YAML.
        let again = try PipelineLoader.load(yaml: spec.resolvedYAML(), file: url)
        XCTAssertEqual(again, spec)
        XCTAssertEqual(brief(try errors(minimalYAML + "fusion: {kind: transformer, hidden: [64]}\n")).first,
                       "5:29 unknown key 'hidden' in fusion (kind: transformer)")
        XCTAssertEqual(brief(try errors(minimalYAML + "fusion: {aux_loss_weight: -1}\n")),
                       ["5:27 fusion.aux_loss_weight must be ≥ 0, found -1"])
    }

    func testPEFTKeysApplyOnlyToTheirMethods() throws {
        let spec = try PipelineLoader.load(try writeTemp(minimalYAML + "peft: {method: lora, rank: 4, alpha: 16, targets: [query, '^v$']}\n"))
        XCTAssertEqual(spec.peft, PEFTSpec(method: .lora, rank: 4, alpha: 16, dropout: 0, targets: ["query", "^v$"], feedforward: nil))
        XCTAssertEqual(brief(try errors(minimalYAML + "peft: {method: bit_fit, rank: 4}\n")),
                       ["5:25 'rank' applies only with a LoRA method"])
        XCTAssertEqual(brief(try errors(minimalYAML + "peft: {method: ia3, targets: ['(query']}\n")),
                       ["5:31 '(query' is not a valid regular expression"])
        XCTAssertEqual(brief(try errors(minimalYAML + "peft: {method: loora}\n")),
                       ["5:16 unknown value 'loora' for peft.method; did you mean 'lora'?"])
    }

    func testTrainerRecipeAndCallbacks() throws {
        let yaml = minimalYAML + """
        trainer:
          optimizer: {lr_choice: two_stages, lr_mult: 10}
          grad_clip_algorithm: value
          accumulate: 4
          val_check_interval: 0.5
          time_limit: 60
          label_smoothing: 0.1
          loss: {kind: focal, gamma: 1.5, alpha: [1, 2]}
          callbacks:
            - checkpoint: {top_k: 5, average: uniform_soup}
            - lr_monitor: {}
            - csv_logger: {path: 'out/{name}.csv'}
            - progress: {style: lines}

        """
        let t = try PipelineLoader.load(try writeTemp(yaml)).trainer
        XCTAssertEqual(t.optimizer.lrChoice, .two_stages)
        XCTAssertEqual(t.optimizer.lrMult, 10)
        XCTAssertEqual(t.gradClipAlgorithm, .value)
        XCTAssertEqual(t.accumulate, 4)
        XCTAssertEqual(t.valCheckInterval, 0.5)
        XCTAssertEqual(t.timeLimit, 60)
        XCTAssertEqual(t.labelSmoothing, 0.1)
        XCTAssertEqual(t.loss, LossSpec(kind: .focal, gamma: 1.5, alpha: [1, 2], delta: 1))
        XCTAssertEqual(t.callbacks, [.checkpoint(CheckpointSpec(monitor: "auto", mode: .auto, topK: 5, average: .uniform_soup)),
                                     .lrMonitor(LRMonitorSpec()), .csvLogger(CSVLoggerSpec(path: "out/{name}.csv")),
                                     .progress(ProgressSpec(style: .lines))])
        XCTAssertEqual(brief(try errors(minimalYAML + "trainer: {optimizer: {lr_mult: 2}}\n")),
                       ["5:23 'lr_mult' applies only with lr_choice: two_stages"])
        XCTAssertEqual(brief(try errors(minimalYAML + "trainer: {mixup: {}, loss: {kind: focal}}\n")),
                       ["5:11 mixup trains on mixed (soft) targets, which only the cross-entropy loss takes; loss.kind is focal"])
        XCTAssertEqual(brief(try errors(minimalYAML + "trainer: {callbacks: [checkpoint, checkpoint]}\n")),
                       ["5:35 the checkpoint callback is listed twice"])
        XCTAssertEqual(brief(try errors(minimalYAML + "trainer: {val_check_interval: 0}\n")),
                       ["5:31 trainer.val_check_interval must be in (0, 1], found 0"])
    }

    func testPresetSitsUnderTheFilesOwnValues() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("preset-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("models/all-MiniLM-L6-v2"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("pipelines"), withIntermediateDirectories: true)
        let file = root.appendingPathComponent("pipelines/p.yaml")
        try (minimalYAML + "preset: high_quality\ntrainer: {optimizer: {lr: 3.0e-4}}\n").write(to: file, atomically: true, encoding: .utf8)
        let spec = try PipelineLoader.load(file)
        XCTAssertEqual(spec.preset, .high_quality)
        // mpnet is missing, so the text backbone falls back to MiniLM; no image checkpoint at all.
        XCTAssertEqual(spec.backbones.text?.checkpoint, "../models/all-MiniLM-L6-v2")
        XCTAssertEqual(spec.backbones.text?.maxLength, 256)
        XCTAssertNil(spec.backbones.image)
        XCTAssertEqual(spec.backbones.tabular.kind, "ft_transformer")
        XCTAssertEqual(spec.trainer.optimizer.lr, 3e-4, "the file's own value wins")
        XCTAssertEqual(spec.trainer.optimizer.weightDecay, 1e-3)
        XCTAssertEqual(spec.trainer.valCheckInterval, 0.5)
        XCTAssertEqual(spec.trainer.accumulate, 4)
        // The preset's values point at the `preset:` line.
        XCTAssertEqual(spec.sources["trainer.accumulate"]?.line, 5)
        XCTAssertEqual(spec.resolve(spec.backbones.text!.checkpoint, declaredAt: "backbones.text.checkpoint").standardizedFileURL.path,
                       root.appendingPathComponent("models/all-MiniLM-L6-v2").standardizedFileURL.path)
        let report = try XCTUnwrap(spec.presetReport)
        XCTAssertEqual(report.modelsFolder, "../models")
        XCTAssertEqual(report.missing.map(\.wanted), ["all-mpnet-base-v2", "efficientnet_lite0", "mobilenet_v2"])
        XCTAssertEqual(report.missing.first?.fetch, "scripts/fetch-models --only all-mpnet-base-v2")
        XCTAssertEqual(report.missing.first?.usedInstead, "all-MiniLM-L6-v2")
        XCTAssertEqual(report.choices.first { $0.key == "trainer.optimizer.lr" }?.applied, false)
        XCTAssertEqual(report.choices.first { $0.key == "trainer.epochs" }?.applied, true)
        XCTAssertTrue(report.lines.contains { $0.contains("could not find image backbone mobilenet_v2 — fetch it with `scripts/fetch-models --only mobilenet_v2`") },
                      "\(report.lines)")
        // The resolved YAML carries every value the preset set, and loads back to the same spec.
        let again = try PipelineLoader.load(yaml: spec.resolvedYAML(), file: file)
        XCTAssertEqual(again, spec)
        XCTAssertEqual(brief(try errors(minimalYAML + "preset: best\n")).first,
                       "5:9 unknown value 'best' for preset; did you mean 'best_quality'?")
    }
}
