"""The one loader of a trained run: `load_run(model_dir)` → config, task and model, for evaluation,
export, prediction and stacking alike (Keras and scikit-learn runs).

Example:

```python
run = load_run("runs/demo_fusion")                    # manifest from the run's config
run.task.predict(run.predict_fn(), "test")
run = load_run("runs/demo_fusion", require_manifest=False)   # export: the model is enough
```
"""

from __future__ import annotations

import dataclasses
import os
import pickle

from tfsent.core.errors import UsageError
from tfsent.core.run_dir import RunDir
from tfsent.models import registry
from tfsent.tasks.classic import ClassicTask
from tfsent.tasks.emotion import EmotionTask, TaskConfig


def make_task(config: TaskConfig, frame, sidecar, **pipeline_overrides):
    """The task for `config.model`: `ClassicTask` for scikit-learn models, else `EmotionTask`."""
    if registry.get(config.model).kind == "sklearn":
        return ClassicTask(config, frame, sidecar)
    return EmotionTask(config, frame, sidecar, **pipeline_overrides)


@dataclasses.dataclass
class LoadedRun:
    """A trained run, loaded.

    Args:
        run: its `RunDir`.
        config: its `TaskConfig` (vocabulary path resolved on this machine).
        task: `EmotionTask` or `ClassicTask` over the manifest (frame None when none was found).
        model: the Keras model, or the fitted scikit-learn row model.
        manifest: the manifest path used, or None.
    """

    run: RunDir
    config: TaskConfig
    task: object
    model: object
    manifest: str | None

    @property
    def kind(self):
        return self.task.kind

    def predict_fn(self):
        """What `task.predict` takes: a `tf.function` for Keras runs, the row model for scikit-learn."""
        return self.task.make_predict_fn(self.model) if self.kind == "keras" else self.model


def load_run(model_dir, manifest=None, *, require_manifest=True, batch_size=32) -> LoadedRun:
    """Loads the run in `model_dir` (see `LoadedRun`).

    Args:
        model_dir: a directory written by `bin/train`.
        manifest: the manifest to read (default: the one the run trained on).
        require_manifest: fail when no manifest is found (evaluation); export only needs the model.
        batch_size: the evaluation pipeline's batch size.
    """
    run = RunDir(model_dir)
    run.require_trained()
    config = TaskConfig.load(model_dir)
    config.vocabulary = run.resolve_vocabulary(config.vocabulary)
    manifest = manifest or config.manifest
    frame, sidecar = None, {}
    if manifest and os.path.isfile(manifest):
        from tfsent.corpus.manifest import read_manifest

        frame, sidecar = read_manifest(manifest)
        if config.task == "classification" and list(sidecar.get("classes") or []) != list(config.classes):
            raise UsageError(f"the manifest {manifest} holds the classes {sidecar.get('classes')}, but the model in "
                             f"{model_dir} was trained on {config.classes}; score it on a manifest prepared with "
                             f"the same --classes")
    elif require_manifest:
        raise UsageError(f"manifest {manifest!r} not found; pass --manifest=OUT/manifest.csv")
    else:
        manifest = None
    if run.model_kind() == "sklearn":
        with open(run.sklearn_model_path, "rb") as f:
            model = pickle.load(f)
        return LoadedRun(run, config, ClassicTask(config, frame, sidecar), model, manifest)
    import keras

    registry.names()  # imports every model module so custom layers are registered
    model = keras.saving.load_model(run.keras_model_path, compile=False)
    task = EmotionTask(config, frame, sidecar, batch_size=batch_size)
    task.use_model(model)
    return LoadedRun(run, config, task, model, manifest)
