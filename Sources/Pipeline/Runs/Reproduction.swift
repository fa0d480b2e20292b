import Cache
import Foundation
import Spec

/// `runpipe reproduce`: runs a finished run again from its resolved pipeline and lock, in a
/// fresh cache, and compares what it made, byte for byte.
public struct Reproduction {
    /// One compared file or value.
    public struct Comparison: Sendable {
        public var name: String
        public var identical: Bool
        public var detail: String
    }

    public struct Outcome: Sendable {
        public var original: URL
        public var reproduction: URL
        public var comparisons: [Comparison]
        public var identical: Bool { comparisons.allSatisfy(\.identical) }
    }

    /// Files of a run that must come out identical: metrics, predictions, and every file of
    /// the model (weights, processors, columns). history.csv holds wall-clock seconds, so its
    /// other columns are compared instead.
    static let comparedFiles = ["metrics.json", "validation_predictions.csv", "test_predictions.csv"]

    /// Re-executes `run` into `into` (which must not hold anything), with a fresh cache in
    /// `cacheDir` (every stage recomputed), the recorded thread count and seed.
    public static func run(_ runURL: URL, into: URL, cacheDir: URL, environment: [String: String],
                           log: @escaping (String) -> Void, progress: @escaping (String) -> Void = { _ in }) throws -> Outcome {
        let run = try RunDirectory.open(runURL)
        let lockURL = run.url.appendingPathComponent(RunDirectory.marker)
        let lock: RunLock
        do {
            lock = try JSONDecoder().decode(RunLock.self, from: Data(contentsOf: lockURL))
        } catch {
            throw PipelineError("\(lockURL.path) is not a readable run lock: \(error)", hint: "the run folder is damaged; reproduce another run")
        }
        let yamlURL = run.url.appendingPathComponent("resolved.yaml")
        guard let yaml = try? String(contentsOf: yamlURL, encoding: .utf8) else {
            throw PipelineError("\(yamlURL.path) is missing or unreadable", hint: "the run folder is damaged; reproduce another run")
        }
        if lock.runpipe != Compiler.runpipeVersion {
            log("warning: the run was made by runpipe \(lock.runpipe); this is \(Compiler.runpipeVersion)")
        }
        var session = Session(pipeline: URL(fileURLWithPath: lock.pipeline), cacheDir: cacheDir.path, environment: environment)
        session.yaml = yaml

        // Refuse before any work when the inputs are not the ones the run read.
        let compiled = try session.compile(threads: lock.threads)
        var changed: [String] = []
        for d in lock.data {
            guard let now = compiled.sources[d.role] else {
                changed.append("data.\(d.role) (\(d.path)): the run read it; the resolved pipeline no longer names it")
                continue
            }
            if now.sha256 != d.sha256 {
                changed.append("data.\(d.role) (\(d.path)): recorded sha256 \(d.sha256.prefix(16))…, now \(now.sha256.prefix(16))…")
            }
        }
        for c in lock.checkpoints {
            let now: String? = c.role == "text" ? compiled.text?.weightsHash : compiled.image?.checkpoint.weightsHash
            if now != c.weightsSHA256 {
                changed.append("backbones.\(c.role) (\(c.path)): recorded weights sha256 \(c.weightsSHA256.prefix(16))…, now \(now.map { String($0.prefix(16)) + "…" } ?? "absent")")
            }
            if c.role == "text", let t = c.tokenizerSHA256, compiled.text?.tokenizerHash != t {
                changed.append("backbones.text (\(c.path)): recorded tokenizer sha256 \(t.prefix(16))…, now \(compiled.text.map { String($0.tokenizerHash.prefix(16)) + "…" } ?? "absent")")
            }
        }
        guard changed.isEmpty else {
            throw PipelineError("cannot reproduce \(run.url.path): its inputs changed\n    " + changed.joined(separator: "\n    "),
                                hint: "restore the files the run read (the lock names them), or train anew")
        }

        let result = try session.train(TrainRequest(threads: lock.threads, runDirectory: into, log: log, progress: progress))
        return Outcome(original: run.url, reproduction: result.runDirectory,
                       comparisons: try compare(run.url, result.runDirectory))
    }

    /// Compares two run folders' results.
    static func compare(_ a: URL, _ b: URL) throws -> [Comparison] {
        let fm = FileManager.default
        var out: [Comparison] = []
        var names = comparedFiles.filter { fm.fileExists(atPath: a.appendingPathComponent($0).path) }
        let modelFiles = ((try? fm.contentsOfDirectory(atPath: a.appendingPathComponent("model").path)) ?? []).sorted()
        names += modelFiles.map { "model/" + $0 }
        names += ["history.csv"]
        for name in names {
            let x = fm.contents(atPath: a.appendingPathComponent(name).path)
            let y = fm.contents(atPath: b.appendingPathComponent(name).path)
            if let x, let y, let timed = withoutTimings(name, x, y) {
                out.append(timed)
                continue
            }
            switch (x, y) {
            case let (x?, y?) where x == y:
                out.append(Comparison(name: name, identical: true, detail: "identical (sha256 \(ContentHash.sha256(x).prefix(12)))"))
            case let (x?, y?):
                out.append(Comparison(name: name, identical: false,
                                      detail: "differs: sha256 \(ContentHash.sha256(x).prefix(12)) vs \(ContentHash.sha256(y).prefix(12))" + firstDifference(x, y)))
            case (_?, nil):
                out.append(Comparison(name: name, identical: false, detail: "missing from the reproduction"))
            default:
                break
            }
        }
        return out
    }

    /// Files that record wall-clock time (history's `seconds` column, the training summary's
    /// `seconds`) are compared without it; nil for other files.
    static func withoutTimings(_ name: String, _ x: Data, _ y: Data) -> Comparison? {
        if name.hasSuffix("history.csv") {
            let same = withoutSeconds(String(decoding: x, as: UTF8.self)) == withoutSeconds(String(decoding: y, as: UTF8.self))
            return Comparison(name: name, identical: same, detail: same ? "identical but for the seconds column" : "differs (beyond the seconds column)")
        }
        if name.hasSuffix("summary.json"), var p = (try? JSONValue(parsing: x))?.objectValue, var q = (try? JSONValue(parsing: y))?.objectValue {
            p["seconds"] = nil
            q["seconds"] = nil
            let same = p == q
            return Comparison(name: name, identical: same, detail: same ? "identical but for the seconds" : "differs (beyond the seconds)")
        }
        return nil
    }

    static func withoutSeconds(_ csv: String) -> [[Substring]] {
        let rows = csv.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        guard let header = rows.first, let c = header.firstIndex(of: "seconds") else { return rows }
        return rows.map { row in row.enumerated().filter { $0.offset != c }.map(\.element) }
    }

    /// For text files, the first line that differs.
    static func firstDifference(_ x: Data, _ y: Data) -> String {
        guard let a = String(data: x, encoding: .utf8), let b = String(data: y, encoding: .utf8) else { return "" }
        let la = a.split(separator: "\n", omittingEmptySubsequences: false), lb = b.split(separator: "\n", omittingEmptySubsequences: false)
        for i in 0..<max(la.count, lb.count) {
            let p = i < la.count ? String(la[i]) : "", q = i < lb.count ? String(lb[i]) : ""
            if p != q { return "; line \(i + 1): \(p.prefix(80)) ≠ \(q.prefix(80))" }
        }
        return ""
    }
}
