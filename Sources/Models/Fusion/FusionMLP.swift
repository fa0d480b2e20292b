// AutoGluon-Multimodal's late-fusion MLP (`MultimodalFusionMLP`,
// autogluon/multimodal/models/fusion/fusion_mlp.py; its unit in models/mlp.py).
//
// Each backbone's features [B, dᵢ] pass an adapter Linear(dᵢ → max dᵢ or min dᵢ; none when
// `adapt_in_features` is unset), are concatenated, and go through one unit per hidden size —
// LayerNorm → Linear → activation → dropout, in that order — then a Linear head. With
// `aux_loss_weight` each backbone also has its own Linear head on its (un-adapted) features, the
// counterpart of the per-model heads whose logits AutoMM returns beside the fused ones.
// Initialisation as AutoMM's `init_weights`: every Linear Xavier-uniform with zero bias, layer
// norms (1, 0).
//
// Parameter keys: `adapters.<i>.*`, `mlp.<j>.norm.{weight,bias}`, `mlp.<j>.fc.{weight,bias}`,
// `head.{weight,bias}`, `aux_heads.<i>.*`, `missing.<i>`.
import Layers
import TensorEngine

/// One fusion MLP unit: `dropout(activation(fc(norm(x))))`.
final class FusionMLPUnit: Module {
    let norm: LayerNorm
    let fc: Linear
    let activation: Activation
    let drop: Dropout

    init(_ inFeatures: Int, _ outFeatures: Int, activation: Activation, dropout: Float, rng: RandomSource) {
        norm = LayerNorm(inFeatures)
        fc = xavierLinear(inFeatures, outFeatures, rng: rng)
        self.activation = activation
        drop = Dropout(dropout, rng: rng)
        super.init()
        register(child: "norm", norm)
        register(child: "fc", fc)
        register(child: "dropout", drop)
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        try drop(try activation.apply(try fc(try norm(x))))
    }
}

/// Late fusion by concatenation and an MLP (AutoMM's `fusion_mlp`).
public final class FusionMLP: Module, FusionModule {
    public let config: FusionMLPConfig
    public let inputWidths: [Int]
    public let outputs: Int
    let inputs: FusionInputs
    let units: [FusionMLPUnit]
    let head: Linear

    public var auxLossWeight: Float? { config.auxLossWeight }

    /// Builds the module for backbones with feature widths `inputWidths`; throws a
    /// `FusionError` naming the setting to change when the config cannot work with them.
    public init(_ config: FusionMLPConfig, inputWidths: [Int], outputs: Int, rng: RandomSource) throws {
        try config.validate(inputWidths: inputWidths)
        guard outputs > 0 else {
            throw FusionError.invalidConfig(fusion: "fusion_mlp", field: "outputs", detail: "\(outputs) must be positive (classes, or 1 for regression)")
        }
        self.config = config
        self.inputWidths = inputWidths
        self.outputs = outputs
        inputs = FusionInputs(widths: inputWidths, adaptedWidth: config.adaptInFeatures.width(for: inputWidths), outputs: outputs,
                              aux: config.auxLossWeight != nil, modalityDropout: config.modalityDropout, rng: rng)
        var width = config.concatenatedWidth(inputWidths: inputWidths)
        var us: [FusionMLPUnit] = []
        for h in config.hiddenSizes {
            us.append(FusionMLPUnit(width, h, activation: config.activation, dropout: config.dropout, rng: rng))
            width = h
        }
        units = us
        head = xavierLinear(width, outputs, rng: rng)
        super.init()
        inputs.register(on: self)
        for (j, u) in units.enumerated() { register(child: "mlp.\(j)", u) }
        register(child: "head", head)
    }

    public func logits(features: [Tensor]) throws -> FusionLogits {
        let (adapted, aux) = try inputs(features, fusion: "fusion_mlp")
        var h = adapted.count == 1 ? adapted[0] : try concat(adapted, axis: 1)
        for u in units { h = try u(h) }
        return (try head(h), aux)
    }
}
