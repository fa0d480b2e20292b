import XCTest
@testable import TensorEngine

/// Finite-difference gradient checking for any op (or composition of ops) on `Tensor`s.
///
///     try GradCheck().run([x, w, b]) { t in try conv2d(t[0], weight: t[1], bias: t[2]) }
///
/// The scalar loss is `L = Σ f(inputs) ⊙ R` for a fixed random `R`, accumulated in Double.
/// The analytic gradients come from one `f(inputs).backward(R)`; the numeric ones from central
/// differences `(L(x + ε) − L(x − ε)) / 2ε`, one element at a time, for every input whose
/// `requiresGrad` is true (other inputs are passed through untouched and not checked).
///
/// Inputs:
///  * must be leaves (their `grad` is read), and are reset (`grad = nil`) before the check;
///  * may have any strides, e.g. a non-contiguous leaf made with
///    `Tensor(storage:shape:strides:offset:requiresGrad:)`: each logical element is perturbed in
///    the storage at its own strided offset, and compared with the row-major `grad`;
///  * must not overlap in memory with each other and must not have stride-0 (broadcast)
///    dimensions, since then one storage element would stand for several logical elements.
///
/// `f` is called `1 + 2·(elements checked)` times and must be a pure function of its inputs: build
/// any state it mutates (e.g. batch-norm running statistics) afresh inside the closure.
/// Mismatches are reported with `XCTFail` (at most `maxReported` per input) and returned.
struct GradCheck {
    /// Perturbation size. Float inputs of magnitude ~1 want 1e-2 … 1e-3.
    var eps: Float = 1e-2
    /// An element passes when |analytic − numeric| ≤ atol + rtol · max(|analytic|, |numeric|).
    var rtol: Double = 1e-2
    var atol: Double = 1e-3
    /// Seed of the random loss weights R.
    var seed: UInt64 = 0x5EED
    var maxReported = 5

    struct Mismatch: CustomStringConvertible {
        let input: Int
        let index: [Int]
        let analytic: Double
        let numeric: Double
        var description: String { "input \(input) element \(index): analytic \(analytic), numeric \(numeric)" }
    }

    @discardableResult
    func run(_ inputs: [Tensor], file: StaticString = #filePath, line: UInt = #line,
             _ f: ([Tensor]) throws -> Tensor) throws -> [Mismatch] {
        for (k, t) in inputs.enumerated() where t.requiresGrad {
            guard t.isLeaf else {
                XCTFail("GradCheck: input \(k) is not a leaf; pass leaves (a view can be a leaf built with Tensor(storage:shape:strides:offset:requiresGrad:))", file: file, line: line)
                return []
            }
            for (d, s) in t.strides.enumerated() where s == 0 && t.shape[d] > 1 {
                XCTFail("GradCheck: input \(k) has a broadcast (stride 0) dimension \(d); elements would alias", file: file, line: line)
                return []
            }
            t.grad = nil
        }
        guard inputs.contains(where: { $0.requiresGrad }) else {
            XCTFail("GradCheck: no input requires a gradient", file: file, line: line)
            return []
        }

        // Analytic gradients.
        let out = try f(inputs)
        var rng = RandomGenerator(seed: seed)
        let weights = Tensor.uniform(out.shape, low: -1, high: 1, rng: &rng)
        let r = weights.toArray().map(Double.init)
        guard out.requiresGrad else {
            XCTFail("GradCheck: the output does not require a gradient", file: file, line: line)
            return []
        }
        try out.backward(weights)

        struct OutputChanged: Error {}
        func loss() throws -> Double {
            let y = try withNoGrad { try f(inputs) }
            let v = y.toArray()
            guard v.count == r.count else {
                XCTFail("GradCheck: the output changed shape between calls: \(y.shape) vs \(out.shape)", file: file, line: line)
                throw OutputChanged()
            }
            var s = 0.0
            for i in 0..<v.count { s += Double(v[i]) * r[i] }
            return s
        }

        var mismatches: [Mismatch] = []
        for (k, t) in inputs.enumerated() where t.requiresGrad {
            if let g = t.grad {
                XCTAssertEqual(g.shape, t.shape, "GradCheck: gradient of input \(k) has the wrong shape", file: file, line: line)
                if g.shape != t.shape { continue }
            }
            let analytic = t.grad?.toArray() ?? [Float](repeating: 0, count: t.count)
            var index = [Int](repeating: 0, count: t.rank)
            var reported = 0, failed = 0
            for i in 0..<t.count {
                var off = t.offset
                for d in 0..<t.rank { off += index[d] * t.strides[d] }
                let p = t.storage.pointer + off
                let original = p.pointee
                let up = original + eps, down = original - eps
                p.pointee = up
                let lp = try loss()
                p.pointee = down
                let lm = try loss()
                p.pointee = original
                let numeric = (lp - lm) / (Double(up) - Double(down))
                let a = Double(analytic[i])
                if !(Swift.abs(a - numeric) <= atol + rtol * Swift.max(Swift.abs(a), Swift.abs(numeric))) {
                    let m = Mismatch(input: k, index: index, analytic: a, numeric: numeric)
                    mismatches.append(m)
                    failed += 1
                    if reported < maxReported {
                        XCTFail("GradCheck: \(m)", file: file, line: line)
                        reported += 1
                    }
                }
                var d = t.rank - 1
                while d >= 0 { index[d] += 1; if index[d] < t.shape[d] { break }; index[d] = 0; d -= 1 }
            }
            if failed > reported {
                XCTFail("GradCheck: input \(k): \(failed) of \(t.count) elements mismatch in all", file: file, line: line)
            }
        }
        return mismatches
    }
}

/// Random values in [-1, 1) as a leaf that requires a gradient.
func randomParameter(_ shape: [Int], _ rng: inout RandomGenerator) -> Tensor {
    Tensor.parameter(Tensor.uniform(shape, low: -1, high: 1, rng: &rng))
}

/// A leaf with the given logical shape whose storage is laid out with its last two dimensions
/// swapped (so it is not contiguous), filled with random values. Shapes of rank < 2 give a
/// contiguous leaf.
func randomTransposedLeaf(_ shape: [Int], _ rng: inout RandomGenerator) -> Tensor {
    guard shape.count >= 2 else { return randomParameter(shape, &rng) }
    var physical = shape
    physical.swapAt(shape.count - 1, shape.count - 2)
    let base = Tensor.uniform(physical, low: -1, high: 1, rng: &rng)
    var strides = Tensor.contiguousStrides(physical)
    strides.swapAt(shape.count - 1, shape.count - 2)
    return Tensor(storage: base.storage, shape: shape, strides: strides, offset: 0, requiresGrad: true)
}
