import XCTest
@testable import TensorEngine

/// The eight-counters-at-a-time Philox used by dropout must give exactly the scalar generator's
/// bits, for any start, length and counter offset (including across a 2³²-counter boundary).
final class PhiloxVectorTests: XCTestCase {

    func testPhilox8MatchesScalar() {
        for (first, key) in [(UInt64(0), UInt64(0)), (12_345, 0xDEAD_BEEF_0BAD_F00D),
                             (UInt64(UInt32.max) - 3, 42), (UInt64.max - 5, 7)] {
            let v = philox8(first: first, key: key)
            for j in 0..<8 {
                let s = philox(counter: first &+ UInt64(j), key: key)
                XCTAssertEqual([v.0[j], v.1[j], v.2[j], v.3[j]], [s.0, s.1, s.2, s.3], "counter \(first) + \(j)")
            }
        }
    }

    func testDropoutMultipliersMatchScalarBits() {
        let threshold = UInt32(0.3 * 4_294_967_296.0)
        let scale: Float = 1 / 0.7
        let out = UnsafeMutablePointer<Float>.allocate(capacity: 200)
        defer { out.deallocate() }
        for offset in [UInt64(0), UInt64(UInt32.max) - 9] {
            let stream = PhiloxStream(seed: 99, offset: offset)
            for start in [0, 1, 2, 3, 5, 64, 130] {
                for count in [0, 1, 7, 31, 32, 33, 95, 200] {
                    fillDropoutMultipliers(stream, start: start, count: count, threshold: threshold, scale: scale, into: out)
                    for i in 0..<count {
                        let expected: Float = stream.bits(start + i) < threshold ? 0 : scale
                        XCTAssertEqual(out[i], expected, "offset \(offset) start \(start) count \(count) element \(i)")
                    }
                }
            }
        }
    }

    func testDropoutKernelMatchesPerElementDefinition() throws {
        // 1000 elements: full 32-element chunks and a ragged tail; signed inputs.
        let x = try Tensor((0..<1000).map { Float($0 % 17) - 8.5 }, shape: [10, 100])
        let stream = PhiloxStream(seed: 5, offset: 77)
        let p: Float = 0.25
        let y = dropoutKernel(x, p: p, stream: stream).toArray()
        let threshold = UInt32(Double(p) * 4_294_967_296.0)
        let xs = x.toArray()
        for i in 0..<1000 {
            let expected: Float = stream.bits(i) < threshold ? 0 : xs[i] * (1 / (1 - p))
            XCTAssertEqual(y[i].bitPattern, expected.bitPattern, "element \(i)")
        }
    }
}
