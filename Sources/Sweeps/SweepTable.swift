import Foundation
import Spec

/// The sweep's result as an aligned text table, best trial first.
public struct SweepTable {
    public let state: SweepState

    public init(_ state: SweepState) { self.state = state }

    public func render() -> String {
        let monitor = state.monitor
        // Other validation metrics the trials share, after the monitored one.
        let shared = Set(state.trials.filter { $0.status.isDone }.flatMap { $0.metrics.keys })
        let extra = shared.filter { $0.hasPrefix("val.") && $0 != monitor }.sorted().prefix(3)
        var header = ["trial"] + state.parameters.map(Self.shortKey) + [monitor] + extra + ["epochs", "seconds", "status"]
        var rows: [[String]] = []
        for t in state.ranked() {
            var row = [t.name + (t.index == state.best ? " *" : "")]
            row += state.parameters.map { t.parameters[$0] ?? "" }
            row.append(t.status.isDone ? Self.number(t.metrics[monitor]) : "")
            row += extra.map { t.status.isDone ? Self.number(t.metrics[$0]) : "" }
            row.append(t.epochs.map(String.init) ?? "")
            row.append(t.seconds.map { String(format: "%.1f", $0) } ?? "")
            var status = t.status.rawValue
            if t.status == .stopped, let r = t.stoppedAt { status += " @\(r)" }
            row.append(status)
            rows.append(row)
        }
        let widths = header.indices.map { c in ([header[c]] + rows.map { $0[c] }).map(\.count).max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { c, s in s.padding(toLength: widths[c], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        var out = [line(header), line(widths.map { String(repeating: "-", count: $0) })]
        out += rows.map(line)
        let failed = state.trials.filter { $0.status == .failed }
        for t in failed { out.append("trial \(t.name) failed: \(t.error ?? "")") }
        return out.joined(separator: "\n")
    }

    /// The trials a sweep would run (`--dry-run`): one row each, full keys as columns.
    public static func preview(_ trials: [Trial], method: SweepMethod, rungs: [Int]?) -> String {
        let keys = trials.first?.keys ?? []
        let header = ["trial"] + keys
        let rows = trials.map { t in [t.name] + keys.map { t.parameters[$0] ?? "" } }
        let widths = header.indices.map { c in ([header[c]] + rows.map { $0[c] }).map(\.count).max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { c, s in s.padding(toLength: widths[c], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        var out = [line(header), line(widths.map { String(repeating: "-", count: $0) })] + rows.map(line)
        var summary = "\(trials.count) trial\(trials.count == 1 ? "" : "s") (\(method.rawValue)), every one a valid pipeline"
        if let rungs, !rungs.isEmpty { summary += "; rungs at epochs \(rungs.map(String.init).joined(separator: ", "))" }
        out.append(summary + "; nothing was run")
        return out.joined(separator: "\n")
    }

    /// `trainer.optimizer.lr` → `optimizer.lr`: the last two parts are enough to tell keys apart
    /// in most sweeps (full keys are in sweep.json).
    static func shortKey(_ key: String) -> String {
        let parts = key.split(separator: ".")
        return parts.count <= 2 ? key : parts.suffix(2).joined(separator: ".")
    }

    static func number(_ v: Double?) -> String {
        guard let v else { return "" }
        return v.isNaN ? "nan" : String(format: "%.4f", v)
    }
}
