import Foundation
import Spec

/// One trial: the pipeline with these keys set.
public struct Trial: Codable, Equatable, Sendable {
    /// 0-based, in the order trials are started.
    public var index: Int
    /// Swept key → value (YAML flow text, as `--set` takes it), in the sweep's key order.
    public var parameters: [String: String]
    /// The keys in the sweep's order (JSON objects do not keep order).
    public var keys: [String]

    /// `000`, `001`, …: the trial's folder and log names.
    public var name: String { String(format: "%03d", index) }

    /// The `--set` flags of this trial.
    public var overrides: [String] { keys.map { "\($0)=\(parameters[$0] ?? "")" } }

    /// `lr=1e-3 dropout=0.1`-style, for logs and errors.
    public var summary: String { keys.map { "\($0)=\(parameters[$0] ?? "")" }.joined(separator: " ") }
}

/// What a sweep is asked to do, whatever it came from (the `sweep:` section, flags or both).
public struct SweepPlan: Sendable {
    public var method: SweepMethod
    public var parameters: [SweepParameter]
    public var trialCount: Int
    public var seed: UInt64
    public var halving: HalvingSpec

    /// The file's `sweep:` section with the command line's parameters on top (a flag's key
    /// replaces the file's entry for it; new keys are appended).
    public init(section: SweepSpec?, flags: [SweepParameter], method: SweepMethod?, trials: Int?, pipelineSeed: UInt64) {
        let base = section ?? SweepSpec()
        var params = base.parameters
        for f in flags {
            if let i = params.firstIndex(where: { $0.key == f.key }) { params[i] = f } else { params.append(f) }
        }
        // Flags of --random imply a random sweep unless a method was named.
        let drawnFlag = flags.contains { if case .values = $0.domain { return false }; return true }
        self.method = method ?? (section == nil && drawnFlag ? .random : base.method)
        self.parameters = params
        self.trialCount = trials ?? base.trials
        self.seed = base.seed ?? pipelineSeed
        self.halving = base.halving
    }

    /// The trials, or an error that names what cannot be swept.
    public func trials() throws -> [Trial] {
        guard !parameters.isEmpty else {
            throw SweepError("nothing to sweep: no parameters",
                             hint: "add a `sweep: {parameters: {...}}` section to the pipeline or pass --grid KEY=V1,V2 / --random KEY=DIST")
        }
        let keys = parameters.map(\.key)
        switch method {
        case .grid:
            var axes: [[String]] = []
            for p in parameters {
                guard case .values(let v) = p.domain else {
                    throw SweepError("a grid takes lists of values; \(p.key) is \(p.domain.summary)", at: p.location,
                                     hint: "list the values or use --method random")
                }
                axes.append(v)
            }
            let total = axes.reduce(1) { $0 * $1.count }
            guard total <= 10_000 else {
                throw SweepError("the grid has \(total) trials (more than 10 000)", hint: "sweep fewer values, or use method: random with trials: N")
            }
            var out: [Trial] = []
            for i in 0..<total {
                var rest = i, values: [String: String] = [:]
                // The last key varies fastest.
                for (k, axis) in zip(keys, axes).reversed() {
                    values[k] = axis[rest % axis.count]
                    rest /= axis.count
                }
                out.append(Trial(index: i, parameters: values, keys: keys))
            }
            return out
        case .random, .halving:
            return (0..<trialCount).map { t in
                var values: [String: String] = [:]
                for (j, p) in parameters.enumerated() {
                    values[p.key] = Self.draw(p.domain, u: Self.uniform(seed: seed, trial: t, parameter: j))
                }
                return Trial(index: t, parameters: values, keys: keys)
            }
        }
    }

    /// A value of `domain` for a uniform number u in [0, 1).
    static func draw(_ domain: SweepDomain, u: Double) -> String {
        switch domain {
        case .values(let v):
            return v[min(v.count - 1, Int(u * Double(v.count)))]
        case .uniform(let a, let b):
            return number(a + (b - a) * u)
        case .logUniform(let a, let b):
            return number(exp(log(a) + (log(b) - log(a)) * u))
        case .int(let a, let b):
            let span = Double(b - a + 1)
            return String(a + min(b - a, Int(u * span)))
        }
    }

    /// Four significant digits: readable in tables and exact as the `--set` text it is.
    static func number(_ x: Double) -> String {
        String(format: "%.4g", x)
    }

    /// Counter-based: the draw for (seed, trial, parameter) never depends on other draws, so
    /// adding trials or keys keeps the earlier trials' values.
    static func uniform(seed: UInt64, trial: Int, parameter: Int) -> Double {
        var z = seed &+ 0x9E37_79B9_7F4A_7C15 &* UInt64(trial + 1) &+ 0xD1B5_4A32_D192_ED03 &* UInt64(parameter + 1)
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) / Double(UInt64(1) << 53)
    }
}

/// A sweep that cannot start or go on, with where and how to fix it.
public struct SweepError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var location: SourceLocation?
    public var hint: String?

    public init(_ message: String, at location: SourceLocation? = nil, hint: String? = nil) {
        self.message = message
        self.location = location
        self.hint = hint
    }

    public var description: String {
        (location.map { "\($0): error: " } ?? "error: ") + message + (hint.map { "\n    hint: " + $0 } ?? "")
    }
}
