"""bin/report: one comparison table of run dirs and cross-validation dirs.

    bin/report RUN_OR_CV_DIR... [--csv=FILE] [--plot=FILE.png]

Markdown on stdout: rank, provenance (corpus, split, label rule, classes, folds × seeds, commit, test set)
and the metrics (mean ± sd for `bin/crossval` dirs; a run dir must have been scored by `bin/evaluate`).
Runs scored on different test sets are ranked within their test set, and the table says so.
"""

from __future__ import annotations

from absl import flags

from tfsent.cli import common
from tfsent.core.errors import UsageError

flags.DEFINE_string("csv", None, "Also write the table as CSV to this file.")
flags.DEFINE_string("plot", None, "Also write a PNG of the ranking metric (macro-F1) with sd bars.")
FLAGS = flags.FLAGS


def main(argv):
    paths = argv[1:]
    if not paths:
        raise UsageError("give one or more run dirs or bin/crossval dirs: bin/report DIR [DIR...]")
    from tfsent.core import files
    from tfsent.evaluation import report

    entries = [report.load_entry(p) for p in paths]
    print(report.markdown_table(entries), end="")
    if FLAGS.csv:
        files.write_text(FLAGS.csv, report.csv_table(entries))
        print(f"wrote {FLAGS.csv}")
    if FLAGS.plot:
        report.write_plot(entries, FLAGS.plot)
        print(f"wrote {FLAGS.plot}")
    return 0


def run():
    common.run_main(main, "report")


if __name__ == "__main__":
    run()
