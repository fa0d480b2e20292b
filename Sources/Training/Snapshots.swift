import TensorEngine

/// Contiguous copies of every tensor of `state`, in order.
func takeSnapshot(_ state: [(name: String, tensor: Tensor)]) -> [Tensor] {
    state.map { $0.tensor.clone() }
}

/// Writes `snapshot` back into the tensors of `state` (same order and sizes).
func install(_ snapshot: [Tensor], into state: [(name: String, tensor: Tensor)], component: String) throws {
    guard snapshot.count == state.count else {
        throw TrainingError.invalidParameter(
            component: component, detail: "the kept copy holds \(snapshot.count) tensors but the model has \(state.count); the model changed during training")
    }
    for ((name, p), saved) in zip(state, snapshot) {
        guard p.isContiguous, p.count == saved.count else {
            throw TrainingError.invalidParameter(
                component: component,
                detail: "cannot restore '\(name)' \(shapeString(p.shape)): it must be a contiguous tensor of \(saved.count) elements")
        }
        p.data.update(from: saved.data, count: saved.count)
    }
}

/// The element-wise mean of several snapshots of the same tensors (PyTorch-style checkpoint
/// averaging): each element is summed in Double in the order given, then divided by the count,
/// so the result does not depend on threads.
func averageSnapshots(_ snapshots: [[Tensor]]) -> [Tensor] {
    guard let first = snapshots.first else { return [] }
    if snapshots.count == 1 { return first.map { $0.clone() } }
    let scale = 1 / Double(snapshots.count)
    return first.indices.map { t in
        let out = Tensor(uninitialized: first[t].shape)
        let n = out.count
        let o = out.data
        for i in 0..<n {
            var s = 0.0
            for snap in snapshots { s += Double(snap[t].data[i]) }
            o[i] = Float(s * scale)
        }
        return out
    }
}
