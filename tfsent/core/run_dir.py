"""`RunDir`: the one owner of a training run's directory — every file `bin/train` leaves there, and
the only code that names them. Train, evaluate, export, predict, embed and stacking all go through it.

Layout of `MODEL_DIR/`:

| file | written by | what |
|---|---|---|
| `tfsent_config.json` | train | the task config (`tfsent.tasks.TaskConfig`): model, classes, features, ... |
| `vocab.txt` | train | the WordPiece vocabulary of text models (absent with `--text_encoder`) |
| `run_info.json`, `flags.txt` | train | command, resolved flags, versions, manifest SHA-256, git commit |
| `model.keras` / `model.pkl` | train | the trained Keras model / the fitted scikit-learn estimator |
| `train_summary.json` | train | selection metric, best value, history, validation metrics |
| `calibration.json` | train (Keras classifiers), `bin/evaluate --calibrate` | temperature `T` fitted on the validation split (NLL before / after); absent in older runs: `T = 1` |
| `valid_predictions.csv` | train (scikit-learn) | validation-split probabilities (`utt_id, label, prediction, prob_<c>...`) |
| `checkpoints/`, `best/`, `logs/` | train (Keras) | checkpoints, the best checkpoint, TensorBoard |
| `eval/` (test) or `eval_<split>/` | evaluate | `metrics.json`, `predictions.csv`, `report.md`, PNGs (confusion matrix, reliability diagram); with `--robustness`, `robustness.json` + `robustness.png` |
| `eval_on_<corpus>_<split>/` | crossval `--eval_manifest` | the same, scored on another corpus |

Example:

```python
run = RunDir("runs/demo")
run.require_trained()                  # one-line error when training has not finished there
config = run.read_config()             # dict; tfsent.tasks.TaskConfig.load(run) types it
run.eval_dir("test")                   # runs/demo/eval
```
"""

from __future__ import annotations

import os

from tfsent.core import files
from tfsent.core.errors import UsageError

CONFIG_FILE = "tfsent_config.json"
VOCAB_FILE = "vocab.txt"
RUN_INFO_FILE = "run_info.json"
FLAGS_FILE = "flags.txt"
KERAS_MODEL_FILE = "model.keras"
SKLEARN_MODEL_FILE = "model.pkl"
TRAIN_SUMMARY_FILE = "train_summary.json"
VALID_PREDICTIONS_FILE = "valid_predictions.csv"
OOF_PREDICTIONS_FILE = "oof_predictions.csv"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.csv"
CALIBRATION_FILE = "calibration.json"


class RunDirError(UsageError):
    """The directory is not (yet) what the command needs: not a run, or training unfinished."""


class RunDir:
    """A training run's directory (see the module docstring for its files).

    Args:
        path: the model dir (`--model_dir`).
    """

    def __init__(self, path):
        if isinstance(path, RunDir):
            path = path.path
        self.path = os.fspath(path)
        self.config_path = self.file(CONFIG_FILE)
        self.vocab_path = self.file(VOCAB_FILE)
        self.keras_model_path = self.file(KERAS_MODEL_FILE)
        self.sklearn_model_path = self.file(SKLEARN_MODEL_FILE)
        self.checkpoints_dir = self.file("checkpoints")
        self.best_dir = self.file("best")
        self.logs_dir = self.file("logs")

    def __repr__(self):
        return f"RunDir({self.path!r})"

    def file(self, name) -> str:
        return os.path.join(self.path, name)

    # === Paths ===

    def eval_dir(self, split="test") -> str:
        """Where `bin/evaluate` writes the scores of `split`: `eval/` for test, `eval_<split>/` else."""
        return self.file("eval" if str(split) == "test" else f"eval_{split}")

    def other_corpus_eval_dir(self, corpus, split="test") -> str:
        """Where `bin/crossval --eval_manifest` writes the scores of another corpus's `split`."""
        return self.file(f"eval_on_{corpus}_{split}")

    def predictions_path(self, split) -> str:
        """Per-utterance predictions of `split`: `valid_predictions.csv` written at training time by
        scikit-learn runs for the validation split, else `bin/evaluate`'s `predictions.csv`."""
        if str(split) == "valid" and os.path.isfile(self.file(VALID_PREDICTIONS_FILE)):
            return self.file(VALID_PREDICTIONS_FILE)
        return os.path.join(self.eval_dir(split), PREDICTIONS_FILE)

    # === State ===

    def is_run(self) -> bool:
        return os.path.isfile(self.config_path)

    def model_kind(self):
        """`"keras"`, `"sklearn"`, or None when no trained model is there yet."""
        if os.path.isfile(self.keras_model_path):
            return "keras"
        if os.path.isfile(self.sklearn_model_path):
            return "sklearn"
        return None

    def require_run(self):
        if not os.path.isdir(self.path):
            raise RunDirError(f"model dir {self.path!r} does not exist (bin/train --model_dir=... makes one)")
        if not self.is_run():
            raise RunDirError(f"{self.config_path} not found: is {self.path!r} a tfsent model dir "
                              f"(made by bin/train)?")

    def require_trained(self):
        self.require_run()
        if self.model_kind() is None:
            raise RunDirError(f"{self.keras_model_path} not found: training has not finished in "
                              f"{self.path!r} (re-run the same bin/train command to resume)")

    # === Reading and writing ===

    def makedirs(self):
        os.makedirs(self.path, exist_ok=True)
        return self

    def read_json(self, name, default=None):
        return files.read_json(self.file(name), default)

    def write_json(self, name, obj):
        files.write_json(self.file(name), obj)

    def write_text(self, name, text):
        files.write_text(self.file(name), text)

    def read_config(self) -> dict:
        self.require_run()
        return files.read_json(self.config_path)

    def write_config(self, config: dict):
        self.write_json(CONFIG_FILE, config)

    def read_train_summary(self) -> dict:
        return self.read_json(TRAIN_SUMMARY_FILE, {}) or {}

    def read_flags(self) -> list:
        """The `--flag=value` lines of `flags.txt` (empty when absent)."""
        path = self.file(FLAGS_FILE)
        if not os.path.exists(path):
            return []
        with open(path, encoding="utf-8") as f:
            return [line.strip() for line in f if line.strip().startswith("--")]

    def read_calibration(self):
        """The temperature-scaling record (`tfsent.metrics.calibration.fit_temperature` plus where it
        was fitted), or None for a run without one (trained before calibration, or a regressor)."""
        return self.read_json(CALIBRATION_FILE, None)

    def write_calibration(self, record: dict):
        self.write_json(CALIBRATION_FILE, record)

    def read_eval_metrics(self, split="test"):
        return files.read_json(os.path.join(self.eval_dir(split), METRICS_FILE))

    def resolve_vocabulary(self, recorded) -> str | None:
        """The vocabulary a run recorded, or the copy inside the run dir when the recorded path is
        gone (a run dir copied to another machine)."""
        if not recorded or os.path.isfile(recorded):
            return recorded
        local = self.file(os.path.basename(recorded))
        if not os.path.isfile(local):
            raise RunDirError(f"vocabulary {recorded!r} (from {self.config_path}) not found, nor {local!r}")
        return local
