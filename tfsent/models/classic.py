"""scikit-learn baselines (seeds 000 and 004) and `fit_and_score`, which `bin/train` runs for them.

Registered models (`kind="sklearn"`; builders return unfitted estimators):

- `tfidf_svm`: TF-IDF of word 1–2-grams ‖ character 2–4-grams (Korean needs the latter) → LinearSVC.
  Input: the `text` column.
- `tfidf_nb`: the same features → multinomial naive Bayes. Input: `text`.
- `mfcc_random_forest`: 13 MFCC means per clip (librosa defaults, 22.05 kHz) → random forest
  (seed 000's audio baseline). Input: the wav files, `audio_path` relative to the corpus `data_dir`.

Example:

```python
from tfsent.models import registry
from tfsent.models.classic import fit_and_score

result = fit_and_score(registry.get("tfidf_svm"), frame, sidecar, model_dir="runs/svm")
result["valid_metrics"]["accuracy"]
```
"""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from tfsent.models import registry

# What each sklearn model reads from the manifest: "text" (strings) or "mfcc_mean" ([N, n_mfcc]).
MODEL_INPUTS = {}


def _tfidf_features(word_ngrams, char_ngrams, min_df):
    return FeatureUnion(
        [
            (
                "word",
                TfidfVectorizer(
                    analyzer="word",
                    ngram_range=tuple(word_ngrams),
                    token_pattern=r"(?u)\b\w+\b",
                    min_df=min_df,
                    sublinear_tf=True,
                ),
            ),
            (
                "char",
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=tuple(char_ngrams), min_df=min_df, sublinear_tf=True
                ),
            ),
        ]
    )


@registry.register(
    "tfidf_svm",
    modality="text",
    kind="sklearn",
    seed="S4 (seed 004)",
    description="TF-IDF word 1-2-grams ‖ character 2-4-grams → linear SVM (scikit-learn)",
)
def tfidf_svm(*, word_ngrams=(1, 2), char_ngrams=(2, 4), min_df=1, c=1.0, class_weight=None):
    """Unfitted pipeline over raw `text` strings."""
    return Pipeline(
        [
            ("tfidf", _tfidf_features(word_ngrams, char_ngrams, min_df)),
            ("svm", LinearSVC(C=c, class_weight=class_weight)),
        ]
    )


@registry.register(
    "tfidf_nb",
    modality="text",
    kind="sklearn",
    seed="S4 (seed 004)",
    description="TF-IDF word 1-2-grams ‖ character 2-4-grams → multinomial naive Bayes",
)
def tfidf_nb(*, word_ngrams=(1, 2), char_ngrams=(2, 4), min_df=1, alpha=0.1):
    """Unfitted pipeline over raw `text` strings."""
    return Pipeline(
        [
            ("tfidf", _tfidf_features(word_ngrams, char_ngrams, min_df)),
            ("nb", MultinomialNB(alpha=alpha)),
        ]
    )


@registry.register(
    "mfcc_random_forest",
    modality="audio",
    kind="sklearn",
    seed="S0 (seed 000)",
    description="random forest on 13 MFCC means per clip (librosa, 22.05 kHz): seed 000's audio baseline",
)
def mfcc_random_forest(*, n_estimators=300, max_depth=None, random_state=0, n_mfcc=13, sample_rate=22050):
    """Unfitted forest over `mfcc_mean` arrays `[N, n_mfcc]` (see `mfcc_means`)."""
    forest = RandomForestClassifier(
        n_estimators=n_estimators, max_depth=max_depth, random_state=random_state, n_jobs=1
    )
    forest.tfsent_audio = {"n_mfcc": n_mfcc, "sample_rate": sample_rate}
    return forest


MODEL_INPUTS.update(tfidf_svm="text", tfidf_nb="text", mfcc_random_forest="mfcc_mean")


def mfcc_means(frame, data_dir, n_mfcc=13, sample_rate=22050):
    """`[N, n_mfcc]` per-clip MFCC means of the manifest rows' wav files (read-only).

    Raises `FileNotFoundError` naming the first missing file.
    """
    import librosa

    rows = []
    for path in frame["audio_path"]:
        full = path if os.path.isabs(path) else os.path.join(data_dir, path)
        if not os.path.isfile(full):
            raise FileNotFoundError(f"audio file not found: {full} (audio_path {path!r}, data_dir {data_dir!r})")
        y, sr = librosa.load(full, sr=sample_rate, mono=True)
        if y.size == 0:
            raise ValueError(f"empty audio file: {full}")
        rows.append(librosa.feature.mfcc(y=y, sr=sr, n_mfcc=n_mfcc).mean(axis=1))
    return np.stack(rows).astype("float32") if rows else np.zeros((0, n_mfcc), "float32")


def model_inputs(name, estimator, frame, data_dir):
    """The inputs model `name` takes for the manifest rows in `frame`."""
    kind = MODEL_INPUTS.get(name)
    if kind == "text":
        return frame["text"].fillna("").astype(str).tolist()
    if kind == "mfcc_mean":
        audio = getattr(estimator, "tfsent_audio", {"n_mfcc": 13, "sample_rate": 22050})
        return mfcc_means(frame, data_dir, **audio)
    raise ValueError(f"no input recipe for sklearn model {name!r}")


def class_probabilities(estimator, x):
    """`[N, C]` class scores: `predict_proba` where the model has it, else a softmax of the SVM
    decision values (uncalibrated; enough for ranking and stacking)."""
    if hasattr(estimator, "predict_proba"):
        return estimator.predict_proba(x)
    scores = np.asarray(estimator.decision_function(x), dtype="float64")
    if scores.ndim == 1:
        scores = np.stack([-scores, scores], axis=1)
    scores = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(scores)
    return e / e.sum(axis=1, keepdims=True)


def _full_probabilities(estimator, x, num_classes):
    """Probabilities over all classes even when a class was absent from the training rows."""
    probs = class_probabilities(estimator, x)
    out = np.zeros((probs.shape[0], num_classes), dtype="float64")
    out[:, np.asarray(estimator.classes_, dtype=int)] = probs
    return out


def _atomic_bytes(path, data):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def fit_and_score(
    entry, frame, sidecar, *, model_dir, train_split="train", valid_split="valid", model_kwargs=None
):
    """Fits a registered sklearn model on the `train_split` rows and scores the `valid_split` rows.

    Args:
        entry: the `registry.ModelEntry` (kind `sklearn`).
        frame: the manifest DataFrame (Contract 1); labels from `emotion`.
        sidecar: the manifest sidecar (`classes`, `data_dir`).
        model_dir: where `model.pkl`, `valid_predictions.csv` and `metrics.json` are written.
        train_split, valid_split: values of the `split` column.
        model_kwargs: builder arguments (`--model_kwargs`).

    Returns:
        `{"model", "classes", "valid_predictions" (DataFrame), "valid_metrics"}`.
    """
    if entry.kind != "sklearn":
        raise ValueError(f"fit_and_score: model {entry.name!r} is a {entry.kind} model")
    if entry.name == "stacking":
        from tfsent.models.stacking import fit_and_score_stacking

        return fit_and_score_stacking(
            entry, frame, sidecar, model_dir=model_dir, train_split=train_split,
            valid_split=valid_split, model_kwargs=model_kwargs,
        )
    classes = list(sidecar["classes"])
    index = {c: i for i, c in enumerate(classes)}
    split = frame["split"].astype(str)
    train = frame[split == str(train_split)]
    valid = frame[split == str(valid_split)]
    if train.empty:
        raise ValueError(f"no rows with split == {train_split!r} in the manifest")
    unknown = sorted(set(frame["emotion"].dropna()) - set(classes))
    if unknown:
        raise ValueError(f"manifest emotions {unknown} are not in the class set {classes}")
    data_dir = sidecar.get("data_dir", "")
    estimator = entry.builder(**(model_kwargs or {}))
    y_train = train["emotion"].map(index).to_numpy(dtype=int)
    estimator.fit(model_inputs(entry.name, estimator, train, data_dir), y_train)

    os.makedirs(model_dir, exist_ok=True)
    _atomic_bytes(os.path.join(model_dir, "model.pkl"), pickle.dumps(estimator))
    result = {"model": estimator, "classes": classes}
    if not valid.empty:
        probs = _full_probabilities(estimator, model_inputs(entry.name, estimator, valid, data_dir), len(classes))
        pred = probs.argmax(axis=1)
        predictions = pd.DataFrame(
            {"utt_id": valid["utt_id"].to_numpy(), "label": valid["emotion"].to_numpy(),
             "prediction": [classes[i] for i in pred]}
        )
        for i, c in enumerate(classes):
            predictions[f"prob_{c}"] = probs[:, i]
        from tfsent.evaluation.metrics import classification_metrics

        y_valid = valid["emotion"].map(index).to_numpy(dtype=int)
        metrics = classification_metrics(y_valid, pred, classes)
        metrics["split"] = str(valid_split)
        tmp = os.path.join(model_dir, f"valid_predictions.csv.tmp-{os.getpid()}")
        predictions.to_csv(tmp, index=False)
        os.replace(tmp, os.path.join(model_dir, "valid_predictions.csv"))
        _atomic_bytes(
            os.path.join(model_dir, "metrics.json"),
            json.dumps(metrics, indent=2, ensure_ascii=False, default=float).encode("utf-8"),
        )
        result.update(valid_predictions=predictions, valid_metrics=metrics)
    return result


# Registers `stacking` (the registry imports this module, not `stacking`, to load sklearn models).
from tfsent.models import stacking as _stacking  # noqa: E402,F401
