import Foundation

/// A reference-counted, 64-byte aligned Float32 buffer. Buffers come from and return to
/// `BufferPool`, so a training step that allocates the same activation sizes every step reuses
/// last step's memory instead of calling malloc again.
public final class Storage {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int
    /// Floats the buffer really holds (≥ `count`; the pool's size class).
    let capacity: Int

    /// Uninitialised storage of `count` floats.
    public init(count: Int) {
        self.count = count
        (self.pointer, self.capacity) = BufferPool.shared.take(count: count)
    }

    /// Zero-filled storage.
    public convenience init(zeroed count: Int) {
        self.init(count: count)
        pointer.initialize(repeating: 0, count: count)
    }

    deinit { BufferPool.shared.give(pointer, capacity: capacity) }
}

/// Keeps freed buffers for reuse, up to a byte budget, by size class: a request of n ≥ 1024
/// floats gets a buffer of `sizeClass(n)` floats, the smallest m·2^(e−3) ≥ n with m in 8…16 (at
/// most 12.5 % more than asked). Classes, not exact counts, are what lets a text batch padded
/// to its own longest row reuse the memory of the previous batch, whose length differed.
public final class BufferPool {
    public static let shared = BufferPool()

    private var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private var cachedBytes = 0
    private let lock = NSLock()
    /// The most bytes the pool keeps for reuse; beyond it, freed buffers go back to the system.
    /// Defaults to a quarter of physical memory, at most 4 GiB (`RUNPIPE_POOL_MB` overrides): a
    /// training step's activations then come back from the pool every step instead of being
    /// unmapped and faulted in again.
    public var budgetBytes: Int = {
        if let s = ProcessInfo.processInfo.environment["RUNPIPE_POOL_MB"], let mb = Int(s), mb >= 0 { return mb << 20 }
        return Int(min(ProcessInfo.processInfo.physicalMemory / 4, 4 << 30))
    }()
    /// Buffers smaller than this are not pooled (malloc is fast for them anyway).
    let minPooledCount = 1024

    /// The capacity a request of `count` floats is served with (`count` itself below 1024).
    static func sizeClass(_ count: Int) -> Int {
        guard count >= 1024 else { return max(count, 1) }
        let e = Int.bitWidth - 1 - count.leadingZeroBitCount  // 2^e ≤ count < 2^(e+1)
        let step = 1 << (e - 3)
        return (count + step - 1) / step * step
    }

    /// A buffer for `count` floats and its capacity. Served from the pool by best fit within one
    /// octave (the request's class and the next eight); on a miss, cached buffers too small for it
    /// are returned to the system first, about as many bytes as the new buffer takes, so memory
    /// parked in classes a workload stopped using does not pile up.
    public func take(count: Int) -> (UnsafeMutablePointer<Float>, Int) {
        let n = Self.sizeClass(count)
        if n >= minPooledCount {
            lock.lock()
            var c = n
            for _ in 0...8 {
                if var list = free[c], let p = list.popLast() {
                    free[c] = list.isEmpty ? nil : list
                    cachedBytes -= c * 4
                    lock.unlock()
                    return (p, c)
                }
                c = Self.sizeClass(c + 1)
            }
            var released = 0
            for cls in free.keys.filter({ $0 < n }).sorted(by: >) where released < n * 4 {
                while released < n * 4, var list = free[cls], let p = list.popLast() {
                    free[cls] = list.isEmpty ? nil : list
                    Foundation.free(p)
                    cachedBytes -= cls * 4
                    released += cls * 4
                }
            }
            lock.unlock()
        }
        var raw: UnsafeMutableRawPointer?
        let bytes = n * MemoryLayout<Float>.stride
        if posix_memalign(&raw, 64, bytes) != 0 || raw == nil {
            // Out of memory is not recoverable for a numeric kernel; report it plainly.
            fatalError("runpipe: out of memory allocating \(bytes) bytes")
        }
        return (raw!.bindMemory(to: Float.self, capacity: n), n)
    }

    /// Takes back a buffer `take` returned, with the capacity it returned.
    public func give(_ pointer: UnsafeMutablePointer<Float>, capacity n: Int) {
        if n >= minPooledCount {
            lock.lock()
            if cachedBytes + n * 4 <= budgetBytes {
                free[n, default: []].append(pointer)
                cachedBytes += n * 4
                lock.unlock()
                return
            }
            lock.unlock()
        }
        Foundation.free(pointer)
    }

    /// Returns every cached buffer to the system.
    public func drain() {
        lock.lock()
        for (_, list) in free { for p in list { Foundation.free(p) } }
        free = [:]
        cachedBytes = 0
        lock.unlock()
    }

    public var cachedByteCount: Int { lock.lock(); defer { lock.unlock() }; return cachedBytes }
}
