import XCTest
import TensorEngine

/// Bit-for-bit reproducibility: seeded random numbers, dropout masks whatever the thread count,
/// and a small seeded training loop.
final class DeterminismTests: XCTestCase {

    /// Runs `body` with `Parallel.threadCount` set to `n`, restoring the previous value after.
    func withThreads<T>(_ n: Int, _ body: () throws -> T) rethrows -> T {
        let saved = Parallel.threadCount
        Parallel.threadCount = n
        defer { Parallel.threadCount = saved }
        return try body()
    }

    func bits(_ t: Tensor) -> [UInt32] { t.toArray().map(\.bitPattern) }

    // MARK: - RandomGenerator

    func testPhiloxKnownAnswer() {
        // Random123's published vector for Philox4x32-10 with zero counter and key.
        let b = philox(counter: 0, key: 0)
        XCTAssertEqual([b.0, b.1, b.2, b.3], [0x6627_E8D5, 0xE169_C58D, 0xBC57_AC4C, 0x9B00_DBD8])
    }

    func testSameSeedSameSequence() {
        var a = RandomGenerator(seed: 1234), b = RandomGenerator(seed: 1234)
        XCTAssertEqual(bits(Tensor.uniform([1000], rng: &a)), bits(Tensor.uniform([1000], rng: &b)))
        XCTAssertEqual(bits(Tensor.normal([777], mean: 1, std: 2, rng: &a)), bits(Tensor.normal([777], mean: 1, std: 2, rng: &b)))
        XCTAssertEqual(bits(Tensor.truncatedNormal([300], std: 0.02, rng: &a)), bits(Tensor.truncatedNormal([300], std: 0.02, rng: &b)))
        XCTAssertEqual(a.permutation(100), b.permutation(100))
        XCTAssertEqual((0..<50).map { _ in a.nextInt(below: 17) }, (0..<50).map { _ in b.nextInt(below: 17) })
        XCTAssertEqual(a.offset, b.offset)
    }

    func testDifferentSeedsDiffer() {
        var a = RandomGenerator(seed: 1), b = RandomGenerator(seed: 2)
        XCTAssertNotEqual(bits(Tensor.uniform([64], rng: &a)), bits(Tensor.uniform([64], rng: &b)))
    }

    func testDrawsAdvanceTheCounterAndResumeFromAnOffset() {
        var g = RandomGenerator(seed: 77)
        _ = Tensor.uniform([10], rng: &g)           // 10 values: 3 counters
        XCTAssertEqual(g.offset, 3)
        let saved = g.offset
        let next = Tensor.uniform([33], rng: &g)
        // A generator rebuilt at the saved (seed, offset) continues the same stream.
        var resumed = RandomGenerator(seed: 77, offset: saved)
        XCTAssertEqual(bits(next), bits(Tensor.uniform([33], rng: &resumed)))
        // Consecutive draws do not repeat each other.
        XCTAssertNotEqual(bits(next), bits(Tensor.uniform([33], rng: &g)))
    }

    func testUniformRangeAndStreamSlicing() {
        var g = RandomGenerator(seed: 5)
        let u = Tensor.uniform([4099], low: -2, high: 3, rng: &g).toArray()
        XCTAssertTrue(u.allSatisfy { $0 >= -2 && $0 < 3 })
        // Element i of a stream is a pure function of (seed, offset, i): filling any sub-range
        // gives the same values as filling the whole.
        var source = RandomGenerator(seed: 9, offset: 100)
        let stream = source.take(50)
        var whole = [Float](repeating: 0, count: 50), part = [Float](repeating: 0, count: 21)
        whole.withUnsafeMutableBufferPointer { stream.fillUniform($0.baseAddress!, start: 0, count: 50) }
        part.withUnsafeMutableBufferPointer { stream.fillUniform($0.baseAddress!, start: 13, count: 21) }
        XCTAssertEqual(Array(whole[13..<34]), part)
        for i in [0, 1, 5, 49] { XCTAssertEqual(whole[i], stream.uniform(i)) }
    }

    func testRandomTensorsIndependentOfThreadCount() {
        // Large enough that the fill is split between workers when threads > 1.
        let n = 300_001
        let one = withThreads(1) { () -> ([UInt32], [UInt32]) in
            var g = RandomGenerator(seed: 31)
            return (bits(Tensor.uniform([n], rng: &g)), bits(Tensor.normal([n], rng: &g)))
        }
        let two = withThreads(2) { () -> ([UInt32], [UInt32]) in
            var g = RandomGenerator(seed: 31)
            return (bits(Tensor.uniform([n], rng: &g)), bits(Tensor.normal([n], rng: &g)))
        }
        XCTAssertEqual(one.0, two.0, "uniform depends on the thread count")
        XCTAssertEqual(one.1, two.1, "normal depends on the thread count")
    }

    // MARK: - Dropout

    func dropoutRun(threads: Int, seed: UInt64) throws -> (out: [UInt32], grad: [UInt32]) {
        try withThreads(threads) {
            var g = RandomGenerator(seed: seed)
            let x = Tensor.parameter(Tensor.full([257, 401], 1))   // 103_057 elements: split across workers
            let y = try dropout(x, p: 0.4, training: true, rng: &g)
            try y.backward(Tensor.full(y.shape, 1))
            return (bits(y), bits(try XCTUnwrap(x.grad)))
        }
    }

    func testDropoutMaskIdenticalForOneAndTwoThreads() throws {
        let one = try dropoutRun(threads: 1, seed: 8)
        let two = try dropoutRun(threads: 2, seed: 8)
        XCTAssertEqual(one.out, two.out, "dropout mask depends on the thread count")
        XCTAssertEqual(one.grad, two.grad, "dropout backward mask depends on the thread count")
        // Backward applies the same mask as forward (input of ones: grad == output).
        XCTAssertEqual(one.out, one.grad)
        // The same seed twice gives the same mask; another seed a different one.
        XCTAssertEqual(try dropoutRun(threads: 2, seed: 8).out, one.out)
        XCTAssertNotEqual(try dropoutRun(threads: 2, seed: 9).out, one.out)
        // About 40% dropped, the rest scaled by 1/(1−p).
        let kept = one.out.filter { $0 != 0 }
        let rate = 1 - Double(kept.count) / Double(one.out.count)
        XCTAssertEqual(rate, 0.4, accuracy: 0.01)
        XCTAssertEqual(Set(kept), [Float(1 / (1 - Float(0.4))).bitPattern])
    }

    func testDropoutInEvalModeOrZeroProbabilityIsIdentity() throws {
        var g = RandomGenerator(seed: 3)
        let x = Tensor.uniform([10, 10], rng: &g)
        let before = g.offset
        XCTAssertTrue(try dropout(x, p: 0.5, training: false, rng: &g) === x)
        XCTAssertTrue(try dropout(x, p: 0, training: true, rng: &g) === x)
        XCTAssertEqual(g.offset, before, "an inactive dropout must not consume random numbers")
    }

    func testAttentionDropoutIdenticalForOneAndTwoThreads() throws {
        func run(_ threads: Int) throws -> ([UInt32], [UInt32]) {
            try withThreads(threads) {
                var init_ = RandomGenerator(seed: 10)
                let q = Tensor.parameter(Tensor.normal([3, 9, 16], rng: &init_))
                let k = Tensor.normal([3, 9, 16], rng: &init_), v = Tensor.normal([3, 9, 16], rng: &init_)
                var g = RandomGenerator(seed: 11)
                let out = try attention(query: q, key: k, value: v, heads: 4, dropout: 0.3, training: true, rng: &g)
                try out.backward(Tensor.full(out.shape, 1))
                return (bits(out), bits(try XCTUnwrap(q.grad)))
            }
        }
        let one = try run(1), two = try run(2)
        XCTAssertEqual(one.0, two.0, "attention dropout output depends on the thread count")
        XCTAssertEqual(one.1, two.1, "attention dropout gradient depends on the thread count")
    }
    // MARK: - Every kernel, one vs two threads

    /// Forward values and gradients of the main ops are bit-identical with 1 and 2 threads, at
    /// sizes where the kernels split their work (GEMMs above the split threshold, reductions and
    /// row kernels over many rows).
    func testOpsIndependentOfThreadCount() throws {
        func run(_ threads: Int) throws -> [[UInt32]] {
            try withThreads(threads) {
                var g = RandomGenerator(seed: 2718)
                let x = Tensor.parameter(Tensor.normal([200, 96], rng: &g))
                let w = Tensor.parameter(Tensor.normal([128, 96], std: 0.1, rng: &g))
                let b = Tensor.parameter(Tensor.normal([128], rng: &g))
                let m = Tensor.parameter(Tensor.normal([96, 300], std: 0.1, rng: &g))
                let ln = Tensor.parameter(Tensor.normal([128], rng: &g))
                let qkv = Tensor.parameter(Tensor.normal([4, 33, 3 * 64], rng: &g))
                let h = try gelu(try linear(x, weight: w, bias: b))                       // [200, 128]
                let n = try layerNorm(h, weight: ln, bias: nil)
                let p = try matmul(x, m)                                                   // [200, 300]
                let s = try softmax(p, axis: -1)
                let ls = try logSoftmax(p, axis: 0)
                let bm = try batchedMatmul(try n.reshaped([8, 25, 128]), try n.reshaped([8, 25, 128]), transB: true)
                let q = try qkv.slice(axis: 2, start: 0, end: 64), k = try qkv.slice(axis: 2, start: 64, end: 128)
                let v = try qkv.slice(axis: 2, start: 128, end: 192)
                var r = RandomGenerator(seed: 4)
                let att = try attention(query: q, key: k, value: v, heads: 4, rng: &r)
                let big = Tensor.normal([70_001], rng: &g)
                let total = try add(try add(try mean(n), try sum(s, axes: [0]).reshaped([1, 300]).slice(axis: 1, start: 0, end: 1)),
                                    try mean(try mul(ls, ls)).reshaped([1, 1]))
                let loss = try add(try add(total, try mean(try mul(bm, bm)).reshaped([1, 1])), try mean(try mul(att, att)).reshaped([1, 1]))
                try loss.backward(Tensor.ones([1, 1]))
                var out = [n, s, ls, bm, att, try sum(big), try variance(p, axes: [0])].map(bits)
                for t in [x, w, b, m, ln, qkv] { out.append(bits(try XCTUnwrap(t.grad))) }
                return out
            }
        }
        let one = try run(1), two = try run(2)
        let names = ["layerNorm", "softmax", "logSoftmax", "batchedMatmul", "attention", "sum", "variance",
                     "grad x", "grad w", "grad b", "grad m", "grad ln", "grad qkv"]
        for (i, name) in names.enumerated() {
            XCTAssertEqual(one[i], two[i], "\(name) depends on the thread count")
        }
    }

    func testMatmulIndependentOfThreadCount() throws {
        // Shapes on both sides of the split threshold, cut by rows and by columns.
        var g = RandomGenerator(seed: 99)
        for (m, k, n) in [(128, 96, 96), (200, 64, 64), (64, 64, 200), (33, 77, 300), (96, 128, 10), (513, 40, 70)] {
            let a = Tensor.normal([m, k], rng: &g), b = Tensor.normal([k, n], rng: &g), w = Tensor.normal([n, k], rng: &g)
            let one = try withThreads(1) { (bits(try matmul(a, b)), bits(try linear(a, weight: w, bias: nil))) }
            let two = try withThreads(2) { (bits(try matmul(a, b)), bits(try linear(a, weight: w, bias: nil))) }
            XCTAssertEqual(one.0, two.0, "matmul [\(m), \(k)]·[\(k), \(n)] depends on the thread count")
            XCTAssertEqual(one.1, two.1, "linear [\(m), \(k)]·[\(n), \(k)]ᵀ depends on the thread count")
        }
    }
}
