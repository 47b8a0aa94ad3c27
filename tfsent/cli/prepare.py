"""`bin/prepare`: read a corpus, apply a label rule, check audio, split, write a manifest.

Example:
    bin/prepare --format=kemdy20 --data_dir=/data/KEMDy20_v1_1 --out=runs/kemdy20 \\
        --classes=5 --split=session --seed=0

Writes OUT/manifest.csv, OUT/rejects.csv and OUT/manifest.json (Contract 1 of
ARCHITECTURE.md), prints a summary table. Errors are one line on stderr with a
non-zero exit status, and leave OUT untouched.
"""

from absl import flags

from tfsent.cli import common
from tfsent.core.errors import UsageError
from tfsent.corpus import labels
from tfsent.corpus import splits
from tfsent.corpus.common import StrictRejectsError
from tfsent.corpus.emotions import CLASS_SETS
from tfsent.corpus.prepare import FORMATS
from tfsent.corpus.prepare import PrepareOptions
from tfsent.corpus.prepare import run_prepare
from tfsent.corpus.protocols import PROTOCOLS

FLAGS = flags.FLAGS
flags.DEFINE_enum("format", None, FORMATS, "Corpus layout.")
flags.DEFINE_string("data_dir", None, "Corpus root (read only).")
flags.DEFINE_string("out", None, "Output folder for manifest.csv, rejects.csv, manifest.json.")
flags.DEFINE_enum("label_rule", None, labels.LABEL_RULES,
                  "Label rule; default intensity_sum for aihub, total for kemdy.")
flags.DEFINE_integer("min_agree", 3, "k for --label_rule=majority (k of 5 annotators agree).")
flags.DEFINE_enum("tie_policy", "drop", labels.TIE_POLICIES, "What to do with tied labels.")
flags.DEFINE_enum("classes", "7", list(CLASS_SETS), "Class set: 4, 5, 7 emotions or binary sentiment.")
flags.DEFINE_enum("split", None, splits.SPLITS,
                  "Split strategy; default session for kemdy, age_gender for aihub.")
flags.DEFINE_integer("folds", 5, "k for --split=kfold_session / kfold_age_gender.")
flags.DEFINE_enum("protocol", None, list(PROTOCOLS),
                  "A named cross-validation protocol (sets --split and --folds; see README "
                  "'Comparable numbers'): " + "; ".join(f"{k}: {p.description}" for k, p in PROTOCOLS.items()))
flags.DEFINE_integer("seed", 0, "Random seed of the split.")
flags.DEFINE_float("valid_fraction", 0.1, "Share of utterances (or sessions) for validation.")
flags.DEFINE_float("test_fraction", 0.2, "Share of utterances (or sessions) for test.")
flags.DEFINE_boolean("verify_audio", False, "Decode every audio file fully (slow).")
flags.DEFINE_boolean("require_valence_arousal", False,
                     "Reject rows without valid valence/arousal (regression tasks).")
flags.DEFINE_boolean("strict", False, "Exit non-zero when any row is rejected for a data error.")
flags.DEFINE_boolean("progress", True, "Show a progress bar on slow corpora.")


def main(argv):
    common.no_arguments(argv)
    if FLAGS.format is None:
        raise UsageError(f"--format is required ({', '.join(FORMATS)})")
    split, folds = _protocol_split()
    opts = PrepareOptions(
        format=FLAGS.format, data_dir=FLAGS.data_dir, out=FLAGS.out,
        label_rule=FLAGS.label_rule, min_agree=FLAGS.min_agree, tie_policy=FLAGS.tie_policy,
        classes=FLAGS.classes, split=split, folds=folds, seed=FLAGS.seed,
        valid_fraction=FLAGS.valid_fraction, test_fraction=FLAGS.test_fraction,
        verify_audio=FLAGS.verify_audio, require_valence_arousal=FLAGS.require_valence_arousal,
        strict=FLAGS.strict, progress=FLAGS.progress,
        protocol=FLAGS.protocol, contiguous_folds=bool(FLAGS.protocol and PROTOCOLS[FLAGS.protocol].contiguous_folds),
    )
    # PrepareError (bad flags, not a corpus, empty corpus) is a UsageError: one line, exit 2.
    try:
        run_prepare(opts)
    except StrictRejectsError as err:  # the data failed the check the user asked for: exit 1
        common.print_error("bin/prepare", err)
        return 1
    return 0


def _protocol_split():
    """--split and --folds, from --protocol when one is named (which they may repeat, not contradict)."""
    if not FLAGS.protocol:
        return FLAGS.split, FLAGS.folds
    protocol = PROTOCOLS[FLAGS.protocol]
    if FLAGS.format != protocol.corpus:
        raise UsageError(f"--protocol={FLAGS.protocol} is a {protocol.corpus} protocol, not one for "
                         f"--format={FLAGS.format}")
    for name, value in (("split", protocol.split), ("folds", protocol.folds)):
        if FLAGS[name].present and FLAGS[name].value != value:
            raise UsageError(f"--{name}={FLAGS[name].value} contradicts --protocol={FLAGS.protocol} "
                             f"(--{name}={value}); drop one of them")
    return protocol.split, protocol.folds


def run():
    common.run_main(main, "prepare")


if __name__ == "__main__":
    run()
