import Foundation
import TensorEngine

/// Replaces what a `Linear` computes, given the layer (PEFT adapters in `Layers/PEFT`: LoRA,
/// IA3). The adapter's parameters are registered on the layer itself, so their keys sit beside
/// `weight` and `bias`.
public protocol LinearAdapter: AnyObject {
    func forward(_ x: Tensor, through layer: Linear) throws -> Tensor
}

/// `y = x·Wᵀ + b`, weight [out, in]; initialised like PyTorch (Kaiming-uniform, a = √5).
/// With an `adapter`, the adapter computes the output instead (see `applyPEFT`).
public final class Linear: Module {
    public let weight: Tensor
    public let bias: Tensor?
    public let inFeatures: Int, outFeatures: Int
    public var adapter: (any LinearAdapter)?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, rng: RandomSource) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        let bound = 1 / Float(max(inFeatures, 1)).squareRoot()
        weight = Tensor.parameter(Tensor.uniform([outFeatures, inFeatures], low: -bound, high: bound, rng: &rng.generator))
        self.bias = bias ? Tensor.parameter(Tensor.uniform([outFeatures], low: -bound, high: bound, rng: &rng.generator)) : nil
        super.init()
        register(parameter: "weight", weight)
        if let b = self.bias { register(parameter: "bias", b) }
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        if let adapter { return try adapter.forward(x, through: self) }
        return try linear(x, weight: weight, bias: bias)
    }
}

/// A lookup table [count, dim]; initialised N(0, 1) like PyTorch.
public final class Embedding: Module {
    public let weight: Tensor

    public init(_ count: Int, _ dim: Int, rng: RandomSource) {
        weight = Tensor.parameter(Tensor.normal([count, dim], rng: &rng.generator))
        super.init()
        register(parameter: "weight", weight)
    }

    /// Rows for `ids`, shaped `shape + [dim]`.
    public func callAsFunction(_ ids: [Int], shape: [Int]) throws -> Tensor {
        let rows = try indexSelect(weight, axis: 0, indices: ids)
        return try rows.reshaped(shape + [weight.shape[1]])
    }
}

/// Layer norm over the last dimension with learned scale and shift.
public final class LayerNorm: Module {
    public let weight: Tensor
    public let bias: Tensor
    public let eps: Float

    public init(_ dim: Int, eps: Float = 1e-5) {
        self.eps = eps
        weight = Tensor.parameter(Tensor.ones([dim]))
        bias = Tensor.parameter(Tensor.zeros([dim]))
        super.init()
        register(parameter: "weight", weight)
        register(parameter: "bias", bias)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try layerNorm(x, weight: weight, bias: bias, eps: eps) }
}

/// Inverted dropout, active in training mode only; draws from the model's `RandomSource`.
public final class Dropout: Module {
    public let p: Float
    let rng: RandomSource

    public init(_ p: Float, rng: RandomSource) {
        self.p = p
        self.rng = rng
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try dropout(x, p: p, training: isTraining, rng: &rng.generator)
    }
}

public enum Activation: String, Codable, Sendable, CaseIterable {
    case relu, gelu, gelu_tanh, silu, tanh, sigmoid, leaky_relu, identity

    public func apply(_ x: Tensor) throws -> Tensor {
        switch self {
        case .relu: return try TensorEngine.relu(x)
        case .gelu: return try TensorEngine.gelu(x)
        case .gelu_tanh: return try TensorEngine.gelu(x, approximate: .tanh)
        case .silu: return try TensorEngine.silu(x)
        case .tanh: return try TensorEngine.tanh(x)
        case .sigmoid: return try TensorEngine.sigmoid(x)
        case .leaky_relu: return try TensorEngine.leakyRelu(x)
        case .identity: return x
        }
    }
}

/// Linear → activation → (dropout) blocks, then a final linear: `layers.0`, `layers.1`, ….
public final class MLP: Module {
    public let layers: [Linear]
    public let activation: Activation
    let drop: Dropout?

    public init(_ sizes: [Int], activation: Activation = .relu, dropout: Float = 0, rng: RandomSource) throws {
        guard sizes.count >= 2, sizes.allSatisfy({ $0 > 0 }) else {
            throw TensorError.invalidArgument(op: "MLP", detail: "sizes \(sizes) need an input and an output size, all positive")
        }
        self.activation = activation
        var ls: [Linear] = []
        for i in 0..<(sizes.count - 1) { ls.append(Linear(sizes[i], sizes[i + 1], rng: rng)) }
        layers = ls
        drop = dropout > 0 ? Dropout(dropout, rng: rng) : nil
        super.init()
        for (i, l) in layers.enumerated() { register(child: "layers.\(i)", l) }
        // Registered so train()/eval() reach it; it holds no parameters, so checkpoint keys are unchanged.
        if let drop { register(child: "dropout", drop) }
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        var h = x
        for (i, l) in layers.enumerated() {
            h = try l(h)
            if i < layers.count - 1 {
                h = try activation.apply(h)
                if let drop { h = try drop(h) }
            }
        }
        return h
    }
}
