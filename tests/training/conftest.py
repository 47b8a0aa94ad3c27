"""Fixtures for the trainer tests: one prepared corpus and one vocabulary per session, and a runner for
`bin/train` (as a subprocess, like the bin/ script, so device set-up and SIGKILL are real).

The corpus is the session-wide `tiny_corpus` (tests/conftest.py). Every run uses a tiny model, short
clips and few steps so the whole folder stays fast on two cores.
"""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON = sys.executable

# Small enough to train in seconds; dropout off so runs under different strategies are comparable
# (each replica draws its own dropout masks).
TINY_KWARGS = "filters=16,num_layers=1,hidden=16,embedding_dim=16"
NO_DROPOUT = ",dropout=0.0,branch_dropout=0.0,modality_dropout=0.0"


@pytest.fixture(scope="session")
def train_data(tiny_corpus, tmp_path_factory):
    """The prepared manifest and a small WordPiece vocabulary trained once on its training split."""
    from tfsent.corpus.manifest import read_manifest
    from tfsent.text.vocab import train_wordpiece_vocabulary, write_vocabulary

    frame, _ = read_manifest(tiny_corpus["manifest"])
    texts = frame.loc[frame["split"].astype(str) == "train", "text"].fillna("").astype(str).tolist()
    vocab = str(tmp_path_factory.mktemp("train_vocab") / "vocab.txt")
    write_vocabulary(train_wordpiece_vocabulary(texts, 300), vocab)
    return {"manifest": tiny_corpus["manifest"], "vocabulary": vocab}


@pytest.fixture(scope="session")
def mirrored_run(train_data, tmp_path_factory):
    """One `bin/train --strategy=mirrored --cpu_devices=2` run of the demo model (SGD, no dropout),
    shared by the tests that inspect a finished run or compare against it."""
    model_dir = str(tmp_path_factory.mktemp("mirrored") / "run")
    flags = base_flags(train_data) + [
        "--optimizer=sgd", "--learning_rate=0.05", "--strategy=mirrored", "--cpu_devices=2",
        f"--model_dir={model_dir}", "--modality_ablation",
    ]
    proc = run_train(*flags)
    return {"model_dir": model_dir, "stdout": proc.stdout, "flags": flags}


def in_process_run(source_dir, model_dir, strategy=None, **overrides):
    """Trains in this process with the exact task and settings of the bin/train run in `source_dir`
    (its tfsent_config.json and resolved flags), optionally changing TrainerConfig fields."""
    import dataclasses
    import json

    from tfsent.corpus.manifest import read_manifest
    from tfsent.tasks import EmotionTask, TaskConfig
    from tfsent.training.trainer import Trainer, TrainerConfig

    config = TaskConfig.load(source_dir)
    frame, sidecar = read_manifest(config.manifest)
    with open(os.path.join(source_dir, "run_info.json"), encoding="utf-8") as f:
        flags = {k: v for group in json.load(f)["flags"].values() for k, v in group.items()}
    task = EmotionTask(config, frame, sidecar, batch_size=flags["batch_size"], seed=flags["seed"])
    fields = {f.name: flags[f.name] for f in dataclasses.fields(TrainerConfig) if f.name != "model_dir"}
    fields.update(overrides)
    trainer = Trainer(task, TrainerConfig(model_dir=model_dir, **fields), strategy)
    return trainer, trainer.train()


def base_flags(train_data, *, dropout=False):
    """The demo flagfile, shrunk: command-line flags after --flagfile override it."""
    return [
        "--flagfile=configs/demo.flags",
        f"--manifest={train_data['manifest']}",
        f"--vocabulary={train_data['vocabulary']}",
        f"--model_kwargs={TINY_KWARGS}{'' if dropout else NO_DROPOUT}",
        # Without dropout, the flagfile's per-modality rates give way to the model's own (0 above).
        *([] if dropout else ["--modality_dropout="]),
        "--n_mels=32",
        "--max_seconds=2",
        "--sequence_length=16",
        "--batch_size=4",
        "--epochs=2",
        "--selection_metric=macro_f1",
        "--lr_schedule=constant",
        "--warmup_steps=0",
        "--learning_rate=0.01",
        "--log_every_steps=1",
        "--checkpoint_every_steps=2",
        "--audio_augment=",
        "--nomodality_ablation",  # ~8 s of CPU per run; mirrored_run turns it back on and checks it
    ]


def _env(extra=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    env.pop("TF_CONFIG", None)
    env.update(extra or {})
    return env


def train_cmd(*flags):
    return [PYTHON, "-m", "tfsent.cli.train", *flags]


def run_train(*flags, check=True, timeout=280, env=None):
    """Runs bin/train to completion; returns the CompletedProcess (stdout+stderr in .stdout)."""
    proc = subprocess.run(
        train_cmd(*flags), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=timeout, env=_env(env),
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"bin/train {' '.join(flags)} exited {proc.returncode}\n{proc.stdout[-6000:]}")
    return proc


def start_train(*flags, env=None, log_path=None):
    """Starts bin/train in the background. Output goes to `log_path` (read it with `finish`), or to a
    line-buffered pipe that the caller must keep reading (`kill_when`): a full pipe would block it."""
    if log_path is None:
        return subprocess.Popen(
            train_cmd(*flags), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            bufsize=1, env=_env(env),
        )
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(train_cmd(*flags), cwd=REPO, stdout=log, stderr=subprocess.STDOUT, text=True,
                                env=_env(env))
    proc.log_path = log_path
    return proc


def finish(proc, timeout):
    """Waits for a `start_train(..., log_path=...)` process (killing it on timeout); returns its output."""
    try:
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with open(proc.log_path, encoding="utf-8") as f:
        return f.read()


def kill_when(proc, pattern, timeout=240):
    """SIGKILLs `proc` as soon as a line containing `pattern` appears; returns the output so far."""
    lines = []
    deadline = time.time() + timeout
    for line in proc.stdout:
        lines.append(line)
        if pattern in line:
            os.kill(proc.pid, signal.SIGKILL)
            break
        if time.time() > deadline:
            break
    else:
        proc.wait()
        raise AssertionError(f"bin/train ended before printing {pattern!r}:\n{''.join(lines)[-6000:]}")
    proc.kill()
    proc.wait(timeout=30)
    proc.stdout.close()
    return "".join(lines)


def model_weights(model_dir):
    """The trained model's weights (model.keras) as numpy arrays, in model order."""
    import keras

    from tfsent.models import registry

    registry.names()  # imports the model modules, which registers their custom layers

    model = keras.saving.load_model(os.path.join(model_dir, "model.keras"), compile=False)
    return [np.asarray(w) for w in model.weights]


def max_abs_diff(a, b):
    assert len(a) == len(b)
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


@pytest.fixture(scope="session")
def tt():
    """The helpers above, for the test modules (conftest modules are not importable by name)."""
    import types

    return types.SimpleNamespace(
        base_flags=base_flags, run_train=run_train, in_process_run=in_process_run, start_train=start_train,
        kill_when=kill_when, finish=finish, model_weights=model_weights, max_abs_diff=max_abs_diff, env=_env, train_cmd=train_cmd, repo=REPO,
    )
