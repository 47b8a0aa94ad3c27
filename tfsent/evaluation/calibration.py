"""Calibrated confidence in evaluation: the run's temperature, ECE / Brier before and after it, the
reliability diagram and coverage vs accuracy when answering only above a confidence threshold.

The temperature comes from the run's `calibration.json` (`tfsent.core.run_dir.RunDir`), which
`bin/train` writes for every Keras classifier (fitted on the validation split right after training).
A run without one (trained before calibration existed, or a scikit-learn model) is scored with
`T = 1`, and `metrics.json` says so; `calibrate_split` (`bin/evaluate --calibrate`) fits one on the
validation split of an existing run and stores it.

Example:

```python
record = calibrate_split(loaded, predict_fn, "valid")     # writes MODEL_DIR/calibration.json
section = calibration_section(loaded.run, predictions, classes, out_dir, split="test")
section["calibrated"]["ece"], section["coverage"]
```
"""

from __future__ import annotations

import os

from tfsent.core import files
from tfsent.core.errors import UsageError
from tfsent.metrics import calibration as calibration_lib
from tfsent.metrics.plots import reliability_diagram_png

RELIABILITY_PNG = "reliability_diagram.png"
NO_CALIBRATION = ("no calibration.json in the run (trained before temperature scaling, or a scikit-learn "
                  "model): probabilities are the plain softmax (T = 1); bin/evaluate --calibrate fits one")


def run_temperature(run) -> tuple:
    """(temperature, record or None) of a run; T = 1 without `calibration.json`."""
    record = run.read_calibration()
    if not record:
        return 1.0, None
    return float(record["temperature"]), record


def calibrate_split(loaded, predict_fn, split="valid") -> dict:
    """Fits the temperature on `split` of a loaded run, writes `calibration.json`; returns the record."""
    task = loaded.task
    if not task.is_classification:
        raise UsageError(f"--calibrate: {task.config.model} is a {task.config.task} model; temperature "
                         "scaling is for classifiers")
    if task.frame is None or not len(task.split_frame(split)):
        raise UsageError(f"--calibrate: the manifest has no {split!r} rows to fit the temperature on")
    predictions = task.predict(predict_fn, split)
    if not len(predictions["labels"]):
        raise UsageError(f"--calibrate: no readable {split!r} rows to fit the temperature on")
    record = calibration_lib.fit_temperature(predictions["outputs"], predictions["labels"])
    record.update(split=str(split), fitted_by="bin/evaluate --calibrate")
    loaded.run.write_calibration(record)
    return record


def calibration_section(run, predictions, classes, out_dir, split) -> dict:
    """`metrics.json`'s `calibration` block for one scored split; writes the reliability diagram."""
    temperature, record = run_temperature(run)
    logits, labels = predictions["outputs"], predictions["labels"]
    section = calibration_lib.confidence_report(logits, labels, temperature)
    section["source"] = (f"calibration.json (fitted on the {record.get('split')} split by "
                         f"{record.get('fitted_by')}; NLL there {record['nll_before']:.4f} -> "
                         f"{record['nll_after']:.4f})" if record else NO_CALIBRATION)
    png = reliability_diagram_png(
        {"uncalibrated": calibration_lib.softmax(logits),
         f"calibrated (T={temperature:.2f})": calibration_lib.softmax(logits, temperature)},
        labels, n_bins=section["ece_bins"], title=f"{split} split: reliability ({len(classes)} classes)")
    files.write_bytes(os.path.join(out_dir, RELIABILITY_PNG), png)
    section["reliability_diagram"] = RELIABILITY_PNG
    return section


def headline(section) -> dict:
    """Top-level `metrics.json` keys: `ece` / `brier` calibrated, `*_uncalibrated` before."""
    return {"ece": section["calibrated"]["ece"], "brier": section["calibrated"]["brier"],
            "ece_uncalibrated": section["uncalibrated"]["ece"],
            "brier_uncalibrated": section["uncalibrated"]["brier"]}


def markdown_section(section) -> list:
    """`report.md` lines: the scores before / after and the coverage table."""
    lines = [f"## Calibrated confidence (temperature T = {section['temperature']:.3f})", "",
             f"Source: {section['source']}.", "",
             "| | ECE (15 bins) | Brier | NLL |", "|---|---|---|---|"]
    for name in ("uncalibrated", "calibrated"):
        s = section[name]
        lines.append(f"| {name} | {s['ece']:.4f} | {s['brier']:.4f} | {s['nll']:.4f} |")
    lines += ["", f"Reliability diagram: `{section['reliability_diagram']}`. Answering only when the calibrated "
              "top probability is at least P (`bin/predict --abstain_below=P`; the rest is \"uncertain\"):", "",
              "| P | coverage | accuracy on answered |", "|---|---|---|"]
    for row in section["coverage"]:
        accuracy = "n/a" if row["accuracy"] is None else f"{row['accuracy']:.3f}"
        lines.append(f"| {row['threshold']:.1f} | {row['coverage']:.3f} ({row['answered']}) | {accuracy} |")
    return lines


def summary_line(section) -> str:
    """bin/evaluate's console line: ECE / Brier before -> after and where T came from."""
    before, after = section["uncalibrated"], section["calibrated"]
    note = "" if section["source"].startswith("calibration.json") else " (no calibration.json: T = 1)"
    return (f"  calibration: T={section['temperature']:.3f}{note}; ECE {before['ece']:.4f} -> {after['ece']:.4f}, "
            f"Brier {before['brier']:.4f} -> {after['brier']:.4f}")
