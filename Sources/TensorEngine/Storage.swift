import Foundation

/// A reference-counted, 64-byte aligned Float32 buffer. Buffers come from and return to
/// `BufferPool`, so a training step that allocates the same activation sizes every step reuses
/// last step's memory instead of calling malloc again.
public final class Storage {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    /// Uninitialised storage of `count` floats.
    public init(count: Int) {
        self.count = count
        self.pointer = BufferPool.shared.take(count: count)
    }

    /// Zero-filled storage.
    public convenience init(zeroed count: Int) {
        self.init(count: count)
        pointer.initialize(repeating: 0, count: count)
    }

    deinit { BufferPool.shared.give(pointer, count: count) }
}

/// Keeps freed buffers by exact element count, up to a byte budget, for reuse.
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

    public func take(count: Int) -> UnsafeMutablePointer<Float> {
        let n = max(count, 1)
        if n >= minPooledCount {
            lock.lock()
            if var list = free[n], let p = list.popLast() {
                free[n] = list.isEmpty ? nil : list
                cachedBytes -= n * 4
                lock.unlock()
                return p
            }
            lock.unlock()
        }
        var raw: UnsafeMutableRawPointer?
        let bytes = n * MemoryLayout<Float>.stride
        if posix_memalign(&raw, 64, bytes) != 0 || raw == nil {
            // Out of memory is not recoverable for a numeric kernel; report it plainly.
            fatalError("runpipe: out of memory allocating \(bytes) bytes")
        }
        return raw!.bindMemory(to: Float.self, capacity: n)
    }

    public func give(_ pointer: UnsafeMutablePointer<Float>, count: Int) {
        let n = max(count, 1)
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
