import XCTest
@testable import TensorEngine

/// Max pooling against a direct loop over widths where the vector path, its overlapping last
/// vector and the scalar borders all run (and the gradient lands on each window's first maximum).
final class MaxPoolWidthTests: XCTestCase {
    func testAgainstADirectLoop() throws {
        for (h, w, k, s, p) in [(32, 32, 3, 2, 1), (17, 29, 3, 2, 1), (12, 21, 2, 2, 0), (9, 40, 3, 1, 1), (33, 19, 5, 2, 2)] {
            var rng = RandomGenerator(seed: UInt64(h * 100 + w))
            let x = Tensor.normal([2, 3, h, w], rng: &rng)
            x.requiresGrad = true
            let y = try maxPool2d(x, kernel: (k, k), stride: (s, s), padding: (p, p))
            let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
            XCTAssertEqual(y.shape, [2, 3, oh, ow])
            let xs = x.toArray(), ys = y.toArray()
            var expectedGrad = [Float](repeating: 0, count: xs.count)
            for plane in 0..<6 {
                for i in 0..<oh {
                    for j in 0..<ow {
                        var best = -Float.infinity, at = -1
                        for a in 0..<k {
                            for b in 0..<k {
                                let r = i * s - p + a, c = j * s - p + b
                                guard r >= 0, r < h, c >= 0, c < w else { continue }
                                let v = xs[plane * h * w + r * w + c]
                                if v > best { best = v; at = plane * h * w + r * w + c }
                            }
                        }
                        XCTAssertEqual(ys[(plane * oh + i) * ow + j], best, "\(h)×\(w) k\(k) s\(s) p\(p) at \(i),\(j)")
                        expectedGrad[at] += 1
                    }
                }
            }
            try sum(y).backward()
            XCTAssertEqual(try XCTUnwrap(x.grad).toArray(), expectedGrad, "\(h)×\(w) k\(k) s\(s) p\(p)")
        }
    }
}
