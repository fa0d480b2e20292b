import ArgumentParser
import Foundation
import Layers
import TensorEngine
import Training

extension Runpipe {
    /// Trains a small network on a seeded synthetic problem and prints its loss falling: a quick,
    /// self-contained check that the engine, autograd and optimizer work on this machine.
    struct Demo: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train a small MLP on two interleaved spirals and print the loss as it falls.")

        @Option(help: "Training epochs.")
        var epochs = 60

        @Option(help: "Random seed (data, initialisation, shuffling).")
        var seed: UInt64 = 42

        @Option(help: "Worker threads (default: RUNPIPE_THREADS or all cores).")
        var threads: Int?

        func validate() throws {
            guard epochs > 0 else { throw ValidationError("--epochs must be at least 1, got \(epochs)") }
            if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        }

        func run() throws {
            // Commands that compute make sure OpenBLAS runs this CPU's kernels (see `BLASCore`).
            BLASCore.restartWithBetterKernelsIfNeeded()
            if let threads { Parallel.threadCount = threads }
            let rng = RandomSource(seed: seed)
            let (x, y) = spirals(perClass: 512, rng: &rng.generator)
            let model = try MLP([2, 64, 64, 2], activation: .relu, rng: rng)
            let optimizer = try AdamW(parameters: model.parameters, lr: 1e-2, weightDecay: 1e-4)
            let n = y.count, batch = 128
            let start = Date()
            print("runpipe \(Runpipe.version) demo: MLP 2→64→64→2 on \(n) spiral points, AdamW, \(Parallel.threadCount) thread(s)")
            for epoch in 1...epochs {
                let order = rng.generator.permutation(n)
                var total: Float = 0
                for s in stride(from: 0, to: n, by: batch) {
                    let idx = Array(order[s..<min(n, s + batch)])
                    let xb = try indexSelect(x, axis: 0, indices: idx)
                    let loss = try crossEntropy(try model(xb), targets: idx.map { y[$0] })
                    optimizer.zeroGrad()
                    try loss.backward()
                    try optimizer.step()
                    total += try loss.item() * Float(idx.count)
                }
                if epoch == 1 || epoch % 10 == 0 || epoch == epochs {
                    let accuracy = try withNoGrad { try accuracyOf(model, x, y) }
                    print(String(format: "epoch %3d  loss %.4f  accuracy %.3f", epoch, total / Float(n), accuracy))
                }
            }
            print(String(format: "done in %.2f s", Date().timeIntervalSince(start)))
        }
    }
}

/// Two interleaved spirals with a little noise: a problem a linear model cannot solve.
func spirals(perClass: Int, rng: inout RandomGenerator) -> (Tensor, [Int]) {
    let noise = Tensor.normal([2 * perClass, 2], std: 0.05, rng: &rng)
    var values: [Float] = []
    var labels: [Int] = []
    for c in 0..<2 {
        for i in 0..<perClass {
            let r = Float(i) / Float(perClass)
            let angle = 3 * Float.pi * r + Float(c) * Float.pi
            let row = c * perClass + i
            values.append(r * Foundation.cos(angle) + noise.data[2 * row])
            values.append(r * Foundation.sin(angle) + noise.data[2 * row + 1])
            labels.append(c)
        }
    }
    let x = Tensor(uninitialized: [2 * perClass, 2])
    for (i, v) in values.enumerated() { x.data[i] = v }
    return (x, labels)
}

func accuracyOf(_ model: MLP, _ x: Tensor, _ y: [Int]) throws -> Float {
    let predicted = try argmax(try model(x), axis: 1).toArray()
    let correct = zip(predicted, y).filter { Int($0) == $1 }.count
    return Float(correct) / Float(y.count)
}
