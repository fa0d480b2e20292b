import TensorEngine
import Training
import XCTest

/// Expected values from PyTorch 2.15:
///
///     a = Parameter(zeros(3)); a.grad = tensor([3.0, -4.0, 1.5])
///     b = Parameter(zeros(2, 2)); b.grad = tensor([[0.5, -2.5], [6.0, 0.25]])
///     c = Parameter(zeros(2))   # no grad
///     total = torch.nn.utils.clip_grad_norm_([a, b, c], max_norm=M, norm_type=N, foreach=False)
final class ClipTests: XCTestCase {
    func make() throws -> [Tensor] {
        let a = try param([0, 0, 0]), b = try param([0, 0, 0, 0], [2, 2]), c = try param([0, 0])
        try setGrad(a, [3.0, -4.0, 1.5])
        try setGrad(b, [0.5, -2.5, 6.0, 0.25])
        return [a, b, c]
    }

    func check(normType: Float, maxNorm: Float, total: Float, a: [Float], b: [Float],
               file: StaticString = #filePath, line: UInt = #line) throws {
        let ps = try make()
        let got = clipGradNorm(ps, maxNorm: maxNorm, normType: normType)
        assertClose([got], [total], atol: 1e-6, rtol: 1e-6, "total norm", file: file, line: line)
        assertClose(try XCTUnwrap(ps[0].grad).toArray(), a, file: file, line: line)
        assertClose(try XCTUnwrap(ps[1].grad).toArray(), b, file: file, line: line)
        XCTAssertNil(ps[2].grad, file: file, line: line)
    }

    func testL2() throws {
        // max_norm=1.0, norm_type=2.0
        try check(normType: 2, maxNorm: 1, total: 8.35538769,
                  a: [0.359049737, -0.478732973, 0.179524869], b: [0.0598416217, -0.299208105, 0.718099475, 0.0299208108])
    }

    func testInfinityNorm() throws {
        // max_norm=2.0, norm_type=inf
        try check(normType: .infinity, maxNorm: 2, total: 6,
                  a: [0.999999881, -1.33333313, 0.49999994], b: [0.166666642, -0.833333194, 1.99999976, 0.0833333209])
    }

    func testL1AndL3() throws {
        // max_norm=5.0, norm_type=1.0
        try check(normType: 1, maxNorm: 5, total: 17.75,
                  a: [0.845070362, -1.12676048, 0.422535181], b: [0.14084506, -0.704225302, 1.69014072, 0.0704225302])
        // max_norm=0.5, norm_type=3.0
        try check(normType: 3, maxNorm: 0.5, total: 6.88337946,
                  a: [0.217916191, -0.290554911, 0.108958095], b: [0.0363193639, -0.181596816, 0.435832381, 0.0181596819])
    }

    func testBelowMaxNormLeavesGradientsUntouched() throws {
        // max_norm=100.0, norm_type=2.0
        try check(normType: 2, maxNorm: 100, total: 8.35538769, a: [3, -4, 1.5], b: [0.5, -2.5, 6, 0.25])
    }

    func testClipValue() throws {
        // torch.nn.utils.clip_grad_value_([a, b, c], clip_value=2.0, foreach=False)
        let ps = try make()
        clipGradValue(ps, clipValue: 2)
        XCTAssertEqual(try XCTUnwrap(ps[0].grad).toArray(), [2, -2, 1.5])
        XCTAssertEqual(try XCTUnwrap(ps[1].grad).toArray(), [0.5, -2, 2, 0.25])
    }

    func testEmptyAndNaN() throws {
        XCTAssertEqual(clipGradNorm([try param([1])], maxNorm: 1), 0)
        let p = try param([1, 2])
        try setGrad(p, [.nan, 1])
        XCTAssert(clipGradNorm([p], maxNorm: 1).isNaN)
        XCTAssertEqual(try XCTUnwrap(p.grad).toArray()[1], 1, "a NaN norm must not rescale")
        XCTAssert(gradNorm([p], normType: .infinity).isNaN)
    }

    func testDuplicateParameterCountsOnce() throws {
        let p = try param([0, 0])
        try setGrad(p, [3, 4])
        XCTAssertEqual(gradNorm([p, p]), 5)
        clipGradNorm([p, p], maxNorm: 1)
        assertClose(try XCTUnwrap(p.grad).toArray(), [0.6, 0.8], atol: 1e-6)
    }

    func testLargeNormIsExactAndThreadCountIndependent() throws {
        let n = 200_001
        var values = [Float](repeating: 0, count: n)
        for i in 0..<n { values[i] = Float((i % 7) - 3) * 0.25 }
        let p = try param(values)
        try setGrad(p, values)
        // Σ x² is exact in Double here: every x² is a multiple of 1/16.
        var exact = 0.0
        for x in values { exact += Double(x) * Double(x) }
        let saved = Parallel.threadCount
        defer { Parallel.threadCount = saved }
        Parallel.threadCount = 1
        let one = gradNorm([p])
        Parallel.threadCount = 2
        let two = gradNorm([p])
        XCTAssertEqual(one, two)
        XCTAssertEqual(one, exact.squareRoot())
        XCTAssertEqual(gradNorm([p], normType: 1), values.reduce(0.0) { $0 + Swift.abs(Double($1)) })
    }
}
