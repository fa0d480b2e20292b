import TensorEngine
import Training
import XCTest

/// Reference values from PyTorch 2.15 in float64, with AutoMM's `FocalLoss.forward` written out:
///
///     x = tensor([[0.5, -1.0, 2.0, 0.25], [1.5, 0.0, -0.5, 0.75], [-2.0, 0.3, 0.1, 1.2]]); t = tensor([2, 0, 3])
///     alpha = tensor([0.25, 0.5, 1.0, 2.0])
///     pt = softmax(x, -1)[arange(3), t]; ce = nll_loss(log_softmax(x, -1), t, weight=alpha, reduction="none")
///     loss = ((1 - pt) ** gamma * ce).mean()
///     soft = (-q * log_softmax(x, -1)).sum(-1).mean()   # timm's SoftTargetCrossEntropy
final class LossTests: XCTestCase {
    let logits: [Float] = [0.5, -1.0, 2.0, 0.25, 1.5, 0.0, -0.5, 0.75, -2.0, 0.3, 0.1, 1.2]
    let targets = [2, 0, 3]
    let alpha: [Float] = [0.25, 0.5, 1.0, 2.0]

    func x() throws -> Tensor { try param(logits, [3, 4]) }

    func checkFocal(alpha: [Float]?, gamma: Float, loss: Float, grad: [Float], file: StaticString = #filePath, line: UInt = #line) throws {
        let x = try x()
        let l = try focalLoss(x, targets: targets, alpha: alpha, gamma: gamma)
        assertClose([try l.item()], [loss], atol: 1e-6, rtol: 1e-5, "loss", file: file, line: line)
        try l.backward()
        assertClose(try XCTUnwrap(x.grad).toArray(), grad, atol: 1e-6, rtol: 1e-4, "gradient", file: file, line: line)
        try assertGradientMatchesFiniteDifferences(try self.x(), file: file, line: line) {
            try focalLoss($0, targets: self.targets, alpha: alpha, gamma: gamma)
        }
    }

    func testFocalLossMatchesAutoMM() throws {
        try checkFocal(alpha: alpha, gamma: 2, loss: 0.0959648022845559,
                       grad: [0.013005485, 0.002901916, -0.026036083, 0.010128682, -0.019125345, 0.005136347, 0.003115352, 0.010873646,
                              0.007266831, 0.072480694, 0.059342173, -0.139089697])
        try checkFocal(alpha: nil, gamma: 1.5, loss: 0.1385228653765926,
                       grad: [0.019759039, 0.004408838, -0.039556232, 0.015388355, -0.096732863, 0.025978801, 0.015756939, 0.054997123,
                              0.004669925, 0.046578686, 0.038135403, -0.089384014])
        try checkFocal(alpha: alpha, gamma: 0, loss: 0.5579754571400025,
                       grad: [0.051411608, 0.01147148, -0.10292249, 0.040039401, -0.037816687, 0.010156137, 0.006160008, 0.021500542,
                              0.015265003, 0.152255921, 0.124656605, -0.292177529])
        try assertGradientMatchesFiniteDifferences(try x()) { try focalLoss($0, targets: self.targets, alpha: self.alpha, gamma: 1) }
    }

    func testFocalLossWithGammaZeroAndUnitAlphaIsCrossEntropy() throws {
        let a = try focalLoss(try x(), targets: targets, gamma: 0).item()
        let b = try crossEntropy(try x(), targets: targets).item()
        assertClose([a], [b], atol: 1e-7, rtol: 1e-6)
    }

    func testSoftTargetCrossEntropy() throws {
        let q = try Tensor([0.1, 0.2, 0.6, 0.1, 0.7, 0.1, 0.1, 0.1, 0.0, 0.5, 0.0, 0.5], shape: [3, 4])
        let x = try x()
        let l = try softTargetCrossEntropy(x, targets: q)
        assertClose([try l.item()], [1.1169256259607698], atol: 1e-6, rtol: 1e-5)
        try l.backward()
        assertClose(try XCTUnwrap(x.grad).toArray(),
                    [0.018078275, -0.055195186, 0.030410844, 0.006706068, -0.051266746, 0.007291213, -0.0086933, 0.052668833,
                     0.007632501, -0.090538706, 0.062328303, 0.020577902], atol: 1e-6, rtol: 1e-4)
        try assertGradientMatchesFiniteDifferences(try self.x()) { try softTargetCrossEntropy($0, targets: q) }
    }

    func testSmoothedOneHotMatchesTheEnginesLabelSmoothing() throws {
        // Label smoothing is the engine's cross-entropy; soft targets built the timm way agree with it.
        for s: Float in [0, 0.1, 0.3] {
            let xa = try x(), xb = try x()
            let a = try crossEntropy(xa, targets: targets, labelSmoothing: s)
            let b = try softTargetCrossEntropy(xb, targets: try smoothedOneHot(targets, classes: 4, smoothing: s))
            assertClose([try a.item()], [try b.item()], atol: 1e-6, rtol: 1e-6, "smoothing \(s)")
            try a.backward()
            try b.backward()
            assertClose(try XCTUnwrap(xa.grad).toArray(), try XCTUnwrap(xb.grad).toArray(), atol: 1e-6, rtol: 1e-5)
        }
        let y = try smoothedOneHot([1, 0], classes: 4, smoothing: 0.2).toArray()
        assertClose(y, [0.05, 0.85, 0.05, 0.05, 0.85, 0.05, 0.05, 0.05])
    }

    func testLossErrors() throws {
        assertThrowsMessage("focal_loss: target 4 in row 1 is outside 0..<4") { _ = try focalLoss(try self.x(), targets: [0, 4, 1]) }
        assertThrowsMessage("focal_loss: 2 targets for 3 rows of logits") { _ = try focalLoss(try self.x(), targets: [0, 1]) }
        assertThrowsMessage("focal_loss: alpha needs one weight per class (4), got 2") { _ = try focalLoss(try self.x(), targets: self.targets, alpha: [1, 2]) }
        assertThrowsMessage("focal_loss: gamma must be a finite number >= 0 (AutoMM's default is 2), got -1.0") {
            _ = try focalLoss(try self.x(), targets: self.targets, gamma: -1)
        }
        assertThrowsMessage("soft_target_cross_entropy: targets [3, 3] must have the logits' shape [3, 4]") {
            _ = try softTargetCrossEntropy(try self.x(), targets: Tensor.zeros([3, 3]))
        }
    }
}
