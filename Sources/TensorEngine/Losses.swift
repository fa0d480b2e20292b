import Foundation

// MARK: - Losses (each returns a scalar mean over the counted elements)

/// Softmax cross-entropy of logits [N, C] against class indices, as
/// `torch.nn.functional.cross_entropy`: optional per-class weights (the mean divides by the
/// summed weights of counted targets), `ignoreIndex` targets contribute nothing, and label
/// smoothing mixes the one-hot target with the uniform distribution.
public func crossEntropy(_ logits: Tensor, targets: [Int], weights: [Float]? = nil, ignoreIndex: Int? = nil,
                         labelSmoothing: Float = 0) throws -> Tensor {
    try check(logits.rank == 2, "crossEntropy", "logits must be [batch, classes], got \(shapeString(logits.shape))")
    let n = logits.shape[0], c = logits.shape[1]
    try check(targets.count == n, "crossEntropy", "\(targets.count) targets for \(n) rows of logits")
    try require(labelSmoothing >= 0 && labelSmoothing <= 1, "crossEntropy", "label smoothing \(labelSmoothing) must be in [0, 1]")
    if let weights { try check(weights.count == c, "crossEntropy", "\(weights.count) class weights for \(c) classes") }
    for (i, t) in targets.enumerated() where t != ignoreIndex {
        try require(t >= 0 && t < c, "crossEntropy", "target \(t) in row \(i) is outside 0..<\(c)")
    }
    let xc = logits.contiguousData()
    let logp = Tensor(uninitialized: [n, c])
    let px = xc.data, pl = logp.data
    Parallel.forRange(n, grain: max(1, 4096 / max(c, 1))) { r in for i in r { logSoftmaxRow(px + i * c, pl + i * c, c) } }
    let eps = labelSmoothing
    var total = 0.0, denom = 0.0
    var rowWeight = [Float](repeating: 0, count: n)
    for i in 0..<n {
        let t = targets[i]
        if t == ignoreIndex { continue }
        let row = pl + i * c
        let wt = weights?[t] ?? 1
        var loss = -Double(row[t]) * Double(1 - eps) * Double(wt)
        if eps > 0 {
            var sm = 0.0
            for j in 0..<c { sm += -Double(row[j]) * Double(weights?[j] ?? 1) }
            loss += Double(eps) / Double(c) * sm
        }
        total += loss
        denom += Double(wt)
        rowWeight[i] = wt
    }
    let result = Tensor(scalar: denom > 0 ? Float(total / denom) : 0)
    let scaleAll = denom > 0 ? Float(1 / denom) : 0
    return result.recorded("crossEntropy", [logits]) { g in
        // Read the saved log-probabilities through the captured tensor, which keeps them alive
        // (a pointer taken outside the closure would dangle once this function returns).
        let pl = logp.data
        let gs = try g.item() * scaleAll
        let gx = Tensor(uninitialized: [n, c])
        let pg = gx.data
        // The label-smoothing part of q ⊙ w is the same for every row: computed once.
        let smooth: [Float]? = eps > 0 ? (0..<c).map { eps / Float(c) * (weights?[$0] ?? 1) } : nil
        let smoothTotal = smooth?.reduce(0, +) ?? 0
        for i in 0..<n {
            let row = pg + i * c, lp = pl + i * c
            let t = targets[i]
            if t == ignoreIndex { row.initialize(repeating: 0, count: c); continue }
            // d/dz of −Σ_j q_j w_j log p_j with q = (1−ε)·onehot + ε/C:
            //   Σ_j q_j w_j · p − q ⊙ w
            let hard = (1 - eps) * rowWeight[i]
            guard let smooth else {
                for j in 0..<c { row[j] = gs * (hard * Foundation.exp(lp[j]) - (j == t ? hard : 0)) }
                continue
            }
            let total = hard + smoothTotal
            for j in 0..<c {
                let qw = j == t ? hard + smooth[j] : smooth[j]
                row[j] = gs * (total * Foundation.exp(lp[j]) - qw)
            }
        }
        return [gx]
    }
}

/// Binary cross-entropy on logits, stable (max(x,0) − x·y + log(1 + e^−|x|)); optional
/// `posWeight` scales the positive term as in `BCEWithLogitsLoss`.
public func binaryCrossEntropyWithLogits(_ logits: Tensor, targets: Tensor, posWeight: Float? = nil) throws -> Tensor {
    try check(logits.shape == targets.shape, "binaryCrossEntropyWithLogits",
              "logits \(shapeString(logits.shape)) and targets \(shapeString(targets.shape)) differ")
    let x = logits.contiguousData(), y = targets.contiguousData()
    let n = logits.count
    try require(n > 0, "binaryCrossEntropyWithLogits", "empty input")
    let pw = posWeight ?? 1
    var total = 0.0
    for i in 0..<n {
        let xi = x.data[i], yi = y.data[i]
        let logSig = -(Swift.max(-xi, 0) + Foundation.log(1 + Foundation.exp(-Swift.abs(xi))))   // log σ(x)
        let logOneMinus = logSig - xi                                                           // log(1 − σ(x))
        total += Double(-(pw * yi * logSig + (1 - yi) * logOneMinus))
    }
    let out = Tensor(scalar: Float(total / Double(n)))
    return out.recorded("bceWithLogits", [logits, targets]) { g in
        let gs = try g.item() / Float(n)
        let gx = Tensor(uninitialized: logits.shape)
        for i in 0..<n {
            let xi = x.data[i], yi = y.data[i]
            let s = 1 / (1 + Foundation.exp(-xi))
            // d/dx = (pw·y + 1 − y)·σ(x) − pw·y
            gx.data[i] = gs * ((pw * yi + 1 - yi) * s - pw * yi)
        }
        var gy: Tensor? = nil
        if targets.requiresGrad {
            let t = Tensor(uninitialized: targets.shape)
            for i in 0..<n {
                let xi = x.data[i]
                let logSig = -(Swift.max(-xi, 0) + Foundation.log(1 + Foundation.exp(-Swift.abs(xi))))
                t.data[i] = gs * (-(pw * logSig) + (logSig - xi))
            }
            gy = t
        }
        return [gx, gy]
    }
}

/// Mean squared error.
public func mseLoss(_ prediction: Tensor, _ target: Tensor) throws -> Tensor {
    try check(prediction.shape == target.shape, "mseLoss", "prediction \(shapeString(prediction.shape)) and target \(shapeString(target.shape)) differ")
    let d = try sub(prediction, target)
    return try mean(try mul(d, d))
}

/// Huber loss with threshold `delta` (mean), as `torch.nn.functional.huber_loss`.
public func huberLoss(_ prediction: Tensor, _ target: Tensor, delta: Float = 1) throws -> Tensor {
    try check(prediction.shape == target.shape, "huberLoss", "prediction \(shapeString(prediction.shape)) and target \(shapeString(target.shape)) differ")
    try require(delta > 0, "huberLoss", "delta must be positive, got \(delta)")
    let p = prediction.contiguousData(), t = target.contiguousData()
    let n = prediction.count
    try require(n > 0, "huberLoss", "empty input")
    var total = 0.0
    for i in 0..<n {
        let a = Swift.abs(p.data[i] - t.data[i])
        total += Double(a <= delta ? 0.5 * a * a : delta * (a - 0.5 * delta))
    }
    let out = Tensor(scalar: Float(total / Double(n)))
    return out.recorded("huberLoss", [prediction, target]) { g in
        let gs = try g.item() / Float(n)
        let gp = Tensor(uninitialized: prediction.shape)
        for i in 0..<n {
            let r = p.data[i] - t.data[i]
            gp.data[i] = gs * (Swift.abs(r) <= delta ? r : delta * (r > 0 ? 1 : -1))
        }
        return [prediction.requiresGrad ? gp : nil, target.requiresGrad ? try neg(gp) : nil]
    }
}
