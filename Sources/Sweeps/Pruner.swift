import Cache
import Foundation
import Training

/// Successive halving inside one trial process: after the validation that ends a rung epoch,
/// the trial records its monitored value, waits until every trial of lower index has recorded
/// its own (or can no longer reach the rung), and goes on only if it is among the best
/// max(1, ⌊n/eta⌋) of the n values at that rung from trials 0…itself.
///
/// Comparing only with lower-indexed trials makes every decision a function of the trials'
/// own training, never of timing: `--jobs 1` and `--jobs 4` stop the same trials at the same
/// rungs. Trials start in index order and a trial only waits for lower ones, so nothing waits
/// in a circle. Records are files under `rungs/<epoch>/`, written atomically.
public final class RungPruner: TrainerCallback {
    public let folder: URL
    public let index: Int
    let rungs: [Int]
    let eta: Int
    let monitor: String
    let higherIsBetter: Bool
    /// How often to look for other trials' records.
    let poll: TimeInterval

    /// Reads the sweep's settings; nil when the sweep does not use successive halving.
    public init?(sweepFolder: URL, trial: Int, poll: TimeInterval = 0.1) throws {
        let state = try SweepState.read(from: sweepFolder)
        guard let rungs = state.rungs, let eta = state.eta, !rungs.isEmpty else { return nil }
        self.folder = sweepFolder
        self.index = trial
        self.rungs = rungs
        self.eta = eta
        self.monitor = state.monitor
        self.higherIsBetter = state.higherIsBetter
        self.poll = poll
    }

    /// What joins the training stage's key: a pruned trial's weights depend on these.
    public var keyMaterial: JSONValue {
        .object([
            "sweep": .string(folder.lastPathComponent),
            "trial": .int(Int64(index)),
            "rungs": .array(rungs.map { .int(Int64($0)) }),
            "eta": .int(Int64(eta)),
            "monitor": .string(monitor),
        ])
    }

    public func on(_ event: TrainerEvent, trainer: any TrainerContext) throws -> TrainerDecision {
        guard case .validation(let record) = event, record.epochProgress == Double(record.epoch),
              rungs.contains(record.epoch) else { return .proceed }
        let value = record.value(monitor) ?? .nan
        let rung = record.epoch
        try Self.write(value: value, folder: folder, rung: rung, trial: index)
        let values = try waitForLowerTrials(rung: rung) + [value]
        let keep = Self.keeps(value, among: values, eta: eta, higherIsBetter: higherIsBetter)
        try Self.write(decision: keep, folder: folder, rung: rung, trial: index)
        return keep ? .proceed : .stop(reason: "successive halving: \(monitor) \(value) is not in the best 1/\(eta) at epoch \(rung)")
    }

    /// Whether `value` ranks within the best max(1, ⌊n/eta⌋) of `values` (which include it).
    /// Ties favour the trial (it is kept when an equal value would be); NaN always ranks last.
    static func keeps(_ value: Double, among values: [Double], eta: Int, higherIsBetter: Bool) -> Bool {
        let k = max(1, values.count / eta)
        if value.isNaN { return false }
        let better = values.filter { v in !v.isNaN && (higherIsBetter ? v > value : v < value) }.count
        return better < k
    }

    /// The lower trials' values at `rung`, waiting for those still on their way there.
    func waitForLowerTrials(rung: Int) throws -> [Double] {
        var pending = Set(0..<index)
        var values: [Int: Double] = [:]
        while true {
            var state: SweepState?
            for j in pending.sorted() {
                if let v = Self.readValue(folder: folder, rung: rung, trial: j) {
                    values[j] = v
                    pending.remove(j)
                    continue
                }
                // Stopped at an earlier rung, or ended (finished early, failed) without reaching this one.
                if Self.stoppedBefore(folder: folder, rung: rung, trial: j, rungs: rungs) { pending.remove(j); continue }
                if state == nil { state = try? SweepState.read(from: folder) }
                if let s = state, j < s.trials.count, s.trials[j].status != .running, s.trials[j].status != .queued {
                    pending.remove(j)
                }
            }
            if pending.isEmpty { break }
            Thread.sleep(forTimeInterval: poll)
        }
        return values.keys.sorted().map { values[$0]! }
    }

    // MARK: - Records

    static func rungFolder(_ folder: URL, _ rung: Int) -> URL {
        folder.appendingPathComponent("rungs").appendingPathComponent(String(rung))
    }

    static func write(value: Double, folder: URL, rung: Int, trial: Int) throws {
        let dir = rungFolder(folder, rung)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try AtomicFile.write(Data((value.isNaN ? "nan" : "\(value)").utf8), to: dir.appendingPathComponent(String(format: "%03d.value", trial)))
    }

    static func write(decision keep: Bool, folder: URL, rung: Int, trial: Int) throws {
        try AtomicFile.write(Data((keep ? "continue" : "stop").utf8),
                             to: rungFolder(folder, rung).appendingPathComponent(String(format: "%03d.decision", trial)))
    }

    static func readValue(folder: URL, rung: Int, trial: Int) -> Double? {
        let url = rungFolder(folder, rung).appendingPathComponent(String(format: "%03d.value", trial))
        guard let d = FileManager.default.contents(atPath: url.path), let text = String(data: d, encoding: .utf8) else { return nil }
        return text == "nan" ? .nan : Double(text)
    }

    /// The rung at which `trial` was told to stop, if any.
    public static func stoppedAt(folder: URL, trial: Int, rungs: [Int]) -> Int? {
        for r in rungs {
            let url = rungFolder(folder, r).appendingPathComponent(String(format: "%03d.decision", trial))
            if let d = FileManager.default.contents(atPath: url.path), String(data: d, encoding: .utf8) == "stop" { return r }
        }
        return nil
    }

    static func stoppedBefore(folder: URL, rung: Int, trial: Int, rungs: [Int]) -> Bool {
        guard let at = stoppedAt(folder: folder, trial: trial, rungs: rungs) else { return false }
        return at < rung
    }
}
