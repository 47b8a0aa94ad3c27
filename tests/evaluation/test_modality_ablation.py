"""Modality ablation and per-condition scores in bin/evaluate's output (tfsent.evaluation.ablation,
tfsent.evaluation.conditions), and their agreement with the exported model on a missing modality."""

import json
import os
import types

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def evaluated(cut_fusion_run, tmp_path_factory):
    """bin/evaluate's Python entry on the training split (16 rows: the cut model was fitted there)."""
    from tfsent.evaluation.evaluate import evaluate_model_dir

    out_dir = str(tmp_path_factory.mktemp("cut_fusion_eval"))
    return evaluate_model_dir(cut_fusion_run, split="train", out_dir=out_dir)


@pytest.mark.slow  # fits a tiny model (25 epochs on 16 rows), then three passes: ~25 s of CPU with the fixture
def test_ablation_measures_what_it_claims(evaluated):
    """Text branch cut: removing the text changes nothing; removing the audio leaves a constant guess."""
    metrics = evaluated["metrics"]
    ablation = metrics["modality_ablation"]
    chance = ablation["chance"]
    assert metrics["unweighted_accuracy"] > chance["unweighted_accuracy"] + 0.2  # the audio side learned
    text_removed, audio_removed = ablation["text_removed"], ablation["audio_removed"]
    for key in ("accuracy", "unweighted_accuracy", "macro_f1", "weighted_f1"):
        assert ablation["full"][key] == metrics[key] == text_removed[key]
    assert text_removed["loss"] == pytest.approx(metrics["loss"], abs=1e-6)
    assert text_removed["agreement_with_full"] == 1.0
    assert text_removed["confusion_matrix"] == metrics["confusion_matrix"]
    # Without audio (and a text that counts for nothing) every row gets the same answer: chance.
    predictions = pd.read_csv(os.path.join(evaluated["out_dir"], "predictions.csv"))
    assert predictions["predicted_audio_removed"].nunique() == 1
    assert predictions["predicted_text_removed"].tolist() == predictions["predicted"].tolist()
    assert audio_removed["unweighted_accuracy"] == pytest.approx(chance["unweighted_accuracy"])
    assert audio_removed["accuracy"] <= chance["majority_accuracy"]
    assert audio_removed["macro_f1"] <= chance["majority_macro_f1"] + 1e-9
    assert audio_removed["delta_macro_f1"] == pytest.approx(audio_removed["macro_f1"] - metrics["macro_f1"])
    assert audio_removed["agreement_with_full"] < 1.0


@pytest.mark.slow
def test_per_condition_accuracy_and_report(evaluated, tiny_corpus):
    """The demo corpus's truth gives accuracy per condition, for the full model and each ablation."""
    from tfsent.corpus.demo_corpus import read_truth

    metrics = evaluated["metrics"]
    scores = metrics["per_condition"]
    predictions = pd.read_csv(os.path.join(evaluated["out_dir"], "predictions.csv"))
    truth = {r["utt_id"]: r["condition"] for r in read_truth(tiny_corpus["corpus"])}
    assert predictions["condition"].tolist() == [truth[u] for u in predictions["utt_id"]]
    assert scores["unmatched"] == 0 and sum(scores["counts"].values()) == len(predictions) == 16
    for condition, n in scores["counts"].items():
        rows = predictions[predictions["condition"] == condition]
        assert len(rows) == n
        expected = float((rows["predicted"] == rows["true"]).mean()) if n else None
        assert scores["accuracy"][condition] == pytest.approx(expected)
        removed = float((rows["predicted_audio_removed"] == rows["true"]).mean()) if n else None
        assert scores["accuracy_by_setting"]["audio_removed"][condition] == pytest.approx(removed)
    with open(os.path.join(evaluated["out_dir"], "metrics.json"), encoding="utf-8") as f:
        assert json.load(f)["per_condition"] == json.loads(json.dumps(scores))
    with open(os.path.join(evaluated["out_dir"], "report.md"), encoding="utf-8") as f:
        report = f.read()
    assert "## Modality ablation" in report and "| text removed | " in report
    assert "| audio_only | only the voice |" in report


def test_single_modality_model_and_real_corpus_get_neither(tiny_corpus, make_fusion_run, tmp_path):
    """No ablation without both modalities, no per-condition scores without demo_truth.jsonl."""
    from tfsent.corpus.manifest import read_manifest
    from tfsent.evaluation import ablation, conditions
    from tfsent.tasks import load_run

    loaded = load_run(make_fusion_run(str(tmp_path / "run"), tiny_corpus["manifest"]))
    assert ablation.takes_both_modalities(loaded.task)
    with pytest.raises(ValueError, match="remove_modality"):
        loaded.task.build_inputs("train", training=True, remove_modality="audio")
    with pytest.raises(ValueError, match="remove_modality must be one of"):
        loaded.task.build_inputs("train", training=False, remove_modality="video")
    audio_only = types.SimpleNamespace(kind="keras", model_inputs=("audio_features", "audio_mask"))
    assert not ablation.takes_both_modalities(audio_only)
    assert ablation.modality_ablation(audio_only, None, "train") == (None, {})
    _, sidecar = read_manifest(loaded.manifest)
    assert conditions.condition_truth(sidecar) is not None
    assert conditions.condition_truth(dict(sidecar, data_dir=str(tmp_path / "real_corpus"))) is None


@pytest.mark.slow
def test_removed_modality_matches_the_exported_model(tiny_corpus, make_fusion_run, tmp_path):
    """Evaluation's removed modality is the SavedModel's missing one: same probabilities on a row."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    from tfsent.evaluation.ablation import predict_without_each_modality
    from tfsent.export.saved_model import export_model_dir
    from tfsent.tasks import load_run

    run = make_fusion_run(str(tmp_path / "run"), tiny_corpus["manifest"], cut_text=False)
    loaded = load_run(run)
    predict_fn = loaded.predict_fn()
    full = loaded.task.predict(predict_fn, "test")
    ablated = predict_without_each_modality(loaded.task, predict_fn, "test")
    served = tf.saved_model.load(export_model_dir(run, str(tmp_path / "exports")))
    row = loaded.task.split_frame("test").iloc[0]
    with open(os.path.join(loaded.task.sidecar["data_dir"], row["audio_path"]), "rb") as f:
        wav = f.read()
    predict_wav = served.signatures["predict_wav"]
    cases = {"full": (wav, row["text"]), "audio_removed": (b"", row["text"]), "text_removed": (wav, "")}
    probs = {}
    for name, (audio, text) in cases.items():
        probs[name] = predict_wav(wav=tf.constant([audio]), text=tf.constant([text]))["probabilities"].numpy()[0]
        ours = full if name == "full" else ablated[name]
        assert ours["index"][0] == 0
        np.testing.assert_allclose(probs[name], tf.nn.softmax(ours["outputs"][0]).numpy(), atol=1e-5, err_msg=name)
    # The untrained model is not blind to either modality, so the comparison above is not vacuous.
    assert np.abs(probs["audio_removed"] - probs["full"]).max() > 1e-4
    assert np.abs(probs["text_removed"] - probs["full"]).max() > 1e-4
