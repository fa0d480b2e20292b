import TensorEngine

// Classification losses composed from engine ops, so their gradients come from the ops'.
// Plain and label-smoothed cross-entropy is the engine's `crossEntropy(_:targets:labelSmoothing:)`.

/// Focal loss for single-label classification, as AutoMM's `FocalLoss` (Lin et al. 2017, after
/// AdeelH's multi-class version): with p = softmax(logits) and t_i the target class of row i,
///
///     loss_i = (1 − p[i, t_i])^γ · (−α[t_i] · log p[i, t_i])
///
/// reduced by the plain mean over the N rows (`reduction: "mean"`; not divided by the summed α,
/// unlike weighted cross-entropy). α is one weight per class (nil: all 1), γ ≥ 0 (AutoMM's default
/// 2; γ = 0 is α-weighted cross-entropy with a plain mean).
///
/// - Parameters:
///   - logits: [N, C].
///   - targets: N class indices in 0..<C.
public func focalLoss(_ logits: Tensor, targets: [Int], alpha: [Float]? = nil, gamma: Float = 2) throws -> Tensor {
    guard logits.rank == 2, logits.shape[0] >= 1, logits.shape[1] >= 1 else {
        throw TrainingError.invalidParameter(component: "focal_loss", detail: "logits must be [batch, classes] with both ≥ 1, got \(shapeString(logits.shape))")
    }
    let n = logits.shape[0], c = logits.shape[1]
    try checkTargets(targets, rows: n, classes: c, component: "focal_loss")
    try requireHyper(gamma.isFinite && gamma >= 0, "focal_loss", "gamma", "must be a finite number >= 0 (AutoMM's default is 2), got \(fmt(gamma))")
    if let alpha {
        try requireHyper(alpha.count == c, "focal_loss", "alpha", "needs one weight per class (\(c)), got \(alpha.count)")
        try requireHyper(alpha.allSatisfy { $0.isFinite && $0 >= 0 }, "focal_loss", "alpha", "weights must be finite and >= 0, got \(alpha)")
    }
    let logp = try logSoftmax(logits, axis: 1)
    let logpt = try gather(logp, axis: 1, index: targets, indexShape: [n, 1])
    var ce = try neg(logpt)
    if let alpha { ce = try mul(ce, try Tensor(targets.map { alpha[$0] }, shape: [n, 1])) }
    guard gamma != 0 else { return try mean(ce) }
    let oneMinus = try addScalar(try neg(try exp(logpt)), 1)
    // Clamped at 0 from below: p can round to slightly above 1.
    let base = try clamp(oneMinus, min: 0)
    let focal = gamma == 1 ? base : try pow(base, gamma)
    return try mean(try mul(focal, ce))
}

/// Cross-entropy against probability rows (timm's `SoftTargetCrossEntropy`): the mean over rows
/// of −Σ_j q[i, j] · log softmax(logits)[i, j]. What mixup/cutmix targets (`Mixup`) and
/// explicitly smoothed one-hot targets train with; for one-hot rows it equals `crossEntropy`.
///
/// - Parameters:
///   - logits: [N, C].
///   - targets: [N, C] target distributions (finite; rows normally sum to 1). Not differentiated.
public func softTargetCrossEntropy(_ logits: Tensor, targets: Tensor) throws -> Tensor {
    guard logits.rank == 2, logits.shape[0] >= 1, logits.shape[1] >= 1 else {
        throw TrainingError.invalidParameter(component: "soft_target_cross_entropy",
                                             detail: "logits must be [batch, classes] with both ≥ 1, got \(shapeString(logits.shape))")
    }
    guard targets.shape == logits.shape else {
        throw TrainingError.invalidParameter(component: "soft_target_cross_entropy",
                                             detail: "targets \(shapeString(targets.shape)) must have the logits' shape \(shapeString(logits.shape))")
    }
    let q = targets.detached()
    guard q.toArray().allSatisfy(\.isFinite) else {
        throw TrainingError.invalidParameter(component: "soft_target_cross_entropy", detail: "targets hold a non-finite value")
    }
    let logp = try logSoftmax(logits, axis: 1)
    return try mean(try neg(try sum(try mul(logp, q), axes: [1])))
}

/// One-hot rows [N, C] smoothed as timm's `mixup_target` and PyTorch's label smoothing do:
/// every entry `smoothing / C`, the target's `1 − smoothing + smoothing / C`.
public func smoothedOneHot(_ targets: [Int], classes: Int, smoothing: Float = 0) throws -> Tensor {
    try requireHyper(classes >= 1, "one_hot", "classes", "must be >= 1, got \(classes)")
    try requireHyper(smoothing.isFinite && smoothing >= 0 && smoothing <= 1, "one_hot", "smoothing", "must be in [0, 1], got \(fmt(smoothing))")
    try checkTargets(targets, rows: targets.count, classes: classes, component: "one_hot")
    let off = smoothing / Float(classes), on = 1 - smoothing + off
    var values = [Float](repeating: off, count: targets.count * classes)
    for (i, t) in targets.enumerated() { values[i * classes + t] = on }
    return try Tensor(values, shape: [targets.count, classes])
}

/// Throws unless there are `rows` targets, each in 0..<classes.
func checkTargets(_ targets: [Int], rows: Int, classes: Int, component: String) throws {
    guard targets.count == rows else {
        throw TrainingError.invalidParameter(component: component, detail: "\(targets.count) targets for \(rows) rows of logits")
    }
    if let (i, t) = targets.enumerated().first(where: { $0.element < 0 || $0.element >= classes }) {
        throw TrainingError.invalidParameter(component: component, detail: "target \(t) in row \(i) is outside 0..<\(classes)")
    }
}
