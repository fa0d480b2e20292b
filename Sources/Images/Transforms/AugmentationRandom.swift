// Counter-based randomness for one image's augmentation. The stream is a pure function of
// (seed, epoch, row), so an image's augmentation does not depend on batch order, on which thread
// runs it, or on how many images other rows consumed.

import TensorEngine

/// The random numbers one image's transforms draw, in draw order.
///
/// Derivation: the Philox4x32-10 key for the image is
/// `k = philox(counter: UInt64(bitPattern: row), key: philox(counter: UInt64(bitPattern: epoch), key: seed))`
/// (each call's first two 32-bit words joined, low word first), and draw block `i` is
/// `philox(counter: i, key: k)` — four 32-bit values per block, consumed in order.
public struct AugmentationRandom: Sendable {
    private let key: UInt64
    private var block: UInt64 = 0
    private var lanes: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)
    private var used = 4

    public init(seed: UInt64, epoch: Int, row: Int) {
        let epochKey = Self.join(philox(counter: UInt64(bitPattern: Int64(epoch)), key: seed))
        key = Self.join(philox(counter: UInt64(bitPattern: Int64(row)), key: epochKey))
    }

    private static func join(_ b: (UInt32, UInt32, UInt32, UInt32)) -> UInt64 {
        UInt64(b.0) | (UInt64(b.1) << 32)
    }

    /// The next 32 random bits.
    public mutating func nextBits() -> UInt32 {
        if used == 4 {
            lanes = philox(counter: block, key: key)
            block &+= 1
            used = 0
        }
        defer { used += 1 }
        switch used {
        case 0: return lanes.0
        case 1: return lanes.1
        case 2: return lanes.2
        default: return lanes.3
        }
    }

    /// A uniform Float in [0, 1) (24 random bits).
    public mutating func uniform() -> Float {
        Float(nextBits() >> 8) * (1.0 / 16_777_216.0)
    }

    /// A uniform Double in [lower, upper) (53 random bits), as torch's `uniform_(lower, upper)`.
    public mutating func uniform(_ lower: Double, _ upper: Double) -> Double {
        let hi = UInt64(nextBits()), lo = UInt64(nextBits())
        let u = Double(((hi << 32) | lo) >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return lower + (upper - lower) * u
    }

    /// A uniform integer in `0 ..< bound` (Lemire's multiply-shift on 64 bits); 0 when `bound <= 1`.
    public mutating func int(below bound: Int) -> Int {
        guard bound > 1 else { return 0 }
        let hi = UInt64(nextBits()), lo = UInt64(nextBits())
        return Int(((hi << 32) | lo).multipliedFullWidth(by: UInt64(bound)).high)
    }

    /// A uniformly random permutation of `0 ..< n` (Fisher–Yates), as `torch.randperm`.
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<max(n, 0))
        var i = p.count - 1
        while i > 0 {
            p.swapAt(i, int(below: i + 1))
            i -= 1
        }
        return p
    }
}
