// An MLP over embedded categorical columns and numeric features, AutoGluon-Multimodal's
// `CategoricalMLP` + `NumericalMLP` collapsed into one network (one embedding per categorical
// column, concatenated with the numeric block, then pre-normalised Linear → activation →
// dropout units like AutoMM's `Unit`).
// References: autogluon/multimodal/models/mlp.py (Unit: norm → fc → act → dropout);
// embedding sizes from fastai's `emb_sz_rule`
// (https://github.com/fastai/fastai/blob/master/fastai/tabular/model.py), capped at 32.
//
// Parameter keys: `embeddings.<column>.weight`, `norms.<i>.{weight,bias[,running_mean,running_var]}`
// (when normalisation is on), `layers.<i>.{weight,bias}`.
import Foundation
import Layers
import TensorEngine

/// Settings of `TabularMLP`. Decoded from the pipeline file with snake_case keys; absent keys take
/// the defaults of `init()`.
public struct TabularMLPConfig: Codable, Sendable, Equatable {
    /// Normalisation applied to each hidden unit's input.
    public enum Normalization: String, Codable, Sendable, CaseIterable {
        case off = "none"
        case layerNorm = "layer_norm"
        /// Batch statistics in training, running statistics in eval (PyTorch's `BatchNorm1d`).
        case batchNorm = "batch_norm"
    }

    /// Widths of the hidden layers; the last is the output width. Empty: the backbone returns the
    /// concatenated embeddings and numeric features.
    public var hidden: [Int]
    public var dropout: Float
    public var activation: Activation
    /// One embedding width for every categorical column; nil applies `embeddingDim(cardinality:)`
    /// per column.
    public var embeddingDim: Int?
    public var normalization: Normalization

    public init(hidden: [Int] = [128, 128], dropout: Float = 0.1, activation: Activation = .relu,
                embeddingDim: Int? = nil, normalization: Normalization = .off) {
        self.hidden = hidden
        self.dropout = dropout
        self.activation = activation
        self.embeddingDim = embeddingDim
        self.normalization = normalization
    }

    enum CodingKeys: String, CodingKey {
        case hidden, dropout, activation
        case embeddingDim = "embedding_dim"
        case normalization
    }

    public init(from decoder: Decoder) throws {
        let defaults = TabularMLPConfig()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        hidden = try c.decodeIfPresent([Int].self, forKey: .hidden) ?? defaults.hidden
        dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? defaults.dropout
        activation = try c.decodeIfPresent(Activation.self, forKey: .activation) ?? defaults.activation
        embeddingDim = try c.decodeIfPresent(Int.self, forKey: .embeddingDim) ?? defaults.embeddingDim
        normalization = try c.decodeIfPresent(Normalization.self, forKey: .normalization) ?? defaults.normalization
    }

    /// fastai's embedding-size rule capped at 32: `min(32, round(1.6 · cardinality^0.56))`, at least 1.
    public static func embeddingDim(cardinality: Int) -> Int {
        let rule = (1.6 * pow(Double(max(cardinality, 1)), 0.56)).rounded(.toNearestOrEven)
        return max(1, min(32, Int(rule)))
    }

    /// The embedding width of each categorical column.
    public func embeddingDims(for cardinalities: [Int]) -> [Int] {
        cardinalities.map { embeddingDim ?? Self.embeddingDim(cardinality: $0) }
    }

    /// Throws on non-positive widths or a dropout outside [0, 1).
    public func validate() throws {
        for (i, w) in hidden.enumerated() where w < 1 {
            throw TabularModelError.invalidConfig(model: "tabular_mlp", field: "hidden", detail: "layer \(i) has width \(w); widths must be positive")
        }
        guard dropout >= 0 && dropout < 1 else {
            throw TabularModelError.invalidConfig(model: "tabular_mlp", field: "dropout", detail: "\(dropout) must be in [0, 1)")
        }
        if let d = embeddingDim, d < 1 {
            throw TabularModelError.invalidConfig(model: "tabular_mlp", field: "embedding_dim", detail: "\(d) must be positive (or absent for the per-column rule)")
        }
    }
}

/// Embeds each categorical column, concatenates the embeddings after the numeric features, and
/// runs `[norm →] Linear → activation → dropout` per hidden layer. Output `[B, outputDim]`.
public final class TabularMLP: Module, TabularBackbone {
    public let config: TabularMLPConfig
    public let schema: TabularSchema
    public let embeddings: [Embedding]
    public let layers: [Linear]
    let norms: [MLPInputNorm]
    let drop: Dropout
    /// Width of the concatenated input: numeric columns plus every embedding width.
    public let inputDim: Int
    public let outputDim: Int

    /// Builds the network; weights drawn from `rng` in registration order (embeddings N(0, 1),
    /// linears PyTorch's Kaiming-uniform).
    public init(_ config: TabularMLPConfig, schema: TabularSchema, rng: RandomSource) throws {
        try config.validate()
        try schema.validate()
        self.config = config
        self.schema = schema
        let dims = config.embeddingDims(for: schema.cardinalities)
        embeddings = zip(schema.cardinalities, dims).map { Embedding($0, $1, rng: rng) }
        inputDim = schema.numericCount + dims.reduce(0, +)
        var width = inputDim
        var ls: [Linear] = [], ns: [MLPInputNorm] = []
        for w in config.hidden {
            switch config.normalization {
            case .off: break
            case .layerNorm: ns.append(.layer(LayerNorm(width)))
            case .batchNorm: ns.append(.batch(BatchNorm2d(width)))
            }
            ls.append(Linear(width, w, rng: rng))
            width = w
        }
        layers = ls
        norms = ns
        outputDim = width
        drop = Dropout(config.dropout, rng: rng)
        super.init()
        for (i, e) in embeddings.enumerated() { register(child: "embeddings.\(i)", e) }
        for (i, n) in norms.enumerated() { register(child: "norms.\(i)", n.module) }
        for (i, l) in layers.enumerated() { register(child: "layers.\(i)", l) }
        register(child: "dropout", drop)
    }

    public func forward(numeric: Tensor?, categorical: [Int]) throws -> Tensor {
        let batch = try schema.batch(numeric: numeric, categorical: categorical)
        var parts: [Tensor] = []
        if let n = batch.numeric { parts.append(n) }
        for (j, e) in embeddings.enumerated() {
            parts.append(try e(batch.column(j, of: embeddings.count), shape: [batch.size]))
        }
        var h = parts.count == 1 ? parts[0] : try concat(parts, axis: 1)
        for (i, layer) in layers.enumerated() {
            if !norms.isEmpty { h = try norms[i](h) }
            h = try drop(try config.activation.apply(try layer(h)))
        }
        return h
    }
}

/// A hidden unit's input normalisation.
enum MLPInputNorm {
    case layer(LayerNorm)
    /// `BatchNorm1d` semantics through the NCHW kernel on a [B, F, 1, 1] view.
    case batch(BatchNorm2d)

    var module: Module {
        switch self {
        case .layer(let m): return m
        case .batch(let m): return m
        }
    }

    /// x: [B, F].
    func callAsFunction(_ x: Tensor) throws -> Tensor {
        switch self {
        case .layer(let ln):
            return try ln(x)
        case .batch(let bn):
            let (b, f) = (x.shape[0], x.shape[1])
            if bn.isTraining && b < 2 {
                throw TabularModelError.invalidConfig(model: "tabular_mlp", field: "normalization",
                                                      detail: "batch_norm needs at least 2 rows per training batch, got \(b)")
            }
            return try bn(try x.reshaped([b, f, 1, 1])).reshaped([b, f])
        }
    }
}
