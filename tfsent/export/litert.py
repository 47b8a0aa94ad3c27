"""On-device export: audio-only Keras runs as LiteRT (`.tflite`) models, run with `ai-edge-litert`.

`export_litert(model_dir, export_dir)` writes `EXPORT_DIR/<model_name>/<version>/` atomically (a
hidden temporary dir renamed when complete, as `tfsent.export.saved_model` does):

- `model.tflite`: float32;
- `model_dynamic.tflite` (`quantize="dynamic"`, the default: int8 weights, float activations) or
  `model_float16.tflite` (`quantize="float16"`); none with `quantize="none"`;
- `model_card.json`: labels, window, inputs / outputs, temperature, feature settings, file sizes.

The graph (signature `serving_default`): `waveform` float32 `[1, W]` (16 kHz mono, W samples = the
training crop `max_seconds`, or `window_seconds`; zero-padded after the real samples) and `length`
int32 `[1]` (real samples, 1..W) → the run's features (`tfsent.audio.litert_features`, LiteRT builtin
ops only) → the model → `logits` `[1, C]` (raw) and `probabilities` `[1, C]` = `softmax(logits / T)`
with the run's temperature (`calibration.json`), or `valence` / `arousal` `[1]` for regressors. Longer
recordings are the app's loop: windows of W every W/2, mean of the logits, as the SavedModel does.

Keras 3 models convert through a SavedModel (`from_keras_model` does not support Keras 3): the
SavedModel is written, loaded back, and its `serving_default` converted as a concrete function
(`from_saved_model` leaves Keras 3's weights as uninitialised resource variables: NaN outputs). Only LiteRT builtin ops are allowed (no Select TF ops, so the plain
`ai-edge-litert` interpreter runs it); a model with other ops is refused with the op names the
converter reported. Models that take text are refused up front (the tokenizer ops are TF Text ops).

Example:

```python
path = export_litert("runs/conv1d_mel", "exports_litert")     # exports_litert/conv1d_mel/1
from ai_edge_litert.interpreter import Interpreter
runner = Interpreter(model_path=f"{path}/model.tflite", num_threads=1).get_signature_runner()
out = runner(waveform=window[None], length=np.array([len(clip)], np.int32))
out["probabilities"]
```
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import tempfile

import tensorflow as tf

from tfsent.audio.litert_features import FixedWindowFrontend
from tfsent.core import files
from tfsent.core import inputs as inputs_lib
from tfsent.core.errors import UsageError
from tfsent.core.run_dir import RunDir
from tfsent.export.saved_model import (
    ExportExistsError,
    _remove_stale_temporaries,
    load_for_export,
    next_version,
)

QUANTIZE = ("none", "dynamic", "float16")
FLOAT_FILE = "model.tflite"
CARD_FILE = "model_card.json"


def quantized_file(quantize) -> str | None:
    return None if quantize == "none" else f"model_{quantize}.tflite"


class OnDeviceModule(tf.Module):
    """The graph converted to LiteRT: one fixed window of samples in, logits / probabilities out.

    Args:
        model: the trained audio-only Keras model (Contract 2 inputs).
        config: the run's `TaskConfig`.
        window_seconds: the fixed window (default: the training crop `max_seconds`).
        temperature: the run's temperature scaling (classifiers).

    Example:

    ```python
    module = OnDeviceModule(model, config, temperature=1.3)
    tf.saved_model.save(module, path, signatures={"serving_default": module.signature()})
    ```
    """

    def __init__(self, model, config, window_seconds=None, temperature=1.0):
        super().__init__(name="tfsent_on_device")
        self.model = model
        self.config = config
        feature = config.feature_config
        self.sample_rate = int(feature.sample_rate)
        self.window = int(round(float(window_seconds or config.max_seconds) * self.sample_rate))
        self.frontend = FixedWindowFrontend(feature, self.window)
        self.model_inputs = inputs_lib.input_names(model)
        self.classification = config.task == "classification"
        self.temperature = float(temperature)

    def serve(self, waveform, length):
        features, mask = self.frontend(waveform, length)
        if self.config.feature_config.kind == "waveform":
            inputs = {"waveform": features, "waveform_mask": mask}
        else:
            inputs = {"audio_features": features, "audio_mask": mask}
        outputs = self.model({k: inputs[k] for k in self.model_inputs}, training=False)
        outputs = {k: tf.cast(v, tf.float32) for k, v in outputs.items()}
        if self.classification:
            logits = outputs["logits"]
            return {"logits": logits, "probabilities": tf.nn.softmax(logits / self.temperature, axis=-1)}
        return {k: tf.reshape(outputs[k], [-1]) for k in ("valence", "arousal") if k in outputs}

    def signature(self):
        return tf.function(self.serve, input_signature=[
            tf.TensorSpec([1, self.window], tf.float32, name="waveform"),
            tf.TensorSpec([1], tf.int32, name="length"),
        ]).get_concrete_function()


# === Conversion ===


def check_convertible(model_name):
    """A one-line UsageError for models on-device export does not take (text, multimodal, scikit-learn)."""
    from tfsent.models import registry

    entry = registry.get(model_name)
    if entry.kind == "sklearn":
        raise UsageError(f"on-device export: {model_name!r} is a scikit-learn model; only Keras models convert")
    if entry.modality != "audio":
        raise UsageError(f"on-device export: {model_name!r} takes {entry.modality} input; LiteRT / ONNX export is for "
                         "audio-only models (the in-graph tokenizer uses TF Text ops neither runtime has)")


def unsupported_ops(message: str) -> list:
    """The TensorFlow op names a converter error message says LiteRT cannot run."""
    ops = re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", message)
    for listed in re.findall(r"(?:TF Select ops|Flex ops|Custom ops): ([^\n]+)", message):
        ops += [op.strip() for op in listed.split(",") if op.strip()]
    return sorted(set(ops))


def convert_saved_model(path, quantize="none", model_name="model") -> bytes:
    """A `.tflite` flatbuffer of a SavedModel's `serving_default`, builtin ops only."""
    if quantize not in QUANTIZE:
        raise UsageError(f"--quantize={quantize}: must be one of {', '.join(QUANTIZE)}")
    # `from_saved_model` keeps Keras 3 weights as resource variables the interpreter never initialises
    # (NaN outputs); the loaded SavedModel's signature, converted as a concrete function, freezes them.
    loaded = tf.saved_model.load(path)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([loaded.signatures["serving_default"]], loaded)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    try:
        return converter.convert()
    except Exception as e:  # ConverterError and friends: a one-line reason naming the ops
        message = str(e)
        ops = unsupported_ops(message)
        if ops:
            raise UsageError(f"{model_name}: cannot convert to LiteRT: TensorFlow op(s) {', '.join(ops)} are not "
                             "LiteRT builtins (Select TF ops are not used: the plain interpreter could not run "
                             "them)") from None
        first = next((line.strip() for line in message.splitlines() if "error" in line.lower()), message[:200])
        raise UsageError(f"{model_name}: cannot convert to LiteRT: {' '.join(first.split())[:300]}") from None


# === Export ===


def export_litert(model_dir, export_dir, *, model_name=None, version=None, window_seconds=None,
                  quantize="dynamic", manifest=None) -> str:
    """Exports a trained audio-only Keras run as LiteRT models; returns the version dir's path."""
    if quantize not in QUANTIZE:
        raise UsageError(f"--quantize={quantize}: must be one of {', '.join(QUANTIZE)}")
    target = OnDeviceTarget(model_dir, export_dir, model_name, version, window_seconds, manifest)
    blobs = _convert(target.module, quantize, target.model_name)
    card = on_device_card(target.module, target.model_name, target.version, quantize, blobs, target.record)
    return target.write(blobs, card)


class OnDeviceTarget:
    """A run loaded for an on-device export and the version dir it goes to (checked, not yet written).

    Args:
        model_dir, export_dir, model_name, version, window_seconds, manifest: as `export_litert`'s.

    Example:

    ```python
    target = OnDeviceTarget("runs/conv1d_mel", "exports_litert", None, None, None, None)
    path = target.write({"model.tflite": blob}, {"model": "conv1d_mel"})
    ```
    """

    def __init__(self, model_dir, export_dir, model_name, version, window_seconds, manifest):
        run = RunDir(model_dir)
        check_convertible(run.read_config().get("model"))
        config, model, _, _ = load_for_export(model_dir, manifest)
        self.model_name = model_name or config.model
        self.base = os.path.join(export_dir, self.model_name)
        _refuse_serving_base(self.base)
        self.version = int(version) if version is not None else next_version(self.base)
        self.final = os.path.join(self.base, str(self.version))
        if os.path.exists(self.final):
            raise ExportExistsError(f"{self.final} already exists; pick another --version or leave it unset")
        self.record = run.read_calibration() if config.task == "classification" else None
        self.module = OnDeviceModule(model, config, window_seconds,
                                     temperature=(self.record or {}).get("temperature", 1.0))

    def write(self, blobs: dict, card: dict) -> str:
        """Writes the files and `model_card.json` under a temporary name, then renames it: atomic."""
        os.makedirs(self.base, exist_ok=True)
        _remove_stale_temporaries(self.base)
        tmp = os.path.join(self.base, f".tmp-{self.version}-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            os.makedirs(tmp)
            for name, blob in blobs.items():
                files.write_bytes(os.path.join(tmp, name), blob)
            files.write_text(os.path.join(tmp, CARD_FILE), json.dumps(card, indent=2, ensure_ascii=False, default=str))
            try:
                os.rename(tmp, self.final)
            except OSError as e:
                raise ExportExistsError(f"{self.final} appeared while exporting ({e}); export again") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return self.final


def _refuse_serving_base(base):
    """TF Serving serves the highest version under a base: a `.tflite` version there would break it."""
    if not os.path.isdir(base):
        return
    served = [d for d in os.listdir(base) if d.isdigit() and os.path.isfile(os.path.join(base, d, "saved_model.pb"))]
    if served:
        raise UsageError(f"{base} holds SavedModel version(s) {', '.join(sorted(served))} for TF Serving; a LiteRT "
                         "version there would become the one it loads: use another --export_dir")


def _convert(module, quantize, model_name) -> dict:
    with tempfile.TemporaryDirectory(prefix="tfsent-litert-") as saved:
        tf.saved_model.save(module, saved, signatures={"serving_default": module.signature()})
        blobs = {FLOAT_FILE: convert_saved_model(saved, "none", model_name)}
        if quantize != "none":
            blobs[quantized_file(quantize)] = convert_saved_model(saved, quantize, model_name)
    return blobs


def on_device_card(module, model_name, version, quantize, blobs, record, fmt="litert"):
    import keras

    import tfsent

    config = module.config
    window_s = module.window / module.sample_rate
    outputs = ({"logits": "float32 [1, classes]: raw",
                "probabilities": f"float32 [1, classes]: softmax(logits / T), T = {module.temperature:.4g}"}
               if module.classification else {k: "float32 [1]" for k in ("valence", "arousal") if k == config.task})
    return {
        "model": config.model, "served_name": model_name, "version": version, "format": fmt,
        "task": config.task, "labels": list(config.classes) if module.classification else [],
        "inputs": {"waveform": f"float32 [1, {module.window}]: {module.sample_rate} Hz mono samples in [-1, 1], "
                               "zero-padded after the real ones",
                   "length": f"int32 [1]: real samples in the window (1..{module.window})"},
        "outputs": outputs,
        "window_seconds": window_s,
        "long_audio": f"score windows of {window_s:g} s every {window_s / 2:g} s and average the logits "
                      "(as the SavedModel's serving_default does), then softmax(mean / T)",
        "features": {**config.feature_config.to_dict(), "spectrum": module.frontend.spectrum},
        "calibration": record or {"temperature": 1.0, "note": "no calibration.json in the run: T = 1"},
        "files": {name: {"bytes": len(blob), "weights": quantize if name == quantized_file(quantize) else "float32"}
                  for name, blob in blobs.items()},
        "versions": {"tfsent": tfsent.__version__, "tensorflow": tf.__version__, "keras": keras.__version__},
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
