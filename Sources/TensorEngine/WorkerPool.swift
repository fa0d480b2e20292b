import Foundation
import Synchronization

/// Persistent worker threads for `Parallel.run`.
///
/// A training step issues hundreds of short parallel kernels; waking threads through the
/// system for each (as `DispatchQueue.concurrentPerform` does) costs tens of microseconds a
/// time. Workers here spin briefly on a generation counter after each job, so the next kernel
/// starts within a microsecond or two, and sleep on a condition variable when idle longer.
/// Chunk `i` of a job runs on participant `i % participants` (the caller is participant 0), a
/// fixed assignment. Nested or concurrent dispatches run on the calling thread instead.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool(workers: max(0, ProcessInfo.processInfo.activeProcessorCount - 1))

    let workerCount: Int
    private let generation = Atomic<Int>(0)
    private let remaining = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let sleepLock = NSCondition()
    // Written by the dispatcher before the generation bump (release), read by workers after
    // observing it (acquire).
    private var job: ((Int) -> Void)?
    private var chunks = 0
    private var participants = 0
    /// Spin iterations before a worker sleeps (≈ tens of microseconds).
    private let spinLimit = 20_000

    init(workers: Int) {
        workerCount = workers
        for w in 0..<workers {
            let thread = Thread { [unowned self] in self.workerLoop(index: w + 1) }
            thread.name = "runpipe-worker-\(w + 1)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Runs `body(i)` for `i in 0..<count` over `min(threads, count, workers + 1)` participants.
    /// Returns false (having run nothing) when the pool is already busy: the caller then runs
    /// the work itself.
    func run(chunks count: Int, threads: Int, _ body: (Int) -> Void) -> Bool {
        guard workerCount > 0, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            return false
        }
        defer { busy.store(false, ordering: .releasing) }
        let parts = min(threads, count, workerCount + 1)
        withoutActuallyEscaping(body) { escapable in
            job = escapable
            chunks = count
            participants = parts
            remaining.store(workerCount, ordering: .relaxed)
            sleepLock.lock()
            generation.add(1, ordering: .releasing)
            sleepLock.broadcast()
            sleepLock.unlock()
            var i = 0
            while i < count { escapable(i); i += parts }
            while remaining.load(ordering: .acquiring) > 0 {}
            job = nil
        }
        return true
    }

    private func workerLoop(index: Int) {
        // Generation 0 is the pool's initial state; a job dispatched before this thread got
        // here has already bumped it, and must still be picked up.
        var seen = 0
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins < spinLimit { continue }
                sleepLock.lock()
                while generation.load(ordering: .acquiring) == seen { sleepLock.wait() }
                sleepLock.unlock()
            }
            seen = generation.load(ordering: .acquiring)
            let parts = participants
            if index < parts, let body = job {
                var i = index
                let n = chunks
                while i < n { body(i); i += parts }
            }
            remaining.subtract(1, ordering: .releasing)
        }
    }
}
