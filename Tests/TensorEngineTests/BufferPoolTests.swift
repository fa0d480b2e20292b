import XCTest
@testable import TensorEngine

final class BufferPoolTests: XCTestCase {
    func testSizeClassesBoundTheWasteAndAreMonotonic() {
        XCTAssertEqual(BufferPool.sizeClass(0), 1)
        XCTAssertEqual(BufferPool.sizeClass(1000), 1000, "small buffers are not rounded")
        XCTAssertEqual(BufferPool.sizeClass(1024), 1024)
        XCTAssertEqual(BufferPool.sizeClass(1025), 1152)
        XCTAssertEqual(BufferPool.sizeClass(2048), 2048)
        XCTAssertEqual(BufferPool.sizeClass(32 * 70 * 384), 917_504)
        var previous = 1
        for n in stride(from: 1, to: 3_000_000, by: 997) {
            let c = BufferPool.sizeClass(n)
            XCTAssertGreaterThanOrEqual(c, n)
            XCTAssertLessThanOrEqual(Double(c), Double(n) * 1.125 + 1)
            XCTAssertGreaterThanOrEqual(c, previous)
            previous = c
        }
    }

    /// Two tensors of different lengths in one size class share a buffer: what lets a batch of
    /// another padded length reuse the previous batch's memory.
    func testABufferIsReusedAcrossLengthsOfOneClass() {
        let pool = BufferPool.shared
        let first = pool.take(count: 32 * 68 * 384)
        pool.give(first.0, capacity: first.1)
        let second = pool.take(count: 32 * 65 * 384)
        XCTAssertEqual(first.0, second.0)
        // A shorter batch one class down takes the same buffer too (best fit within an octave).
        pool.give(second.0, capacity: second.1)
        let third = pool.take(count: 32 * 50 * 384)
        XCTAssertEqual(third.0, first.0)
        XCTAssertEqual(third.1, first.1)
        pool.give(third.0, capacity: third.1)
    }
}
