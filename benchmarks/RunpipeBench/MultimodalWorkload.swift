import Checkpoints
import Foundation
import Layers
import Models
import TensorEngine
import Training

// The runpipe side of "a multimodal training epoch" (issue #6): the network runpipe's train stage
// builds for the wildlife-strikes pipeline with a fine-tuned text backbone — all-MiniLM-L6-v2
// mean-pooled, the tabular MLP, AutoMM's fusion MLP with its head — over the 512 rows that
// benchmarks/reference/torch_multimodal.py prepares (see its docstring for the file and the
// recipe; both sides read the same file).

/// Where the prepared inputs are: `$RUNPIPE_BENCH_MULTIMODAL`, else `<tmp>/runpipe-bench-multimodal`.
func multimodalInputs() throws -> URL {
    let dir = ProcessInfo.processInfo.environment["RUNPIPE_BENCH_MULTIMODAL"]
        ?? FileManager.default.temporaryDirectory.appendingPathComponent("runpipe-bench-multimodal").path
    let url = URL(fileURLWithPath: dir).appendingPathComponent("multimodal-512.safetensors")
    guard FileManager.default.fileExists(atPath: url.path) else {
        throw BenchError.unavailable("\(url.path) is missing; benchmarks/run prepares it (python benchmarks/reference/torch_multimodal.py --prepare \(dir))")
    }
    return url
}

/// One epoch: 16 batches of 32 rows in file order, ids cut to each batch's longest row; MiniLM in
/// train mode (dropout 0.1, every weight trains), mean pooling, the tabular MLP (hidden 128, 128,
/// dropout 0.1), the fusion MLP (adapters to 384, LayerNorm → Linear 128 → LeakyReLU → dropout
/// 0.1, head 2), cross-entropy, AdamW lr 2e-5 with weight decay 0.01 on matrices only.
func multimodalEpochWorkload() -> Workload {
    let rows = 512, batch = 32
    return Workload(name: "multimodal-epoch", unitName: "epoch", flopsPerUnit: 0, unitsPerRun: 1,
                    notes: ["model": "all-MiniLM-L6-v2 (trained) + tabular MLP + AutoMM fusion MLP",
                            "data": "wildlife-strikes, first \(rows) training rows, batch \(batch)",
                            "mode": "train, dropout 0.1, AdamW lr=2e-5 wd=0.01 (matrices)"]) {
        let file = try SafetensorsFile(url: try multimodalInputs())
        let t = try file.tensors()
        guard let ids = t["input_ids"], let lengths = t["lengths"], let numeric = t["numeric"],
              let categorical = t["categorical"], let cards = t["cardinalities"], let y = t["labels"] else {
            throw BenchError.unavailable("the prepared file lacks a tensor; re-run torch_multimodal.py --prepare")
        }
        let maxTokens = ids.shape[1], numericWidth = numeric.shape[1], categoricalWidth = categorical.shape[1]
        let idValues = ids.toArray(), lengthValues = lengths.toArray().map { Int($0) }
        let numericValues = numeric.toArray(), categoryValues = categorical.toArray().map { Int($0) }
        let labelValues = y.toArray().map { Int($0) }

        let rng = RandomSource(seed: 0)
        let encoder = try TextEncoders.load(folder: try miniLMFolder(), rng: rng)
        let schema = TabularSchema(numericCount: numericWidth, cardinalities: cards.toArray().map { Int($0) })
        let tabular = try TabularMLP(TabularMLPConfig(hidden: [128, 128], dropout: 0.1), schema: schema, rng: rng)
        let fusion = try FusionKind.mlp(FusionMLPConfig()).build(inputWidths: [tabular.outputDim, 384], outputs: 2, rng: rng)
        let named = encoder.namedParameters(prefix: "text.") + tabular.namedParameters(prefix: "tabular.")
            + fusion.namedParameters(prefix: "fusion.")
        let decay = named.filter { $0.tensor.rank >= 2 }, noDecay = named.filter { $0.tensor.rank < 2 }
        let opt = try AdamW(groups: [ParameterGroup(name: "decay", namedParameters: decay, lr: 2e-5, weightDecay: 0.01),
                                     ParameterGroup(name: "no_decay", namedParameters: noDecay, lr: 2e-5, weightDecay: 0)])
        for m in [encoder as Module, tabular, fusion] { m.train() }

        // The batches, built once (tokenization is not timed on either side).
        var batches: [(tokens: TokenBatch, numeric: Tensor, categorical: [Int], labels: [Int])] = []
        for start in stride(from: 0, to: rows, by: batch) {
            let range = start..<min(rows, start + batch)
            let longest = range.map { lengthValues[$0] }.max() ?? 1
            var tokenIDs: [Int32] = [], mask: [Int32] = []
            for r in range {
                for p in 0..<longest {
                    tokenIDs.append(Int32(idValues[r * maxTokens + p]))
                    mask.append(p < lengthValues[r] ? 1 : 0)
                }
            }
            let tokens = TokenBatch(batch: range.count, tokens: longest, ids: tokenIDs, attentionMask: mask)
            let num = try Tensor(Array(numericValues[(range.lowerBound * numericWidth)..<(range.upperBound * numericWidth)]),
                                 shape: [range.count, numericWidth])
            let cat = Array(categoryValues[(range.lowerBound * categoricalWidth)..<(range.upperBound * categoricalWidth)])
            batches.append((tokens, num, cat, Array(labelValues[range])))
        }
        return {
            for b in batches {
                opt.zeroGrad()
                let text = try pool(try encoder(b.tokens), batch: b.tokens, .mean)
                let tab = try tabular.forward(numeric: b.numeric, categorical: b.categorical)
                let logits = try fusion.logits(features: [tab, text]).fused
                let loss = try crossEntropy(logits, targets: b.labels)
                try loss.backward()
                try opt.step()
            }
        }
    }
}
