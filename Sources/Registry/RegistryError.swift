import Foundation

/// What can go wrong with the registry file or a question asked of it. Each case says where and
/// how to fix it; none of them is raised after the registry file was changed.
public enum RegistryError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Another process held a write lock for longer than the busy timeout.
    case locked(path: String, seconds: Double)
    /// The file is not an SQLite database, or SQLite found it damaged.
    case damaged(path: String, detail: String)
    /// A sound SQLite database that some other program wrote.
    case notARegistry(path: String, detail: String)
    /// Written by a newer runpipe: its schema version is above the one this runpipe knows.
    case newerVersion(path: String, found: Int, known: Int)
    /// Any other SQLite failure (disk full, permissions…).
    case database(path: String, detail: String)
    /// No run matches the reference; `nearMatches` are names or ids that look alike.
    case noSuchRun(reference: String, nearMatches: [String])
    /// The reference names several runs (a folder name reused by several runs, say).
    case ambiguousRun(reference: String, matches: [String])
    /// A sweep id that the registry does not hold.
    case noSuchSweep(id: String, known: [String])
    /// A finished run folder lacks a file or holds one that does not parse.
    case unreadableRun(path: String, detail: String)
    /// `best`: no finished or stopped trial of the sweep has the metric.
    case noMetric(sweep: String, metric: String, available: [String])
    /// The operation does not apply to this run (e.g. removing a run that is still running).
    case refused(String, hint: String)

    public var description: String {
        switch self {
        case let .locked(path, seconds):
            return render("another runpipe holds the run registry \(path) (waited \(format(seconds)) s)",
                          hint: "wait for the other run or sweep to finish writing and try again, or point this one at another registry with --registry FILE / RUNPIPE_REGISTRY")
        case let .damaged(path, detail):
            return render("\(path) is not a runpipe registry or is damaged (\(detail))",
                          hint: "move it aside (e.g. `mv \(path) \(path).bad`); runpipe will start a new one; your runs folders are untouched")
        case let .notARegistry(path, detail):
            return render("\(path) is not a runpipe registry (\(detail))",
                          hint: "move it aside or choose another file with --registry FILE / RUNPIPE_REGISTRY; runpipe will start a new one; your runs folders are untouched")
        case let .newerVersion(path, found, known):
            return render("the run registry \(path) has schema version \(found), but this runpipe knows only up to version \(known); it was left unchanged",
                          hint: "upgrade runpipe to read it, or use another registry with --registry FILE / RUNPIPE_REGISTRY")
        case let .database(path, detail):
            return render("the run registry \(path) could not be read or written: \(detail)",
                          hint: "check the file's permissions and the free disk space")
        case let .noSuchRun(reference, nearMatches):
            let near = nearMatches.isEmpty ? "" : "; did you mean \(nearMatches.prefix(5).map { "`\($0)`" }.joined(separator: ", "))?"
            return render("no recorded run matches `\(reference)`\(near)",
                          hint: "name a run by its id, its run-folder name or its run-folder path (see `runpipe runs list`)")
        case let .ambiguousRun(reference, matches):
            return render("`\(reference)` names \(matches.count) runs: \(matches.prefix(8).joined(separator: ", "))",
                          hint: "name the run by one of these ids, or by its run-folder path")
        case let .noSuchSweep(id, known):
            let list = known.isEmpty ? "the registry records no sweep" : "recorded sweeps: \(known.prefix(8).joined(separator: ", "))"
            return render("no sweep `\(id)` in the registry (\(list))", hint: "pass a sweep id from `runpipe runs list`")
        case let .unreadableRun(path, detail):
            return render("cannot record the run folder \(path): \(detail)",
                          hint: "the folder must hold what `runpipe train` writes (lock.json, metrics.json, history.csv, resolved.yaml)")
        case let .noMetric(sweep, metric, available):
            let list = available.isEmpty ? "no finished trial has metrics" : "metrics recorded: \(available.joined(separator: ", "))"
            return render("no finished or stopped trial of sweep `\(sweep)` has the metric `\(metric)` (\(list))",
                          hint: "pass --metric with one of the recorded names (`val.<name>` and `test.<name>` pick the split)")
        case let .refused(message, hint):
            return render(message, hint: hint)
        }
    }

    private func render(_ message: String, hint: String) -> String {
        "error: \(message)\n    hint: \(hint)"
    }

    private func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? String(Int(seconds)) : String(format: "%.1f", seconds)
    }
}

/// Names that look like `reference`: same prefix or within a small edit distance.
func nearMatches(of reference: String, among names: [String], limit: Int = 5) -> [String] {
    let target = reference.lowercased()
    let scored = Set(names).compactMap { name -> (String, Int)? in
        let candidate = name.lowercased()
        if candidate.hasPrefix(target) || target.hasPrefix(candidate) || candidate.contains(target) { return (name, 0) }
        let distance = editDistance(candidate, target)
        return distance <= max(2, target.count / 3) ? (name, distance) : nil
    }
    return scored.sorted { ($0.1, $0.0) < ($1.1, $1.0) }.prefix(limit).map(\.0)
}

private func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
