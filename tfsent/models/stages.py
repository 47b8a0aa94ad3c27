"""Run-to-run plumbing: what a model needs from data or from an earlier run before it trains.

- `adapt_normalization(model, dataset)`: Keras `Normalization` layers take the training split's
  statistics (S1 `conv1d_fusion`).
- `load_backbone(model_dir, name)` / `freeze(layer)`: a later stage takes a trained sub-model out of
  an earlier stage's saved model and freezes it (S2 stage 3 takes `AUDIO_BACKBONE` and
  `TEXT_BACKBONE` from the stage 1 and 2 regressors).

Example:

```python
adapt_normalization(model, train_dataset)               # ["standardize"]
audio = load_backbone("runs/s2_1", AUDIO_BACKBONE)      # frozen nested model
```
"""

from __future__ import annotations

import os

import keras
import numpy as np
from keras import layers

# The nested sub-models of the S2 regressors that stage 3 loads by name.
AUDIO_BACKBONE = "audio_arousal_backbone"
TEXT_BACKBONE = "text_valence_backbone"


def adapt_normalization(model, dataset, max_batches=None):
    """Adapts every `keras.layers.Normalization` in `model` on `dataset` (the training split only).

    `dataset` yields input dicts (or `(inputs, targets)` pairs). Each layer's input is computed with
    the model's current weights, then `mean`/`variance` are set from all rows seen, so the statistics
    are saved with the model. Returns the names of the layers adapted (empty when the model has none).
    """
    norms = [l for l in model.layers if isinstance(l, layers.Normalization)]
    if not norms:
        return []
    probe = keras.Model(model.input, [l.input for l in norms])
    sums = [None] * len(norms)
    count = 0
    for i, batch in enumerate(dataset):
        if max_batches is not None and i >= max_batches:
            break
        inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
        inputs = {k: inputs[k] for k in model.input}
        values = probe(inputs, training=False)
        values = values if isinstance(values, (list, tuple)) else [values]
        for j, v in enumerate(values):
            v = np.asarray(keras.ops.convert_to_numpy(v), dtype="float64")
            stats = (v.sum(0), np.square(v).sum(0))
            sums[j] = stats if sums[j] is None else (sums[j][0] + stats[0], sums[j][1] + stats[1])
        count += int(v.shape[0])
    if count == 0:
        raise ValueError("adapt_normalization: the training dataset is empty")
    for layer, (s1, s2) in zip(norms, sums):
        mean = s1 / count
        var = np.maximum(s2 / count - np.square(mean), 0.0)
        layer.adapt_mean.assign(mean.reshape(layer.adapt_mean.shape).astype("float32"))
        layer.adapt_variance.assign(var.reshape(layer.adapt_variance.shape).astype("float32"))
        layer.finalize_state()
    return [l.name for l in norms]


def load_backbone(model_dir, backbone_name):
    """The frozen sub-model `backbone_name` of the model saved in `model_dir` (or a `.keras` file)."""
    path = model_dir
    if os.path.isdir(model_dir):
        path = os.path.join(model_dir, "model.keras")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"no trained model at {path!r} (looked for model.keras in the --init_from directory)"
        )
    try:  # registers keras-hub classes a saved text backbone may use
        import keras_hub  # noqa: F401
    except ImportError:
        pass
    from tfsent.models import registry

    registry.names()  # imports every model module, registering every tfsent layer a model may hold
    model = keras.saving.load_model(path, safe_mode=True, compile=False)
    try:
        backbone = model.get_layer(backbone_name)
    except ValueError:
        raise ValueError(
            f"{path}: the saved model {model.name!r} has no sub-model {backbone_name!r}; "
            f"was it trained as an S2 regressor?"
        ) from None
    freeze(backbone)
    return backbone


def freeze(layer):
    """Makes `layer` and every layer inside it non-trainable.

    Not `layer.trainable = False` alone: under the TensorFlow backend that assignment is skipped when
    the value does not change, and a layer deserialized with `trainable=False` (a frozen KoBERT inside
    a saved valence regressor) holds sublayers built afterwards that are still trainable, so they
    would be fine-tuned in stage 3.
    """
    for sub in layer._flatten_layers(include_self=True, recursive=True):
        keras.layers.Layer.trainable.fset(sub, False)
