"""scikit-learn baselines (seeds 000 and 004), and `RowModel`: a registered estimator fitted on manifest rows.

Registered models (`kind="sklearn"`; builders return unfitted estimators):

- `tfidf_svm`: TF-IDF of word 1–2-grams ‖ character 2–4-grams (Korean needs the latter) → LinearSVC.
  Input: the `text` column.
- `tfidf_nb`: the same features → multinomial naive Bayes. Input: `text`.
- `mfcc_random_forest`: 13 MFCC means per clip (librosa defaults, 22.05 kHz) → random forest
  (seed 000's audio baseline). Input: the wav files, `audio_path` relative to the corpus `data_dir`.

Example:

```python
from tfsent.models import registry
from tfsent.models.classic import as_row_model

model = as_row_model("tfidf_svm", registry.get("tfidf_svm").builder(c=0.5))
model.fit_rows(train_rows, y_train, data_dir=sidecar["data_dir"], classes=sidecar["classes"])
```

`bin/train` fits them through `tfsent.tasks.ClassicTask` and writes the same run files as a Keras run,
so `bin/evaluate` scores them on any split.
"""

from __future__ import annotations

import os

import numpy as np
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


def full_probabilities(estimator, x, num_classes):
    """Probabilities over all classes even when a class was absent from the training rows."""
    probs = class_probabilities(estimator, x)
    out = np.zeros((probs.shape[0], num_classes), dtype="float64")
    out[:, np.asarray(estimator.classes_, dtype=int)] = probs
    return out


class RowModel:
    """A registered scikit-learn model that fits on and scores manifest rows.

    Models that read more than one column (e.g. `stacking`) implement `fit_rows` /
    `probabilities_rows` themselves; every other estimator is wrapped in this class, which turns rows
    into the model's inputs (`model_inputs`). What `bin/train` pickles as `model.pkl`.

    Args:
        name: the registered model name.
        estimator: the unfitted estimator its builder returned.

    Example:

    ```python
    model = as_row_model("tfidf_svm", registry.get("tfidf_svm").builder())
    model.fit_rows(train_rows, y, data_dir="", classes=["neutral", "happy", "sad", "angry"])
    probs = model.probabilities_rows(test_rows, split="test", data_dir="", classes=["neutral", "happy", "sad", "angry"])
    ```
    """

    def __init__(self, name, estimator):
        self.name = name
        self.estimator = estimator

    def fit_rows(self, rows, labels, *, data_dir, classes, groups=None):
        self.estimator.fit(model_inputs(self.name, self.estimator, rows, data_dir), labels)
        return self

    def probabilities_rows(self, rows, *, split, data_dir, classes):
        x = model_inputs(self.name, self.estimator, rows, data_dir)
        return full_probabilities(self.estimator, x, len(classes))


def as_row_model(name, estimator):
    """`estimator` itself when it fits on manifest rows, else a `RowModel` around it."""
    return estimator if hasattr(estimator, "fit_rows") else RowModel(name, estimator)
