"""Seed 001's stacking ensemble: a meta-learner on the base models' out-of-fold class probabilities.

The meta-learner never sees a probability that a base model produced for a row it was trained on:
for scikit-learn base models the out-of-fold probabilities are computed here (k folds over the
training split, grouped by speaker when the manifest has one); for Keras base models (text, audio,
fusion runs) each run directory must hold `oof_predictions.csv` (`utt_id`, `fold`, `prob_<class>`...,
one row per training utterance, each predicted by the fold model that did not train on it) and
`valid_predictions.csv` (`utt_id`, `prob_<class>`...).

Registered model: `stacking` (`kind="sklearn"`), logistic regression by default.

Example:

```python
probs = out_of_fold_probabilities(lambda: tfidf_nb(), texts, labels, num_classes=4, n_splits=5)
meta = fit_meta_learner([probs_text, probs_audio], labels)
```
"""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, StratifiedKFold

from tfsent.models import registry

OOF_FILE = "oof_predictions.csv"
VALID_FILE = "valid_predictions.csv"


@registry.register(
    "stacking",
    modality="multimodal",
    kind="sklearn",
    seed="S1 (seed 001)",
    description="logistic-regression meta-learner on out-of-fold class probabilities of chosen base "
    "models (sklearn models by name, Keras runs by directory)",
)
def stacking(*, base_models="", base_runs="", n_splits=5, c=1.0, seed=0):
    """Unfitted meta-learner. `base_models`: `:`-separated registered sklearn model names;
    `base_runs`: `:`-separated run directories of Keras base models (see module docstring)."""
    meta = LogisticRegression(C=c, max_iter=2000)
    meta.tfsent_stacking = {
        "base_models": _names(base_models),
        "base_runs": _names(base_runs),
        "n_splits": int(n_splits),
        "seed": int(seed),
    }
    return meta


def _names(value):
    """`a:b` (a string) or `("a", "b")` (what `--model_kwargs` parses `a:b` into) → `["a", "b"]`."""
    parts = value if isinstance(value, (list, tuple)) else str(value).split(":")
    return [str(p) for p in parts if str(p)]


def out_of_fold_probabilities(make_estimator, inputs, labels, *, num_classes, n_splits=5, groups=None, seed=0):
    """`[N, num_classes]` probabilities, each row from a model fitted on the other folds only.

    Args:
        make_estimator: zero-argument callable returning a fresh unfitted estimator.
        inputs: list or array indexable by integer arrays.
        labels: int class ids `[N]`.
        groups: optional group ids (speakers): folds never split a group.
    """
    from tfsent.models.classic import _full_probabilities

    labels = np.asarray(labels)
    n = len(labels)
    if groups is not None and len(set(groups)) >= n_splits:
        folds = GroupKFold(n_splits=n_splits).split(np.zeros(n), labels, groups)
    else:
        folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(np.zeros(n), labels)
    out = np.full((n, num_classes), np.nan)
    take = (lambda idx: [inputs[i] for i in idx]) if isinstance(inputs, list) else (lambda idx: inputs[idx])
    for fit_idx, held_idx in folds:
        est = make_estimator()
        est.fit(take(fit_idx), labels[fit_idx])
        out[held_idx] = _full_probabilities(est, take(held_idx), num_classes)
    if np.isnan(out).any():
        raise RuntimeError("out-of-fold prediction left rows without a held-out prediction")
    return out


def fit_meta_learner(base_probabilities, labels, meta=None):
    """Fits `meta` (default logistic regression) on the concatenated base probabilities."""
    meta = meta if meta is not None else LogisticRegression(max_iter=2000)
    meta.fit(np.concatenate(base_probabilities, axis=1), np.asarray(labels))
    return meta


def _run_probabilities(run_dir, file_name, utt_ids, classes, need_fold):
    path = os.path.join(run_dir, file_name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"stacking: base run {run_dir!r} has no {file_name}")
    table = pd.read_csv(path)
    cols = [f"prob_{c}" for c in classes]
    missing = [c for c in ["utt_id", *cols] + (["fold"] if need_fold else []) if c not in table.columns]
    if missing:
        raise ValueError(
            f"{path}: missing columns {missing}"
            + (" (out-of-fold predictions must say which fold model predicted each row)" if need_fold else "")
        )
    table = table.drop_duplicates("utt_id").set_index("utt_id")
    absent = [u for u in utt_ids if u not in table.index]
    if absent:
        raise ValueError(f"{path}: no prediction for {len(absent)} rows, e.g. {absent[:3]}")
    return table.loc[list(utt_ids), cols].to_numpy(dtype="float64")


def fit_and_score_stacking(entry, frame, sidecar, *, model_dir, train_split="train", valid_split="valid", model_kwargs=None):
    """`fit_and_score` for `stacking` (see `tfsent.models.classic.fit_and_score`)."""
    from tfsent.evaluation.metrics import classification_metrics
    from tfsent.models.classic import _full_probabilities, model_inputs

    meta = entry.builder(**(model_kwargs or {}))
    spec = meta.tfsent_stacking
    if not spec["base_models"] and not spec["base_runs"]:
        raise ValueError("stacking needs --model_kwargs=base_models=NAME:NAME and/or base_runs=DIR:DIR")
    classes = list(sidecar["classes"])
    index = {c: i for i, c in enumerate(classes)}
    split = frame["split"].astype(str)
    train, valid = frame[split == str(train_split)], frame[split == str(valid_split)]
    if train.empty or valid.empty:
        raise ValueError(f"stacking needs rows in both {train_split!r} and {valid_split!r}")
    y_train = train["emotion"].map(index).to_numpy(dtype=int)
    data_dir = sidecar.get("data_dir", "")
    groups = train["speaker"].astype(str).tolist() if "speaker" in train and train["speaker"].notna().all() else None
    oof, held = [], []
    for name in spec["base_models"]:
        base_entry = registry.get(name)
        if base_entry.kind != "sklearn" or name == "stacking":
            raise ValueError(f"stacking: base_models takes sklearn models; {name!r} is not one (use base_runs)")
        x_train = model_inputs(name, base_entry.builder(), train, data_dir)
        oof.append(out_of_fold_probabilities(
            base_entry.builder, x_train, y_train, num_classes=len(classes),
            n_splits=spec["n_splits"], groups=groups, seed=spec["seed"],
        ))
        full = base_entry.builder()
        full.fit(x_train, y_train)
        held.append(_full_probabilities(full, model_inputs(name, full, valid, data_dir), len(classes)))
    for run in spec["base_runs"]:
        oof.append(_run_probabilities(run, OOF_FILE, train["utt_id"], classes, need_fold=True))
        held.append(_run_probabilities(run, VALID_FILE, valid["utt_id"], classes, need_fold=False))
    fit_meta_learner(oof, y_train, meta)
    probs = _full_probabilities(meta, np.concatenate(held, axis=1), len(classes))
    pred = probs.argmax(axis=1)
    metrics = classification_metrics(valid["emotion"].map(index).to_numpy(dtype=int), pred, classes)
    metrics["split"] = str(valid_split)
    predictions = pd.DataFrame({"utt_id": valid["utt_id"].to_numpy(), "label": valid["emotion"].to_numpy(),
                                "prediction": [classes[i] for i in pred]})
    for i, c in enumerate(classes):
        predictions[f"prob_{c}"] = probs[:, i]
    os.makedirs(model_dir, exist_ok=True)
    for fname, data in (("model.pkl", pickle.dumps(meta)),
                        ("metrics.json", json.dumps(metrics, indent=2, default=float).encode()),
                        (VALID_FILE, predictions.to_csv(index=False).encode())):
        tmp = os.path.join(model_dir, f"{fname}.tmp-{os.getpid()}")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, os.path.join(model_dir, fname))
    return {"model": meta, "classes": classes, "valid_predictions": predictions, "valid_metrics": metrics}
