"""`bin/export --format=litert|onnx`: the tiny conv1d_mel's `.tflite` and `.onnx` reproduce the Keras
model, as its SavedModel serves it (within 1e-3), in a fresh process that imports ai_edge_litert and
onnxruntime but not tfsent (or TensorFlow), with the run's temperature applied; models or requests they
cannot take are refused with a one-line reason."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfsent.audio.features import AudioFrontend
from tfsent.core.errors import UsageError
from tfsent.export import litert
from tfsent.export.saved_model import load_for_export

TEMPERATURE = 2.5

_FRESH = r"""
import json, sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter

path, npz, onnx_path = sys.argv[1], sys.argv[2], sys.argv[3]
data = np.load(npz)
report = {}
import onnxruntime
session = onnxruntime.InferenceSession(f"{onnx_path}/model.onnx")
names = [o.name for o in session.get_outputs()]
outs = [dict(zip(names, session.run(None, {"waveform": w[None], "length": np.array([n], np.int32)})))
        for w, n in zip(data["waves"], data["lengths"])]
report["model.onnx"] = {k: np.concatenate([o[k] for o in outs]).tolist() for k in names}
for name in ("model.tflite", "model_dynamic.tflite"):
    interpreter = Interpreter(model_path=f"{path}/{name}", num_threads=1)
    runner = interpreter.get_signature_runner()
    outs = [runner(waveform=w[None], length=np.array([n], np.int32)) for w, n in zip(data["waves"], data["lengths"])]
    report[name] = {k: np.concatenate([o[k] for o in outs]).tolist() for k in outs[0]}
    report[name]["ops"] = sorted({op["op_name"] for op in interpreter._get_ops_details()})
report["modules"] = sorted(m for m in sys.modules if m.split(".")[0] in ("tfsent", "tensorflow", "keras"))
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def tiny_run(kit, tmp_path_factory):
    """The export tests' tiny conv1d_mel run (MFCC, n_fft 400, 1 s window) with a calibration.json."""
    run, _, _ = kit.make_model_dir(str(tmp_path_factory.mktemp("litert_run") / "conv1d_mel"), "conv1d_mel")
    with open(os.path.join(run, "calibration.json"), "w", encoding="utf-8") as f:
        json.dump({"temperature": TEMPERATURE, "nll_before": 1.0, "nll_after": 0.9, "split": "valid"}, f)
    return run


@pytest.fixture(scope="module")
def calibrated_export(tiny_run, tmp_path_factory):
    """`tiny_run` exported as LiteRT: model.tflite (float32) and model_dynamic.tflite."""
    return litert.export_litert(tiny_run, str(tmp_path_factory.mktemp("litert") / "exports"), quantize="dynamic")


@pytest.fixture(scope="module")
def onnx_export(tiny_run, tmp_path_factory):
    from tfsent.export.onnx_model import export_onnx

    return export_onnx(tiny_run, str(tmp_path_factory.mktemp("onnx") / "exports"))


def _keras_logits(run, clips):
    """The in-memory Keras model on the training-time front end, one clip at a time (no padding)."""
    config, model, _, _ = load_for_export(run)
    frontend = AudioFrontend(config.feature_config)
    logits = []
    for clip in clips:
        feats, mask = frontend(tf.constant(clip[None]), tf.constant([len(clip)], tf.int32))
        logits.append(model({"audio_features": feats, "audio_mask": mask}, training=False)["logits"].numpy())
    return np.concatenate(logits)


def test_tflite_and_onnx_match_the_keras_model_in_a_fresh_process(calibrated_export, onnx_export, tiny_run, kit,
                                                                  tmp_path):
    card = json.load(open(os.path.join(calibrated_export, "model_card.json"), encoding="utf-8"))
    window = int(round(card["window_seconds"] * 16000))
    assert card["calibration"]["temperature"] == TEMPERATURE and "DFT" in card["features"]["spectrum"]
    assert set(card["files"]) == {"model.tflite", "model_dynamic.tflite"}
    clips = [kit.noise(1.0, seed=1), kit.noise(0.45, seed=2), kit.noise(0.8, seed=3)]
    waves = np.zeros([len(clips), window], np.float32)
    for i, clip in enumerate(clips):
        waves[i, : len(clip)] = clip
    lengths = np.array([len(c) for c in clips], np.int32)
    npz = tmp_path / "in.npz"
    np.savez(npz, waves=waves, lengths=lengths)
    script = tmp_path / "fresh.py"
    script.write_text(_FRESH)
    proc = subprocess.run([sys.executable, str(script), calibrated_export, str(npz), onnx_export],
                          capture_output=True, text=True,
                          timeout=120, cwd=str(tmp_path), env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["modules"] == [], "the .tflite / .onnx must run with ai_edge_litert / onnxruntime alone"
    want_logits = _keras_logits(tiny_run, clips)
    want_probs = tf.nn.softmax(want_logits / TEMPERATURE).numpy()
    exact = report["model.tflite"]
    np.testing.assert_allclose(exact["logits"], want_logits, atol=1e-3)
    np.testing.assert_allclose(exact["probabilities"], want_probs, atol=1e-3)
    assert not {"VAR_HANDLE", "READ_VARIABLE", "FlexStridedSlice"} & set(exact["ops"])
    assert "RFFT2D" not in exact["ops"]  # n_fft 400: the exact DFT as MatMuls
    np.testing.assert_allclose(report["model.onnx"]["logits"], want_logits, atol=1e-3)
    np.testing.assert_allclose(report["model.onnx"]["probabilities"], want_probs, atol=1e-3)
    quantized = np.array(report["model_dynamic.tflite"]["probabilities"])
    np.testing.assert_allclose(quantized.sum(-1), 1.0, atol=1e-5)
    assert np.abs(quantized - want_probs).max() < 0.05  # int8 weights: close, not equal


def test_models_taking_text_are_refused(kit, tmp_path):
    run, _, _ = kit.make_model_dir(str(tmp_path / "run"), "text_cnn")
    with pytest.raises(UsageError, match="audio-only models"):
        litert.export_litert(run, str(tmp_path / "exports"))
    assert not os.path.exists(tmp_path / "exports")


def test_a_tf_serving_base_is_refused(tiny_run, tmp_path):
    """TF Serving serves the highest version of a base: a .tflite version there would break it."""
    os.makedirs(tmp_path / "conv1d_mel" / "1")
    (tmp_path / "conv1d_mel" / "1" / "saved_model.pb").write_bytes(b"")
    with pytest.raises(UsageError, match="use another --export_dir"):
        litert.export_litert(tiny_run, str(tmp_path))
    assert os.listdir(tmp_path / "conv1d_mel") == ["1"]


def test_a_converter_failure_names_the_op(tmp_path):
    """The training-time front end (complex slices of a 400-point STFT) is what LiteRT cannot take."""
    from tfsent.audio.features import AudioFrontend, FeatureConfig

    frontend = AudioFrontend(FeatureConfig(kind="log_mel", n_fft=400, n_mels=8))
    module = tf.Module()
    module.fn = tf.function(lambda w, n: {"features": frontend(w, n)[0]},
                            input_signature=[tf.TensorSpec([1, 4000], tf.float32), tf.TensorSpec([1], tf.int32)])
    tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": module.fn.get_concrete_function()})
    with pytest.raises(UsageError) as info:
        litert.convert_saved_model(str(tmp_path), model_name="frontend")
    message = str(info.value)
    assert "\n" not in message and "StridedSlice" in message and "not LiteRT builtins" in message


def test_an_onnx_failure_names_the_ops():
    from tfsent.export.onnx_model import failure_reason

    # tf2onnx 1.17's log for the TF Serving SavedModel (training-time front end).
    log = ("2026-12-02 09:05:33,861 - ERROR - Tensorflow op [StatefulPartitionedCall/audio_frontend_1/Imag: Imag] "
           "is not supported\n2026-12-02 09:05:33,887 - ERROR - Unsupported ops: Counter({'Real': 1, 'Imag': 1})\n")
    assert failure_reason(log) == "TensorFlow op(s) Real, Imag have no ONNX conversion in tf2onnx"
