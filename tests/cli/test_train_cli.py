"""bin/train's command line: unknown flags and impossible combinations fail before any training, with
a message naming the flags; flagfiles in configs/ document themselves."""

import glob
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _train(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "tfsent.cli.train", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env=env)


@pytest.mark.parametrize(
    "args, named",
    [
        (["--strategy=default", "--cpu_devices=2"], ["cpu_devices", "strategy=mirrored"]),
        (["--strategy=multi_worker", "--cpu_devices=2"], ["cpu_devices"]),
        (["--mixed_precision=mixed_float16", "--deterministic"], ["--deterministic", "--mixed_precision"]),
        (["--weight_decay=0.01", "--optimizer=adam"], ["--weight_decay", "--optimizer=adamw"]),
        (["--class_weights=balanced", "--balanced_sampling"], ["--class_weights", "--balanced_sampling"]),
        (["--class_weights=balanced", "--task=valence"], ["--class_weights", "--task"]),
        (["--valid_split=train"], ["--train_split", "--valid_split"]),
        (["--valid_split=test"], ["--valid_split", "bin/evaluate"]),
        (["--selection_metric=ccc"], ["--selection_metric", "--task"]),
        (["--task=arousal", "--selection_metric=f1"], ["--selection_metric", "--task"]),
        (["--batch_size=0"], ["--batch_size"]),
        (["--epochs=0"], ["--epochs"]),
        (["--learning_rate=-1"], ["--learning_rate"]),
        (["--strategy=several"], ["strategy"]),
    ],
)
def test_impossible_flag_combinations_are_rejected_naming_the_flags(args, named):
    proc = _train("--manifest=m.csv", "--model=demo_fusion", "--model_dir=unused", *args)
    assert proc.returncode != 0
    for name in named:
        assert name in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not os.path.exists(os.path.join(REPO, "unused"))


def test_unknown_or_mistyped_flag_is_an_error():
    proc = _train("--flagfile=configs/demo.flags", "--epochz=3")
    assert proc.returncode != 0
    assert "epochz" in proc.stderr


def test_valid_flags_pass_validation_and_fail_only_on_the_missing_manifest(tmp_path):
    missing = str(tmp_path / "nope.csv")
    proc = _train("--flagfile=configs/demo.flags", f"--manifest={missing}", f"--model_dir={tmp_path / 'run'}",
                  "--strategy=mirrored", "--cpu_devices=2", "--class_weights=balanced")
    assert proc.returncode == 2
    assert f"--manifest={missing}: no such file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_required_flags_are_named():
    proc = _train("--model=demo_fusion")
    assert proc.returncode == 2
    assert "--manifest is required" in proc.stderr


def test_every_flagfile_starts_with_a_comment_giving_the_command():
    files = sorted(glob.glob(os.path.join(REPO, "configs", "*.flags")))
    assert files
    for path in files:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        header = []
        for line in lines:
            if not line.startswith("#"):
                break
            header.append(line)
        name = os.path.relpath(path, REPO)
        assert any(f"--flagfile={name}" in line for line in header), f"{name}: no command in the header"
        assert len(header) >= 2, f"{name}: the header should also say what the run produces"
        assert all(line.startswith(("--", "#")) or not line.strip() for line in lines), name
