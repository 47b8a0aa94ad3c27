"""The whole tfsent path through the real bin/ entry points on a tiny synthetic corpus:
prepare → train (TensorBoard files) → evaluate (metrics.json) → export (TF Serving layout) →
a fresh process that imports only tensorflow + tensorflow_text → bin/predict."""

import glob
import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.conftest import REPO, run_cli

pytestmark = pytest.mark.slow

TINY_MODEL = "--model_kwargs=filters=16,num_layers=2,hidden=16,embedding_dim=16"

# What TensorFlow's native code writes before absl's C++ logging is initialised; nothing in Python
# can silence it in TF 2.21 (tfsent.core.logs). Every other stderr line of a quiet run is a failure.
NATIVE_STARTUP = re.compile(r"^([IWEF]0000 00:00:|WARNING: All log messages before absl::InitializeLog\(\))")
PYTHON_LOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ \S+:\d+\] ")


def run_bin(name, *args):
    """Runs the real `bin/<name>` script (TF_CPP_MIN_LOG_LEVEL as bin/_run sets it by default)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([os.path.join(REPO, "bin", name), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600, env=env)
    assert proc.returncode == 0, f"bin/{name} exited {proc.returncode}\n{proc.stderr[-6000:]}"
    return proc


def assert_quiet(proc):
    """No TensorFlow / absl / matplotlib log lines on stderr, only native start-up lines."""
    noise = [line for line in proc.stderr.splitlines() if line.strip() and not NATIVE_STARTUP.match(line)]
    assert not noise, "log lines on stderr:\n" + "\n".join(noise[:20])


@pytest.fixture(scope="module")
def trained(tiny_corpus, tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("e2e") / "run")
    proc = run_cli(
        "train", "--flagfile=configs/demo.flags", f"--manifest={tiny_corpus['manifest']}",
        f"--model_dir={model_dir}", "--epochs=2", "--batch_size=8", "--vocab_size=300", TINY_MODEL, "--selection_metric=macro_f1",
        "--max_seconds=2", "--progress=false",
    )
    return {"model_dir": model_dir, "stdout": proc.stdout, "proc": proc, **tiny_corpus}


def test_train_writes_model_checkpoints_and_tensorboard(trained):
    d = trained["model_dir"]
    for name in ("model.keras", "tfsent_config.json", "run_info.json", "flags.txt", "vocab.txt",
                 "train_summary.json"):
        assert os.path.isfile(os.path.join(d, name)), name
    assert glob.glob(os.path.join(d, "checkpoints", "ckpt-*.index"))
    assert glob.glob(os.path.join(d, "best", "ckpt-*.index"))
    events = glob.glob(os.path.join(d, "logs", "*", "events.out.tfevents.*"))
    assert {os.path.basename(os.path.dirname(e)) for e in events} >= {"train", "valid"}
    info = json.load(open(os.path.join(d, "run_info.json")))
    assert len(info["manifest_sha256"]) == 64 and info["versions"]["tensorflow"].startswith("2.21")
    assert "tensorboard --logdir" in trained["stdout"]
    assert_quiet(trained["proc"])  # no checkpoint-writer INFO lines (functional_saver.py) at every save
    summary = json.load(open(os.path.join(d, "train_summary.json")))
    assert summary["selection_metric"] == "macro_f1" and summary["epochs_run"] == 2


def test_evaluate_writes_whole_split_metrics(trained):
    assert_quiet(run_bin("evaluate", f"--model_dir={trained['model_dir']}"))
    out = os.path.join(trained["model_dir"], "eval")
    m = json.load(open(os.path.join(out, "metrics.json")))
    for key in ("accuracy", "unweighted_accuracy", "macro_f1", "weighted_f1", "confusion_matrix",
                "labels", "num_examples"):
        assert key in m, key
    cm = np.asarray(m["confusion_matrix"])
    assert cm.shape == (4, 4) and cm.sum() == m["num_examples"] == m["num_examples_in_split"]
    assert m["labels"] == ["neutral", "happy", "sad", "angry"]
    assert abs(m["accuracy"] - np.trace(cm) / cm.sum()) < 1e-9
    assert m["context"]["split_strategy"] == "session"
    assert os.path.getsize(os.path.join(out, "confusion_matrix.png")) > 1000
    report = open(os.path.join(out, "report.md"), encoding="utf-8").read()
    assert "session" in report and "unweighted_accuracy" in report


def test_export_loads_in_a_tf_only_process_and_predict_cli(trained, tmp_path):
    export_dir = str(tmp_path / "exports")
    assert_quiet(run_bin("export", f"--model_dir={trained['model_dir']}", f"--export_dir={export_dir}"))
    version_dir = os.path.join(export_dir, "demo_fusion", "1")
    assert os.path.isfile(os.path.join(version_dir, "saved_model.pb"))
    # A second export becomes version 2; no temporary dirs are left behind. absl's --verbosity brings
    # the INFO lines back (the SavedModel writer's).
    loud = run_bin("export", f"--model_dir={trained['model_dir']}", f"--export_dir={export_dir}", "--verbosity=0")
    assert any(PYTHON_LOG_LINE.match(line) for line in loud.stderr.splitlines()), loud.stderr[-3000:]
    assert sorted(os.listdir(os.path.join(export_dir, "demo_fusion"))) == ["1", "2"]

    script = textwrap.dedent(f"""
        import sys, json
        import numpy as np
        import tensorflow as tf
        import tensorflow_text  # noqa: F401
        m = tf.saved_model.load({version_dir!r})
        f = m.signatures["serving_default"]
        audio = np.random.default_rng(0).normal(size=(2, 16000)).astype("float32") * 0.1
        out = f(audio=tf.constant(audio), audio_length=tf.constant([16000, 8000], tf.int32),
                text=tf.constant(["정말 기뻐요", "내일 회의는 세 시에 있어요"]))
        assert out["probabilities"].shape == (2, 4), out["probabilities"].shape
        assert not any(name.startswith("tfsent") for name in sys.modules)
        print(json.dumps({{"labels": [x.decode() for x in out["label"].numpy()],
                           "sum": out["probabilities"].numpy().sum(1).tolist()}}))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(result["labels"]) <= {"neutral", "happy", "sad", "angry"}
    np.testing.assert_allclose(result["sum"], 1.0, rtol=1e-5)

    wav = sorted(glob.glob(os.path.join(trained["corpus"], "wav", "*", "*.wav")))[0]
    proc = run_cli("predict", f"--model={version_dir}", f"--wav={wav}", "--text=진짜 화가 나")
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert line["label"] in line["probabilities"]
    assert abs(sum(line["probabilities"].values()) - 1.0) < 1e-4


@pytest.mark.parametrize(
    "module,args,message",
    [
        ("train", ["--model=demo_fusion", "--model_dir=X"], "--manifest is required"),
        ("train", ["--manifest=/nonexistent/manifest.csv", "--model=demo_fusion", "--model_dir=X"], "no such file"),
        ("evaluate", [], "--model_dir is required"),
        ("evaluate", ["--model_dir=/nonexistent"], "not found"),
        ("export", ["--model_dir=/nonexistent", "--export_dir=/tmp/x"], "not found"),
        ("predict", ["--model=/nonexistent", "--text=안녕"], "not a SavedModel"),
    ],
)
def test_cli_errors_are_one_clear_line_and_nonzero(module, args, message, tmp_path):
    proc = run_cli(module, *args, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if not NATIVE_STARTUP.match(line)]
    assert len(errors) == 1 and errors[0].startswith(f"bin/{module}: error: "), proc.stderr[-2000:]


def test_train_rejects_unknown_model_and_unknown_model_kwargs(tiny_corpus, tmp_path):
    proc = run_cli("train", f"--manifest={tiny_corpus['manifest']}", "--model=no_such_model",
                   f"--model_dir={tmp_path / 'r'}", check=False)
    assert proc.returncode != 0 and "unknown model 'no_such_model'" in proc.stderr
    proc = run_cli("train", "--flagfile=configs/demo.flags", f"--manifest={tiny_corpus['manifest']}",
                   f"--model_dir={tmp_path / 'r2'}", "--model_kwargs=no_such_knob=3", check=False)
    assert proc.returncode != 0 and "no_such_knob" in proc.stderr
    proc = run_cli("train", "--flagfile=configs/demo.flags", "--no_such_flag=1", check=False)
    assert proc.returncode != 0 and "no_such_flag" in proc.stderr


def test_list_models_prints_the_registry():
    proc = run_cli("train", "--list_models")
    names = proc.stdout.split()
    assert {"demo_fusion", "conv1d_mel", "text_cnn"} <= set(names)
    assert names == sorted(names)
