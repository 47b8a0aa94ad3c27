"""The task of a scikit-learn run (`kind="sklearn"` models: TF-IDF SVM / NB, MFCC random forest,
stacking): the same interface as `EmotionTask` where evaluation needs it (`split_frame`, `predict`,
`compute_metrics`), so `bin/evaluate` scores a scikit-learn run on any split like a Keras run.

Example:

```python
task = ClassicTask(TaskConfig.load("runs/svm"), frame, sidecar)
model = task.fit(task.build_model(), "train")
predictions = task.predict(model, "test")
task.compute_metrics(predictions)["macro_f1"]
```
"""

from __future__ import annotations

import numpy as np

from tfsent.core.errors import UsageError
from tfsent.models import registry
from tfsent.models.classic import as_row_model
from tfsent.tasks.emotion import TaskConfig, compute_metrics


class ClassicTask:
    """Fitting and scoring one registered scikit-learn model on manifest rows (classification only).

    Args:
        config: the `TaskConfig` (`model`, `model_kwargs`, `classes`; the feature fields are unused).
        frame: the manifest DataFrame.
        sidecar: the manifest sidecar (`data_dir` for audio models).
    """

    kind = "sklearn"

    def __init__(self, config: TaskConfig, frame, sidecar):
        self.config = config
        self.entry = registry.get(config.model)
        if self.entry.kind != "sklearn":
            raise ValueError(f"ClassicTask: model {config.model!r} is a {self.entry.kind} model")
        if config.task != "classification":
            raise UsageError(f"--task={config.task}: scikit-learn model {config.model!r} only classifies")
        self.frame = frame
        self.sidecar = sidecar or {}
        self.is_classification = True

    @property
    def data_dir(self):
        return self.sidecar.get("data_dir", "")

    def output_key(self):
        return "logits"

    def build_model(self):
        """The unfitted row model (`model_kwargs` checked against the builder's signature)."""
        kwargs = registry.split_kwargs(self.config.model, {}, dict(self.config.model_kwargs))
        return as_row_model(self.config.model, self.entry.builder(**kwargs))

    def split_frame(self, split):
        rows = self.frame[self.frame["split"].astype(str) == str(split)].reset_index(drop=True)
        unknown = sorted(set(rows["emotion"].dropna()) - set(self.config.classes))
        if unknown:
            raise UsageError(f"manifest emotions {unknown} are not in the model's classes {self.config.classes}")
        return rows

    def labels(self, rows):
        index = {c: i for i, c in enumerate(self.config.classes)}
        return rows["emotion"].map(index).to_numpy(dtype=int)

    def fit(self, model, split):
        rows = self.split_frame(split)
        if rows.empty:
            raise UsageError(f"no rows with split == {split!r} in the manifest")
        groups = None
        if "speaker" in rows and rows["speaker"].notna().all():
            groups = rows["speaker"].astype(str).tolist()
        return model.fit_rows(rows, self.labels(rows), data_dir=self.data_dir, classes=list(self.config.classes),
                              groups=groups)

    def predict(self, model, split, log=None) -> dict:
        """`EmotionTask.predict`'s dict: `outputs` are log-probabilities (a softmax gives them back)."""
        rows = self.split_frame(split)
        if rows.empty:
            probs = np.zeros((0, len(self.config.classes)))
        else:
            probs = model.probabilities_rows(rows, split=str(split), data_dir=self.data_dir,
                                             classes=list(self.config.classes))
        labels = self.labels(rows)
        log_probs = np.log(np.clip(probs, 1e-12, 1.0))
        loss = float(-np.mean(log_probs[np.arange(len(labels)), labels])) if len(labels) else float("nan")
        return {"outputs": log_probs, "labels": labels, "values": None,
                "index": np.arange(len(rows)), "loss": loss}

    def compute_metrics(self, predictions) -> dict:
        return compute_metrics(self, predictions)
