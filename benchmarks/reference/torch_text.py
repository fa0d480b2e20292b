"""The all-MiniLM-L6-v2 workloads of torch_bench.py: transformers' BertModel on the same
models/all-MiniLM-L6-v2 folder runpipe reads (benchmarks/RunpipeBench/TextWorkloads.swift), the
same token ids, the same head, optimizer and hyperparameters."""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def minilm_folder():
    base = os.environ.get("RUNPIPE_MODELS", os.path.join(ROOT, "models"))
    path = os.path.join(base, "all-MiniLM-L6-v2")
    if not os.path.exists(os.path.join(path, "config.json")):
        raise RuntimeError(f"all-MiniLM-L6-v2 not found at {path}; run scripts/fetch-models")
    return path


def bench_tokens(torch, batch, tokens, row_offset=0):
    """The ids of TextWorkloads.swift's benchTokens: [CLS] … [SEP], a fixed formula between."""
    rows = []
    for r in range(batch):
        row = []
        for t in range(tokens):
            if t == 0:
                row.append(101)
            elif t == tokens - 1:
                row.append(102)
            else:
                row.append(1000 + ((r + row_offset) * 7919 + t * 104729) % 20000)
        rows.append(row)
    return torch.tensor(rows, dtype=torch.long)


def bert_forward_flops(layers, hidden, ffn, batch, tokens):
    t, h, f, s, b = batch * tokens, hidden, ffn, tokens, batch
    return float(layers * (8 * t * h * h + 4 * b * s * s * h + 4 * t * h * f))


def load_minilm(torch):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel
    # Eager attention is transformers' reference path; "sdpa" (its default) is also measured
    # when RUNPIPE_BENCH_ATTN=sdpa.
    attn = os.environ.get("RUNPIPE_BENCH_ATTN", "sdpa")
    return AutoModel.from_pretrained(minilm_folder(), attn_implementation=attn)


def mean_pool(hidden, mask):
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


def forward_workload(torch, tokens):
    batch = 32
    model = load_minilm(torch).eval()
    ids = bench_tokens(torch, batch, tokens)
    mask = torch.ones_like(ids)

    def unit():
        with torch.inference_mode():
            mean_pool(model(input_ids=ids, attention_mask=mask).last_hidden_state, mask)

    return dict(unit=unit, unit_name="forward", units_per_run=5 if tokens <= 32 else 1,
                flops=bert_forward_flops(6, 384, 1536, batch, tokens),
                notes={"model": "all-MiniLM-L6-v2", "input": f"ids [{batch},{tokens}]", "mode": "eval, no grad, mean pool"})


def classifier_step(torch, labels, model, batch, tokens, lr):
    """One training step of `model` (in train mode) with a mean pool and a linear head to 2
    classes: cross-entropy, backward, AdamW (weight decay 0.01) over every weight that trains."""
    F = torch.nn.functional
    head = torch.nn.Linear(384, 2)
    trainable = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    opt = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.01)
    ids = bench_tokens(torch, batch, tokens)
    mask = torch.ones_like(ids)
    y = torch.tensor(labels(batch, 2))

    def unit():
        opt.zero_grad(set_to_none=True)
        pooled = mean_pool(model(input_ids=ids, attention_mask=mask).last_hidden_state, mask)
        F.cross_entropy(head(pooled), y).backward()
        opt.step()

    return unit


def finetune_workload(torch, labels):
    batch, tokens = 32, 128
    torch.manual_seed(1)
    unit = classifier_step(torch, labels, load_minilm(torch).train(), batch, tokens, lr=2e-5)
    fwd = bert_forward_flops(6, 384, 1536, batch, tokens) + 2.0 * batch * 384 * 2
    return dict(unit=unit, unit_name="step", units_per_run=1, flops=3 * fwd,
                notes={"model": "all-MiniLM-L6-v2", "input": f"ids [{batch},{tokens}]",
                       "mode": "train, dropout 0.1, mean pool, linear head, AdamW lr=2e-5 wd=0.01"})


def frozen_epochs_workload(torch, labels):
    """A frozen encoder and a linear head for 5 epochs, the encoder recomputed every epoch (what
    a training loop over a frozen backbone does without a feature cache)."""
    F = torch.nn.functional
    rows, tokens, batch, epochs = 256, 64, 32, 5
    model = load_minilm(torch).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    y = torch.tensor(labels(rows, 2))
    batches = [bench_tokens(torch, batch, tokens, row_offset=s) for s in range(0, rows, batch)]

    def unit():
        torch.manual_seed(3)
        head = torch.nn.Linear(384, 2)
        opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=0.01)
        for _ in range(epochs):
            for i, ids in enumerate(batches):
                mask = torch.ones_like(ids)
                with torch.no_grad():
                    f = mean_pool(model(input_ids=ids, attention_mask=mask).last_hidden_state, mask)
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(head(f), y[i * batch:(i + 1) * batch]).backward()
                opt.step()

    return dict(unit=unit, unit_name="job", units_per_run=1, flops=bert_forward_flops(6, 384, 1536, rows, tokens),
                notes={"model": "all-MiniLM-L6-v2 frozen", "data": f"{rows} rows x {tokens} tokens",
                       "mode": f"encoder every epoch + {epochs} epochs of a linear head, batch {batch}, AdamW lr=1e-3"})


TEXT_WORKLOADS = {
    "minilm-forward-128": lambda torch, labels: forward_workload(torch, 128),
    "minilm-forward-32": lambda torch, labels: forward_workload(torch, 32),
    "minilm-finetune": finetune_workload,
    "minilm-frozen-5ep": frozen_epochs_workload,
}
