import XCTest
@testable import TensorEngine

final class ParallelTests: XCTestCase {
    override func tearDown() { Parallel.threadCount = max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// Counts how often each chunk ran (atomically enough: each chunk writes only its own slot).
    func coverage(chunks: Int) -> [Int] {
        var hits = [Int](repeating: 0, count: chunks)
        hits.withUnsafeMutableBufferPointer { h in
            let base = h.baseAddress!
            Parallel.run(chunks: chunks) { i in base[i] += 1 }
        }
        return hits
    }

    func testEveryChunkRunsExactlyOnceForAnyThreadCount() {
        for threads in [1, 2, 3, 8] {
            Parallel.threadCount = threads
            for chunks in [0, 1, 2, 3, 7, 64, 1000] {
                XCTAssertEqual(coverage(chunks: chunks), [Int](repeating: 1, count: chunks), "threads \(threads), chunks \(chunks)")
            }
        }
    }

    func testManyShortDispatchesComplete() {
        Parallel.threadCount = 2
        var total = 0
        for _ in 0..<20_000 { total += coverage(chunks: 2).reduce(0, +) }
        XCTAssertEqual(total, 40_000)
    }

    func testNestedDispatchRunsInlineWithoutDeadlock() {
        Parallel.threadCount = 2
        var inner = [Int](repeating: 0, count: 4 * 16)
        inner.withUnsafeMutableBufferPointer { h in
            let base = h.baseAddress!
            Parallel.run(chunks: 4) { outer in
                Parallel.run(chunks: 16) { i in base[outer * 16 + i] += 1 }
            }
        }
        XCTAssertEqual(inner, [Int](repeating: 1, count: 64))
    }

    func testFixedChunkBoundariesIgnoreThreadCount() {
        func boundaries() -> [Range<Int>] {
            var ranges = [Range<Int>](repeating: 0..<0, count: 5)
            ranges.withUnsafeMutableBufferPointer { r in
                let base = r.baseAddress!
                Parallel.forFixedChunks(1000, chunk: 200) { c, range in base[c] = range }
            }
            return ranges
        }
        Parallel.threadCount = 1
        let one = boundaries()
        Parallel.threadCount = 2
        XCTAssertEqual(boundaries(), one)
        XCTAssertEqual(one.first, 0..<200)
        XCTAssertEqual(one.last, 800..<1000)
    }

    func testWholeTensorSumIsIdenticalForOneAndTwoThreads() throws {
        var rng = RandomGenerator(seed: 9)
        let x = Tensor.normal([300_001], rng: &rng)
        Parallel.threadCount = 1
        let a = try sum(x).item()
        Parallel.threadCount = 2
        let b = try sum(x).item()
        XCTAssertEqual(a.bitPattern, b.bitPattern)
    }
}
