"""Metric definitions: the one place tfsent defines WA, UA, F1, RMSE, MAE, Pearson r and CCC.

Every number tfsent reports (`metrics.json`, TensorBoard, the README tables) comes from the
functions in this module, computed once over a whole split (never averaged over batches).

Classification (inputs are integer class ids `0 .. K-1`; `labels[k]` names class `k`):

- **WA, weighted accuracy** = overall accuracy = `sum_k TP_k / N`. "Weighted" because every class
  enters with the weight of its support. Reported as `accuracy` in `metrics.json`.
- **UA, unweighted accuracy** = macro recall = `(1 / |C|) * sum_{k in C} TP_k / support_k`, where
  `C` is the set of classes **present in `y_true`** (support > 0). A class with no true examples
  has no defined recall, so it does not enter UA (a prediction of such a class is still an error
  for the true class of that example). This is exactly `sklearn.metrics.balanced_accuracy_score`,
  and equals `recall_score(average="macro")` whenever every predicted class also occurs in
  `y_true`. Reported as `unweighted_accuracy`.
- Per-class **precision** `TP_k / (TP_k + FP_k)`, **recall** `TP_k / (TP_k + FN_k)` and **F1**
  `2 P R / (P + R)`; a 0/0 is reported as 0 (scikit-learn's `zero_division=0`).
- **macro F1** = unweighted mean of per-class F1 over the classes present in `y_true` **or**
  `y_pred` (scikit-learn's default `labels=None`): a class that was never true but was predicted
  counts with F1 = 0; a class absent from both has an undefined F1 and is left out.
- **weighted F1** = `sum_k support_k * F1_k / N` (scikit-learn's `average="weighted"`).
- **confusion matrix**: rows = true class, columns = predicted class, in `labels` order.

WA and UA are often swapped in the literature; in tfsent WA is always plain accuracy and UA is
always macro recall.

Confidence (inputs are probabilities `[N, K]`, rows summing to 1, and true class ids `[N]`):

- **ECE, expected calibration error** (15 bins): the top probability (confidence) of each example
  falls in one of 15 equal-width bins `(b/15, (b+1)/15]` (bin 0 also takes 0);
  `ECE = sum_b (n_b / N) * |accuracy_b - mean confidence_b|` over non-empty bins (Guo et al. 2017).
- **Brier score** (multi-class, Brier 1950): `mean_i sum_k (p_ik - [y_i = k])^2`, in `[0, 2]`.
- **NLL**: `mean_i -ln p_i,y_i` (the probability clipped at 1e-12, so a confident mistake is finite).

Regression (valence / arousal):

- **RMSE** = `sqrt(mean((y - yhat)^2))`; **MAE** = `mean(|y - yhat|)`.
- **Pearson r** = `cov(y, yhat) / (std(y) * std(yhat))`; defined as 0.0 when either side is
  constant (the correlation is undefined; 0 says "no linear association was detected").
- **CCC** (Lin's concordance correlation coefficient) =
  `2 cov(y, yhat) / (var(y) + var(yhat) + (mean(y) - mean(yhat))^2)` with population (ddof=0)
  moments as in Lin (1989). When the denominator is 0 (both sides constant and equal) the
  predictions agree perfectly and CCC is defined as 1.0; a constant prediction of a varying
  target gives 0.0 (no NaN).

Example:

```python
from tfsent.metrics import definitions as metrics

m = metrics.classification_metrics([0, 1, 1, 2], [0, 1, 2, 2], labels=["neutral", "happy", "sad"])
m["accuracy"], m["unweighted_accuracy"], m["macro_f1"]
r = metrics.regression_metrics([1.0, 2.0, 3.0], [1.1, 1.9, 3.2])
r["ccc"]
```
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = [
    "confusion_matrix",
    "weighted_accuracy",
    "unweighted_accuracy",
    "per_class_precision_recall_f1",
    "macro_f1",
    "weighted_f1",
    "classification_metrics",
    "rmse",
    "mae",
    "pearson_r",
    "ccc",
    "regression_metrics",
    "expected_calibration_error",
    "brier_score",
    "negative_log_likelihood",
]


# === Input checks ===


# The metrics a run can select its best checkpoint on, and which of them improve downwards.
CLASSIFICATION_METRICS = ("accuracy", "unweighted_accuracy", "macro_f1", "weighted_f1")
REGRESSION_METRICS = ("ccc", "rmse", "mae", "pearson_r")
LOWER_IS_BETTER = ("loss", "rmse", "mae")

def _check_class_ids(y_true, y_pred, num_classes: int | None = None):
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.ndim != 1 or y_pred.ndim != 1:
        raise ValueError(
            "y_true and y_pred must be 1-D arrays of class ids; got shapes "
            f"{y_true.shape} and {y_pred.shape}."
        )
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred differ in length: {y_true.shape[0]} vs {y_pred.shape[0]}."
        )
    if y_true.size == 0:
        raise ValueError("Cannot compute metrics on zero examples.")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if not np.issubdtype(y.dtype, np.integer):
            if np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0):
                continue
            raise ValueError(f"{name} must hold integer class ids; got dtype {y.dtype}.")
    y_true = y_true.astype(np.int64)
    y_pred = y_pred.astype(np.int64)
    if num_classes is None:
        num_classes = int(max(y_true.max(), y_pred.max())) + 1
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        bad = y[(y < 0) | (y >= num_classes)]
        if bad.size:
            raise ValueError(
                f"{name} holds class id {int(bad[0])} outside [0, {num_classes}) "
                f"({num_classes} labels)."
            )
    return y_true, y_pred, num_classes


def _check_real(y_true, y_pred):
    y_true = np.asarray(y_true, dtype=np.float64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred differ in size: {y_true.size} vs {y_pred.size}."
        )
    if y_true.size == 0:
        raise ValueError("Cannot compute metrics on zero examples.")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if not np.all(np.isfinite(y)):
            raise ValueError(f"{name} holds NaN or infinite values.")
    return y_true, y_pred


def _safe_divide(num, den):
    """num / den elementwise, 0 where den == 0 (scikit-learn's zero_division=0)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


# === Classification ===


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """Confusion matrix `M[i, j]` = number of examples of true class `i` predicted as `j`.

    Args:
        y_true: int class ids, shape `[N]`.
        y_pred: int class ids, shape `[N]`.
        num_classes: K; defaults to `max(y_true, y_pred) + 1`.

    Returns:
        int64 array `[K, K]`, rows = true, columns = predicted.
    """
    y_true, y_pred, k = _check_class_ids(y_true, y_pred, num_classes)
    return np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)


def weighted_accuracy(y_true, y_pred) -> float:
    """WA: overall accuracy, `(number of correct predictions) / N`.

    Called "weighted" because each class contributes in proportion to its support. This is
    `sklearn.metrics.accuracy_score`. Reported as `accuracy`.
    """
    y_true, y_pred, _ = _check_class_ids(y_true, y_pred)
    return float(np.mean(y_true == y_pred))


def unweighted_accuracy(y_true, y_pred, num_classes: int | None = None) -> float:
    """UA: macro recall, the unweighted mean of per-class recalls over classes present in y_true.

    `UA = (1/|C|) * sum_{k in C} TP_k / support_k`, `C = {k : support_k > 0}`. Classes with no
    true examples have undefined recall and are left out. Equals
    `sklearn.metrics.balanced_accuracy_score`.
    """
    cm = confusion_matrix(y_true, y_pred, num_classes)
    support = cm.sum(axis=1)
    present = support > 0
    return float(np.mean(np.diag(cm)[present] / support[present]))


def per_class_precision_recall_f1(y_true, y_pred, num_classes: int | None = None):
    """Per-class precision, recall, F1 and support (0/0 reported as 0).

    Returns:
        `(precision, recall, f1, support)`, float64 arrays `[K]` and an int64 array `[K]`;
        identical to `sklearn.metrics.precision_recall_fscore_support(..., labels=range(K),
        zero_division=0)`.
    """
    cm = confusion_matrix(y_true, y_pred, num_classes)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _safe_divide(tp, predicted)
    recall = _safe_divide(tp, support)
    f1 = _safe_divide(2.0 * tp, support + predicted)  # == 2PR/(P+R), 0 when P = R = 0
    return precision, recall, f1, support


def macro_f1(y_true, y_pred, num_classes: int | None = None) -> float:
    """Macro F1: unweighted mean of per-class F1 over classes present in y_true or y_pred.

    A class absent from both sides has an undefined F1 and is left out (scikit-learn's default
    `labels=None`); a class predicted but never true counts with F1 = 0. Equals
    `sklearn.metrics.f1_score(y_true, y_pred, average="macro", zero_division=0)`.
    """
    cm = confusion_matrix(y_true, y_pred, num_classes)
    _, _, f1, _ = per_class_precision_recall_f1(y_true, y_pred, cm.shape[0])
    seen = (cm.sum(axis=1) + cm.sum(axis=0)) > 0
    return float(np.mean(f1[seen]))


def weighted_f1(y_true, y_pred, num_classes: int | None = None) -> float:
    """Weighted F1: `sum_k support_k * F1_k / N`.

    Equals `sklearn.metrics.f1_score(y_true, y_pred, average="weighted", zero_division=0)`.
    """
    _, _, f1, support = per_class_precision_recall_f1(y_true, y_pred, num_classes)
    return float(np.sum(f1 * support) / np.sum(support))


def classification_metrics(y_true, y_pred, labels: Sequence[str]) -> dict:
    """All classification metrics of one split, as a JSON-serialisable dict.

    Args:
        y_true: int class ids `[N]` (index into `labels`).
        y_pred: int predicted class ids `[N]` (e.g. `argmax` of the logits).
        labels: class names; `labels[k]` names class id `k`.

    Returns:
        `{"num_examples", "labels", "accuracy" (WA), "unweighted_accuracy" (UA), "macro_f1",
        "weighted_f1", "per_class": {name: {"precision", "recall", "f1", "support"}},
        "confusion_matrix" (rows = true, columns = predicted)}`, plain Python numbers and lists.

    Example:

    >>> m = classification_metrics([0, 0, 1, 2], [0, 1, 1, 2], ["neutral", "happy", "sad"])
    >>> m["accuracy"], m["unweighted_accuracy"]
    (0.75, 0.8333333333333334)
    """
    labels = [str(label) for label in labels]
    if not labels:
        raise ValueError("labels must name at least one class.")
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels contain duplicates: {labels}.")
    k = len(labels)
    cm = confusion_matrix(y_true, y_pred, k)
    precision, recall, f1, support = per_class_precision_recall_f1(y_true, y_pred, k)
    return {
        "num_examples": int(cm.sum()),
        "labels": labels,
        "accuracy": weighted_accuracy(y_true, y_pred),
        "unweighted_accuracy": unweighted_accuracy(y_true, y_pred, k),
        "macro_f1": macro_f1(y_true, y_pred, k),
        "weighted_f1": weighted_f1(y_true, y_pred, k),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(labels)
        },
        "confusion_matrix": cm.astype(int).tolist(),
    }


# === Regression ===


def rmse(y_true, y_pred) -> float:
    """Root mean squared error, `sqrt(mean((y - yhat)^2))`."""
    y_true, y_pred = _check_real(y_true, y_pred)
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


def mae(y_true, y_pred) -> float:
    """Mean absolute error, `mean(|y - yhat|)`."""
    y_true, y_pred = _check_real(y_true, y_pred)
    return float(np.mean(np.abs(y_true - y_pred)))


def pearson_r(y_true, y_pred) -> float:
    """Pearson correlation `cov(y, yhat) / (std(y) std(yhat))`; 0.0 when either side is constant."""
    y_true, y_pred = _check_real(y_true, y_pred)
    dt = y_true - y_true.mean()
    dp = y_pred - y_pred.mean()
    den = np.sqrt(np.sum(dt * dt) * np.sum(dp * dp))
    if den == 0.0:
        return 0.0
    return float(np.clip(np.sum(dt * dp) / den, -1.0, 1.0))


def ccc(y_true, y_pred) -> float:
    """Lin's concordance correlation coefficient (population moments, ddof=0).

    `CCC = 2 cov(y, yhat) / (var(y) + var(yhat) + (mean(y) - mean(yhat))^2)`. Unlike Pearson r it
    penalises shifts in mean and scale: CCC = 1 only for `yhat == y`. Defined as 1.0 when the
    denominator is 0 (both sides constant and equal); a constant prediction of a varying target
    gives 0.0.

    Example: y = [1, 2, 3], yhat = [2, 3, 4]: var = 2/3 each, cov = 2/3, mean shift 1, so
    CCC = (4/3) / (2/3 + 2/3 + 1) = 4/7.
    """
    y_true, y_pred = _check_real(y_true, y_pred)
    mt, mp = y_true.mean(), y_pred.mean()
    cov = np.mean((y_true - mt) * (y_pred - mp))
    den = np.var(y_true) + np.var(y_pred) + (mt - mp) ** 2
    if den == 0.0:
        return 1.0
    return float(2.0 * cov / den)


def regression_metrics(y_true, y_pred) -> dict:
    """All regression metrics of one target, as a JSON-serialisable dict.

    Args:
        y_true: float targets `[N]` (or `[N, 1]`).
        y_pred: float predictions of the same size.

    Returns:
        `{"num_examples", "rmse", "mae", "pearson_r", "ccc"}` (plain Python numbers).
    """
    y_true, y_pred = _check_real(y_true, y_pred)
    return {
        "num_examples": int(y_true.size),
        "rmse": rmse(y_true, y_pred),
        "mae": mae(y_true, y_pred),
        "pearson_r": pearson_r(y_true, y_pred),
        "ccc": ccc(y_true, y_pred),
    }


# === Confidence ===

ECE_BINS = 15


def _check_probabilities(probabilities, y_true):
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"probabilities must be [N, K] with N > 0; got shape {p.shape}.")
    if not np.all(np.isfinite(p)) or np.any(p < 0) or not np.allclose(p.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError("probabilities must be finite, >= 0, and each row must sum to 1.")
    y, _, _ = _check_class_ids(y_true, np.zeros(len(np.asarray(y_true)), np.int64), p.shape[1])
    if y.shape[0] != p.shape[0]:
        raise ValueError(f"{p.shape[0]} probability rows for {y.shape[0]} labels.")
    return p, y


def expected_calibration_error(probabilities, y_true, n_bins: int = ECE_BINS) -> float:
    """ECE: `sum_b (n_b/N) |accuracy_b - confidence_b|` over `n_bins` equal-width confidence bins.

    Example: confidences 0.9, 0.9 (one right, one wrong) and 0.6 (right), 3 bins: the 0.9 bin has
    accuracy 0.5 (gap 0.4, weight 2/3), the 0.6 bin accuracy 1 (gap 0.4, weight 1/3): ECE = 0.4.
    """
    p, y = _check_probabilities(probabilities, y_true)
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    # Bin b holds (b/n, (b+1)/n]; ceil puts an exact edge in the bin below it.
    bins = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    ece = 0.0
    for b in np.unique(bins):
        sel = bins == b
        ece += sel.mean() * abs(correct[sel].mean() - confidence[sel].mean())
    return float(ece)


def brier_score(probabilities, y_true) -> float:
    """Multi-class Brier score `mean_i sum_k (p_ik - onehot_ik)^2` (0 perfect, 2 worst)."""
    p, y = _check_probabilities(probabilities, y_true)
    onehot = np.eye(p.shape[1])[y]
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def negative_log_likelihood(probabilities, y_true) -> float:
    """Mean `-ln p(true class)`, probabilities clipped at 1e-12."""
    p, y = _check_probabilities(probabilities, y_true)
    return float(np.mean(-np.log(np.maximum(p[np.arange(len(y)), y], 1e-12))))
