"""The minilm-lora workload of torch_bench.py: `peft`'s LoRA (r 8, alpha 8, no LoRA dropout,
targets query and value) on transformers' BertModel over models/all-MiniLM-L6-v2, the
minilm-finetune step otherwise (benchmarks/RunpipeBench/PEFTWorkloads.swift is the runpipe side)."""

from torch_text import bert_forward_flops, classifier_step, load_minilm


def lora_workload(torch, labels):
    from peft import LoraConfig, get_peft_model
    batch, tokens = 32, 128
    torch.manual_seed(1)
    model = get_peft_model(load_minilm(torch), LoraConfig(r=8, lora_alpha=8, lora_dropout=0.0,
                                                          target_modules=["query", "value"])).train()
    unit = classifier_step(torch, labels, model, batch, tokens, lr=1e-3)

    fwd = bert_forward_flops(6, 384, 1536, batch, tokens) + 2.0 * batch * 384 * 2
    return dict(unit=unit, unit_name="step", units_per_run=1, flops=2 * fwd,
                notes={"model": "all-MiniLM-L6-v2", "input": f"ids [{batch},{tokens}]",
                       "mode": "train, LoRA r=8 alpha=8 on query+value (peft), dropout 0.1, mean pool, linear head, "
                               "AdamW lr=1e-3 wd=0.01"})


PEFT_WORKLOADS = {"minilm-lora": lora_workload}
