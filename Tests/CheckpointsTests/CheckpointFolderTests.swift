import Foundation
import XCTest
@testable import Checkpoints
import TensorEngine

/// Which weights a folder resolves to, sharded checkpoints, and the errors of bad folders.
final class CheckpointFolderTests: TemporaryFolderTestCase {

    private func assertShardedValues(_ folder: CheckpointFolder, file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try SafetensorsFile(url: CheckpointFixtures.url("sharded_expected.safetensors"))
        let tensors = try folder.loadTensors()
        XCTAssertEqual(Set(tensors.keys), Set(expected.tensorNames), file: file, line: line)
        for name in expected.tensorNames {
            assertBitwiseEqual(tensors[name], try expected.tensor(named: name), name, file: file, line: line)
        }
    }

    func testShardedSafetensorsFolder() throws {
        let folder = try CheckpointFolder(CheckpointFixtures.url("sharded_safetensors"))
        XCTAssertEqual(folder.format, .safetensorsSharded)
        XCTAssertEqual(folder.weightFiles.map(\.lastPathComponent),
                       ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"])
        XCTAssertEqual(folder.indexURL?.lastPathComponent, "model.safetensors.index.json")
        XCTAssertEqual(folder.shardMap["layer.2.bias"], "model-00002-of-00002.safetensors")
        let config = try XCTUnwrap(try folder.configData())
        let json = try JSONSerialization.jsonObject(with: config) as? [String: Any]
        XCTAssertEqual(json?["model_type"] as? String, "toy")
        try assertShardedValues(folder)
    }

    func testShardedBinFolder() throws {
        let folder = try CheckpointFolder(CheckpointFixtures.url("sharded_bin"))
        XCTAssertEqual(folder.format, .pytorchZipSharded)
        XCTAssertEqual(folder.weightFiles.count, 2)
        XCTAssertNotNil(folder.configURL)
        try assertShardedValues(folder)
    }

    func testIndexFileGivenDirectly() throws {
        let folder = try CheckpointFolder(CheckpointFixtures.url("sharded_bin/pytorch_model.bin.index.json"))
        XCTAssertEqual(folder.format, .pytorchZipSharded)
        try assertShardedValues(folder)
    }

    func testPrecedenceOfWeightFiles() throws {
        let fm = FileManager.default
        let dir = url("model")
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: dir.appendingPathComponent("config.json"))
        _ = try copyFixture("expected.safetensors", to: "model/model.safetensors")
        for name in ["model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"] {
            _ = try copyFixture("sharded_safetensors/" + name, to: "model/" + name)
        }
        _ = try copyFixture("state.bin", to: "model/pytorch_model.bin")
        for name in ["pytorch_model.bin.index.json", "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"] {
            _ = try copyFixture("sharded_bin/" + name, to: "model/" + name)
        }

        func resolved() throws -> (WeightFormat, String) {
            let folder = try CheckpointFolder(dir)
            XCTAssertEqual(folder.root.standardizedFileURL, dir.standardizedFileURL)
            XCTAssertEqual(folder.configURL?.lastPathComponent, "config.json")
            return (folder.format, folder.indexURL?.lastPathComponent ?? folder.weightFiles.first?.lastPathComponent ?? "")
        }
        XCTAssertEqual(try resolved().1, "model.safetensors")
        XCTAssertEqual(try resolved().0, .safetensors)
        try fm.removeItem(at: dir.appendingPathComponent("model.safetensors"))
        XCTAssertEqual(try resolved().1, "model.safetensors.index.json")
        try fm.removeItem(at: dir.appendingPathComponent("model.safetensors.index.json"))
        XCTAssertEqual(try resolved().1, "pytorch_model.bin")
        XCTAssertEqual(try resolved().0, .pytorchZip)
        try fm.removeItem(at: dir.appendingPathComponent("pytorch_model.bin"))
        XCTAssertEqual(try resolved().1, "pytorch_model.bin.index.json")
        try fm.removeItem(at: dir.appendingPathComponent("pytorch_model.bin.index.json"))

        // Four loose files now: no index says how they fit together.
        let e = checkpointError { _ = try CheckpointFolder(dir) }
        guard case .ambiguousWeights(_, let candidates)? = e else { return XCTFail("\(String(describing: e))") }
        XCTAssertEqual(candidates.count, 4)
        assertMessage(e, contains: ["pytorch_model-00001-of-00002.bin", "pass the file"])

        for name in try fm.contentsOfDirectory(atPath: dir.path) where name != "config.json" {
            try fm.removeItem(at: dir.appendingPathComponent(name))
        }
        _ = try copyFixture("state_legacy.pth", to: "model/mobilenet.pth")
        XCTAssertEqual(try resolved().0, .pytorchLegacy)
        XCTAssertEqual(try CheckpointFolder(dir).loadTensors().count, CheckpointFixtures.stateKeys.count)
    }

    func testSingleFileArguments() throws {
        let legacy = try CheckpointFolder(CheckpointFixtures.url("state_legacy.pth"))
        XCTAssertEqual(legacy.format, .pytorchLegacy)
        XCTAssertEqual(legacy.weightFiles, [CheckpointFixtures.url("state_legacy.pth").standardizedFileURL])
        XCTAssertNil(legacy.configURL)
        XCTAssertNil(try legacy.configData())

        // A zip checkpoint named .pth goes through the zip reader (judged by its bytes).
        let renamed = try copyFixture("state.bin", to: "weights.pth")
        XCTAssertEqual(try CheckpointFolder(renamed).format, .pytorchZip)

        // A safetensors file named .bin is recognised by its header.
        let safetensors = try copyFixture("expected.safetensors", to: "weights.bin")
        let folder = try CheckpointFolder(safetensors)
        XCTAssertEqual(folder.format, .safetensors)
        XCTAssertEqual(try folder.loadTensors().count, CheckpointFixtures.stateKeys.count)
    }

    // MARK: - Bad folders

    func testEmptyFolderListsWhatItLookedFor() throws {
        let e = checkpointError { _ = try CheckpointFolder(directory) }
        guard case .noWeights(_, let lookedFor, false)? = e else { return XCTFail("\(String(describing: e))") }
        XCTAssertEqual(lookedFor.first, "model.safetensors")
        assertMessage(e, contains: [directory.lastPathComponent, "model.safetensors", "pytorch_model.bin.index.json",
                                    "*.pth", "no config.json"])

        try Data("{}".utf8).write(to: url("config.json"))
        let e2 = checkpointError { _ = try CheckpointFolder(directory) }
        guard case .noWeights(_, _, true)? = e2 else { return XCTFail("\(String(describing: e2))") }
        assertMessage(e2, contains: ["has a config.json but no weights"])
    }

    func testMissingPath() {
        let missing = url("nowhere")
        let e = checkpointError { _ = try CheckpointFolder(missing) }
        XCTAssertEqual(e, .fileNotFound(path: missing.path))
    }

    private func shardedCopy(_ source: String = "sharded_safetensors") throws -> URL {
        let dir = url("sharded")
        try FileManager.default.copyItem(at: CheckpointFixtures.url(source), to: dir)
        return dir
    }

    private func rewriteIndex(_ dir: URL, _ name: String = "model.safetensors.index.json",
                              _ change: (inout [String: String]) -> Void) throws {
        let indexURL = dir.appendingPathComponent(name)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: indexURL)) as? [String: Any]
        var map = json?["weight_map"] as? [String: String] ?? [:]
        change(&map)
        try JSONSerialization.data(withJSONObject: ["weight_map": map]).write(to: indexURL)
    }

    func testIndexNamingAMissingShard() throws {
        let dir = try shardedCopy()
        try FileManager.default.removeItem(at: dir.appendingPathComponent("model-00002-of-00002.safetensors"))
        let e = checkpointError { _ = try CheckpointFolder(dir) }
        XCTAssertEqual(e, .missingShard(index: dir.appendingPathComponent("model.safetensors.index.json").path,
                                        shard: "model-00002-of-00002.safetensors", tensor: "layer.0.bias"))
        assertMessage(e, contains: ["model.safetensors.index.json", "'model-00002-of-00002.safetensors'",
                                    "'layer.0.bias'", "does not exist"])
    }

    func testIndexAssigningATensorToTheWrongShard() throws {
        let dir = try shardedCopy()
        try rewriteIndex(dir) { $0["layer.0.weight"] = "model-00002-of-00002.safetensors" }
        let e = checkpointError { _ = try CheckpointFolder(dir).loadTensors() }
        guard case .shardMismatch(let path, "layer.0.weight", _)? = e else { return XCTFail("\(String(describing: e))") }
        XCTAssertTrue(path.hasSuffix("model-00001-of-00002.safetensors"), path)
        assertMessage(e, contains: ["assigns it to 'model-00002-of-00002.safetensors'"])
    }

    func testIndexListingATensorNoShardHolds() throws {
        let dir = try shardedCopy("sharded_bin")
        try rewriteIndex(dir, "pytorch_model.bin.index.json") { $0["layer.9.weight"] = "pytorch_model-00001-of-00002.bin" }
        let e = checkpointError { _ = try CheckpointFolder(dir).loadTensors() }
        guard case .shardMismatch(_, "layer.9.weight", _)? = e else { return XCTFail("\(String(describing: e))") }
        assertMessage(e, contains: ["pytorch_model-00001-of-00002.bin", "does not hold it"])
    }

    func testShardHoldingATensorTheIndexOmits() throws {
        let dir = try shardedCopy()
        try rewriteIndex(dir) { $0["layer.1.bias"] = nil }
        let e = checkpointError { _ = try CheckpointFolder(dir).loadTensors() }
        guard case .shardMismatch(_, "layer.1.bias", _)? = e else { return XCTFail("\(String(describing: e))") }
        assertMessage(e, contains: ["does not list it"])
    }

    func testMalformedIndexes() throws {
        let dir = try shardedCopy()
        let index = dir.appendingPathComponent("model.safetensors.index.json")
        let cases: [(String, String)] = [
            ("{\"weight_map\": {\"a\": \"../outside.safetensors\"}}", "not a file name inside the folder"),
            ("{\"weight_map\": {\"a\": \"/etc/passwd\"}}", "not a file name inside the folder"),
            ("{\"weight_map\": {\"a\": 3}}", "not a file name"),
            ("{\"weight_map\": {}}", "lists no tensors"),
            ("{\"metadata\": {}}", "no \"weight_map\""),
            ("[1, 2]", "not an object"),
            ("{\"weight_map\": {\"a\": \"x\"", "not valid JSON"),
        ]
        for (text, fragment) in cases {
            try Data(text.utf8).write(to: index)
            let e = checkpointError { _ = try CheckpointFolder(dir) }
            guard case .invalidShardIndex? = e else { XCTFail("\(text): \(String(describing: e))"); continue }
            assertMessage(e, contains: ["model.safetensors.index.json", fragment])
        }
    }

    func testTruncatedAndLyingSafetensorsThroughAFolder() throws {
        let bytes = try Data(contentsOf: CheckpointFixtures.url("expected.safetensors"))
        let dir = url("model")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let weights = dir.appendingPathComponent("model.safetensors")

        try bytes.prefix(bytes.count - 5).write(to: weights)
        let e = checkpointError { _ = try CheckpointFolder(dir).loadTensors() }
        guard case .offsetsOutOfBounds? = e else { return XCTFail("\(String(describing: e))") }
        assertMessage(e, contains: ["model.safetensors", "reach past the end of the data region"])

        try bytes.prefix(100).write(to: weights)
        let e2 = checkpointError { _ = try CheckpointFolder(dir).loadTensors() }
        guard case .truncated? = e2 else { return XCTFail("\(String(describing: e2))") }
        assertMessage(e2, contains: ["model.safetensors", "header length prefix says"])

        var lying = [UInt8](bytes)
        lying[0] = 0xff; lying[1] = 0xff; lying[2] = 0xff; lying[3] = 0x7f  // header length ≈ 2 GB
        try Data(lying).write(to: weights)
        let e3 = checkpointError { _ = try CheckpointFolder(dir).loadTensors() }
        guard case .headerTooLarge? = e3 else { return XCTFail("\(String(describing: e3))") }
    }
}
