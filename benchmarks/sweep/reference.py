#!/usr/bin/env python3
"""PyTorch reference for the sweep benchmark (benchmarks/sweep/run, issue #7): the trials of a
grid over the learning rate and the fusion dropout on benchmarks/sweep/pipeline.yaml, done the
way a plain PyTorch sweep does them — every trial recomputes the frozen MiniLM features.

    python benchmarks/sweep/reference.py --pipeline benchmarks/sweep/pipeline.yaml \
        --data subset.csv --trial 1e-3,0.1 --trial 3e-3,0.3 [--threads 1]

Trials run one after the other in this process; the driver starts two such processes with one
torch thread each, as `runpipe sweep --jobs 2` gives each job one thread. Prints one JSON line
per trial: {"lr", "dropout", "val_roc_auc", "seconds", "embed_seconds", "train_seconds",
"train_rows", "validation_rows"}, or {"error": …} and exit status 1.

What one trial does, mirroring runpipe's stages for the pipeline (the settings below — seed,
validation fraction, columns, min_count, max_length, widths, epochs, batch size, optimizer,
schedule — are read from the pipeline file, so both sides follow it):
 1. reads the CSV, holds out `data.validation.fraction` of the rows stratified by the label
    (its own seeded split: the same sizes as runpipe's, not the same rows);
 2. fits the processors on the training rows: numeric columns (the declared ones and those
    runpipe detects as numeric in this table: height, speed, year, month) median-imputed then
    standardised with the population std; categorical columns mapped to a vocabulary of the
    values seen at least `min_count` times, index 0 for unknown and missing;
 3. tokenizes `remarks` (transformers' fast tokenizer from the checkpoint folder, truncation to
    `max_length`), loads `AutoModel` and computes mean-pooled features of every row in eval mode
    under `torch.inference_mode()`, in batches of 32 rows sorted by length (what runpipe's
    `embed` stage does; runpipe computes them once and caches them, this recomputes them; the
    tokenizer and the encoder's weights are loaded once per process, by its first trial);
 4. builds runpipe's network on top: the tabular MLP (one embedding per categorical column,
    width min(32, round(1.6 · cardinality^0.56)), after the numeric block, then Linear → ReLU →
    dropout per `backbones.tabular.hidden`), AutoMM's fusion MLP (an adapter Linear per backbone
    to the widest width, 384; concatenation; LayerNorm → Linear 128 → LeakyReLU → Dropout(the
    trial's dropout); head Linear(128, 2));
 5. trains `trainer.epochs` epochs of shuffled batches of `trainer.batch_size` (no early
    stopping), cross-entropy, AdamW (the trial's lr, weight decay on matrices and embeddings
    only), gradient norm clipped to 1.0 (runpipe's default), cosine schedule with linear warm-up
    over `schedule.warmup` of the steps, and scores the validation rows after every epoch (loss
    and ROC AUC, as runpipe's trainer does); the trial's metric is the last epoch's ROC AUC.
"""

import argparse
import csv
import json
import math
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# Columns runpipe reads as numeric in this table: the two declared ones and the four it detects.
NUMERIC = ["num_engines", "mass_class", "height", "speed", "year", "month"]
MISSING = {"", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"}   # runpipe's default missing cells
EMBED_BATCH = 32                                                      # runpipe's embed stage batch


sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "reference"))
from tabular_mlp import tabular_mlp  # noqa: E402  (benchmarks/reference)

def settings(pipeline_path):
    """The pipeline keys the reference follows, with runpipe's defaults where the file is silent."""
    import yaml
    with open(pipeline_path) as f:
        spec = yaml.safe_load(f)
    base = os.path.dirname(os.path.abspath(pipeline_path))
    data, trainer = spec["data"], spec["trainer"]
    text = spec["backbones"]["text"]
    columns = data.get("columns", {})
    return {
        "seed": spec.get("seed", 0),
        "label": data["label"],
        "text": next(c for c, kind in columns.items() if kind == "text"),
        "categorical": [c for c, kind in columns.items() if kind == "categorical"],
        "validation_fraction": data.get("validation", {}).get("fraction", 0.2),
        "min_count": spec.get("processors", {}).get("categorical", {}).get("min_count", 1),
        "checkpoint": os.path.normpath(os.path.join(base, text["checkpoint"])),
        "max_length": text.get("max_length", 128),
        "tabular_hidden": spec["backbones"]["tabular"].get("hidden", [128, 128]),
        "tabular_dropout": spec["backbones"]["tabular"].get("dropout", 0.1),
        "fusion_hidden": spec.get("fusion", {}).get("hidden", [128]),
        "epochs": trainer["epochs"],
        "batch_size": trainer["batch_size"],
        "weight_decay": trainer.get("optimizer", {}).get("weight_decay", 1e-4),
        "warmup": trainer.get("schedule", {}).get("warmup", 0.1),
    }


# ----------------------------------------------------------------------------------- the data

def read_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def stratified_split(labels, fraction, seed):
    """Indices (train, validation): `fraction` of each class held out, rounded per class."""
    rng = random.Random(seed)
    train, val = [], []
    for cls in sorted(set(labels)):
        idx = [i for i, y in enumerate(labels) if y == cls]
        rng.shuffle(idx)
        k = round(len(idx) * fraction)
        val += idx[:k]
        train += idx[k:]
    return sorted(train), sorted(val)


def fit_numeric(rows):
    """Per column: (median, mean, std) of the median-imputed training column (population std)."""
    stats = []
    for c in NUMERIC:
        cells = [None if r[c] in MISSING else float(r[c]) for r in rows]
        present = sorted(v for v in cells if v is not None)
        k = len(present)
        median = (present[(k - 1) // 2] + present[k // 2]) / 2 if k else 0.0
        filled = [median if v is None else v for v in cells]
        mean = sum(filled) / len(filled)
        std = math.sqrt(sum((v - mean) ** 2 for v in filled) / len(filled))
        stats.append((median, mean, std))
    return stats


def numeric_block(rows, stats):
    out = []
    for r in rows:
        row = []
        for c, (median, mean, std) in zip(NUMERIC, stats):
            v = median if r[c] in MISSING else float(r[c])
            row.append((v - mean) / std if std > 0 else 0.0)
        out.append(row)
    return out


def fit_categorical(rows, columns, min_count):
    """Per column: value → index from 1, for values seen at least min_count times (most frequent first)."""
    vocabularies = []
    for c in columns:
        counts = {}
        for r in rows:
            if r[c] not in MISSING:
                counts[r[c]] = counts.get(r[c], 0) + 1
        kept = sorted((v for v, n in counts.items() if n >= min_count), key=lambda v: (-counts[v], v))
        vocabularies.append({v: i + 1 for i, v in enumerate(kept)})
    return vocabularies


def categorical_block(rows, columns, vocabularies):
    return [[vocab.get(r[c], 0) for c, vocab in zip(columns, vocabularies)] for r in rows]


# ----------------------------------------------------------------------------------- features

def embed(torch, tokenizer, encoder, texts, max_length):
    """Mean-pooled last hidden states [rows, hidden], batches of 32 rows sorted by token count."""
    ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    order = sorted(range(len(ids)), key=lambda i: (len(ids[i]), i))
    out = torch.zeros(len(ids), encoder.config.hidden_size)
    with torch.inference_mode():
        for s in range(0, len(order), EMBED_BATCH):
            rows = order[s:s + EMBED_BATCH]
            t = max(len(ids[i]) for i in rows)
            batch = torch.zeros(len(rows), t, dtype=torch.long)
            mask = torch.zeros(len(rows), t, dtype=torch.long)
            for j, i in enumerate(rows):
                batch[j, :len(ids[i])] = torch.tensor(ids[i])
                mask[j, :len(ids[i])] = 1
            hidden = encoder(input_ids=batch, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).to(hidden.dtype)
            out[rows] = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return out


# ----------------------------------------------------------------------------------- the model

def build_model(torch, cfg, text_width, cardinalities, fusion_dropout):
    nn = torch.nn

    class FusionMLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.tabular = tabular_mlp(torch, len(NUMERIC), cardinalities, cfg["tabular_hidden"], cfg["tabular_dropout"])
            widths = [text_width, self.tabular.out_features]
            adapted = max(widths)
            self.adapters = nn.ModuleList(nn.Linear(w, adapted) for w in widths)
            units, width = [], adapted * len(widths)
            for w in cfg["fusion_hidden"]:
                units += [nn.LayerNorm(width), nn.Linear(width, w), nn.LeakyReLU(), nn.Dropout(fusion_dropout)]
                width = w
            self.units = nn.Sequential(*units)
            self.head = nn.Linear(width, 2)

        def forward(self, text, numeric, categorical):
            tab = self.tabular(numeric, categorical)
            fused = torch.cat([a(f) for a, f in zip(self.adapters, (text, tab))], dim=1)
            return self.head(self.units(fused))

    return FusionMLP()


# ----------------------------------------------------------------------------------- a trial

# The tokenizer and encoder, loaded by a process's first trial and kept for the next ones: only
# the features are recomputed per trial.
_LOADED = {}


def roc_auc(labels, scores):
    """Area under the ROC curve for 0/1 labels: the Mann-Whitney statistic, ties counted half."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks, i = [0.0] * len(scores), 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    positives = sum(labels)
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    rank_sum = sum(r for r, y in zip(ranks, labels) if y == 1)
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def trial(torch, cfg, data_path, lr, dropout):
    from transformers import AutoModel, AutoTokenizer
    F = torch.nn.functional
    start = time.monotonic()
    rows = read_rows(data_path)
    labels = [r[cfg["label"]] for r in rows]
    classes = sorted(set(labels))
    if len(classes) != 2:
        raise ValueError(f"{data_path}: label {cfg['label']!r} has {len(classes)} classes, need 2")
    train_idx, val_idx = stratified_split(labels, cfg["validation_fraction"], cfg["seed"])
    train_rows, val_rows = [rows[i] for i in train_idx], [rows[i] for i in val_idx]

    stats = fit_numeric(train_rows)
    vocabularies = fit_categorical(train_rows, cfg["categorical"], cfg["min_count"])
    cardinalities = [len(v) + 1 for v in vocabularies]

    def tensors(part):
        return (torch.tensor(numeric_block(part, stats), dtype=torch.float32),
                torch.tensor(categorical_block(part, cfg["categorical"], vocabularies), dtype=torch.long),
                torch.tensor([classes.index(r[cfg["label"]]) for r in part], dtype=torch.long))

    if cfg["checkpoint"] not in _LOADED:
        _LOADED[cfg["checkpoint"]] = (AutoTokenizer.from_pretrained(cfg["checkpoint"]),
                                      AutoModel.from_pretrained(cfg["checkpoint"]).eval())
    tokenizer, encoder = _LOADED[cfg["checkpoint"]]
    embed_start = time.monotonic()
    text_train = embed(torch, tokenizer, encoder, [r[cfg["text"]] for r in train_rows], cfg["max_length"])
    text_val = embed(torch, tokenizer, encoder, [r[cfg["text"]] for r in val_rows], cfg["max_length"])
    embed_seconds = time.monotonic() - embed_start
    num_train, cat_train, y_train = tensors(train_rows)
    num_val, cat_val, y_val = tensors(val_rows)

    train_start = time.monotonic()
    torch.manual_seed(cfg["seed"])
    model = build_model(torch, cfg, encoder.config.hidden_size, cardinalities, dropout)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.999), eps=1e-8)
    n, b = len(train_rows), cfg["batch_size"]
    steps_per_epoch = math.ceil(n / b)
    total = steps_per_epoch * cfg["epochs"]
    warmup = int(cfg["warmup"] * total)

    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    schedule = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    auc = None
    for _ in range(cfg["epochs"]):
        model.train()
        perm = torch.randperm(n)
        for s in range(0, n, b):
            idx = perm[s:s + b]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(text_train[idx], num_train[idx], cat_train[idx]), y_train[idx])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            schedule.step()
        model.eval()
        with torch.inference_mode():
            logits = model(text_val, num_val, cat_val)
            F.cross_entropy(logits, y_val).item()
            auc = roc_auc(y_val.tolist(), torch.softmax(logits, dim=1)[:, 1].tolist())
    end = time.monotonic()
    return {"lr": lr, "dropout": dropout, "val_roc_auc": round(float(auc), 4), "seconds": round(end - start, 2),
            "embed_seconds": round(embed_seconds, 2), "train_seconds": round(end - train_start, 2),
            "train_rows": n, "validation_rows": len(val_rows)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pipeline", default=os.path.join(HERE, "pipeline.yaml"), help="the pipeline whose settings to follow")
    p.add_argument("--data", required=True, help="the training CSV (the driver's subset)")
    p.add_argument("--trial", action="append", required=True, metavar="LR,DROPOUT", help="one trial (repeatable)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = p.parse_args()
    trials = []
    for t in args.trial:
        try:
            lr, dropout = (float(x) for x in t.split(","))
        except ValueError:
            p.error(f"--trial {t!r}: expected LR,DROPOUT, e.g. --trial 1e-3,0.1")
        trials.append((lr, dropout))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    cfg = settings(args.pipeline)
    if not os.path.exists(os.path.join(cfg["checkpoint"], "config.json")):
        print(json.dumps({"error": f"{cfg['checkpoint']} not found; run scripts/fetch-models --only all-MiniLM-L6-v2"}))
        return 1
    for lr, dropout in trials:
        try:
            record = trial(torch, cfg, args.data, lr, dropout)
        except Exception as e:  # reported to the driver as a record
            print(json.dumps({"lr": lr, "dropout": dropout, "error": f"{type(e).__name__}: {e}"}), flush=True)
            return 1
        print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
