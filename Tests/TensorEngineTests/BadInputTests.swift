import XCTest
import TensorEngine

/// Bad inputs throw `TensorError` (never crash) with a message that names the op and the shapes
/// involved, for every op family; backward on a tensor that needs no gradient throws.
final class BadInputTests: XCTestCase {

    /// Asserts `body` throws a `TensorError` of the given kind whose description contains every
    /// string in `mentions` (shapes are written as `shapeString` renders them: `[2, 3]`).
    func assertTensorError<T>(_ kind: Kind = .shapeMismatch, mentions: [String], file: StaticString = #filePath, line: UInt = #line,
                              _ body: () throws -> T) {
        do {
            _ = try body()
            XCTFail("expected a TensorError mentioning \(mentions), nothing was thrown", file: file, line: line)
        } catch let error as TensorError {
            let text = error.description
            switch (kind, error) {
            case (.shapeMismatch, .shapeMismatch), (.invalidArgument, .invalidArgument), (.noGradient, .noGradient): break
            default: XCTFail("expected \(kind), got \(error)", file: file, line: line)
            }
            for m in mentions where !text.contains(m) {
                XCTFail("message \"\(text)\" does not mention \(m)", file: file, line: line)
            }
        } catch {
            XCTFail("expected a TensorError, got \(type(of: error)): \(error)", file: file, line: line)
        }
    }

    enum Kind { case shapeMismatch, invalidArgument, noGradient }

    func z(_ shape: [Int]) -> Tensor { Tensor.zeros(shape) }
    func s(_ shape: [Int]) -> String { shapeString(shape) }

    // MARK: - Construction, views

    func testTensorConstructionAndViews() {
        assertTensorError(mentions: ["Tensor", "5 values", s([2, 2])]) { try Tensor([1, 2, 3, 4, 5], shape: [2, 2]) }
        assertTensorError(.invalidArgument, mentions: ["negative", s([2, -1])]) { try Tensor([], shape: [2, -1]) }
        assertTensorError(mentions: ["reshape", s([2, 3]), s([4, 2])]) { try self.z([2, 3]).reshaped([4, 2]) }
        assertTensorError(mentions: ["reshape", s([2, 3]), s([4, -1])]) { try self.z([2, 3]).reshaped([4, -1]) }
        assertTensorError(.invalidArgument, mentions: ["reshape", "-1"]) { try self.z([2, 3]).reshaped([-1, -1]) }
        assertTensorError(.invalidArgument, mentions: ["permute", s([2, 3, 4])]) { try self.z([2, 3, 4]).permuted([0, 0, 1]) }
        assertTensorError(.invalidArgument, mentions: ["transpose", "axis 3", s([2, 3])]) { try self.z([2, 3]).transposed(0, 3) }
        assertTensorError(.invalidArgument, mentions: ["slice", "2..<5", "length 4"]) { try self.z([3, 4]).slice(axis: 1, start: 2, end: 5) }
        assertTensorError(.invalidArgument, mentions: ["slice", "step"]) { try self.z([3, 4]).slice(axis: 1, start: 0, end: 2, step: 0) }
        assertTensorError(.invalidArgument, mentions: ["unsqueeze", "axis 4"]) { try self.z([3, 4]).unsqueezed(4) }
        assertTensorError(mentions: ["expand", s([3, 2]), s([4, 3])]) { try expand(self.z([3, 2]), to: [4, 3]) }
        assertTensorError(mentions: ["item", s([2, 2])]) { try self.z([2, 2]).item() }
        assertTensorError(.invalidArgument, mentions: ["arange", "step"]) { try Tensor.arange(0, 3, step: 0) }
    }

    // MARK: - Element-wise

    func testElementwise() {
        let ops: [(String, (Tensor, Tensor) throws -> Tensor)] = [
            ("add", { try add($0, $1) }), ("sub", { try sub($0, $1) }), ("mul", { try mul($0, $1) }), ("div", { try div($0, $1) }),
        ]
        for (name, op) in ops {
            assertTensorError(mentions: [name, s([2, 3]), s([4])]) { try op(self.z([2, 3]), self.z([4])) }
            assertTensorError(mentions: [name, s([5, 1, 3]), s([2, 4, 3])]) { try op(self.z([5, 1, 3]), self.z([2, 4, 3])) }
        }
        assertTensorError(mentions: ["add", s([3]), s([2])]) { try self.z([3]) + self.z([2]) }
        assertTensorError(.invalidArgument, mentions: ["clamp", "min"]) { try clamp(self.z([2]), min: 1, max: 0) }
        var g = RandomGenerator(seed: 0)
        assertTensorError(.invalidArgument, mentions: ["dropout", "1.0"]) { try dropout(self.z([2]), p: 1, training: true, rng: &g) }
        assertTensorError(.invalidArgument, mentions: ["dropout", "-0.1"]) { try dropout(self.z([2]), p: -0.1, training: true, rng: &g) }
    }

    // MARK: - Reductions, softmax

    func testReductions() {
        let x = z([2, 3])
        assertTensorError(.invalidArgument, mentions: ["sum", "axis 2", s([2, 3])]) { try sum(x, axes: [2]) }
        assertTensorError(.invalidArgument, mentions: ["sum", "twice"]) { try sum(x, axes: [1, -1]) }
        assertTensorError(.invalidArgument, mentions: ["mean", "axis -3", s([2, 3])]) { try mean(x, axes: [-3]) }
        assertTensorError(.invalidArgument, mentions: ["max", "axis 5", s([2, 3])]) { try TensorEngine.max(x, axis: 5) }
        assertTensorError(.invalidArgument, mentions: ["max", "empty"]) { try TensorEngine.max(self.z([2, 0]), axis: 1) }
        assertTensorError(.invalidArgument, mentions: ["argmax", "axis 2"]) { try argmax(x, axis: 2) }
        assertTensorError(.invalidArgument, mentions: ["variance", "axis 4"]) { try variance(x, axes: [4]) }
        assertTensorError(.invalidArgument, mentions: ["variance", "degrees of freedom"]) { try variance(self.z([1, 3]), axes: [0]) }
        assertTensorError(.invalidArgument, mentions: ["softmax", "axis 2", s([2, 3])]) { try softmax(x, axis: 2) }
        assertTensorError(.invalidArgument, mentions: ["logSoftmax", "axis -3", s([2, 3])]) { try logSoftmax(x, axis: -3) }
    }

    // MARK: - Matrix products

    func testMatmulAndLinear() {
        assertTensorError(mentions: ["matmul", s([2, 3]), s([4, 5])]) { try matmul(self.z([2, 3]), self.z([4, 5])) }
        assertTensorError(mentions: ["matmul", s([3]), s([3, 2])]) { try matmul(self.z([3]), self.z([3, 2])) }
        assertTensorError(mentions: ["matmul", s([2, 3, 4]), s([3, 4, 5])]) { try matmul(self.z([2, 3, 4]), self.z([3, 4, 5])) }
        assertTensorError(mentions: ["matmul", s([2, 3, 4]), s([2, 5, 6])]) { try matmul(self.z([2, 3, 4]), self.z([2, 5, 6])) }
        assertTensorError(mentions: ["batchedMatmul", s([2, 3, 4]), s([2, 5, 3])]) {
            try batchedMatmul(self.z([2, 3, 4]), self.z([2, 5, 3]), transB: true)
        }
        assertTensorError(mentions: ["linear", s([2, 3]), s([5, 4])]) { try linear(self.z([2, 3]), weight: self.z([5, 4]), bias: nil) }
        assertTensorError(mentions: ["linear", s([4])]) { try linear(self.z([2, 3]), weight: self.z([4]), bias: nil) }
        assertTensorError(mentions: ["linear", "bias", s([3]), "5"]) { try linear(self.z([2, 4]), weight: self.z([5, 4]), bias: self.z([3])) }
    }

    // MARK: - Normalisation, attention

    func testLayerNorm() {
        assertTensorError(mentions: ["layerNorm", "weight", s([4]), s([2, 5])]) { try layerNorm(self.z([2, 5]), weight: self.z([4]), bias: nil) }
        assertTensorError(mentions: ["layerNorm", "bias", s([5, 1]), s([2, 5])]) { try layerNorm(self.z([2, 5]), weight: nil, bias: self.z([5, 1])) }
        assertTensorError(mentions: ["layerNorm"]) { try layerNorm(Tensor(scalar: 1), weight: nil, bias: nil) }
    }

    func testAttention() {
        var g = RandomGenerator(seed: 0)
        let q = z([2, 5, 8])
        assertTensorError(mentions: ["attention", s([2, 5])]) { try attention(query: self.z([2, 5]), key: q, value: q, heads: 2, rng: &g) }
        assertTensorError(mentions: ["attention", s([2, 4, 6]), s([2, 5, 8])]) {
            try attention(query: q, key: self.z([2, 4, 6]), value: self.z([2, 4, 6]), heads: 2, rng: &g)
        }
        assertTensorError(mentions: ["attention", s([2, 4, 8]), s([2, 5, 8])]) {
            try attention(query: q, key: self.z([2, 5, 8]), value: self.z([2, 4, 8]), heads: 2, rng: &g)
        }
        assertTensorError(.invalidArgument, mentions: ["attention", "8", "3 heads"]) { try attention(query: q, key: q, value: q, heads: 3, rng: &g) }
        assertTensorError(mentions: ["attention", "mask", s([2, 4])]) {
            try attention(query: q, key: q, value: q, heads: 2, mask: self.z([2, 4]), rng: &g)
        }
        assertTensorError(mentions: ["attention", "mask", s([3, 1, 1, 5])]) {
            try attention(query: q, key: q, value: q, heads: 2, mask: self.z([3, 1, 1, 5]), rng: &g)
        }
        assertTensorError(.invalidArgument, mentions: ["attention", "dropout"]) {
            try attention(query: q, key: q, value: q, heads: 2, dropout: 1, training: true, rng: &g)
        }
    }

    // MARK: - Losses

    func testLosses() {
        assertTensorError(mentions: ["crossEntropy", s([6])]) { try crossEntropy(self.z([6]), targets: [0]) }
        assertTensorError(mentions: ["crossEntropy", "2 targets", "3 rows"]) { try crossEntropy(self.z([3, 4]), targets: [0, 1]) }
        assertTensorError(mentions: ["crossEntropy", "3 class weights", "4 classes"]) {
            try crossEntropy(self.z([2, 4]), targets: [0, 1], weights: [1, 1, 1])
        }
        assertTensorError(.invalidArgument, mentions: ["crossEntropy", "target 4", "row 1", "0..<4"]) {
            try crossEntropy(self.z([2, 4]), targets: [0, 4])
        }
        assertTensorError(.invalidArgument, mentions: ["crossEntropy", "target -1"]) { try crossEntropy(self.z([2, 4]), targets: [0, -1]) }
        assertTensorError(.invalidArgument, mentions: ["crossEntropy", "smoothing"]) {
            try crossEntropy(self.z([2, 4]), targets: [0, 1], labelSmoothing: 1.5)
        }
        assertTensorError(mentions: ["binaryCrossEntropyWithLogits", s([2, 3]), s([3, 2])]) {
            try binaryCrossEntropyWithLogits(self.z([2, 3]), targets: self.z([3, 2]))
        }
        assertTensorError(mentions: ["mseLoss", s([4]), s([4, 1])]) { try mseLoss(self.z([4]), self.z([4, 1])) }
        assertTensorError(mentions: ["huberLoss", s([2, 2]), s([4])]) { try huberLoss(self.z([2, 2]), self.z([4])) }
        assertTensorError(.invalidArgument, mentions: ["huberLoss", "delta"]) { try huberLoss(self.z([2]), self.z([2]), delta: 0) }
    }

    // MARK: - Joining, indexing

    func testJoiningAndIndexing() {
        assertTensorError(mentions: ["concat", "tensor 1", s([2, 4]), s([3, 3])]) { try concat([self.z([3, 3]), self.z([2, 4])], axis: 0) }
        assertTensorError(mentions: ["concat", s([3])]) { try concat([self.z([3, 3]), self.z([3])], axis: 0) }
        assertTensorError(.invalidArgument, mentions: ["concat", "no tensors"]) { try concat([], axis: 0) }
        assertTensorError(.invalidArgument, mentions: ["concat", "axis 2"]) { try concat([self.z([3, 3])], axis: 2) }
        assertTensorError(mentions: ["stack", "tensor 2", s([3, 2]), s([2, 3])]) {
            try stack([self.z([2, 3]), self.z([2, 3]), self.z([3, 2])], axis: 0)
        }
        assertTensorError(.invalidArgument, mentions: ["stack", "no tensors"]) { try stack([], axis: 0) }
        assertTensorError(.invalidArgument, mentions: ["indexSelect", "index 5", "0..<5", s([5, 2])]) {
            try indexSelect(self.z([5, 2]), axis: 0, indices: [0, 5])
        }
        assertTensorError(.invalidArgument, mentions: ["indexSelect", "index -1"]) { try indexSelect(self.z([5, 2]), axis: 1, indices: [-1]) }
        assertTensorError(.invalidArgument, mentions: ["indexSelect", "axis 2"]) { try indexSelect(self.z([5, 2]), axis: 2, indices: [0]) }
        assertTensorError(mentions: ["gather", s([2, 2])]) { try gather(self.z([3, 4]), axis: 1, index: [0, 1, 2], indexShape: [2, 2]) }
        assertTensorError(mentions: ["gather", s([3])]) { try gather(self.z([3, 4]), axis: 1, index: [0, 1, 2], indexShape: [3]) }
        assertTensorError(mentions: ["gather", "dimension 0", "4", "3"]) {
            try gather(self.z([3, 4]), axis: 1, index: [0, 0, 0, 0], indexShape: [4, 1])
        }
        assertTensorError(.invalidArgument, mentions: ["gather", "index 4", "0..<4"]) { try gather(self.z([3, 4]), axis: 1, index: [4], indexShape: [1, 1]) }
    }

    // MARK: - Backward

    func testBackwardWithoutGradientThrows() {
        let x = Tensor.ones([2, 3])
        assertTensorError(.noGradient, mentions: ["backward", s([2, 3]), "does not require a gradient"]) { try x.backward(Tensor.ones([2, 3])) }
        // An op on constants does not record either.
        let y = try? sum(try mul(x, x))
        assertTensorError(.noGradient, mentions: ["backward", "does not require a gradient"]) { try XCTUnwrap(y).backward() }
        // Nor does anything computed under withNoGrad from a parameter.
        let p = Tensor.parameter(Tensor.ones([3]))
        let q = withNoGrad { try? sum(try mul(p, p)) }
        assertTensorError(.noGradient, mentions: ["does not require a gradient"]) { try XCTUnwrap(q).backward() }
        // A frozen parameter is a constant.
        p.requiresGrad = false
        assertTensorError(.noGradient, mentions: ["backward"]) { try sum(p).backward() }
    }

    func testBackwardSeedMustFit() throws {
        let p = Tensor.parameter(Tensor.ones([2, 3]))
        let y = try mul(p, p)
        assertTensorError(mentions: ["backward", s([2, 3]), "explicit gradient"]) { try y.backward() }
        assertTensorError(mentions: ["backward", s([3, 2]), s([2, 3])]) { try y.backward(Tensor.ones([3, 2])) }
        // The failed calls did not consume the graph: a well-formed call still works.
        try y.backward(Tensor.ones([2, 3]))
        XCTAssertEqual(p.grad?.toArray(), [Float](repeating: 2, count: 6))
    }

    func testErrorsAreEquatableAndDescribed() {
        let e = TensorError.shapeMismatch(op: "matmul", detail: "x")
        XCTAssertEqual(e, .shapeMismatch(op: "matmul", detail: "x"))
        XCTAssertEqual(e.description, "matmul: shape mismatch: x")
        XCTAssertEqual(TensorError.invalidArgument(op: "slice", detail: "y").description, "slice: invalid argument: y")
        XCTAssertEqual(TensorError.noGradient(detail: "z").description, "backward: z")
    }
}
