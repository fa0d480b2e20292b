import TensorEngine

/// How `TopKCheckpoints` turns its kept copies into the final weights (AutoMM's
/// `optimization.top_k_average_method`).
public enum CheckpointAveraging: String, Codable, Sendable, CaseIterable {
    /// The best copy alone (`best`).
    case best
    /// The element-wise mean of every kept copy (`uniform_soup`).
    case uniformSoup = "uniform_soup"
    /// AutoMM's greedy soup (`greedy_soup`, Wortsman et al. 2022, "Model soups"): start from the
    /// best copy and score it; then, in order of recorded score, average the next copy into the
    /// soup and keep it there when the averaged weights score no worse (≤ for min, ≥ for max)
    /// than the soup's current score, which then becomes that score.
    case greedySoup = "greedy_soup"
}

/// Keeps in-memory copies of the weights (`TrainerContext.state`: parameters and buffers) at the
/// `k` best validations by `monitor` (Lightning's `ModelCheckpoint(save_top_k:)`, AutoMM's
/// `model_checkpoint.save_top_k`, default 3) and, when training ends, installs the best one,
/// their uniform average or AutoMM's greedy soup (see `CheckpointAveraging`).
///
/// A validation enters when fewer than `k` copies are kept or its value is strictly better than
/// the worst kept one (which is then dropped); NaN never enters; equal values keep the earlier
/// validation ahead. Each copy taken is announced as a `.checkpoint` event with its rank.
/// Greedy soup scores weight sets with `evaluate`, which must score the model's current weights
/// on the validation data in the monitored direction (the trainer's validation); it runs without
/// recording after training, with the model in evaluation mode.
public final class TopKCheckpoints: MonitoringCallback {
    public let monitor: String
    public let mode: MonitorMode
    public let k: Int
    public let averaging: CheckpointAveraging
    let evaluate: (() throws -> Double)?

    /// A kept copy and the validation it belongs to.
    struct Kept {
        var value: Double
        var step: Int
        var epoch: Int
        var epochProgress: Double
        var weights: [Tensor]
    }
    /// Best first.
    var kept: [Kept] = []

    /// The global steps whose weights make up the installed result, best first (empty before
    /// the end of a fit or when no validation was seen).
    public private(set) var installedSteps: [Int] = []
    /// Greedy soup: the score `evaluate` gave the installed soup (nil otherwise).
    public private(set) var installedScore: Double?

    public var bestEpoch: Int? { kept.first?.epoch }
    public var bestStep: Int? { kept.first?.step }
    public var bestValue: Double? { kept.first?.value }
    /// (global step, value) of the kept copies, best first.
    public var keptValidations: [(step: Int, value: Double)] { kept.map { ($0.step, $0.value) } }

    /// Throws when `k` < 1 or greedy soup has no `evaluate`.
    public init(monitor: String, mode: MonitorMode, k: Int = 3, averaging: CheckpointAveraging = .greedySoup,
                evaluate: (() throws -> Double)? = nil) throws {
        try requireHyper(k >= 1, "top_k_checkpoints", "k", "must be >= 1 (1 keeps the best weights only), got \(k)")
        if averaging == .greedySoup, evaluate == nil {
            throw TrainingError.invalidHyperparameter(
                component: "top_k_checkpoints", field: "averaging",
                detail: "greedy_soup needs an evaluate closure that scores the current weights; pass evaluate: or use uniform_soup or best")
        }
        self.monitor = monitor
        self.mode = mode
        self.k = k
        self.averaging = averaging
        self.evaluate = evaluate
    }

    func better(_ a: Double, than b: Double) -> Bool { mode == .min ? a < b : a > b }

    public func on(_ event: TrainerEvent, trainer: any TrainerContext) throws -> TrainerDecision {
        switch event {
        case .trainBegin:
            kept = []
            installedSteps = []
            installedScore = nil
        case .validation(let record):
            let v = try monitoredValue(record, monitor, component: "top_k_checkpoints")
            guard !v.isNaN else { break }
            if kept.count == k, let worst = kept.last, !better(v, than: worst.value) { break }
            let rank = (kept.firstIndex { better(v, than: $0.value) } ?? kept.count)
            kept.insert(Kept(value: v, step: record.step, epoch: record.epoch, epochProgress: record.epochProgress,
                             weights: takeSnapshot(trainer.state)), at: rank)
            if kept.count > k { kept.removeLast() }
            trainer.reportCheckpoint(CheckpointRecord(source: "top_k_checkpoints", monitor: monitor, value: v, step: record.step,
                                                      epoch: record.epoch, epochProgress: record.epochProgress, rank: rank + 1))
        case .trainEnd:
            try installFinal(into: trainer.state)
        default:
            break
        }
        return .proceed
    }

    func installFinal(into state: [(name: String, tensor: Tensor)]) throws {
        guard let best = kept.first else { return }
        switch averaging {
        case .best:
            try install(best.weights, into: state, component: "top_k_checkpoints")
            installedSteps = [best.step]
        case .uniformSoup:
            try install(averageSnapshots(kept.map(\.weights)), into: state, component: "top_k_checkpoints")
            installedSteps = kept.map(\.step)
        case .greedySoup:
            guard let evaluate else { return }
            try install(best.weights, into: state, component: "top_k_checkpoints")
            var score = try withNoGrad { try evaluate() }
            var ingredients = [best]
            for candidate in kept.dropFirst() {
                try install(averageSnapshots((ingredients + [candidate]).map(\.weights)), into: state, component: "top_k_checkpoints")
                let s = try withNoGrad { try evaluate() }
                if mode == .min ? s <= score : s >= score {
                    ingredients.append(candidate)
                    score = s
                }
            }
            try install(averageSnapshots(ingredients.map(\.weights)), into: state, component: "top_k_checkpoints")
            installedSteps = ingredients.map(\.step)
            installedScore = score
        }
    }
}
