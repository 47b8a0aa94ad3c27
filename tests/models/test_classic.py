"""scikit-learn baselines and stacking through fit_and_score, on a tiny synthetic manifest."""

import os

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from tfsent.models import registry
from tfsent.models.classic import fit_and_score
from tfsent.models.stacking import out_of_fold_probabilities

CLASSES = ["happy", "sad"]
WORDS = {"happy": ["좋아", "신나", "행복해"], "sad": ["슬퍼", "우울해", "눈물"]}


def _frame(n=40, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = CLASSES[i % 2]
        text = " ".join(rng.choice(WORDS[label], 3)) + " 오늘"
        rows.append(dict(utt_id=f"u{i}", audio_path=f"wav/u{i}.wav", text=text, emotion=label,
                         speaker=f"s{i % 8}", split="train" if i < 30 else "valid"))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("name", ["tfidf_svm", "tfidf_nb"])
def test_text_baselines_fit_and_score(name, tmp_path):
    result = fit_and_score(registry.get(name), _frame(), {"classes": CLASSES}, model_dir=str(tmp_path))
    assert result["valid_metrics"]["accuracy"] == 1.0  # the words separate the classes
    assert os.path.isfile(tmp_path / "model.pkl") and os.path.isfile(tmp_path / "valid_predictions.csv")
    probs = result["valid_predictions"][[f"prob_{c}" for c in CLASSES]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-6)


def test_mfcc_random_forest_reads_wavs(tmp_path):
    frame = _frame(16)
    frame["split"] = ["train"] * 12 + ["valid"] * 4
    os.makedirs(tmp_path / "wav")
    t = np.arange(4000) / 16000
    for i, row in frame.iterrows():
        freq = 300 if row.emotion == "happy" else 2000
        sf.write(tmp_path / row.audio_path, 0.3 * np.sin(2 * np.pi * freq * t), 16000)
    sidecar = {"classes": CLASSES, "data_dir": str(tmp_path)}
    result = fit_and_score(registry.get("mfcc_random_forest"), frame, sidecar,
                           model_dir=str(tmp_path / "run"), model_kwargs={"n_estimators": 20})
    assert result["valid_metrics"]["accuracy"] == 1.0
    frame.loc[0, "audio_path"] = "wav/missing.wav"
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        fit_and_score(registry.get("mfcc_random_forest"), frame, sidecar, model_dir=str(tmp_path / "run2"))


def test_out_of_fold_probabilities_never_predict_training_rows():
    # A 1-nearest-neighbour memoriser is perfect on its own training rows, chance on held-out ones.
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5))
    y = rng.integers(0, 2, 60)
    probs = out_of_fold_probabilities(lambda: KNeighborsClassifier(1), x, y, num_classes=2, n_splits=5)
    in_sample = KNeighborsClassifier(1).fit(x, y).predict_proba(x)
    assert (in_sample.argmax(1) == y).mean() == 1.0
    assert (probs.argmax(1) == y).mean() < 0.8


def test_stacking_on_sklearn_bases_and_missing_oof_file(tmp_path):
    entry = registry.get("stacking")
    result = fit_and_score(entry, _frame(), {"classes": CLASSES}, model_dir=str(tmp_path / "a"),
                           model_kwargs={"base_models": "tfidf_svm:tfidf_nb", "n_splits": 3})
    assert result["valid_metrics"]["accuracy"] == 1.0
    with pytest.raises(FileNotFoundError, match="oof_predictions.csv"):
        fit_and_score(entry, _frame(), {"classes": CLASSES}, model_dir=str(tmp_path / "b"),
                      model_kwargs={"base_runs": str(tmp_path / "nothing")})
