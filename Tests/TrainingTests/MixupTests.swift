import TensorEngine
import Training
import XCTest

final class MixupTests: XCTestCase {
    func moments(_ xs: [Double]) -> (mean: Double, variance: Double) {
        let m = xs.reduce(0, +) / Double(xs.count)
        return (m, xs.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(xs.count - 1))
    }

    func testGammaAndBetaMoments() throws {
        var rng = RandomGenerator(seed: 11)
        let n = 20000
        for (a, b) in [(0.8, 0.8), (2.0, 5.0), (0.3, 3.0), (1.0, 1.0)] {
            let m = moments((0..<n).map { _ in rng.nextBeta(a, b) })
            let mean = a / (a + b), variance = a * b / ((a + b) * (a + b) * (a + b + 1))
            XCTAssertEqual(m.mean, mean, accuracy: 4 * (variance / Double(n)).squareRoot(), "Beta(\(a), \(b)) mean")
            XCTAssertEqual(m.variance, variance, accuracy: 0.06 * variance, "Beta(\(a), \(b)) variance")
        }
        for k in [0.5, 3.0] {
            let m = moments((0..<n).map { _ in rng.nextGamma(k) })
            XCTAssertEqual(m.mean, k, accuracy: 4 * (k / Double(n)).squareRoot(), "Gamma(\(k)) mean")
            XCTAssertEqual(m.variance, k, accuracy: 0.06 * k, "Gamma(\(k)) variance")
        }
        let u = moments((0..<n).map { _ in rng.nextUnitDouble() })
        XCTAssertEqual(u.mean, 0.5, accuracy: 0.01)
        XCTAssertEqual(u.variance, 1.0 / 12, accuracy: 0.003)
    }

    func testDrawStatistics() throws {
        let both = Mixup(mixupAlpha: 0.8, cutmixAlpha: 1, prob: 0.6, switchProb: 0.3, classes: 5, seed: 3)
        let draws = (0..<4000).map { both.draw(step: $0, height: 16, width: 20) }
        let none = draws.filter { $0.method == .none }, cut = draws.filter { $0.method == .cutmix }
        XCTAssertEqual(Double(none.count) / 4000, 0.4, accuracy: 0.03, "prob")
        XCTAssertEqual(Double(cut.count) / Double(4000 - none.count), 0.3, accuracy: 0.035, "switchProb")
        XCTAssert(none.allSatisfy { $0.lambda == 1 && $0.box == nil })
        let mix = draws.filter { $0.method == .mixup }
        XCTAssertEqual(moments(mix.map(\.lambda)).mean, 0.5, accuracy: 0.03)
        XCTAssertEqual(moments(mix.map(\.lambda)).variance, 1 / (4 * 2.6), accuracy: 0.012, "Beta(0.8, 0.8)")

        let cutmix = Mixup(mixupAlpha: 0, cutmixAlpha: 1, classes: 5, seed: 4)
        var clipped = 0
        var centres = [Double]()
        for step in 0..<3000 {
            let d = cutmix.draw(step: step, height: 16, width: 20)
            XCTAssertEqual(d.method, .cutmix)
            let box = try XCTUnwrap(d.box)
            XCTAssert(0 <= box.top && box.top <= box.bottom && box.bottom <= 16 && 0 <= box.left && box.left <= box.right && box.right <= 20)
            // λ is corrected to the area actually pasted.
            XCTAssertEqual(d.lambda, 1 - Double((box.bottom - box.top) * (box.right - box.left)) / 320, accuracy: 1e-12)
            let ratio = (1 - d.sampledLambda).squareRoot()
            let h = Int(16 * ratio), w = Int(20 * ratio)
            if box.bottom - box.top == h && box.right - box.left == w {
                centres.append(Double(box.top + h / 2))
            } else {
                clipped += 1
                XCTAssert(box.bottom - box.top <= h && box.right - box.left <= w)
                XCTAssertGreaterThanOrEqual(d.lambda, d.sampledLambda - 1e-12, "clipping only shrinks the box")
            }
        }
        XCTAssertGreaterThan(clipped, 300, "boxes near the border are clipped")
        XCTAssertEqual(moments((0..<3000).map { cutmix.draw(step: $0, height: 16, width: 20).sampledLambda }).mean, 0.5, accuracy: 0.02,
                       "Beta(1, 1)")
        XCTAssertEqual(moments(centres).mean, 8, accuracy: 0.5, "box centres are uniform over the rows")
    }

    func batch(_ n: Int = 4, c: Int = 2, h: Int = 5, w: Int = 6) throws -> Tensor {
        try Tensor((0..<(n * c * h * w)).map { Float($0 % 97) / 10 }, shape: [n, c, h, w])
    }

    func testMixupAndCutmixPixelsAndTargets() throws {
        let x = try batch()
        let targets = [0, 2, 1, 2]
        let mixer = Mixup(mixupAlpha: 0.8, cutmixAlpha: 1, switchProb: 0.5, labelSmoothing: 0.1, classes: 3, seed: 7)
        var seen: Set<String> = []
        for step in 0..<12 {
            let (out, y, d) = try mixer.apply(pixels: x, targets: targets, step: step)
            seen.insert(d.method.rawValue)
            let xs = x.toArray(), os = out.toArray(), ys = y.toArray()
            let plane = 2 * 5 * 6
            for i in 0..<4 {
                let j = 3 - i
                for c in 0..<2 {
                    for r in 0..<5 {
                        for col in 0..<6 {
                            let k = c * 30 + r * 6 + col
                            let a = xs[i * plane + k], b = xs[j * plane + k], o = os[i * plane + k]
                            switch d.method {
                            case .mixup: XCTAssertEqual(o, a * Float(d.lambda) + b * (1 - Float(d.lambda)), accuracy: 1e-5)
                            case .cutmix:
                                let box = try XCTUnwrap(d.box)
                                let inside = r >= box.top && r < box.bottom && col >= box.left && col < box.right
                                XCTAssertEqual(o, inside ? b : a)
                            case .none: XCTAssertEqual(o, a)
                            }
                        }
                    }
                }
                // Soft targets: λ·y_i + (1 − λ)·y_(N−1−i) of smoothed one-hot rows; each row sums to 1.
                let row = Array(ys[(i * 3)..<(i * 3 + 3)])
                XCTAssertEqual(row.reduce(0, +), 1, accuracy: 1e-6)
                for k in 0..<3 {
                    let yi: Float = k == targets[i] ? 0.9 + 0.1 / 3 : 0.1 / 3, yj: Float = k == targets[j] ? 0.9 + 0.1 / 3 : 0.1 / 3
                    XCTAssertEqual(row[k], Float(d.lambda) * yi + (1 - Float(d.lambda)) * yj, accuracy: 1e-6)
                }
            }
            // Deterministic per (seed, step); the input is left alone.
            let again = try mixer.apply(pixels: x, targets: targets, step: step)
            XCTAssertEqual(again.pixels.toArray().map(\.bitPattern), os.map(\.bitPattern))
            XCTAssertEqual(again.draw, d)
            XCTAssertEqual(x.toArray(), xs)
        }
        XCTAssertEqual(seen, ["mixup", "cutmix"])
        let other = Mixup(mixupAlpha: 0.8, cutmixAlpha: 1, classes: 3, seed: 8)
        XCTAssertNotEqual((0..<8).map { other.draw(step: $0, height: 5, width: 6).sampledLambda },
                          (0..<8).map { mixer.draw(step: $0, height: 5, width: 6).sampledLambda }, "the seed matters")
    }

    func testProbZeroIsTheIdentity() throws {
        let x = try batch(3)
        let mixer = Mixup(mixupAlpha: 1, cutmixAlpha: 1, prob: 0, labelSmoothing: 0, classes: 4, seed: 1)
        for step in 0..<5 {
            let (out, y, d) = try mixer.apply(pixels: x, targets: [3, 0, 1], step: step)
            XCTAssertEqual(d.method, .none)
            XCTAssertEqual(out.toArray(), x.toArray())
            XCTAssertEqual(y.toArray(), [0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0, 0])
        }
    }

    func testMixupErrors() throws {
        assertThrowsContaining(["mixup: mixupAlpha and cutmixAlpha are both 0"]) { try Mixup(mixupAlpha: 0, cutmixAlpha: 0, classes: 2, seed: 0).validate() }
        assertThrowsMessage("mixup: prob must be in [0, 1], got 1.5") { try Mixup(prob: 1.5, classes: 2, seed: 0).validate() }
        assertThrowsMessage("mixup: classes must be >= 1, got 0") { try Mixup(classes: 0, seed: 0).validate() }
        let mixer = Mixup(classes: 2, seed: 0)
        assertThrowsMessage("mixup: pixels must be [batch, channels, height, width], got [2, 3]") {
            _ = try mixer.apply(pixels: Tensor.zeros([2, 3]), targets: [0, 1], step: 0)
        }
        assertThrowsMessage("mixup: 1 targets for a batch of 2 images") { _ = try mixer.apply(pixels: Tensor.zeros([2, 1, 2, 2]), targets: [0], step: 0) }
        assertThrowsMessage("one_hot: target 2 in row 1 is outside 0..<2") { _ = try mixer.apply(pixels: Tensor.zeros([2, 1, 2, 2]), targets: [0, 2], step: 0) }
    }
}
