"""The design card's models: a Conv1D-on-log-Mel audio branch, a small text branch, and their fusion.

These are the models `bin/demo` trains. Each branch is its own functional model so the fusion model is
literally the two branches plus a head, and the audio-only / text-only baselines are the same branches
with a classifier head: the three numbers `bin/demo` prints compare like with like.

Example:

```python
from tfsent.models import registry

model = registry.build("demo_fusion", num_classes=4, feature_dim=64, vocab_size=2000)
outputs = model({"audio_features": feats, "audio_mask": frame_mask,
                 "token_ids": ids, "padding_mask": token_mask})
outputs["logits"]  # [B, 4]
```
"""

from __future__ import annotations

import keras
from keras import layers

from tfsent.models import registry
from tfsent.models.layers import MaskedGlobalAveragePooling1D, MaskedGlobalMaxPooling1D


def _masked_mean_max(x, mask, name):
    mean = MaskedGlobalAveragePooling1D(name=f"{name}_mean_pool")(x, mask)
    peak = MaskedGlobalMaxPooling1D(name=f"{name}_max_pool")(x, mask)
    return layers.Concatenate(name=f"{name}_pooled")([mean, peak])


def audio_branch(
    *,
    feature_dim: int,
    filters: int = 96,
    kernel_size: int = 5,
    num_layers: int = 3,
    dropout: float = 0.1,
    name: str = "audio_branch",
) -> keras.Model:
    """Conv1D stack over log-Mel frames (time = sequence axis, Mel bands = channels) + masked pooling.

    Inputs `audio_features` float32 [B, T, F] and `audio_mask` int32 [B, T]; output [B, 2*filters]
    (masked mean ‖ masked max over real frames). Padding frames are zeroed before every convolution so
    a clip's output does not depend on how much padding its batch added ("same" padding would otherwise
    let zeros and neighbour frames leak in at the clip's end).
    """
    features = keras.Input(shape=(None, feature_dim), name="audio_features")
    mask = keras.Input(shape=(None,), dtype="int32", name="audio_mask")
    mask_f = layers.Reshape((-1, 1), name=f"{name}_mask_channel")(
        layers.Identity(dtype="float32", name=f"{name}_mask_float")(mask)
    )
    # log-Mel in dB (ref=max, top_db 80) lies in [-80, 0]: a fixed affine map keeps the spectral
    # level differences a per-frame normalisation would erase.
    x = layers.Rescaling(1.0 / 40.0, offset=1.0, name=f"{name}_input_scale")(features)
    for i in range(num_layers):
        x = layers.Multiply(name=f"{name}_zero_pad_{i}")([x, mask_f])
        # Dilations 1, 2, 4, ... widen the receptive field to syllable scale (rate, pitch contour).
        x = layers.Conv1D(filters, kernel_size, padding="same", dilation_rate=2**i, name=f"{name}_conv_{i}")(x)
        # LayerNorm, not BatchNorm: a clip's output must not depend on its batch (padding, neighbours,
        # replicas), in training as in serving.
        x = layers.LayerNormalization(name=f"{name}_norm_{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu_{i}")(x)
        x = layers.SpatialDropout1D(dropout, name=f"{name}_dropout_{i}")(x)
    x = _masked_mean_max(x, mask, name)
    return keras.Model({"audio_features": features, "audio_mask": mask}, x, name=name)


def text_branch(
    *,
    vocab_size: int,
    embedding_dim: int = 96,
    filters: int = 96,
    kernel_size: int = 3,
    dropout: float = 0.1,
    name: str = "text_branch",
) -> keras.Model:
    """Token embedding + one Conv1D + masked pooling: a small text encoder for the demo vocabulary.

    Inputs `token_ids`, `padding_mask` int32 [B, L]; output [B, 2*filters].
    """
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
    mask_f = layers.Reshape((-1, 1), name=f"{name}_mask_channel")(
        layers.Identity(dtype="float32", name=f"{name}_mask_float")(padding_mask)
    )
    x = layers.Embedding(vocab_size, embedding_dim, name=f"{name}_embedding")(token_ids)
    x = layers.Dropout(dropout, name=f"{name}_embedding_dropout")(x)
    x = layers.Multiply(name=f"{name}_zero_pad")([x, mask_f])
    x = layers.Conv1D(filters, kernel_size, padding="same", activation="relu", name=f"{name}_conv")(x)
    x = _masked_mean_max(x, padding_mask, name)
    return keras.Model({"token_ids": token_ids, "padding_mask": padding_mask}, x, name=name)


def _audio_inputs(feature_dim):
    return {
        "audio_features": keras.Input(shape=(None, feature_dim), name="audio_features"),
        "audio_mask": keras.Input(shape=(None,), dtype="int32", name="audio_mask"),
    }


def _text_inputs():
    return {
        "token_ids": keras.Input(shape=(None,), dtype="int32", name="token_ids"),
        "padding_mask": keras.Input(shape=(None,), dtype="int32", name="padding_mask"),
    }


def _classifier_head(x, num_classes, hidden, dropout, name="head"):
    x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    x = layers.Dense(hidden, activation="relu", name=f"{name}_hidden")(x)
    return layers.Dense(num_classes, dtype="float32", name="logits")(x)


# === Functional Models ===


@registry.register(
    "conv1d_mel",
    modality="audio",
    seed="design card",
    description="Conv1D stack over log-Mel frames (Mel bands as channels), masked mean+max pooling, Dense",
)
def conv1d_mel(*, num_classes, feature_dim, filters=96, num_layers=3, hidden=64, dropout=0.2,
               branch_dropout=0.1):
    audio = audio_branch(feature_dim=feature_dim, filters=filters, num_layers=num_layers,
                         dropout=branch_dropout)
    inputs = _audio_inputs(feature_dim)
    logits = _classifier_head(audio(inputs), num_classes, hidden, dropout)
    return keras.Model(inputs, {"logits": logits}, name="conv1d_mel")


@registry.register(
    "text_cnn",
    modality="text",
    seed="design card",
    description="Token embedding + Conv1D + masked mean+max pooling, Dense (the demo's text branch alone)",
)
def text_cnn(*, num_classes, vocab_size, embedding_dim=96, filters=96, hidden=64, dropout=0.2,
             branch_dropout=0.1):
    text = text_branch(vocab_size=vocab_size, embedding_dim=embedding_dim, filters=filters,
                       dropout=branch_dropout)
    inputs = _text_inputs()
    logits = _classifier_head(text(inputs), num_classes, hidden, dropout)
    return keras.Model(inputs, {"logits": logits}, name="text_cnn")


@registry.register(
    "demo_fusion",
    modality="multimodal",
    seed="design card",
    description="Flagship demo: conv1d_mel audio branch ‖ text_cnn text branch → Dense fusion head",
)
def demo_fusion(
    *,
    num_classes,
    feature_dim,
    vocab_size,
    filters=96,
    num_layers=3,
    embedding_dim=96,
    hidden=64,
    dropout=0.2,
    branch_dropout=0.1,
    modality_dropout=0.3,
):
    """Late fusion of the two branches. `modality_dropout` zeroes one whole branch's embedding for a
    random fraction of training examples, so the head learns to cope with a missing modality (the
    exported model accepts an empty text or zero-length audio)."""
    audio = audio_branch(feature_dim=feature_dim, filters=filters, num_layers=num_layers,
                         dropout=branch_dropout)
    text = text_branch(vocab_size=vocab_size, embedding_dim=embedding_dim, filters=filters,
                       dropout=branch_dropout)
    audio_inputs, text_inputs = _audio_inputs(feature_dim), _text_inputs()
    inputs = {**audio_inputs, **text_inputs}
    a = audio(audio_inputs)
    t = text(text_inputs)
    a = layers.Dropout(modality_dropout, noise_shape=(None, 1), name="audio_modality_dropout")(a)
    t = layers.Dropout(modality_dropout, noise_shape=(None, 1), name="text_modality_dropout")(t)
    x = layers.Concatenate(name="fusion")([a, t])
    logits = _classifier_head(x, num_classes, hidden, dropout)
    return keras.Model(inputs, {"logits": logits}, name="demo_fusion")
