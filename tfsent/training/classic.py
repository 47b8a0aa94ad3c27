"""Training a scikit-learn run: fit on the training split, score the validation split, and leave the
same run files as a Keras run (`tfsent.core.run_dir`), so `bin/evaluate` scores it on the test split.

Example:

```python
task = ClassicTask(config, frame, sidecar)
summary = train_classic(task, "runs/svm")
summary["valid_metrics"]["macro_f1"]
```
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd

from tfsent.core import files
from tfsent.core.run_dir import TRAIN_SUMMARY_FILE, VALID_PREDICTIONS_FILE, RunDir


def train_classic(task, model_dir, *, train_split="train", valid_split="valid", log=print) -> dict:
    """Fits `task`'s model on `train_split`, scores `valid_split`; writes `model.pkl`,
    `valid_predictions.csv` and `train_summary.json` into `model_dir`. Returns the summary."""
    run = RunDir(model_dir).makedirs()
    model = task.fit(task.build_model(), train_split)
    files.write_bytes(run.sklearn_model_path, pickle.dumps(model))
    summary = {"selection_metric": None, "epochs_run": 1}
    rows = task.split_frame(valid_split)
    if rows.empty:
        log(f"warning: no rows with split == {valid_split!r}: the model is not validated")
    else:
        predictions = task.predict(model, valid_split)
        summary["valid_metrics"] = {**task.compute_metrics(predictions), "split": str(valid_split)}
        files.write_text(run.file(VALID_PREDICTIONS_FILE),
                         _prediction_table(task, rows, predictions).to_csv(index=False))
    run.write_json(TRAIN_SUMMARY_FILE, summary)
    return summary


def _prediction_table(task, rows, predictions):
    probs = np.exp(predictions["outputs"])
    probs = probs / probs.sum(axis=1, keepdims=True)
    classes = list(task.config.classes)
    table = pd.DataFrame({"utt_id": rows["utt_id"].to_numpy(), "label": rows["emotion"].to_numpy(),
                          "prediction": [classes[i] for i in probs.argmax(axis=1)]})
    for i, c in enumerate(classes):
        table[f"prob_{c}"] = probs[:, i]
    return table
