import XCTest
@testable import TensorEngine

/// The additive per-head score bias of `attention` (MPNet's relative position bias, DeBERTa's
/// disentangled terms) and `relativePositionScores` (DeBERTa's c2p / p2c gathers): forward
/// against a plain Double loop, backward against finite differences (GradCheck.swift).
final class AttentionBiasTests: XCTestCase {
    // MARK: - Reference

    /// softmax(scale·q·kᵀ + bias + mask)·v per head, in Double, straight from the definition.
    func referenceAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, heads: Int, bias: Tensor?, mask: Tensor?, scale: Double) -> [Double] {
        let b = q.shape[0], tq = q.shape[1], e = q.shape[2], tk = k.shape[1], d = e / heads
        let qa = q.toArray(), ka = k.toArray(), va = v.toArray()
        let ba = bias?.toArray(), ma = mask?.toArray()
        let shared = bias?.shape[0] == 1
        var out = [Double](repeating: 0, count: b * tq * e)
        for bi in 0..<b {
            for h in 0..<heads {
                for i in 0..<tq {
                    var s = [Double](repeating: 0, count: tk)
                    for j in 0..<tk {
                        var dot = 0.0
                        for c in 0..<d { dot += Double(qa[(bi * tq + i) * e + h * d + c]) * Double(ka[(bi * tk + j) * e + h * d + c]) }
                        s[j] = dot * scale
                        if let ba { s[j] += Double(ba[(((shared ? 0 : bi) * heads + h) * tq + i) * tk + j]) }
                        if let ma { s[j] += Double(ma[bi * tk + j]) }
                    }
                    let top = s.max() ?? 0
                    let ex = s.map { Foundation.exp($0 - top) }
                    let z = ex.reduce(0, +)
                    for c in 0..<d {
                        var acc = 0.0
                        for j in 0..<tk { acc += ex[j] / z * Double(va[(bi * tk + j) * e + h * d + c]) }
                        out[(bi * tq + i) * e + h * d + c] = acc
                    }
                }
            }
        }
        return out
    }

    func assertClose(_ actual: Tensor, _ expected: [Double], tol: Double = 1e-5, _ what: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        let a = actual.toArray()
        XCTAssertEqual(a.count, expected.count, what, file: file, line: line)
        var worst = 0.0
        for (x, y) in zip(a, expected) { worst = Swift.max(worst, Swift.abs(Double(x) - y)) }
        XCTAssertLessThanOrEqual(worst, tol, "\(what): worst difference \(worst)", file: file, line: line)
    }

    // MARK: - attention(bias:)

    func testBiasForwardMatchesDefinition() throws {
        var rng = RandomGenerator(seed: 11)
        for (b, tq, tk, heads, sharedBias) in [(2, 5, 5, 2, false), (2, 4, 6, 3, true), (1, 3, 7, 1, false), (3, 9, 9, 2, true)] {
            let e = heads * 4
            let q = Tensor.uniform([b, tq, e], low: -1, high: 1, rng: &rng)
            let k = Tensor.uniform([b, tk, e], low: -1, high: 1, rng: &rng)
            let v = Tensor.uniform([b, tk, e], low: -1, high: 1, rng: &rng)
            let bias = Tensor.uniform([sharedBias ? 1 : b, heads, tq, tk], low: -2, high: 2, rng: &rng)
            var maskValues = [Float](repeating: 0, count: b * tk)
            maskValues[b * tk - 1] = -Float.greatestFiniteMagnitude
            let mask = try Tensor(maskValues, shape: [b, tk])
            var r = RandomGenerator(seed: 1)
            let out = try attention(query: q, key: k, value: v, heads: heads, mask: mask, bias: bias, scale: 0.4, rng: &r)
            assertClose(out, referenceAttention(q, k, v, heads: heads, bias: bias, mask: mask, scale: 0.4),
                        "B\(b) Tq\(tq) Tk\(tk) H\(heads) shared \(sharedBias)")
        }
    }

    func testBiasGradients() throws {
        var rng = RandomGenerator(seed: 12)
        for (b, tq, tk, heads, shared) in [(2, 3, 4, 2, false), (2, 4, 4, 2, true), (1, 2, 5, 1, true)] {
            let e = heads * 3
            let q = randomParameter([b, tq, e], &rng), k = randomParameter([b, tk, e], &rng), v = randomParameter([b, tk, e], &rng)
            let bias = randomParameter([shared ? 1 : b, heads, tq, tk], &rng)
            var maskValues = [Float](repeating: 0, count: b * tk)
            maskValues[0] = -Float.greatestFiniteMagnitude
            let mask = try Tensor(maskValues, shape: [b, tk])
            try GradCheck().run([q, k, v, bias]) { t in
                var r = RandomGenerator(seed: 1)
                return try attention(query: t[0], key: t[1], value: t[2], heads: heads, mask: mask, bias: t[3], scale: 0.7, rng: &r)
            }
        }
    }

    func testBiasGradientWithDropout() throws {
        var rng = RandomGenerator(seed: 13)
        let q = randomParameter([2, 4, 4], &rng), k = randomParameter([2, 4, 4], &rng), v = randomParameter([2, 4, 4], &rng)
        let bias = randomParameter([1, 2, 4, 4], &rng)
        try GradCheck().run([q, k, v, bias]) { t in
            var r = RandomGenerator(seed: 5)
            return try attention(query: t[0], key: t[1], value: t[2], heads: 2, bias: t[3], dropout: 0.3, training: true, rng: &r)
        }
    }

    /// A bias that does not train (DeBERTa's mask-like inputs, a frozen MPNet table) still lets
    /// the projections' gradients through, and gets none itself.
    func testConstantBias() throws {
        var rng = RandomGenerator(seed: 14)
        let q = randomParameter([2, 3, 4], &rng), k = randomParameter([2, 3, 4], &rng), v = randomParameter([2, 3, 4], &rng)
        let bias = Tensor.uniform([2, 2, 3, 3], low: -1, high: 1, rng: &rng)
        try GradCheck().run([q, k, v, bias]) { t in
            var r = RandomGenerator(seed: 1)
            return try attention(query: t[0], key: t[1], value: t[2], heads: 2, bias: t[3], rng: &r)
        }
        XCTAssertNil(bias.grad)
        // Only the bias trains: the output still records.
        let fixedQ = Tensor.uniform([2, 3, 4], low: -1, high: 1, rng: &rng)
        let trainable = randomParameter([1, 2, 3, 3], &rng)
        var r = RandomGenerator(seed: 1)
        let out = try attention(query: fixedQ, key: fixedQ, value: fixedQ, heads: 2, bias: trainable, rng: &r)
        XCTAssertTrue(out.requiresGrad)
        try sum(out).backward()
        XCTAssertEqual(trainable.grad?.shape, [1, 2, 3, 3])
    }

    func testBiasShapeIsChecked() throws {
        let q = Tensor.zeros([2, 3, 4])
        var r = RandomGenerator(seed: 1)
        for bad in [[2, 3, 3], [2, 2, 3, 4], [3, 2, 3, 3], [2, 1, 3, 3]] {
            XCTAssertThrowsError(try attention(query: q, key: q, value: q, heads: 2, bias: Tensor.zeros(bad), rng: &r),
                                 "bias \(bad)") { error in
                guard case TensorError.shapeMismatch(let op, _) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(op, "attention")
            }
        }
    }

    /// Without a bias the result is bit-identical to the plain call (the fast path is unchanged).
    func testZeroBiasEqualsNoBias() throws {
        var rng = RandomGenerator(seed: 15)
        let q = Tensor.uniform([2, 6, 8], low: -1, high: 1, rng: &rng)
        var r1 = RandomGenerator(seed: 1), r2 = RandomGenerator(seed: 1)
        let plain = try attention(query: q, key: q, value: q, heads: 2, rng: &r1)
        let zero = try attention(query: q, key: q, value: q, heads: 2, bias: Tensor.zeros([1, 2, 6, 6]), rng: &r2)
        XCTAssertEqual(plain.toArray(), zero.toArray())
    }

    // MARK: - relativePositionScores

    func referenceScores(_ x: Tensor, _ pos: Tensor, heads: Int, index: [Int32], scale: Double, transposed: Bool) -> [Double] {
        let b = x.shape[0], t = x.shape[1], e = x.shape[2], d = e / heads
        let xa = x.toArray(), pa = pos.toArray()
        var out = [Double](repeating: 0, count: b * heads * t * t)
        for bi in 0..<b {
            for h in 0..<heads {
                for i in 0..<t {
                    for j in 0..<t {
                        let p = Int(index[i * t + j])
                        var dot = 0.0
                        for c in 0..<d { dot += Double(xa[(bi * t + i) * e + h * d + c]) * Double(pa[p * e + h * d + c]) }
                        let (r, c) = transposed ? (j, i) : (i, j)
                        out[((bi * heads + h) * t + r) * t + c] = dot * scale
                    }
                }
            }
        }
        return out
    }

    func randomIndex(tokens t: Int, positions p: Int, _ rng: inout RandomGenerator) -> [Int32] {
        Tensor.uniform([t * t], low: 0, high: Float(p), rng: &rng).toArray().map { Int32(Swift.min(Int($0), p - 1)) }
    }

    func testRelativeScoresForward() throws {
        var rng = RandomGenerator(seed: 21)
        for (b, t, heads, p, transposed) in [(2, 5, 2, 8, false), (2, 5, 2, 8, true), (1, 7, 3, 4, true), (3, 1, 1, 2, false)] {
            let e = heads * 4
            let x = Tensor.uniform([b, t, e], low: -1, high: 1, rng: &rng)
            let pos = Tensor.uniform([p, e], low: -1, high: 1, rng: &rng)
            let index = randomIndex(tokens: t, positions: p, &rng)
            let out = try relativePositionScores(x, positions: pos, heads: heads, index: index, scale: 0.5, transposed: transposed)
            XCTAssertEqual(out.shape, [b, heads, t, t])
            assertClose(out, referenceScores(x, pos, heads: heads, index: index, scale: 0.5, transposed: transposed),
                        "B\(b) T\(t) H\(heads) P\(p) transposed \(transposed)")
        }
    }

    func testRelativeScoresGradients() throws {
        var rng = RandomGenerator(seed: 22)
        for transposed in [false, true] {
            let x = randomParameter([2, 4, 6], &rng), pos = randomParameter([5, 6], &rng)
            let index = randomIndex(tokens: 4, positions: 5, &rng)
            try GradCheck().run([x, pos]) { t in
                try relativePositionScores(t[0], positions: t[1], heads: 2, index: index, scale: 0.8, transposed: transposed)
            }
        }
        // x as a strided view (a slice of a fused projection), feeding attention as its bias.
        let fused = randomParameter([2, 4, 12], &rng), pos = randomParameter([6, 6], &rng)
        let index = randomIndex(tokens: 4, positions: 6, &rng)
        try GradCheck().run([fused, pos]) { t in
            let q = try t[0].slice(axis: 2, start: 0, end: 6), k = try t[0].slice(axis: 2, start: 6, end: 12)
            let bias = try add(try relativePositionScores(q, positions: t[1], heads: 2, index: index, scale: 0.5),
                               try relativePositionScores(k, positions: t[1], heads: 2, index: index, scale: 0.5, transposed: true))
            var r = RandomGenerator(seed: 1)
            return try attention(query: q, key: k, value: k, heads: 2, bias: bias, scale: 0.5, rng: &r)
        }
    }

    func testRelativeScoresRejectBadArguments() throws {
        let x = Tensor.zeros([1, 3, 4]), pos = Tensor.zeros([5, 4])
        XCTAssertThrowsError(try relativePositionScores(x, positions: pos, heads: 2, index: [Int32](repeating: 0, count: 8), scale: 1))
        XCTAssertThrowsError(try relativePositionScores(x, positions: pos, heads: 2, index: [Int32](repeating: 5, count: 9), scale: 1))
        XCTAssertThrowsError(try relativePositionScores(x, positions: pos, heads: 2, index: [Int32](repeating: -1, count: 9), scale: 1))
        XCTAssertThrowsError(try relativePositionScores(x, positions: Tensor.zeros([5, 6]), heads: 2, index: [Int32](repeating: 0, count: 9), scale: 1))
        XCTAssertThrowsError(try relativePositionScores(x, positions: pos, heads: 3, index: [Int32](repeating: 0, count: 9), scale: 1))
    }
}
