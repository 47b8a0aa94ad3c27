"""bin/export: write a trained model as a SavedModel TF Serving can load unchanged.

    bin/export --model_dir=DIR --export_dir=EXPORTS [--model_name=NAME] [--version=N]
               [--window_seconds=S] [--hop_seconds=S] [--pooling=mean|max] [--manifest=CSV]
    bin/export --format=litert --model_dir=DIR --export_dir=EXPORTS_LITERT [--quantize=dynamic|float16|none]
    bin/export --format=onnx --model_dir=DIR --export_dir=EXPORTS_ONNX

Writes EXPORTS/<model_name>/<version>/ (saved_model.pb, variables/, assets.extra/model_card.json and
the TF Serving warm-up request), atomically. The version is the next integer unless --version is set.
Classifiers' `probabilities` are calibrated with the run's temperature (`calibration.json`), `logits` raw.
`--format=litert` (audio-only models) writes model.tflite (float32), model_<quantize>.tflite and
model_card.json instead: one fixed window of 16 kHz samples in, features computed inside
(`tfsent.export.litert`), for the `ai-edge-litert` interpreter on phones and edge devices.
`--format=onnx` writes the same graph as model.onnx (`tfsent.export.onnx_model`, tf2onnx, onnxruntime).
"""

from __future__ import annotations

import os

from absl import flags

from tfsent.cli import common
from tfsent.core.errors import UsageError

flags.DEFINE_string("model_dir", None, "Model dir written by bin/train.")
flags.DEFINE_string("export_dir", None, "TF Serving model base dir; the model goes to EXPORT_DIR/<model_name>/<version>.")
flags.DEFINE_string("model_name", None, "Served model name (default: the registered model name).")
flags.DEFINE_integer("version", None, "Version number (default: the next integer).")
flags.DEFINE_float("window_seconds", None, "Scoring window for long audio (default: the training crop length).")
flags.DEFINE_float("hop_seconds", None, "Hop between scoring windows (default: half a window).")
flags.DEFINE_enum("pooling", "mean", ["mean", "max"], "How a long recording's window logits are pooled.")
flags.DEFINE_string("manifest", None, "Manifest for the model card's data summary (default: the one trained on).")
flags.DEFINE_enum("format", "savedmodel", ["savedmodel", "litert", "onnx"],
                  "savedmodel (TF Serving), litert (.tflite for ai-edge-litert) or onnx (onnxruntime); "
                  "litert and onnx: audio-only models, one fixed window in.")
flags.DEFINE_enum("quantize", "dynamic", ["none", "dynamic", "float16"],
                  "With --format=litert: besides model.tflite (float32), also write model_<this>.tflite "
                  "(dynamic: int8 weights; float16: half-precision weights); none: float32 only.")
FLAGS = flags.FLAGS


def _check_target(config):
    """The flags that place and shape the export, checked before anything is loaded."""
    name = FLAGS.model_name or config.get("model")
    if FLAGS.model_name is not None and (not name or "/" in name or name.startswith(".")):
        raise UsageError(f"--model_name={FLAGS.model_name}: must be a plain directory name")
    if FLAGS.version is not None:
        if FLAGS.version < 1:
            raise UsageError(f"--version={FLAGS.version}: must be a positive integer")
        final = os.path.join(FLAGS.export_dir, str(name), str(FLAGS.version))
        if os.path.exists(final):
            raise UsageError(f"--version={FLAGS.version}: {final} already exists; pick another --version "
                             "or leave it unset")
    for flag in ("window_seconds", "hop_seconds"):
        if FLAGS[flag].value is not None and FLAGS[flag].value <= 0:
            raise UsageError(f"--{flag}={FLAGS[flag].value}: must be positive")
    window = FLAGS.window_seconds or config.get("max_seconds")
    if FLAGS.hop_seconds and window and FLAGS.hop_seconds > window:
        raise UsageError(f"--hop_seconds={FLAGS.hop_seconds}: longer than the window ({window} s; "
                         "--window_seconds sets it)")


def main(argv):
    common.no_arguments(argv)
    common.require("model_dir", "export_dir")
    run = common.trained_run_dir(FLAGS.model_dir)
    manifest = common.manifest_path(FLAGS.manifest) if FLAGS.manifest else None
    config = run.read_config()
    _check_target(config)
    if FLAGS.format != "savedmodel":
        _check_litert(config)
    from tfsent.core.locks import DirLock

    # One export at a time per model name (two would race for the next version); also the first write.
    common.writable_dir(FLAGS.export_dir, "export_dir")
    DirLock(os.path.join(FLAGS.export_dir, str(FLAGS.model_name or config.get("model"))), "--export_dir").acquire()
    if FLAGS.format != "savedmodel":
        return _export_litert(manifest)
    from tfsent.export.saved_model import export_model_dir

    path = export_model_dir(FLAGS.model_dir, FLAGS.export_dir, model_name=FLAGS.model_name,
                            version=FLAGS.version, window_seconds=FLAGS.window_seconds,
                            hop_seconds=FLAGS.hop_seconds, pooling=FLAGS.pooling, manifest=manifest)
    if run.read_calibration() is None and config.get("task") == "classification":
        print("note: no calibration.json in the run (trained before temperature scaling): probabilities are the "
              f"plain softmax (T = 1); bin/evaluate --model_dir={FLAGS.model_dir} --calibrate fits one")
    print(f"exported SavedModel: {path}")
    print(f"try it:   bin/predict --model={path} --wav=FILE.wav --text='...'")
    print(f"serve it: docker run -p 8500:8500 -p 8501:8501 -v {os.path.abspath(os.path.dirname(path))}:"
          f"/models/{os.path.basename(os.path.dirname(path))} -e MODEL_NAME={os.path.basename(os.path.dirname(path))} "
          "tensorflow/serving")
    return 0


def _check_litert(config):
    """What --format=litert / onnx cannot do, before anything is loaded or written."""
    if FLAGS.hop_seconds is not None or FLAGS.pooling != "mean":
        raise UsageError("--hop_seconds / --pooling shape the SavedModel's long-audio scoring; a LiteRT model "
                         "scores one window (--window_seconds), the app slides it")
    from tfsent.export.litert import check_convertible

    check_convertible(config.get("model"))


def _export_litert(manifest):
    kwargs = dict(model_name=FLAGS.model_name, version=FLAGS.version, window_seconds=FLAGS.window_seconds,
                  manifest=manifest)
    if FLAGS.format == "onnx":
        from tfsent.export.onnx_model import export_onnx

        path = export_onnx(FLAGS.model_dir, FLAGS.export_dir, **kwargs)
    else:
        from tfsent.export.litert import export_litert

        path = export_litert(FLAGS.model_dir, FLAGS.export_dir, quantize=FLAGS.quantize, **kwargs)
    for name in sorted(os.listdir(path)):
        print(f"  {name:24s} {os.path.getsize(os.path.join(path, name)):>10,d} bytes")
    print(f"exported {'ONNX' if FLAGS.format == 'onnx' else 'LiteRT'} model: {path} "
          f"(inputs and outputs: {path}/model_card.json)")
    return 0


def run():
    common.run_main(main, "export")


if __name__ == "__main__":
    run()
