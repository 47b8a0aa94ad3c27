"""What a finished bin/train run leaves in its model dir: resolved flags and versions, checkpoints
(last K + best), the temperature fitted on the validation split, TensorBoard logs with the promised
scalars, images and text."""

import glob
import hashlib
import json
import os

import numpy as np
import tensorflow as tf

from tfsent.tasks import class_weights_balanced


def _tags(log_dir):
    tags = {}
    for path in glob.glob(os.path.join(log_dir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    return tags


def test_run_info_holds_resolved_flags_versions_and_manifest_checksum(mirrored_run, train_data):
    model_dir = mirrored_run["model_dir"]
    with open(os.path.join(model_dir, "run_info.json"), encoding="utf-8") as f:
        info = json.load(f)
    assert set(info["flags"]) == {"data", "model", "optimisation", "distribution", "logging"}
    # The command line overrode the flagfile (configs/demo.flags says --epochs=12, --n_mels=64).
    assert info["flags"]["optimisation"]["epochs"] == 2
    assert info["flags"]["data"]["n_mels"] == 32
    assert info["flags"]["distribution"]["strategy"] == "mirrored"
    assert set(info["versions"]) >= {"tfsent", "tensorflow", "keras", "keras_hub"}
    assert info["versions"]["tensorflow"] == tf.__version__
    with open(train_data["manifest"], "rb") as f:
        assert info["manifest_sha256"] == hashlib.sha256(f.read()).hexdigest()
    assert "git_commit" in info
    with open(os.path.join(model_dir, "flags.txt"), encoding="utf-8") as f:
        flags_txt = f.read().splitlines()
    assert "--epochs=2" in flags_txt and "--cpu_devices=2" in flags_txt


def test_fusion_settings_are_recorded_in_the_run(mirrored_run):
    with open(os.path.join(mirrored_run["model_dir"], "tfsent_config.json"), encoding="utf-8") as f:
        config = json.load(f)
    # configs/demo.flags trains the fusion model with auxiliary heads; base_flags turns the
    # per-modality dropout off (the model's own rate, 0, applies).
    assert config["aux_loss_weight"] == 1.0 and config["modality_dropout"] == {}


def test_temperature_is_fitted_on_the_validation_split(mirrored_run):
    """bin/train ends with temperature scaling on the validation split (calibration.json)."""
    with open(os.path.join(mirrored_run["model_dir"], "calibration.json"), encoding="utf-8") as f:
        record = json.load(f)
    assert record["split"] == "valid" and record["fitted_by"] == "bin/train" and record["num_examples"] > 0
    assert record["temperature"] > 0 and record["nll_after"] <= record["nll_before"]
    assert f"T={record['temperature']:.3f}" in mirrored_run["stdout"]


def test_checkpoints_keep_the_last_k_and_the_best(mirrored_run):
    model_dir = mirrored_run["model_dir"]
    state = tf.train.get_checkpoint_state(os.path.join(model_dir, "checkpoints"))
    assert 1 <= len(state.all_model_checkpoint_paths) <= 3  # --keep_checkpoints default
    best = tf.train.get_checkpoint_state(os.path.join(model_dir, "best"))
    assert len(best.all_model_checkpoint_paths) == 1
    with open(os.path.join(model_dir, "train_summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    # The best checkpoint is the epoch with the best validation macro-F1.
    assert summary["best_value"] == max(h["macro_f1"] for h in summary["history"])


def test_tensorboard_logs_have_step_and_epoch_summaries(mirrored_run):
    out, model_dir = mirrored_run["stdout"], mirrored_run["model_dir"]
    logs = os.path.join(model_dir, "logs")
    assert f"tensorboard --logdir {logs}" in out
    train, valid = _tags(os.path.join(logs, "train")), _tags(os.path.join(logs, "valid"))
    for tag in ("loss", "learning_rate", "examples_per_second"):
        assert len(train[tag]) >= 2, tag  # per step (--log_every_steps=1)
    for tag in ("epoch/loss", "epoch/learning_rate", "epoch/examples_per_second"):
        assert train[tag] == [1, 2], tag
    for tag in ("epoch/accuracy", "epoch/unweighted_accuracy", "epoch/macro_f1", "epoch/loss", "confusion_matrix"):
        assert valid[tag] == [1, 2], tag
    assert "run/config" in train and "run/model_summary" in train
    assert any(t.startswith("_hparams_") for t in train)
    # demo_fusion takes audio and text: each validation also scores it without either.
    for condition in ("audio_removed", "text_removed"):
        for key in ("accuracy", "macro_f1", "agreement_with_full", "delta_macro_f1"):
            assert valid[f"modality_ablation/{condition}/{key}"] == [1, 2], (condition, key)
    full = _values(os.path.join(logs, "valid"), "modality_ablation/full/macro_f1")
    assert full == _values(os.path.join(logs, "valid"), "epoch/macro_f1")
    assert out.count("valid without audio / text: ") == 2
    with open(os.path.join(model_dir, "train_summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    final = summary["valid_modality_ablation"]  # the trained (best) model's
    assert final["full"]["macro_f1"] == summary["valid_metrics"]["macro_f1"]
    assert set(final) >= {"audio_removed", "text_removed", "chance", "how"}


def _values(log_dir, tag):
    values = []
    for path in sorted(glob.glob(os.path.join(log_dir, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            values += [float(tf.make_ndarray(v.tensor)) for v in event.summary.value if v.tag == tag]
    return values


def test_progress_lines_show_step_epoch_loss_and_eta(mirrored_run):
    lines = [line for line in mirrored_run["stdout"].splitlines() if line.startswith("epoch 1/2 step")]
    assert lines and all(" loss " in line and " ETA " in line for line in lines)


def test_balanced_class_weights_equalise_total_class_mass():
    labels = np.array([0, 0, 0, 0, 1, 1, 2])
    weights = np.array(class_weights_balanced(labels, 4))
    mass = np.bincount(labels, minlength=4) * weights
    np.testing.assert_allclose(mass[:3], len(labels) / 4)
    assert weights[3] == 0.0  # a class absent from training gets no weight


def test_dropout_seed_generator_state_survives_a_checkpoint_round_trip(tmp_path):
    # tf.train.Checkpoint(model=...) does not reach Keras SeedGenerators; the trainer tracks their
    # state variables explicitly, so a resumed run draws the same dropout masks.
    import keras

    from tfsent.models import registry
    from tfsent.training.trainer import seed_generator_states

    model = registry.build("text_cnn", num_classes=3, vocab_size=20, embedding_dim=4, filters=4, hidden=4,
                           dropout=0.5)
    states = seed_generator_states(model)
    assert states
    inputs = {"token_ids": np.arange(24, dtype=np.int32).reshape(3, 8) % 20,
              "padding_mask": np.ones((3, 8), np.int32)}
    model(inputs, training=True)  # advance the generators
    plain = tf.train.Checkpoint(model=model).save(str(tmp_path / "plain"))
    assert not any("seed" in name for name, _ in tf.train.list_variables(plain))  # the trap
    path = tf.train.Checkpoint(model=model, seed_generators=states).save(str(tmp_path / "full"))
    expected = keras.ops.convert_to_numpy(model(inputs, training=True)["logits"])
    model(inputs, training=True)  # the generators move on
    tf.train.Checkpoint(model=model, seed_generators=states).restore(path).assert_existing_objects_matched()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(inputs, training=True)["logits"]), expected)
