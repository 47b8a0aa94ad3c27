"""bin/predict: run an exported model (a local version dir or a TF Serving server); prints JSON lines.

    bin/predict --model=EXPORTS/<name>/<version> --wav=FILE.wav --text="문장"
    bin/predict --model=EXPORTS/<name>/<version> --wav=FOLDER            (FILE.txt beside a wav: its text)
    bin/predict --model=EXPORTS/<name>/<version> --manifest=OUT/manifest.csv --split=test
    bin/predict --server=localhost:8501 --model_name=demo_fusion --wav=FILE.wav --text="문장"
    bin/predict --model=EXPORTS/<name>/<version> --wav=LONG.wav --timeline [--transcript=LONG.srt]
    bin/predict --server=localhost:8500 --protocol=grpc --model_name=demo_fusion --wav=...

One JSON object per input on stdout: `id`, `label`, `probabilities` (class → probability), for
multimodal models `modalities` (`audio+text`, `audio` or `text`: what the row was scored on) and, for
models that predict them, `valence` / `arousal` (manifest rows also carry the true `emotion`).
Locally only `tensorflow` and `tensorflow_text` are needed; WAVs are sent whole (any rate, mono or
stereo) to the `predict_wav` signature, which decodes and resamples in the graph. Text-only models take
`--text` (or the manifest's text column) alone. Exit status 2 on a usage error or a rejected request.
`--abstain_below=P` answers `"label": "uncertain"` (the argmax in `top_label`) when the top probability,
calibrated by the run's temperature scaling, is below P.
"""

from __future__ import annotations

from absl import flags

from tfsent.cli import common, predict_timeline
from tfsent.export.predict import (  # the library code lives in the package
    UsageError,
    check_abstain_below,
    collect_inputs,
    LocalRunner,
    ServerRunner,
    predict,
    _graph_message,
)

flags.DEFINE_string("model", None, "Exported version dir (EXPORTS/<name>/<version>).")
flags.DEFINE_string("server", None, "TF Serving HOST:PORT (REST 8501 or, with --protocol=grpc, 8500).")
flags.DEFINE_string("model_name", None, "Served model name (with --server).")
flags.DEFINE_enum("protocol", "rest", ["rest", "grpc"], "TF Serving API (with --server).")
flags.DEFINE_integer("model_version", None, "Pin a served version (with --server; default: latest).")
flags.DEFINE_float("timeout", 30.0, "Seconds to wait for each server answer.")
flags.DEFINE_string("wav", None, "A WAV file, or a folder of them (FILE.txt next to FILE.wav holds its text).")
flags.DEFINE_string("text", None, "Transcript (for one --wav, or for a text-only model); default for a folder.")
flags.DEFINE_string("manifest", None, "A bin/prepare manifest.csv: predicts its rows (audio_path, text).")
flags.DEFINE_string("split", None, "With --manifest: only rows of this split.")
flags.DEFINE_integer("batch_size", 8, "Inputs per request.")
flags.DEFINE_float("abstain_below", None, "Answer \"label\": \"uncertain\" when the top (calibrated) probability "
                   "is below this value in (0, 1); the argmax is then in \"top_label\".")
FLAGS = flags.FLAGS


def main(argv):
    common.no_arguments(argv)
    check_abstain_below(FLAGS.abstain_below)  # (0, 1), checked before anything is loaded
    predict_timeline.check_flags()
    if FLAGS.timeline:  # one long recording → per-window emotion timeline (tfsent.cli.predict_timeline)
        return predict_timeline.main_timeline()
    if bool(FLAGS.model) == bool(FLAGS.server):
        raise UsageError("give exactly one of --model (a version dir) or --server=HOST:PORT")
    items = collect_inputs(FLAGS.wav, FLAGS.text, FLAGS.manifest, FLAGS.split)
    if FLAGS.model:
        runner = LocalRunner(FLAGS.model)
    else:
        runner = ServerRunner(FLAGS.server, FLAGS.model_name, FLAGS.protocol, FLAGS.model_version, FLAGS.timeout)
    import tensorflow as tf

    from tfsent.export.client import ServingError

    # What the model or the server says about the user's inputs (an undecodable WAV, a wrong
    # shape, an unknown model name, nothing at --server): exit 2, as documented above.
    try:
        predict(runner, items, FLAGS.batch_size, abstain_below=FLAGS.abstain_below)
    except ServingError as e:
        raise UsageError(str(e)) from None
    except tf.errors.InvalidArgumentError as e:
        raise UsageError(f"the model rejected the request: {_graph_message(e.message)}") from None
    return 0


def run():
    common.run_main(main, "predict")


if __name__ == "__main__":
    run()
