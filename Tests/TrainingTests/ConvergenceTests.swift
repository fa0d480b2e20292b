import TensorEngine
import Training
import XCTest

final class ConvergenceTests: XCTestCase {
    /// Fits y = 3x + 1 with a 1→1 linear layer, MSE loss, AdamW, a warmup+cosine schedule and
    /// gradient clipping: the whole training-step loop end to end.
    func testFitLine() throws {
        var rng = RandomGenerator(seed: 42)
        let n = 64
        let xs = Tensor.uniform([n, 1], low: -1, high: 1, rng: &rng)
        let ys = try Tensor(xs.toArray().map { 3 * $0 + 1 }, shape: [n, 1])
        let weight = Tensor.parameter(Tensor.zeros([1, 1]))
        let bias = Tensor.parameter(Tensor.zeros([1]))
        let opt = try AdamW(groups: ParameterGroup.splitByDecay(
            [(key: "weight", tensor: weight), (key: "bias", tensor: bias)], lr: 0.1, weightDecay: 1e-4))
        let steps = 300
        let sched = try Scheduler(optimizer: opt, schedule: LRSchedule.cosine(warmupSteps: 10, totalSteps: steps))

        func loss() throws -> Tensor {
            let pred = try linear(xs, weight: weight, bias: bias)
            let diff = try sub(pred, ys)
            return try mean(try mul(diff, diff))
        }
        let initial = try loss().item()
        var last = initial
        for _ in 0..<steps {
            opt.zeroGrad()
            let l = try loss()
            try l.backward()
            clipGradNorm(opt.allParameters, maxNorm: 5)
            try opt.step()
            sched.step()
            last = try l.item()
        }
        let final = try withNoGrad { try loss().item() }
        XCTAssertGreaterThan(initial, 1)
        XCTAssertLessThan(final, 1e-4, "loss went \(initial) → \(last) → \(final)")
        XCTAssertEqual(weight.toArray()[0], 3, accuracy: 0.01)
        XCTAssertEqual(bias.toArray()[0], 1, accuracy: 0.01)
    }
}
