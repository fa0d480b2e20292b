import XCTest
import Layers
import TensorEngine

/// A small seeded training loop (an MLP from Layers with dropout, cross-entropy, shuffled
/// mini-batches and a hand-written SGD step) reproduces bit for bit: run twice, and run with
/// one and with two worker threads. (It lives in LayersTests because TensorEngineTests does not
/// depend on Layers; the engine-level determinism tests are in TensorEngineTests/DeterminismTests.)
final class TrainingDeterminismTests: XCTestCase {

    struct Result: Equatable {
        var weights: [String: [UInt32]]
        var losses: [UInt32]
    }

    /// Trains from scratch with fixed seeds and returns every weight's bits and the loss history.
    func train(threads: Int? = nil, steps: Int = 12, batch: Int = 32, hidden: Int = 48) throws -> Result {
        let saved = Parallel.threadCount
        if let threads { Parallel.threadCount = threads }
        defer { Parallel.threadCount = saved }

        let source = RandomSource(seed: 42)
        let model = try MLP([10, hidden, hidden, 4], activation: .gelu, dropout: 0.1, rng: source)
        model.train()
        var data = RandomGenerator(seed: 7)
        let n = 4 * batch
        let inputs = Tensor.normal([n, 10], rng: &data)
        let labels = (0..<n).map { _ in data.nextInt(below: 4) }
        let lr: Float = 0.1
        var losses: [UInt32] = []
        for step in 0..<steps {
            if step % 4 == 0 { _ = data.permutation(n) }   // exercise the generator between epochs
            let order = data.permutation(n)
            let rows = Array(order.prefix(batch))
            let x = try indexSelect(inputs, axis: 0, indices: rows)
            let y = rows.map { labels[$0] }
            let loss = try crossEntropy(try model(x), targets: y, labelSmoothing: 0.05)
            losses.append(try loss.item().bitPattern)
            try loss.backward()
            // Manual SGD: p ← p − lr·g (optimizers live in Training).
            withNoGrad {
                for p in model.trainableParameters {
                    guard let g = p.grad else { continue }
                    let gc = g.clone()   // contiguous
                    for i in 0..<p.count { p.data[i] -= lr * gc.data[i] }
                    p.grad = nil
                }
            }
        }
        var weights: [String: [UInt32]] = [:]
        for (key, p) in model.namedParameters() { weights[key] = p.toArray().map(\.bitPattern) }
        return Result(weights: weights, losses: losses)
    }

    func testTrainingTwiceGivesBitIdenticalWeights() throws {
        let a = try train(), b = try train()
        XCTAssertEqual(a.weights.keys.sorted(), ["layers.0.bias", "layers.0.weight", "layers.1.bias", "layers.1.weight",
                                                 "layers.2.bias", "layers.2.weight"])
        XCTAssertEqual(a, b)
        // The loop really trains (losses recorded, finite, and the weights moved off their init).
        let losses = a.losses.map { Float(bitPattern: $0) }
        XCTAssertTrue(losses.allSatisfy(\.isFinite))
        let initial = try MLP([10, 48, 48, 4], activation: .gelu, dropout: 0.1, rng: RandomSource(seed: 42))
        XCTAssertNotEqual(initial.namedParameters().first.map { $0.tensor.toArray().map(\.bitPattern) }, a.weights["layers.0.weight"])
    }

    func testTrainingIndependentOfThreadCount() throws {
        // Wide enough that the larger products are split across workers with two threads.
        let one = try train(threads: 1, steps: 6, batch: 128, hidden: 96)
        let two = try train(threads: 2, steps: 6, batch: 128, hidden: 96)
        XCTAssertEqual(one.losses, two.losses, "loss history depends on the thread count")
        for key in one.weights.keys.sorted() {
            XCTAssertEqual(one.weights[key], two.weights[key], "\(key) depends on the thread count")
        }
    }

    func testSameSeedSameInitialisation() throws {
        let a = try MLP([5, 7, 3], rng: RandomSource(seed: 1)), b = try MLP([5, 7, 3], rng: RandomSource(seed: 1))
        let c = try MLP([5, 7, 3], rng: RandomSource(seed: 2))
        let bitsA = a.parameters.map { $0.toArray().map(\.bitPattern) }
        XCTAssertEqual(bitsA, b.parameters.map { $0.toArray().map(\.bitPattern) })
        XCTAssertNotEqual(bitsA, c.parameters.map { $0.toArray().map(\.bitPattern) })
    }
}
