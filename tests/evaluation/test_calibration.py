"""Calibrated confidence end to end on a tiny fitted conv1d_mel run: `bin/evaluate --calibrate` fits the
temperature on the validation split (NLL does not go up there), reports ECE / Brier both ways, and the
exported SavedModel's `probabilities` are evaluate's calibrated ones; `--abstain_below` answers
"uncertain" below the threshold."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MAX_SECONDS = 4.0  # longer than every tiny_corpus clip: evaluation and serving see whole clips


@pytest.fixture(scope="module")
def fitted_run(tiny_corpus, tmp_path_factory):
    """A conv1d_mel run dir fitted 15 epochs on the 16 training rows (over-confident on the rest), with
    no calibration.json: a run from before temperature scaling."""
    import keras

    from tfsent.audio.features import FeatureConfig
    from tfsent.corpus.manifest import read_manifest
    from tfsent.tasks import EmotionTask, TaskConfig

    path = str(tmp_path_factory.mktemp("calibration") / "run")
    os.makedirs(path)
    frame, sidecar = read_manifest(tiny_corpus["manifest"])
    config = TaskConfig(model="conv1d_mel", model_kwargs={"filters": 8, "num_layers": 2, "hidden": 8, "dropout": 0.0,
                                                          "branch_dropout": 0.0},
                        task="classification", classes=list(sidecar["classes"]),
                        feature=FeatureConfig(kind="log_mel", n_mels=16), max_seconds=MAX_SECONDS,
                        sequence_length=16, vocabulary=None, manifest=tiny_corpus["manifest"])
    keras.utils.set_random_seed(2)
    task = EmotionTask(config, frame, sidecar, batch_size=8, seed=2)
    model = task.build_model()
    task.use_model(model)
    data = task.build_inputs("train", training=False).map(lambda x, t: (x, {"logits": t["label"]})).cache()
    model.compile(optimizer=keras.optimizers.Adam(0.02),
                  loss={"logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)})
    model.fit(data.repeat(), epochs=15, steps_per_epoch=task.pipeline().max_batches("train", training=False),
              shuffle=False, verbose=0)
    model.save(os.path.join(path, "model.keras"))
    config.save(path)
    return path


def test_evaluate_without_then_with_calibration(fitted_run, tmp_path):
    from tfsent.core.run_dir import RunDir
    from tfsent.evaluation.evaluate import evaluate_model_dir

    run = RunDir(fitted_run)
    assert run.read_calibration() is None
    old = evaluate_model_dir(fitted_run, out_dir=str(tmp_path / "old"))["metrics"]
    section = old["calibration"]
    assert section["temperature"] == 1.0 and "no calibration.json" in section["source"]
    assert old["ece"] == old["ece_uncalibrated"] and old["brier"] == old["brier_uncalibrated"]

    new = evaluate_model_dir(fitted_run, calibrate=True)["metrics"]
    record = run.read_calibration()
    assert record["split"] == "valid" and record["fitted_by"] == "bin/evaluate --calibrate"
    assert record["temperature"] != 1.0
    assert record["nll_after"] <= record["nll_before"]  # guaranteed on the split T was fitted on
    section = new["calibration"]
    assert section["temperature"] == record["temperature"] and section["source"].startswith("calibration.json")
    for key in ("ece", "brier", "ece_uncalibrated", "brier_uncalibrated"):
        assert 0.0 <= new[key] <= 2.0, key
    assert new["ece_uncalibrated"] == old["ece"]  # the same logits, scored before calibration
    assert [r["threshold"] for r in section["coverage"]] == [0.5, 0.6, 0.7, 0.8, 0.9]
    assert all(0.0 <= r["coverage"] <= 1.0 for r in section["coverage"])
    eval_dir = run.eval_dir("test")
    assert os.path.getsize(os.path.join(eval_dir, "reliability_diagram.png")) > 1000
    with open(os.path.join(eval_dir, "report.md"), encoding="utf-8") as f:
        assert "Calibrated confidence" in f.read()
    # predictions.csv holds the calibrated probabilities (the next test checks them against the
    # exported model's logits): they moved, the argmax did not.
    table = pd.read_csv(os.path.join(eval_dir, "predictions.csv"))
    old_table = pd.read_csv(os.path.join(tmp_path / "old", "predictions.csv"))
    cols = [c for c in table.columns if c.startswith("p_")]
    assert np.abs(table[cols].to_numpy() - old_table[cols].to_numpy()).max() > 1e-3
    assert (table["predicted"] == old_table["predicted"]).all()


def test_export_serves_evaluate_probabilities_and_abstains(fitted_run, tiny_corpus, tmp_path):
    import tensorflow as tf

    from tfsent.core.run_dir import RunDir
    from tfsent.corpus.manifest import read_manifest
    from tfsent.evaluation.evaluate import evaluate_model_dir
    from tfsent.export.predict import LocalRunner, predict
    from tfsent.export.saved_model import export_model_dir
    from tfsent.metrics.calibration import softmax

    run = RunDir(fitted_run)
    if run.read_calibration() is None:  # this test alone: fit it here
        evaluate_model_dir(fitted_run, calibrate=True)
    temperature = run.read_calibration()["temperature"]
    table = pd.read_csv(os.path.join(run.eval_dir("test"), "predictions.csv"))
    path = export_model_dir(fitted_run, str(tmp_path / "exports"))
    with open(os.path.join(path, "assets.extra", "model_card.json"), encoding="utf-8") as f:
        assert json.load(f)["calibration"]["temperature"] == temperature
    frame, sidecar = read_manifest(tiny_corpus["manifest"])
    rows = frame.set_index("utt_id").loc[table["utt_id"]]
    wavs = []
    for rel in rows["audio_path"]:
        with open(os.path.join(sidecar["data_dir"], rel), "rb") as f:
            wavs.append(f.read())
    out = tf.saved_model.load(path).signatures["predict_wav"](wav=tf.constant(wavs))
    probs = out["probabilities"].numpy()
    cols = [c for c in table.columns if c.startswith("p_")]
    np.testing.assert_allclose(probs, table[cols].to_numpy(), atol=1e-5)
    np.testing.assert_allclose(probs, softmax(out["logits"].numpy(), temperature), atol=1e-5)

    # --abstain_below: "uncertain" exactly where the top probability is below P.
    threshold = float(np.median(probs.max(1)))
    items = [(u, os.path.join(sidecar["data_dir"], r), None, {}) for u, r in zip(table["utt_id"], rows["audio_path"])]
    answers = predict(LocalRunner(path), items, abstain_below=threshold, out=io.StringIO())
    for answer, p in zip(answers, probs):
        if p.max() < threshold:
            assert answer["label"] == "uncertain" and answer["top_label"] == cols[p.argmax()][2:]
        else:
            assert answer["label"] == cols[p.argmax()][2:] and "top_label" not in answer


@pytest.mark.parametrize("value", ["0", "1", "1.5", "-0.2"])
def test_abstain_below_outside_0_1_is_a_usage_error(value):
    from tfsent.core.errors import UsageError
    from tfsent.export.predict import check_abstain_below

    with pytest.raises(UsageError, match="must be a probability in"):
        check_abstain_below(float(value))


def test_predict_cli_rejects_a_bad_threshold(tmp_path):
    wav = tmp_path / "x.wav"
    wav.write_bytes(b"RIFF")
    proc = subprocess.run([sys.executable, "-m", "tfsent.cli.predict", f"--model={tmp_path}", f"--wav={wav}",
                           "--abstain_below=1.5"], capture_output=True, text=True, timeout=120,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if "abstain_below" in line]
    assert len(errors) == 1 and "(0, 1)" in errors[0], proc.stderr[-2000:]
