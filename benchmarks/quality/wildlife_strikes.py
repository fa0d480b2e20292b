#!/usr/bin/env python3
"""scikit-learn references for pipelines/data/wildlife-strikes: text alone, the other columns
alone, and both, on the committed split (train.csv / test.csv, 80/20 stratified by `effect`).

    python benchmarks/quality/wildlife_strikes.py [--markdown] [--json OUT.json] [--skip-minilm]

Needs scikit-learn, pandas, and for the MiniLM rows torch + transformers and the checkpoint in
models/all-MiniLM-L6-v2 (scripts/fetch-models; $RUNPIPE_MODELS overrides models/). Every model
trains on all of train.csv and is scored on test.csv; the label is `effect` (yes / no), the
positive class `yes`. Prints accuracy, ROC AUC and macro F1 per model, and the fit time.

Columns, read the way runpipe reads them (the same missing-value spellings):
- text: `remarks`;
- categorical: operator, aircraft, phase, time_of_day, sky, state, species, birds_seen,
  birds_struck;
- numeric: num_engines, mass_class, height, speed, year, month;
- `id` is ignored.

Models (scikit-learn defaults unless said):
- majority: the most frequent training class (`no`), probability = its training share.
- linear (text | tabular | text + tabular): LogisticRegression(max_iter=5000) (L2, C=1) on
  TF-IDF of the remarks (word 1- and 2-grams, min_df=2, sublinear tf) and/or the tabular block:
  numerics median-imputed with missing-indicator columns and standard-scaled, categories one-hot
  (missing as its own category, categories seen fewer than 5 times pooled, unknown ignored).
- hgb (tabular | tabular + text SVD): HistGradientBoostingClassifier(random_state=0); categories
  ordinal-encoded (fewer than 5 occurrences pooled, so every column stays within the 255 bins)
  and split natively; missing values left to the model. `+ text SVD`: 64 components of
  TruncatedSVD(random_state=0) of the same TF-IDF appended as numeric columns.
- minilm (text | text + tabular): frozen all-MiniLM-L6-v2, mean-pooled over the attention mask
  (max_length 128, which truncates 48 of the 16 516 remarks), the 384 features standard-scaled;
  LogisticRegression as above, alone or with the tabular block of `linear`. The embeddings are
  computed once and kept in benchmarks/quality/work/cache/ (keyed by the CSVs' and the weights'
  SHA-256).
"""

import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import TruncatedSVD
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(ROOT, "pipelines", "data", "wildlife-strikes")
CACHE = os.path.join(HERE, "work", "cache")

# The cells runpipe reads as missing by default (data.missing_values), as reference.py.
MISSING = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]
LABEL, POSITIVE = "effect", "yes"
TEXT = "remarks"
CATEGORICAL = ["operator", "aircraft", "phase", "time_of_day", "sky", "state", "species", "birds_seen", "birds_struck"]
NUMERIC = ["num_engines", "mass_class", "height", "speed", "year", "month"]
SEED = 0


def read(name):
    dtypes = {c: str for c in CATEGORICAL + [TEXT, LABEL]}
    df = pd.read_csv(os.path.join(DATA, name), dtype=dtypes, na_values=MISSING, keep_default_na=False)
    df[TEXT] = df[TEXT].fillna("")
    return df


def tfidf():
    return TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)


def tabular_linear():
    return [("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()), NUMERIC),
            ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="__missing__"),
                                  OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5)), CATEGORICAL)]


def logistic(parts):
    return make_pipeline(ColumnTransformer(parts), LogisticRegression(max_iter=5000))


def hgb(with_text):
    parts = [("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                    encoded_missing_value=np.nan, min_frequency=5), CATEGORICAL),
             ("num", "passthrough", NUMERIC)]
    if with_text:
        parts.append(("svd", make_pipeline(tfidf(), TruncatedSVD(64, random_state=SEED)), TEXT))
    mask = [True] * len(CATEGORICAL) + [False] * (len(NUMERIC) + (64 if with_text else 0))
    return make_pipeline(ColumnTransformer(parts, verbose_feature_names_out=False),
                         HistGradientBoostingClassifier(categorical_features=mask, random_state=SEED))


class Majority:
    def fit(self, X, y):
        values, counts = np.unique(y, return_counts=True)
        self.classes_ = values
        self.share_ = counts / counts.sum()
        self.top_ = values[np.argmax(counts)]
        return self

    def predict(self, X):
        return np.full(len(X), self.top_, dtype=object)

    def predict_proba(self, X):
        return np.tile(self.share_, (len(X), 1))


# ------------------------------------------------------------------------------ MiniLM features

def minilm_folder():
    base = os.environ.get("RUNPIPE_MODELS", os.path.join(ROOT, "models"))
    path = os.path.join(base, "all-MiniLM-L6-v2")
    if not os.path.exists(os.path.join(path, "model.safetensors")):
        raise SystemExit(f"all-MiniLM-L6-v2 not found at {path}; run scripts/fetch-models "
                         "--only all-MiniLM-L6-v2, or pass --skip-minilm")
    return path


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def minilm_embeddings(texts_by_part):
    """{part: [rows, 384] float32} mean-pooled frozen MiniLM features, cached on disk."""
    folder = minilm_folder()
    key = hashlib.sha256("".join(
        [file_sha256(os.path.join(DATA, f"{p}.csv")) for p in sorted(texts_by_part)]
        + [file_sha256(os.path.join(folder, "model.safetensors")), "mean,128"]).encode()).hexdigest()[:16]
    path = os.path.join(CACHE, f"wildlife-strikes-minilm-{key}.npz")
    if os.path.exists(path):
        with np.load(path) as z:
            return {p: z[p] for p in texts_by_part}
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModel, AutoTokenizer
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    out = {}
    for part, texts in texts_by_part.items():
        enc = tok(list(texts), truncation=True, max_length=128)
        order = np.argsort([len(ids) for ids in enc["input_ids"]], kind="stable")
        feats = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
        t0 = time.perf_counter()
        for s in range(0, len(order), 128):
            idx = order[s:s + 128]
            batch = tok.pad({"input_ids": [enc["input_ids"][i] for i in idx]}, return_tensors="pt")
            with torch.inference_mode():
                hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
                m = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                feats[idx] = ((hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)).numpy()
        print(f"minilm: embedded {part} ({len(texts)} rows) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        out[part] = feats
    os.makedirs(CACHE, exist_ok=True)
    np.savez(path, **out)
    return out


# ------------------------------------------------------------------------------ running

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--skip-minilm", action="store_true", help="leave out the MiniLM rows")
    args = p.parse_args()

    train, test = read("train.csv"), read("test.csv")
    y_train, y_test = train[LABEL].to_numpy(), test[LABEL].to_numpy()
    models = [
        ("majority class", "-", Majority()),
        ("linear: TF-IDF", "text", logistic([("text", tfidf(), TEXT)])),
        ("linear: one-hot + scaled", "tabular", logistic(tabular_linear())),
        ("linear: TF-IDF + one-hot + scaled", "both", logistic([("text", tfidf(), TEXT)] + tabular_linear())),
        ("HGB", "tabular", hgb(with_text=False)),
        ("HGB + TF-IDF SVD(64)", "both", hgb(with_text=True)),
    ]
    if not args.skip_minilm:
        emb = minilm_embeddings({"train": train[TEXT].tolist(), "test": test[TEXT].tolist()})
        names = [f"e{i}" for i in range(emb["train"].shape[1])]
        train = pd.concat([train, pd.DataFrame(emb["train"], columns=names)], axis=1)
        test = pd.concat([test, pd.DataFrame(emb["test"], columns=names)], axis=1)
        minilm = [("minilm", StandardScaler(), names)]
        models += [
            ("linear: MiniLM frozen", "text", logistic(minilm)),
            ("linear: MiniLM frozen + one-hot + scaled", "both", logistic(minilm + tabular_linear())),
        ]

    results = []
    for name, inputs, model in models:
        t0 = time.perf_counter()
        model.fit(train, y_train)
        seconds = time.perf_counter() - t0
        pred = model.predict(test)
        classes = list(model.classes_)
        proba = model.predict_proba(test)[:, classes.index(POSITIVE)]
        results.append({
            "model": name, "inputs": inputs,
            "accuracy": float(accuracy_score(y_test, pred)),
            "roc_auc": float(roc_auc_score(y_test == POSITIVE, proba)),
            "macro_f1": float(f1_score(y_test, pred, average="macro")),
            "fit_seconds": seconds,
        })
        print(f"{name}: done in {seconds:.1f} s", file=sys.stderr, flush=True)

    header = ["model", "inputs", "accuracy", "ROC AUC", "macro F1", "fit s"]
    rows = [[r["model"], r["inputs"], f"{100 * r['accuracy']:.2f} %", f"{r['roc_auc']:.4f}",
             f"{r['macro_f1']:.4f}", f"{r['fit_seconds']:.1f}"] for r in results]
    print(f"wildlife-strikes: {len(train)} train / {len(test)} test rows, label `{LABEL}`, positive `{POSITIVE}`")
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
        for r in [header] + rows:
            print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
