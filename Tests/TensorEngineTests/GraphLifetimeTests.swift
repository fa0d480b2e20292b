import XCTest
import TensorEngine

/// A recorded graph that is never back-propagated (an evaluation pass with gradients on, a
/// metric computed from parameters, a discarded branch) must be freed with its last reference:
/// no op may keep its own output alive from its backward closure.
final class GraphLifetimeTests: XCTestCase {

    /// Runs `make` on fresh trainable inputs and asserts the output is deallocated once the
    /// caller drops it, without any backward pass.
    func assertFreed(_ name: String, inputs shapes: [[Int]], file: StaticString = #filePath, line: UInt = #line,
                     _ make: ([Tensor]) throws -> Tensor) throws {
        weak var weakOut: Tensor?
        weak var weakInput: Tensor?
        try inScope {
            var rng = RandomGenerator(seed: 1)
            let inputs = shapes.map { Tensor.parameter(Tensor.uniform($0, low: 0.5, high: 1.5, rng: &rng)) }
            let out = try make(inputs)
            XCTAssertTrue(out.requiresGrad, "\(name) did not record", file: file, line: line)
            weakOut = out
            weakInput = inputs.first
        }
        XCTAssertNil(weakOut, "\(name): output outlives its last reference (retain cycle through its backward closure)", file: file, line: line)
        XCTAssertNil(weakInput, "\(name): input outlives the graph", file: file, line: line)
    }

    func testUnusedGraphsAreFreed() throws {
        var r = RandomGenerator(seed: 0)
        let unary: [(String, (Tensor) throws -> Tensor)] = [
            ("neg", { try neg($0) }), ("exp", { try TensorEngine.exp($0) }), ("log", { try TensorEngine.log($0) }),
            ("sqrt", { try TensorEngine.sqrt($0) }), ("pow", { try TensorEngine.pow($0, 3) }), ("abs", { try TensorEngine.abs($0) }),
            ("clamp", { try clamp($0, min: 0.7, max: 1.2) }), ("tanh", { try TensorEngine.tanh($0) }), ("sigmoid", { try sigmoid($0) }),
            ("relu", { try relu($0) }), ("leakyRelu", { try leakyRelu($0) }), ("gelu", { try gelu($0) }),
            ("gelu tanh", { try gelu($0, approximate: .tanh) }), ("silu", { try silu($0) }),
            ("sum", { try sum($0, axes: [1]) }), ("mean", { try mean($0) }), ("variance", { try variance($0, axes: [0]) }),
            ("max", { try TensorEngine.max($0, axis: 1) }), ("softmax", { try softmax($0, axis: 0) }),
            ("logSoftmax", { try logSoftmax($0) }), ("layerNorm", { try layerNorm($0, weight: nil, bias: nil) }),
            ("reshape", { try $0.reshaped([-1]) }), ("transposed", { try $0.transposed() }),
            ("slice", { try $0.slice(axis: 1, start: 1, end: 3) }), ("expand", { try expand($0, to: [2, 4, 6]) }),
            ("indexSelect", { try indexSelect($0, axis: 0, indices: [1, 1, 0]) }),
            ("gather", { try gather($0, axis: 1, index: [0, 5, 2, 2], indexShape: [2, 2]) }),
            ("crossEntropy", { try crossEntropy($0, targets: [1, 3, 0, 5]) }),
            ("dropout", { try dropout($0, p: 0.5, training: true, rng: &r) }),
        ]
        for (name, op) in unary {
            try assertFreed(name, inputs: [[4, 6]]) { try op($0[0]) }
        }
        let binary: [(String, (Tensor, Tensor) throws -> Tensor)] = [
            ("add", { try add($0, $1) }), ("sub", { try sub($0, $1) }), ("mul", { try mul($0, $1) }), ("div", { try div($0, $1) }),
            ("matmul", { try matmul($0, try $1.transposed()) }), ("linear", { try linear($0, weight: $1, bias: nil) }),
            ("batchedMatmul", { try batchedMatmul(try $0.unsqueezed(0), try $1.unsqueezed(0), transB: true) }),
            ("concat", { try concat([$0, $1], axis: 0) }), ("stack", { try stack([$0, $1], axis: 1) }),
            ("bceWithLogits", { try binaryCrossEntropyWithLogits($0, targets: $1) }),
            ("mseLoss", { try mseLoss($0, $1) }), ("huberLoss", { try huberLoss($0, $1) }),
        ]
        for (name, op) in binary {
            try assertFreed(name, inputs: [[4, 6], [4, 6]]) { try op($0[0], $0[1]) }
        }
        try assertFreed("attention", inputs: [[2, 3, 4], [2, 3, 4], [2, 3, 4]]) { t in
            var g = RandomGenerator(seed: 2)
            return try attention(query: t[0], key: t[1], value: t[2], heads: 2, rng: &g)
        }
    }

    func testUnusedConvGraphsAreFreed() throws {
        try assertFreed("conv2d", inputs: [[1, 2, 5, 5], [3, 2, 3, 3]]) {
            try conv2d($0[0], weight: $0[1], bias: nil, stride: (1, 1), padding: (1, 1), dilation: (1, 1), groups: 1)
        }
        try assertFreed("depthwise conv2d", inputs: [[1, 2, 5, 5], [2, 1, 3, 3]]) {
            try conv2d($0[0], weight: $0[1], bias: nil, stride: (1, 1), padding: (1, 1), dilation: (1, 1), groups: 2)
        }
        try assertFreed("maxPool2d", inputs: [[1, 2, 4, 4]]) { try maxPool2d($0[0], kernel: (2, 2)) }
        try assertFreed("avgPool2d", inputs: [[1, 2, 4, 4]]) { try avgPool2d($0[0], kernel: (2, 2)) }
        try assertFreed("adaptiveAvgPool2d", inputs: [[1, 2, 4, 4]]) { try adaptiveAvgPool2d($0[0], outputSize: (1, 1)) }
        try assertFreed("batchNorm2d", inputs: [[2, 2, 3, 3]]) {
            try batchNorm2d($0[0], weight: nil, bias: nil, runningMean: Tensor.zeros([2]), runningVar: Tensor.ones([2]),
                            training: true, momentum: 0.1, eps: 1e-5)
        }
    }

    /// After backward the graph is released too, and the leaves keep only their gradients.
    func testGraphReleasedAfterBackward() throws {
        weak var weakHidden: Tensor?
        let w = Tensor.parameter(Tensor.ones([3, 3]))
        try inScope {
            let h = try TensorEngine.exp(try matmul(w, w))
            weakHidden = h
            try sum(try TensorEngine.tanh(h)).backward()
        }
        XCTAssertNil(weakHidden)
        XCTAssertNotNil(w.grad)
    }
}

/// Runs `body` as a separate call, so every local it creates is released when it returns.
@inline(never)
func inScope(_ body: () throws -> Void) rethrows { try body() }
