import Layers
import Models
import TensorEngine
import Training

/// Everything needed to rebuild a trained network before loading its weights; saved as
/// `model/model.json` in a run.
struct NetworkConfig: Codable, Equatable {
    enum Backbone: Codable, Equatable {
        case mlp(TabularMLPConfig)
        case ftTransformer(FTTransformerConfig)
    }

    var backbone: Backbone
    /// Hidden widths of the fusion MLP over the backbone features (empty: head reads them directly).
    var fusionHidden: [Int]
    var fusionDropout: Float
    var schema: TabularSchema
    var problem: ProblemType
    /// Logits (classes) or 1 for regression.
    var outputs: Int
    /// Seeds initialisation and dropout.
    var seed: UInt64
}

/// Backbone → fusion MLP → task head. Parameter keys: `backbone.*`, `fusion.<i>.*`, `head.*`.
final class TabularNetwork: Module {
    let config: NetworkConfig
    let backbone: any TabularBackbone
    let fusion: [Linear]
    let fusionActivation: Activation = .relu
    let fusionDropout: Dropout?
    let head: TaskHead

    init(_ config: NetworkConfig) throws {
        self.config = config
        let rng = RandomSource(seed: config.seed)
        switch config.backbone {
        case .mlp(let c): backbone = try TabularMLP(c, schema: config.schema, rng: rng)
        case .ftTransformer(let c): backbone = try FTTransformer(c, schema: config.schema, rng: rng)
        }
        var width = backbone.outputDim
        var layers: [Linear] = []
        for h in config.fusionHidden {
            layers.append(Linear(width, h, rng: rng))
            width = h
        }
        fusion = layers
        fusionDropout = config.fusionDropout > 0 && !layers.isEmpty ? Dropout(config.fusionDropout, rng: rng) : nil
        head = try TaskHead(inputDim: width,
                            kind: config.problem == .regression ? .regression : .classification(classes: config.outputs),
                            rng: rng)
        super.init()
        register(child: "backbone", backbone)
        for (i, l) in fusion.enumerated() { register(child: "fusion.\(i)", l) }
        register(child: "head", head)
    }

    /// Logits `[B, outputs]`.
    func logits(numeric: Tensor?, categorical: [Int32]) throws -> Tensor {
        var h = try backbone.forward(numeric: numeric, categorical: categorical)
        for l in fusion {
            h = try fusionActivation.apply(try l(h))
            if let fusionDropout { h = try fusionDropout(h) }
        }
        return try head(h)
    }

    /// The training loss of a batch: cross-entropy over class indices, or MSE on standardised targets.
    func loss(_ logits: Tensor, targets: [Float]) throws -> Tensor {
        switch config.problem {
        case .binary, .multiclass: return try head.loss(logits, classes: targets.map { Int($0) })
        case .regression: return try head.loss(logits, values: targets)
        }
    }
}
