"""Optimisers and learning-rate schedules for the trainer and the fine-tuning recipes.

Used by `tfsent.training.trainer` (API: `make_learning_rate_schedule`, `make_optimizer`).
The seed recipes: S0 AdamW lr 1e-4 eps 1e-6 wd 1e-6 with 1000 linear warm-up steps; S1 AdamW 2e-5 with
warm-up + cosine; S2 Adam 2e-5.

Example:

```python
schedule = make_learning_rate_schedule("cosine", 2e-5, total_steps=1000, warmup_steps=100)
optimizer = make_optimizer("adamw", schedule, weight_decay=0.01)
```
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfsent")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `peak` over `warmup_steps`, then `decay` to 0 at `total_steps`.

    Args:
        peak: the learning rate reached at the end of warm-up.
        total_steps: steps of the whole run (warm-up included).
        warmup_steps: linear warm-up steps (0: none).
        decay: `constant`, `cosine` or `linear`.
    """

    def __init__(self, peak, total_steps, warmup_steps=0, decay="constant"):
        if decay not in ("constant", "cosine", "linear"):
            raise ValueError(f"decay must be constant, cosine or linear, got {decay!r}")
        self.peak = float(peak)
        self.total_steps = int(max(total_steps, 1))
        self.warmup_steps = int(max(warmup_steps, 0))
        self.decay = decay

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = float(max(self.warmup_steps, 1))
        warmup_factor = ops.minimum((step + 1.0) / warm, 1.0) if self.warmup_steps else 1.0
        span = float(max(self.total_steps - self.warmup_steps, 1))
        progress = ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
        if self.decay == "cosine":
            decay_factor = 0.5 * (1.0 + ops.cos(3.141592653589793 * progress))
        elif self.decay == "linear":
            decay_factor = 1.0 - progress
        else:
            decay_factor = 1.0
        return self.peak * warmup_factor * decay_factor

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "decay": self.decay}


def make_learning_rate_schedule(kind, learning_rate, *, total_steps, warmup_steps=0):
    """A constant rate, or a `WarmupSchedule` (`kind` in constant / cosine / linear)."""
    if kind == "constant" and not warmup_steps:
        return float(learning_rate)
    return WarmupSchedule(learning_rate, total_steps, warmup_steps, kind)


def make_optimizer(name, learning_rate, *, weight_decay=0.0, clipnorm=None, epsilon=None):
    """`adam`, `adamw` (decoupled weight decay, none on biases/norms/vectors) or `sgd`."""
    kwargs = {"learning_rate": learning_rate}
    if clipnorm:
        kwargs["global_clipnorm"] = clipnorm
    if name == "adam":
        return keras.optimizers.Adam(epsilon=epsilon or 1e-7, **kwargs)
    if name == "adamw":
        optimizer = keras.optimizers.AdamW(weight_decay=weight_decay, epsilon=epsilon or 1e-6, **kwargs)
        # As in the seed recipes: no decay on vectors (biases, norm scales/offsets).
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta", "norm"])
        return optimizer
    if name == "sgd":
        return keras.optimizers.SGD(momentum=0.9, **kwargs)
    raise ValueError(f"unknown optimizer {name!r} (adam, adamw, sgd)")
