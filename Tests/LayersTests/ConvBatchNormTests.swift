import XCTest
import TensorEngine
@testable import Layers

/// `convBatchNorm` folds eval-mode batch norm into the convolution only when that cannot change
/// gradients, and the folded result equals the two-step one up to rounding.
final class ConvBatchNormTests: XCTestCase {
    func layers(groups: Int = 1, bias: Bool = false) throws -> (Conv2d, BatchNorm2d) {
        let rng = RandomSource(seed: 9)
        let conv = try Conv2d(8, 8, kernel: (3, 3), padding: (1, 1), groups: groups, bias: bias, rng: rng)
        let norm = BatchNorm2d(8, eps: 1e-3)
        // Statistics and affine parameters away from the identity.
        for (t, base) in [(norm.runningMean, Float(0.3)), (norm.runningVar, 1.7), (norm.weight, 0.8), (norm.bias, -0.2)] {
            for i in 0..<8 { t.data[i] = base + 0.05 * Float(i) }
        }
        return (conv, norm)
    }

    func testFoldedEvaluationMatchesTheTwoSteps() throws {
        for (groups, bias) in [(1, false), (8, false), (2, true)] {
            let (conv, norm) = try layers(groups: groups, bias: bias)
            conv.eval(); norm.eval()
            let x = Tensor.normal([2, 8, 9, 7], rng: &RandomSource(seed: 4).generator)
            let reference = try norm(try conv(x)).toArray()
            let folded = try withNoGrad { try convBatchNorm(conv, norm, x) }.toArray()
            let scale = reference.map(abs).max() ?? 1
            for (a, b) in zip(folded, reference) { XCTAssertEqual(a, b, accuracy: 1e-5 * scale, "groups \(groups), bias \(bias)") }
        }
    }

    func testTrainingModeAndTrainableLayersAreNotFolded() throws {
        let (conv, norm) = try layers()
        let x = Tensor.normal([2, 8, 5, 5], rng: &RandomSource(seed: 5).generator)
        // Training mode: the running statistics move exactly as the two-step call moves them.
        let before = norm.runningMean.toArray()
        _ = try convBatchNorm(conv, norm, x)
        XCTAssertNotEqual(norm.runningMean.toArray(), before)
        // Evaluation with a recorded, trainable convolution: gradients reach its weight.
        norm.eval()
        let loss = try sum(try convBatchNorm(conv, norm, x))
        try loss.backward()
        XCTAssertNotNil(conv.weight.grad)
        XCTAssertNotNil(norm.weight.grad)
    }
}
