"""ECE, Brier, NLL on hand-computed cases; temperature scaling recovers a known temperature."""

import math

import numpy as np
import pytest

from tfsent.metrics import calibration
from tfsent.metrics import definitions as m


def test_ece_by_hand():
    # Confidences 0.9 (right), 0.9 (wrong), 0.6 (right) in 3 bins: two bins, each |acc - conf| = 0.4.
    p = [[0.9, 0.1], [0.9, 0.1], [0.4, 0.6]]
    assert m.expected_calibration_error(p, [0, 1, 1], n_bins=3) == pytest.approx(0.4)
    # With 15 bins 0.9 and 0.6 still sit in different bins: same answer.
    assert m.expected_calibration_error(p, [0, 1, 1]) == pytest.approx(0.4)
    # One bin holding everything: |2/3 - 0.8| = 0.1333...
    assert m.expected_calibration_error(p, [0, 1, 1], n_bins=1) == pytest.approx(abs(2 / 3 - 0.8))
    # Perfectly calibrated: 4 examples at confidence 0.75, 3 of them right.
    q = [[0.75, 0.25]] * 4
    assert m.expected_calibration_error(q, [0, 0, 0, 1]) == pytest.approx(0.0)


def test_ece_bin_edges_belong_to_the_lower_bin():
    # Bins are (b/15, (b+1)/15]: the edge 2/3 = 10/15 goes to (9/15, 10/15] with 0.62, not with 0.7.
    p = [[2 / 3, 1 / 3], [0.62, 0.38], [0.7, 0.3]]
    # bin (0.6, 0.667]: confidences 2/3 and 0.62, accuracy 1 (both right); bin (0.667, 0.733]: 0.7, wrong.
    expected = (2 / 3) * abs(1 - (2 / 3 + 0.62) / 2) + (1 / 3) * 0.7
    assert m.expected_calibration_error(p, [0, 0, 1]) == pytest.approx(expected)


def test_brier_and_nll_by_hand():
    p = [[0.7, 0.2, 0.1], [0.5, 0.5, 0.0]]
    # (0.3^2 + 0.2^2 + 0.1^2) = 0.14 and (0.5^2 + 0.5^2 + 0) = 0.5 → mean 0.32
    assert m.brier_score(p, [0, 1]) == pytest.approx(0.32)
    assert m.negative_log_likelihood(p, [0, 1]) == pytest.approx(-(math.log(0.7) + math.log(0.5)) / 2)
    # A confident mistake is large but finite.
    assert math.isfinite(m.negative_log_likelihood([[1.0, 0.0]], [1]))
    assert m.brier_score([[1.0, 0.0]], [1]) == pytest.approx(2.0)


@pytest.mark.parametrize("probs,labels", [([[0.5, 0.6]], [0]), ([[0.5, 0.5]], [2]), ([[0.5, 0.5]], [0, 1]),
                                          (np.zeros((0, 2)), [])])
def test_bad_inputs_are_value_errors(probs, labels):
    with pytest.raises(ValueError):
        m.expected_calibration_error(probs, labels)


def test_temperature_scaling_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2.0, size=(4000, 4))
    labels = np.array([rng.choice(4, p=p) for p in calibration.softmax(true_logits)])
    overconfident = 3.0 * true_logits  # the calibrated temperature is 3
    record = calibration.fit_temperature(overconfident, labels)
    assert record["temperature"] == pytest.approx(3.0, rel=0.1)
    assert record["nll_after"] < record["nll_before"]
    report = calibration.confidence_report(overconfident, labels, record["temperature"])
    assert report["calibrated"]["ece"] < report["uncalibrated"]["ece"]
    assert report["calibrated"]["nll"] == pytest.approx(record["nll_after"], rel=1e-6)
    # Accuracy never changes: the argmax is the same at any temperature.
    assert (calibration.softmax(overconfident, 3.0).argmax(1) == overconfident.argmax(1)).all()


def test_fit_never_raises_the_nll():
    # Already calibrated logits: the fitted T stays near 1 and the NLL does not go up.
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(50, 3))
    labels = rng.integers(0, 3, 50)
    record = calibration.fit_temperature(logits, labels)
    assert record["nll_after"] <= record["nll_before"]
    with pytest.raises(ValueError):
        calibration.fit_temperature(np.full((2, 3), np.nan), [0, 1])


def test_coverage_accuracy():
    p = np.array([[0.95, 0.05], [0.65, 0.35], [0.55, 0.45], [0.85, 0.15]])
    rows = calibration.coverage_accuracy(p, [0, 1, 0, 0], thresholds=(0.5, 0.6, 0.9, 0.99))
    assert [r["coverage"] for r in rows] == [1.0, 0.75, 0.25, 0.0]
    assert [r["accuracy"] for r in rows] == [0.75, 2 / 3, 1.0, None]
