"""Per-condition accuracy on the synthetic demo corpus: where only the voice, only the words, or both
carry the emotion.

The demo corpus writes `demo_truth.jsonl` next to its audio (`tfsent.corpus.demo_corpus`): per utterance
its `condition`, `both` / `audio_only` (neutral wording, emotional prosody) / `text_only` (emotional
wording, neutral prosody). When the evaluated manifest's corpus (`data_dir` in its sidecar) has that
file, `bin/evaluate` adds `metrics.json["per_condition"]`; a corpus without it gets nothing.

Example:

```python
truth = condition_truth(task.sidecar)                 # None on a real corpus
scores = per_condition_scores(task, "test", {"full": predictions}, truth)
scores["accuracy"]["audio_only"]                      # the full model on voice-only utterances
```
"""

from __future__ import annotations

import os

import numpy as np

from tfsent.corpus.demo_corpus import CONDITIONS, read_truth

TRUTH_FILE = "demo_truth.jsonl"
WHAT = {"both": "voice and words", "audio_only": "only the voice", "text_only": "only the words"}


def condition_truth(sidecar):
    """`{"by_utt_id": {...}, "by_audio_path": {...}, "path": ...}` from the corpus's `demo_truth.jsonl`
    (the corpus is the manifest sidecar's `data_dir`), or None when the corpus has no such file."""
    data_dir = (sidecar or {}).get("data_dir") or ""
    path = os.path.join(data_dir, TRUTH_FILE)
    if not data_dir or not os.path.isfile(path):
        return None
    records = read_truth(data_dir)
    return {"path": path,
            "by_utt_id": {str(r["utt_id"]): r["condition"] for r in records},
            "by_audio_path": {os.path.normpath(str(r["audio_path"])): r["condition"] for r in records}}


def row_conditions(rows, truth) -> list:
    """The condition of each manifest row (by `utt_id`, else by `audio_path`); None where unknown."""
    out = []
    for utt_id, audio_path in zip(rows["utt_id"].astype(str), rows["audio_path"].astype(str)):
        condition = truth["by_utt_id"].get(utt_id)
        if condition is None:
            condition = truth["by_audio_path"].get(os.path.normpath(audio_path))
        out.append(condition)
    return out


def per_condition_scores(task, split, predictions_by_setting, truth):
    """Accuracy per condition of a classifier on `split`.

    Args:
        task: the run's task (`split_frame`, `is_classification`).
        split: the split the predictions are for.
        predictions_by_setting: `{"full": predictions, ...}`, `task.predict` dicts (e.g. the
            modality ablation's `audio_removed` / `text_removed` too).
        truth: `condition_truth(...)`.

    Returns `{"truth", "counts": {condition: n}, "unmatched", "accuracy": {condition: acc} (the
    "full" setting), "accuracy_by_setting": {setting: {condition: acc}}}`, or None for a regressor
    or without truth. A condition with no scored utterance has accuracy None.
    """
    if truth is None or not task.is_classification or "full" not in predictions_by_setting:
        return None
    rows = task.split_frame(split)
    conditions = np.asarray(row_conditions(rows, truth), dtype=object)
    by_setting = {}
    counts = None
    for setting, predictions in predictions_by_setting.items():
        scored = conditions[predictions["index"]]
        correct = predictions["outputs"].argmax(-1) == predictions["labels"]
        by_setting[setting] = {c: (float(correct[scored == c].mean()) if (scored == c).any() else None)
                               for c in CONDITIONS}
        if setting == "full":
            counts = {c: int((scored == c).sum()) for c in CONDITIONS}
            unmatched = int(sum(c is None for c in scored))
    return {"truth": truth["path"], "counts": counts, "unmatched": unmatched,
            "accuracy": by_setting["full"], "accuracy_by_setting": by_setting}


def markdown_section(scores) -> list:
    """report.md lines for a `per_condition` dict."""
    settings = list(scores["accuracy_by_setting"])
    lines = ["## Accuracy per condition (demo corpus truth)", "",
             "| condition | where the emotion is | n | " + " | ".join(f"acc. {s.replace('_', ' ')}" for s in settings)
             + " |", "|---|---|---|" + "---|" * len(settings)]
    for c in CONDITIONS:
        cells = [_cell(scores["accuracy_by_setting"][s][c]) for s in settings]
        lines.append(f"| {c} | {WHAT[c]} | {scores['counts'][c]} | " + " | ".join(cells) + " |")
    lines += ["", f"Truth: `{scores['truth']}`; {scores['unmatched']} scored rows not in it.", ""]
    return lines


def _cell(value):
    return "n/a" if value is None else f"{value:.3f}"
