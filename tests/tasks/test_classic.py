"""scikit-learn baselines and stacking through the scikit-learn task (fit on train, score valid and test,
the same run files as a Keras run), on a tiny synthetic manifest."""

import os

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from tfsent.audio.features import FeatureConfig
from tfsent.core.errors import UsageError
from tfsent.models.stacking import out_of_fold_probabilities
from tfsent.tasks import ClassicTask, TaskConfig, load_run
from tfsent.training.classic import train_classic

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


def fit_and_score(name, frame, sidecar, model_dir, model_kwargs=None):
    """What bin/train does for a scikit-learn model: the config, the task, the run files."""
    config = TaskConfig(model=name, model_kwargs=dict(model_kwargs or {}), task="classification",
                        classes=list(sidecar["classes"]), feature=FeatureConfig(), max_seconds=4.0,
                        sequence_length=32)
    os.makedirs(model_dir, exist_ok=True)
    config.save(model_dir)
    return train_classic(ClassicTask(config, frame, sidecar), model_dir, log=lambda *a: None)


@pytest.mark.parametrize("name", ["tfidf_svm", "tfidf_nb"])
def test_text_baselines_fit_and_score(name, tmp_path):
    result = fit_and_score(name, _frame(), {"classes": CLASSES}, str(tmp_path))
    assert result["valid_metrics"]["accuracy"] == 1.0  # the words separate the classes
    assert os.path.isfile(tmp_path / "model.pkl") and os.path.isfile(tmp_path / "valid_predictions.csv")
    table = pd.read_csv(tmp_path / "valid_predictions.csv")
    probs = table[[f"prob_{c}" for c in CLASSES]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-6)
    assert list(table["prediction"]) == list(table["label"])


def test_sklearn_run_loads_and_scores_any_split(tmp_path):
    """The one run loader gives a scikit-learn run the evaluation interface of a Keras run."""
    frame = _frame()
    frame.loc[frame.index[-6:], "split"] = "test"
    manifest = tmp_path / "manifest.csv"
    frame.to_csv(manifest, index=False)
    fit_and_score("tfidf_svm", frame, {"classes": CLASSES}, str(tmp_path / "run"))
    # load_run reads the manifest named in the config; here the frame stands in for it.
    config = TaskConfig.load(str(tmp_path / "run"))
    loaded_task = ClassicTask(config, frame, {"classes": CLASSES})
    import pickle

    with open(tmp_path / "run" / "model.pkl", "rb") as f:
        model = pickle.load(f)
    predictions = loaded_task.predict(model, "test")
    assert list(predictions["index"]) == list(range(6))
    metrics = loaded_task.compute_metrics(predictions)
    assert metrics["num_examples"] == 6 and metrics["accuracy"] == 1.0
    with pytest.raises(UsageError, match="a tfsent model dir"):
        load_run(str(tmp_path))


def test_mfcc_random_forest_reads_wavs(tmp_path):
    frame = _frame(16)
    frame["split"] = ["train"] * 12 + ["valid"] * 4
    os.makedirs(tmp_path / "wav")
    t = np.arange(4000) / 16000
    for i, row in frame.iterrows():
        freq = 300 if row.emotion == "happy" else 2000
        sf.write(tmp_path / row.audio_path, 0.3 * np.sin(2 * np.pi * freq * t), 16000)
    sidecar = {"classes": CLASSES, "data_dir": str(tmp_path)}
    result = fit_and_score("mfcc_random_forest", frame, sidecar, str(tmp_path / "run"),
                           model_kwargs={"n_estimators": 20})
    assert result["valid_metrics"]["accuracy"] == 1.0
    frame.loc[0, "audio_path"] = "wav/missing.wav"
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        fit_and_score("mfcc_random_forest", frame, sidecar, str(tmp_path / "run2"))


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
    result = fit_and_score("stacking", _frame(), {"classes": CLASSES}, str(tmp_path / "a"),
                           model_kwargs={"base_models": "tfidf_svm:tfidf_nb", "n_splits": 3})
    assert result["valid_metrics"]["accuracy"] == 1.0
    with pytest.raises(FileNotFoundError, match="oof_predictions.csv"):
        fit_and_score("stacking", _frame(), {"classes": CLASSES}, str(tmp_path / "b"),
                      model_kwargs={"base_runs": str(tmp_path / "nothing")})
