import Foundation
import Layers
import Models
import TensorEngine
import Training

// The real all-MiniLM-L6-v2 (BERT, 6 layers, 384 wide, 12 heads), read from
// models/all-MiniLM-L6-v2 (scripts/fetch-models), against `transformers`' BertModel on the same
// folder in benchmarks/reference/torch_bench.py. Token ids are a fixed formula both sides share,
// every token real (no padding), so both do exactly the same arithmetic.

/// Where the model folder is: `$RUNPIPE_MODELS/all-MiniLM-L6-v2`, else `models/` in the
/// current directory (the harness runs from the repository root).
func miniLMFolder() throws -> URL {
    let base = ProcessInfo.processInfo.environment["RUNPIPE_MODELS"] ?? "models"
    let url = URL(fileURLWithPath: base).appendingPathComponent("all-MiniLM-L6-v2")
    guard FileManager.default.fileExists(atPath: url.appendingPathComponent("config.json").path) else {
        throw BenchError.unavailable("all-MiniLM-L6-v2 not found at \(url.path); run scripts/fetch-models")
    }
    return url
}

/// `batch × tokens` ids: 101 ([CLS]) first, 102 ([SEP]) last, `1000 + (r·7919 + t·104729) mod 20000` between.
func benchTokens(batch: Int, tokens: Int, rowOffset: Int = 0) -> TokenBatch {
    var ids = [Int32](repeating: 0, count: batch * tokens)
    for r in 0..<batch {
        for t in 0..<tokens {
            let v: Int
            if t == 0 { v = 101 } else if t == tokens - 1 { v = 102 } else { v = 1000 + ((r + rowOffset) * 7919 + t * 104_729) % 20_000 }
            ids[r * tokens + t] = Int32(v)
        }
    }
    return TokenBatch(batch: batch, tokens: tokens, ids: ids)
}

/// Forward FLOPs of a BERT encoder (the same formula as `EncoderShape.forwardFlops`).
func bertForwardFlops(layers: Int, hidden: Int, ffn: Int, batch: Int, tokens: Int) -> Double {
    let t = Double(batch * tokens), h = Double(hidden), f = Double(ffn), s = Double(tokens), b = Double(batch)
    return Double(layers) * (8 * t * h * h + 4 * b * s * s * h + 4 * t * h * f)
}

/// all-MiniLM-L6-v2 inference: token ids → mean-pooled embeddings, eval mode, no tape.
func miniLMForwardWorkload(tokens: Int) -> Workload {
    let batch = 32
    return Workload(name: "minilm-forward-\(tokens)", unitName: "forward",
                    flopsPerUnit: bertForwardFlops(layers: 6, hidden: 384, ffn: 1536, batch: batch, tokens: tokens),
                    unitsPerRun: tokens <= 32 ? 5 : 1,
                    notes: ["model": "all-MiniLM-L6-v2", "input": "ids [\(batch),\(tokens)]", "mode": "eval, no grad, mean pool"]) {
        let encoder = try TextEncoders.load(folder: try miniLMFolder(), rng: RandomSource(seed: 1))
        encoder.eval()
        let ids = benchTokens(batch: batch, tokens: tokens)
        return { _ = try withNoGrad { try pool(try encoder(ids), batch: ids, .mean) } }
    }
}

/// One full fine-tuning step of all-MiniLM-L6-v2: dropout 0.1 as configured, mean pool, a linear
/// head to 2 classes, cross-entropy, backward, AdamW (lr 2e-5, weight decay 0.01).
func miniLMFineTuneWorkload() -> Workload {
    let batch = 32, tokens = 128
    let fwd = bertForwardFlops(layers: 6, hidden: 384, ffn: 1536, batch: batch, tokens: tokens) + 2 * Double(batch * 384 * 2)
    return Workload(name: "minilm-finetune", unitName: "step", flopsPerUnit: 3 * fwd, unitsPerRun: 1,
                    notes: ["model": "all-MiniLM-L6-v2", "input": "ids [\(batch),\(tokens)]",
                            "mode": "train, dropout 0.1, mean pool, linear head, AdamW lr=2e-5 wd=0.01"]) {
        try miniLMClassifierStep(batch: batch, tokens: tokens, lr: 2e-5) { _, _ in }
    }
}

/// A training step of all-MiniLM-L6-v2 with a mean pool and a linear head to 2 classes:
/// cross-entropy, backward, AdamW (weight decay 0.01) over every weight that trains after
/// `adapt` (which may freeze the encoder and add adapters).
func miniLMClassifierStep(batch: Int, tokens: Int, lr: Float,
                          adapt: (any TextEncoder, RandomSource) throws -> Void) throws -> () throws -> Void {
    let rng = RandomSource(seed: 1)
    let encoder = try TextEncoders.load(folder: try miniLMFolder(), rng: rng)
    try adapt(encoder, rng)
    encoder.train()
    let head = Linear(384, 2, rng: rng)
    let opt = try AdamW(parameters: encoder.trainableParameters + head.parameters, lr: lr, weightDecay: 0.01)
    let ids = benchTokens(batch: batch, tokens: tokens)
    let y = labels(batch, classes: 2)
    return {
        opt.zeroGrad()
        let pooled = try pool(try encoder(ids), batch: ids, .mean)
        let loss = try crossEntropy(try head(pooled), targets: y)
        try loss.backward()
        try opt.step()
    }
}

/// A frozen all-MiniLM-L6-v2 and a linear head trained for 5 epochs over 256 rows of 64 tokens
/// (batch 32, AdamW lr 1e-3). runpipe's way: encode every row once (what the `embed` stage
/// caches), then 5 epochs over the pooled features. The reference recomputes the frozen encoder
/// in every epoch, as a training loop over a frozen backbone does. One unit is the whole job.
func miniLMFrozenEpochsWorkload() -> Workload {
    let rows = 256, tokens = 64, batch = 32, epochs = 5
    let encode = bertForwardFlops(layers: 6, hidden: 384, ffn: 1536, batch: rows, tokens: tokens)
    return Workload(name: "minilm-frozen-5ep", unitName: "job", flopsPerUnit: encode, unitsPerRun: 1,
                    notes: ["model": "all-MiniLM-L6-v2 frozen", "data": "\(rows) rows x \(tokens) tokens",
                            "mode": "features once + \(epochs) epochs of a linear head, batch \(batch), AdamW lr=1e-3"]) {
        let rng = RandomSource(seed: 1)
        let encoder = try TextEncoders.load(folder: try miniLMFolder(), rng: rng)
        encoder.eval()
        let y = labels(rows, classes: 2)
        return {
            let head = Linear(384, 2, rng: RandomSource(seed: 3))
            let opt = try AdamW(parameters: head.parameters, lr: 1e-3, weightDecay: 0.01)
            var features: [Tensor] = []
            try withNoGrad {
                for start in stride(from: 0, to: rows, by: batch) {
                    let ids = benchTokens(batch: batch, tokens: tokens, rowOffset: start)
                    features.append(try pool(try encoder(ids), batch: ids, .mean))
                }
            }
            for _ in 0..<epochs {
                for (i, f) in features.enumerated() {
                    opt.zeroGrad()
                    let loss = try crossEntropy(try head(f), targets: Array(y[(i * batch)..<((i + 1) * batch)]))
                    try loss.backward()
                    try opt.step()
                }
            }
        }
    }
}
