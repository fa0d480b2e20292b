import Foundation

/// Token bytes → id, an open-addressing hash table over UTF-8 bytes. Looking up a byte range
/// allocates nothing, and keys compare byte for byte (Swift `String` keys would treat
/// canonically equivalent tokens as one).
struct VocabTable: Sendable {
    private var arena: [UInt8] = []
    private var keyStart: [Int32] = []
    private var keyLength: [Int32] = []
    private var ids: [Int32] = []
    /// Slot → entry index + 1 (0 = empty).
    private var slots: [Int32]
    private var mask: Int

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [Int32](repeating: 0, count: size)
        mask = size - 1
    }

    var count: Int { ids.count }

    @inline(__always)
    static func hash(_ p: UnsafeBufferPointer<UInt8>) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in p { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        h ^= h >> 29
        return Int(truncatingIfNeeded: h)
    }

    /// Adds or overwrites `key`.
    mutating func insert(_ key: [UInt8], id: Int32) {
        if (ids.count + 1) * 2 > slots.count { grow() }
        let h = key.withUnsafeBufferPointer { Self.hash($0) }
        var s = h & mask
        while slots[s] != 0 {
            let e = Int(slots[s] - 1)
            if equal(e, key) { ids[e] = id; return }
            s = (s + 1) & mask
        }
        keyStart.append(Int32(arena.count))
        keyLength.append(Int32(key.count))
        arena.append(contentsOf: key)
        ids.append(id)
        slots[s] = Int32(ids.count)
    }

    mutating func insert(_ key: String, id: Int) { insert(Array(key.utf8), id: Int32(truncatingIfNeeded: id)) }

    private func equal(_ e: Int, _ key: [UInt8]) -> Bool {
        let a = Int(keyStart[e]), l = Int(keyLength[e])
        guard l == key.count else { return false }
        for k in 0..<l where arena[a + k] != key[k] { return false }
        return true
    }

    private mutating func grow() {
        let size = slots.count * 2
        slots = [Int32](repeating: 0, count: size)
        mask = size - 1
        arena.withUnsafeBufferPointer { ar in
            for e in 0..<ids.count {
                let h = Self.hash(UnsafeBufferPointer(rebasing: ar[Int(keyStart[e])..<Int(keyStart[e] + keyLength[e])]))
                var s = h & mask
                while slots[s] != 0 { s = (s + 1) & mask }
                slots[s] = Int32(e + 1)
            }
        }
    }

    /// The id of `key`, or -1.
    @inline(__always)
    func lookup(_ key: UnsafeBufferPointer<UInt8>) -> Int32 {
        let h = Self.hash(key)
        var s = h & mask
        return arena.withUnsafeBufferPointer { ar in
            while true {
                let v = slots[s]
                if v == 0 { return -1 }
                let e = Int(v - 1)
                let a = Int(keyStart[e]), l = Int(keyLength[e])
                if l == key.count {
                    var same = true
                    var k = 0
                    while k < l { if ar[a + k] != key[k] { same = false; break }; k += 1 }
                    if same { return ids[e] }
                }
                s = (s + 1) & mask
            }
        }
    }

    func lookup(_ key: String) -> Int32 {
        var k = key
        return k.withUTF8 { lookup($0) }
    }
}

/// Keys of the form (a, b) → value, for BPE merges.
struct PairTable: Sendable {
    private var keys: [UInt64]
    private var values: [UInt64]
    private var used: [Bool]
    private var mask: Int
    private(set) var count = 0

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        keys = [UInt64](repeating: 0, count: size)
        values = [UInt64](repeating: 0, count: size)
        used = [Bool](repeating: false, count: size)
        mask = size - 1
    }

    @inline(__always) private static func slot(_ k: UInt64, _ mask: Int) -> Int {
        var h = k &* 0x9E37_79B9_7F4A_7C15
        h ^= h >> 32
        return Int(truncatingIfNeeded: h) & mask
    }

    /// Inserts or overwrites (a later duplicate merge wins, as when the Rust crate collects
    /// its merges into a map).
    mutating func insert(_ k: UInt64, _ v: UInt64) {
        if (count + 1) * 2 > keys.count { grow() }
        var s = Self.slot(k, mask)
        while used[s] {
            if keys[s] == k { values[s] = v; return }
            s = (s + 1) & mask
        }
        used[s] = true
        keys[s] = k
        values[s] = v
        count += 1
    }

    private mutating func grow() {
        let oldK = keys, oldV = values, oldU = used
        let size = keys.count * 2
        keys = [UInt64](repeating: 0, count: size)
        values = [UInt64](repeating: 0, count: size)
        used = [Bool](repeating: false, count: size)
        mask = size - 1
        count = 0
        for i in 0..<oldK.count where oldU[i] { insert(oldK[i], oldV[i]) }
    }

    @inline(__always) func get(_ k: UInt64) -> UInt64? {
        var s = Self.slot(k, mask)
        while used[s] {
            if keys[s] == k { return values[s] }
            s = (s + 1) & mask
        }
        return nil
    }
}
