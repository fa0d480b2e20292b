import Foundation
import XCTest
import Testing
import Training
@testable import Spec

final class SchemaTests: XCTestCase {
    /// `schemas/pipeline.schema.json` must equal the generated schema. To regenerate:
    /// `RUNPIPE_WRITE_SCHEMA=1 swift test --filter SpecTests.SchemaTests` (or, once wired,
    /// `swift run runpipe schema > schemas/pipeline.schema.json`).
    func testSchemaSnapshot() throws {
        let url = packageRoot.appendingPathComponent("schemas/pipeline.schema.json")
        let generated = PipelineSchema.jsonSchema()
        if ProcessInfo.processInfo.environment["RUNPIPE_WRITE_SCHEMA"] == "1" {
            try generated.write(to: url, atomically: true, encoding: .utf8)
        }
        let onDisk = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        XCTAssertTrue(onDisk == generated, """
            schemas/pipeline.schema.json is out of date with the spec declarations. Regenerate it with
              RUNPIPE_WRITE_SCHEMA=1 swift test --filter SpecTests.SchemaTests/testSchemaSnapshot
            or `swift run runpipe schema > schemas/pipeline.schema.json`.
            """)
        XCTAssertEqual(generated, PipelineSchema.jsonSchema())
    }

    func testSchemaShape() throws {
        let json = try JSONSerialization.jsonObject(with: Data(PipelineSchema.jsonSchema().utf8)) as? [String: Any]
        let root = try XCTUnwrap(json)
        XCTAssertEqual(root["$schema"] as? String, "https://json-schema.org/draft/2020-12/schema")
        XCTAssertEqual(root["required"] as? [String], ["version", "data"])
        XCTAssertEqual(root["additionalProperties"] as? Bool, false)
        let props = try XCTUnwrap(root["properties"] as? [String: Any])
        XCTAssertEqual(Set(props.keys), ["extends", "version", "name", "seed", "data", "problem", "metric", "processors", "backbones", "fusion", "trainer", "peft", "preset", "sweep"])
        let metric = try XCTUnwrap(props["metric"] as? [String: Any])
        XCTAssertEqual(metric["enum"] as? [String], ["auto"] + Metric.allCases.map(\.rawValue))
        XCTAssertEqual(metric["default"] as? String, "auto")
        let trainer = try XCTUnwrap(props["trainer"] as? [String: Any])
        let tprops = try XCTUnwrap(trainer["properties"] as? [String: Any])
        let epochs = try XCTUnwrap(tprops["epochs"] as? [String: Any])
        XCTAssertEqual(epochs["minimum"] as? Int, 1)
        XCTAssertEqual(epochs["maximum"] as? Int, 100000)
        XCTAssertEqual(epochs["default"] as? Int, 30)
        let lr = try XCTUnwrap((tprops["optimizer"] as? [String: Any])?["properties"] as? [String: Any])["lr"] as? [String: Any]
        XCTAssertEqual(lr?["exclusiveMinimum"] as? Double, 0)
        let tabular = try XCTUnwrap(((props["backbones"] as? [String: Any])?["properties"] as? [String: Any])?["tabular"] as? [String: Any])
        let kinds = (tabular["oneOf"] as? [[String: Any]])?.compactMap { (($0["properties"] as? [String: Any])?["kind"] as? [String: Any])?["const"] as? String }
        XCTAssertEqual(kinds, ["mlp", "ft_transformer"])
    }

    /// Every property at every depth has a description.
    func testEveryPropertyHasADescription() throws {
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(PipelineSchema.jsonSchema().utf8)) as? [String: Any])
        var missing: [String] = []
        var count = 0
        func walk(_ node: Any, _ path: String) {
            if let obj = node as? [String: Any] {
                if let props = obj["properties"] as? [String: Any] {
                    for (k, v) in props {
                        count += 1
                        if ((v as? [String: Any])?["description"] as? String ?? "").isEmpty { missing.append(path + "." + k) }
                        walk(v, path + "." + k)
                    }
                }
                for (k, v) in obj where k != "properties" { walk(v, path) }
            } else if let arr = node as? [Any] {
                for v in arr { walk(v, path) }
            }
        }
        walk(root, "")
        XCTAssertGreaterThan(count, 50)
        XCTAssertEqual(missing, [])
    }
}

// MARK: - Table-driven error cases (Swift Testing)

struct ErrorCase: CustomTestStringConvertible, Sendable {
    let yaml: String
    let expected: String
    var testDescription: String { expected }
}

/// Each error kind, with its exact line and column.
@Test(arguments: [
    ErrorCase(yaml: minimalYAML + "trainer: {epochs: 1.5}\n", expected: "5:19 trainer.epochs expects an integer, found '1.5'"),
    ErrorCase(yaml: minimalYAML + "trainer: {batch_size: 100000}\n", expected: "5:23 trainer.batch_size must be in 1...65536, found 100000"),
    ErrorCase(yaml: minimalYAML + "seed: -1\n", expected: "5:7 seed expects a non-negative integer (at most 18446744073709551615), found '-1'"),
    ErrorCase(yaml: minimalYAML + "problem: binary_\n", expected: "5:10 unknown problem 'binary_' for problem; did you mean 'binary'?"),
    ErrorCase(yaml: minimalYAML + "name: \"has space\"\n", expected: "5:7 name must match [A-Za-z0-9._-]+, found 'has space'"),
    ErrorCase(yaml: minimalYAML + "trainr: {}\n", expected: "5:1 unknown key 'trainr' in the pipeline file; did you mean 'trainer'?"),
    ErrorCase(yaml: minimalYAML + "trainer:\n  grad_clip: 0\n", expected: "6:14 trainer.grad_clip must be > 0, found 0"),
    ErrorCase(yaml: minimalYAML + "trainer:\n  optimizer:\n    betas: [0.9]\n", expected: "7:12 trainer.optimizer.betas must have exactly 2 items, found 1"),
    ErrorCase(yaml: minimalYAML + "trainer:\n  callbacks:\n    - early_stoping: {}\n", expected: "7:7 unknown callback 'early_stoping' in trainer.callbacks[0]; did you mean 'early_stopping'?"),
    ErrorCase(yaml: minimalYAML + "trainer:\n  callbacks:\n    - early_stopping: {monitor: val.acc}\n", expected: "7:33 unknown monitor 'val.acc' for trainer.callbacks[0].early_stopping.monitor; did you mean 'val.accuracy'?"),
    ErrorCase(yaml: minimalYAML + "data:\n  train: x\n", expected: "2:1 duplicate key 'data' (set again at line 5)"),
    ErrorCase(yaml: "version: 1\ndata: {train: t.csv, label: y, validation: {fraction: 0.95}}\n", expected: "2:55 data.validation.fraction must be in (0, 0.9], found 0.95"),
    ErrorCase(yaml: "version: 1\ndata: {train: t.csv, label: y, validation: {fraction: 0}}\n", expected: "2:55 data.validation.fraction must be in (0, 0.9], found 0"),
    ErrorCase(yaml: "version: 1\ndata: {train: t.csv, label: y, columns: {age: number}}\n", expected: "2:47 unknown value 'number' for data.columns.age"),
    ErrorCase(yaml: "version: 1\ndata: [a]\n", expected: "2:7 data expects a mapping, found a list"),
    ErrorCase(yaml: minimalYAML + "backbones:\n  tabular: {kind: mlp, d_token: 8}\n", expected: "6:24 unknown key 'd_token' in backbones.tabular (kind: mlp)"),
    ErrorCase(yaml: minimalYAML + "trainer: {schedule: {power: 2}}\n", expected: "5:22 'power' applies only with kind: polynomial"),
    ErrorCase(yaml: minimalYAML + "fusion: {dropout: yes}\n", expected: "5:19 fusion.dropout expects a finite number, found 'yes'"),
    ErrorCase(yaml: minimalYAML + "backbones: {tabular: {trainable: 1}}\n", expected: "5:34 backbones.tabular.trainable expects true or false, found '1'"),
])
func reportsErrorAtExactLocation(_ c: ErrorCase) throws {
    let found = brief(try errors(c.yaml))
    #expect(found == [c.expected])
}
