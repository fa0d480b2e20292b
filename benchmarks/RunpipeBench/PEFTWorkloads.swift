import Foundation
import Layers
import Models
import TensorEngine
import Training

/// One LoRA training step of all-MiniLM-L6-v2 (the `minilm-finetune` step with a frozen encoder):
/// LoRA r 8, alpha 8, no LoRA dropout, on every `query` and `value`; dropout 0.1 as configured,
/// mean pool, a linear head to 2 classes, cross-entropy, backward, AdamW (lr 1e-3, weight decay
/// 0.01) over the adapters and the head. The reference is `peft`'s LoRA on transformers' BertModel
/// (benchmarks/reference/torch_peft.py).
func miniLMLoRAWorkload() -> Workload {
    let batch = 32, tokens = 128
    let fwd = bertForwardFlops(layers: 6, hidden: 384, ffn: 1536, batch: batch, tokens: tokens) + 2 * Double(batch * 384 * 2)
    // Forward plus the input gradients (the frozen weights' own gradients are not computed).
    return Workload(name: "minilm-lora", unitName: "step", flopsPerUnit: 2 * fwd, unitsPerRun: 1,
                    notes: ["model": "all-MiniLM-L6-v2", "input": "ids [\(batch),\(tokens)]",
                            "mode": "train, LoRA r=8 alpha=8 on query+value, dropout 0.1, mean pool, linear head, AdamW lr=1e-3 wd=0.01"]) {
        try miniLMClassifierStep(batch: batch, tokens: tokens, lr: 1e-3) { encoder, rng in
            try applyPEFT(PEFTOptions(method: .lora, rank: 8, alpha: 8, targets: ["query", "value"]), to: encoder, rng: rng)
        }
    }
}
