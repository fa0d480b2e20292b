import TensorEngine

/// The adapters `applyPEFT` puts on a `Linear`: a LoRA update, an IA3 scaling vector, or both
/// (AutoMM's `ia3_lora`). Definitions follow the `peft` library (LoRA, IA3) and AutoMM's
/// `IA3LoRALinear` (both at once):
///
/// - LoRA: `y = x·Wᵀ + b + (dropout(x)·Aᵀ·Bᵀ)·(alpha/r)`, A [r, in], B [out, r]; dropout on the
///   adapter path only.
/// - IA3 on the output: `y = (x·Wᵀ + b) ⊙ l`, l [out]; on the input (feed-forward layers):
///   `y = (x ⊙ l)·Wᵀ + b`, l [in].
/// - Both: the LoRA update counts as part of the layer, so the output form is
///   `(x·Wᵀ + b + Δ(x)) ⊙ l` (AutoMM's order) and the input form `(x ⊙ l)·Wᵀ + b + Δ(x ⊙ l)`.
///
/// The tensors are registered on the layer as `lora_A.weight`, `lora_B.weight` and `ia3_l`,
/// so they are saved and loaded with its weight and bias. `merge(into:)` folds them into the
/// weight and bias, after which the layer computes the same function without them.
public final class PEFTAdapter: LinearAdapter {
    /// The low-rank update.
    public struct LoRA {
        /// A [r, in], Kaiming-uniform (a = √5) at creation.
        public let a: Tensor
        /// B [out, r], zeros at creation, so a new adapter leaves the layer unchanged.
        public let b: Tensor
        /// alpha / r.
        public let scaling: Float
        /// Dropout probability on the adapter's input, in training mode only.
        public let dropout: Float
    }

    /// Where an IA3 vector scales: the layer's output (`l` [out]) or its input (`l` [in]).
    public enum IA3Placement: String, Sendable, Equatable {
        case output, input
    }

    public let lora: LoRA?
    /// The IA3 vector (ones at creation), or nil.
    public let ia3: Tensor?
    public let ia3Placement: IA3Placement
    let rng: RandomSource

    /// Parameter names on the layer, as `peft` names them (without its adapter-name suffix).
    public static let loraAName = "lora_A.weight", loraBName = "lora_B.weight", ia3Name = "ia3_l"

    /// Creates the adapter for `layer` and registers its tensors on it (trainable). `rank` and
    /// `alpha` are used when `lora` is true; `ia3` places a scaling vector. The caller validates
    /// the settings (`applyPEFT` does).
    init(layer: Linear, lora: Bool, rank: Int, alpha: Float, dropout: Float, ia3: IA3Placement?, rng: RandomSource) {
        self.rng = rng
        if lora {
            let bound = 1 / Float(max(layer.inFeatures, 1)).squareRoot()
            let a = Tensor.parameter(Tensor.uniform([rank, layer.inFeatures], low: -bound, high: bound, rng: &rng.generator))
            let b = Tensor.parameter(Tensor.zeros([layer.outFeatures, rank]))
            self.lora = LoRA(a: a, b: b, scaling: alpha / Float(rank), dropout: dropout)
            layer.register(parameter: Self.loraAName, a)
            layer.register(parameter: Self.loraBName, b)
        } else {
            self.lora = nil
        }
        ia3Placement = ia3 ?? .output
        if let ia3 {
            let l = Tensor.parameter(Tensor.ones([ia3 == .input ? layer.inFeatures : layer.outFeatures]))
            self.ia3 = l
            layer.register(parameter: Self.ia3Name, l)
        } else {
            self.ia3 = nil
        }
    }

    public func forward(_ x: Tensor, through layer: Linear) throws -> Tensor {
        var input = x
        if let l = ia3, ia3Placement == .input { input = try mul(x, l) }
        var y: Tensor
        if let lora {
            // One op for base and update (`lowRankLinear`): no [rows, out] intermediates kept.
            let dropped = try dropout(input, p: lora.dropout, training: layer.isTraining, rng: &rng.generator)
            y = try lowRankLinear(input, weight: layer.weight, bias: layer.bias, adapterInput: dropped,
                                  down: lora.a, up: lora.b, scale: lora.scaling)
        } else {
            y = try linear(input, weight: layer.weight, bias: layer.bias)
        }
        if let l = ia3, ia3Placement == .output { y = try mul(y, l) }
        return y
    }

    /// Folds the adapter into `layer`'s weight and bias (contiguous, as parameters are) and
    /// unregisters its tensors:
    /// W += (alpha/r)·B·A, then W ← diag(l)·W and b ← l ⊙ b (output) or W ← W·diag(l) (input).
    func merge(into layer: Linear) {
        let outF = layer.outFeatures, inF = layer.inFeatures
        let w = layer.weight.data
        if let lora {
            let r = lora.a.shape[0]
            let a = lora.a.toArray(), b = lora.b.toArray()
            for o in 0..<outF {
                let row = w + o * inF
                for k in 0..<r {
                    let c = lora.scaling * b[o * r + k]
                    if c == 0 { continue }
                    for i in 0..<inF { row[i] += c * a[k * inF + i] }
                }
            }
            layer.unregister(parameter: Self.loraAName)
            layer.unregister(parameter: Self.loraBName)
        }
        if let ia3 {
            let l = ia3.toArray()
            switch ia3Placement {
            case .output:
                for o in 0..<outF {
                    let row = w + o * inF
                    for i in 0..<inF { row[i] *= l[o] }
                }
                if let bias = layer.bias {
                    for o in 0..<outF { bias.data[o] *= l[o] }
                }
            case .input:
                for o in 0..<outF {
                    let row = w + o * inF
                    for i in 0..<inF { row[i] *= l[i] }
                }
            }
            layer.unregister(parameter: Self.ia3Name)
        }
        layer.adapter = nil
    }
}
