"""Tests for tfsent.metrics.definitions: hand-computed values and scikit-learn agreement."""

import json
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from tfsent.metrics import definitions as metrics


# Hand example, 3 classes, 8 examples.
#   y_true: 0 0 0 0 1 1 2 2
#   y_pred: 0 0 1 2 1 0 2 2
# Confusion (rows true, cols pred):
#   [[2, 1, 1],
#    [1, 1, 0],
#    [0, 0, 2]]
# WA = (2 + 1 + 2) / 8 = 0.625
# recall: c0 = 2/4 = 0.5, c1 = 1/2 = 0.5, c2 = 2/2 = 1.0 -> UA = 2.0 / 3 = 0.6667
# precision: c0 = 2/3, c1 = 1/2, c2 = 2/3
# F1: c0 = 2*(2/3*1/2)/(2/3+1/2) = (2/3)/(7/6) = 4/7
#     c1 = 2*(1/2*1/2)/(1) = 1/2
#     c2 = 2*(2/3*1)/(5/3) = 4/5
# macro F1 = (4/7 + 1/2 + 4/5) / 3 = (0.571429 + 0.5 + 0.8) / 3 = 0.623810
# weighted F1 = (4 * 4/7 + 2 * 1/2 + 2 * 4/5) / 8 = (2.285714 + 1 + 1.6) / 8 = 0.610714
Y_TRUE = [0, 0, 0, 0, 1, 1, 2, 2]
Y_PRED = [0, 0, 1, 2, 1, 0, 2, 2]
LABELS = ["neutral", "happy", "sad"]


def test_hand_example():
    m = metrics.classification_metrics(Y_TRUE, Y_PRED, LABELS)
    assert m["num_examples"] == 8
    assert m["labels"] == LABELS
    assert m["confusion_matrix"] == [[2, 1, 1], [1, 1, 0], [0, 0, 2]]
    assert m["accuracy"] == pytest.approx(0.625)
    assert m["unweighted_accuracy"] == pytest.approx(2.0 / 3.0)
    assert m["macro_f1"] == pytest.approx((4 / 7 + 1 / 2 + 4 / 5) / 3)
    assert m["weighted_f1"] == pytest.approx((4 * 4 / 7 + 2 * 1 / 2 + 2 * 4 / 5) / 8)
    assert m["per_class"]["neutral"] == pytest.approx(
        {"precision": 2 / 3, "recall": 0.5, "f1": 4 / 7, "support": 4}
    )
    assert m["per_class"]["sad"]["precision"] == pytest.approx(2 / 3)
    # WA and UA differ here: make sure they are not swapped.
    assert metrics.weighted_accuracy(Y_TRUE, Y_PRED) == pytest.approx(0.625)
    assert metrics.unweighted_accuracy(Y_TRUE, Y_PRED) == pytest.approx(2.0 / 3.0)


def test_json_serialisable_plain_types():
    m = metrics.classification_metrics(np.array(Y_TRUE), np.array(Y_PRED), LABELS)
    text = json.dumps(m)
    assert json.loads(text) == m
    assert type(m["accuracy"]) is float and type(m["num_examples"]) is int
    assert type(m["per_class"]["happy"]["support"]) is int
    r = metrics.regression_metrics(np.array([1.0, 2.0]), np.array([1.5, 2.5]))
    assert json.loads(json.dumps(r)) == r


def test_zero_support_class():
    # Class 2 ("sad") never occurs in y_true, and is predicted once; class 3 never occurs at all.
    #   y_true: 0 0 1 1, y_pred: 0 2 1 1
    # recall c0 = 1/2, c1 = 2/2; UA over present classes {0, 1} = 0.75 (not (0.5+1+0)/3)
    # F1: c0 = 2*1/(2+1) = 2/3, c1 = 2*2/(2+2) = 1, c2 = 0 (predicted, never true), c3 absent
    # macro F1 over classes seen on either side {0, 1, 2} = (2/3 + 1 + 0) / 3 = 5/9
    y_true, y_pred = [0, 0, 1, 1], [0, 2, 1, 1]
    labels = ["a", "b", "c", "d"]
    m = metrics.classification_metrics(y_true, y_pred, labels)
    assert m["unweighted_accuracy"] == pytest.approx(0.75)
    assert m["macro_f1"] == pytest.approx(5 / 9)
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["per_class"]["d"]["support"] == 0
    assert len(m["confusion_matrix"]) == 4
    with pytest.warns(UserWarning):  # sklearn warns about y_pred classes absent from y_true
        assert m["unweighted_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro", zero_division=0))


@pytest.mark.parametrize("seed", range(8))
def test_random_against_sklearn(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 8))
    n = int(rng.integers(5, 200))
    # Skewed class frequencies so some classes may be rare or absent.
    p = rng.dirichlet(np.full(k, 0.7))
    y_true = rng.choice(k, size=n, p=p)
    noise = rng.random(n) < 0.4
    y_pred = np.where(noise, rng.integers(0, k, size=n), y_true)
    labels = [f"c{i}" for i in range(k)]
    m = metrics.classification_metrics(y_true, y_pred, labels)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true"
        ba = skm.balanced_accuracy_score(y_true, y_pred)
    assert m["unweighted_accuracy"] == pytest.approx(ba)
    if set(y_pred) <= set(y_true):
        assert m["unweighted_accuracy"] == pytest.approx(
            skm.recall_score(y_true, y_pred, average="macro", zero_division=0)
        )
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro", zero_division=0))
    assert m["weighted_f1"] == pytest.approx(
        skm.f1_score(y_true, y_pred, average="weighted", zero_division=0)
    )
    p_, r_, f_, s_ = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=list(range(k)), zero_division=0
    )
    got = m["per_class"]
    np.testing.assert_allclose([got[c]["precision"] for c in labels], p_)
    np.testing.assert_allclose([got[c]["recall"] for c in labels], r_)
    np.testing.assert_allclose([got[c]["f1"] for c in labels], f_)
    assert [got[c]["support"] for c in labels] == list(s_)
    np.testing.assert_array_equal(
        m["confusion_matrix"], skm.confusion_matrix(y_true, y_pred, labels=list(range(k)))
    )


def test_bad_class_ids_raise():
    with pytest.raises(ValueError, match="class id 3 outside"):
        metrics.classification_metrics([0, 1], [0, 3], ["a", "b", "c"])
    with pytest.raises(ValueError, match="differ in length"):
        metrics.classification_metrics([0, 1], [0], ["a", "b"])
    with pytest.raises(ValueError, match="zero examples"):
        metrics.classification_metrics([], [], ["a"])
    with pytest.raises(ValueError, match="integer class ids"):
        metrics.classification_metrics([0.5], [0], ["a"])
    with pytest.raises(ValueError, match="duplicates"):
        metrics.classification_metrics([0], [0], ["a", "a"])


def test_regression_hand_example():
    # y = [1, 2, 3], yhat = [2, 3, 4]: errors all 1 -> RMSE = MAE = 1; Pearson r = 1 (pure shift)
    # means 2 and 3; var(y) = var(yhat) = ((1 + 0 + 1) / 3) = 2/3; cov = 2/3
    # CCC = 2 * 2/3 / (2/3 + 2/3 + (2 - 3)^2) = (4/3) / (7/3) = 4/7
    r = metrics.regression_metrics([1, 2, 3], [2, 3, 4])
    assert r == pytest.approx({"num_examples": 3, "rmse": 1.0, "mae": 1.0, "pearson_r": 1.0, "ccc": 4 / 7})
    # y = [0, 2], yhat = [1, 0]: errors -1, 2 -> RMSE = sqrt((1 + 4) / 2) = sqrt(2.5), MAE = 1.5
    # means 1, 0.5; var(y) = 1, var(yhat) = 0.25, cov = ((-1)(0.5) + (1)(-0.5)) / 2 = -0.5
    # r = -0.5 / (1 * 0.5) = -1; CCC = -1 / (1 + 0.25 + 0.25) = -2/3
    r = metrics.regression_metrics([0.0, 2.0], [1.0, 0.0])
    assert r["rmse"] == pytest.approx(np.sqrt(2.5))
    assert r["mae"] == pytest.approx(1.5)
    assert r["pearson_r"] == pytest.approx(-1.0)
    assert r["ccc"] == pytest.approx(-2 / 3)


@pytest.mark.parametrize("seed", range(5))
def test_regression_random(seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(3.0, 1.0, size=50)
    yhat = 0.6 * y + rng.normal(0.5, 0.5, size=50)
    r = metrics.regression_metrics(y, yhat)
    assert r["pearson_r"] == pytest.approx(np.corrcoef(y, yhat)[0, 1])
    assert r["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, yhat)))
    assert r["mae"] == pytest.approx(skm.mean_absolute_error(y, yhat))
    # CCC = r * 2 sx sy / (sx^2 + sy^2 + (mx - my)^2): a second, independent formula.
    sx, sy = y.std(), yhat.std()
    expected = np.corrcoef(y, yhat)[0, 1] * 2 * sx * sy / (sx**2 + sy**2 + (y.mean() - yhat.mean()) ** 2)
    assert r["ccc"] == pytest.approx(expected)
    assert r["ccc"] < r["pearson_r"]  # shift and scale are penalised
    assert metrics.ccc(y, y) == pytest.approx(1.0)


def test_regression_constant_predictions():
    y = np.array([1.0, 2.0, 3.0])
    const = np.full(3, 2.0)
    r = metrics.regression_metrics(y, const)
    assert r["pearson_r"] == 0.0 and r["ccc"] == 0.0
    assert np.isfinite(list(r.values())).all()
    assert metrics.ccc(const, const) == 1.0
    assert metrics.pearson_r(const, const) == 0.0
    assert metrics.ccc([2.0, 2.0], [3.0, 3.0]) == 0.0  # constant, wrong: den = 1, cov = 0
    with pytest.raises(ValueError, match="NaN"):
        metrics.regression_metrics([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="differ in size"):
        metrics.regression_metrics([1.0, 2.0], [1.0])
