import Foundation

// The `sweep:` section: which pipeline keys `runpipe sweep` varies and how. `runpipe train`
// ignores it; each trial is the pipeline with the trial's values applied as `--set` overrides,
// so a swept key is checked exactly as a flag would be.

/// How trials are chosen.
public enum SweepMethod: String, Codable, CaseIterable, Sendable {
    /// Every combination of the listed values, in declaration order (the last key varies fastest).
    case grid
    /// `trials` draws from the parameters' distributions, seeded.
    case random
    /// Random draws, with weak trials stopped early at rungs of epochs (ASHA-style successive
    /// halving on the monitored metric).
    case halving
}

/// Where a swept key's values come from.
public enum SweepDomain: Equatable, Sendable {
    /// These values (YAML flow text, as `--set` would take it): a grid axis, or a uniform choice.
    case values([String])
    /// A uniform real number in [lower, upper].
    case uniform(Double, Double)
    /// A real number whose logarithm is uniform in [log lower, log upper] (lower > 0).
    case logUniform(Double, Double)
    /// A uniform integer in lower...upper.
    case int(Int, Int)

    /// How the domain reads in tables and errors: `[1e-3, 3e-3]`, `log_uniform(1e-05, 0.01)`.
    public var summary: String {
        switch self {
        case .values(let v): return "[" + v.joined(separator: ", ") + "]"
        case .uniform(let a, let b): return "uniform(\(a), \(b))"
        case .logUniform(let a, let b): return "log_uniform(\(a), \(b))"
        case .int(let a, let b): return "int(\(a), \(b))"
        }
    }
}

/// One swept key.
public struct SweepParameter: Equatable, Sendable {
    /// The dotted pipeline key (`trainer.optimizer.lr`, `trainer.callbacks[0].early_stopping.patience`).
    public var key: String
    public var domain: SweepDomain
    /// Where the key was declared (nil: a command-line flag or code).
    public var location: SourceLocation?

    public init(key: String, domain: SweepDomain, location: SourceLocation? = nil) {
        self.key = key
        self.domain = domain
        self.location = location
    }

    public static func == (a: SweepParameter, b: SweepParameter) -> Bool { a.key == b.key && a.domain == b.domain }
}

/// Settings of successive halving.
public struct HalvingSpec: Codable, Equatable, Sendable {
    /// Epochs at the first rung (≥ 1); rung k is at `min_epochs · eta^k`, below `trainer.epochs`.
    public var minEpochs: Int
    /// Reduction factor (≥ 2): at each rung a trial goes on only if it is in the best 1/eta of
    /// the trials (of lower index, and itself) that reached that rung.
    public var eta: Int

    public init() { self.init(minEpochs: 1, eta: 3) }

    public init(minEpochs: Int, eta: Int) {
        self.minEpochs = minEpochs
        self.eta = eta
    }

    /// The rungs (epochs after which trials are compared) for a run of `epochs` epochs.
    public func rungs(epochs: Int) -> [Int] {
        var out: [Int] = []
        var r = minEpochs
        while r < epochs {
            out.append(r)
            let (next, overflow) = r.multipliedReportingOverflow(by: eta)
            if overflow { break }
            r = next
        }
        return out
    }
}

/// The `sweep:` section.
public struct SweepSpec: Codable, Equatable, Sendable {
    public var method: SweepMethod
    /// The swept keys in the order written.
    public var parameters: [SweepParameter]
    /// Draws for `random` and `halving` (grid: the grid's size).
    public var trials: Int
    /// `auto` (the pipeline's metric, `val.<metric>`), `val.loss` or `val.<metric>`.
    public var monitor: String
    public var mode: MonitorModeSpec
    /// Trials run at once, each in its own process, the cores split between them.
    public var jobs: Int
    /// Seed of the random draws; nil: the pipeline's seed.
    public var seed: UInt64?
    public var halving: HalvingSpec

    public init() {
        self.init(method: .grid, parameters: [], trials: 10, monitor: "auto", mode: .auto, jobs: 1, seed: nil, halving: HalvingSpec())
    }

    public init(method: SweepMethod, parameters: [SweepParameter], trials: Int, monitor: String, mode: MonitorModeSpec,
                jobs: Int, seed: UInt64?, halving: HalvingSpec) {
        self.method = method
        self.parameters = parameters
        self.trials = trials
        self.monitor = monitor
        self.mode = mode
        self.jobs = jobs
        self.seed = seed
        self.halving = halving
    }
}

extension HalvingSpec: SpecSection {
    static let title = "sweep.halving"
    static let summary = "Successive halving: rungs of epochs at which weak trials stop."
    static var fields: [Field<HalvingSpec>] {
        [
            Field("min_epochs", \.minEpochs, Codecs.int(min: 1), "Epochs at the first rung; rung k is at min_epochs·eta^k, below trainer.epochs."),
            Field("eta", \.eta, Codecs.int(2...100), "Reduction factor: a trial goes on past a rung only in the best 1/eta of those that reached it."),
        ]
    }
}

extension SweepSpec: SpecSection {
    static let title = "sweep"
    static let summary = "What `runpipe sweep` varies: grid, random or successive-halving trials over any pipeline keys."
    static var fields: [Field<SweepSpec>] {
        let drawn: (SweepSpec) -> Bool = { $0.method != .grid }
        return [
            Field("method", \.method, Codecs.enumeration(SweepMethod.self),
                  "grid (every combination), random (seeded draws) or halving (random draws, weak trials stopped early)."),
            Field("parameters", \.parameters, SweepSections.parametersCodec,
                  "Pipeline key → a list of values, or {choice: [...]}, {uniform: [lo, hi]}, {log_uniform: [lo, hi]}, {int: [lo, hi]} (not with grid).",
                  example: "parameters: {trainer.optimizer.lr: [1.0e-3, 3.0e-3]}"),
            Field("trials", \.trials, Codecs.int(1...10_000), "How many trials random and halving draw.", only: "method: random or halving", when: drawn),
            Field("monitor", \.monitor, Codecs.string(nonEmpty: true), "The metric trials are ranked by: auto (the pipeline's metric), val.loss or val.<metric>."),
            Field("mode", \.mode, Codecs.enumeration(MonitorModeSpec.self), "auto (from the monitor), min or max."),
            Field("jobs", \.jobs, Codecs.int(1...256), "Trials run at once (each a process; the cores are split between them)."),
            Field("seed", \.seed, Codecs.optional(Codecs.uint64), "Seed of the random draws; null: the pipeline's seed.", only: "method: random or halving", when: drawn),
            Field("halving", \.halving, Sections.codec(HalvingSpec.self), "Rungs and reduction factor.", only: "method: halving", when: { $0.method == .halving }),
        ]
    }

    static func validate(_ s: SweepSpec, _ scope: Scope) {
        var seen = Set<String>()
        for p in s.parameters {
            if !seen.insert(p.key).inserted {
                scope.fail("parameters", "'\(p.key)' is swept twice", hint: "keep one entry per key")
            }
            if s.method == .grid, case .values = p.domain {} else if s.method == .grid {
                scope.ctx.fail(scope.origin(of: "parameters." + p.key), "sweep.parameters.\(p.key)",
                               "a grid takes lists of values, not \(p.domain.summary)",
                               hint: "list the values (e.g. [1.0e-3, 3.0e-3]) or use method: random")
            }
        }
    }
}

extension SweepSpec {
    public init(from decoder: Decoder) throws { self = try SpecCoding.decode(Sections.codec(SweepSpec.self), from: decoder) }
    public func encode(to encoder: Encoder) throws { try SpecCoding.encode(self, Sections.codec(SweepSpec.self), to: encoder) }
}

extension HalvingSpec {
    public init(from decoder: Decoder) throws { self = try SpecCoding.decode(Sections.codec(HalvingSpec.self), from: decoder) }
    public func encode(to encoder: Encoder) throws { try SpecCoding.encode(self, Sections.codec(HalvingSpec.self), to: encoder) }
}

enum SweepSections {
    /// An ordered mapping of dotted keys to domains.
    static var parametersCodec: Codec<[SweepParameter]> {
        Codec(schema: {
            .object([("type", .string("object")),
                     ("additionalProperties", .object([("oneOf", .list([
                         .object([("type", .string("array")), ("minItems", .int(1))]),
                         .object([("type", .string("object")), ("minProperties", .int(1)), ("maxProperties", .int(1))]),
                     ]))]))])
        }, decode: { node, path, ctx in
            if node.isNull { return [] }
            guard let entries = node.mapEntries else {
                ctx.fail(node.origin, path, "\(path) expects a mapping of pipeline keys to values, found \(node.shown)",
                         hint: "e.g. parameters: {trainer.optimizer.lr: [1.0e-3, 3.0e-3]}")
                return nil
            }
            var out: [SweepParameter] = []
            var ok = true
            for e in entries {
                let p = join(path, e.key)
                ctx.record(p, e.keyOrigin)
                guard Overrides.parsePath(e.key) != nil else {
                    ctx.fail(e.keyOrigin, p, "'\(e.key)' is not a pipeline key", hint: "use a dotted path such as trainer.optimizer.lr")
                    ok = false
                    continue
                }
                if let d = domain(e.value, p, ctx) {
                    out.append(SweepParameter(key: e.key, domain: d, location: e.keyOrigin.location))
                } else {
                    ok = false
                }
            }
            return ok ? out : nil
        }, encode: { params in
            .map(params.map { Value.Entry(key: $0.key, value: encode($0.domain)) })
        })
    }

    static func encode(_ d: SweepDomain) -> Value {
        switch d {
        case .values(let v): return .list(v.map { .string($0) })
        case .uniform(let a, let b): return .object([("uniform", .list([.double(a), .double(b)]))])
        case .logUniform(let a, let b): return .object([("log_uniform", .list([.double(a), .double(b)]))])
        case .int(let a, let b): return .object([("int", .list([.int(a), .int(b)]))])
        }
    }

    static func domain(_ node: SpecNode, _ path: String, _ ctx: DecodeContext) -> SweepDomain? {
        if case .list(let items) = node.kind {
            guard !items.isEmpty else {
                ctx.fail(node.origin, path, "an empty list of values: nothing to try", hint: "list at least one value")
                return nil
            }
            return .values(items.map(flowText))
        }
        guard let entries = node.mapEntries, entries.count == 1, let e = entries.first else {
            ctx.fail(node.origin, path, "\(path) expects a list of values or one of {choice: [...]}, {uniform: [lo, hi]}, {log_uniform: [lo, hi]}, {int: [lo, hi]}; found \(node.shown)",
                     hint: "a single value is not a sweep: write it in the pipeline itself")
            return nil
        }
        let p = join(path, e.key)
        ctx.record(p, e.keyOrigin)
        if e.key == "choice" {
            guard case .list(let items) = e.value.kind, !items.isEmpty else {
                ctx.fail(e.value.origin, p, "choice expects a non-empty list of values, found \(e.value.shown)")
                return nil
            }
            return .values(items.map(flowText))
        }
        guard ["uniform", "log_uniform", "int"].contains(e.key) else {
            ctx.fail(e.keyOrigin, p, "unknown distribution '\(e.key)'\(Suggest.didYouMean(e.key, ["choice", "uniform", "log_uniform", "int"]))",
                     hint: "use choice, uniform, log_uniform or int")
            return nil
        }
        guard case .list(let bounds) = e.value.kind, bounds.count == 2 else {
            ctx.fail(e.value.origin, p, "\(e.key) expects [lower, upper], found \(e.value.shown)")
            return nil
        }
        if e.key == "int" {
            let c = Codecs.int()
            guard let lo = c.decode(bounds[0], p + "[0]", ctx), let hi = c.decode(bounds[1], p + "[1]", ctx) else { return nil }
            guard lo <= hi else {
                ctx.fail(e.value.origin, p, "int(\(lo), \(hi)): the lower bound is above the upper", hint: "write [\(hi), \(lo)]")
                return nil
            }
            return .int(lo, hi)
        }
        let c = Codecs.double()
        guard let lo = c.decode(bounds[0], p + "[0]", ctx), let hi = c.decode(bounds[1], p + "[1]", ctx) else { return nil }
        guard lo <= hi else {
            ctx.fail(e.value.origin, p, "\(e.key)(\(show(lo)), \(show(hi))): the lower bound is above the upper", hint: "write [\(show(hi)), \(show(lo))]")
            return nil
        }
        if e.key == "log_uniform" {
            guard lo > 0 else {
                ctx.fail(e.value.origin, p, "log_uniform needs a positive lower bound, found \(show(lo))", hint: "use uniform for ranges that include 0")
                return nil
            }
            return .logUniform(lo, hi)
        }
        return .uniform(lo, hi)
    }

    /// A node as YAML flow text (what `--set KEY=` takes): `1e-3`, `"a b"`, `[64, 64]`, `{kind: mlp}`.
    static func flowText(_ node: SpecNode) -> String {
        switch node.kind {
        case .scalar(let s, let plain):
            if plain { return s }
            return quoted(s)
        case .list(let items):
            return "[" + items.map(flowText).joined(separator: ", ") + "]"
        case .map(let entries):
            return "{" + entries.map { "\($0.key): \(flowText($0.value))" }.joined(separator: ", ") + "}"
        }
    }

    static func quoted(_ s: String) -> String {
        var out = "\""
        for ch in s.unicodeScalars {
            switch ch {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out + "\""
    }
}

// MARK: - Command-line flags

extension SweepSpec {
    /// Parses `--grid KEY=V1,V2,…` (values split at top-level commas; brackets and quotes nest).
    public static func gridFlag(_ flag: String) throws -> SweepParameter {
        let (key, rest) = try splitFlag(flag, name: "--grid", example: "--grid trainer.optimizer.lr=1e-3,3e-3")
        let values = splitTopLevel(rest)
        guard !values.isEmpty, !values.contains(where: { $0.isEmpty }) else {
            throw SpecError(location: nil, path: key, message: "--grid \(flag): an empty value in the grid",
                            hint: "list values separated by commas, e.g. --grid \(key)=1e-3,3e-3")
        }
        return SweepParameter(key: key, domain: .values(values))
    }

    /// Parses `--random KEY=DIST`: `log_uniform(1e-5,1e-2)`, `uniform(0,0.5)`, `int(16,128)`,
    /// `choice(a,b,c)`.
    public static func randomFlag(_ flag: String) throws -> SweepParameter {
        let (key, rest) = try splitFlag(flag, name: "--random", example: "--random trainer.optimizer.lr=log_uniform(1e-5,1e-2)")
        let fail = { (m: String) in
            SpecError(location: nil, path: key, message: "--random \(flag): \(m)",
                      hint: "use choice(a,b,…), uniform(lo,hi), log_uniform(lo,hi) or int(lo,hi)")
        }
        guard let open = rest.firstIndex(of: "("), rest.hasSuffix(")") else { throw fail("expected DISTRIBUTION(ARGUMENTS)") }
        let name = String(rest[..<open])
        let args = splitTopLevel(String(rest[rest.index(after: open)..<rest.index(before: rest.endIndex)]))
        switch name {
        case "choice":
            guard !args.isEmpty, !args.contains(where: { $0.isEmpty }) else { throw fail("choice needs at least one value") }
            return SweepParameter(key: key, domain: .values(args))
        case "uniform", "log_uniform":
            guard args.count == 2, let lo = Double(args[0]), let hi = Double(args[1]), lo.isFinite, hi.isFinite else {
                throw fail("\(name) takes two numbers")
            }
            guard lo <= hi else { throw fail("\(name)(\(args[0]), \(args[1])): the lower bound is above the upper") }
            if name == "log_uniform" {
                guard lo > 0 else { throw fail("log_uniform needs a positive lower bound") }
                return SweepParameter(key: key, domain: .logUniform(lo, hi))
            }
            return SweepParameter(key: key, domain: .uniform(lo, hi))
        case "int":
            guard args.count == 2, let lo = Int(args[0]), let hi = Int(args[1]) else { throw fail("int takes two integers") }
            guard lo <= hi else { throw fail("int(\(lo), \(hi)): the lower bound is above the upper") }
            return SweepParameter(key: key, domain: .int(lo, hi))
        default:
            throw fail("unknown distribution '\(name)'\(Suggest.didYouMean(name, ["choice", "uniform", "log_uniform", "int"]))")
        }
    }

    private static func splitFlag(_ flag: String, name: String, example: String) throws -> (String, String) {
        guard let eq = flag.firstIndex(of: "=") else {
            throw SpecError(location: nil, path: "", message: "\(name) \(flag): expected KEY=VALUES", hint: "e.g. \(example)")
        }
        let key = String(flag[..<eq])
        guard Overrides.parsePath(key) != nil else {
            throw SpecError(location: nil, path: key, message: "\(name) \(flag): '\(key)' is not a pipeline key",
                            hint: "use a dotted path such as trainer.optimizer.lr")
        }
        return (key, String(flag[flag.index(after: eq)...]))
    }

    /// Splits at commas outside brackets, braces and quotes; trims spaces.
    static func splitTopLevel(_ text: String) -> [String] {
        if text.trimmingCharacters(in: .whitespaces).isEmpty { return [] }
        var parts: [String] = [], current = "", depth = 0
        var quote: Character? = nil
        for ch in text {
            if let q = quote {
                current.append(ch)
                if ch == q { quote = nil }
                continue
            }
            switch ch {
            case "\"", "'": quote = ch; current.append(ch)
            case "[", "{", "(": depth += 1; current.append(ch)
            case "]", "}", ")": depth -= 1; current.append(ch)
            case "," where depth == 0:
                parts.append(current.trimmingCharacters(in: .whitespaces)); current = ""
            default: current.append(ch)
            }
        }
        parts.append(current.trimmingCharacters(in: .whitespaces))
        return parts
    }
}
