// The prediction head for a problem type, as AutoGluon-Multimodal builds it: one Linear from the
// fused features to the outputs — `numClasses` logits for classification (binary included: two
// logits with softmax cross-entropy, not one with BCE) or a single value for regression — and
// the matching loss. Reference: autogluon/multimodal/models/ (the `head` Linear of each model) and
// autogluon/multimodal/optimization/utils.py `get_loss_func`.
//
// Parameter keys: `weight` [outputs, inputDim], `bias` [outputs] (a parent registers the head,
// e.g. as `head`, giving `head.weight`).
//
// The Models target does not depend on Training, so the head is described by `TaskHead.Kind`;
// Training's `ProblemType` maps onto it as `.binary → .classification(classes: 2)`,
// `.multiclass → .classification(classes: n)`, `.regression → .regression`.
import Layers
import TensorEngine

/// A Linear head with the loss and probabilities of its task.
public final class TaskHead: Module {
    /// What the head predicts.
    public enum Kind: Sendable, Equatable {
        /// `classes` logits (2 for a binary problem) trained with softmax cross-entropy.
        case classification(classes: Int)
        /// One value per row trained with mean squared error on standardised targets.
        case regression
    }

    public let kind: Kind
    public let inputDim: Int
    /// Logit count for classification, 1 for regression.
    public let outputs: Int
    public let weight: Tensor
    public let bias: Tensor

    /// Initialised like PyTorch's `nn.Linear`. Throws for a non-positive input width or fewer than
    /// 2 classes.
    public init(inputDim: Int, kind: Kind, rng: RandomSource) throws {
        guard inputDim > 0 else {
            throw TabularModelError.invalidConfig(model: "task_head", field: "input_dim", detail: "\(inputDim) must be positive")
        }
        if case .classification(let classes) = kind, classes < 2 {
            throw TabularModelError.invalidConfig(model: "task_head", field: "num_classes", detail: "a classifier needs at least 2 classes, got \(classes)")
        }
        self.kind = kind
        self.inputDim = inputDim
        if case .classification(let classes) = kind { outputs = classes } else { outputs = 1 }
        let linear = Linear(inputDim, outputs, rng: rng)
        weight = linear.weight
        bias = linear.bias ?? Tensor.parameter(Tensor.zeros([outputs]))
        super.init()
        register(parameter: "weight", weight)
        register(parameter: "bias", bias)
    }

    /// Logits `[B, outputs]` for features `[B, inputDim]`.
    public func callAsFunction(_ features: Tensor) throws -> Tensor {
        guard features.rank == 2, features.shape[1] == inputDim else {
            throw TabularModelError.targets("features \(shapeString(features.shape)) do not match the head's input [batch, \(inputDim)]")
        }
        return try linear(features, weight: weight, bias: bias)
    }

    /// Mean softmax cross-entropy against class indices (classification heads only).
    public func loss(_ logits: Tensor, classes: [Int]) throws -> Tensor {
        guard kind != .regression else {
            throw TabularModelError.targets("a regression head takes real-valued targets, not class indices")
        }
        try checkLogits(logits)
        guard classes.count == logits.shape[0] else {
            throw TabularModelError.targets("\(classes.count) targets for \(logits.shape[0]) rows of logits")
        }
        for (row, c) in classes.enumerated() where c < 0 || c >= outputs {
            throw TabularModelError.targets("class \(c) in row \(row) is outside 0..<\(outputs)")
        }
        return try crossEntropy(logits, targets: classes)
    }

    /// Mean squared error against (standardised) targets, one per row (regression heads only).
    public func loss(_ logits: Tensor, values: [Float]) throws -> Tensor {
        guard kind == .regression else {
            throw TabularModelError.targets("a classification head takes class indices, not real-valued targets")
        }
        try checkLogits(logits)
        guard values.count == logits.shape[0] else {
            throw TabularModelError.targets("\(values.count) targets for \(logits.shape[0]) rows of predictions")
        }
        return try mseLoss(logits, try Tensor(values, shape: [values.count, 1]))
    }

    /// Class probabilities `[B, numClasses]` (softmax of the logits); regression has none.
    public func probabilities(_ logits: Tensor) throws -> Tensor {
        guard kind != .regression else {
            throw TabularModelError.targets("a regression head has no class probabilities; read its outputs with `predictions`")
        }
        try checkLogits(logits)
        return try softmax(logits, axis: -1)
    }

    /// Predicted values: the arg-max class per row for classification, the output for regression.
    public func predictions(_ logits: Tensor) throws -> [Float] {
        try checkLogits(logits)
        if kind == .regression { return logits.toArray() }
        return try argmax(logits, axis: 1).toArray()
    }

    func checkLogits(_ logits: Tensor) throws {
        guard logits.rank == 2, logits.shape[1] == outputs else {
            throw TabularModelError.targets("logits \(shapeString(logits.shape)) are not [batch, \(outputs)]")
        }
    }
}
