"""Cross-validation over a k-fold manifest (`kfold_session`, `kfold_age_gender`): the per-fold manifests, and the results of the
fold runs pooled into one directory (`bin/crossval` drives the runs; this module owns their files).

Layout of a cross-validation directory `DIR/`:

| file | what |
|---|---|
| `crossval.json` | the protocol fingerprint: resolved `bin/train` flags and the manifest's SHA-256 |
| `manifests/fold_<k>/` | fold k's manifest: test = fold k, valid = fold (k+1) % K, train = the rest |
| `fold_<k>[_seed<s>]/` | a normal run dir (`bin/train`, then `bin/evaluate` on its test fold) |
| `results.json`, `results.md` | per-run metrics, mean and sd over folds × seeds, per-seed means, the protocol |
| `confusion_matrix.png` | the confusion matrix pooled over every fold run |
| `oof_predictions.csv` | one row per manifest row: `utt_id, fold, true, p_<class>...` (seeds averaged) |

A fold counts once its `eval/metrics.json` exists (written atomically after training finished), so a
killed `bin/crossval` never leaves a fold half-counted; `results.json` holds no time stamps or absolute
run paths, so an interrupted-and-resumed cross-validation writes the same file as an uninterrupted one.

Example:

```python
frame, sidecar = read_manifest("data/kemdy20_5fold/manifest.csv")
k = fold_count(frame, sidecar)
write_fold_manifest(frame, sidecar, fold=0, folds=k, out_dir="cv/manifests/fold_0")
results = write_results("cv", runs, protocol)   # runs: [CrossvalRun(...), ...]
results["summary"]["macro_f1"]["mean"]
```
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pandas as pd

from tfsent.core import files
from tfsent.core.errors import UsageError
from tfsent.core.run_dir import METRICS_FILE, OOF_PREDICTIONS_FILE, PREDICTIONS_FILE, RunDir
from tfsent.corpus.manifest import write_manifest
from tfsent.corpus.splits import KFOLD_SPLITS, fold_roles
from tfsent.metrics.definitions import CLASSIFICATION_METRICS, REGRESSION_METRICS
from tfsent.metrics.plots import confusion_matrix_png

RESULTS_FILE = "results.json"
RESULTS_MD_FILE = "results.md"
PROTOCOL_FILE = "crossval.json"
CONFUSION_FILE = "confusion_matrix.png"


@dataclasses.dataclass
class CrossvalRun:
    """One finished fold run.

    Args:
        fold: the held-out fold.
        seed: the training seed.
        name: the run dir's name inside the cross-validation dir (`fold_0`, `fold_0_seed1`).
        eval_dir: the run's `eval/` (test fold) directory.
        other_eval_dir: where it was scored on `--eval_manifest`, or None.
    """

    fold: int
    seed: int
    name: str
    eval_dir: str
    other_eval_dir: str | None = None


def fold_count(frame, sidecar) -> int:
    """K of a k-fold manifest (`kfold_session`, `kfold_age_gender`); a `UsageError` for any other split."""
    if sidecar.get("split") not in KFOLD_SPLITS:
        raise UsageError(f"the manifest's split is {sidecar.get('split')!r}, not k-fold: prepare it with "
                         f"bin/prepare --split=kfold_session --folds=K (or a --protocol preset)")
    values = sorted(set(frame["split"].astype(str)))
    folds = int(sidecar.get("folds") or len(values))
    if folds < 3 or any(not v.isdigit() or int(v) >= folds for v in values):
        raise UsageError(f"the manifest's split column holds {values}, not fold numbers 0..{folds - 1}")
    return folds


def write_fold_manifest(frame, sidecar, *, fold, folds, out_dir) -> str:
    """Writes fold `fold`'s manifest (`corpus.splits.fold_roles`) into `out_dir`; returns its path."""
    rows = frame.copy()
    rows["split"] = fold_roles(frame["split"], fold, folds)
    records = rows.astype(object).where(rows.notna(), None).to_dict("records")
    keep = {k: v for k, v in sidecar.items() if k not in ("columns", "manifest_sha256", "rejects_sha256")}
    counts = rows["split"].value_counts()
    keep.update({"fold": int(fold), "folds": int(folds),
                 "fold_roles": "test = fold k, valid = fold (k+1) % K, train = the rest",
                 "counts": {s: int(counts.get(s, 0)) for s in ("train", "valid", "test")}})
    return write_manifest(out_dir, records, keep)


def _summary_keys(is_classification):
    return CLASSIFICATION_METRICS if is_classification else REGRESSION_METRICS


def _mean_sd(values):
    values = np.asarray(values, dtype=np.float64)
    sd = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return {"mean": float(values.mean()), "sd": sd, "n": int(len(values))}


def summarize(per_run, is_classification) -> dict:
    """Mean and sd (sample, ddof=1) of each headline metric over the runs, and per-seed means."""
    keys = [k for k in _summary_keys(is_classification) if all(k in r["metrics"] for r in per_run)]
    summary = {k: _mean_sd([r["metrics"][k] for r in per_run]) for k in keys}
    seeds = sorted({r["seed"] for r in per_run})
    per_seed = {str(s): {k: float(np.mean([r["metrics"][k] for r in per_run if r["seed"] == s])) for k in keys}
                for s in seeds}
    return {"summary": summary, "per_seed": per_seed}


def _run_record(run: CrossvalRun, eval_dir, is_classification):
    metrics = files.read_json(os.path.join(eval_dir, METRICS_FILE))
    keys = list(_summary_keys(is_classification)) + ["loss"]
    kept = {k: metrics[k] for k in keys if k in metrics}
    if "confusion_matrix" in metrics:
        kept["confusion_matrix"] = metrics["confusion_matrix"]
    kept["num_examples"] = metrics.get("num_examples")
    extra = {"unmapped_rows": metrics["unmapped_rows"]} if "unmapped_rows" in metrics else {}
    return {"fold": run.fold, "seed": run.seed, "run": run.name, "metrics": kept, **extra}


def write_results(out_dir, runs, protocol, frame=None) -> dict:
    """Pools the finished `runs` (list of `CrossvalRun`) into `results.json`, `results.md`, the pooled
    confusion matrix and, given the k-fold manifest `frame`, `oof_predictions.csv`. Returns results."""
    is_classification = protocol.get("task", "classification") == "classification"
    per_run = [_run_record(r, r.eval_dir, is_classification) for r in runs]
    results = {"protocol": protocol, "runs": per_run, **summarize(per_run, is_classification)}
    other = [r for r in runs if r.other_eval_dir]
    if other:
        other_runs = [_run_record(r, r.other_eval_dir, is_classification) for r in other]
        results["eval_manifest"] = {"runs": other_runs, **summarize(other_runs, is_classification)}
    if is_classification and per_run:
        pooled = np.sum([np.asarray(r["metrics"]["confusion_matrix"]) for r in per_run], axis=0)
        results["pooled_confusion_matrix"] = pooled.tolist()
        png = confusion_matrix_png(pooled, list(protocol["classes"]),
                                   title=f"{protocol.get('model')}: {len(per_run)} fold runs pooled")
        files.write_bytes(os.path.join(out_dir, CONFUSION_FILE), png)
    if frame is not None:
        results["oof_rows"], results["oof_rows_without_prediction"] = write_oof(
            out_dir, runs, frame, protocol["classes"], is_classification)
    files.write_json(os.path.join(out_dir, RESULTS_FILE), results)
    files.write_text(os.path.join(out_dir, RESULTS_MD_FILE), results_markdown(results))
    return results


def write_oof(out_dir, runs, frame, classes, is_classification):
    """`oof_predictions.csv`: one row per manifest row of the folds run, each predicted by the model of
    the fold that held it out (probabilities averaged over seeds; empty where no model could read the
    row). Returns (rows written, rows without a prediction)."""
    held = frame[frame["split"].astype(str).isin({str(r.fold) for r in runs})]
    value_cols = [f"p_{c}" for c in classes] if is_classification else ["predicted"]
    tables = []
    for run in runs:
        table = pd.read_csv(os.path.join(run.eval_dir, PREDICTIONS_FILE), dtype={"utt_id": str})
        tables.append(table[["utt_id", *value_cols]])
    pooled = pd.concat(tables).groupby("utt_id", sort=False)[value_cols].mean() if tables else None
    out = pd.DataFrame({"utt_id": held["utt_id"].astype(str).to_numpy(),
                        "fold": held["split"].astype(int).to_numpy()})
    out["true"] = (held["emotion"] if is_classification else held[_target_column(runs)]).to_numpy()
    values = pooled.reindex(out["utt_id"]) if pooled is not None else pd.DataFrame(index=out["utt_id"])
    for col in value_cols:
        out[col] = np.round(values[col].to_numpy(dtype=np.float64), 6) if col in values else np.nan
    files.write_text(os.path.join(out_dir, OOF_PREDICTIONS_FILE), out.to_csv(index=False))
    return int(len(out)), int(out[value_cols[0]].isna().sum())


def _target_column(runs):
    config = RunDir(os.path.dirname(runs[0].eval_dir)).read_config()
    return config["task"]


def results_markdown(results) -> str:
    p = results["protocol"]
    keys = list(results["summary"])
    lines = [
        f"# Cross-validation of `{p.get('model')}`",
        "",
        f"- corpus: {p.get('corpus')}; split: **{p.get('split')}**, {p.get('folds')} folds "
        f"(run: {', '.join(map(str, p.get('folds_run', [])))}); seeds: {', '.join(map(str, p.get('seeds', [])))}",
        f"- label rule: {p.get('label_rule')} (ties: {p.get('tie_policy')}); classes: {', '.join(p.get('classes', []))}",
        f"- validation: {p.get('validation')}",
        f"- tfsent {p.get('tfsent_version')}, commit {p.get('git_commit')}",
        "",
        "| run | fold | seed | " + " | ".join(keys) + " |",
        "|---|---|---|" + "---|" * len(keys),
    ]
    for r in results["runs"]:
        lines.append(f"| {r['run']} | {r['fold']} | {r['seed']} | "
                     + " | ".join(f"{r['metrics'][k]:.4f}" for k in keys) + " |")
    lines.append("| **mean ± sd** | | | " + " | ".join(
        f"**{results['summary'][k]['mean']:.4f} ± {results['summary'][k]['sd']:.4f}**" for k in keys) + " |")
    if "eval_manifest" in results:
        other = results["eval_manifest"]
        lines += ["", f"Scored on {p.get('eval_manifest', {}).get('corpus')} "
                      f"(`{p.get('eval_manifest', {}).get('path')}`, split {p.get('eval_manifest', {}).get('split')}):",
                  "", "| metric | mean ± sd |", "|---|---|"]
        lines += [f"| {k} | {v['mean']:.4f} ± {v['sd']:.4f} |" for k, v in other["summary"].items()]
    lines += ["", "sd: sample standard deviation (ddof=1) over the fold × seed runs. accuracy = WA, "
              "unweighted_accuracy = UA (tfsent/metrics/definitions.py).", ""]
    return "\n".join(lines)
