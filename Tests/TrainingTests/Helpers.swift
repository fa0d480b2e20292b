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
