import Foundation
import TensorEngine

// Parameter-efficient fine-tuning as AutoMM defines it (`optim.peft`): freeze a module tree,
// then train only adapters put on some of its Linear layers (LoRA, IA3, both), or only its
// biases (`bit_fit`), or its biases and normalisation layers (`norm_fit`) — or adapters plus
// one of the latter (`*_bias`, `*_norm`). Adapter formulas are the `peft` library's
// (see `PEFTAdapter`).

/// A parameter-efficient fine-tuning method; raw values are AutoMM's `optim.peft` names.
public enum PEFTMethod: String, CaseIterable, Codable, Sendable {
    case lora, lora_bias, lora_norm, ia3, ia3_bias, ia3_norm, ia3_lora, bit_fit, norm_fit

    /// Whether the method puts a LoRA update on the target layers.
    public var usesLoRA: Bool { [.lora, .lora_bias, .lora_norm, .ia3_lora].contains(self) }
    /// Whether the method puts an IA3 vector on the target layers.
    public var usesIA3: Bool { [.ia3, .ia3_bias, .ia3_norm, .ia3_lora].contains(self) }
    /// Whether the method adapts Linear layers at all (else it only unfreezes parameters).
    public var usesAdapters: Bool { usesLoRA || usesIA3 }
    /// Whether every bias in scope trains. AutoMM: `*_bias`, `*_norm`, `bit_fit`, `norm_fit`.
    public var trainsBiases: Bool { [.lora_bias, .lora_norm, .ia3_bias, .ia3_norm, .bit_fit, .norm_fit].contains(self) }
    /// Whether the weights and biases of the normalisation layers (LayerNorm, BatchNorm2d) in
    /// scope train. AutoMM: `*_norm`, `norm_fit`.
    public var trainsNorms: Bool { [.lora_norm, .ia3_norm, .norm_fit].contains(self) }
}

/// Settings of `applyPEFT`.
///
/// **Target rule.** A pattern is a regular expression (NSRegularExpression syntax, close to
/// Python's `re`). Without a `.` it is matched at the start of a Linear's own name — the last
/// dotted component of its key (`query` in `encoder.layer.0.attention.self.query`), as AutoMM
/// does with `re.match`; so `query` also matches `query_proj`, and `^q$` only `q`. A pattern
/// containing a `.` is matched against the whole of each dotted suffix of the key (the key
/// itself, and what follows each of its dots), so `output.dense` matches
/// `encoder.layer.0.output.dense` and `encoder.layer.0.attention.output.dense` — the `peft`
/// library's `endswith` rule for a literal.
public struct PEFTOptions: Sendable, Equatable {
    public var method: PEFTMethod
    /// LoRA rank r (≥ 1).
    public var rank: Int
    /// LoRA alpha (> 0); the update is scaled by alpha / r.
    public var alpha: Float
    /// Dropout on LoRA's input, in [0, 1).
    public var dropout: Float
    /// Patterns choosing the Linear layers to adapt. nil: `defaultTargets(for: method)`, which
    /// must match at least one Linear together (AutoMM's list names several architectures'
    /// layers); an explicit list must have every pattern match a Linear in scope.
    public var targets: [String]?
    /// Patterns (same rule) choosing, among the adapted layers, those whose IA3 vector scales
    /// the input rather than the output. nil: `defaultFeedforward(for: method)`.
    public var feedforward: [String]?
    /// Key prefixes under which adapters are put and parameters unfrozen: a key is in scope
    /// when it equals a prefix or continues it after a `.` (`encoder.layer.5` covers
    /// `encoder.layer.5.output.dense.bias`, not `encoder.layer.50`); `""` covers everything.
    /// nil: the whole tree. This is how "only the top N layers" is expressed.
    public var scope: [String]?

    public init(method: PEFTMethod, rank: Int = 8, alpha: Float = 8, dropout: Float = 0,
                targets: [String]? = nil, feedforward: [String]? = nil, scope: [String]? = nil) {
        self.method = method
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.targets = targets
        self.feedforward = feedforward
        self.scope = scope
    }

    /// AutoMM's default `optim.lora.filter`, used for every adapter method (LoRA, IA3 and
    /// IA3-LoRA alike): the attention projections of BERT-like (`query`, `value`) and T5-like
    /// (`q`, `v`, `k`, `o`) encoders.
    public static let autoMMTargets = ["query", "value", "^q$", "^v$", "^k$", "^o$"]

    /// The `peft` library's IA3 defaults for BERT: targets and the feed-forward subset.
    public static let peftBertIA3Targets = ["key", "value", "output.dense"]
    public static let peftBertIA3Feedforward = ["output.dense"]

    /// Default target patterns per method: AutoMM's filter for adapter methods, none for
    /// `bit_fit` and `norm_fit` (they put no adapters).
    public static func defaultTargets(for method: PEFTMethod) -> [String] {
        method.usesAdapters ? autoMMTargets : []
    }

    /// Default feed-forward patterns: none — AutoMM's IA3 scales every adapted layer's output.
    public static func defaultFeedforward(for method: PEFTMethod) -> [String] { [] }
}

/// What `applyPEFT` did.
public struct PEFTReport: Sendable, Equatable {
    public var method: PEFTMethod
    /// Keys of the Linear layers that received adapters, in tree order.
    public var adaptedModules: [String]
    /// Keys of the parameters that now require a gradient, in tree order.
    public var trainableKeys: [String]
    public var trainableParameters: Int
    public var totalParameters: Int
    /// Default target patterns that matched no Linear (allowed for defaults only).
    public var unmatchedTargets: [String]
}

/// A PEFT setting that cannot be applied to this module tree.
public enum PEFTError: Error, CustomStringConvertible, Equatable {
    /// An explicit target (or feed-forward) pattern matched no Linear layer in scope.
    case unmatchedTarget(pattern: String, list: String, linearKeys: [String])
    /// None of the default target patterns matched a Linear layer in scope.
    case noTargets(patterns: [String], linearKeys: [String])
    case invalidPattern(String, reason: String)
    /// The method found no parameter to train in scope (`what` says what it looked for).
    case nothingToTrain(method: PEFTMethod, what: String, searched: [String])
    case invalidRank(Int)
    case invalidAlpha(Float)
    case invalidDropout(Float)
    /// A layer already carries an adapter (merge it with `mergePEFT` first).
    case alreadyAdapted(String)
    /// A scope prefix covers no module of the tree.
    case emptyScope(prefix: String, sample: [String])

    public var description: String {
        switch self {
        case .unmatchedTarget(let pattern, let list, let keys):
            return "PEFT \(list) pattern '\(pattern)' matches no Linear layer\(Self.layers(keys)); a pattern without '.' is matched at the start of a layer's own name (last part of its key), one with '.' against the end of its key — remove the pattern or name one of the layers above"
        case .noTargets(let patterns, let keys):
            return "none of the default PEFT targets \(patterns) matches a Linear layer\(Self.layers(keys)); set the targets explicitly to some of the layers above"
        case .invalidPattern(let p, let reason):
            return "invalid PEFT pattern '\(p)': \(reason); patterns are regular expressions (escape a literal '.' or '(' with '\\')"
        case .nothingToTrain(let method, let what, let searched):
            let sample = searched.prefix(8).map { $0.isEmpty ? "(root)" : $0 }.joined(separator: ", ")
            return "PEFT method '\(method.rawValue)' found no \(what) to train in \(searched.count) module(s) searched (\(sample)\(searched.count > 8 ? ", …" : "")); choose another method (bit_fit trains biases, norm_fit norm layers and biases, lora/ia3 adapt Linear layers) or widen the scope"
        case .invalidRank(let r):
            return "PEFT rank \(r) must be at least 1"
        case .invalidAlpha(let a):
            return "PEFT alpha \(a) must be greater than 0 (the update is scaled by alpha / rank; 8 or the rank are common)"
        case .invalidDropout(let p):
            return "PEFT dropout \(p) must be in [0, 1)"
        case .alreadyAdapted(let key):
            return "Linear '\(key)' already has a PEFT adapter; merge it first (mergePEFT) or apply PEFT once"
        case .emptyScope(let prefix, let sample):
            return "PEFT scope prefix '\(prefix)' covers no module; module keys start like: \(sample.joined(separator: ", "))"
        }
    }

    private static func layers(_ keys: [String]) -> String {
        if keys.isEmpty {
            return " — there are no Linear layers in scope (convolutions are not Linear: use bit_fit or norm_fit on a CNN)"
        }
        var names: [String] = []
        for key in keys {
            let name = key.split(separator: ".").last.map(String.init) ?? key
            if !names.contains(name) { names.append(name) }
        }
        return "; Linear names in scope: \(names.prefix(12).joined(separator: ", "))\(names.count > 12 ? ", …" : "") (e.g. '\(keys[0])')"
    }
}

// MARK: - Applying and merging

/// Freezes every parameter of `module`, then applies `options.method` within `options.scope`:
/// puts adapters on the target Linear layers (their tensors train) and/or unfreezes biases and
/// normalisation layers. Adapter tensors are drawn from `rng` (LoRA's A) and LoRA dropout draws
/// from it too, so the result is a function of the seed. Throws `PEFTError` before changing
/// anything when a setting is invalid or finds nothing to work on.
@discardableResult
public func applyPEFT(_ options: PEFTOptions, to module: Module, rng: RandomSource) throws -> PEFTReport {
    let method = options.method
    if method.usesLoRA {
        guard options.rank >= 1 else { throw PEFTError.invalidRank(options.rank) }
        guard options.alpha > 0, options.alpha.isFinite else { throw PEFTError.invalidAlpha(options.alpha) }
        guard options.dropout >= 0, options.dropout < 1 else { throw PEFTError.invalidDropout(options.dropout) }
    }
    let modules = module.namedModules()
    if let scope = options.scope {
        for prefix in scope where !modules.contains(where: { inScope($0.key, [prefix]) }) {
            throw PEFTError.emptyScope(prefix: prefix, sample: Array(modules.map(\.key).filter { !$0.isEmpty }.prefix(6)))
        }
    }
    let scoped = modules.filter { inScope($0.key, options.scope) }
    let linears = scoped.compactMap { entry in (entry.module as? Linear).map { (key: entry.key, layer: $0) } }

    // Which layers get adapters, and where IA3 scales.
    var targets: [(key: String, layer: Linear, placement: PEFTAdapter.IA3Placement)] = []
    var unmatched: [String] = []
    if method.usesAdapters {
        let explicit = options.targets != nil
        let patterns = try (options.targets ?? PEFTOptions.defaultTargets(for: method)).map(TargetPattern.init)
        var chosen = Set<String>()
        for p in patterns {
            let hits = linears.filter { p.matches(key: $0.key) }
            if hits.isEmpty {
                if explicit { throw PEFTError.unmatchedTarget(pattern: p.source, list: "target", linearKeys: linears.map(\.key)) }
                unmatched.append(p.source)
            }
            chosen.formUnion(hits.map(\.key))
        }
        if chosen.isEmpty { throw PEFTError.noTargets(patterns: patterns.map(\.source), linearKeys: linears.map(\.key)) }
        let ffExplicit = options.feedforward != nil
        let feedforward = try (options.feedforward ?? PEFTOptions.defaultFeedforward(for: method)).map(TargetPattern.init)
        let adapted = linears.filter { chosen.contains($0.key) }
        for p in feedforward where ffExplicit && !adapted.contains(where: { p.matches(key: $0.key) }) {
            throw PEFTError.unmatchedTarget(pattern: p.source, list: "feedforward", linearKeys: adapted.map(\.key))
        }
        for (key, layer) in adapted {
            if layer.adapter != nil { throw PEFTError.alreadyAdapted(key) }
            let ff = feedforward.contains { $0.matches(key: key) }
            targets.append((key, layer, ff ? .input : .output))
        }
    }

    // Parameters unfrozen besides the adapters.
    var unfreeze: [Tensor] = []
    if method.trainsBiases {
        for (_, m) in scoped {
            for p in m.ownParameters where p.name == "bias" { unfreeze.append(p.tensor) }
        }
        if !method.usesAdapters && !method.trainsNorms && unfreeze.isEmpty {
            throw PEFTError.nothingToTrain(method: method, what: "bias", searched: scoped.map(\.key))
        }
    }
    if method.trainsNorms {
        let norms = scoped.filter { $0.module is LayerNorm || $0.module is BatchNorm2d }
        if norms.isEmpty && !method.usesAdapters {
            throw PEFTError.nothingToTrain(method: method, what: "normalisation layer (LayerNorm, BatchNorm2d)", searched: scoped.map(\.key))
        }
        for (_, m) in norms { unfreeze += m.ownParameters.map(\.tensor) }
    }

    // Everything validated: change the tree.
    try module.freeze()
    for t in unfreeze { t.requiresGrad = true }
    for (_, layer, placement) in targets {
        layer.adapter = PEFTAdapter(layer: layer, lora: method.usesLoRA, rank: options.rank, alpha: options.alpha,
                                    dropout: options.dropout, ia3: method.usesIA3 ? placement : nil, rng: rng)
    }
    let params = module.namedParameters()
    let trainable = params.filter(\.tensor.requiresGrad)
    return PEFTReport(method: method, adaptedModules: targets.map(\.key), trainableKeys: trainable.map(\.key),
                      trainableParameters: trainable.reduce(0) { $0 + $1.tensor.count },
                      totalParameters: params.reduce(0) { $0 + $1.tensor.count }, unmatchedTargets: unmatched)
}

/// Folds every PEFT adapter in `module` into its Linear's weight and bias and removes it, so
/// the tree computes the same function as a plain network (up to rounding) and its state dict
/// holds only the base keys again. Returns how many layers were merged. Run it outside
/// training; the merged weights keep their (frozen) gradient setting.
@discardableResult
public func mergePEFT(in module: Module) throws -> Int {
    var merged = 0
    for (_, m) in module.namedModules() {
        guard let layer = m as? Linear, let adapter = layer.adapter as? PEFTAdapter else { continue }
        adapter.merge(into: layer)
        merged += 1
    }
    return merged
}

// MARK: - Matching

/// Whether `key` lies under one of the prefixes (nil: everywhere).
func inScope(_ key: String, _ scope: [String]?) -> Bool {
    guard let scope else { return true }
    return scope.contains { $0.isEmpty || key == $0 || key.hasPrefix($0 + ".") }
}

/// A target pattern compiled once (see `PEFTOptions` for the rule).
struct TargetPattern {
    let source: String
    /// Without '.': the pattern itself, used anchored at the start of the name. With '.':
    /// `^(?:pattern)$`, used on each dotted suffix of the key.
    let regex: NSRegularExpression
    let wholeKey: Bool

    init(_ source: String) throws {
        wholeKey = source.contains(".")
        do {
            _ = try NSRegularExpression(pattern: source)
            regex = try NSRegularExpression(pattern: wholeKey ? "^(?:" + source + ")$" : source)
        } catch {
            throw PEFTError.invalidPattern(source, reason: error.localizedDescription)
        }
        self.source = source
    }

    func matches(key: String) -> Bool {
        if !wholeKey {
            let name = key.split(separator: ".").last.map(String.init) ?? key
            return regex.firstMatch(in: name, options: .anchored, range: NSRange(name.startIndex..., in: name)) != nil
        }
        // Every dotted suffix: the key, then what follows each '.'.
        var starts = [key.startIndex]
        for i in key.indices where key[i] == "." { starts.append(key.index(after: i)) }
        for s in starts {
            let suffix = String(key[s...])
            let range = NSRange(suffix.startIndex..., in: suffix)
            if regex.firstMatch(in: suffix, range: range) != nil { return true }
        }
        return false
    }
}
