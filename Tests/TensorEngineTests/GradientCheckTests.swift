import XCTest
import TensorEngine

/// Finite-difference checks (`GradCheck`, GradCheck.swift) of every differentiable op, over
/// several shapes, with broadcasting, and with non-contiguous inputs: leaves whose storage is
/// transposed, strided (every other row, non-zero offset) or permuted, and views made inside the
/// checked function with `transposed()`, `slice` and `permuted`.
final class GradientCheckTests: XCTestCase {

    // MARK: - Inputs

    /// How a leaf's logical elements sit in its storage.
    enum Layout: CaseIterable, CustomStringConvertible {
        case contiguous
        /// Last two dimensions swapped in storage.
        case transposed
        /// Every other index of dimension 0, starting at 1 (non-zero offset, gaps in storage).
        case strided
        /// All dimensions reversed in storage.
        case permuted

        var description: String {
            switch self {
            case .contiguous: return "contiguous"
            case .transposed: return "transposed"
            case .strided: return "strided"
            case .permuted: return "permuted"
            }
        }

        /// The layouts that are really different from contiguous for a shape.
        static func all(for shape: [Int]) -> [Layout] {
            var out: [Layout] = [.contiguous]
            if shape.count >= 1 { out.append(.strided) }
            if shape.count >= 2 { out += [.transposed, .permuted] }
            return out
        }
    }

    var rng = RandomGenerator(seed: 2024)

    /// A leaf of `shape` laid out as `layout`, values uniform in [low, high) but at least
    /// `margin` away from every point in `avoiding` (kinks of non-smooth ops).
    func leaf(_ shape: [Int], _ layout: Layout = .contiguous, low: Float = -1, high: Float = 1,
              avoiding kinks: [Float] = [], margin: Float = 0.05, requiresGrad: Bool = true) -> Tensor {
        let t: Tensor
        switch layout {
        case .contiguous:
            t = Tensor.uniform(shape, low: low, high: high, rng: &rng)
        case .transposed:
            var physical = shape
            physical.swapAt(shape.count - 1, shape.count - 2)
            let base = Tensor.uniform(physical, low: low, high: high, rng: &rng)
            var strides = Tensor.contiguousStrides(physical)
            strides.swapAt(shape.count - 1, shape.count - 2)
            t = Tensor(storage: base.storage, shape: shape, strides: strides, offset: 0)
        case .strided:
            var physical = shape
            physical[0] = 2 * shape[0] + 1
            let base = Tensor.uniform(physical, low: low, high: high, rng: &rng)
            var strides = Tensor.contiguousStrides(physical)
            let offset = strides[0]
            strides[0] *= 2
            t = Tensor(storage: base.storage, shape: shape, strides: strides, offset: offset)
        case .permuted:
            let physical = Array(shape.reversed())
            let base = Tensor.uniform(physical, low: low, high: high, rng: &rng)
            t = Tensor(storage: base.storage, shape: shape, strides: Array(Tensor.contiguousStrides(physical).reversed()), offset: 0)
        }
        if !kinks.isEmpty {
            forEachElement(t) { p in
                for k in kinks where Swift.abs(p.pointee - k) < margin {
                    p.pointee = p.pointee >= k ? k + 2 * margin : k - 2 * margin
                }
            }
        }
        if layout != .contiguous && t.count > 1 { XCTAssertFalse(t.isContiguous, "\(layout) leaf \(shape) is contiguous") }
        t.requiresGrad = requiresGrad
        return t
    }

    /// A leaf whose values are distinct and at least 0.07 apart (so max picks a stable winner
    /// under ±eps perturbations).
    func distinctLeaf(_ shape: [Int], _ layout: Layout = .contiguous) -> Tensor {
        let t = leaf(shape, layout)
        let perm = rng.permutation(t.count)
        var i = 0
        forEachElement(t) { p in p.pointee = (Float(perm[i]) - Float(perm.count) / 2) * 0.07; i += 1 }
        return t
    }

    /// Calls `body` with a pointer to each logical element, in row-major order.
    func forEachElement(_ t: Tensor, _ body: (UnsafeMutablePointer<Float>) -> Void) {
        var index = [Int](repeating: 0, count: t.rank)
        for _ in 0..<t.count {
            var off = t.offset
            for d in 0..<t.rank { off += index[d] * t.strides[d] }
            body(t.storage.pointer + off)
            var d = t.rank - 1
            while d >= 0 { index[d] += 1; if index[d] < t.shape[d] { break }; index[d] = 0; d -= 1 }
        }
    }

    func check(_ inputs: [Tensor], _ what: String, eps: Float = 1e-2, rtol: Double = 1e-2, atol: Double = 1e-3,
               file: StaticString = #filePath, line: UInt = #line, _ f: ([Tensor]) throws -> Tensor) throws {
        var gc = GradCheck()
        gc.eps = eps
        gc.rtol = rtol
        gc.atol = atol
        let bad = try gc.run(inputs, file: file, line: line, f)
        if !bad.isEmpty { XCTFail("gradient check failed for \(what)", file: file, line: line) }
    }

    // MARK: - Element-wise binary ops with broadcasting

    func testBinaryOpsWithBroadcasting() throws {
        let pairs: [([Int], [Int])] = [([3, 4], [3, 4]), ([2, 3, 4], [3, 1]), ([4, 1], [5]), ([2, 9], [1]),
                                       ([3, 1, 5], [1, 4, 1]), ([2, 3], [])]
        let ops: [(String, (Tensor, Tensor) throws -> Tensor)] = [
            ("add", { try add($0, $1) }), ("sub", { try sub($0, $1) }), ("mul", { try mul($0, $1) }), ("div", { try div($0, $1) }),
        ]
        for (name, op) in ops {
            for (sa, sb) in pairs {
                for la in Layout.all(for: sa) {
                    let lb: Layout = sb.count >= 2 ? .transposed : .contiguous
                    let a = leaf(sa, la, low: -2, high: 2)
                    let b = name == "div" ? leaf(sb, lb, low: 0.5, high: 2) : leaf(sb, lb, low: -2, high: 2)
                    try check([a, b], "\(name) \(sa) \(la) with \(sb) \(lb)") { try op($0[0], $0[1]) }
                }
            }
        }
    }

    func testBinaryOpsOnViewsAndSharedInputs() throws {
        // Views made inside the function: transposed, sliced with a step, permuted.
        let a = leaf([4, 6]), b = leaf([6, 4])
        try check([a, b], "add(transposed view, x)") { try add(try $0[0].transposed(), $0[1]) }
        try check([a, b], "mul(slice step 2, broadcast)") { t in
            try mul(try t[0].slice(axis: 1, start: 1, end: 6, step: 2), try t[1].transposed().slice(axis: 1, start: 2, end: 3))
        }
        let c = leaf([2, 3, 4])
        try check([c], "div(permuted, permuted)") { t in
            let p = try t[0].permuted([2, 0, 1])
            return try div(p, try addScalar(try mul(p, p), 1))
        }
        // The same tensor used twice accumulates both contributions.
        try check([a], "x * x + x") { t in try add(try mul(t[0], t[0]), t[0]) }
        // Scalar operators.
        try check([a], "scalar operators") { t in try ((try (try t[0] * 3) + 1) - 0.5) / 2 }
        try check([a], "prefix minus") { t in try -t[0] }
    }

    // MARK: - Element-wise unary ops

    func testUnaryOps() throws {
        // (name, low, high, kinks, op)
        let ops: [(String, Float, Float, [Float], (Tensor) throws -> Tensor)] = [
            ("neg", -2, 2, [], { try neg($0) }),
            ("exp", -2, 2, [], { try TensorEngine.exp($0) }),
            ("log", 0.2, 3, [], { try TensorEngine.log($0) }),
            ("sqrt", 0.2, 3, [], { try TensorEngine.sqrt($0) }),
            ("pow 2", -2, 2, [], { try TensorEngine.pow($0, 2) }),
            ("pow 3", -1.5, 1.5, [], { try TensorEngine.pow($0, 3) }),
            ("pow 1", -1.5, 1.5, [], { try TensorEngine.pow($0, 1) }),
            ("pow 0.5", 0.3, 3, [], { try TensorEngine.pow($0, 0.5) }),
            ("pow -1.5", 0.5, 3, [], { try TensorEngine.pow($0, -1.5) }),
            ("abs", -2, 2, [0], { try TensorEngine.abs($0) }),
            ("clamp", -2, 2, [-0.5, 0.7], { try clamp($0, min: -0.5, max: 0.7) }),
            ("clamp min", -2, 2, [0], { try clamp($0, min: 0) }),
            ("clamp max", -2, 2, [0.3], { try clamp($0, max: 0.3) }),
            ("addScalar", -2, 2, [], { try addScalar($0, 1.5) }),
            ("mulScalar", -2, 2, [], { try mulScalar($0, -2.5) }),
            ("tanh", -3, 3, [], { try TensorEngine.tanh($0) }),
            ("sigmoid", -4, 4, [], { try sigmoid($0) }),
            ("relu", -2, 2, [0], { try relu($0) }),
            ("leakyRelu", -2, 2, [0], { try leakyRelu($0) }),
            ("leakyRelu 0.2", -2, 2, [0], { try leakyRelu($0, slope: 0.2) }),
            ("gelu", -4, 4, [], { try gelu($0) }),
            ("gelu tanh", -4, 4, [], { try gelu($0, approximate: .tanh) }),
            ("silu", -4, 4, [], { try silu($0) }),
        ]
        for (name, low, high, kinks, op) in ops {
            for shape in [[7], [3, 11], [2, 3, 4]] {
                for layout in Layout.all(for: shape) {
                    let x = leaf(shape, layout, low: low, high: high, avoiding: kinks)
                    try check([x], "\(name) \(shape) \(layout)") { try op($0[0]) }
                }
            }
        }
    }

    func testDropoutWithFixedMask() throws {
        for layout in Layout.all(for: [5, 7]) {
            let x = leaf([5, 7], layout)
            try check([x], "dropout \(layout)") { t in
                var r = RandomGenerator(seed: 99)   // same seed every call: same mask
                return try dropout(t[0], p: 0.3, training: true, rng: &r)
            }
        }
    }

    // MARK: - Reductions

    func testSumMeanVariance() throws {
        let axesCases: [([Int], [Int], Bool)] = [
            ([3, 4, 5], [], false), ([3, 4, 5], [1], false), ([3, 4, 5], [0, 2], true), ([3, 4, 5], [-1], true),
            ([6, 5], [0], false), ([17], [0], false),
        ]
        for (shape, axes, keep) in axesCases {
            for layout in Layout.all(for: shape) {
                let x = leaf(shape, layout)
                try check([x], "sum \(shape) axes \(axes) \(layout)") { try sum($0[0], axes: axes, keepDims: keep) }
                try check([x], "mean \(shape) axes \(axes) \(layout)") { try mean($0[0], axes: axes, keepDims: keep) }
                try check([x], "variance \(shape) axes \(axes) \(layout)") {
                    try variance($0[0], axes: axes, keepDims: keep)
                }
                try check([x], "variance c0 \(shape) axes \(axes) \(layout)") {
                    try variance($0[0], axes: axes, keepDims: keep, correction: 0)
                }
            }
        }
    }

    func testMax() throws {
        for (shape, axis, keep) in [([3, 4, 5], 1, false), ([3, 4, 5], 0, true), ([3, 4, 5], -1, false), ([4, 9], 1, true)] {
            for layout in Layout.all(for: shape) {
                let x = distinctLeaf(shape, layout)
                try check([x], "max \(shape) axis \(axis) \(layout)") { try TensorEngine.max($0[0], axis: axis, keepDims: keep) }
            }
        }
        for (shape, axes, keep) in [([3, 4, 5], [0, 2], false), ([3, 4, 5], [1, -1], true), ([2, 3], [], false)] {
            for layout in Layout.all(for: shape) {
                let x = distinctLeaf(shape, layout)
                try check([x], "max \(shape) axes \(axes) \(layout)") { try TensorEngine.max($0[0], axes: axes, keepDims: keep) }
            }
        }
    }

    func testSoftmaxAndLogSoftmax() throws {
        for (shape, axis) in [([3, 4, 5], -1), ([3, 4, 5], 1), ([3, 4, 5], 0), ([2, 19], -1)] {
            for layout in Layout.all(for: shape) {
                let x = leaf(shape, layout, low: -2, high: 2)
                try check([x], "softmax \(shape) axis \(axis) \(layout)") { try softmax($0[0], axis: axis) }
                try check([x], "logSoftmax \(shape) axis \(axis) \(layout)") { try logSoftmax($0[0], axis: axis) }
            }
        }
    }

    func testLayerNorm() throws {
        for shape in [[2, 3, 10], [4, 16], [5, 3]] {
            let d = shape[shape.count - 1]
            for layout in Layout.all(for: shape) {
                let x = leaf(shape, layout, low: -2, high: 2)
                let w = leaf([d], .strided, low: 0.5, high: 1.5), b = leaf([d])
                try check([x, w, b], "layerNorm \(shape) \(layout)") { try layerNorm($0[0], weight: $0[1], bias: $0[2]) }
                try check([x], "layerNorm no affine \(shape) \(layout)") { try layerNorm($0[0], weight: nil, bias: nil, eps: 1e-12) }
            }
        }
    }

    // MARK: - Matrix products

    func testMatmul() throws {
        let cases: [([Int], [Int])] = [([5, 7], [7, 6]), ([2, 3, 5, 7], [7, 4]), ([2, 3, 5, 7], [2, 3, 7, 4]), ([4, 3, 9], [4, 9, 2])]
        for (sa, sb) in cases {
            for (la, lb) in [(Layout.contiguous, Layout.contiguous), (.transposed, .transposed), (.strided, .permuted)] {
                let a = leaf(sa, la), b = leaf(sb, lb)
                try check([a, b], "matmul \(sa) \(la) · \(sb) \(lb)") { try matmul($0[0], $0[1]) }
            }
        }
        // Views built inside the function: (Bᵀ)ᵀ and a slice.
        let a = leaf([5, 8]), b = leaf([6, 8])
        try check([a, b], "matmul(slice, transposed view)") { t in
            try matmul(try t[0].slice(axis: 1, start: 1, end: 8, step: 1), try t[1].slice(axis: 1, start: 1, end: 8).transposed())
        }
    }

    func testBatchedMatmulTransB() throws {
        for (la, lb) in [(Layout.contiguous, Layout.contiguous), (.transposed, .strided), (.permuted, .transposed)] {
            let a = leaf([2, 5, 7], la), b = leaf([2, 6, 7], lb)
            try check([a, b], "batchedMatmul transB \(la) \(lb)") { try batchedMatmul($0[0], $0[1], transB: true) }
            let c = leaf([2, 7, 6], lb)
            try check([a, c], "batchedMatmul \(la) \(lb)") { try batchedMatmul($0[0], $0[1], transB: false) }
        }
    }

    func testLinear() throws {
        for xs in [[7], [4, 7], [2, 5, 7]] {
            for layout in Layout.all(for: xs) {
                let x = leaf(xs, layout), w = leaf([6, 7], .transposed), b = leaf([6], .strided)
                try check([x, w, b], "linear \(xs) \(layout)") { try linear($0[0], weight: $0[1], bias: $0[2]) }
                try check([x, w], "linear no bias \(xs) \(layout)") { try linear($0[0], weight: $0[1], bias: nil) }
            }
        }
    }

    // MARK: - Attention

    func testAttention() throws {
        // (batch, tq, tk, heads, headDim, mask shape or nil)
        let cases: [(Int, Int, Int, Int, Int, [Int]?)] = [
            (2, 5, 5, 2, 4, [2, 5]), (1, 3, 6, 3, 2, nil), (2, 4, 4, 1, 3, [4, 4]), (2, 3, 5, 2, 2, [2, 3, 5]),
        ]
        for (b, tq, tk, h, d, maskShape) in cases {
            let e = h * d
            var mask: Tensor? = nil
            if let maskShape {
                // Additive: about a third of the keys masked, never a whole row.
                let m = Tensor.zeros(maskShape)
                let keys = maskShape[maskShape.count - 1]
                for i in 0..<m.count where i % keys != 0 && (i * 7) % 3 == 0 { m.data[i] = -1e9 }
                mask = m
            }
            for (lq, lk) in [(Layout.contiguous, Layout.contiguous), (.strided, .permuted), (.transposed, .strided)] {
                let q = leaf([b, tq, e], lq, low: -2, high: 2), k = leaf([b, tk, e], lk, low: -2, high: 2)
                let v = leaf([b, tk, e], lq)
                try check([q, k, v], "attention B\(b) Tq\(tq) Tk\(tk) H\(h) mask \(maskShape ?? []) \(lq)/\(lk)") { t in
                    var r = RandomGenerator(seed: 1)
                    return try attention(query: t[0], key: t[1], value: t[2], heads: h, mask: mask, rng: &r)
                }
            }
        }
        // q, k, v sliced out of one fused projection, and a custom scale.
        let fused = leaf([2, 4, 18], low: -2, high: 2)
        try check([fused], "attention on fused-projection slices") { t in
            var r = RandomGenerator(seed: 1)
            return try attention(query: try t[0].slice(axis: 2, start: 0, end: 6), key: try t[0].slice(axis: 2, start: 6, end: 12),
                                 value: try t[0].slice(axis: 2, start: 12, end: 18), heads: 2, scale: 0.3, rng: &r)
        }
    }

    func testAttentionWithDropoutUsesOneMask() throws {
        // Training-mode attention dropout is a fixed mask for a fixed generator state.
        let q = leaf([1, 4, 4]), k = leaf([1, 4, 4]), v = leaf([1, 4, 4])
        try check([q, k, v], "attention dropout") { t in
            var r = RandomGenerator(seed: 5)
            return try attention(query: t[0], key: t[1], value: t[2], heads: 2, dropout: 0.25, training: true, rng: &r)
        }
    }

    // MARK: - Losses

    func testCrossEntropy() throws {
        let targets = [2, 0, 4, 1, 3, 2]
        let variants: [(String, [Float]?, Int?, Float, [Int])] = [
            ("plain", nil, nil, 0, targets),
            ("smoothing", nil, nil, 0.1, targets),
            ("weights", [0.5, 1, 2, 1.5, 0.8], nil, 0, targets),
            ("ignore", nil, -100, 0, [2, -100, 4, 1, -100, 2]),
            ("all", [0.5, 1, 2, 1.5, 0.8], 1, 0.2, [2, 1, 4, 1, 3, 0]),
        ]
        for (name, w, ignore, smooth, t) in variants {
            for layout in Layout.all(for: [6, 5]) {
                let x = leaf([6, 5], layout, low: -3, high: 3)
                try check([x], "crossEntropy \(name) \(layout)") {
                    try crossEntropy($0[0], targets: t, weights: w, ignoreIndex: ignore, labelSmoothing: smooth)
                }
            }
        }
    }

    func testBinaryCrossEntropyWithLogits() throws {
        for pw: Float? in [nil, 2.5, 0.7] {
            for layout in Layout.all(for: [4, 5]) {
                let x = leaf([4, 5], layout, low: -4, high: 4), y = leaf([4, 5], .transposed, low: 0, high: 1)
                try check([x, y], "bceWithLogits posWeight \(pw.map { "\($0)" } ?? "nil") \(layout)") {
                    try binaryCrossEntropyWithLogits($0[0], targets: $0[1], posWeight: pw)
                }
            }
        }
    }

    func testMSEAndHuber() throws {
        for layout in Layout.all(for: [3, 7]) {
            let p = leaf([3, 7], layout, low: -2, high: 2), t = leaf([3, 7], .strided, low: -2, high: 2)
            try check([p, t], "mse \(layout)") { try mseLoss($0[0], $0[1]) }
            for delta: Float in [1, 0.5] {
                // Keep |p − t| away from delta, where Huber's second derivative jumps.
                var i = 0
                let tv = t.toArray()
                forEachElement(p) { ptr in
                    let r = ptr.pointee - tv[i]
                    if Swift.abs(Swift.abs(r) - delta) < 0.05 { ptr.pointee += r > 0 ? 0.15 : -0.15 }
                    i += 1
                }
                try check([p, t], "huber delta \(delta) \(layout)") { try huberLoss($0[0], $0[1], delta: delta) }
            }
        }
    }

    // MARK: - Shape ops, joining, indexing

    func testViewsAndReshapes() throws {
        let x = leaf([3, 4, 5], .strided)
        try check([x], "reshape") { try $0[0].reshaped([5, -1]) }
        try check([x], "permuted") { try $0[0].permuted([2, 0, 1]) }
        try check([x], "transposed") { try $0[0].transposed(0, 2) }
        try check([x], "slice step 2") { try $0[0].slice(axis: 2, start: 1, end: 5, step: 2) }
        try check([x], "slice of slice") { try $0[0].slice(axis: 1, start: 1, end: 4).slice(axis: 0, start: 1, end: 3) }
        try check([x], "unsqueezed") { try $0[0].unsqueezed(1) }
        try check([x], "reshape of permuted (copies)") { try $0[0].permuted([1, 2, 0]).reshaped([20, 3]) }
        let y = leaf([3, 1, 5], .permuted)
        try check([y], "expand") { try expand($0[0], to: [2, 3, 4, 5]) }
    }

    func testConcatAndStack() throws {
        let a = leaf([2, 3, 4], .transposed), b = leaf([2, 1, 4], .strided), c = leaf([2, 2, 4])
        try check([a, b, c], "concat axis 1") { try concat($0, axis: 1) }
        let d = leaf([3, 2], .permuted), e = leaf([3, 5])
        try check([d, e], "concat axis -1") { try concat($0, axis: -1) }
        let p = leaf([3, 4], .transposed), q = leaf([3, 4], .strided), r = leaf([3, 4])
        try check([p, q, r], "stack axis 0") { try stack($0, axis: 0) }
        try check([p, q], "stack axis 2") { try stack($0, axis: 2) }
        // Only some inputs trainable.
        let frozen = leaf([3, 4], requiresGrad: false)
        try check([p, frozen], "stack with a frozen input") { try stack($0, axis: 1) }
    }

    func testIndexSelectAndGather() throws {
        for layout in Layout.all(for: [5, 4]) {
            let x = leaf([5, 4], layout)
            try check([x], "indexSelect axis 0 \(layout)") { try indexSelect($0[0], axis: 0, indices: [3, 0, 3, 1, 4, 3]) }
            try check([x], "indexSelect axis 1 \(layout)") { try indexSelect($0[0], axis: 1, indices: [1, 1, 0]) }
            try check([x], "gather axis 1 \(layout)") {
                try gather($0[0], axis: 1, index: [0, 3, 3, 1, 2, 2, 0, 1, 3], indexShape: [3, 3])
            }
            try check([x], "gather axis 0 \(layout)") {
                try gather($0[0], axis: 0, index: [4, 0, 0, 2, 1, 1, 3, 4], indexShape: [2, 4])
            }
        }
    }

    // MARK: - A composite (two-layer network with a loss)

    func testSmallNetworkEndToEnd() throws {
        let x = leaf([4, 6], .transposed), w1 = leaf([8, 6]), b1 = leaf([8]), w2 = leaf([3, 8], .transposed), b2 = leaf([3])
        try check([x, w1, b1, w2, b2], "linear-gelu-layerNorm-linear-crossEntropy") { t in
            let h = try gelu(try linear(t[0], weight: t[1], bias: t[2]))
            let n = try layerNorm(h, weight: nil, bias: nil)
            return try crossEntropy(try linear(n, weight: t[3], bias: t[4]), targets: [0, 2, 1, 2])
        }
    }
}
