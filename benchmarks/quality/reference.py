"""The scikit-learn side of the quality benchmark, and the one scoring function for all models.

Runs inside the benchmark's Python; called by `benchmarks/quality/run` as

    python reference.py fit DATASET_DIR MODEL OUT.csv [--seed S]   # MODEL: hgb | linear
    python reference.py score DATASET_DIR PREDICTIONS.csv           # any model's predictions

`fit` trains on DATASET_DIR/train.csv, predicts DATASET_DIR/test.csv and writes the predictions in
runpipe's test_predictions.csv layout (`<label>_predicted`, and `proba_<class>` for
classification); it prints {"fit_seconds": …} (preprocessing + fit, not prediction).
`score` reads a predictions file of any of the three models and prints the metrics as JSON, so
every model is scored by the same code from its predictions.

Models (scikit-learn defaults unless said):
- hgb: HistGradientBoostingClassifier / Regressor(random_state=seed); categorical columns
  ordinal-encoded and passed as `categorical_features` (native categorical splits); missing
  values left to the model.
- linear: numeric columns median-imputed and standard-scaled, categorical columns one-hot encoded
  (missing as its own category, unknown test categories ignored); LogisticRegression(max_iter=5000)
  for classification (multinomial, L2, C=1), Ridge(alpha=1) for regression.
"""

import json
import sys
import time

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, mean_squared_error, r2_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

# The cells runpipe reads as missing by default (data.missing_values), so that both sides agree.
MISSING = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]


def read_meta(ddir):
    with open(f"{ddir}/meta.json") as f:
        return json.load(f)


def read_table(path, meta):
    dtypes = {c: str for c in meta["categorical"]}
    if meta["task"] != "regression":
        dtypes[meta["label"]] = str
    return pd.read_csv(path, dtype=dtypes, na_values=MISSING, keep_default_na=False)


def build_model(meta, kind, seed):
    cat, num = meta["categorical"], meta["numeric"]
    classify = meta["task"] != "regression"
    if kind == "hgb":
        pre = ColumnTransformer(
            [("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                    encoded_missing_value=np.nan), cat),
             ("num", "passthrough", num)],
            verbose_feature_names_out=False)
        mask = [True] * len(cat) + [False] * len(num)
        cls = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
        return make_pipeline(pre, cls(categorical_features=mask if cat else None, random_state=seed))
    if kind == "linear":
        parts = [("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), num)]
        if cat:
            parts.append(("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="__missing__"),
                                               OneHotEncoder(handle_unknown="ignore")), cat))
        pre = ColumnTransformer(parts)
        est = LogisticRegression(max_iter=5000) if classify else Ridge(alpha=1.0)
        return make_pipeline(pre, est)
    raise SystemExit(f"unknown model {kind}")


def fit(ddir, kind, out, seed):
    meta = read_meta(ddir)
    train, test = read_table(f"{ddir}/train.csv", meta), read_table(f"{ddir}/test.csv", meta)
    label = meta["label"]
    features = meta["categorical"] + meta["numeric"]
    model = build_model(meta, kind, seed)
    t0 = time.perf_counter()
    model.fit(train[features], train[label])
    seconds = time.perf_counter() - t0
    pred = pd.DataFrame({f"{label}_predicted": model.predict(test[features])})
    if meta["task"] != "regression":
        proba = model.predict_proba(test[features])
        for i, c in enumerate(model.classes_):
            pred[f"proba_{c}"] = proba[:, i]
    pred.to_csv(out, index=False)
    print(json.dumps({"fit_seconds": seconds}))


def score(ddir, predictions):
    """Metrics of one model's test predictions. Same function for runpipe, HGB and linear."""
    meta = read_meta(ddir)
    label = meta["label"]
    test = read_table(f"{ddir}/test.csv", meta)
    pred = pd.read_csv(predictions, dtype=str if meta["task"] != "regression" else None,
                       keep_default_na=False)
    if len(pred) != len(test):
        raise SystemExit(f"{predictions}: {len(pred)} rows, test.csv has {len(test)}")
    col = f"{label}_predicted"
    if meta["task"] == "regression":
        y, p = test[label].astype(float).to_numpy(), pred[col].astype(float).to_numpy()
        return {"rmse": float(np.sqrt(mean_squared_error(y, p))), "r2": float(r2_score(y, p))}
    y, p = test[label].to_numpy(), pred[col].to_numpy()
    result = {"accuracy": float(accuracy_score(y, p))}
    classes = meta["classes"]
    missing = [c for c in classes if f"proba_{c}" not in pred.columns]
    if missing:
        raise SystemExit(f"{predictions}: no proba_ column for class(es) {missing}")
    proba = pred[[f"proba_{c}" for c in classes]].astype(float).to_numpy()
    if meta["task"] == "binary":
        # Positive class: the second in sorted order (malignant, yes).
        result["roc_auc"] = float(roc_auc_score(y == classes[1], proba[:, 1]))
    else:
        result["roc_auc"] = float(roc_auc_score(y, proba / proba.sum(axis=1, keepdims=True),
                                                multi_class="ovr", average="macro", labels=classes))
    return result


def main():
    args = sys.argv[1:]
    if args[:1] == ["fit"] and len(args) >= 4:
        seed = int(args[args.index("--seed") + 1]) if "--seed" in args else 0
        fit(args[1], args[2], args[3], seed)
    elif args[:1] == ["score"] and len(args) == 3:
        print(json.dumps(score(args[1], args[2])))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
