import TensorEngine
import Training
import XCTest

/// Element-wise |a − b| ≤ atol + rtol·|b|.
func assertClose(_ a: [Float], _ b: [Float], atol: Float = 1e-6, rtol: Float = 1e-6, _ message: String = "",
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "count \(message)", file: file, line: line)
    for (i, (x, y)) in zip(a, b).enumerated() where !(Swift.abs(x - y) <= atol + rtol * Swift.abs(y)) {
        let all = a.count <= 16 ? " (all: \(a) vs \(b))" : ""
        XCTFail("\(message) element \(i) of \(a.count): got \(x), expected \(y)\(all)", file: file, line: line)
        return
    }
}

func assertClose(_ a: Double, _ b: Double, rtol: Double = 1e-12, _ message: String = "",
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssert(Swift.abs(a - b) <= rtol * Swift.max(1, Swift.abs(b)), "\(message): got \(a), expected \(b)", file: file, line: line)
}

/// A trainable tensor from literal values.
func param(_ values: [Float], _ shape: [Int]? = nil) throws -> Tensor {
    Tensor.parameter(try Tensor(values, shape: shape ?? [values.count]))
}

func setGrad(_ p: Tensor, _ values: [Float]) throws {
    p.grad = try Tensor(values, shape: p.shape)
}

/// Asserts that `body` throws a `TrainingError` whose description is `expected`.
func assertThrowsMessage(_ expected: String, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected error: \(expected)", file: file, line: line)
    } catch let e as TrainingError {
        XCTAssertEqual(e.description, expected, file: file, line: line)
    } catch {
        XCTFail("unexpected error type \(error)", file: file, line: line)
    }
}

/// Asserts that `body` throws a `TrainingError` whose description contains every fragment.
func assertThrowsContaining(_ fragments: [String], file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected an error containing \(fragments)", file: file, line: line)
    } catch let e as TrainingError {
        for f in fragments { XCTAssert(e.description.contains(f), "'\(e.description)' lacks '\(f)'", file: file, line: line) }
    } catch {
        XCTFail("unexpected error type \(error)", file: file, line: line)
    }
}

/// Finite-difference check of a scalar function's gradient (the pattern of TensorEngineTests'
/// `GradCheck`, for one contiguous leaf): central differences `(f(x + ε) − f(x − ε)) / 2ε`, one
/// element at a time, against `f(x).backward()`; an element passes when
/// |analytic − numeric| ≤ atol + rtol · max(|analytic|, |numeric|).
func assertGradientMatchesFiniteDifferences(_ x: Tensor, eps: Float = 1e-2, rtol: Double = 1e-2, atol: Double = 1e-3,
                                            file: StaticString = #filePath, line: UInt = #line,
                                            _ f: (Tensor) throws -> Tensor) throws {
    x.grad = nil
    try f(x).backward()
    let analytic = try XCTUnwrap(x.grad, "no gradient reached the input", file: file, line: line).toArray()
    for i in 0..<x.count {
        let saved = x.data[i]
        x.data[i] = saved + eps
        let up = Double(try withNoGrad { try f(x) }.item())
        x.data[i] = saved - eps
        let down = Double(try withNoGrad { try f(x) }.item())
        x.data[i] = saved
        let numeric = (up - down) / (2 * Double(eps))
        let a = Double(analytic[i])
        XCTAssert(Swift.abs(a - numeric) <= atol + rtol * Swift.max(Swift.abs(a), Swift.abs(numeric)),
                  "element \(i): analytic \(a), numeric \(numeric)", file: file, line: line)
    }
}
