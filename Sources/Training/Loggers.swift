import Foundation

/// Records the learning rate of every parameter group at every optimizer step (the rate the step
/// used, like Lightning's `LearningRateMonitor(logging_interval="step")`). With a `url` it writes
/// them as CSV when training ends:
///
///     step,decay,no_decay
///     1,1e-05,1e-05
public final class LRMonitor: TrainerCallback {
    /// Where `csv()` is written at the end of training (nil: keep in memory only).
    public let url: URL?
    /// The optimizer's group names, taken when training begins.
    public private(set) var groupNames: [String] = []
    /// One entry per optimizer step: its global step and each group's learning rate.
    public private(set) var rows: [(step: Int, learningRates: [Double])] = []

    public init(url: URL? = nil) { self.url = url }

    public func on(_ event: TrainerEvent, trainer: any TrainerContext) throws -> TrainerDecision {
        switch event {
        case .trainBegin:
            groupNames = trainer.groupNames
            rows = []
        case .step(let r):
            rows.append((r.globalStep, r.learningRates))
        case .trainEnd:
            if let url { try writeAtomically(csv(), to: url, component: "lr_monitor") }
        default:
            break
        }
        return .proceed
    }

    /// `step` then one column per group, rates as `%.6g`.
    public func csv() -> String {
        var out = (["step"] + groupNames).joined(separator: ",") + "\n"
        for r in rows { out += ([String(r.step)] + r.learningRates.map(formatG)).joined(separator: ",") + "\n" }
        return out
    }
}

/// Writes the validation rows (see `History.csv`) to `url` after every validation, through a
/// temporary file in the same folder and a rename, so that a crash leaves the previous whole
/// file. Columns are stable: `epoch,step,train_loss,lr,seconds`, the first validation's metric
/// keys sorted, then keys first seen later, appended in sorted order.
public final class CSVLogger: TrainerCallback {
    public let url: URL
    /// The metric columns so far.
    public private(set) var keys: [String] = []
    var rows: [ValidationRecord] = []

    public init(url: URL) { self.url = url }

    public func on(_ event: TrainerEvent, trainer: any TrainerContext) throws -> TrainerDecision {
        switch event {
        case .trainBegin:
            keys = []
            rows = []
        case .validation(let r):
            keys += r.metrics.keys.filter { !keys.contains($0) }.sorted()
            rows.append(r)
            try writeAtomically(validationCSV(rows, keys: keys), to: url, component: "csv_logger")
        default:
            break
        }
        return .proceed
    }
}

/// Writes `text` to a temporary file beside `url`, then renames it over `url`.
func writeAtomically(_ text: String, to url: URL, component: String) throws {
    let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
    do {
        try Data(text.utf8).write(to: tmp)
    } catch {
        throw TrainingError.writeFailed(component: component, path: url.path, detail: error.localizedDescription)
    }
    if rename(tmp.path, url.path) != 0 {
        let reason = String(cString: strerror(errno))
        try? FileManager.default.removeItem(at: tmp)
        throw TrainingError.writeFailed(component: component, path: url.path, detail: reason)
    }
}
