import XCTest
@testable import TensorEngine

// MARK: - Reference implementations (plain loops in Double)

private func referenceConv2d(_ x: Tensor, _ w: Tensor, _ b: Tensor?, stride: (Int, Int), padding: (Int, Int),
                             dilation: (Int, Int), groups: Int) -> [Float] {
    let xv = x.toArray(), wv = w.toArray(), bv = b?.toArray()
    let n = x.shape[0], c = x.shape[1], h = x.shape[2], wd = x.shape[3]
    let o = w.shape[0], cg = w.shape[1], kh = w.shape[2], kw = w.shape[3]
    let og = o / groups
    let oh = (h + 2 * padding.0 - dilation.0 * (kh - 1) - 1) / stride.0 + 1
    let ow = (wd + 2 * padding.1 - dilation.1 * (kw - 1) - 1) / stride.1 + 1
    var out = [Float](repeating: 0, count: n * o * oh * ow)
    for i in 0..<n { for oc in 0..<o { for y in 0..<oh { for xo in 0..<ow {
        var s = Double(bv?[oc] ?? 0)
        let grp = oc / og
        for ci in 0..<cg { for ki in 0..<kh { for kj in 0..<kw {
            let ih = y * stride.0 - padding.0 + ki * dilation.0
            let iw = xo * stride.1 - padding.1 + kj * dilation.1
            if ih < 0 || ih >= h || iw < 0 || iw >= wd { continue }
            let cin = grp * cg + ci
            s += Double(xv[((i * c + cin) * h + ih) * wd + iw]) * Double(wv[((oc * cg + ci) * kh + ki) * kw + kj])
        } } }
        out[((i * o + oc) * oh + y) * ow + xo] = Float(s)
    } } } }
    _ = c
    return out
}

private func referenceMaxPool(_ x: Tensor, kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int)) -> [Float] {
    let v = x.toArray()
    let planes = x.shape.dropLast(2).reduce(1, *), h = x.shape[x.rank - 2], w = x.shape[x.rank - 1]
    let oh = (h + 2 * padding.0 - kernel.0) / stride.0 + 1, ow = (w + 2 * padding.1 - kernel.1) / stride.1 + 1
    var out: [Float] = []
    for p in 0..<planes { for i in 0..<oh { for j in 0..<ow {
        var m = -Float.infinity
        for ki in 0..<kernel.0 { for kj in 0..<kernel.1 {
            let ih = i * stride.0 - padding.0 + ki, iw = j * stride.1 - padding.1 + kj
            if ih >= 0 && ih < h && iw >= 0 && iw < w { m = max(m, v[(p * h + ih) * w + iw]) }
        } }
        out.append(m)
    } } }
    return out
}

private func assertClose(_ a: [Float], _ b: [Float], tol: Float = 1e-4, _ message: String = "",
                         file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "count differs \(message)", file: file, line: line)
    guard a.count == b.count else { return }
    var worst: (Int, Float) = (-1, 0)
    for i in 0..<a.count {
        let err = abs(a[i] - b[i]) / max(1, abs(b[i]))
        if !(err <= worst.1) { worst = (i, err) }
    }
    if worst.0 >= 0 && !(worst.1 <= tol) {
        XCTFail("element \(worst.0): \(a[worst.0]) vs \(b[worst.0]) (rel err \(worst.1)) \(message)", file: file, line: line)
    }
}

private func assertThrowsTensorError(_ body: @autoclosure () throws -> Tensor, contains text: String,
                                     file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected an error mentioning \"\(text)\"", file: file, line: line)
    } catch let e as TensorError {
        XCTAssertTrue(e.description.contains(text), "error \"\(e)\" does not mention \"\(text)\"", file: file, line: line)
    } catch {
        XCTFail("unexpected error \(error)", file: file, line: line)
    }
}

/// A conv2d configuration for the table-driven tests.
private struct ConvCase: CustomStringConvertible {
    var x: [Int]
    var w: [Int]
    var bias = true
    var stride = (1, 1)
    var padding = (0, 0)
    var dilation = (1, 1)
    var groups = 1
    var description: String {
        "x\(x) w\(w) bias \(bias) stride \(stride) pad \(padding) dil \(dilation) groups \(groups)"
    }
}

private let convCases: [ConvCase] = [
    ConvCase(x: [2, 3, 6, 6], w: [4, 3, 3, 3], padding: (1, 1)),
    ConvCase(x: [2, 3, 7, 6], w: [4, 3, 3, 3], bias: false, stride: (2, 2)),
    ConvCase(x: [1, 2, 7, 7], w: [3, 2, 3, 3], stride: (2, 2), padding: (1, 1)),
    ConvCase(x: [2, 2, 7, 8], w: [2, 2, 3, 3], padding: (2, 1), dilation: (2, 2)),
    ConvCase(x: [2, 4, 5, 5], w: [6, 2, 3, 3], padding: (1, 1), groups: 2),
    ConvCase(x: [2, 4, 6, 6], w: [4, 1, 3, 3], padding: (1, 1), groups: 4),                  // depthwise
    ConvCase(x: [1, 3, 9, 9], w: [3, 1, 3, 3], bias: false, stride: (2, 2), padding: (1, 1), groups: 3), // depthwise s2
    ConvCase(x: [2, 3, 5, 6], w: [3, 1, 2, 3], stride: (3, 1), padding: (1, 0), dilation: (1, 2), groups: 3),
    ConvCase(x: [2, 3, 6, 7], w: [3, 1, 3, 3], padding: (3, 2), groups: 3),                 // depthwise, padding > kernel
    ConvCase(x: [1, 2, 9, 10], w: [2, 1, 3, 2], padding: (1, 1), dilation: (2, 3), groups: 2), // depthwise dilated
    ConvCase(x: [2, 4, 4, 5], w: [3, 4, 1, 1]),                                              // 1x1, images batched
    ConvCase(x: [1, 4, 17, 16], w: [3, 4, 1, 1], bias: false),                               // 1x1 direct
    ConvCase(x: [2, 4, 6, 6], w: [5, 4, 1, 1], stride: (2, 2)),                              // 1x1 stride 2
    ConvCase(x: [3, 2, 5, 4], w: [3, 2, 2, 3], stride: (1, 2), padding: (1, 2)),             // asymmetric
    ConvCase(x: [5, 2, 3, 3], w: [2, 2, 3, 3], padding: (1, 1)),                             // sub-batches 4 + 1
    // Output rows of 8 or more: the row-copy im2col/col2im (narrower maps use tap tables).
    ConvCase(x: [1, 2, 5, 12], w: [2, 2, 3, 3], padding: (1, 1)),
    ConvCase(x: [2, 2, 6, 20], w: [2, 1, 2, 3], stride: (1, 2), padding: (1, 1), dilation: (1, 2), groups: 2),
    ConvCase(x: [1, 1, 4, 40], w: [2, 1, 1, 3], bias: false, stride: (2, 2), padding: (0, 1)),   // stride-2 even loads
]

final class ConvolutionTests: XCTestCase {

    // MARK: conv2d forward

    func testConv2dHandComputed() throws {
        // x = 1…9 in a 3×3 plane, kernel [[1, 0], [0, 1]] sums the diagonal pairs.
        let x = try Tensor((1...9).map(Float.init), shape: [1, 1, 3, 3])
        let w = try Tensor([1, 0, 0, 1], shape: [1, 1, 2, 2])
        let y = try conv2d(x, weight: w, bias: nil)
        XCTAssertEqual(y.shape, [1, 1, 2, 2])
        XCTAssertEqual(y.toArray(), [6, 8, 12, 14])

        let b = try Tensor([0.5], shape: [1])
        XCTAssertEqual(try conv2d(x, weight: w, bias: b).toArray(), [6.5, 8.5, 12.5, 14.5])

        // Padding 1, stride 2 with an all-ones 3×3 kernel: sums of the clipped windows at the corners.
        let ones = Tensor.ones([1, 1, 3, 3])
        let p = try conv2d(x, weight: ones, bias: nil, stride: (2, 2), padding: (1, 1))
        XCTAssertEqual(p.shape, [1, 1, 2, 2])
        XCTAssertEqual(p.toArray(), [12, 16, 24, 28] as [Float])   // 1+2+4+5, 2+3+5+6, 4+5+7+8, 5+6+8+9

        // Two input channels, two groups: each output sees only its own channel.
        let x2 = try Tensor([1, 2, 3, 4, 10, 20, 30, 40], shape: [1, 2, 2, 2])
        let w2 = try Tensor([1, 1, 1, 1, 1, 0, 0, -1], shape: [2, 1, 2, 2])
        XCTAssertEqual(try conv2d(x2, weight: w2, bias: nil, groups: 2).toArray(), [10, -30])
        // Same weights as one group of two channels: output 0 sums everything.
        let w3 = try Tensor([1, 1, 1, 1, 1, 1, 1, 1], shape: [1, 2, 2, 2])
        XCTAssertEqual(try conv2d(x2, weight: w3, bias: nil).toArray(), [110])

        // Dilation 2: a 2×2 kernel reads the corners of the 3×3 plane.
        let d = try conv2d(x, weight: Tensor.ones([1, 1, 2, 2]), bias: nil, dilation: (2, 2))
        XCTAssertEqual(d.toArray(), [20] as [Float])   // 1 + 3 + 7 + 9
    }

    func testConv2dMatchesReference() throws {
        var rng = RandomGenerator(seed: 11)
        for c in convCases {
            let x = Tensor.uniform(c.x, low: -1, high: 1, rng: &rng)
            let w = Tensor.uniform(c.w, low: -1, high: 1, rng: &rng)
            let b = c.bias ? Tensor.uniform([c.w[0]], low: -1, high: 1, rng: &rng) : nil
            let y = try conv2d(x, weight: w, bias: b, stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups)
            let ref = referenceConv2d(x, w, b, stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups)
            assertClose(y.toArray(), ref, "\(c)")
        }
    }

    func testConv2dLargerShapesMatchReference() throws {
        // Sizes that exercise the vector paths (stride-2 even-lane loads, 8-wide depthwise rows),
        // several weight-gradient chunks and batched small maps.
        var rng = RandomGenerator(seed: 12)
        let cases = [
            ConvCase(x: [3, 3, 37, 35], w: [8, 3, 7, 7], stride: (2, 2), padding: (3, 3)),
            ConvCase(x: [10, 16, 5, 5], w: [12, 16, 3, 3], padding: (1, 1)),
            ConvCase(x: [2, 8, 21, 19], w: [8, 1, 5, 5], padding: (2, 2), groups: 8),
            ConvCase(x: [2, 8, 33, 34], w: [8, 1, 3, 3], stride: (2, 2), padding: (1, 1), groups: 8),
            ConvCase(x: [9, 6, 3, 3], w: [4, 6, 1, 1]),
            ConvCase(x: [2, 3, 20, 19], w: [4, 3, 3, 3], padding: (2, 1), dilation: (2, 1)),
            ConvCase(x: [2, 4, 25, 30], w: [6, 2, 3, 5], stride: (3, 2), padding: (1, 2), groups: 2),
            ConvCase(x: [17, 8, 6, 6], w: [8, 8, 3, 3], stride: (2, 2), padding: (1, 1)),
        ]
        for c in cases {
            let x = Tensor.uniform(c.x, low: -1, high: 1, rng: &rng)
            let w = Tensor.uniform(c.w, low: -1, high: 1, rng: &rng)
            let b = Tensor.uniform([c.w[0]], low: -1, high: 1, rng: &rng)
            let y = try conv2d(x, weight: w, bias: b, stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups)
            let ref = referenceConv2d(x, w, b, stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups)
            assertClose(y.toArray(), ref, "\(c)")
        }
    }

    func testConv2dUnbatchedInput() throws {
        var rng = RandomGenerator(seed: 13)
        let x = Tensor.uniform([3, 5, 5], low: -1, high: 1, rng: &rng)
        let w = Tensor.uniform([2, 3, 3, 3], low: -1, high: 1, rng: &rng)
        let y = try conv2d(x, weight: w, bias: nil, padding: (1, 1))
        XCTAssertEqual(y.shape, [2, 5, 5])
        let batched = try conv2d(try x.reshaped([1, 3, 5, 5]), weight: w, bias: nil, padding: (1, 1))
        XCTAssertEqual(y.toArray(), batched.toArray())
    }

    func testConv2dEmptyBatch() throws {
        var rng = RandomGenerator(seed: 14)
        for (w, groups) in [([4, 3, 3, 3], 1), ([3, 1, 3, 3], 3), ([16, 3, 1, 1], 1)] {
            let x = Tensor.parameter(Tensor.zeros([0, 3, 9, 9]))
            let wt = randomParameter(w, &rng)
            let y = try conv2d(x, weight: wt, bias: nil, padding: (1, 1), groups: groups)
            XCTAssertEqual(y.shape, [0, w[0], w[2] == 1 ? 11 : 9, w[2] == 1 ? 11 : 9])
            try y.backward(Tensor.zeros(y.shape))
            XCTAssertEqual(wt.grad?.toArray(), [Float](repeating: 0, count: wt.count))
            XCTAssertEqual(x.grad?.shape, [0, 3, 9, 9])
        }
        let wino = randomParameter([16, 16, 3, 3], &rng)
        let y = try conv2d(Tensor.zeros([0, 16, 8, 8]), weight: wino, bias: nil, padding: (1, 1))
        try y.backward(Tensor.zeros(y.shape))
        XCTAssertEqual(wino.grad?.toArray(), [Float](repeating: 0, count: wino.count))
    }

    // MARK: conv2d gradients

    func testConv2dGradients() throws {
        var rng = RandomGenerator(seed: 21)
        for c in convCases {
            let x = randomParameter(c.x, &rng)
            let w = randomParameter(c.w, &rng)
            var inputs = [x, w]
            if c.bias { inputs.append(randomParameter([c.w[0]], &rng)) }
            let mismatches = try GradCheck().run(inputs) { t in
                try conv2d(t[0], weight: t[1], bias: t.count > 2 ? t[2] : nil, stride: c.stride, padding: c.padding,
                           dilation: c.dilation, groups: c.groups)
            }
            XCTAssertTrue(mismatches.isEmpty, "\(c)")
        }
    }

    func testConv2dGradientsNonContiguousInput() throws {
        var rng = RandomGenerator(seed: 22)
        let x = randomTransposedLeaf([2, 3, 5, 6], &rng)
        XCTAssertFalse(x.isContiguous)
        let w = randomTransposedLeaf([4, 3, 3, 2], &rng)
        let b = randomParameter([4], &rng)
        try GradCheck().run([x, w, b]) { t in try conv2d(t[0], weight: t[1], bias: t[2], padding: (1, 0)) }
    }

    func testConv2dGradientOnlyForSomeInputs() throws {
        var rng = RandomGenerator(seed: 23)
        // Input without gradient (like image data), weight with.
        let x = Tensor.uniform([3, 2, 6, 6], low: -1, high: 1, rng: &rng)
        let w = randomParameter([3, 2, 3, 3], &rng)
        try GradCheck().run([x, w]) { t in try conv2d(t[0], weight: t[1], bias: nil, stride: (2, 2), padding: (1, 1)) }
        // Only the input requires a gradient.
        let x2 = randomParameter([2, 2, 5, 5], &rng)
        let w2 = Tensor.uniform([3, 2, 3, 3], low: -1, high: 1, rng: &rng)
        try GradCheck().run([x2, w2]) { t in try conv2d(t[0], weight: t[1], bias: nil) }
    }

    func testConv2dIsIndependentOfThreadCount() throws {
        var rng = RandomGenerator(seed: 24)
        // (x, w, padding, dilation, groups): im2col with several sub-batches and chunks, Winograd,
        // depthwise, and single images whose GEMMs are split across threads instead.
        let cases: [([Int], [Int], (Int, Int), (Int, Int), Int)] = [
            ([12, 8, 9, 9], [8, 8, 3, 3], (1, 1), (1, 1), 1),
            ([12, 8, 9, 9], [8, 1, 3, 3], (1, 1), (1, 1), 8),
            ([6, 16, 10, 10], [24, 16, 3, 3], (1, 1), (1, 1), 1),
            ([1, 32, 16, 16], [32, 32, 3, 3], (2, 2), (2, 2), 1),
            ([1, 64, 32, 32], [64, 64, 3, 3], (1, 1), (1, 1), 1),
        ]
        func run(_ x: Tensor, _ w: Tensor, _ gy: Tensor, _ pad: (Int, Int), _ dil: (Int, Int), _ groups: Int) throws -> [[Float]] {
            let xp = Tensor.parameter(x), wp = Tensor.parameter(w)
            let y = try conv2d(xp, weight: wp, bias: nil, padding: pad, dilation: dil, groups: groups)
            try y.backward(gy)
            return [y.toArray(), xp.grad?.toArray() ?? [], wp.grad?.toArray() ?? []]
        }
        let saved = Parallel.threadCount
        defer { Parallel.threadCount = saved }
        for (xs, ws, pad, dil, groups) in cases {
            let x = Tensor.uniform(xs, low: -1, high: 1, rng: &rng)
            let w = Tensor.uniform(ws, low: -1, high: 1, rng: &rng)
            let g = try conv2dGeometry(x: xs, weight: ws, bias: nil, stride: (1, 1), padding: pad, dilation: dil, groups: groups)
            let gy = Tensor.uniform([g.n, g.o, g.oh, g.ow], low: -1, high: 1, rng: &rng)
            var results: [[[Float]]] = []
            for threads in [1, 2, 3] {
                Parallel.threadCount = threads
                results.append(try run(x, w, gy, pad, dil, groups))
            }
            XCTAssertEqual(results[0], results[1], "x\(xs) w\(ws): 1 vs 2 threads")
            XCTAssertEqual(results[0], results[2], "x\(xs) w\(ws): 1 vs 3 threads")
        }
    }

    // MARK: Winograd kernels

    /// Output and all gradients of one conv2d call.
    private func convResults(_ x: Tensor, _ w: Tensor, _ b: Tensor, _ gy: Tensor, padding: (Int, Int)) throws -> [[Float]] {
        let xp = Tensor.parameter(x), wp = Tensor.parameter(w), bp = Tensor.parameter(b)
        let y = try conv2d(xp, weight: wp, bias: bp, padding: padding)
        try y.backward(gy)
        return [y.toArray(), xp.grad?.toArray() ?? [], wp.grad?.toArray() ?? [], bp.grad?.toArray() ?? []]
    }

    func testWinogradMatchesIm2col() throws {
        var rng = RandomGenerator(seed: 25)
        // (n, c, h, w, o, pad): odd and even sizes, partial 8-tile blocks, sub-batches of images.
        let cases: [(Int, Int, Int, Int, Int, (Int, Int))] = [
            (2, 16, 9, 10, 24, (1, 1)), (3, 16, 8, 9, 16, (0, 0)), (1, 20, 7, 5, 16, (2, 2)),
            (5, 16, 4, 7, 32, (1, 1)), (2, 32, 17, 23, 16, (1, 1)), (9, 16, 3, 9, 16, (1, 0)),
        ]
        for (n, c, h, w, o, pad) in cases {
            let x = Tensor.uniform([n, c, h, w], low: -1, high: 1, rng: &rng)
            let wt = Tensor.uniform([o, c, 3, 3], low: -1, high: 1, rng: &rng)
            let b = Tensor.uniform([o], low: -1, high: 1, rng: &rng)
            let g = try conv2dGeometry(x: x.shape, weight: wt.shape, bias: [o], stride: (1, 1), padding: pad, dilation: (1, 1), groups: 1)
            XCTAssertTrue(g.usesWinograd)
            let gy = Tensor.uniform([n, o, g.oh, g.ow], low: -1, high: 1, rng: &rng)
            let fast = try convResults(x, wt, b, gy, padding: pad)
            ConvolutionAlgorithms.winogradEnabled = false
            defer { ConvolutionAlgorithms.winogradEnabled = true }
            let slow = try convResults(x, wt, b, gy, padding: pad)
            ConvolutionAlgorithms.winogradEnabled = true
            for (k, name) in ["output", "input grad", "weight grad", "bias grad"].enumerated() {
                let scale = slow[k].map { abs($0) }.max() ?? 1
                let err = zip(fast[k], slow[k]).map { abs($0 - $1) }.max() ?? 0
                XCTAssertEqual(fast[k].count, slow[k].count)
                XCTAssertLessThan(err, 1e-5 * max(scale, 1) * Float(c), "\(name) n\(n) c\(c) \(h)×\(w) o\(o) pad \(pad)")
            }
        }
    }

    func testWinogradGradients() throws {
        var rng = RandomGenerator(seed: 26)
        let x = randomParameter([1, 16, 3, 7], &rng)
        let w = randomParameter([16, 16, 3, 3], &rng)
        let b = randomParameter([16], &rng)
        let g = try conv2dGeometry(x: x.shape, weight: w.shape, bias: [16], stride: (1, 1), padding: (1, 1), dilation: (1, 1), groups: 1)
        XCTAssertTrue(g.usesWinograd)
        try GradCheck(rtol: 2e-2, atol: 2e-3).run([x, w, b]) { t in try conv2d(t[0], weight: t[1], bias: t[2], padding: (1, 1)) }
    }

    // MARK: conv2d errors

    func testConv2dErrors() {
        let x = Tensor.zeros([2, 4, 8, 8])
        let w = Tensor.zeros([6, 4, 3, 3])
        assertThrowsTensorError(try conv2d(Tensor.zeros([4, 8]), weight: w, bias: nil), contains: "[4, 8]")
        assertThrowsTensorError(try conv2d(x, weight: Tensor.zeros([6, 4, 3]), bias: nil), contains: "[6, 4, 3]")
        assertThrowsTensorError(try conv2d(x, weight: Tensor.zeros([6, 3, 3, 3]), bias: nil), contains: "[2, 4, 8, 8]")
        assertThrowsTensorError(try conv2d(x, weight: w, bias: Tensor.zeros([5])), contains: "bias [5]")
        assertThrowsTensorError(try conv2d(x, weight: Tensor.zeros([6, 1, 3, 3]), bias: nil, groups: 3),
                                contains: "groups 3 does not divide the 4 input channels")
        assertThrowsTensorError(try conv2d(x, weight: Tensor.zeros([5, 2, 3, 3]), bias: nil, groups: 2),
                                contains: "groups 2 does not divide the 5 output channels")
        assertThrowsTensorError(try conv2d(x, weight: Tensor.zeros([6, 4, 9, 9]), bias: nil), contains: "output size")
        assertThrowsTensorError(try conv2d(x, weight: Tensor.zeros([6, 4, 3, 3]), bias: nil, dilation: (5, 1)), contains: "output size")
        assertThrowsTensorError(try conv2d(x, weight: w, bias: nil, stride: (0, 1)), contains: "stride")
        assertThrowsTensorError(try conv2d(x, weight: w, bias: nil, padding: (-1, 0)), contains: "padding")
        assertThrowsTensorError(try conv2d(x, weight: w, bias: nil, dilation: (1, 0)), contains: "dilation")
        assertThrowsTensorError(try conv2d(x, weight: w, bias: nil, groups: 0), contains: "groups")
        XCTAssertThrowsError(try conv2d(x, weight: Tensor.zeros([6, 4, 9, 9]), bias: nil)) { e in
            guard case TensorError.shapeMismatch = e else { return XCTFail("expected shapeMismatch, got \(e)") }
        }
        XCTAssertThrowsError(try conv2d(x, weight: Tensor.zeros([6, 1, 3, 3]), bias: nil, groups: 3)) { e in
            guard case TensorError.invalidArgument = e else { return XCTFail("expected invalidArgument, got \(e)") }
        }
    }

    // MARK: max pooling

    func testMaxPoolHandComputed() throws {
        let x = try Tensor([1, 5, 2, 0,
                            3, 4, 8, 1,
                            0, 2, 6, 7,
                            9, 1, 3, 3], shape: [1, 1, 4, 4])
        let y = try maxPool2d(x, kernel: (2, 2))
        XCTAssertEqual(y.toArray(), [5, 8, 9, 7])
        // Padding 1, stride 2, kernel 3: padding never wins, windows clip at the border.
        let p = try maxPool2d(x, kernel: (3, 3), stride: (2, 2), padding: (1, 1))
        XCTAssertEqual(p.shape, [1, 1, 2, 2])
        XCTAssertEqual(p.toArray(), [5, 8, 9, 8])
        // All-negative input: padding (−∞) must not produce 0.
        let neg = try Tensor([-3, -2, -1, -4], shape: [1, 2, 2])
        XCTAssertEqual(try maxPool2d(neg, kernel: (2, 2), stride: (1, 1), padding: (1, 1)).toArray(),
                       [-3, -2, -2, -1, -1, -2, -1, -1, -4])
    }

    func testMaxPoolGradientGoesToFirstMaximum() throws {
        let x = Tensor.parameter(try Tensor([1, 7, 7, 2,
                                             0, 3, 1, 7], shape: [1, 1, 2, 4]))
        let y = try maxPool2d(x, kernel: (2, 2))
        XCTAssertEqual(y.toArray(), [7, 7])
        try y.backward(try Tensor([1, 10], shape: [1, 1, 1, 2]))
        XCTAssertEqual(x.grad?.toArray(), [0, 1, 10, 0,
                                           0, 0, 0, 0])
        // Overlapping windows accumulate.
        let z = Tensor.parameter(try Tensor([0, 9, 0, 0], shape: [1, 1, 1, 4]))
        try maxPool2d(z, kernel: (1, 2), stride: (1, 1)).backward(Tensor.ones([1, 1, 1, 3]))
        XCTAssertEqual(z.grad?.toArray(), [0, 2, 1, 0])
    }

    func testMaxPoolMatchesReference() throws {
        var rng = RandomGenerator(seed: 31)
        let shapes: [([Int], (Int, Int), (Int, Int), (Int, Int))] = [
            ([2, 3, 32, 33], (3, 3), (2, 2), (1, 1)),
            ([1, 2, 40, 41], (2, 2), (2, 2), (0, 0)),
            ([2, 2, 19, 30], (3, 2), (1, 1), (1, 1)),
            ([1, 1, 50, 50], (5, 5), (3, 3), (2, 2)),
            ([2, 17, 17], (3, 3), (2, 2), (1, 1)),
        ]
        for (s, k, st, p) in shapes {
            let x = Tensor.uniform(s, low: -1, high: 1, rng: &rng)
            let y = try maxPool2d(x, kernel: k, stride: st, padding: p)
            XCTAssertEqual(y.toArray(), referenceMaxPool(x, kernel: k, stride: st, padding: p), "\(s) \(k) \(st) \(p)")
        }
    }

    /// Distinct values spaced 0.05 apart (more than 2·eps), so the argmax does not move under
    /// the finite-difference perturbation.
    private func distinctLeaf(_ shape: [Int], _ rng: inout RandomGenerator) throws -> Tensor {
        let n = shape.reduce(1, *)
        let perm = rng.permutation(n)
        return Tensor.parameter(try Tensor(perm.map { Float($0) * 0.05 - Float(n) * 0.025 }, shape: shape))
    }

    func testMaxPoolGradients() throws {
        var rng = RandomGenerator(seed: 32)
        try GradCheck().run([try distinctLeaf([2, 2, 6, 7], &rng)]) { t in try maxPool2d(t[0], kernel: (2, 2)) }
        try GradCheck().run([try distinctLeaf([1, 2, 7, 7], &rng)]) { t in
            try maxPool2d(t[0], kernel: (3, 3), stride: (2, 2), padding: (1, 1))
        }
        try GradCheck().run([try distinctLeaf([1, 1, 20, 21], &rng)]) { t in
            try maxPool2d(t[0], kernel: (3, 3), stride: (2, 2), padding: (1, 1))
        }
        try GradCheck().run([try distinctLeaf([2, 5, 6], &rng)]) { t in
            try maxPool2d(t[0], kernel: (2, 3), stride: (1, 2), padding: (1, 1))
        }
    }

    // MARK: average pooling

    func testAvgPoolHandComputed() throws {
        let x = try Tensor((1...16).map(Float.init), shape: [1, 1, 4, 4])
        XCTAssertEqual(try avgPool2d(x, kernel: (2, 2)).toArray(), [3.5, 5.5, 11.5, 13.5])
        // Padding 1, kernel 3, stride 2: corner window holds 1, 2, 5, 6 (+5 padded zeros).
        let inc = try avgPool2d(x, kernel: (3, 3), stride: (2, 2), padding: (1, 1))
        let exc = try avgPool2d(x, kernel: (3, 3), stride: (2, 2), padding: (1, 1), countIncludePad: false)
        XCTAssertEqual(inc.shape, [1, 1, 2, 2])
        assertClose(inc.toArray(), [14 / 9, 30 / 9, 57 / 9, 99 / 9])
        assertClose(exc.toArray(), [14 / 4, 30 / 6, 57 / 6, 99 / 9])
    }

    func testAvgPoolGradients() throws {
        var rng = RandomGenerator(seed: 41)
        try GradCheck().run([randomParameter([2, 2, 6, 6], &rng)]) { t in try avgPool2d(t[0], kernel: (2, 2)) }
        for include in [true, false] {
            try GradCheck().run([randomParameter([1, 2, 7, 6], &rng)]) { t in
                try avgPool2d(t[0], kernel: (3, 3), stride: (2, 2), padding: (1, 1), countIncludePad: include)
            }
            try GradCheck().run([randomParameter([2, 5, 5], &rng)]) { t in
                try avgPool2d(t[0], kernel: (2, 3), stride: (1, 1), padding: (1, 1), countIncludePad: include)
            }
        }
        try GradCheck().run([randomTransposedLeaf([1, 2, 5, 4], &rng)]) { t in try avgPool2d(t[0], kernel: (2, 2), stride: (1, 1)) }
    }

    // MARK: adaptive average pooling

    func testAdaptiveAvgPoolHandComputed() throws {
        // 5 → 3 bins: [0, 2), [1, 4), [3, 5).
        let x = try Tensor([1, 2, 3, 4, 5], shape: [1, 1, 1, 5])
        assertClose(try adaptiveAvgPool2d(x, outputSize: (1, 3)).toArray(), [1.5, 3, 4.5])
        // Global average.
        let y = try Tensor((1...12).map(Float.init), shape: [1, 3, 2, 2])
        XCTAssertEqual(try adaptiveAvgPool2d(y, outputSize: (1, 1)).toArray(), [2.5, 6.5, 10.5])
        // Upsampling: 2 → 3 bins [0, 1), [0, 2), [1, 2).
        let z = try Tensor([2, 4], shape: [1, 1, 2])
        XCTAssertEqual(try adaptiveAvgPool2d(z, outputSize: (1, 3)).toArray(), [2, 3, 4])
        XCTAssertEqual(try adaptiveAvgPool2d(y, outputSize: (2, 2)).toArray(), y.toArray())
    }

    func testAdaptiveAvgPoolGradients() throws {
        var rng = RandomGenerator(seed: 51)
        for out in [(1, 1), (3, 2), (4, 7), (2, 5)] {
            try GradCheck().run([randomParameter([2, 2, 5, 6], &rng)]) { t in try adaptiveAvgPool2d(t[0], outputSize: out) }
        }
        try GradCheck().run([randomParameter([3, 9, 10], &rng)]) { t in try adaptiveAvgPool2d(t[0], outputSize: (3, 4)) }
    }

    func testPoolingErrors() {
        let x = Tensor.zeros([1, 2, 4, 4])
        assertThrowsTensorError(try maxPool2d(Tensor.zeros([4, 4]), kernel: (2, 2)), contains: "[4, 4]")
        assertThrowsTensorError(try maxPool2d(x, kernel: (0, 2)), contains: "kernel")
        assertThrowsTensorError(try maxPool2d(x, kernel: (2, 2), stride: (0, 1)), contains: "stride")
        assertThrowsTensorError(try maxPool2d(x, kernel: (2, 2), padding: (2, 0)), contains: "half of the kernel")
        assertThrowsTensorError(try maxPool2d(x, kernel: (5, 5)), contains: "output size")
        assertThrowsTensorError(try avgPool2d(x, kernel: (2, 9), padding: (0, 2)), contains: "output size")
        assertThrowsTensorError(try avgPool2d(x, kernel: (2, 2), padding: (-1, 0)), contains: "padding")
        assertThrowsTensorError(try adaptiveAvgPool2d(x, outputSize: (0, 2)), contains: "output size")
        assertThrowsTensorError(try adaptiveAvgPool2d(Tensor.zeros([2, 3, 4, 4, 4]), outputSize: (1, 1)), contains: "[2, 3, 4, 4, 4]")
    }

    // MARK: batch norm

    func testBatchNormTrainingForwardAndRunningStats() throws {
        // Channel 0 holds 1, 2, 3, 4 (two images × 2 pixels); channel 1 holds 10, 10, 10, 14.
        let x = try Tensor([1, 2, 10, 10,
                            3, 4, 10, 14], shape: [2, 2, 1, 2])
        let w = try Tensor([2, 1], shape: [2]), b = try Tensor([0.5, -1], shape: [2])
        let rm = try Tensor([0, 1], shape: [2]), rv = try Tensor([1, 2], shape: [2])
        let y = try batchNorm2d(x, weight: w, bias: b, runningMean: rm, runningVar: rv, training: true, momentum: 0.1, eps: 1e-5)
        // Channel 0: mean 2.5, biased var 1.25, unbiased 5/3. Channel 1: mean 11, biased var 3, unbiased 4.
        let r0 = 1 / (1.25 + 1e-5).squareRoot(), r1 = 1 / (3 + 1e-5).squareRoot()
        let expected: [Double] = [2 * (-1.5) * r0 + 0.5, 2 * (-0.5) * r0 + 0.5, -1 * r1 - 1, -1 * r1 - 1,
                                  2 * 0.5 * r0 + 0.5, 2 * 1.5 * r0 + 0.5, -1 * r1 - 1, 3 * r1 - 1]
        assertClose(y.toArray(), expected.map { Float($0) }, tol: 1e-5)
        assertClose(rm.toArray(), [0.25, 0.9 + 1.1], tol: 1e-6)
        assertClose(rv.toArray(), [Float(0.9 + 0.1 * 5.0 / 3.0), 0.9 * 2 + 0.4], tol: 1e-6)
    }

    func testBatchNormEvalForward() throws {
        var rng = RandomGenerator(seed: 61)
        let x = Tensor.uniform([3, 4, 5, 5], low: -2, high: 2, rng: &rng)
        let w = Tensor.uniform([4], low: 0.5, high: 1.5, rng: &rng), b = Tensor.uniform([4], low: -1, high: 1, rng: &rng)
        let rm = Tensor.uniform([4], low: -1, high: 1, rng: &rng), rv = Tensor.uniform([4], low: 0.5, high: 2, rng: &rng)
        let before = (rm.toArray(), rv.toArray())
        let y = try batchNorm2d(x, weight: w, bias: b, runningMean: rm, runningVar: rv, training: false)
        XCTAssertEqual(rm.toArray(), before.0)
        XCTAssertEqual(rv.toArray(), before.1)
        let xv = x.toArray(), wv = w.toArray(), bv = b.toArray(), m = before.0, v = before.1
        var ref = [Float](repeating: 0, count: xv.count)
        for i in 0..<xv.count {
            let ch = (i / 25) % 4
            ref[i] = (xv[i] - m[ch]) / (v[ch] + 1e-5).squareRoot() * wv[ch] + bv[ch]
        }
        assertClose(y.toArray(), ref, tol: 1e-5)
    }

    func testBatchNormTrainingMatchesReference() throws {
        var rng = RandomGenerator(seed: 62)
        // Spatial size 13 exercises the SIMD tails; rank 3 ([N, C, L]) is accepted too.
        for shape in [[4, 3, 13, 7], [5, 6, 11]] {
            let x = Tensor.uniform(shape, low: -3, high: 5, rng: &rng)
            let c = shape[1], s = shape.dropFirst(2).reduce(1, *), n = shape[0]
            let rm = Tensor.zeros([c]), rv = Tensor.ones([c])
            let y = try batchNorm2d(x, weight: nil, bias: nil, runningMean: rm, runningVar: rv, training: true, momentum: 0.3)
            let xv = x.toArray()
            var ref = [Float](repeating: 0, count: xv.count)
            var refMean: [Float] = [], refVar: [Float] = []
            for ch in 0..<c {
                var vals: [Double] = []
                for i in 0..<n { for j in 0..<s { vals.append(Double(xv[(i * c + ch) * s + j])) } }
                let mean = vals.reduce(0, +) / Double(vals.count)
                let ss = vals.map { ($0 - mean) * ($0 - mean) }.reduce(0, +)
                let rstd = 1 / (ss / Double(vals.count) + 1e-5).squareRoot()
                for i in 0..<n { for j in 0..<s {
                    let k = (i * c + ch) * s + j
                    ref[k] = Float((Double(xv[k]) - mean) * rstd)
                } }
                refMean.append(Float(0.3 * mean))
                refVar.append(Float(0.7 + 0.3 * ss / Double(vals.count - 1)))
            }
            assertClose(y.toArray(), ref, tol: 1e-5)
            assertClose(rm.toArray(), refMean, tol: 1e-5)
            assertClose(rv.toArray(), refVar, tol: 1e-5)
        }
    }

    func testBatchNormGradients() throws {
        var rng = RandomGenerator(seed: 63)
        let shape = [3, 2, 3, 4]
        for training in [true, false] {
            let x = randomParameter(shape, &rng)
            let w = Tensor.parameter(Tensor.uniform([2], low: 0.5, high: 1.5, rng: &rng))
            let b = randomParameter([2], &rng)
            let rm0 = Tensor.uniform([2], low: -0.5, high: 0.5, rng: &rng)
            let rv0 = Tensor.uniform([2], low: 0.5, high: 1.5, rng: &rng)
            // Fresh running statistics on every call, so each evaluation sees the same state.
            let check = GradCheck(eps: 1e-2, rtol: 2e-2, atol: 2e-3)
            try check.run([x, w, b]) { t in
                try batchNorm2d(t[0], weight: t[1], bias: t[2], runningMean: rm0.clone(), runningVar: rv0.clone(), training: training)
            }
            try check.run([x]) { t in
                try batchNorm2d(t[0], weight: nil, bias: nil, runningMean: rm0.clone(), runningVar: rv0.clone(), training: training)
            }
        }
        // Non-contiguous input, rank-3 input.
        try GradCheck(rtol: 2e-2, atol: 2e-3).run([randomTransposedLeaf([2, 3, 4, 5], &rng)]) { t in
            try batchNorm2d(t[0], weight: nil, bias: nil, runningMean: Tensor.zeros([3]), runningVar: Tensor.ones([3]), training: true)
        }
        try GradCheck(rtol: 2e-2, atol: 2e-3).run([randomParameter([4, 2, 5], &rng)]) { t in
            try batchNorm2d(t[0], weight: nil, bias: nil, runningMean: Tensor.zeros([2]), runningVar: Tensor.ones([2]), training: true)
        }
    }

    func testBatchNormErrors() {
        let x = Tensor.zeros([2, 3, 4, 4])
        let rm = Tensor.zeros([3]), rv = Tensor.ones([3])
        assertThrowsTensorError(try batchNorm2d(Tensor.zeros([3]), weight: nil, bias: nil, runningMean: rm, runningVar: rv, training: true),
                                contains: "[3]")
        assertThrowsTensorError(try batchNorm2d(x, weight: Tensor.ones([4]), bias: nil, runningMean: rm, runningVar: rv, training: true),
                                contains: "weight [4]")
        assertThrowsTensorError(try batchNorm2d(x, weight: nil, bias: Tensor.ones([2]), runningMean: rm, runningVar: rv, training: true),
                                contains: "bias [2]")
        assertThrowsTensorError(try batchNorm2d(x, weight: nil, bias: nil, runningMean: Tensor.zeros([2]), runningVar: rv, training: true),
                                contains: "runningMean [2]")
        assertThrowsTensorError(try batchNorm2d(x, weight: nil, bias: nil, runningMean: rm, runningVar: Tensor.zeros([3, 1]), training: false),
                                contains: "runningVar [3, 1]")
        assertThrowsTensorError(try batchNorm2d(Tensor.zeros([1, 3, 1, 1]), weight: nil, bias: nil, runningMean: rm, runningVar: rv, training: true),
                                contains: "more than one value per channel")
        assertThrowsTensorError(try batchNorm2d(x, weight: nil, bias: nil, runningMean: rm, runningVar: rv, training: true, eps: 0),
                                contains: "eps")
        // Eval mode accepts a single value per channel.
        XCTAssertNoThrow(try batchNorm2d(Tensor.zeros([1, 3, 1, 1]), weight: nil, bias: nil, runningMean: rm, runningVar: rv, training: false))
    }

    // MARK: a small network end to end

    func testConvBlockGradients() throws {
        // conv → batch norm → max pool → conv (1×1) → adaptive pool: gradients through the chain.
        var rng = RandomGenerator(seed: 71)
        let x = randomParameter([2, 3, 8, 8], &rng)
        let w1 = randomParameter([4, 3, 3, 3], &rng)
        let w2 = randomParameter([2, 4, 1, 1], &rng)
        let b2 = randomParameter([2], &rng)
        try GradCheck(eps: 5e-3, rtol: 3e-2, atol: 3e-3).run([x, w1, w2, b2]) { t in
            var h = try conv2d(t[0], weight: t[1], bias: nil, padding: (1, 1))
            h = try batchNorm2d(h, weight: nil, bias: nil, runningMean: Tensor.zeros([4]), runningVar: Tensor.ones([4]), training: true)
            h = try maxPool2d(h, kernel: (2, 2))
            h = try conv2d(h, weight: t[2], bias: t[3])
            return try adaptiveAvgPool2d(h, outputSize: (2, 1))
        }
    }
}
