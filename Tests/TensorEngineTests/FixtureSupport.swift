import Foundation
import XCTest
import Checkpoints
import TensorEngine

// Support for the PyTorch parity tests: finding and reading the committed fixtures in
// Tests/Fixtures/ops/ (written by scripts/fixtures/make_op_fixtures.py, never by CI) and
// comparing tensors element by element.

enum FixturePaths {
    /// `Tests/Fixtures`, found by walking up from this source file.
    static let fixturesDirectory: URL? = {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        let fm = FileManager.default
        for _ in 0..<8 {
            let candidate = dir.appendingPathComponent("Fixtures", isDirectory: true)
            if dir.lastPathComponent == "Tests", fm.fileExists(atPath: candidate.path) { return candidate }
            let nested = dir.appendingPathComponent("Tests/Fixtures", isDirectory: true)
            if fm.fileExists(atPath: nested.path) { return nested }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }()

    static func ops(_ family: String) throws -> URL {
        guard let dir = fixturesDirectory else {
            throw XCTSkip("Tests/Fixtures not found above \(#filePath)")
        }
        return dir.appendingPathComponent("ops/\(family).safetensors")
    }
}

/// One fixture file (`Tests/Fixtures/ops/<family>.safetensors`); keys are `<case>.<name>`.
final class OpFixture {
    let family: String
    let file: SafetensorsFile

    init(_ family: String) throws {
        self.family = family
        file = try SafetensorsFile(url: try FixturePaths.ops(family))
    }

    /// The stored tensor `key` (a fresh contiguous tensor that does not require a gradient).
    func tensor(_ key: String) throws -> Tensor { try file.tensor(named: key) }

    /// The stored tensor `key` as a trainable leaf.
    func parameter(_ key: String) throws -> Tensor { Tensor.parameter(try tensor(key)) }

    /// Integer data stored as exact F32 values (targets, indices).
    func ints(_ key: String) throws -> [Int] { try tensor(key).toArray().map { Int($0) } }

    func floats(_ key: String) throws -> [Float] { try tensor(key).toArray() }

    func has(_ key: String) -> Bool { file.contains(key) }

    /// Every case name (`<case>` of `<case>.out`).
    var caseNames: [String] {
        file.tensorNames.filter { $0.hasSuffix(".out") }.map { String($0.dropLast(4)) }
    }
}

/// Tolerances: an element passes when |actual − expected| ≤ atol + rtol·|expected|.
struct Tolerance {
    var atol: Float
    var rtol: Float
    static let forward = Tolerance(atol: 1e-5, rtol: 1e-5)
    static let gradient = Tolerance(atol: 1e-4, rtol: 1e-4)
}

/// Asserts equal shapes and element-wise closeness; reports the worst element and its index.
func assertClose(_ actual: Tensor?, _ expected: Tensor, _ tol: Tolerance, _ what: @autoclosure () -> String,
                 file: StaticString = #filePath, line: UInt = #line) {
    guard let actual else {
        XCTFail("\(what()): no tensor (expected \(shapeString(expected.shape)))", file: file, line: line)
        return
    }
    guard actual.shape == expected.shape else {
        XCTFail("\(what()): shape \(shapeString(actual.shape)), expected \(shapeString(expected.shape))", file: file, line: line)
        return
    }
    let a = actual.toArray(), e = expected.toArray()
    var worst = -1
    var worstExcess: Float = 0
    var failures = 0
    for i in 0..<a.count {
        let bound = tol.atol + tol.rtol * Swift.abs(e[i])
        let err = Swift.abs(a[i] - e[i])
        if a[i] != e[i] && !(err <= bound) {   // equal infinities pass; NaN fails
            failures += 1
            let excess = err.isNaN ? .infinity : err / bound
            if worst < 0 || excess > worstExcess { worst = i; worstExcess = excess }
        }
    }
    if worst >= 0 {
        let idx = unravel(worst, expected.shape)
        XCTFail("\(what()): \(failures) of \(a.count) elements differ; worst at \(idx): \(a[worst]) vs expected \(e[worst]) "
                + "(|diff| \(Swift.abs(a[worst] - e[worst])), atol \(tol.atol), rtol \(tol.rtol))", file: file, line: line)
    }
}

/// Asserts two tensors hold bit-identical values and equal shapes.
func assertBitIdentical(_ a: Tensor, _ b: Tensor, _ what: @autoclosure () -> String,
                        file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.shape, b.shape, "\(what()): shapes differ", file: file, line: line)
    let x = a.toArray().map(\.bitPattern), y = b.toArray().map(\.bitPattern)
    if x != y {
        let i = zip(x, y).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? 0
        XCTFail("\(what()): first difference at flat index \(i)", file: file, line: line)
    }
}

func unravel(_ flat: Int, _ shape: [Int]) -> [Int] {
    var rem = flat
    var idx = [Int](repeating: 0, count: shape.count)
    for d in stride(from: shape.count - 1, through: 0, by: -1) where shape[d] > 0 {
        idx[d] = rem % shape[d]
        rem /= shape[d]
    }
    return idx
}

/// How a parity case hands its inputs to the op.
enum InputLayout: CaseIterable, CustomStringConvertible {
    /// Contiguous leaves.
    case contiguous
    /// Each input of rank ≥ 2 is a `transposed()` view of a leaf holding the transposed data, so
    /// the op sees a non-contiguous input and the gradient flows back through the view.
    case transposedView

    var description: String { self == .contiguous ? "contiguous" : "transposed view" }
}

/// Runs one fixture case: builds inputs `names` (in `layout`), calls `op`, compares `out` with
/// `<case>.out`, back-propagates `<case>.upstream` and compares each input's gradient with
/// `<case>.grad_<name>` (inputs in `noGrad` are passed without gradients and not compared).
func runParityCase(_ fx: OpFixture, _ name: String, inputs names: [String], noGrad: Set<String> = [],
                   layouts: [InputLayout] = InputLayout.allCases,
                   forward: Tolerance = .forward, gradient: Tolerance = .gradient,
                   file: StaticString = #filePath, line: UInt = #line,
                   _ op: ([Tensor]) throws -> Tensor) throws {
    for layout in layouts {
        var leaves: [Tensor] = []
        var viewed: [Tensor] = []
        for n in names {
            let data = try fx.tensor("\(name).\(n)")
            let trains = !noGrad.contains(n)
            if layout == .transposedView && data.rank >= 2 {
                let physical = try data.transposed().clone()
                let leaf = trains ? Tensor.parameter(physical) : physical
                leaves.append(leaf)
                viewed.append(try leaf.transposed())
            } else {
                let leaf = trains ? Tensor.parameter(data) : data
                leaves.append(leaf)
                viewed.append(leaf)
            }
        }
        let label = "\(fx.family)/\(name) [\(layout)]"
        let out = try op(viewed)
        assertClose(out, try fx.tensor("\(name).out"), forward, "\(label) forward", file: file, line: line)
        let trainable = names.enumerated().filter { !noGrad.contains($0.element) }
        if trainable.isEmpty { continue }
        try out.backward(try fx.tensor("\(name).upstream"))
        for (i, n) in trainable {
            let expected = try fx.tensor("\(name).grad_\(n)")
            var g = leaves[i].grad
            if layout == .transposedView, expected.rank >= 2, let gg = g { g = try gg.transposed() }
            assertClose(g, expected, gradient, "\(label) grad of \(n)", file: file, line: line)
        }
    }
}
