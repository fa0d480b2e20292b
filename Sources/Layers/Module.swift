import Foundation
import TensorEngine

/// Errors about a module tree: loading weights, key patterns.
public enum ModuleError: Error, CustomStringConvertible, Equatable {
    case missingKeys([String])
    case unusedKeys([String])
    case shapeMismatch(key: String, model: [Int], checkpoint: [Int])
    case badPattern(String, reason: String)

    public var description: String {
        switch self {
        case .missingKeys(let keys):
            return "weights missing for \(keys.count) parameter(s): \(keys.prefix(8).joined(separator: ", "))\(keys.count > 8 ? ", …" : "")"
        case .unusedKeys(let keys):
            return "\(keys.count) tensor(s) in the checkpoint match no parameter: \(keys.prefix(8).joined(separator: ", "))\(keys.count > 8 ? ", …" : "")"
        case .shapeMismatch(let key, let model, let ckpt):
            return "'\(key)': model expects \(shapeString(model)) but the checkpoint holds \(shapeString(ckpt))"
        case .badPattern(let p, let reason):
            return "invalid parameter pattern '\(p)': \(reason)"
        }
    }
}

/// A node in a tree of layers. Parameters and buffers are registered under names that join into
/// dotted keys equal to PyTorch/Hugging Face checkpoint names
/// (`encoder.layer.0.attention.self.query.weight`), so loading a checkpoint needs no rename
/// table. Parameters are `Tensor`s updated in place, so references held by optimizers stay valid.
open class Module {
    public private(set) var children: [(name: String, module: Module)] = []
    public private(set) var ownParameters: [(name: String, tensor: Tensor)] = []
    public private(set) var ownBuffers: [(name: String, tensor: Tensor)] = []
    /// Training mode (dropout active, batch norm uses batch statistics).
    public private(set) var isTraining = true

    public init() {}

    // MARK: Registration (called from subclasses' initialisers)

    public func register(parameter name: String, _ t: Tensor) {
        ownParameters.append((name, t))
    }

    public func register(buffer name: String, _ t: Tensor) {
        ownBuffers.append((name, t))
    }

    @discardableResult
    public func register<M: Module>(child name: String, _ m: M) -> M {
        children.append((name, m))
        return m
    }

    /// Takes the parameter registered under `name` out of this module (its key leaves
    /// `namedParameters` and `stateDict`); returns it, or nil when there is none.
    @discardableResult
    public func unregister(parameter name: String) -> Tensor? {
        guard let i = ownParameters.firstIndex(where: { $0.name == name }) else { return nil }
        return ownParameters.remove(at: i).tensor
    }

    /// Takes the child registered under `name` out of this module; returns it, or nil.
    @discardableResult
    public func unregister(child name: String) -> Module? {
        guard let i = children.firstIndex(where: { $0.name == name }) else { return nil }
        return children.remove(at: i).module
    }

    // MARK: Traversal

    /// Every parameter with its dotted key, depth first in registration order.
    public func namedParameters(prefix: String = "") -> [(key: String, tensor: Tensor)] {
        var out = ownParameters.map { (key: prefix + $0.name, tensor: $0.tensor) }
        for c in children { out += c.module.namedParameters(prefix: prefix + c.name + ".") }
        return out
    }

    public func namedBuffers(prefix: String = "") -> [(key: String, tensor: Tensor)] {
        var out = ownBuffers.map { (key: prefix + $0.name, tensor: $0.tensor) }
        for c in children { out += c.module.namedBuffers(prefix: prefix + c.name + ".") }
        return out
    }

    public func namedModules(prefix: String = "") -> [(key: String, module: Module)] {
        var out: [(key: String, module: Module)] = [(prefix.isEmpty ? "" : String(prefix.dropLast()), self)]
        for c in children { out += c.module.namedModules(prefix: prefix + c.name + ".") }
        return out
    }

    public var parameters: [Tensor] { namedParameters().map(\.tensor) }
    public var trainableParameters: [Tensor] { parameters.filter(\.requiresGrad) }

    /// Parameters and buffers: everything a checkpoint holds.
    public func stateDict() -> [(key: String, tensor: Tensor)] { namedParameters() + namedBuffers() }

    public func parameterCount(trainableOnly: Bool = false) -> Int {
        parameters.filter { !trainableOnly || $0.requiresGrad }.reduce(0) { $0 + $1.count }
    }

    // MARK: Modes

    public func train(_ on: Bool = true) {
        isTraining = on
        for c in children { c.module.train(on) }
    }

    public func eval() { train(false) }

    /// Stops (or restarts) gradients for parameters whose dotted key matches the regular
    /// expression `pattern` (searched anywhere in the key). Returns the keys that matched.
    @discardableResult
    public func setTrainable(_ trainable: Bool, matching pattern: String) throws -> [String] {
        let regex: NSRegularExpression
        do { regex = try NSRegularExpression(pattern: pattern) } catch {
            throw ModuleError.badPattern(pattern, reason: "\(error.localizedDescription)")
        }
        var matched: [String] = []
        for (key, t) in namedParameters() {
            let range = NSRange(key.startIndex..., in: key)
            if regex.firstMatch(in: key, range: range) != nil {
                t.requiresGrad = trainable
                matched.append(key)
            }
        }
        return matched
    }

    public func freeze(matching pattern: String = ".*") throws { try setTrainable(false, matching: pattern) }
    public func unfreeze(matching pattern: String = ".*") throws { try setTrainable(true, matching: pattern) }

    /// Copies tensors into parameters and buffers by dotted key. Strict by default: every model
    /// key must be present, every given key used (except those `ignoring` matches), shapes equal.
    public func load(_ tensors: [String: Tensor], strict: Bool = true, ignoring: Set<String> = []) throws {
        let state = stateDict()
        var missing: [String] = []
        for (key, t) in state {
            guard let src = tensors[key] else { missing.append(key); continue }
            guard src.shape == t.shape else { throw ModuleError.shapeMismatch(key: key, model: t.shape, checkpoint: src.shape) }
        }
        if strict && !missing.isEmpty { throw ModuleError.missingKeys(missing) }
        let known = Set(state.map(\.key))
        let unused = tensors.keys.filter { !known.contains($0) && !ignoring.contains($0) }.sorted()
        if strict && !unused.isEmpty { throw ModuleError.unusedKeys(unused) }
        for (key, t) in state {
            guard let src = tensors[key] else { continue }
            let contiguous = src.clone()
            withExtendedLifetime(contiguous) { t.data.update(from: contiguous.data, count: t.count) }
        }
    }
}
