"""Contract 2's model input names, defined once, and the `keras.Input`s that carry them.

Every model takes a subset of these named inputs; the pipeline builds exactly the inputs a model's
`model.inputs` name and the exporter feeds the same names (ARCHITECTURE.md, Contract 2).

| name | dtype, shape |
|---|---|
| `audio_features` | float32 `[B, T, F]` or `[B, T, F, C]` |
| `audio_mask` | int32 `[B, T]` |
| `waveform` | float32 `[B, S]` |
| `waveform_mask` | int32 `[B, S]` |
| `token_ids` | int32 `[B, L]` |
| `padding_mask` | int32 `[B, L]` |

Masks are int32, never bool (bool tensors break distributed datasets on logical CPU devices).

Example:

```python
from tfsent.core import inputs

x = inputs.audio_inputs(feature_dim=64)          # {"audio_features": ..., "audio_mask": ...}
t = inputs.text_inputs()                          # {"token_ids": ..., "padding_mask": ...}
model = keras.Model({**x, **t}, {"logits": ...})
inputs.input_names(model)                         # ("audio_features", "audio_mask", "token_ids", ...)
```
"""

from __future__ import annotations

AUDIO_FEATURES = "audio_features"
AUDIO_MASK = "audio_mask"
WAVEFORM = "waveform"
WAVEFORM_MASK = "waveform_mask"
TOKEN_IDS = "token_ids"
PADDING_MASK = "padding_mask"

AUDIO_INPUTS = (AUDIO_FEATURES, AUDIO_MASK, WAVEFORM, WAVEFORM_MASK)
TEXT_INPUTS = (TOKEN_IDS, PADDING_MASK)
ALL_INPUTS = AUDIO_INPUTS + TEXT_INPUTS

# The shortest audio any command accepts (prepare rejects, training and evaluation skip, serving and
# bin/predict refuse): 0.1 s. Shorter clips hold no emotion; a model would still answer confidently.
MIN_AUDIO_SECONDS = 0.1
SAMPLE_RATE = 16000
MIN_AUDIO_SAMPLES = int(MIN_AUDIO_SECONDS * SAMPLE_RATE)


def audio_inputs(feature_dim, feature_channels=1, shape=None) -> dict:
    """`{"audio_features": [B, T, F(, C)] float32, "audio_mask": [B, T] int32}` Keras inputs.

    Args:
        feature_dim: F.
        feature_channels: C; 1 gives rank-3 features `[B, T, F]`.
        shape: the features' full per-example shape instead (e.g. another model's input shape).
    """
    import keras

    if shape is None:
        shape = (None, feature_dim) if feature_channels in (None, 1) else (None, feature_dim, feature_channels)
    return {
        AUDIO_FEATURES: keras.Input(tuple(shape), dtype="float32", name=AUDIO_FEATURES),
        AUDIO_MASK: keras.Input((None,), dtype="int32", name=AUDIO_MASK),
    }


def waveform_inputs() -> dict:
    """`{"waveform": [B, S] float32, "waveform_mask": [B, S] int32}` Keras inputs."""
    import keras

    return {
        WAVEFORM: keras.Input((None,), dtype="float32", name=WAVEFORM),
        WAVEFORM_MASK: keras.Input((None,), dtype="int32", name=WAVEFORM_MASK),
    }


def text_inputs() -> dict:
    """`{"token_ids": [B, L] int32, "padding_mask": [B, L] int32}` Keras inputs."""
    import keras

    return {
        TOKEN_IDS: keras.Input((None,), dtype="int32", name=TOKEN_IDS),
        PADDING_MASK: keras.Input((None,), dtype="int32", name=PADDING_MASK),
    }


def input_names(model) -> tuple:
    """The Contract-2 input names a built Keras model takes (dict- or list-input functional models)."""
    if isinstance(model.input, dict):
        return tuple(model.input.keys())
    return tuple(t.name.split(":")[0] for t in model.inputs)


def takes_audio(names) -> bool:
    return any(n in AUDIO_INPUTS for n in names)


def takes_text(names) -> bool:
    return any(n in TEXT_INPUTS for n in names)
