import Foundation
import Spec
import Sweeps

/// What `runpipe sweep` prints: the trials as an aligned table (the same `table` layout as
/// `runpipe runs`), best first, or — with `--dry-run` — the trials it would run.
enum SweepTable {
    static func result(_ state: SweepState) -> String {
        let monitor = state.monitor
        // Other validation metrics the trials share, after the monitored one.
        let shared = Set(state.trials.filter { $0.status.isDone }.flatMap { $0.metrics.keys })
        let extra = shared.filter { $0.hasPrefix("val.") && $0 != monitor }.sorted().prefix(3)
        let header = ["trial"] + state.parameters.map(shortKey) + [monitor] + extra + ["epochs", "seconds", "status"]
        let rows = state.ranked().map { t -> [String] in
            var row = [t.name + (t.index == state.best ? " *" : "")]
            row += state.parameters.map { t.parameters[$0] ?? "" }
            row.append(t.status.isDone ? number(t.metrics[monitor]) : "")
            row += extra.map { t.status.isDone ? number(t.metrics[$0]) : "" }
            row.append(t.epochs.map(String.init) ?? "")
            row.append(t.seconds.map { String(format: "%.1f", $0) } ?? "")
            row.append(t.status == .stopped ? "stopped @\(t.stoppedAt ?? 0)" : t.status.rawValue)
            return row
        }
        let failed = state.trials.filter { $0.status == .failed }.map { "trial \($0.name) failed: \($0.error ?? "")" }
        return ([table(header, rows)] + failed).joined(separator: "\n")
    }

    /// `--dry-run`: one row per trial, full keys as columns.
    static func preview(_ trials: [Trial], method: SweepMethod, rungs: [Int]?) -> String {
        let keys = trials.first?.keys ?? []
        let rows = trials.map { t in [t.name] + keys.map { t.parameters[$0] ?? "" } }
        var summary = "\(trials.count) trial\(trials.count == 1 ? "" : "s") (\(method.rawValue)), every one a valid pipeline"
        if let rungs, !rungs.isEmpty { summary += "; rungs at epochs \(rungs.map(String.init).joined(separator: ", "))" }
        return table(["trial"] + keys, rows) + "\n" + summary + "; nothing was run"
    }

    /// `trainer.optimizer.lr` → `optimizer.lr`: the last two parts tell keys apart in most
    /// sweeps (full keys are in sweep.json).
    static func shortKey(_ key: String) -> String {
        let parts = key.split(separator: ".")
        return parts.count <= 2 ? key : parts.suffix(2).joined(separator: ".")
    }

    static func number(_ v: Double?) -> String {
        guard let v else { return "" }
        return v.isNaN ? "nan" : String(format: "%.4f", v)
    }
}
