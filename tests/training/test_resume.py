"""Resume after SIGKILL: a run killed mid-epoch and re-run with the same command ends exactly where an
uninterrupted run ends (weights, per-epoch losses and validation metrics), dropout and waveform
augmentation included."""

import json
import os
import re

import pytest


def _summary(model_dir):
    with open(os.path.join(model_dir, "train_summary.json"), encoding="utf-8") as f:
        return json.load(f)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigkill_mid_epoch_then_rerun_matches_uninterrupted_run(train_data, tt, tmp_path):
    flags = tt.base_flags(train_data, dropout=True) + [
        "--deterministic", "--epochs=3", "--audio_augment=noise_prob=0.5,gain_prob=0.5",
        "--early_stopping_patience=5", "--progress=true",
    ]
    straight, killed = str(tmp_path / "straight"), str(tmp_path / "killed")

    # The uninterrupted reference runs alongside the run that gets killed.
    reference = tt.start_train(*flags, f"--model_dir={straight}", log_path=str(tmp_path / "straight.log"))
    victim = tt.start_train(*flags, f"--model_dir={killed}")
    before_kill = tt.kill_when(victim, "epoch 2/3 step 3/")
    assert victim.returncode == -9
    assert "epoch 2/3:" not in before_kill  # killed before epoch 2 ended: mid-epoch
    assert not os.path.exists(os.path.join(killed, "model.keras"))
    assert not os.path.exists(os.path.join(killed, "train_summary.json"))

    resumed = tt.run_train(*flags, f"--model_dir={killed}")
    ref_out = tt.finish(reference, timeout=400)
    assert reference.returncode == 0, ref_out[-6000:]

    match = re.search(r"resuming from \S+: epoch (\d+), step (\d+) \((\d+) into the epoch\)", resumed.stdout)
    assert match, resumed.stdout[-4000:]
    epoch, step = int(match.group(1)), int(match.group(2))
    assert epoch >= 1 and step > 0  # it did restore training progress (not a fresh start)
    # Only the remaining epochs ran after the restart; epoch 1's line is not printed again.
    assert "epoch 1/3:" not in resumed.stdout and "epoch 3/3:" in resumed.stdout

    diff = tt.max_abs_diff(tt.model_weights(straight), tt.model_weights(killed))
    assert diff <= 1e-6  # dropout masks and augmentation included (without them restored: ~5e-2)
    a, b = _summary(straight), _summary(killed)
    assert a["global_step"] == b["global_step"] and a["epochs_run"] == b["epochs_run"] == 3
    assert [h["epoch"] for h in b["history"]] == [1, 2, 3]  # history survives the restart
    for ha, hb in zip(a["history"], b["history"]):
        for key in ("train_loss", "loss", "macro_f1", "accuracy"):
            assert hb[key] == pytest.approx(ha[key], abs=1e-6), (ha["epoch"], key)
    assert a["weights_fingerprint"] == b["weights_fingerprint"]


@pytest.mark.timeout(300)
def test_rerun_with_a_different_model_in_the_same_dir_is_refused(train_data, tt, tmp_path):
    model_dir = str(tmp_path / "run")
    os.makedirs(model_dir)
    flags = tt.base_flags(train_data) + [f"--model_dir={model_dir}"]
    # A previous run's config with other model settings: bin/train must not resume into it.
    from tfsent.core.run_dir import CONFIG_FILE

    with open(os.path.join(model_dir, CONFIG_FILE), "w", encoding="utf-8") as f:
        json.dump({"model": "conv1d_mel", "model_kwargs": {}, "task": "classification",
                   "classes": [], "feature": {}, "sequence_length": 16, "max_seconds": 2.0}, f)
    proc = tt.run_train(*flags, check=False)
    assert proc.returncode == 2
    assert "holds a run with different model" in proc.stdout
