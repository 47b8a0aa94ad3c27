"""Temperature scaling (Guo et al. 2017) and the confidence figures built on it.

A classifier's logits `z` become calibrated probabilities `softmax(z / T)`: one scalar `T > 0`,
fitted by minimising the negative log-likelihood of a held-out split (the validation split, right
after training). `T > 1` softens an over-confident model; the argmax, hence accuracy, never changes.
The fit is a bounded 1-D search over `ln T` in `[ln 0.05, ln 20]`; `T = 1` is kept when the search
does not beat it, so the NLL on the fitted split never goes up.

Example:

```python
record = fit_temperature(valid_logits, valid_labels)           # {"temperature", "nll_before", ...}
probs = softmax(test_logits, record["temperature"])
report = confidence_report(test_logits, test_labels, record["temperature"])
report["calibrated"]["ece"], report["coverage"]
```
"""

from __future__ import annotations

import math

import numpy as np

from tfsent.metrics import definitions

LOG_T_BOUNDS = (math.log(0.05), math.log(20.0))
ABSTAIN_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def softmax(logits, temperature: float = 1.0) -> np.ndarray:
    """`softmax(logits / temperature)` over the last axis, in float64."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _nll(logits, labels, temperature):
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-np.mean(log_p[np.arange(len(labels)), labels]))


def fit_temperature(logits, labels) -> dict:
    """The NLL-minimising temperature on (logits `[N, K]`, class ids `[N]`).

    Returns:
        `{"temperature", "nll_before" (T=1), "nll_after", "num_examples"}`.
    """
    from scipy.optimize import minimize_scalar

    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    if logits.ndim != 2 or len(logits) == 0 or len(labels) != len(logits):
        raise ValueError(f"need logits [N, K] with N > 0 and N labels; got {logits.shape} and {labels.shape}")
    if np.isnan(logits).any() or np.isposinf(logits).any():
        raise ValueError("logits hold NaN or +inf values")
    logits = np.maximum(logits, -1e6)  # log-probabilities of 0 (scikit-learn runs): still probability 0
    before = _nll(logits, labels, 1.0)
    found = minimize_scalar(lambda log_t: _nll(logits, labels, math.exp(log_t)), bounds=LOG_T_BOUNDS,
                            method="bounded", options={"xatol": 1e-6})
    temperature, after = math.exp(float(found.x)), float(found.fun)
    if not after < before:
        temperature, after = 1.0, before
    return {"temperature": temperature, "nll_before": before, "nll_after": after,
            "num_examples": int(len(labels))}


def coverage_accuracy(probabilities, labels, thresholds=ABSTAIN_THRESHOLDS) -> list:
    """For each threshold P: the share of examples whose top probability is >= P (answered, not
    "uncertain") and the accuracy on those (None when none is answered)."""
    p = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    confidence, correct = p.max(axis=1), p.argmax(axis=1) == labels
    rows = []
    for threshold in thresholds:
        answered = confidence >= threshold
        rows.append({"threshold": float(threshold), "coverage": float(answered.mean()),
                     "accuracy": float(correct[answered].mean()) if answered.any() else None,
                     "answered": int(answered.sum())})
    return rows


def confidence_scores(probabilities, labels) -> dict:
    """`{"ece", "brier", "nll"}` of one set of probabilities."""
    return {"ece": definitions.expected_calibration_error(probabilities, labels),
            "brier": definitions.brier_score(probabilities, labels),
            "nll": definitions.negative_log_likelihood(probabilities, labels)}


def confidence_report(logits, labels, temperature: float, thresholds=ABSTAIN_THRESHOLDS) -> dict:
    """ECE / Brier / NLL with and without the temperature, and coverage vs accuracy (calibrated)."""
    raw, calibrated = softmax(logits), softmax(logits, temperature)
    return {"temperature": float(temperature), "ece_bins": definitions.ECE_BINS,
            "uncalibrated": confidence_scores(raw, labels),
            "calibrated": confidence_scores(calibrated, labels),
            "coverage": coverage_accuracy(calibrated, labels, thresholds)}
