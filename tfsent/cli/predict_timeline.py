"""`bin/predict --timeline`: the flags and the run of an emotion timeline of one long recording.

    bin/predict --model=EXPORTS/<name>/<version> --wav=CALL.wav --timeline
    bin/predict --model=... --wav=CALL.wav --timeline --window_seconds=3 --hop_seconds=1 \\
        --transcript=CALL.srt --plot=CALL.png
    bin/predict --model=... --wav=CALL.wav --timeline --csv          (segments as CSV on stdout)

Prints one JSON object (`tfsent.export.timeline`): duration, segments (start, end, speech, label,
probabilities, text), summary (share of speech time per class). Window and hop default to the
export's scoring window and hop (its model card). `--vad=webrtcvad` uses the WebRTC VAD (optional
package `webrtcvad`, `pip install 'tfsent[vad]'`) instead of the in-graph energy VAD.
"""

from __future__ import annotations

import json
import sys

from absl import flags

from tfsent.core import files
from tfsent.core.errors import UsageError

flags.DEFINE_bool("timeline", False, "With --model and one --wav: an emotion timeline of a long recording.")
flags.DEFINE_float("window_seconds", None, "--timeline window (default: the export's scoring window).")
flags.DEFINE_float("hop_seconds", None, "--timeline hop (default: the export's scoring hop).")
flags.DEFINE_string("transcript", None, "--timeline: a timed transcript (.srt, .vtt or .tsv: start, end, text).")
flags.DEFINE_bool("csv", False, "--timeline: print the segments as CSV instead of JSON.")
flags.DEFINE_string("plot", None, "--timeline: also write a PNG of the probabilities over time here.")
flags.DEFINE_enum("vad", "tf", ["tf", "webrtcvad"], "--timeline voice-activity detector.")
FLAGS = flags.FLAGS

_ONLY_WITH_TIMELINE = ("window_seconds", "hop_seconds", "transcript", "csv", "plot", "vad")


def check_flags():
    """UsageError when a timeline flag is given without --timeline, or --timeline with the wrong inputs."""
    if not FLAGS.timeline:
        given = [name for name in _ONLY_WITH_TIMELINE if FLAGS[name].present]
        if given:
            raise UsageError(f"--{given[0]} needs --timeline")
        return
    if not FLAGS.model or FLAGS.server:
        raise UsageError("--timeline needs --model=VERSION_DIR (a local export)")
    if not FLAGS.wav or FLAGS.manifest or FLAGS.text is not None:
        raise UsageError("--timeline needs one --wav=FILE (and no --manifest or --text; use --transcript)")


def main_timeline(out=sys.stdout):
    """Runs `bin/predict --timeline`; returns the exit status."""
    import os

    import tensorflow as tf

    from tfsent.export.timeline import TimelineModel, timeline, to_csv

    if os.path.isdir(FLAGS.wav):
        raise UsageError(f"--wav={FLAGS.wav}: --timeline takes one file, not a folder")
    model = TimelineModel(FLAGS.model)
    try:
        result = timeline(model, FLAGS.wav, FLAGS.window_seconds, FLAGS.hop_seconds, FLAGS.transcript, FLAGS.vad)
    except tf.errors.InvalidArgumentError as e:
        line = next((x.strip() for x in e.message.splitlines() if x.strip()), e.message)
        raise UsageError(f"the model rejected the recording: {line}") from None
    if FLAGS.plot:
        from tfsent.export.timeline_plot import timeline_png

        files.write_bytes(FLAGS.plot, timeline_png(result, title=os.path.basename(FLAGS.wav)))
    if FLAGS.csv:
        out.write(to_csv(result))
    else:
        print(json.dumps(result, ensure_ascii=False), file=out, flush=True)
    return 0
