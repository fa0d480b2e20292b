import Foundation
import TensorEngine
import Layers
import Training

// The workloads, each mirrored one to one by benchmarks/reference/torch_bench.py: same shapes,
// same layer order, same dropout, same optimizer and hyperparameters, same FLOP formula.
// FLOPs count matrix products and convolutions only (2·M·N·K); a training step counts three
// times the forward products (forward, input gradient, weight gradient).

/// Every workload name the bench knows, in the order the harness runs them.
let workloadNames = ["sgemm", "mlp-train", "encoder-forward", "encoder-train", "resnet18-train-64", "resnet18-train-224",
                     "resnet18-forward-64", "resnet18-forward-224", "mobilenetv2-forward-64", "mobilenetv2-forward-224",
                     "mobilenetv2-train-64", "mobilenetv2-train-224", "mobilenetv2-frozen-5ep", "decode-jpeg-224", "decode-png-224",
                     "minilm-forward-128", "minilm-forward-32", "minilm-finetune", "minilm-frozen-5ep", "minilm-lora", "multimodal-epoch",
                     "tokenize"]

func makeWorkload(_ name: String) throws -> Workload {
    switch name {
    case "sgemm": return sgemmWorkload()
    case "mlp-train": return mlpTrainWorkload()
    case "encoder-forward": return encoderWorkload(training: false)
    case "encoder-train": return encoderWorkload(training: true)
    case "resnet18-train-64": return try resnetWorkload(imageSize: 64)
    case "resnet18-train-224": return try resnetWorkload(imageSize: 224)
    case "resnet18-forward-64": return resnetForwardWorkload(imageSize: 64)
    case "resnet18-forward-224": return resnetForwardWorkload(imageSize: 224)
    case "mobilenetv2-forward-64": return mobileNetV2ForwardWorkload(imageSize: 64)
    case "mobilenetv2-forward-224": return mobileNetV2ForwardWorkload(imageSize: 224)
    case "mobilenetv2-train-64": return mobileNetV2TrainWorkload(imageSize: 64)
    case "mobilenetv2-train-224": return mobileNetV2TrainWorkload(imageSize: 224)
    case "mobilenetv2-frozen-5ep": return mobileNetV2FrozenEpochsWorkload()
    case "decode-jpeg-224": return decodeWorkload(format: "jpeg")
    case "decode-png-224": return decodeWorkload(format: "png")
    case "minilm-forward-128": return miniLMForwardWorkload(tokens: 128)
    case "minilm-forward-32": return miniLMForwardWorkload(tokens: 32)
    case "minilm-finetune": return miniLMFineTuneWorkload()
    case "minilm-lora": return miniLMLoRAWorkload()
    case "minilm-frozen-5ep": return miniLMFrozenEpochsWorkload()
    case "multimodal-epoch": return multimodalEpochWorkload()
    case "tokenize": return tokenizeWorkload()
    default: throw BenchError.unknownWorkload(name)
    }
}

enum BenchError: Error, CustomStringConvertible {
    case unknownWorkload(String)
    case unavailable(String)
    case usage(String)

    var description: String {
        switch self {
        case .unknownWorkload(let n): return "unknown workload '\(n)'; known: \(workloadNames.joined(separator: ", "))"
        case .unavailable(let why): return why
        case .usage(let why): return why
        }
    }
}

/// Fixed pseudo-random class labels (the same on every run; both sides use `i*7 % classes`
/// so the label pattern, not only the shapes, agrees).
func labels(_ n: Int, classes: Int) -> [Int] { (0..<n).map { ($0 * 7 + 3) % classes } }

// MARK: - sgemm

/// One 1024×1024×1024 product through `gemm`, 10 calls per timed run.
func sgemmWorkload(size n: Int = 1024) -> Workload {
    Workload(name: "sgemm", unitName: "call", flopsPerUnit: 2 * Double(n * n * n), unitsPerRun: 10,
             notes: ["shape": "\(n)x\(n)x\(n)"]) {
        let a = Tensor.uniform([n, n], low: -1, high: 1, rng: &globalRNG.generator)
        let b = Tensor.uniform([n, n], low: -1, high: 1, rng: &globalRNG.generator)
        let c = Tensor(uninitialized: [n, n])
        return {
            withExtendedLifetime((a, b, c)) {
                gemm(transA: false, transB: false, m: n, n: n, k: n, a: a.data, lda: n, b: b.data, ldb: n, c: c.data, ldc: n)
            }
        }
    }
}

let globalRNG = RandomSource(seed: 1234)

// MARK: - MLP

/// MLP 64→256→256→2 (ReLU), batch 256, cross-entropy, AdamW (lr 1e-3, wd 0.01). One unit is one
/// optimizer step; a timed run is 100 steps.
func mlpTrainWorkload() -> Workload {
    let batch = 256, sizes = [64, 256, 256, 2]
    var fwd = 0.0
    for i in 0..<(sizes.count - 1) { fwd += 2 * Double(batch * sizes[i] * sizes[i + 1]) }
    return Workload(name: "mlp-train", unitName: "step", flopsPerUnit: 3 * fwd, unitsPerRun: 100,
                    notes: ["model": "MLP 64-256-256-2 relu", "batch": "256", "optimizer": "AdamW lr=1e-3 wd=0.01"]) {
        let rng = RandomSource(seed: 1)
        let model = try MLP(sizes, activation: .relu, rng: rng)
        let opt = try AdamW(parameters: model.parameters, lr: 1e-3)
        let x = Tensor.normal([batch, sizes[0]], rng: &rng.generator)
        let y = labels(batch, classes: sizes.last!)
        return {
            opt.zeroGrad()
            let loss = try crossEntropy(try model(x), targets: y)
            try loss.backward()
            try opt.step()
        }
    }
}

// MARK: - Transformer encoder

struct EncoderShape {
    static let layers = 6, hidden = 384, heads = 12, ffn = 1536, batch = 32, tokens = 128, classes = 2

    /// Forward FLOPs: per layer Q, K, V and output projections (8·T·H²), scores and
    /// probabilities·values (4·B·S²·H), feed-forward (4·T·H·F), with T = B·S tokens.
    static var forwardFlops: Double {
        let t = Double(batch * tokens), h = Double(hidden), f = Double(ffn)
        let s = Double(tokens), b = Double(batch)
        return Double(layers) * (8 * t * h * h + 4 * b * s * s * h + 4 * t * h * f)
    }
}

/// Six BERT-style post-norm layers (hidden 384, 12 heads, FFN 1536, GELU erf, LayerNorm eps
/// 1e-12) on a [32, 128, 384] input. Forward: eval mode under `withNoGrad`. Train: dropout 0.1
/// (hidden and attention), mean-pool over tokens, linear head to 2 classes, cross-entropy,
/// backward, AdamW (lr 1e-3, wd 0.01). One unit is one forward pass or one optimizer step.
func encoderWorkload(training: Bool) -> Workload {
    typealias E = EncoderShape
    let headFlops = 2 * Double(E.batch * E.hidden * E.classes)
    let flops = training ? 3 * (E.forwardFlops + headFlops) : E.forwardFlops
    let name = training ? "encoder-train" : "encoder-forward"
    var notes = ["model": "6x post-norm encoder h384 12 heads ffn1536 gelu-erf", "input": "[32,128,384]"]
    notes["mode"] = training ? "train, dropout 0.1, AdamW lr=1e-3 wd=0.01" : "eval, no grad"
    return Workload(name: name, unitName: training ? "step" : "forward", flopsPerUnit: flops, unitsPerRun: 1, notes: notes) {
        let rng = RandomSource(seed: 2)
        let cfg = TransformerLayerConfig(hidden: E.hidden, heads: E.heads, intermediate: E.ffn, activation: .gelu,
                                         hiddenDropout: 0.1, attentionDropout: 0.1, layerNormEps: 1e-12)
        let encoder = try TransformerEncoder(cfg, depth: E.layers, rng: rng)
        let x = Tensor.normal([E.batch, E.tokens, E.hidden], rng: &rng.generator)
        if !training {
            encoder.eval()
            return { _ = try withNoGrad { try encoder(x) } }
        }
        encoder.train()
        let head = Linear(E.hidden, E.classes, rng: rng)
        let opt = try AdamW(parameters: encoder.parameters + head.parameters, lr: 1e-3)
        let y = labels(E.batch, classes: E.classes)
        return {
            opt.zeroGrad()
            let h = try encoder(x)
            let pooled = try mean(h, axes: [1])
            let loss = try crossEntropy(try head(pooled), targets: y)
            try loss.backward()
            try opt.step()
        }
    }
}
