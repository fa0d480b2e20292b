#!/usr/bin/env python3
"""PyTorch reference for the benchmark "a multimodal training epoch": all-MiniLM-L6-v2 fully
trained, mean-pooled, next to runpipe's tabular MLP, joined by AutoMM's fusion MLP, on the first
512 training rows of pipelines/data/wildlife-strikes.

    python benchmarks/reference/torch_multimodal.py --prepare DIR
        # tokenizes and encodes the rows once (not timed) into DIR/multimodal-512.safetensors
    python benchmarks/reference/torch_bench.py multimodal-epoch [--threads 2] [--runs 5] [--warmup 1]
        # times training epochs over DIR's file (prepared first when it is missing)

DIR defaults to $RUNPIPE_BENCH_MULTIMODAL, else <tmp>/runpipe-bench-multimodal. The module exports
MULTIMODAL_WORKLOADS, which torch_bench.py times like its other workloads (unit `epoch`;
flops_per_run is forward + backward ≈ 3 × forward of the encoder, tabular MLP, fusion and head,
at the batches' padded lengths).

The prepared file (the runpipe side reads the same one) is a safetensors file,
`multimodal-512.safetensors`, little-endian, rows in train.csv order:

| tensor | dtype | shape | content |
|---|---|---|---|
| `input_ids` | I64 | [512, 128] | `remarks` tokenized by models/all-MiniLM-L6-v2/tokenizer.json: [CLS] … [SEP], truncated to 128, right-padded with 0 |
| `lengths` | I64 | [512] | tokens per row including [CLS] and [SEP] (the attention mask is `t < length`) |
| `numeric` | F32 | [512, 6] | num_engines, mass_class, height, speed, year, month: missing → the column's median over the 512 rows, then (x − mean) / std over the 512 rows (population std, 1 when 0) |
| `categorical` | I64 | [512, 9] | operator, aircraft, phase, time_of_day, sky, state, species, birds_seen, birds_struck: 0 = missing, else 1 + the value's rank among the column's distinct values in the 512 rows, sorted by code point |
| `cardinalities` | I64 | [9] | per categorical column, 1 + its distinct values (the embedding table's rows) |
| `labels` | I64 | [512] | `effect`: 0 = no, 1 = yes |

The header's `__metadata__` holds `source` (the CSV's path), `source_sha256`, `numeric_columns`,
`categorical_columns`, `text_column`, `label_column` and `classes` (JSON strings).

One epoch: 16 batches of 32 rows in file order (rows 0–31, 32–63, …; no shuffling), each batch's
ids cut to its longest row. Per step: MiniLM (transformers' BertModel from the checkpoint, train
mode, dropout 0.1, every weight trainable) over ids with the attention mask, mean pooled over the
mask → [32, 384]; the tabular MLP (runpipe's TabularMLP defaults: one embedding per categorical
column, width min(32, round(1.6 · cardinality^0.56)), concatenated after the numeric block, then
Linear 128 → ReLU → dropout 0.1 twice) → [32, 128]; AutoMM's MultimodalFusionMLP with
adapt_in_features=max: an adapter Linear per backbone to 384, concatenation → [32, 768], one unit
LayerNorm(768) → Linear(768, 128) → LeakyReLU → Dropout(0.1) (AutoMM's `Unit` order: norm, fc,
activation, dropout), then the head Linear(128, 2); cross-entropy; AdamW(lr 2e-5, betas 0.9/0.999,
eps 1e-8, weight decay 0.01 on matrices and embeddings only — runpipe's rule — none on biases and
norm weights). Weights: the checkpoint's for MiniLM; torch.manual_seed(0) and PyTorch's default
initialisers for the rest. Every timed epoch continues from the previous one.
"""

import argparse
import csv
import json
import math
import os
import struct
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from tabular_mlp import embedding_dim, tabular_mlp  # noqa: E402  (beside this file)

ROOT = os.path.dirname(os.path.dirname(HERE))
SOURCE = os.path.join("pipelines", "data", "wildlife-strikes", "train.csv")
FILE_NAME = "multimodal-512.safetensors"
ROWS, MAX_LENGTH, BATCH = 512, 128, 32
TEXT, LABEL, CLASSES = "remarks", "effect", ["no", "yes"]
NUMERIC = ["num_engines", "mass_class", "height", "speed", "year", "month"]
CATEGORICAL = ["operator", "aircraft", "phase", "time_of_day", "sky", "state", "species", "birds_seen", "birds_struck"]
MISSING = {"", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"}   # runpipe's default missing cells
TABULAR_HIDDEN, FUSION_HIDDEN, DROPOUT = [128, 128], 128, 0.1


def default_dir():
    return os.environ.get("RUNPIPE_BENCH_MULTIMODAL") or os.path.join(tempfile.gettempdir(), "runpipe-bench-multimodal")


def minilm_folder():
    base = os.environ.get("RUNPIPE_MODELS", os.path.join(ROOT, "models"))
    path = os.path.join(base, "all-MiniLM-L6-v2")
    if not os.path.exists(os.path.join(path, "config.json")):
        raise RuntimeError(f"all-MiniLM-L6-v2 not found at {path}; run scripts/fetch-models")
    return path


# ----------------------------------------------------------------------------------- the file

def write_safetensors(path, tensors, metadata):
    """tensors: name → (dtype 'I64' | 'F32', shape, flat list). Names in sorted order, as the
    safetensors library writes them; the header padded with spaces to a multiple of 8 bytes."""
    fmt = {"I64": "q", "F32": "f"}
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        dtype, shape, values = tensors[name]
        if len(values) != math.prod(shape):
            raise ValueError(f"{name}: {len(values)} values for shape {shape}")
        blob = struct.pack(f"<{len(values)}{fmt[dtype]}", *values)
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    os.replace(tmp, path)


def read_safetensors(path, torch):
    dtypes = {"I64": torch.int64, "F32": torch.float32}
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        buf = bytearray(raw[8 + n + a:8 + n + b])
        out[name] = torch.frombuffer(buf, dtype=dtypes[info["dtype"]]).reshape(info["shape"]).clone()
    return out, meta


def prepare(out_dir):
    """Tokenizes and encodes the first ROWS rows of train.csv into out_dir/FILE_NAME."""
    import hashlib
    from transformers import AutoTokenizer
    path = os.path.join(ROOT, SOURCE)
    with open(path, "rb") as f:
        source_sha = hashlib.sha256(f.read()).hexdigest()
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for _, r in zip(range(ROWS), csv.DictReader(f))]
    if len(rows) != ROWS:
        raise RuntimeError(f"{SOURCE}: {len(rows)} rows, need {ROWS}; run scripts/fetch-data")

    tok = AutoTokenizer.from_pretrained(minilm_folder())
    ids, lengths = [], []
    for r in rows:
        row = tok(r[TEXT], truncation=True, max_length=MAX_LENGTH)["input_ids"]
        lengths.append(len(row))
        ids += row + [0] * (MAX_LENGTH - len(row))

    numeric = [[0.0] * len(NUMERIC) for _ in rows]
    for j, c in enumerate(NUMERIC):
        cells = [None if r[c] in MISSING else float(r[c]) for r in rows]
        present = sorted(v for v in cells if v is not None)
        k = len(present)
        median = (present[(k - 1) // 2] + present[k // 2]) / 2
        filled = [median if v is None else v for v in cells]
        mean = sum(filled) / len(filled)
        std = math.sqrt(sum((v - mean) ** 2 for v in filled) / len(filled)) or 1.0
        for i, v in enumerate(filled):
            numeric[i][j] = (v - mean) / std

    categorical, cardinalities = [[0] * len(CATEGORICAL) for _ in rows], []
    for j, c in enumerate(CATEGORICAL):
        values = sorted({r[c] for r in rows if r[c] not in MISSING})
        index = {v: k + 1 for k, v in enumerate(values)}
        cardinalities.append(len(values) + 1)
        for i, r in enumerate(rows):
            categorical[i][j] = index.get(r[c], 0)

    labels = [CLASSES.index(r[LABEL]) for r in rows]
    os.makedirs(out_dir, exist_ok=True)
    target = os.path.join(out_dir, FILE_NAME)
    write_safetensors(target, {
        "input_ids": ("I64", [ROWS, MAX_LENGTH], ids),
        "lengths": ("I64", [ROWS], lengths),
        "numeric": ("F32", [ROWS, len(NUMERIC)], [v for row in numeric for v in row]),
        "categorical": ("I64", [ROWS, len(CATEGORICAL)], [v for row in categorical for v in row]),
        "cardinalities": ("I64", [len(CATEGORICAL)], cardinalities),
        "labels": ("I64", [ROWS], labels),
    }, {
        "source": SOURCE, "source_sha256": source_sha, "text_column": TEXT, "label_column": LABEL,
        "numeric_columns": json.dumps(NUMERIC), "categorical_columns": json.dumps(CATEGORICAL),
        "classes": json.dumps(CLASSES),
    })
    return target


# ----------------------------------------------------------------------------------- the model

def build_model(torch, encoder, cardinalities):
    nn = torch.nn

    class FusionModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder
            self.tabular = tabular_mlp(torch, len(NUMERIC), cardinalities, TABULAR_HIDDEN, DROPOUT)
            widths = [encoder.config.hidden_size, self.tabular.out_features]
            adapted = max(widths)
            self.adapters = nn.ModuleList(nn.Linear(w, adapted) for w in widths)
            self.norm = nn.LayerNorm(adapted * len(widths))
            self.fc = nn.Linear(adapted * len(widths), FUSION_HIDDEN)
            self.act = nn.LeakyReLU()
            self.dropout = nn.Dropout(DROPOUT)
            self.head = nn.Linear(FUSION_HIDDEN, len(CLASSES))

        def forward(self, ids, mask, numeric, categorical):
            hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).to(hidden.dtype)
            text = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
            tab = self.tabular(numeric, categorical)
            fused = torch.cat([a(f) for a, f in zip(self.adapters, (text, tab))], dim=1)
            return self.head(self.dropout(self.act(self.fc(self.norm(fused)))))

    return FusionModel()


def forward_flops(config, lengths, cardinalities):
    """Multiply-adds × 2 of one forward over the epoch's batches at their padded lengths."""
    h, f, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    total = 0.0
    for s in range(0, len(lengths), BATCH):
        b = len(lengths[s:s + BATCH])
        t = max(lengths[s:s + BATCH])
        total += layers * (8.0 * b * t * h * h + 4.0 * b * t * t * h + 4.0 * b * t * h * f)
        width = len(NUMERIC) + sum(embedding_dim(c) for c in cardinalities)
        for w in TABULAR_HIDDEN:
            total += 2.0 * b * width * w
            width = w
        total += 2.0 * b * (h * h + width * h) + 2.0 * b * 2 * h * FUSION_HIDDEN + 2.0 * b * FUSION_HIDDEN * len(CLASSES)
    return total


def multimodal_epoch_workload(torch, labels=None, inputs_dir=None):
    """One training epoch over the prepared rows (torch_bench.py's workload contract)."""
    from transformers import AutoModel
    F = torch.nn.functional
    folder = inputs_dir or default_dir()
    path = os.path.join(folder, FILE_NAME)
    if not os.path.exists(path):
        prepare(folder)
    data, meta = read_safetensors(path, torch)
    lengths = data["lengths"].tolist()
    cardinalities = data["cardinalities"].tolist()
    batches = []
    for s in range(0, ROWS, BATCH):
        t = max(lengths[s:s + BATCH])
        ids = data["input_ids"][s:s + BATCH, :t].contiguous()
        mask = (torch.arange(t).unsqueeze(0) < data["lengths"][s:s + BATCH].unsqueeze(1)).long()
        batches.append((ids, mask, data["numeric"][s:s + BATCH], data["categorical"][s:s + BATCH],
                        data["labels"][s:s + BATCH]))

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)
    encoder = AutoModel.from_pretrained(minilm_folder(), attn_implementation=os.environ.get("RUNPIPE_BENCH_ATTN", "sdpa"))
    model = build_model(torch, encoder, cardinalities).train()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=2e-5, betas=(0.9, 0.999), eps=1e-8)

    def unit():
        for ids, mask, numeric, categorical, y in batches:
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(ids, mask, numeric, categorical), y).backward()
            opt.step()

    padded = sum(max(lengths[s:s + BATCH]) * len(lengths[s:s + BATCH]) for s in range(0, ROWS, BATCH))
    return dict(unit=unit, unit_name="epoch", units_per_run=1,
                flops=3 * forward_flops(encoder.config, lengths, cardinalities),
                notes={"model": "all-MiniLM-L6-v2 (all weights train) mean pool + tabular MLP [128,128] relu "
                                "+ AutoMM fusion MLP (adapters to 384, LN-Linear128-LeakyReLU-Dropout) + linear head",
                       "data": f"first {ROWS} rows of {meta.get('source', SOURCE)}: {len(NUMERIC)} numeric, "
                               f"{len(CATEGORICAL)} categorical (cardinalities {cardinalities}), text ≤ {MAX_LENGTH} tokens",
                       "epoch": f"{ROWS // BATCH} steps of {BATCH}, file order, each batch padded to its longest row "
                                f"({padded} token slots, {sum(lengths)} real tokens)",
                       "optimizer": "AdamW lr=2e-5 wd=0.01 (matrices only), cross-entropy, dropout 0.1"})


MULTIMODAL_WORKLOADS = {"multimodal-epoch": multimodal_epoch_workload}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prepare", metavar="DIR", required=True, help="write DIR/" + FILE_NAME + " and exit")
    print(prepare(p.parse_args().prepare))
    return 0


if __name__ == "__main__":
    sys.exit(main())
