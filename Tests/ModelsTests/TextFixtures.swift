import Foundation
import XCTest
import Checkpoints
import Models
import TensorEngine

/// Finding and reading the text-encoder fixtures written by
/// scripts/fixtures/make_text_fixtures.py (see its docstring for the layout).
enum TextFixtures {
    /// Every tiny family the generator writes, by folder name.
    static let families = ["bert", "roberta", "xlm-roberta", "distilbert", "electra", "mpnet", "deberta-v2", "deberta-v3"]

    /// `Tests/Fixtures/text`, found by walking up from this file.
    static func root() throws -> URL {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        for _ in 0..<8 {
            let candidate = dir.appendingPathComponent("Tests/Fixtures/text")
            if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        throw XCTSkip("Tests/Fixtures/text not found above \(#filePath)")
    }

    /// The repository root (holds `models/` when scripts/fetch-models has run).
    static func repositoryRoot() throws -> URL {
        try root().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static func checkpointFolder(_ family: String) throws -> URL {
        try root().appendingPathComponent(family).appendingPathComponent("checkpoint")
    }

    static func reference(_ family: String) throws -> SafetensorsFile {
        try SafetensorsFile(url: try root().appendingPathComponent(family).appendingPathComponent("reference.safetensors"))
    }

    /// config.json and the tensors of a checkpoint folder holding one model.safetensors.
    static func checkpoint(at folder: URL) throws -> (config: Data, tensors: [String: Tensor]) {
        let config = try Data(contentsOf: folder.appendingPathComponent("config.json"))
        let tensors = try SafetensorsFile(url: folder.appendingPathComponent("model.safetensors")).tensors()
        return (config, tensors)
    }

    /// The family's checkpoint folder loaded through the registry (evaluation mode).
    static func load(_ family: String, seed: UInt64 = 7) throws -> LoadedTextEncoder {
        try TextEncoders.loadWithReport(folder: try checkpointFolder(family), rng: RandomSource(seed: seed))
    }

    /// The token batch a reference file stores (`input_ids`, `token_type_ids`, `attention_mask`).
    static func batch(_ file: SafetensorsFile) throws -> TokenBatch {
        let ids = try file.tensor(named: "input_ids")
        func ints(_ name: String) throws -> [Int32] { try file.tensor(named: name).toArray().map { Int32($0) } }
        return TokenBatch(batch: ids.shape[0], tokens: ids.shape[1], ids: try ints("input_ids"),
                          typeIds: try ints("token_type_ids"), attentionMask: try ints("attention_mask"))
    }
}

/// The largest |actual − expected| and a failure when it exceeds `tol + rtol·|expected|` anywhere.
@discardableResult
func assertTensorsClose(_ actual: Tensor?, _ expected: Tensor, atol: Float, rtol: Float = 0, _ what: String,
                        file: StaticString = #filePath, line: UInt = #line) -> Float {
    guard let actual else { XCTFail("\(what): missing", file: file, line: line); return .infinity }
    guard actual.shape == expected.shape else {
        XCTFail("\(what): shape \(shapeString(actual.shape)) vs expected \(shapeString(expected.shape))", file: file, line: line)
        return .infinity
    }
    let a = actual.toArray(), e = expected.toArray()
    var worst: Float = 0, worstIndex = -1, failures = 0
    for i in 0..<a.count {
        let err = Swift.abs(a[i] - e[i])
        if !(err <= atol + rtol * Swift.abs(e[i])) { failures += 1; if worstIndex < 0 || !(err <= Swift.abs(a[worstIndex] - e[worstIndex])) { worstIndex = i } }
        if !(err <= worst) { worst = err }
    }
    if worstIndex >= 0 {
        XCTFail("\(what): \(failures) of \(a.count) elements differ; worst at flat \(worstIndex): \(a[worstIndex]) vs \(e[worstIndex])",
                file: file, line: line)
    }
    return worst
}
