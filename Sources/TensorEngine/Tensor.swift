/// A dense Float32 tensor: a shape and strides over shared `Storage`.
///
///     let x = Tensor.uniform([32, 64], low: -1, high: 1, rng: &rng)   // data
///     let w = Tensor.parameter(Tensor.normal([10, 64], std: 0.02, rng: &rng))
///     let y = try linear(x, weight: w, bias: nil)   // records on the tape: w trains
///     let loss = try crossEntropy(y, targets: labels)
///     try loss.backward()                          // w.grad now holds dLoss/dw
///
/// Views (`reshape` of a contiguous tensor, `transposed`, `permuted`, `slice`) share storage;
/// kernels that need contiguous memory call `contiguous()`, which copies only when needed.
/// A tensor that requires a gradient and was produced by an op carries a `gradFn` that knows
/// its inputs and how to push a gradient back to them.
public final class Tensor {
    public let storage: Storage
    public let shape: [Int]
    public let strides: [Int]
    public let offset: Int
    /// Whether gradients flow to (leaf) or through (op output) this tensor.
    public var requiresGrad: Bool
    /// The accumulated gradient of a leaf tensor after `backward()`.
    public var grad: Tensor?
    /// The op that produced this tensor, kept while a backward pass may still need it.
    public internal(set) var gradFn: GradFn?

    public init(storage: Storage, shape: [Int], strides: [Int]? = nil, offset: Int = 0, requiresGrad: Bool = false) {
        self.storage = storage
        self.shape = shape
        self.strides = strides ?? Tensor.contiguousStrides(shape)
        self.offset = offset
        self.requiresGrad = requiresGrad
    }

    /// Uninitialised contiguous tensor (kernels that overwrite every element use it).
    public convenience init(uninitialized shape: [Int]) {
        self.init(storage: Storage(count: Tensor.count(shape)), shape: shape)
    }

    /// A contiguous tensor holding `values` (row-major). Throws when the count does not fit.
    public convenience init(_ values: [Float], shape: [Int]) throws {
        try require(shape.allSatisfy { $0 >= 0 }, "Tensor", "negative dimension in \(shapeString(shape))")
        try check(values.count == Tensor.count(shape), "Tensor",
                  "\(values.count) values cannot fill shape \(shapeString(shape)) (\(Tensor.count(shape)) elements)")
        self.init(uninitialized: shape)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { storage.pointer.update(from: base, count: values.count) }
        }
    }

    /// A 0-dimensional tensor.
    public convenience init(scalar: Float) {
        self.init(uninitialized: [])
        storage.pointer[0] = scalar
    }

    // MARK: - Shape facts

    public var rank: Int { shape.count }
    public var count: Int { Tensor.count(shape) }
    public var data: UnsafeMutablePointer<Float> { storage.pointer + offset }
    public var isContiguous: Bool { strides == Tensor.contiguousStrides(shape) || count <= 1 }
    public var isLeaf: Bool { gradFn == nil }

    public static func count(_ shape: [Int]) -> Int { shape.reduce(1, *) }

    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[i] = acc
            acc *= shape[i]
        }
        return strides
    }

    /// Normalises a possibly negative axis; throws when out of range.
    public func axis(_ a: Int, op: String) throws -> Int {
        let r = a < 0 ? a + rank : a
        try require(r >= 0 && r < max(rank, 1), op, "axis \(a) out of range for shape \(shapeString(shape))")
        return r
    }

    // MARK: - Element access (tests, small results)

    /// The elements in row-major order.
    public func toArray() -> [Float] {
        let c = contiguousData()
        return Array(UnsafeBufferPointer(start: c.data, count: count))
    }

    /// The single element of a one-element tensor.
    public func item() throws -> Float {
        try check(count == 1, "item", "tensor of shape \(shapeString(shape)) has \(count) elements, not 1")
        return data[0]
    }

    /// A contiguous tensor with the same elements (self when already contiguous). Not recorded.
    func contiguousData() -> Tensor {
        if isContiguous { return self }
        let out = Tensor(uninitialized: shape)
        copyStrided(from: self, to: out.data)
        return out
    }

    /// A tensor sharing storage and values but cut off from the tape (PyTorch's `detach`).
    public func detached() -> Tensor {
        Tensor(storage: storage, shape: shape, strides: strides, offset: offset)
    }

    /// A fresh contiguous copy, not recorded.
    public func clone() -> Tensor {
        let out = Tensor(uninitialized: shape)
        copyStrided(from: self, to: out.data)
        return out
    }

    /// Marks a tensor as a trainable leaf.
    public static func parameter(_ t: Tensor) -> Tensor {
        let p = t.isContiguous && t.offset == 0 && t.storage.count == t.count ? t.detached() : t.clone()
        p.requiresGrad = true
        return p
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let values = toArray()
        let shown = values.prefix(8).map { String($0) }.joined(separator: ", ")
        return "Tensor(\(shapeString(shape)): [\(shown)\(values.count > 8 ? ", …" : "")])"
    }
}

/// Copies a strided tensor's elements in row-major order into contiguous memory.
func copyStrided(from t: Tensor, to dst: UnsafeMutablePointer<Float>) {
    let n = t.count
    if n == 0 { return }
    if t.isContiguous { dst.update(from: t.data, count: n); return }
    // Collapse to (outer index over leading dims) × last dim.
    let rank = t.rank
    let shape = t.shape, strides = t.strides
    let inner = shape[rank - 1]
    let innerStride = strides[rank - 1]
    let outer = n / inner
    let src = t.data
    Parallel.forRange(outer, grain: max(1, 16384 / max(inner, 1))) { range in
        var idx = [Int](repeating: 0, count: rank)
        var rem = range.lowerBound
        for d in stride(from: rank - 2, through: 0, by: -1) {
            idx[d] = rem % shape[d]
            rem /= shape[d]
        }
        for o in range {
            var base = 0
            for d in 0..<(rank - 1) { base += idx[d] * strides[d] }
            let out = dst + o * inner
            if innerStride == 1 {
                out.update(from: src + base, count: inner)
            } else {
                for j in 0..<inner { out[j] = src[base + j * innerStride] }
            }
            var d = rank - 2
            while d >= 0 {
                idx[d] += 1
                if idx[d] < shape[d] { break }
                idx[d] = 0
                d -= 1
            }
        }
    }
}
