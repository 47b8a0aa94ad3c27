"""One comparison table over run dirs (`bin/evaluate`'s `eval/`) and cross-validation dirs
(`bin/crossval`'s `results.json`): provenance columns, metrics (mean ± sd over folds × seeds), and a
ranking that never mixes test sets silently.

Two entries share a test set when they scored the same utterances of the same corpus (the sorted
`utt_id`s of `eval/predictions.csv`, or of `oof_predictions.csv` for a cross-validation). Ranks are given
within one test set; a table holding several says so above the table.

Example:

```python
entries = [load_entry("runs/cv_fusion"), load_entry("runs/svm")]
print(markdown_table(entries))
```
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import os

import numpy as np
import pandas as pd

from tfsent.core import files
from tfsent.core.errors import UsageError
from tfsent.core.run_dir import OOF_PREDICTIONS_FILE, PREDICTIONS_FILE, RUN_INFO_FILE, RunDir
from tfsent.evaluation.crossval import RESULTS_FILE
from tfsent.metrics.definitions import CLASSIFICATION_METRICS, LOWER_IS_BETTER, REGRESSION_METRICS

METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS
LABELS = {"accuracy": "WA", "unweighted_accuracy": "UA", "macro_f1": "macro-F1", "weighted_f1": "weighted-F1",
          "ccc": "CCC", "rmse": "RMSE", "mae": "MAE", "pearson_r": "Pearson r"}


@dataclasses.dataclass
class Entry:
    """One row of the table.

    Args:
        name: the directory as given.
        model, corpus, split, rule, classes, runs (`3 folds × 1 seed` or `1 run`), commit: provenance.
        metrics: `{name: (mean, sd or None)}`.
        test_set: a short hash of the corpus and the scored utterance ids.
    """

    name: str
    model: str
    corpus: str
    split: str
    rule: str
    classes: str
    runs: str
    commit: str
    metrics: dict
    test_set: str


def _test_set(corpus, utt_ids):
    digest = hashlib.sha256((str(corpus) + "\n" + "\n".join(sorted(map(str, utt_ids)))).encode()).hexdigest()
    return digest[:8]


def _utt_ids(path):
    return pd.read_csv(path, usecols=["utt_id"], dtype=str)["utt_id"].tolist()


def load_entry(path) -> Entry:
    """The table row of a cross-validation dir or an evaluated run dir; a `UsageError` otherwise."""
    if not os.path.isdir(path):
        raise UsageError(f"{path}: not a directory (give run dirs or bin/crossval dirs)")
    results_path = os.path.join(path, RESULTS_FILE)
    if os.path.isfile(results_path):
        return _crossval_entry(path, files.read_json(results_path))
    run = RunDir(path)
    metrics_path = os.path.join(run.eval_dir("test"), "metrics.json")
    if not run.is_run():
        raise UsageError(f"{path}: neither a bin/crossval dir ({RESULTS_FILE}) nor a run dir")
    if not os.path.isfile(metrics_path):
        raise UsageError(f"{path}: not scored yet; run bin/evaluate --model_dir={path} first")
    m = files.read_json(metrics_path)
    ctx = m["context"]
    info = run.read_json(RUN_INFO_FILE, {}) or {}
    return Entry(
        name=path, model=ctx.get("model"), corpus=str(ctx.get("corpus")), split=str(ctx.get("split_strategy")),
        rule=str(ctx.get("label_rule")), classes=str(len(ctx.get("classes") or [])), runs="1 run",
        commit=str(info.get("git_commit") or "")[:10],
        metrics={k: (float(m[k]), None) for k in METRICS if k in m},
        test_set=_test_set(ctx.get("corpus"), _utt_ids(os.path.join(run.eval_dir("test"), PREDICTIONS_FILE))),
    )


def _crossval_entry(path, results):
    p = results["protocol"]
    n_seeds = len(p.get("seeds") or [])
    return Entry(
        name=path, model=p.get("model"), corpus=str(p.get("corpus")),
        split=f"{p.get('split')} ({p.get('protocol_preset')})" if p.get("protocol_preset") else str(p.get("split")),
        rule=str(p.get("label_rule")), classes=str(len(p.get("classes") or [])),
        runs=f"{len(p.get('folds_run') or [])} of {p.get('folds')} folds × {n_seeds} seed{'s' * (n_seeds != 1)}",
        commit=str(p.get("git_commit") or "")[:10],
        metrics={k: (v["mean"], v["sd"]) for k, v in results["summary"].items()},
        test_set=_test_set(p.get("corpus"), _utt_ids(os.path.join(path, OOF_PREDICTIONS_FILE))),
    )


def ranking_metric(entries):
    """macro-F1 when every entry has it, else CCC (regressors), else the first metric all share."""
    shared = [k for k in METRICS if all(k in e.metrics for e in entries)]
    if not shared:
        raise UsageError("these runs share no metric (classifiers and regressors?): report them separately")
    return next((k for k in ("macro_f1", "ccc") if k in shared), shared[0])


def ranked(entries):
    """`(rows, key, groups)`: entries sorted by test set then `key`, each with its rank in its test set."""
    key = ranking_metric(entries)
    sign = 1 if key in LOWER_IS_BETTER else -1
    groups = sorted({e.test_set for e in entries}, key=lambda t: [e.test_set for e in entries].index(t))
    letters = {t: chr(ord("A") + i) for i, t in enumerate(groups)}
    rows = []
    for t in groups:
        members = sorted((e for e in entries if e.test_set == t), key=lambda e: sign * e.metrics[key][0])
        rows += [(f"{letters[t]}{i}" if len(groups) > 1 else str(i), e) for i, e in enumerate(members, start=1)]
    return rows, key, letters


def _columns(entries):
    return [k for k in METRICS if any(k in e.metrics for e in entries)]


def _cell(value):
    mean, sd = value
    return f"{mean:.4f}" if sd is None else f"{mean:.4f} ± {sd:.4f}"


def markdown_table(entries) -> str:
    rows, key, letters = ranked(entries)
    metrics = _columns(entries)
    lines = []
    if len(letters) > 1:
        lines += [f"**Not one ranking:** these runs were scored on {len(letters)} different test sets "
                  f"({', '.join(f'{v} = {k}' for k, v in letters.items())}); ranks (by {LABELS[key]}) "
                  "compare runs of one test set only.", ""]
    head = ["rank", "run", "model", "corpus", "split", "rule", "classes", "folds × seeds", "commit", "test set",
            *(LABELS[k] for k in metrics)]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rank, e in rows:
        cells = [rank, e.name, e.model, e.corpus, e.split, e.rule, e.classes, e.runs, e.commit,
                 f"{letters[e.test_set]} ({e.test_set})" if len(letters) > 1 else e.test_set,
                 *(_cell(e.metrics[k]) if k in e.metrics else "—" for k in metrics)]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    lines += ["", f"Ranked by {LABELS[key]}; mean ± sd (ddof=1) over folds × seeds for cross-validations. "
              "WA = accuracy, UA = mean per-class recall (tfsent/metrics/definitions.py)."]
    return "\n".join(lines) + "\n"


def csv_table(entries) -> str:
    rows, _, letters = ranked(entries)
    metrics = _columns(entries)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["rank", "run", "model", "corpus", "split", "rule", "classes", "folds_seeds", "commit",
                     "test_set", *(c for k in metrics for c in (k, f"{k}_sd"))])
    for rank, e in rows:
        values = [v for k in metrics for v in (e.metrics.get(k, (None, None)))]
        writer.writerow([rank, e.name, e.model, e.corpus, e.split, e.rule, e.classes, e.runs, e.commit,
                         e.test_set, *("" if v is None else v for v in values)])
    return buf.getvalue()


def write_plot(entries, path):
    """A bar chart of the ranking metric with sd bars (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, key, _ = ranked(entries)
    means = np.array([e.metrics[key][0] for _, e in rows])
    sds = np.array([e.metrics[key][1] or 0.0 for _, e in rows])
    fig, ax = plt.subplots(figsize=(1.5 + 1.2 * len(rows), 4), dpi=100)
    ax.bar(range(len(rows)), means, yerr=sds, capsize=4, color="#4c72b0")
    ax.set_xticks(range(len(rows)), [f"{rank} {os.path.basename(os.path.normpath(e.name))}" for rank, e in rows],
                  rotation=30, ha="right")
    ax.set_ylabel(f"{LABELS[key]} (mean ± sd)")
    fig.tight_layout()
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
