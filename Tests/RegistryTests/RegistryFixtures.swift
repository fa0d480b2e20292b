import Cache
import Foundation
import XCTest
@testable import Registry

/// A temporary folder per test, removed afterwards.
class RegistryTestCase: XCTestCase {
    var temporary: URL!

    override func setUpWithError() throws {
        temporary = FileManager.default.temporaryDirectory
            .appendingPathComponent("registry-tests-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        // Cache entries are read-only; make them writable so the folder can go.
        _ = try? FileManager.default.subpathsOfDirectory(atPath: temporary.path).forEach {
            _ = chmod(temporary.appendingPathComponent($0).path, 0o755)
        }
        try? FileManager.default.removeItem(at: temporary)
    }

    var registryURL: URL { temporary.appendingPathComponent("cache/registry.sqlite") }

    func makeRegistry(busyTimeout: TimeInterval = 5) throws -> RunRegistry {
        try RunRegistry(url: registryURL, busyTimeout: busyTimeout)
    }

    /// A 64-hex key, as the cache uses.
    func key(_ seed: String) -> String { ContentHash.sha256(seed) }

    /// Writes a run folder the way `runpipe train` does (lock.json, metrics.json, history.csv,
    /// resolved.yaml, model/), by hand.
    @discardableResult
    func makeRunFolder(_ name: String, validation: [String: Any] = ["accuracy": 0.8, "loss": 0.64],
                       test: [String: Any] = ["accuracy": 0.79],
                       stages: [String: String]? = nil, seed: UInt64 = 7, threads: Int = 2,
                       lr: String = "0.003", trainSHA: String? = nil) throws -> URL {
        let dir = temporary.appendingPathComponent("runs").appendingPathComponent(name)
        let fm = FileManager.default
        try fm.createDirectory(at: dir.appendingPathComponent("model"), withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: dir.appendingPathComponent("model/model.json"))
        let stages = stages ?? ["fit": key("fit"), "train": key("train-\(name)")]
        let lock: [String: Any] = [
            "runpipe": "0.1.0", "pipeline": "/work/pipelines/penguins.yaml",
            "pipeline_sha256": key("pipeline"), "seed": seed, "threads": threads,
            "data": [["role": "train", "path": "data/train.csv", "sha256": trainSHA ?? key("train.csv"), "bytes": 12201],
                     ["role": "test", "path": "data/test.csv", "sha256": key("test.csv"), "bytes": 3123]],
            "checkpoints": [] as [Any], "stages": stages, "created": "2026-11-30T04:51:35Z",
        ]
        try JSONSerialization.data(withJSONObject: ["validation": validation, "test": test], options: [.sortedKeys])
            .write(to: dir.appendingPathComponent("metrics.json"))
        try Data("""
            epoch,step,train_loss,lr,seconds,val.accuracy,val.loss
            1,7,1.05876,0.00251592,0.0266214,0.8,0.878116
            2,14,0.785123,0.000897457,0.0308789,nan,0.687114
            3,21,0.651387,0,0.0462277,0.8,0.640876

            """.utf8).write(to: dir.appendingPathComponent("history.csv"))
        try Data("""
            # resolved by runpipe — every default written out
            version: 1
            name: penguins
            seed: \(seed)
            metric: accuracy
            trainer:
              optimizer: {kind: adamw, lr: \(lr)}
              epochs: 3

            """.utf8).write(to: dir.appendingPathComponent("resolved.yaml"))
        // lock.json last, as the writer does.
        try JSONSerialization.data(withJSONObject: lock, options: [.sortedKeys, .prettyPrinted])
            .write(to: dir.appendingPathComponent("lock.json"))
        return dir
    }

    func newRun(_ folder: URL, sweep: String? = nil, trial: Int? = nil, parameters: [String: String] = [:],
                pipeline: String? = nil) -> NewRun {
        NewRun(pipeline: pipeline ?? temporary.appendingPathComponent("penguins.yaml").path, name: "penguins",
               runDirectory: folder.path, overrides: ["trainer.epochs=3"], parameters: parameters,
               sweepID: sweep, trialIndex: trial, threads: 2, seed: 7, command: "train")
    }

    /// begin + finish of a fresh run folder.
    @discardableResult
    func recordRun(_ registry: RunRegistry, _ name: String, stoppedEarly: Bool = false, sweep: String? = nil,
                   trial: Int? = nil, validation: [String: Any] = ["accuracy": 0.8, "loss": 0.64],
                   stages: [String: String]? = nil) throws -> Int64 {
        let folder = try makeRunFolder(name, validation: validation, stages: stages)
        let id = try registry.begin(newRun(folder, sweep: sweep, trial: trial))
        try registry.finish(id: id, runDirectory: folder, stoppedEarly: stoppedEarly)
        return id
    }

    func assertRegistryError(_ expression: @autoclosure () throws -> some Any, file: StaticString = #filePath,
                             line: UInt = #line, _ check: (RegistryError) -> Bool) {
        do {
            _ = try expression()
            XCTFail("expected a RegistryError", file: file, line: line)
        } catch let error as RegistryError {
            XCTAssertTrue(check(error), "unexpected error: \(error)", file: file, line: line)
        } catch {
            XCTFail("expected a RegistryError, got \(error)", file: file, line: line)
        }
    }
}
