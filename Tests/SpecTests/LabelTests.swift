import Foundation
import XCTest
@testable import Spec

/// `data.label` as a list, `data.label_separator`, `problem` per task and task monitors.
final class LabelTests: XCTestCase {
    func load(_ text: String) throws -> PipelineSpec {
        try PipelineLoader.load(try writeTemp(text))
    }

    func testOneLabelStaysAString() throws {
        let spec = try load(minimalYAML)
        XCTAssertEqual(spec.data.labels, ["target"])
        XCTAssertEqual(spec.data.label, "target")
        XCTAssertEqual(spec.data.labelSeparator, ";")
        XCTAssertFalse(spec.isMultiTask)
        XCTAssertTrue(spec.resolvedYAML().contains("label: target\n"))
    }

    func testListOfLabelsWithProblemPerTask() throws {
        let spec = try load("""
        version: 1
        data:
          train: train.csv
          label: [species, body_mass_g, tags]
          label_separator: "|"
        problem: {species: multiclass, tags: multilabel}
        trainer:
          callbacks: [{early_stopping: {monitor: val.body_mass_g.rmse}}]

        """)
        XCTAssertEqual(spec.data.labels, ["species", "body_mass_g", "tags"])
        XCTAssertEqual(spec.data.labelSeparator, "|")
        XCTAssertTrue(spec.isMultiTask)
        XCTAssertEqual(spec.problem.problem(for: "species"), .multiclass)
        XCTAssertNil(spec.problem.problem(for: "body_mass_g"))
        XCTAssertEqual(spec.problem.problem(for: "tags"), .multilabel)
        // The resolved YAML loads back to the same spec.
        XCTAssertEqual(try load(spec.resolvedYAML()), spec)
    }

    func testMultilabelOverBinaryColumnsIsOneTask() throws {
        let spec = try load(minimalYAML.replacingOccurrences(of: "label: target", with: "label: [action, comedy]") + "problem: multilabel\nmetric: hamming_loss\n")
        XCTAssertFalse(spec.isMultiTask)
        XCTAssertEqual(spec.problem, .fixed(.multilabel))
        XCTAssertEqual(MonitorTarget("val.kind.accuracy"), .task("kind", .accuracy))
        XCTAssertEqual(MonitorTarget("val.a.b.f1_micro"), .task("a.b", .f1Micro))
        XCTAssertNil(MonitorTarget("val.kind.acuracy"))
    }

    func testLabelErrorsSayWhereAndHowToFix() throws {
        let yaml = """
        version: 1
        data:
          train: train.csv
          label: [species, sex, species]
          columns: {sex: categorical}
        problem: {species: multiclass, spieces: binary}
        metric: rmse
        trainer:
          callbacks:
            - early_stopping: {monitor: val.accuracy}
            - checkpoint: {monitor: val.speces.accuracy}

        """
        XCTAssertEqual(brief(try errors(yaml)), [
            "4:25 label column 'species' is listed twice in data.label",
            "5:13 'sex' is a label column, so it cannot also be read as a categorical",
            "6:32 problem names 'spieces', which is not a label column; did you mean 'species'?",
            "7:1 metric 'rmse' does not apply to problem 'multiclass'",
            "10:24 monitor 'val.accuracy' names no task, and this pipeline has 3",
            "11:20 monitor 'val.speces.accuracy': 'speces' is not a task of this pipeline; did you mean 'species'?",
        ])
        XCTAssertEqual(brief(try errors(minimalYAML.replacingOccurrences(of: "label: target", with: "label: [a, b]\n  label_weights: {a: 2, c: 1, b: 0}"))), [
            "5:34 data.label_weights.b must be > 0, found 0",
        ])
        XCTAssertEqual(brief(try errors(minimalYAML.replacingOccurrences(of: "label: target", with: "label: [a, b]\n  label_weights: {a: 2, bb: 1}"))), [
            "5:25 data.label_weights names 'bb', which is not a label column; did you mean 'b'?",
        ])
        XCTAssertEqual(brief(try errors(minimalYAML + "  label_weights: {target: 2}\n")),
                       ["5:19 data.label_weights applies only with several tasks, and this pipeline has one"])
        XCTAssertEqual(brief(try errors(minimalYAML.replacingOccurrences(of: "label: target", with: "label: []"))),
                       ["4:10 data.label must have at least 1 item, found 0"])
        XCTAssertEqual(brief(try errors(minimalYAML + "trainer:\n  callbacks: [{checkpoint: {monitor: val.target.accuracy}}]\n")),
                       ["6:29 monitor 'val.target.accuracy': 'target' is not a task of this pipeline"])
    }
}
