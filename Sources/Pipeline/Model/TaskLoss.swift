import Foundation
import Spec
import TensorEngine
import Training

/// The training loss `trainer.loss` and `trainer.label_smoothing` describe, for one problem.
/// Regression targets are standardised, so `mse`/`huber` work on the same scale whatever the
/// label's units.
enum TaskLoss: Codable, Equatable {
    /// Cross-entropy (label smoothing 0) for classes, mean squared error for regression.
    case auto
    case crossEntropy(labelSmoothing: Float)
    case focal(gamma: Float, alpha: [Float]?)
    case mse
    case huber(delta: Float)

    /// The loss the spec asks for; throws (with the key's location) when it does not fit the problem.
    init(_ spec: PipelineSpec, problem: ProblemType, classes: Int) throws {
        let t = spec.trainer
        let at = spec.sources["trainer.loss.kind"] ?? spec.sources["trainer.loss"]
        let classification = problem != .regression
        if t.labelSmoothing > 0 && !classification {
            throw PipelineError("trainer.label_smoothing applies to classification; this is a regression problem",
                                at: spec.sources["trainer.label_smoothing"], hint: "remove label_smoothing")
        }
        switch t.loss.kind {
        case .auto:
            self = classification ? .crossEntropy(labelSmoothing: Float(t.labelSmoothing)) : .mse
        case .cross_entropy:
            guard classification else {
                throw PipelineError("trainer.loss cross_entropy needs classes; this is a regression problem", at: at, hint: "use mse, huber or auto")
            }
            self = .crossEntropy(labelSmoothing: Float(t.labelSmoothing))
        case .focal:
            guard classification else {
                throw PipelineError("trainer.loss focal needs classes; this is a regression problem", at: at, hint: "use mse, huber or auto")
            }
            if let alpha = t.loss.alpha, alpha.count != classes {
                throw PipelineError("trainer.loss.alpha has \(alpha.count) weight(s) for \(classes) classes",
                                    at: spec.sources["trainer.loss.alpha"] ?? at, hint: "give one weight per class, in label order, or remove alpha")
            }
            if t.labelSmoothing > 0 {
                throw PipelineError("trainer.label_smoothing does not combine with the focal loss", at: spec.sources["trainer.label_smoothing"],
                                    hint: "remove label_smoothing, or use loss: {kind: cross_entropy}")
            }
            self = .focal(gamma: Float(t.loss.gamma), alpha: t.loss.alpha.map { $0.map(Float.init) })
        case .mse, .huber:
            guard !classification else {
                throw PipelineError("trainer.loss \(t.loss.kind.rawValue) is a regression loss; this is a \(problem.rawValue) problem",
                                    at: at, hint: "use cross_entropy, focal or auto")
            }
            self = t.loss.kind == .mse ? .mse : .huber(delta: Float(t.loss.delta))
        }
    }

    /// The mean loss of `logits` against class indices or standardised values (`targets`), or
    /// against probability rows `soft` when given (mixup).
    func loss(_ logits: Tensor, problem: ProblemType, targets: [Float], soft: Tensor?) throws -> Tensor {
        if let soft { return try softTargetCrossEntropy(logits, targets: soft) }
        switch self {
        case .auto:
            return problem == .regression ? try mseLoss(logits, try values(targets)) : try TensorEngine.crossEntropy(logits, targets: targets.map { Int($0) })
        case .crossEntropy(let smoothing):
            return try TensorEngine.crossEntropy(logits, targets: targets.map { Int($0) }, labelSmoothing: smoothing)
        case .focal(let gamma, let alpha):
            return try focalLoss(logits, targets: targets.map { Int($0) }, alpha: alpha, gamma: gamma)
        case .mse:
            return try mseLoss(logits, try values(targets))
        case .huber(let delta):
            return try huberLoss(logits, try values(targets), delta: delta)
        }
    }

    private func values(_ targets: [Float]) throws -> Tensor { try Tensor(targets, shape: [targets.count, 1]) }
}
