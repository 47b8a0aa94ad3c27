"""Seed 001 (BOAZ): ResNet on log-Mel, Conv1D fusion of log-Mel means and sentence embeddings, text
fine-tuning classifier. The stacking meta-learner lives in `tfsent.models.stacking`.

Registered models:

- `resnet_mel`: a ResNet (basic blocks) over the log-Mel image, padding-masked end to end.
- `conv1d_fusion`: standardized [13-band log-Mel mean ‖ sentence embedding] → Conv1D(256, 5, same,
  relu) → Dropout(0.2) → Flatten → Dense(32, relu) → Dense(classes). The standardization is a Keras
  `Normalization` layer; call `adapt_normalization(model, train_dataset)` before training.
- `text_finetune_classifier`: a pretrained transformer backbone ([CLS] or pooled output) → Dropout →
  Dense, fine-tuned end to end (seed recipe: AdamW 2e-5, warmup + cosine, batch 16).

Example:

```python
model = registry.build("resnet_mel", num_classes=4, feature_dim=128)
model({"audio_features": x, "audio_mask": m})["logits"]
```
"""

from __future__ import annotations

import keras
import numpy as np
from absl import logging
from keras import layers

from tfsent.models import registry
from tfsent.models.layers import (
    ApplyTimeMask,
    DownsampleMask,
    LearnedPositionEmbedding,
    MaskedGlobalAveragePooling1D,
    MeanOverAxis,
    text_backbone_model,
    text_sequence_output,
)

# === Functional Model ===


def _conv_bn(x, mask, filters, kernel, stride, name, relu=True):
    """Explicitly padded conv (frame i centred on input frame i*stride whatever T) + BN (+ ReLU)."""
    pad = kernel // 2
    if pad:
        x = layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
    x = layers.Conv2D(filters, kernel, strides=stride, use_bias=False, name=f"{name}_conv")(x)
    if stride > 1:
        mask = DownsampleMask(stride, name=f"{name}_mask")(mask)
    x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=f"{name}_bn")(x)
    if relu:
        x = layers.Activation("relu", name=f"{name}_relu")(x)
    return ApplyTimeMask(name=f"{name}_zero_padding")(x, mask), mask


def _basic_block(x, mask, filters, stride, name):
    shortcut, short_mask = x, mask
    y, mask = _conv_bn(x, mask, filters, 3, stride, f"{name}_a")
    y, mask = _conv_bn(y, mask, filters, 3, 1, f"{name}_b", relu=False)
    if stride > 1 or x.shape[-1] != filters:
        shortcut, short_mask = _conv_bn(shortcut, short_mask, filters, 1, stride, f"{name}_proj", relu=False)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    y = layers.Activation("relu", name=f"{name}_relu")(y)
    return y, mask


@registry.register(
    "resnet_mel",
    modality="audio",
    seed="S1 (seed 001)",
    description="ResNet (basic blocks, ResNet-18 layout by default) over the log-Mel image "
    "(n_fft 400, hop 160, 128 bands), padding re-zeroed after every conv, masked pooling",
)
def resnet_mel(
    *,
    num_classes,
    feature_dim=128,
    feature_channels=1,
    widths=(64, 128, 256, 512),
    blocks_per_stage=(2, 2, 2, 2),
    stem_kernel=7,
    dropout=0.0,
):
    """ResNet over `audio_features` `[B, T, F]` (or `[B, T, F, C]`) with `audio_mask`.

    Strided convolutions are explicitly padded and the time mask is downsampled with them; padded
    frames are zeroed after every convolution, so a clip's logits do not depend on its batch (in
    inference mode; BatchNorm batch statistics during training include zeroed padding frames).
    """
    if len(widths) != len(blocks_per_stage):
        raise ValueError(f"widths {widths} and blocks_per_stage {blocks_per_stage} differ in length")
    if feature_channels > 1:
        features = keras.Input((None, feature_dim, feature_channels), name="audio_features")
        x = features
    else:
        features = keras.Input((None, feature_dim), name="audio_features")
        x = layers.Reshape((-1, feature_dim, 1), name="add_channel")(features)
    mask = keras.Input((None,), dtype="int32", name="audio_mask")
    inputs = {"audio_features": features, "audio_mask": mask}
    x = ApplyTimeMask(name="zero_padding_input")(x, mask)
    x, m = _conv_bn(x, mask, widths[0], stem_kernel, 2, "stem")
    x = layers.ZeroPadding2D(1, name="stem_pool_pad")(x)  # post-ReLU values ≥ 0: zero = -inf here
    x = layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)
    m = DownsampleMask(2, name="stem_pool_mask")(m)
    x = ApplyTimeMask(name="stem_pool_zero_padding")(x, m)
    for s, (width, blocks) in enumerate(zip(widths, blocks_per_stage)):
        for b in range(blocks):
            stride = 2 if (b == 0 and s > 0) else 1
            x, m = _basic_block(x, m, width, stride, f"stage{s}_block{b}")
            x = ApplyTimeMask(name=f"stage{s}_block{b}_zero_padding")(x, m)
    x = MeanOverAxis(2, name="mean_over_frequency")(x)
    x = MaskedGlobalAveragePooling1D(name="time_pool")(x, m)
    x = layers.Dropout(dropout, name="dropout")(x)
    logits = layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, {"logits": logits}, name="resnet_mel")


def _sentence_embedding(text_encoder, token_ids, padding_mask, pooling, vocab_size, hidden_dim):
    if text_encoder is not None:
        backbone = text_backbone_model(text_encoder)
        if pooling == "pooled":
            return backbone, text_sequence_output(backbone, token_ids, padding_mask, "pooled_output")
        seq = text_sequence_output(backbone, token_ids, padding_mask)
    else:
        if not vocab_size:
            raise ValueError("a text model needs --text_encoder or a vocabulary (vocab_size)")
        logging.warning("no --text_encoder: using a trainable embedding as the sentence encoder")
        backbone = None
        seq = layers.Embedding(vocab_size, hidden_dim, name="token_embedding")(token_ids)
        seq = LearnedPositionEmbedding(512, name="position_embedding")(seq)
    if pooling == "cls":
        from tfsent.models.s0 import SelectPosition

        return backbone, SelectPosition(0, name="cls_token")(seq)
    if pooling == "mean":
        return backbone, MaskedGlobalAveragePooling1D(name="mean_tokens")(seq, padding_mask)
    raise ValueError(f"pooling must be cls, mean or pooled, got {pooling!r}")


@registry.register(
    "conv1d_fusion",
    modality="multimodal",
    seed="S1 (seed 001)",
    description="standardized [13-band log-Mel mean ‖ frozen sentence embedding] → Conv1D(256, k=5) "
    "→ Dropout(0.2) → Dense(32, relu) → Dense; statistics from the training split",
)
def conv1d_fusion(
    *,
    num_classes,
    feature_dim=13,
    text_encoder=None,
    vocab_size=None,
    pooling="cls",
    hidden_dim=64,
    filters=256,
    kernel_size=5,
    dropout=0.2,
    dense_units=32,
    freeze_text_encoder=True,
):
    """Seed 001's fusion model. Inputs `audio_features` `[B, T, 13]` (log-Mel, the per-clip mean is
    taken in the model over real frames) + `audio_mask`, and `token_ids` + `padding_mask` for the
    sentence encoder (`text_encoder`, frozen as in the seed, which embedded sentences offline;
    without one a trainable `hidden_dim` embedding stands in). Call `adapt_normalization` with the
    training split before training so the `standardize` layer holds train-only statistics."""
    features = keras.Input((None, feature_dim), name="audio_features")
    audio_mask = keras.Input((None,), dtype="int32", name="audio_mask")
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    padding_mask = keras.Input((None,), dtype="int32", name="padding_mask")
    mel_mean = MaskedGlobalAveragePooling1D(name="log_mel_mean")(features, audio_mask)
    backbone, sentence = _sentence_embedding(
        text_encoder, token_ids, padding_mask, pooling, vocab_size, hidden_dim
    )
    if backbone is not None and freeze_text_encoder:
        backbone.trainable = False
    fused = layers.Concatenate(name="fusion")([mel_mean, sentence])
    x = layers.Normalization(axis=-1, name="standardize")(fused)
    x = layers.Reshape((-1, 1), name="as_sequence")(x)
    x = layers.Conv1D(filters, kernel_size, padding="same", activation="relu", name="conv")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, activation="relu", name="dense")(x)
    logits = layers.Dense(num_classes, dtype="float32", name="logits")(x)
    inputs = {
        "audio_features": features,
        "audio_mask": audio_mask,
        "token_ids": token_ids,
        "padding_mask": padding_mask,
    }
    return keras.Model(inputs, {"logits": logits}, name="conv1d_fusion")


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


@registry.register(
    "text_finetune_classifier",
    modality="text",
    seed="S1 (seed 001), S3 (seed 003)",
    description="pretrained transformer text backbone (--text_encoder) [CLS]/pooled output → "
    "Dropout → Dense, fine-tuned end to end (AdamW, warmup + cosine)",
)
def text_finetune_classifier(
    *,
    num_classes,
    text_encoder=None,
    vocab_size=None,
    pooling="cls",
    hidden_dim=64,
    dropout=0.1,
):
    """A backbone from `tfsent.encoders` + a classification head; `pooling` is `cls` (sequence
    position 0), `pooled` (the backbone's pooler output) or `mean` (masked mean of the tokens)."""
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    padding_mask = keras.Input((None,), dtype="int32", name="padding_mask")
    _, x = _sentence_embedding(text_encoder, token_ids, padding_mask, pooling, vocab_size, hidden_dim)
    x = layers.Dropout(dropout, name="dropout")(x)
    logits = layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(
        {"token_ids": token_ids, "padding_mask": padding_mask},
        {"logits": logits},
        name="text_finetune_classifier",
    )
