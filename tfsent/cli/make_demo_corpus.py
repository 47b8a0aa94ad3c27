r"""bin/make_demo_corpus: writes a SYNTHETIC Korean emotional-speech demo corpus.

THE CORPUS IS SYNTHETIC (espeak-ng Korean voices with emotion-dependent prosody
and wording). It is for demos and tests of tfsent only; numbers measured on it
say nothing about real emotion recognition. Real numbers need a real corpus
(AI Hub 감정 분류를 위한 대화 음성 데이터셋, ETRI KEMDy19/KEMDy20).

It is written in the real on-disk layouts so that `bin/prepare` reads it with
the real readers:

  bin/make_demo_corpus --out=demo_out/kemdy20 --layout=kemdy20 --seed=0 --per_class=60
  bin/prepare --format=kemdy20 --data_dir=demo_out/kemdy20 --out=demo_out/prepared

See tfsent/corpus/demo_corpus.py for the layouts and the modality mix.
"""

import json
import os
import shutil

from absl import flags

from tfsent.cli import common
from tfsent.core.errors import UsageError
from tfsent.corpus import demo_corpus

FLAGS = flags.FLAGS
flags.DEFINE_string("out", None, "Corpus root to create (built in a temp dir next to it, "
                    "then renamed). Must not exist or be empty, unless --overwrite.")
flags.DEFINE_enum("layout", None, list(demo_corpus.LAYOUTS),
                  "On-disk layout: kemdy20 (annotation/SessNN_eval.csv + 16 kHz wavs) or "
                  "aihub (one CP949 CSV + 48 kHz <wav_id>.wav).")
flags.DEFINE_integer("seed", 0, "Random seed; the same flags give byte-identical files.",
                     lower_bound=0)
flags.DEFINE_integer("per_class", 60, "Utterances per emotion class.", lower_bound=1)
flags.DEFINE_enum("classes", "4", ["4", "7"],
                  "4: neutral, happy, sad, angry; 7: also surprise, fear, disgust.")
flags.DEFINE_float("audio_only_frac", 0.2, "Fraction of each emotional class spoken with "
                   "NEUTRAL wording and emotional prosody (only the audio tells).",
                   lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_float("text_only_frac", 0.2, "Fraction of each emotional class with emotional "
                   "wording and NEUTRAL prosody (only the text tells).",
                   lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_bool("overwrite", False, "Replace --out if it holds an earlier demo corpus.")
flags.DEFINE_integer("workers", None, "espeak-ng processes at once (default min(4, CPUs)).",
                     lower_bound=1)
flags.mark_flags_as_required(["out", "layout"])


def _check_flags():
    """What the flag definitions cannot check: the fractions together, espeak-ng, and --out."""
    if FLAGS.audio_only_frac + FLAGS.text_only_frac > 1.0:
        raise UsageError(f"--audio_only_frac={FLAGS.audio_only_frac} + --text_only_frac={FLAGS.text_only_frac}: "
                         "must add up to at most 1")
    if shutil.which("espeak-ng") is None:
        raise UsageError("espeak-ng is not installed (apt-get install espeak-ng); the demo corpus needs it")
    demo_corpus.check_out_dir(os.path.abspath(FLAGS.out), FLAGS.overwrite)  # a UsageError names --out


def main(argv):
    common.no_arguments(argv)
    _check_flags()
    summary = demo_corpus.make_demo_corpus(
        FLAGS.out, FLAGS.layout, FLAGS.seed, FLAGS.per_class, int(FLAGS.classes),
        overwrite=FLAGS.overwrite, audio_only_frac=FLAGS.audio_only_frac,
        text_only_frac=FLAGS.text_only_frac, workers=FLAGS.workers)
    summary.pop("utterances")
    print("SYNTHETIC demo corpus (for demos and tests only; real numbers need a real corpus)")
    print(json.dumps(summary, ensure_ascii=False, indent=1))
    return 0


def run():
    common.run_main(main, "make_demo_corpus")


if __name__ == "__main__":
    run()
