"""Seed 001's stacking ensemble: a meta-learner on the base models' out-of-fold class probabilities.

The meta-learner never sees a probability that a base model produced for a row it was trained on:
for scikit-learn base models the out-of-fold probabilities are computed here (k folds over the
training split, grouped by speaker when the manifest has one); for Keras base models (text, audio,
fusion runs) each base is a `bin/crossval` directory over the same k-fold manifest: its
`oof_predictions.csv` (`utt_id`, `fold`, `p_<class>`..., one row per manifest row, each predicted by the
fold model that did not train on it) gives the meta-learner its training inputs and the probabilities of
the rows it scores. (A plain run dir holding `oof_predictions.csv` works too; it then scores a split
from that split's predictions, `RunDir.predictions_path`, which `bin/evaluate --split=S` writes.)
Under `bin/crossval` of the ensemble, fold k's meta-learner is fitted on OOF probabilities that fold
models which did see fold k produced (their labels, never their predictions): the usual single-level
stacking, not nested cross-validation.

Registered model: `stacking` (`kind="sklearn"`), logistic regression by default.

Example:

```python
probs = out_of_fold_probabilities(lambda: tfidf_nb(), texts, labels, num_classes=4, n_splits=5)
meta = fit_meta_learner([probs_text, probs_audio], labels)
ensemble = stacking(base_models="tfidf_svm:tfidf_nb", n_splits=5)     # a row model (see classic.RowModel)
ensemble.fit_rows(train_rows, y_train, data_dir=sidecar["data_dir"], classes=sidecar["classes"])
```
"""

from __future__ import annotations

import os


import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, StratifiedKFold

from tfsent.core.run_dir import OOF_PREDICTIONS_FILE, RunDir
from tfsent.models import registry
from tfsent.models.classic import RowModel, full_probabilities, model_inputs



@registry.register(
    "stacking",
    modality="multimodal",
    kind="sklearn",
    seed="S1 (seed 001)",
    description="logistic-regression meta-learner on out-of-fold class probabilities of chosen base "
    "models (sklearn models by name, Keras runs by directory)",
)
def stacking(*, base_models="", base_runs="", n_splits=5, c=1.0, seed=0):
    """Unfitted ensemble. `base_models`: `:`-separated registered sklearn model names;
    `base_runs`: `:`-separated run directories of Keras base models (see module docstring)."""
    return StackingEnsemble(LogisticRegression(C=c, max_iter=2000), base_models=_names(base_models),
                            base_runs=_names(base_runs), n_splits=int(n_splits), seed=int(seed))


def _names(value):
    """`a:b` (a string) or `("a", "b")` (what `--model_kwargs` parses `a:b` into) → `["a", "b"]`."""
    parts = value if isinstance(value, (list, tuple)) else str(value).split(":")
    return [str(p) for p in parts if str(p)]


class StackingEnsemble:
    """Base models + meta-learner, fitted on and scoring manifest rows (a row model, see
    `tfsent.models.classic.RowModel`).

    Args:
        meta: the unfitted meta-learner.
        base_models: registered scikit-learn model names (cross-fitted here).
        base_runs: run directories of Keras base models (their prediction files are read).
        n_splits: folds for the out-of-fold probabilities of `base_models`.
        seed: fold shuffling seed.
    """

    def __init__(self, meta, *, base_models=(), base_runs=(), n_splits=5, seed=0):
        if not base_models and not base_runs:
            raise ValueError("stacking needs --model_kwargs=base_models=NAME:NAME and/or base_runs=DIR:DIR")
        for name in base_models:
            if name == "stacking" or registry.get(name).kind != "sklearn":
                raise ValueError(f"stacking: base_models takes sklearn models; {name!r} is not one (use base_runs)")
        self.meta = meta
        self.base_models, self.base_runs = list(base_models), list(base_runs)
        self.n_splits, self.seed = n_splits, seed
        self.fitted_bases = {}

    def fit_rows(self, rows, labels, *, data_dir, classes, groups=None):
        labels = np.asarray(labels)
        oof = []
        for name in self.base_models:
            builder = registry.get(name).builder
            x = model_inputs(name, builder(), rows, data_dir)
            oof.append(out_of_fold_probabilities(builder, x, labels, num_classes=len(classes),
                                                 n_splits=self.n_splits, groups=groups, seed=self.seed))
            self.fitted_bases[name] = RowModel(name, builder().fit(x, labels))
        for run in self.base_runs:
            oof.append(run_probabilities(run, RunDir(run).file(OOF_PREDICTIONS_FILE), rows["utt_id"],
                                         classes, need_fold=True))
        fit_meta_learner(oof, labels, self.meta)
        return self

    def probabilities_rows(self, rows, *, split, data_dir, classes):
        held = [self.fitted_bases[name].probabilities_rows(rows, split=split, data_dir=data_dir, classes=classes)
                for name in self.base_models]
        for run in self.base_runs:
            held.append(run_probabilities(run, base_predictions_path(run, split), rows["utt_id"],
                                          classes, need_fold=False))
        return full_probabilities(self.meta, np.concatenate(held, axis=1), len(classes))


def base_predictions_path(run_dir, split):
    """A base run's predictions of `split`: its `bin/evaluate` file; for a `bin/crossval` directory,
    its `oof_predictions.csv`, where every row comes from the fold model that never trained on it."""
    run = RunDir(run_dir)
    if run.model_kind() is None and os.path.isfile(run.file(OOF_PREDICTIONS_FILE)):
        return run.file(OOF_PREDICTIONS_FILE)
    return run.predictions_path(split)


def out_of_fold_probabilities(make_estimator, inputs, labels, *, num_classes, n_splits=5, groups=None, seed=0):
    """`[N, num_classes]` probabilities, each row from a model fitted on the other folds only.

    Args:
        make_estimator: zero-argument callable returning a fresh unfitted estimator.
        inputs: list or array indexable by integer arrays.
        labels: int class ids `[N]`.
        groups: optional group ids (speakers): folds never split a group.
    """
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
        out[held_idx] = full_probabilities(est, take(held_idx), num_classes)
    if np.isnan(out).any():
        raise RuntimeError("out-of-fold prediction left rows without a held-out prediction")
    return out


def fit_meta_learner(base_probabilities, labels, meta=None):
    """Fits `meta` (default logistic regression) on the concatenated base probabilities."""
    meta = meta if meta is not None else LogisticRegression(max_iter=2000)
    meta.fit(np.concatenate(base_probabilities, axis=1), np.asarray(labels))
    return meta


def run_probabilities(run_dir, path, utt_ids, classes, need_fold):
    """`[N, C]` probabilities of base run `run_dir` for `utt_ids`, from its prediction file `path`
    (columns `prob_<class>` or `p_<class>`; `fold` too for out-of-fold files)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"stacking: base run {run_dir!r} has no {os.path.relpath(path, run_dir)}")
    table = pd.read_csv(path)
    prefix = "prob_" if f"prob_{classes[0]}" in table.columns else "p_"
    cols = [f"{prefix}{c}" for c in classes]
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
    probs = table.loc[list(utt_ids), cols].to_numpy(dtype="float64")
    if np.isnan(probs).any():
        raise ValueError(f"{path}: {int(np.isnan(probs).any(axis=1).sum())} rows have no probabilities "
                         f"(their audio could not be read when the base run was scored)")
    return probs
