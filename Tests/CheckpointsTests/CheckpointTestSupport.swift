import Foundation
import XCTest
@testable import Checkpoints
import TensorEngine

/// Fixture locations and assertions shared by the checkpoint tests.
enum CheckpointFixtures {
    /// `Tests/Fixtures/checkpoints`, written by `scripts/fixtures/make_checkpoint_fixtures.py`.
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/checkpoints")

    static func url(_ name: String) -> URL { folder.appendingPathComponent(name) }

    /// The package root: the nearest folder above this file holding Package.swift.
    static var packageRoot: URL? {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/" {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { return dir }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }

    /// The tensor keys of the state dict fixtures, in the order the generator writes them.
    static let stateKeys = ["f32", "f16", "bf16", "f64", "i64", "i32", "i16", "i8", "u8", "bool", "transposed",
                            "shared.a", "shared.b", "bf16_view", "expanded", "scalar", "empty", "param"]
}

/// A fresh temporary folder, removed by `tearDown`.
class TemporaryFolderTestCase: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("runpipe-checkpoints-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    func copyFixture(_ name: String, to target: String? = nil) throws -> URL {
        let destination = url(target ?? name)
        try FileManager.default.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CheckpointFixtures.url(name), to: destination)
        return destination
    }

    /// The error `body` throws, as a `CheckpointError` (fails the test for anything else).
    func checkpointError(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> CheckpointError? {
        do {
            try body()
            XCTFail("expected an error", file: file, line: line)
        } catch let error as CheckpointError {
            return error
        } catch {
            XCTFail("expected a CheckpointError, got \(type(of: error)): \(error)", file: file, line: line)
        }
        return nil
    }

    func assertMessage(_ error: CheckpointError?, contains parts: [String],
                       file: StaticString = #filePath, line: UInt = #line) {
        guard let error else { return }
        for part in parts {
            XCTAssertTrue(error.description.contains(part), "'\(error)' should contain '\(part)'", file: file, line: line)
        }
    }

    /// Same shape and the same bits (NaN payloads aside).
    func assertBitwiseEqual(_ a: Tensor?, _ b: Tensor?, _ name: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let a, let b else { return XCTFail("\(name): missing tensor", file: file, line: line) }
        XCTAssertEqual(a.shape, b.shape, "\(name): shape", file: file, line: line)
        XCTAssertTrue(a.isContiguous, "\(name): not contiguous", file: file, line: line)
        let x = a.toArray(), y = b.toArray()
        XCTAssertEqual(x.count, y.count, "\(name): count", file: file, line: line)
        for (i, (p, q)) in zip(x, y).enumerated() where !(p.isNaN && q.isNaN) && p.bitPattern != q.bitPattern {
            XCTFail("\(name)[\(i)]: \(p) != \(q)", file: file, line: line)
            return
        }
    }
}
