import Foundation
import XCTest
@testable import Spec

/// The folder of this test target's fixtures.
let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
/// The package root.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Writes `text` to a fresh temporary folder as `name` and returns its URL.
func writeTemp(_ text: String, name: String = "p.yaml", extra: [String: String] = [:]) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("spec-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    for (n, t) in extra {
        let u = dir.appendingPathComponent(n)
        try FileManager.default.createDirectory(at: u.deletingLastPathComponent(), withIntermediateDirectories: true)
        try t.write(to: u, atomically: true, encoding: .utf8)
    }
    let url = dir.appendingPathComponent(name)
    try text.write(to: url, atomically: true, encoding: .utf8)
    return url
}

/// The errors of loading `text` (empty when it loads).
func errors(_ text: String, overrides: [String] = []) throws -> [SpecError] {
    let url = try writeTemp(text)
    do {
        _ = try PipelineLoader.load(url, overrides: overrides)
        return []
    } catch let e as SpecErrors {
        return e.errors
    }
}

/// `LINE:COL message` of each error, for compact assertions.
func brief(_ errors: [SpecError]) -> [String] {
    errors.map { e in
        let at = e.location.map { "\($0.line):\($0.column)" } ?? (e.flag.map { "--set \($0)" } ?? "-")
        return "\(at) \(e.message)"
    }
}

let minimalYAML = """
version: 1
data:
  train: train.csv
  label: target

"""
