/// Counter-based random numbers (Philox4x32-10, Salmon et al., SC'11).
///
/// A draw is a pure function of (seed, counter): element `i` of a random op takes its bits from
/// counter `offset + i / 4`, lane `i % 4`. Kernels can therefore fill any slice in any order on
/// any thread and produce the same numbers, so dropout, initialisation and shuffling reproduce
/// bit for bit for a seed whatever the thread count.
public struct RandomGenerator: Sendable {
    public let seed: UInt64
    /// The next unused counter; each op advances it past what it consumed.
    public private(set) var offset: UInt64

    public init(seed: UInt64, offset: UInt64 = 0) {
        self.seed = seed
        self.offset = offset
    }

    /// Reserves counters for `count` values and returns the stream that produces them.
    public mutating func take(_ count: Int) -> PhiloxStream {
        let stream = PhiloxStream(seed: seed, offset: offset)
        offset &+= UInt64((max(count, 0) + 3) / 4)
        return stream
    }

    /// A uniform integer in `0..<bound` (Lemire's multiply-shift; bias below 2^-32 · bound).
    public mutating func nextInt(below bound: Int) -> Int {
        let s = take(2)
        let hi = UInt64(s.bits(0)), lo = UInt64(s.bits(1))
        let r = (hi << 32) | lo
        return Int(r.multipliedFullWidth(by: UInt64(bound)).high)
    }

    /// A seeded Fisher–Yates permutation of `0..<n`.
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        if n < 2 { return p }
        for i in stride(from: n - 1, to: 0, by: -1) {
            let j = nextInt(below: i + 1)
            p.swapAt(i, j)
        }
        return p
    }
}

/// A reserved range of Philox counters.
public struct PhiloxStream: Sendable {
    public let seed: UInt64
    public let offset: UInt64

    /// The raw 32 random bits of element `i`.
    @inline(__always)
    public func bits(_ i: Int) -> UInt32 {
        let block = philox(counter: offset &+ UInt64(i >> 2), key: seed)
        switch i & 3 {
        case 0: return block.0
        case 1: return block.1
        case 2: return block.2
        default: return block.3
        }
    }

    /// Four uniform floats in [0, 1) for elements `4*block ..< 4*block+4`.
    @inline(__always)
    public func uniform4(block: Int) -> (Float, Float, Float, Float) {
        let b = philox(counter: offset &+ UInt64(block), key: seed)
        return (toUnit(b.0), toUnit(b.1), toUnit(b.2), toUnit(b.3))
    }

    /// A uniform float in [0, 1) for element `i`.
    @inline(__always)
    public func uniform(_ i: Int) -> Float { toUnit(bits(i)) }

    /// Fills `n` uniform [0, 1) floats for elements `start ..< start+n`.
    public func fillUniform(_ dst: UnsafeMutablePointer<Float>, start: Int, count n: Int) {
        var i = 0
        while i < n {
            let e = start + i
            if e & 3 == 0 && i + 4 <= n {
                let u = uniform4(block: e >> 2)
                dst[i] = u.0; dst[i + 1] = u.1; dst[i + 2] = u.2; dst[i + 3] = u.3
                i += 4
            } else {
                dst[i] = uniform(e)
                i += 1
            }
        }
    }
}

@inline(__always)
func toUnit(_ x: UInt32) -> Float { Float(x >> 8) * (1.0 / 16_777_216.0) }

@inline(__always)
func mulhilo(_ a: UInt32, _ b: UInt32) -> (UInt32, UInt32) {
    let p = UInt64(a) &* UInt64(b)
    return (UInt32(truncatingIfNeeded: p >> 32), UInt32(truncatingIfNeeded: p))
}

/// Philox4x32 with 10 rounds; the 64-bit counter fills the first two words, the last two are 0.
@inline(__always)
public func philox(counter: UInt64, key: UInt64) -> (UInt32, UInt32, UInt32, UInt32) {
    var c0 = UInt32(truncatingIfNeeded: counter), c1 = UInt32(truncatingIfNeeded: counter >> 32)
    var c2: UInt32 = 0, c3: UInt32 = 0
    var k0 = UInt32(truncatingIfNeeded: key), k1 = UInt32(truncatingIfNeeded: key >> 32)
    for _ in 0..<10 {
        let (hi0, lo0) = mulhilo(0xD251_1F53, c0)
        let (hi1, lo1) = mulhilo(0xCD9E_8D57, c2)
        let n0 = hi1 ^ c1 ^ k0
        let n2 = hi0 ^ c3 ^ k1
        c0 = n0; c1 = lo1; c2 = n2; c3 = lo0
        k0 &+= 0x9E37_79B9
        k1 &+= 0xBB67_AE85
    }
    return (c0, c1, c2, c3)
}

/// A shared, mutable handle on a generator: a model's layers hold one so that initialisation
/// and dropout draw from a single seeded sequence, in call order.
public final class RandomSource {
    public var generator: RandomGenerator
    public init(seed: UInt64) { generator = RandomGenerator(seed: seed) }
}
