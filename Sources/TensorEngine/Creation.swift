import Foundation

// MARK: - Creation ops (never recorded: they have no inputs)

extension Tensor {
    public static func zeros(_ shape: [Int]) -> Tensor {
        Tensor(storage: Storage(zeroed: count(shape)), shape: shape)
    }

    public static func ones(_ shape: [Int]) -> Tensor { full(shape, 1) }

    public static func full(_ shape: [Int], _ value: Float) -> Tensor {
        let t = Tensor(uninitialized: shape)
        t.data.initialize(repeating: value, count: t.count)
        return t
    }

    public static func zeros(like t: Tensor) -> Tensor { zeros(t.shape) }

    /// `start, start+step, …` below `end` (like `torch.arange`).
    public static func arange(_ start: Float = 0, _ end: Float, step: Float = 1) throws -> Tensor {
        try require(step != 0, "arange", "step must not be 0")
        let n = max(0, Int((Double(end - start) / Double(step)).rounded(.up)))
        let t = Tensor(uninitialized: [n])
        for i in 0..<n { t.data[i] = start + Float(i) * step }
        return t
    }

    /// Uniform values in [low, high), from counter-based Philox draws.
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1, rng: inout RandomGenerator) -> Tensor {
        let t = Tensor(uninitialized: shape)
        let n = t.count
        let stream = rng.take(n)
        let d = t.data
        let span = high - low
        Parallel.forRange(n, grain: 65536) { r in
            stream.fillUniform(d + r.lowerBound, start: r.lowerBound, count: r.count)
            for i in r { d[i] = low + span * d[i] }
        }
        return t
    }

    /// Normal values (Box–Muller over pairs of Philox uniforms).
    public static func normal(_ shape: [Int], mean: Float = 0, std: Float = 1, rng: inout RandomGenerator) -> Tensor {
        let t = Tensor(uninitialized: shape)
        let n = t.count
        let stream = rng.take(2 * n)
        let d = t.data
        Parallel.forRange(n, grain: 65536) { r in
            for i in r {
                let u1 = max(stream.uniform(2 * i), 1e-7)
                let u2 = stream.uniform(2 * i + 1)
                let z = sqrt(-2 * log(u1)) * cos(2 * Float.pi * u2)
                d[i] = mean + std * z
            }
        }
        return t
    }

    /// A normal draw truncated to [mean - 2·std, mean + 2·std] by redrawing (as `trunc_normal_`).
    public static func truncatedNormal(_ shape: [Int], std: Float, rng: inout RandomGenerator) -> Tensor {
        let t = normal(shape, std: std, rng: &rng)
        let d = t.data
        for i in 0..<t.count {
            var tries = 0
            while abs(d[i]) > 2 * std && tries < 16 {
                let s = rng.take(2)
                let z = sqrt(-2 * log(max(s.uniform(0), 1e-7))) * cos(2 * Float.pi * s.uniform(1))
                d[i] = std * z
                tries += 1
            }
            if abs(d[i]) > 2 * std { d[i] = 0 }
        }
        return t
    }
}
