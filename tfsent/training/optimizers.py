"""Optimisers and learning-rate schedules for the trainer and the fine-tuning recipes.

Used by `tfsent.training.trainer` (API: `make_learning_rate_schedule`, `make_optimizer`), plus
layer-wise learning-rate decay (`layerwise_lr_multipliers` -> `make_optimizer(lr_multipliers=)`)
and freezing helpers for pretrained encoders (`freeze_encoder`, `set_trainable`).
The seed recipes: S0 AdamW lr 1e-4 eps 1e-6 wd 1e-6 with 1000 linear warm-up steps; S1 AdamW 2e-5 with
warm-up + cosine; S2 Adam 2e-5.

Example:

```python
schedule = make_learning_rate_schedule("cosine", 2e-5, total_steps=1000, warmup_steps=100)
optimizer = make_optimizer("adamw", schedule, weight_decay=0.01,
                           lr_multipliers=layerwise_lr_multipliers(model, 0.9))
freeze_encoder(model, trainable_layers=2)  # embeddings + lower layers frozen
```
"""

from __future__ import annotations

import re

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


def _scaled_update(cls):
    """A subclass of `cls` that scales the learning rate per variable."""

    class Scaled(cls):
        def __init__(self, *args, lr_multipliers=None, **kwargs):
            super().__init__(*args, **kwargs)
            # {variable path: multiplier}; paths are stable across save/restore.
            self.lr_multipliers = dict(lr_multipliers or {})

        def build(self, var_list):
            super().build(var_list)
            self._lr_scale = [float(self.lr_multipliers.get(v.path, 1.0)) for v in var_list]

        def update_step(self, gradient, variable, learning_rate):
            # The backend may hand over the raw tf.Variable: look it up by index.
            m = self._lr_scale[self._get_variable_index(variable)] if self.lr_multipliers else 1.0
            if m != 1.0:
                learning_rate = ops.cast(learning_rate, variable.dtype) * m
            return super().update_step(gradient, variable, learning_rate)

        def get_config(self):
            return {**super().get_config(), "lr_multipliers": self.lr_multipliers}

    Scaled.__name__ = f"LayerwiseLR{cls.__name__}"
    return Scaled


LayerwiseAdamW = keras.saving.register_keras_serializable(package="tfsent")(
    _scaled_update(keras.optimizers.AdamW))
LayerwiseAdam = keras.saving.register_keras_serializable(package="tfsent")(
    _scaled_update(keras.optimizers.Adam))


def exclude_vectors_from_weight_decay(optimizer, variables):
    """No weight decay on biases, norms' gamma/beta and other vectors (rank <= 1)."""
    vectors = [v for v in variables if len(v.shape) <= 1]
    optimizer.exclude_from_weight_decay(var_list=vectors)
    return vectors


_LAYER = re.compile(r"transformer_layer_(\d+)")
_EMBEDDING_LAYERS = ("token_embedding", "position_embedding", "embeddings_layer_norm",
                     "embeddings_projection", "waveform_normalization", "feature_extractor",
                     "feature_projection_norm", "feature_projection",
                     "positional_conv_embedding")


def layerwise_lr_multipliers(model, decay):
    """Layer-wise learning-rate decay (ELECTRA / BEiT style) for tfsent encoders.

    Transformer layer i of N gets `decay ** (N - i)`, embeddings / the feature
    encoder `decay ** (N + 1)`, everything else (pooler, heads) 1. Works on a
    model that contains a tfsent text backbone or audio encoder (layer names
    `transformer_layer_<i>`, `token_embedding`, `feature_extractor`, ...).

    Returns:
        {variable.path: multiplier} for `make_optimizer(lr_multipliers=...)`.
    """
    if not 0 < decay <= 1:
        raise ValueError(f"decay must be in (0, 1], got {decay}.")
    indices = [int(m.group(1)) for v in model.variables if (m := _LAYER.search(v.path))]
    if not indices:
        raise ValueError(f"{model.name}: no transformer_layer_<i> variables found.")
    n = max(indices) + 1
    out = {}
    for v in model.trainable_variables:
        m = _LAYER.search(v.path)
        if m:
            out[v.path] = decay ** (n - int(m.group(1)))
        elif any(f"/{name}/" in f"/{v.path}" for name in _EMBEDDING_LAYERS):
            out[v.path] = decay ** (n + 1)
    return out


def _find(model, name):
    for layer in _walk(model):
        if layer.name == name:
            return layer
    return None


def _walk(layer):
    yield layer
    for sub in getattr(layer, "layers", []):
        yield from _walk(sub)


def set_trainable(model, patterns, trainable):
    """Sets `trainable` on every (nested) layer whose name matches a regex.

    Returns the names of the layers changed; raises if nothing matched.
    """
    regex = re.compile("|".join(f"(?:{p})" for p in patterns))
    changed = []
    for layer in _walk(model):
        if layer is not model and regex.fullmatch(layer.name):
            layer.trainable = trainable
            changed.append(layer.name)
    if not changed:
        raise ValueError(f"{model.name}: no layer matches {list(patterns)}.")
    return changed


def freeze_encoder(model, trainable_layers=0, freeze_feature_encoder=True):
    """Freezes a tfsent encoder inside `model`, leaving its top layers trainable.

    Args:
        model: a model containing a tfsent text backbone or audio encoder.
        trainable_layers: how many of the top transformer layers stay
            trainable (0: the whole encoder is frozen; -1: none frozen except
            the feature encoder when `freeze_feature_encoder`).
        freeze_feature_encoder: freeze wav2vec2's convolutional feature encoder
            (seed 000) whatever `trainable_layers` says.

    Returns the names of the frozen layers.
    """
    layers = list(_walk(model))
    blocks = sorted((int(m.group(1)), layer) for layer in layers
                    if (m := re.fullmatch(r"transformer_layer_(\d+)", layer.name)))
    frozen = []
    if trainable_layers >= 0:
        keep = {i for i, _ in blocks[len(blocks) - trainable_layers:]} if trainable_layers else set()
        for i, layer in blocks:
            if i not in keep:
                layer.trainable = False
                frozen.append(layer.name)
        for layer in layers:
            if layer.name in _EMBEDDING_LAYERS:
                layer.trainable = False
                frozen.append(layer.name)
    if freeze_feature_encoder:
        fe = _find(model, "feature_extractor")
        if fe is not None:
            fe.trainable = False
            if "feature_extractor" not in frozen:
                frozen.append("feature_extractor")
    return frozen


def make_optimizer(name, learning_rate, *, weight_decay=0.0, clipnorm=None, epsilon=None,
                   lr_multipliers=None):
    """`adam`, `adamw` (decoupled weight decay, none on biases/norms/vectors) or `sgd`.

    `lr_multipliers` ({variable.path: factor}, e.g. from `layerwise_lr_multipliers`)
    scales the learning rate per variable (adam / adamw).
    """
    kwargs = {"learning_rate": learning_rate}
    if clipnorm:
        kwargs["global_clipnorm"] = clipnorm
    if lr_multipliers and name not in ("adam", "adamw"):
        raise ValueError(f"lr_multipliers need adam or adamw, not {name!r}")
    if name == "adam":
        return LayerwiseAdam(epsilon=epsilon or 1e-7, lr_multipliers=lr_multipliers, **kwargs)
    if name == "adamw":
        optimizer = LayerwiseAdamW(weight_decay=weight_decay, epsilon=epsilon or 1e-6,
                                   lr_multipliers=lr_multipliers, **kwargs)
        # As in the seed recipes: no decay on vectors (biases, norm scales/offsets).
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta", "norm"])
        return optimizer
    if name == "sgd":
        return keras.optimizers.SGD(momentum=0.9, **kwargs)
    raise ValueError(f"unknown optimizer {name!r} (adam, adamw, sgd)")
