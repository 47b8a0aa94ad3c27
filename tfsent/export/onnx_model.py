"""ONNX export of audio-only Keras runs (`bin/export --format=onnx`), for onnxruntime.

The graph is the LiteRT one (`tfsent.export.litert.OnDeviceModule`): `waveform` float32 `[1, W]` and
`length` int32 `[1]` in, the run's features computed inside, `logits` and calibrated `probabilities`
(or `valence` / `arousal`) out. It is written as a SavedModel and converted by `tf2onnx` 1.17
(`python -m tf2onnx.convert --saved-model`, opset 17) into `EXPORT_DIR/<name>/<version>/model.onnx`
with a `model_card.json`. The TF Serving SavedModel itself does not convert: tf2onnx 1.17 has no
`Real` / `Imag` and takes an `RFFT` only when `ComplexAbs` consumes it, which the training front end
(`tfsent.audio.features.stft_power`) does not do. Needs the `onnx` extra (tf2onnx, onnx, onnxruntime).

Example:

```python
path = export_onnx("runs/conv1d_mel", "exports_onnx")          # exports_onnx/conv1d_mel/1/model.onnx
import onnxruntime
session = onnxruntime.InferenceSession(f"{path}/model.onnx")
logits, probabilities = session.run(None, {"waveform": window[None], "length": np.array([n], np.int32)})
```
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tempfile

import tensorflow as tf

from tfsent.core.errors import UsageError
from tfsent.export.litert import OnDeviceTarget, on_device_card

ONNX_FILE = "model.onnx"
OPSET = 17


def export_onnx(model_dir, export_dir, *, model_name=None, version=None, window_seconds=None,
                manifest=None) -> str:
    """Exports a trained audio-only Keras run as `model.onnx`; returns the version dir's path."""
    if importlib.util.find_spec("tf2onnx") is None:
        raise UsageError("--format=onnx needs tf2onnx: pip install -c constraints.txt -e '.[onnx]'")
    target = OnDeviceTarget(model_dir, export_dir, model_name, version, window_seconds, manifest)
    with tempfile.TemporaryDirectory(prefix="tfsent-onnx-") as work:
        saved = os.path.join(work, "saved_model")
        tf.saved_model.save(target.module, saved, signatures={"serving_default": target.module.signature()})
        blob = convert_saved_model(saved, os.path.join(work, ONNX_FILE), target.model_name)
    blobs = {ONNX_FILE: blob}
    card = on_device_card(target.module, target.model_name, target.version, "none", blobs, target.record, fmt="onnx")
    card["onnx_opset"] = OPSET
    return target.write(blobs, card)


def convert_saved_model(saved, out, model_name="model") -> bytes:
    """`tf2onnx.convert` of a SavedModel's `serving_default`; a failure is a one-line UsageError."""
    proc = subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--saved-model", saved, "--output", out,
                           "--opset", str(OPSET)], capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    if proc.returncode != 0 or not os.path.isfile(out):
        raise UsageError(f"{model_name}: cannot convert to ONNX: {failure_reason(proc.stderr)}")
    with open(out, "rb") as f:
        return f.read()


def failure_reason(log: str) -> str:
    """The unsupported ops tf2onnx names, else its last error line."""
    ops = re.search(r"Unsupported ops: Counter\(\{(.*?)\}\)", log)
    if ops:
        names = re.findall(r"'(\w+)'", ops.group(1))
        return f"TensorFlow op(s) {', '.join(names)} have no ONNX conversion in tf2onnx"
    lines = [line.strip() for line in log.splitlines() if "error" in line.lower()]
    return " ".join((lines[-1] if lines else log.strip()[-300:]).split())[:300]
