import Foundation
import CBLAS

/// The deterministic parallel-for. Work is cut into chunks whose boundaries never depend on
/// timing (reductions and GEMM splits: on the problem size only; element-wise work may also
/// follow the thread count, which cannot change its result), and chunks are dealt to workers
/// round-robin. Reductions combine per-chunk partial results in
/// chunk order, so a result never depends on which thread finished first.
public enum Parallel {
    /// Worker count for every parallel kernel. Defaults to `RUNPIPE_THREADS` or the number of
    /// active cores. OpenBLAS itself is kept single-threaded: the engine splits matrix products.
    public static var threadCount: Int = {
        _ = blasSetup
        if let s = ProcessInfo.processInfo.environment["RUNPIPE_THREADS"], let n = Int(s), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// Runs `body(i)` for every `i` in `0..<chunks`, spread over up to `threadCount` workers.
    @inline(__always)
    public static func run(chunks: Int, _ body: (Int) -> Void) {
        let workers = min(threadCount, chunks)
        if workers <= 1 {
            for i in 0..<chunks { body(i) }
            return
        }
        let pool = WorkerPool.shared
        if pool.workerCount + 1 < workers {
            // More threads requested than cores: fall back to the system's thread pool.
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                var i = w
                while i < chunks { body(i); i += workers }
            }
        } else if !pool.run(chunks: chunks, threads: workers, body) {
            // The pool is busy (a nested or concurrent dispatch): run here, in chunk order.
            for i in 0..<chunks { body(i) }
        }
    }

    /// Splits `0..<n` into ranges of at least `grain` elements, one or more per worker, and runs
    /// `body` on each. Use it for element-wise work, whose result does not depend on the split.
    @inline(__always)
    public static func forRange(_ n: Int, grain: Int = 32768, _ body: (Range<Int>) -> Void) {
        let parts = min(threadCount, max(1, n / max(grain, 1)))
        if parts <= 1 { body(0..<n); return }
        let size = (n + parts - 1) / parts
        run(chunks: parts) { c in
            let lo = c * size
            let hi = min(n, lo + size)
            if lo < hi { body(lo..<hi) }
        }
    }

    /// Fixed-size chunks for reductions: boundaries depend on `n` and `chunk` only.
    @inline(__always)
    public static func forFixedChunks(_ n: Int, chunk: Int, _ body: (Int, Range<Int>) -> Void) {
        let chunks = max(1, (n + chunk - 1) / chunk)
        run(chunks: chunks) { c in
            let lo = c * chunk
            body(c, lo..<min(n, lo + chunk))
        }
    }
}

/// OpenBLAS is used single-threaded; its own thread pool scales poorly on small core counts and
/// the engine already splits products across cores with fixed chunking.
let blasSetup: Void = { openblas_set_num_threads(1) }()
