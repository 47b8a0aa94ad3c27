"""Heads: what turns a backbone's features into a model's outputs, and the model around them.

Every classifier's output is float32 `logits` `[B, num_classes]` (a Dense layer named `logits`); a
regressor's output is float32 `[B, 1]` under its target's name (Contract 2).

Example:

```python
features = audio_backbone(inputs)                               # [B, D]
logits = dense_head(features, num_classes=4, hidden=64, dropout=0.2)
model = classifier(inputs, logits, name="my_model")            # outputs {"logits": ...}
```
"""

from __future__ import annotations

import keras
from keras import layers

from tfsent.models.layers import (
    ChannelAttentionPooling,
    LayerwiseStatisticsPooling,
    MaskedRNN,
    SoftmaxWeightedSum,
)

# === Classification heads ===


def logits_layer(x, num_classes):
    """The float32 `logits` Dense every classifier ends with."""
    return layers.Dense(num_classes, dtype="float32", name="logits")(x)


def dropout_head(x, num_classes, dropout, name="dropout"):
    """Dropout → logits."""
    return logits_layer(layers.Dropout(dropout, name=name)(x), num_classes)


def dense_head(x, *, num_classes, hidden, dropout, name="head"):
    """Dropout → Dense(hidden, relu) → logits (the design card's head)."""
    x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    x = layers.Dense(hidden, activation="relu", name=f"{name}_hidden")(x)
    return logits_layer(x, num_classes)


def nn_classifier_head(x, *, num_classes, filters=128, kernel_size=3, dropout=0.1, name="head"):
    """Seed 000's `NN_Classifier` on a `[B, D]` vector; returns float32 logits `[B, num_classes]`.

    The vector is one channel of length `D`: 3 × Conv1D(filters, kernel, valid, tanh) → MaxPool(2) →
    `ChannelAttentionPooling` over the `filters` channels → Dropout → Dense. For `D=4096`, 7 classes:
    4,299,510 parameters.
    """
    h = layers.Reshape((-1, 1), name=f"{name}_as_channel")(x)
    for i in range(3):
        h = layers.Conv1D(filters, kernel_size, activation="tanh", name=f"{name}_conv_{i}")(h)
    h = layers.MaxPooling1D(2, 2, name=f"{name}_pool")(h)
    h = ChannelAttentionPooling(name=f"{name}_attention")(h)
    return dropout_head(h, num_classes, dropout, name=f"{name}_dropout")


def layer_statistics_head(hidden_states, frame_mask, *, num_classes, dropout):
    """The wav2vec2 classifier head: masked mean+std of every layer's states `[B, N, T, D]` →
    softmax-weighted layer sum → Dropout → logits."""
    pooled = LayerwiseStatisticsPooling(name="mean_std_pooling")(hidden_states, frame_mask)
    x = SoftmaxWeightedSum(name="layer_weighted_sum")(pooled)
    return dropout_head(x, num_classes, dropout, name="head_dropout")


def recurrent_head(x, mask, *, cell, units, num_layers, dropout, name):
    """`num_layers` masked recurrent layers (dropout between them) → state after the last real step."""
    rnn_cls = {"gru": layers.GRU, "lstm": layers.LSTM}[cell]
    for i in range(num_layers):
        last = i == num_layers - 1
        x = MaskedRNN(rnn_cls(units, return_sequences=not last), name=f"{name}_{cell}_{i}")(x, mask)
        if not last:
            x = layers.Dropout(dropout, name=f"{name}_{cell}_dropout_{i}")(x)
    return x


# === Functional Model ===


def classifier(inputs, logits, name, modality_logits=None):
    """The functional classifier `inputs → {"logits": logits}` (+ `modality_logits`, the auxiliary
    per-modality outputs `{"audio_logits": ..., "text_logits": ...}` of a fusion model)."""
    return keras.Model(inputs, {"logits": logits, **(modality_logits or {})}, name=name)


def modality_heads(branches, num_classes):
    """One linear float32 classifier per modality embedding: `{modality: [B, D]}` →
    `{"<modality>_logits": [B, num_classes]}` (the auxiliary heads a fusion model trains each branch
    with, so a branch that learns slower is not left untrained by the fused head)."""
    return {f"{m}_logits": layers.Dense(num_classes, dtype="float32", name=f"{m}_logits")(x)
            for m, x in branches.items()}


def branch_classifier(branch, feed, *, num_classes, hidden, dropout, name):
    """A nested single-modality `branch` on `feed` → `dense_head` (the design card's baselines)."""
    logits = dense_head(branch(feed), num_classes=num_classes, hidden=hidden, dropout=dropout)
    return classifier(feed, logits, name)


def recurrent_regressor(backbone, inputs, mask, *, gru_units, gru_layers, gru_dropout, target, name):
    """`backbone` (a nested model taking `inputs`) → GRU head → Dense(1) named `target`.

    The valence/arousal regressors: the backbone's sequence, masked by `mask`, runs through `gru_layers` GRUs;
    the state after the last real step is regressed to one float32 value.
    """
    x = recurrent_head(backbone(inputs), mask, cell="gru", units=gru_units, num_layers=gru_layers,
                       dropout=gru_dropout, name="head")
    out = layers.Dense(1, dtype="float32", name=target)(x)
    return keras.Model(inputs, {target: out}, name=name)
