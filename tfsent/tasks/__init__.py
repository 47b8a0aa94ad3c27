"""Tasks (TF Model Garden style): what one run trains and scores, between the models and the loops.

- `TaskConfig`: everything a run needs to be rebuilt (saved as `MODEL_DIR/tfsent_config.json`).
- `EmotionTask`: a Keras model's inputs (`build_inputs`), model (`build_model`), set-up hook
  (`initialize`), loss, predictions and metrics.
- `ClassicTask`: the same for scikit-learn models.
- `make_task`, `load_run`: the task for a config; the one loader of a trained run.
"""

from tfsent.tasks.classic import ClassicTask
from tfsent.tasks.emotion import EmotionTask, TaskConfig, class_weights_balanced
from tfsent.tasks.runs import LoadedRun, load_run, make_task

__all__ = ["ClassicTask", "EmotionTask", "LoadedRun", "TaskConfig", "class_weights_balanced", "load_run",
           "make_task"]
