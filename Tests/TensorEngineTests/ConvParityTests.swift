import XCTest
import TensorEngine

/// conv2d, max/avg/adaptive-avg pooling and batch norm against PyTorch (fixture
/// Tests/Fixtures/ops/conv.safetensors, scripts/fixtures/make_op_fixtures.py), plus finite
/// difference checks, thread-count independence and bad inputs for the same ops.
/// Every parity case runs with contiguous inputs and with H/W-transposed (non-contiguous) views.
final class ConvParityTests: XCTestCase {

    // MARK: - PyTorch parity

    func testConv2d() throws {
        let fx = try OpFixture("conv")
        // (case, stride, padding, dilation, groups, has bias) as in the script.
        let cases: [(String, (Int, Int), (Int, Int), (Int, Int), Int, Bool)] = [
            ("conv_basic", (1, 1), (0, 0), (1, 1), 1, true),
            ("conv_stride2_pad1", (2, 2), (1, 1), (1, 1), 1, true),
            ("conv_dilation2", (1, 1), (2, 2), (2, 2), 1, true),
            ("conv_groups2", (1, 1), (1, 1), (1, 1), 2, true),
            ("conv_depthwise", (1, 1), (1, 1), (1, 1), 4, true),
            ("conv_depthwise_mult2", (2, 2), (1, 1), (1, 1), 3, false),
            ("conv_nobias_1x1", (1, 1), (0, 0), (1, 1), 1, false),
            ("conv_rect", (2, 1), (1, 0), (1, 2), 1, true),
        ]
        for (name, stride, padding, dilation, groups, hasBias) in cases {
            try runParityCase(fx, name, inputs: hasBias ? ["x", "weight", "bias"] : ["x", "weight"]) { t in
                try conv2d(t[0], weight: t[1], bias: hasBias ? t[2] : nil, stride: stride, padding: padding,
                           dilation: dilation, groups: groups)
            }
        }
    }

    func testConv2dUnbatchedInput() throws {
        // [C, H, W] input gives the batched result without the batch dimension.
        let fx = try OpFixture("conv")
        let x = try fx.tensor("conv_basic.x"), w = try fx.tensor("conv_basic.weight"), b = try fx.tensor("conv_basic.bias")
        let first = try x.slice(axis: 0, start: 0, end: 1).reshaped(Array(x.shape.dropFirst()))
        let out = try conv2d(first, weight: w, bias: b, stride: (1, 1), padding: (0, 0), dilation: (1, 1), groups: 1)
        let expected = try fx.tensor("conv_basic.out")
        assertClose(out, try expected.slice(axis: 0, start: 0, end: 1).reshaped(Array(expected.shape.dropFirst())),
                    .forward, "unbatched conv2d")
    }

    func testMaxPool2d() throws {
        let fx = try OpFixture("conv")
        let cases: [(String, (Int, Int), (Int, Int)?, (Int, Int))] = [
            ("maxpool_k2", (2, 2), nil, (0, 0)), ("maxpool_k3_s2_p1", (3, 3), (2, 2), (1, 1)), ("maxpool_rect", (2, 3), (1, 2), (0, 1)),
        ]
        for (name, kernel, stride, padding) in cases {
            try runParityCase(fx, name, inputs: ["x"]) { try maxPool2d($0[0], kernel: kernel, stride: stride, padding: padding) }
        }
    }

    func testAvgPool2d() throws {
        let fx = try OpFixture("conv")
        let cases: [(String, (Int, Int), (Int, Int)?, (Int, Int), Bool)] = [
            ("avgpool_k2", (2, 2), nil, (0, 0), true),
            ("avgpool_k3_s2_p1_incl", (3, 3), (2, 2), (1, 1), true),
            ("avgpool_k3_s2_p1_excl", (3, 3), (2, 2), (1, 1), false),
            ("avgpool_rect", (2, 3), (1, 2), (0, 1), false),
        ]
        for (name, kernel, stride, padding, include) in cases {
            try runParityCase(fx, name, inputs: ["x"]) {
                try avgPool2d($0[0], kernel: kernel, stride: stride, padding: padding, countIncludePad: include)
            }
        }
    }

    func testAdaptiveAvgPool2d() throws {
        let fx = try OpFixture("conv")
        for (name, size) in [("adaptive_3x2", (3, 2)), ("adaptive_1x1", (1, 1)), ("adaptive_same", (4, 3)), ("adaptive_up", (5, 4))] {
            try runParityCase(fx, name, inputs: ["x"]) { try adaptiveAvgPool2d($0[0], outputSize: size) }
        }
    }

    func testBatchNorm2d() throws {
        let fx = try OpFixture("conv")
        for (name, training) in [("batchnorm_train", true), ("batchnorm_eval", false)] {
            for layout in InputLayout.allCases {
                // Fresh running statistics for every run: training updates them in place.
                let runningMean = try fx.tensor("\(name).running_mean"), runningVar = try fx.tensor("\(name).running_var")
                try runParityCase(fx, name, inputs: ["x", "weight", "bias"], layouts: [layout]) { t in
                    try batchNorm2d(t[0], weight: t[1], bias: t[2], runningMean: runningMean, runningVar: runningVar,
                                    training: training, momentum: 0.1, eps: 1e-5)
                }
                assertClose(runningMean, try fx.tensor("\(name).new_running_mean"), .forward, "\(name) [\(layout)] running mean")
                assertClose(runningVar, try fx.tensor("\(name).new_running_var"), .forward, "\(name) [\(layout)] running var")
            }
        }
    }

    func testEveryConvFixtureCaseIsKnown() throws {
        let fx = try OpFixture("conv")
        XCTAssertEqual(Set(fx.caseNames), [
            "conv_basic", "conv_stride2_pad1", "conv_dilation2", "conv_groups2", "conv_depthwise", "conv_depthwise_mult2",
            "conv_nobias_1x1", "conv_rect", "maxpool_k2", "maxpool_k3_s2_p1", "maxpool_rect", "avgpool_k2",
            "avgpool_k3_s2_p1_incl", "avgpool_k3_s2_p1_excl", "avgpool_rect", "adaptive_3x2", "adaptive_1x1", "adaptive_same",
            "adaptive_up", "batchnorm_train", "batchnorm_eval",
        ])
    }

    // MARK: - Finite differences

    var rng = RandomGenerator(seed: 404)

    func leaf(_ shape: [Int], transposed: Bool = false, low: Float = -1, high: Float = 1) -> Tensor {
        if !transposed { return Tensor.parameter(Tensor.uniform(shape, low: low, high: high, rng: &rng)) }
        var physical = shape
        physical.swapAt(shape.count - 1, shape.count - 2)
        let base = Tensor.uniform(physical, low: low, high: high, rng: &rng)
        var strides = Tensor.contiguousStrides(physical)
        strides.swapAt(shape.count - 1, shape.count - 2)
        return Tensor(storage: base.storage, shape: shape, strides: strides, offset: 0, requiresGrad: true)
    }

    /// Distinct values ≥ 0.05 apart in random order, so a ±eps perturbation never changes which
    /// element a max-pool window picks.
    func distinct(_ shape: [Int]) -> Tensor {
        let n = Tensor.count(shape)
        let perm = rng.permutation(n)
        return Tensor.parameter(try! Tensor(perm.map { (Float($0) - Float(n) / 2) * 0.05 }, shape: shape))
    }

    func check(_ inputs: [Tensor], _ what: String, file: StaticString = #filePath, line: UInt = #line,
               _ f: ([Tensor]) throws -> Tensor) throws {
        let bad = try GradCheck().run(inputs, file: file, line: line, f)
        if !bad.isEmpty { XCTFail("gradient check failed for \(what)", file: file, line: line) }
    }

    func testConv2dGradients() throws {
        // (x shape, weight shape, stride, padding, dilation, groups)
        let cases: [([Int], [Int], (Int, Int), (Int, Int), (Int, Int), Int)] = [
            ([2, 2, 5, 5], [3, 2, 3, 3], (1, 1), (0, 0), (1, 1), 1),
            ([1, 2, 6, 5], [2, 2, 3, 3], (2, 2), (1, 1), (1, 1), 1),
            ([1, 2, 7, 7], [2, 2, 3, 3], (1, 1), (2, 2), (2, 2), 1),
            ([2, 4, 4, 4], [4, 2, 3, 3], (1, 1), (1, 1), (1, 1), 2),
            ([2, 3, 5, 4], [3, 1, 3, 3], (1, 1), (1, 1), (1, 1), 3),
            ([1, 2, 4, 4], [4, 1, 3, 3], (2, 1), (1, 1), (1, 1), 2),
            ([2, 3, 3, 4], [2, 3, 1, 1], (1, 1), (0, 0), (1, 1), 1),
            ([1, 2, 6, 5], [2, 2, 3, 2], (2, 1), (1, 0), (1, 2), 1),
        ]
        for (i, (xs, ws, stride, padding, dilation, groups)) in cases.enumerated() {
            for transposed in [false, true] {
                let x = leaf(xs, transposed: transposed), w = leaf(ws, transposed: transposed), b = leaf([ws[0]])
                try check([x, w, b], "conv2d case \(i) transposed \(transposed)") { t in
                    try conv2d(t[0], weight: t[1], bias: t[2], stride: stride, padding: padding, dilation: dilation, groups: groups)
                }
            }
        }
    }

    func testPoolingGradients() throws {
        let x = distinct([2, 2, 6, 5])
        try check([x], "maxPool2d k2") { try maxPool2d($0[0], kernel: (2, 2)) }
        try check([x], "maxPool2d k3 s2 p1") { try maxPool2d($0[0], kernel: (3, 3), stride: (2, 2), padding: (1, 1)) }
        try check([x], "maxPool2d on a transposed view") { try maxPool2d(try $0[0].transposed(), kernel: (2, 3), stride: (1, 2), padding: (0, 1)) }
        for transposed in [false, true] {
            let y = leaf([2, 2, 7, 6], transposed: transposed)
            for include in [true, false] {
                try check([y], "avgPool2d include \(include)") {
                    try avgPool2d($0[0], kernel: (3, 3), stride: (2, 2), padding: (1, 1), countIncludePad: include)
                }
            }
            try check([y], "avgPool2d k2") { try avgPool2d($0[0], kernel: (2, 2)) }
            for size in [(3, 2), (1, 1), (7, 6), (9, 4)] {
                try check([y], "adaptiveAvgPool2d \(size)") { try adaptiveAvgPool2d($0[0], outputSize: size) }
            }
        }
    }

    func testBatchNormGradients() throws {
        for transposed in [false, true] {
            let x = leaf([3, 2, 4, 3], transposed: transposed, low: -2, high: 2)
            let w = leaf([2], low: 0.5, high: 1.5), b = leaf([2])
            for training in [true, false] {
                try check([x, w, b], "batchNorm2d training \(training) transposed \(transposed)") { t in
                    // Fresh running statistics each call: the function must be pure.
                    let rm = try Tensor([0.1, -0.2], shape: [2]), rv = try Tensor([0.8, 1.3], shape: [2])
                    return try batchNorm2d(t[0], weight: t[1], bias: t[2], runningMean: rm, runningVar: rv,
                                           training: training, momentum: 0.1, eps: 1e-5)
                }
            }
        }
    }

    // MARK: - Thread-count independence

    func testConvPoolAndBatchNormIndependentOfThreadCount() throws {
        func run(_ threads: Int) throws -> [[UInt32]] {
            let saved = Parallel.threadCount
            Parallel.threadCount = threads
            defer { Parallel.threadCount = saved }
            var g = RandomGenerator(seed: 12)
            let x = Tensor.parameter(Tensor.normal([6, 8, 20, 20], rng: &g))
            let w = Tensor.parameter(Tensor.normal([16, 8, 3, 3], std: 0.2, rng: &g))
            let dw = Tensor.parameter(Tensor.normal([16, 1, 3, 3], std: 0.2, rng: &g))
            let pw = Tensor.parameter(Tensor.normal([12, 16, 1, 1], std: 0.2, rng: &g))
            let gamma = Tensor.parameter(Tensor.normal([12], rng: &g))
            let rm = Tensor.zeros([12]), rv = Tensor.ones([12])
            var h = try conv2d(x, weight: w, bias: nil, stride: (1, 1), padding: (1, 1), dilation: (1, 1), groups: 1)
            h = try conv2d(h, weight: dw, bias: nil, stride: (2, 2), padding: (1, 1), dilation: (1, 1), groups: 16)
            h = try conv2d(h, weight: pw, bias: nil, stride: (1, 1), padding: (0, 0), dilation: (1, 1), groups: 1)
            h = try batchNorm2d(h, weight: gamma, bias: nil, runningMean: rm, runningVar: rv, training: true, momentum: 0.1, eps: 1e-5)
            let m = try maxPool2d(h, kernel: (2, 2))
            let a = try adaptiveAvgPool2d(try avgPool2d(h, kernel: (3, 3), stride: (1, 1), padding: (1, 1)), outputSize: (1, 1))
            let loss = try add(try mean(try mul(m, m)), try mean(a))
            try loss.backward()
            var out = [h, m, a, rm, rv].map { $0.toArray().map(\.bitPattern) }
            for p in [x, w, dw, pw, gamma] { out.append(try XCTUnwrap(p.grad).toArray().map(\.bitPattern)) }
            return out
        }
        let one = try run(1), two = try run(2)
        let names = ["batchNorm out", "maxPool", "adaptive(avgPool)", "running mean", "running var",
                     "grad x", "grad conv weight", "grad depthwise weight", "grad pointwise weight", "grad gamma"]
        for (i, name) in names.enumerated() { XCTAssertEqual(one[i], two[i], "\(name) depends on the thread count") }
    }

    // MARK: - Bad inputs

    func assertShapeError(_ mentions: [String], file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Tensor) {
        do {
            _ = try body()
            XCTFail("expected a TensorError mentioning \(mentions)", file: file, line: line)
        } catch let error as TensorError {
            for m in mentions where !error.description.contains(m) {
                XCTFail("\"\(error.description)\" does not mention \(m)", file: file, line: line)
            }
        } catch {
            XCTFail("expected a TensorError, got \(error)", file: file, line: line)
        }
    }

    func testBadInputs() {
        let x = Tensor.zeros([2, 4, 6, 6])
        let s = shapeString
        assertShapeError(["conv2d", s([4, 6, 6, 1, 1])]) {
            try conv2d(Tensor.zeros([4, 6, 6, 1, 1]), weight: Tensor.zeros([2, 4, 3, 3]), bias: nil, stride: (1, 1), padding: (0, 0), dilation: (1, 1), groups: 1)
        }
        assertShapeError(["conv2d", s([3, 3, 3, 3]), s([2, 4, 6, 6])]) {
            try conv2d(x, weight: Tensor.zeros([3, 3, 3, 3]), bias: nil, stride: (1, 1), padding: (0, 0), dilation: (1, 1), groups: 1)
        }
        assertShapeError(["conv2d", "groups 3", s([2, 4, 6, 6])]) {
            try conv2d(x, weight: Tensor.zeros([3, 1, 3, 3]), bias: nil, stride: (1, 1), padding: (0, 0), dilation: (1, 1), groups: 3)
        }
        assertShapeError(["conv2d", "bias", s([5])]) {
            try conv2d(x, weight: Tensor.zeros([2, 4, 3, 3]), bias: Tensor.zeros([5]), stride: (1, 1), padding: (0, 0), dilation: (1, 1), groups: 1)
        }
        assertShapeError(["conv2d", s([2, 4, 6, 6])]) {
            try conv2d(x, weight: Tensor.zeros([2, 4, 7, 7]), bias: nil, stride: (1, 1), padding: (0, 0), dilation: (1, 1), groups: 1)
        }
        assertShapeError(["conv2d", "stride"]) {
            try conv2d(x, weight: Tensor.zeros([2, 4, 3, 3]), bias: nil, stride: (0, 1), padding: (0, 0), dilation: (1, 1), groups: 1)
        }
        assertShapeError(["maxPool2d", s([6, 6])]) { try maxPool2d(Tensor.zeros([6, 6]), kernel: (2, 2)) }
        assertShapeError(["maxPool2d", s([2, 4, 6, 6])]) { try maxPool2d(x, kernel: (7, 7)) }
        assertShapeError(["maxPool2d", "padding"]) { try maxPool2d(x, kernel: (2, 2), padding: (2, 2)) }
        assertShapeError(["avgPool2d", s([1, 2, 3, 4, 5])]) { try avgPool2d(Tensor.zeros([1, 2, 3, 4, 5]), kernel: (2, 2)) }
        assertShapeError(["avgPool2d", "stride"]) { try avgPool2d(x, kernel: (2, 2), stride: (0, 0)) }
        assertShapeError(["adaptiveAvgPool2d", s([6])]) { try adaptiveAvgPool2d(Tensor.zeros([6]), outputSize: (1, 1)) }
        assertShapeError(["adaptiveAvgPool2d", "output size"]) { try adaptiveAvgPool2d(x, outputSize: (0, 2)) }
        assertShapeError(["batchNorm2d", "weight", s([3]), s([2, 4, 6, 6])]) {
            try batchNorm2d(x, weight: Tensor.zeros([3]), bias: nil, runningMean: Tensor.zeros([4]), runningVar: Tensor.ones([4]),
                            training: true, momentum: 0.1, eps: 1e-5)
        }
        assertShapeError(["batchNorm2d", "runningMean", s([5])]) {
            try batchNorm2d(x, weight: nil, bias: nil, runningMean: Tensor.zeros([5]), runningVar: Tensor.ones([4]),
                            training: true, momentum: 0.1, eps: 1e-5)
        }
        assertShapeError(["batchNorm2d", s([4])]) {
            try batchNorm2d(Tensor.zeros([4]), weight: nil, bias: nil, runningMean: Tensor.zeros([4]), runningVar: Tensor.ones([4]),
                            training: true, momentum: 0.1, eps: 1e-5)
        }
        assertShapeError(["batchNorm2d", s([1, 4, 1, 1])]) {
            try batchNorm2d(Tensor.zeros([1, 4, 1, 1]), weight: nil, bias: nil, runningMean: Tensor.zeros([4]), runningVar: Tensor.ones([4]),
                            training: true, momentum: 0.1, eps: 1e-5)
        }
    }
}
