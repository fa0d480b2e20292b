// MARK: - Views and copies that change shape

extension Tensor {
    /// Same elements in a new shape; one dimension may be -1. A view when contiguous.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        var shape = newShape
        let unknown = shape.indices.filter { shape[$0] == -1 }
        try require(unknown.count <= 1, "reshape", "more than one -1 in \(shapeString(newShape))")
        try require(shape.allSatisfy { $0 >= -1 }, "reshape", "negative dimension in \(shapeString(newShape))")
        if let u = unknown.first {
            let known = shape.enumerated().filter { $0.offset != u }.map(\.element).reduce(1, *)
            try check(known > 0 && count % known == 0, "reshape", "cannot reshape \(shapeString(self.shape)) into \(shapeString(newShape))")
            shape[u] = count / known
        }
        try check(Tensor.count(shape) == count, "reshape",
                  "cannot reshape \(shapeString(self.shape)) (\(count) elements) into \(shapeString(newShape))")
        let base = isContiguous ? self : contiguousData()
        let out = Tensor(storage: base.storage, shape: shape, offset: base.offset)
        let inShape = self.shape
        return out.recorded("reshape", [self]) { g in [try g.reshaped(inShape)] }
    }

    /// Reorders dimensions (a view).
    public func permuted(_ order: [Int]) throws -> Tensor {
        try require(order.count == rank && Set(order) == Set(0..<rank), "permute",
                    "\(order) is not a permutation of the \(rank) axes of \(shapeString(shape))")
        let out = Tensor(storage: storage, shape: order.map { shape[$0] }, strides: order.map { strides[$0] }, offset: offset)
        var inverse = [Int](repeating: 0, count: order.count)
        for (i, o) in order.enumerated() { inverse[o] = i }
        return out.recorded("permute", [self]) { g in [try g.permuted(inverse)] }
    }

    /// Swaps two dimensions (a view).
    public func transposed(_ a: Int = -2, _ b: Int = -1) throws -> Tensor {
        let x = try axis(a, op: "transpose"), y = try axis(b, op: "transpose")
        var order = Array(0..<rank)
        order.swapAt(x, y)
        return try permuted(order)
    }

    /// Elements `start ..< end` (step `step`) along `axis` (a view).
    public func slice(axis: Int, start: Int, end: Int, step: Int = 1) throws -> Tensor {
        let a = try self.axis(axis, op: "slice")
        try require(step > 0, "slice", "step must be positive, got \(step)")
        try require(start >= 0 && start <= end && end <= shape[a], "slice",
                    "range \(start)..<\(end) outside axis \(axis) of length \(shape[a])")
        var newShape = shape, newStrides = strides
        newShape[a] = (end - start + step - 1) / step
        newStrides[a] = strides[a] * step
        let out = Tensor(storage: storage, shape: newShape, strides: newStrides, offset: offset + start * strides[a])
        let inShape = shape
        return out.recorded("slice", [self]) { g in
            let full = Tensor.zeros(inShape)
            let view = Tensor(storage: full.storage, shape: newShape,
                              strides: Tensor.contiguousStrides(inShape).enumerated().map { $0.offset == a ? $0.element * step : $0.element },
                              offset: start * Tensor.contiguousStrides(inShape)[a])
            scatterInto(view, g)
            return [full]
        }
    }

    /// Inserts a dimension of size 1.
    public func unsqueezed(_ axis: Int) throws -> Tensor {
        let a = axis < 0 ? axis + rank + 1 : axis
        try require(a >= 0 && a <= rank, "unsqueeze", "axis \(axis) out of range for rank \(rank)")
        var s = shape; s.insert(1, at: a)
        return try reshaped(s)
    }
}

/// Writes `src` (any layout) into the strided view `dst` element by element.
func scatterInto(_ dst: Tensor, _ src: Tensor) {
    let c = src.contiguousData()
    let n = dst.count
    if n == 0 { return }
    let rank = dst.rank
    var idx = [Int](repeating: 0, count: rank)
    let p = dst.data
    for i in 0..<n {
        var off = 0
        for d in 0..<rank { off += idx[d] * dst.strides[d] }
        p[off] = c.data[i]
        var d = rank - 1
        while d >= 0 { idx[d] += 1; if idx[d] < dst.shape[d] { break }; idx[d] = 0; d -= 1 }
    }
}

/// Broadcasts `x` to `shape` and materialises it (used for reduction gradients).
public func expand(_ x: Tensor, to shape: [Int]) throws -> Tensor {
    let target = try broadcastShape(x.shape, shape, op: "expand")
    try check(target == shape, "expand", "cannot expand \(shapeString(x.shape)) to \(shapeString(shape))")
    let view = Tensor(storage: x.storage, shape: shape, strides: broadcastStrides(x, to: shape), offset: x.offset)
    let out = view.clone()
    let inShape = x.shape
    return out.recorded("expand", [x]) { g in [try reduceToShape(g, inShape)] }
}

/// Joins tensors along an existing axis.
public func concat(_ tensors: [Tensor], axis: Int) throws -> Tensor {
    guard let first = tensors.first else { throw TensorError.invalidArgument(op: "concat", detail: "no tensors to join") }
    let a = try first.axis(axis, op: "concat")
    for (i, t) in tensors.enumerated() {
        try check(t.rank == first.rank && (0..<t.rank).allSatisfy { $0 == a || t.shape[$0] == first.shape[$0] }, "concat",
                  "tensor \(i) has shape \(shapeString(t.shape)), expected \(shapeString(first.shape)) except along axis \(a)")
    }
    var outShape = first.shape
    outShape[a] = tensors.reduce(0) { $0 + $1.shape[a] }
    let out = Tensor(uninitialized: outShape)
    let outer = outShape[..<a].reduce(1, *)
    let inner = outShape[(a + 1)...].reduce(1, *)
    let rowOut = outShape[a] * inner
    var start = 0
    var starts: [Int] = []
    for t in tensors {
        starts.append(start)
        let c = t.contiguousData()
        let w = t.shape[a] * inner
        for o in 0..<outer { (out.data + o * rowOut + start * inner).update(from: c.data + o * w, count: w) }
        start += t.shape[a]
    }
    return out.recorded("concat", tensors) { g in
        try tensors.enumerated().map { i, t in
            t.requiresGrad ? try g.slice(axis: a, start: starts[i], end: starts[i] + t.shape[a]).contiguousData() : nil
        }
    }
}

/// Joins tensors of equal shape along a new axis.
public func stack(_ tensors: [Tensor], axis: Int) throws -> Tensor {
    guard let first = tensors.first else { throw TensorError.invalidArgument(op: "stack", detail: "no tensors to stack") }
    for (i, t) in tensors.enumerated() {
        try check(t.shape == first.shape, "stack", "tensor \(i) has shape \(shapeString(t.shape)), expected \(shapeString(first.shape))")
    }
    return try concat(try tensors.map { try $0.unsqueezed(axis) }, axis: axis)
}

/// Picks rows along `axis` by index (embedding lookup when `x` is a [vocab, dim] table).
/// Backward scatter-adds, split over the trailing columns so it stays deterministic.
public func indexSelect(_ x: Tensor, axis: Int, indices: [Int]) throws -> Tensor {
    let a = try x.axis(axis, op: "indexSelect")
    let n = x.shape[a]
    for (i, idx) in indices.enumerated() {
        try require(idx >= 0 && idx < n, "indexSelect", "index \(idx) at position \(i) is outside 0..<\(n) (axis \(axis) of \(shapeString(x.shape)))")
    }
    let c = x.contiguousData()
    let outer = x.shape[..<a].reduce(1, *)
    let inner = x.shape[(a + 1)...].reduce(1, *)
    var outShape = x.shape
    outShape[a] = indices.count
    let out = Tensor(uninitialized: outShape)
    let src = c.data, dst = out.data, k = indices.count
    indices.withUnsafeBufferPointer { ip in
        Parallel.forRange(outer * k, grain: max(1, 16384 / max(inner, 1))) { r in
            for j in r {
                let o = j / k, i = j % k
                (dst + j * inner).update(from: src + (o * n + ip[i]) * inner, count: inner)
            }
        }
    }
    let inShape = x.shape
    return out.recorded("indexSelect", [x]) { g in
        let gc = g.contiguousData()
        let gx = Tensor.zeros(inShape)
        let gp = gc.data, gxp = gx.data
        indices.withUnsafeBufferPointer { ip in
            Parallel.forRange(inner, grain: 64) { cols in
                for o in 0..<outer {
                    for i in 0..<k {
                        let s = gp + (o * k + i) * inner + cols.lowerBound
                        let d = gxp + (o * n + ip[i]) * inner + cols.lowerBound
                        zip8(d, s, d, cols.count) { $0 + $1 }
                    }
                }
            }
        }
        return [gx]
    }
}

/// `out[..., j, ...] = x[..., index[..., j, ...], ...]` along `axis` (like `torch.gather`);
/// `index` has the output's shape.
public func gather(_ x: Tensor, axis: Int, index: [Int], indexShape: [Int]) throws -> Tensor {
    let a = try x.axis(axis, op: "gather")
    try check(indexShape.count == x.rank && Tensor.count(indexShape) == index.count, "gather",
              "index shape \(shapeString(indexShape)) does not fit \(index.count) indices for a rank-\(x.rank) input")
    for d in 0..<x.rank where d != a {
        try check(indexShape[d] <= x.shape[d], "gather", "index dimension \(d) is \(indexShape[d]) but input has \(x.shape[d])")
    }
    let n = x.shape[a]
    for (i, v) in index.enumerated() {
        try require(v >= 0 && v < n, "gather", "index \(v) at flat position \(i) is outside 0..<\(n)")
    }
    let c = x.contiguousData()
    let xs = Tensor.contiguousStrides(x.shape)
    let out = Tensor(uninitialized: indexShape)
    var offsets = [Int](repeating: 0, count: index.count)
    var idx = [Int](repeating: 0, count: indexShape.count)
    for j in 0..<index.count {
        var off = 0
        for d in 0..<idx.count { off += (d == a ? index[j] : idx[d]) * xs[d] }
        offsets[j] = off
        out.data[j] = c.data[off]
        var d = idx.count - 1
        while d >= 0 { idx[d] += 1; if idx[d] < indexShape[d] { break }; idx[d] = 0; d -= 1 }
    }
    let inShape = x.shape
    return out.recorded("gather", [x]) { g in
        let gc = g.contiguousData()
        let gx = Tensor.zeros(inShape)
        for j in 0..<offsets.count { gx.data[offsets[j]] += gc.data[j] }
        return [gx]
    }
}
