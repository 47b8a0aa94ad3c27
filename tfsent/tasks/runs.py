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
        class_mapping: how a manifest with another class set (another corpus) was mapped onto the
            model's classes (`map_classes`), or None when the class sets are the same.
    """

    run: RunDir
    config: TaskConfig
    task: object
    model: object
    manifest: str | None
    class_mapping: dict | None = None

    @property
    def kind(self):
        return self.task.kind

    def predict_fn(self):
        """What `task.predict` takes: a `tf.function` for Keras runs, the row model for scikit-learn."""
        return self.task.make_predict_fn(self.model) if self.kind == "keras" else self.model


def load_run(model_dir, manifest=None, *, require_manifest=True, batch_size=32, **pipeline_overrides) -> LoadedRun:
    """Loads the run in `model_dir` (see `LoadedRun`).

    Args:
        model_dir: a directory written by `bin/train`.
        manifest: the manifest to read (default: the one the run trained on).
        require_manifest: fail when no manifest is found (evaluation); export only needs the model.
        batch_size: the evaluation pipeline's batch size.
        pipeline_overrides: other `PipelineConfig` fields of a Keras run's pipeline (e.g. `cache_audio`).
    """
    run = RunDir(model_dir)
    run.require_trained()
    config = TaskConfig.load(model_dir)
    config.vocabulary = run.resolve_vocabulary(config.vocabulary)
    manifest = manifest or config.manifest
    frame, sidecar, class_mapping = None, {}, None
    if manifest and os.path.isfile(manifest):
        from tfsent.corpus.manifest import read_manifest

        frame, sidecar = read_manifest(manifest)
        if config.task == "classification" and list(sidecar.get("classes") or []) != list(config.classes):
            frame, sidecar, class_mapping = map_classes(frame, sidecar, config.classes, manifest)
    elif require_manifest:
        raise UsageError(f"manifest {manifest!r} not found; pass --manifest=OUT/manifest.csv")
    else:
        manifest = None
    if run.model_kind() == "sklearn":
        with open(run.sklearn_model_path, "rb") as f:
            model = pickle.load(f)
        return LoadedRun(run, config, ClassicTask(config, frame, sidecar), model, manifest, class_mapping)
    import keras

    registry.names()  # imports every model module so custom layers are registered
    model = keras.saving.load_model(run.keras_model_path, compile=False)
    task = EmotionTask(config, frame, sidecar, batch_size=batch_size, **pipeline_overrides)
    task.use_model(model)
    return LoadedRun(run, config, task, model, manifest, class_mapping)


def map_classes(frame, sidecar, classes, manifest):
    """Maps a manifest of another class set (another corpus, another `--classes`) onto the model's
    `classes` by emotion name: rows whose emotion the model does not know leave the frame, and are
    counted per split and emotion (never dropped silently). Returns `(frame, sidecar, mapping)`."""
    classes = list(classes)
    known = frame["emotion"].astype(str).isin(classes)
    if not known.any():
        raise UsageError(f"none of the emotions of the manifest {manifest} ({sorted(set(frame['emotion']))}) "
                         f"is one of the model's classes {classes}: nothing to score")
    unknown = frame.loc[~known]
    by_split = {str(split): {str(e): int(n) for e, n in rows["emotion"].value_counts().sort_index().items()}
                for split, rows in unknown.groupby(unknown["split"].astype(str))}
    mapping = {
        "manifest_classes": list(sidecar.get("classes") or []),
        "model_classes": classes,
        "mapped_by": "emotion name",
        "unmapped_rows": int(len(unknown)),
        "unmapped_by_split": by_split,
        "model_classes_absent_from_manifest": [c for c in classes if c not in set(frame["emotion"])],
    }
    # The manifest's target_<c> columns belong to its own class set: the labels become one-hot targets.
    frame = frame.loc[known].drop(columns=[c for c in frame.columns if c.startswith("target_")])
    sidecar = {**sidecar, "classes": classes, "class_mapping": mapping}
    return frame.reset_index(drop=True), sidecar, mapping

