import Foundation
import Pipeline
import XCTest

/// A throwaway project folder: a pipeline file, its data, a private cache and a runs folder.
final class Project {
    let root: URL
    var cacheDir: URL { root.appendingPathComponent("cache") }

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("pipeline-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    @discardableResult
    func write(_ name: String, _ text: String) throws -> URL {
        let url = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
        return url
    }

    func url(_ name: String) -> URL { root.appendingPathComponent(name) }

    func session(_ pipeline: String = "pipeline.yaml", overrides: [String] = []) -> Session {
        Session(pipeline: url(pipeline), overrides: overrides, cacheDir: cacheDir.path)
    }

    /// Trains into `runs/<run>`; returns the result and the log lines.
    @discardableResult
    func train(_ pipeline: String = "pipeline.yaml", overrides: [String] = [], run: String = "run",
               overwrite: Bool = false, force: Bool = false) throws -> (TrainResult, [String]) {
        let log = LogSink()
        let result = try session(pipeline, overrides: overrides).train(TrainRequest(
            threads: 2, runDirectory: url("runs/\(run)"), overwrite: overwrite, force: force, log: log.append))
        return (result, log.lines)
    }

    func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: url(name).path) }
}

final class LogSink: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var lines: [String] = []
    func append(_ s: String) { lock.lock(); lines.append(s); lock.unlock() }
}

/// A small deterministic table: two numbers and a category decide a 3-class label
/// (plus a few missing cells and an id column detection should ignore).
func syntheticCSV(rows: Int = 150, seed: UInt64 = 1, classes: Int = 3, regression: Bool = false) -> String {
    var state = seed &* 6364136223846793005 &+ 1442695040888963407
    func next() -> Double {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Double(state >> 11) / Double(1 << 53)
    }
    let colors = ["red", "green", "blue"]
    var lines = ["id,x1,x2,color,target"]
    for i in 0..<rows {
        let x1 = next() * 4 - 2, x2 = next() * 4 - 2
        let color = colors[Int(next() * 3) % 3]
        let shift = color == "red" ? 1.0 : (color == "green" ? -1.0 : 0.0)
        let target: String
        if regression {
            target = String(format: "%.4f", 3 * x1 - 2 * x2 + shift + 0.1 * (next() - 0.5))
        } else if classes == 2 {
            target = x1 + x2 + shift > 0 ? "yes" : "no"
        } else {
            let s = x1 + shift
            target = s < -0.7 ? "low" : (s < 0.7 ? "mid" : "high")
        }
        let x1s = i % 37 == 5 ? "NA" : String(format: "%.4f", x1)
        lines.append("\(1000 + i),\(x1s),\(String(format: "%.4f", x2)),\(color),\(target)")
    }
    return lines.joined(separator: "\n") + "\n"
}

/// A pipeline over `train.csv` (and `test.csv` when `test` is true) that trains in well under
/// a second in a debug build.
func pipelineYAML(test: Bool = true, extra: String = "") -> String {
    """
    version: 1
    name: synthetic
    seed: 3
    data:
      train: train.csv
    \(test ? "  test: test.csv\n" : "")  label: target
    backbones:
      tabular: {kind: mlp, hidden: [32]}
    trainer:
      optimizer: {lr: 1.0e-2}
      epochs: 8
      batch_size: 32
    \(extra)
    """
}

/// The error a throwing call raised, rendered.
func errorText(_ body: () throws -> Void) -> String? {
    do { try body(); return nil } catch { return String(describing: error) }
}
