"""Issue 17: bad inputs get one-line errors, loud warnings or named skips, never tracebacks, silent
drops or confident answers. Each test reproduces a failure of the issue (see its comment)."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tfsent.core.errors import UsageError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")


def _bin(name, *args, timeout=120):
    return subprocess.run([os.path.join(REPO, "bin", name), *args], capture_output=True, text=True,
                          env=ENV, timeout=timeout, cwd=REPO)


def _edited_manifest(tiny_corpus, out, edit, sidecar_edit=None):
    """A copy of the tiny corpus's manifest with `edit(frame)` applied (sidecar kept consistent)."""
    from tfsent.corpus.manifest import read_manifest, write_manifest

    frame, sidecar = read_manifest(tiny_corpus["manifest"])
    frame = edit(frame.copy())
    if sidecar_edit:
        sidecar = sidecar_edit(dict(sidecar))
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return write_manifest(str(out), records, sidecar)


# === class 6: degenerate training sets (and class 7: paths outside the corpus) ===


def _one_class(frame):
    train = frame["split"] == "train"
    first = frame.loc[train, "emotion"].iloc[0]
    frame = frame[~train | (frame["emotion"] == first)]
    return frame


def _not_a_distribution(frame):
    frame.loc[frame.index[3], "target_happy"] = 0.7
    return frame


CASES = {
    "one_class": (_one_class, "a classifier needs at least two"),
    "renamed_train_split": (lambda f: f.assign(split=f["split"].replace("train", "training")),
                            "--train_split=train: no row"),
    "targets_not_a_distribution": (_not_a_distribution, "are not a distribution"),
    "all_nan_text": (lambda f: f.assign(text="NaN"), "(or NaN/None)"),
    "all_empty_text": (lambda f: f.assign(text=""), "text model has nothing to learn from"),
    "path_outside_corpus": (lambda f: f.assign(audio_path=["../outside/x.wav"] + list(f["audio_path"][1:])),
                            "leaves the corpus root"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_training_set_checks_fail_fast_and_leave_no_model_dir(case, tiny_corpus, tmp_path):
    from tfsent.corpus.manifest import confined_paths, read_manifest
    from tfsent.corpus.training_set import check_training_set, check_training_text

    edit, message = CASES[case]
    path = _edited_manifest(tiny_corpus, tmp_path / "m", edit)
    frame, sidecar = read_manifest(path)
    with pytest.raises(UsageError) as err:
        confined_paths(frame, sidecar["data_dir"])
        check_training_set(frame, sidecar, "train", "classification")
        check_training_text(frame, "train")
    assert message in str(err.value)


def test_bin_train_refuses_a_degenerate_set_before_tensorflow_starts(tiny_corpus, tmp_path):
    # Was: "No words to learn from" after 28 s of start-up, with files left in the model dir.
    path = _edited_manifest(tiny_corpus, tmp_path / "m", CASES["renamed_train_split"][0])
    model_dir = tmp_path / "run"
    proc = _bin("train", "--flagfile=configs/demo.flags", f"--manifest={path}", f"--model_dir={model_dir}")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and lines[-1].startswith("bin/train: error: --train_split=train: no row"), proc.stderr
    assert not model_dir.exists()


def test_classes_without_training_examples_warn_loudly(tiny_corpus, tmp_path):
    # Was: --classes=7 on the 4-class demo corpus trained silently and predicted unseen classes.
    from tfsent.corpus.emotions import CLASS_SETS
    from tfsent.corpus.manifest import read_manifest
    from tfsent.corpus.training_set import check_training_set

    frame, sidecar = read_manifest(tiny_corpus["manifest"])
    seven = list(CLASS_SETS["7"])
    for c in seven:
        frame[f"target_{c}"] = (frame["emotion"] == c).astype(float)
    warnings = check_training_set(frame, dict(sidecar, classes=seven), "train", "classification")
    missing = [c for c in seven if c not in set(frame["emotion"])]
    assert len(warnings) == 1 and str(missing) in warnings[0]
    assert check_training_set(frame, sidecar, "train", "classification") == []


# === class 5: one run per model dir (and per exported model name) ===


def test_a_held_model_dir_is_refused_and_a_stale_lock_taken_over(tmp_path):
    from tfsent.core.locks import LOCK_FILE, DirLock, LockedError

    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": live.pid, "host": socket.gethostname(),
                                                      "since": "then", "command": "bin/train ..."}))
        with pytest.raises(LockedError, match=f"--model_dir={tmp_path} is in use by pid {live.pid}"):
            DirLock(tmp_path, "--model_dir").acquire()
    finally:
        live.kill()
        live.wait()
    lock = DirLock(tmp_path, "--model_dir").acquire()  # the holder is gone: stale, taken over
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    with pytest.raises(LockedError):
        DirLock(tmp_path, "--model_dir").acquire()  # a second run, while this one holds it
    lock.release()
    assert not (tmp_path / LOCK_FILE).exists()


# === class 4: outputs that cannot be written; Ctrl-C ===


def test_unwritable_outputs_are_one_line_errors(kemdy20_dir, tmp_path):
    from tfsent.cli.common import writable_dir

    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    for path, message in ((blocker, "exists and is not a directory"), (blocker / "sub", "cannot write there"),
                          ("/proc/tfsent_out", "cannot write there")):
        with pytest.raises(UsageError, match=message):
            writable_dir(str(path), "out_dir")
    proc = _bin("prepare", "--format=kemdy20", f"--data_dir={kemdy20_dir}", f"--out={blocker}/sub")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"bin/prepare: error: --out={blocker}/sub: cannot write there (Not a directory: {blocker}/sub)")


@pytest.fixture
def kemdy20_dir(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("corpus_conftest", os.path.join(REPO, "tests", "corpus", "conftest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_kemdy20(str(tmp_path / "KEMDy20"))[0]


INTERRUPTED_INSIDE_A_LIBRARY = textwrap.dedent('''
    import os, signal
    from tfsent.cli import common

    def main(argv):
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except KeyboardInterrupt as e:  # what TensorFlow does to a Ctrl-C inside a py_function
            raise RuntimeError("UnknownError: KeyboardInterrupt: Traceback ...") from e

    common.run_main(main, "probe")
''')


def test_ctrl_c_wrapped_by_a_library_is_an_interrupt_not_a_traceback():
    proc = subprocess.run([sys.executable, "-c", INTERRUPTED_INSIDE_A_LIBRARY], capture_output=True,
                          text=True, env=ENV, cwd=REPO, timeout=60)
    assert proc.returncode == 130 and proc.stderr.strip() == "bin/probe: interrupted", proc.stderr


# === class 8: --help ===


def test_train_help_shows_grouped_flags_with_defaults_and_exits_0():
    proc = _bin("train", "--help")
    assert proc.returncode == 0, proc.stderr
    headings = [line for line in proc.stdout.splitlines() if line.endswith(" flags:")]
    assert headings == [f"{g} flags:" for g in ("data", "features", "model", "optimisation", "distribution",
                                                "logging")]
    assert "  --n_mels (default: 64)" in proc.stdout and "--helpfull" in proc.stdout


# === classes 1 and 8: bin/predict's inputs ===


class _FakeRunner:
    takes_audio = takes_text = True

    def __init__(self):
        self.calls = []

    def __call__(self, wavs, texts):
        self.calls.append((wavs, texts))
        n = len(texts)
        return {"probabilities": np.full((n, 2), 0.5, np.float32), "label": [b"happy"] * n,
                "classes": [[b"happy", b"sad"]] * n, "modalities": [b"audio+text"] * n}


def test_predict_refuses_empty_and_tiny_wavs_and_reads_cp949_transcripts(tmp_path):
    import io

    from tfsent.corpus import layouts
    from tfsent.export.predict import collect_inputs, predict

    # Was: `bin/predict --wav=empty.wav --text=hi` → "label": "surprise", exit 0.
    (tmp_path / "empty.wav").write_bytes(b"")
    layouts.write_wav(str(tmp_path / "nodata.wav"), frames=0)
    layouts.write_wav(str(tmp_path / "tiny.wav"), frames=16)
    runner = _FakeRunner()
    for name, reason in (("empty.wav", "empty_audio"), ("nodata.wav", "empty_audio"), ("tiny.wav", "too_short")):
        with pytest.raises(UsageError, match=f"{name}: {reason}"):
            predict(runner, collect_inputs(str(tmp_path / name), "hi"), out=io.StringIO())
    assert runner.calls == []
    # Was: a KEMDy20 session folder failed with a bare "'utf-8' codec can't decode byte 0xbf".
    session = tmp_path / "Session01"
    layouts.write_wav(str(session / "a.wav"), frames=1600)
    layouts.write_text(str(session / "a.txt"), "오늘 정말 좋아", "cp949")
    rows = predict(runner, collect_inputs(str(session)), out=io.StringIO())
    assert runner.calls[-1][1] == ["오늘 정말 좋아"] and rows[0]["modalities"] == "audio+text"
