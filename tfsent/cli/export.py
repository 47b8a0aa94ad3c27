"""bin/export: write a trained model as a SavedModel TF Serving can load unchanged.

    bin/export --model_dir=DIR --export_dir=EXPORTS [--model_name=NAME] [--version=N]
               [--window_seconds=S] [--hop_seconds=S] [--pooling=mean|max] [--manifest=CSV]

Writes EXPORTS/<model_name>/<version>/ (saved_model.pb, variables/, assets.extra/model_card.json and
the TF Serving warm-up request), atomically. The version is the next integer unless --version is set.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

flags.DEFINE_string("model_dir", None, "Model dir written by bin/train.")
flags.DEFINE_string("export_dir", None, "TF Serving model base dir; the model goes to EXPORT_DIR/<model_name>/<version>.")
flags.DEFINE_string("model_name", None, "Served model name (default: the registered model name).")
flags.DEFINE_integer("version", None, "Version number (default: the next integer).")
flags.DEFINE_float("window_seconds", None, "Scoring window for long audio (default: the training crop length).")
flags.DEFINE_float("hop_seconds", None, "Hop between scoring windows (default: half a window).")
flags.DEFINE_enum("pooling", "mean", ["mean", "max"], "How a long recording's window logits are pooled.")
flags.DEFINE_string("manifest", None, "Manifest for the model card's data summary (default: the one trained on).")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        print(f"bin/export: error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    for required in ("model_dir", "export_dir"):
        if not FLAGS[required].value:
            print(f"bin/export: error: --{required} is required", file=sys.stderr)
            return 2
    from tfsent.export.saved_model import export_model_dir

    try:
        path = export_model_dir(FLAGS.model_dir, FLAGS.export_dir, model_name=FLAGS.model_name,
                                version=FLAGS.version, window_seconds=FLAGS.window_seconds,
                                hop_seconds=FLAGS.hop_seconds, pooling=FLAGS.pooling, manifest=FLAGS.manifest)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"bin/export: error: {e}", file=sys.stderr)
        return 2
    print(f"exported SavedModel: {path}")
    print(f"try it:   bin/predict --model={path} --wav=FILE.wav --text='...'")
    print(f"serve it: docker run -p 8500:8500 -p 8501:8501 -v {os.path.abspath(os.path.dirname(path))}:"
          f"/models/{os.path.basename(os.path.dirname(path))} -e MODEL_NAME={os.path.basename(os.path.dirname(path))} "
          "tensorflow/serving")
    return 0


if __name__ == "__main__":
    app.run(main)
