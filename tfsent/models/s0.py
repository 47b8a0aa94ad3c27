"""Seed 000: Macaron text classifier with the NN_Classifier head, MFCC fusion, wav2vec2 classifier.

Registered models:

- `macaron_text`: Macaron transformer encoder over a 4096-token corpus WordPiece vocabulary, the [CLS]
  position projected to 4096 and classified by the seed's `NN_Classifier` head. Unlike the seed, the
  padding mask is honoured.
- `mfcc_fusion`: per-clip MFCC means → Dense(128, relu) concatenated with a small Macaron text
  encoder's [CLS] projection → the same head.
- `w2v2_classifier`: a wav2vec 2.0-style encoder (feature encoder, convolutional positional
  embedding, `num_layers` transformer layers; the seed keeps 3) → masked mean+std pooling of every
  hidden state → softmax-weighted layer sum → dropout 0.2 → Dense.

Example:

```python
from tfsent.models import registry

model = registry.build("macaron_text", num_classes=7, vocab_size=4096, sequence_length=32)
model({"token_ids": ids, "padding_mask": mask})["logits"]  # [B, 7]
```
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops

# A w2v2_classifier trained on a pretrained checkpoint (--audio_encoder) holds tfsent.encoders layers;
# importing them here registers them before bin/evaluate, bin/export or a resumed run loads model.keras
# (the loaders import every model module through the registry).
import tfsent.encoders.audio  # noqa: F401
from tfsent.models import registry
from tfsent.models.layers import (
    ApplyTimeMask,
    ConvFrameMask,
    LearnedPositionEmbedding,
    MaskedGlobalAveragePooling1D,
    TransformerEncoderBlock,
)

# === Layers ===


@keras.saving.register_keras_serializable(package="tfsent")
class ChannelAttentionPooling(layers.Layer):
    """The NN_Classifier attention: weights the channels of `[B, L, C]` and sums them to `[B, L]`.

    Each channel's length-`L` profile `x_c` gets the score `V · tanh(W x_c + b) + c` (`W` is `L×L`,
    `V` is `L→1`), the scores are softmax-normalised over the `C` channels, and the output is the
    weighted sum of the channel profiles. Parameters: `L² + 2L + 1 + L` (4,188,161 for `L=2045`).

    Example:
    >>> ChannelAttentionPooling()(x)  # x [B, 2045, 128] -> [B, 2045]
    """

    def build(self, input_shape):
        length = input_shape[1]
        if length is None:
            raise ValueError(f"{self.name}: the sequence length must be static, got {input_shape}")
        self.w = layers.Dense(length, activation="tanh", dtype=self.dtype_policy, name="w")
        self.w.build((None, None, length))
        self.v = layers.Dense(1, dtype=self.dtype_policy, name="v")
        self.v.build((None, None, length))
        self.built = True

    def call(self, inputs):
        channels_first = ops.transpose(inputs, (0, 2, 1))  # [B, C, L]
        scores = self.v(self.w(channels_first))  # [B, C, 1]
        weights = ops.softmax(scores, axis=1)
        return ops.sum(channels_first * weights, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1])


@keras.saving.register_keras_serializable(package="tfsent")
class SelectPosition(layers.Layer):
    """`[B, T, D]` → `[B, D]`, the step at `index` (0 = the [CLS] position).

    Args:
        index: the time step to select.
    """

    def __init__(self, index=0, **kwargs):
        super().__init__(**kwargs)
        self.index = int(index)

    def call(self, inputs):
        return inputs[:, self.index]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "index": self.index}


@keras.saving.register_keras_serializable(package="tfsent")
class MacaronAttention(layers.Layer):
    """Multi-head self-attention with gated values and learned memory key/values (x-transformers style).

    `out = W_o( attention(q, [mem_k; k], [mem_v; v]) * sigmoid(W_g x) )`; the memory slots are always
    visible, padded keys never are.

    Args:
        num_heads: attention heads.
        head_dim: width of each head (64 in seed 000; `num_heads * head_dim` is the inner width).
        num_memory_kv: learned memory key/value slots per head (16 in seed 000; 0 disables).
        gate_values: multiply the attended values by a sigmoid gate computed from the input.
        dropout: dropout on the attention weights.

    Call arguments:
        inputs: `[B, T, D]`; padding_mask: int32 `[B, T]`.
    """

    def __init__(
        self, num_heads=8, head_dim=64, num_memory_kv=16, gate_values=True, dropout=0.0, **kwargs
    ):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.head_dim = int(head_dim)
        self.num_memory_kv = int(num_memory_kv)
        self.gate_values = bool(gate_values)
        self.dropout = float(dropout)

    def build(self, inputs_shape, padding_mask_shape=None):
        dim = inputs_shape[-1]
        inner = self.num_heads * self.head_dim
        dense = dict(dtype=self.dtype_policy)
        self.to_q = layers.Dense(inner, use_bias=False, name="to_q", **dense)
        self.to_k = layers.Dense(inner, use_bias=False, name="to_k", **dense)
        self.to_v = layers.Dense(inner, use_bias=False, name="to_v", **dense)
        for d in (self.to_q, self.to_k, self.to_v):
            d.build(inputs_shape)
        if self.gate_values:
            self.to_v_gate = layers.Dense(inner, name="to_v_gate", **dense)
            self.to_v_gate.build(inputs_shape)
        self.to_out = layers.Dense(dim, name="to_out", **dense)
        self.to_out.build(tuple(inputs_shape[:-1]) + (inner,))
        if self.num_memory_kv:
            shape = (self.num_heads, self.num_memory_kv, self.head_dim)
            init = keras.initializers.RandomNormal(stddev=1.0)
            self.memory_k = self.add_weight(name="memory_k", shape=shape, initializer=init)
            self.memory_v = self.add_weight(name="memory_v", shape=shape, initializer=init)
        self.attention_dropout = layers.Dropout(self.dropout)
        self.built = True

    def _split_heads(self, x):
        b, t = ops.shape(x)[0], ops.shape(x)[1]
        return ops.transpose(ops.reshape(x, (b, t, self.num_heads, self.head_dim)), (0, 2, 1, 3))

    def call(self, inputs, padding_mask=None, training=None):
        b, t = ops.shape(inputs)[0], ops.shape(inputs)[1]
        q = self._split_heads(self.to_q(inputs))
        k = self._split_heads(self.to_k(inputs))
        v = self._split_heads(self.to_v(inputs))
        if padding_mask is None:
            padding_mask = ops.ones((b, t), dtype="int32")
        key_mask = ops.cast(padding_mask, "bool")
        if self.num_memory_kv:
            # tuple(): under a distribution strategy `.shape` can be a TensorShape, which cannot
            # take the symbolic batch size `b` as a dimension.
            mem_k = ops.broadcast_to(ops.cast(self.memory_k, k.dtype)[None], (b,) + tuple(self.memory_k.shape))
            mem_v = ops.broadcast_to(ops.cast(self.memory_v, v.dtype)[None], (b,) + tuple(self.memory_v.shape))
            k = ops.concatenate([mem_k, k], axis=2)
            v = ops.concatenate([mem_v, v], axis=2)
            key_mask = ops.concatenate(
                [ops.ones((b, self.num_memory_kv), dtype="bool"), key_mask], axis=1
            )
        scores = ops.einsum("bhqd,bhkd->bhqk", q, k) / ops.cast(math.sqrt(self.head_dim), q.dtype)
        lowest = ops.cast(-1e9 if scores.dtype == "float32" else -3e4, scores.dtype)
        scores = ops.where(key_mask[:, None, None, :], scores, lowest)
        weights = self.attention_dropout(ops.softmax(scores, axis=-1), training=training)
        out = ops.einsum("bhqk,bhkd->bhqd", weights, v)
        out = ops.reshape(ops.transpose(out, (0, 2, 1, 3)), (b, t, self.num_heads * self.head_dim))
        if self.gate_values:
            out = out * ops.sigmoid(self.to_v_gate(inputs))
        return self.to_out(out)

    def compute_output_shape(self, inputs_shape, padding_mask_shape=None):
        return inputs_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "head_dim": self.head_dim,
            "num_memory_kv": self.num_memory_kv,
            "gate_values": self.gate_values,
            "dropout": self.dropout,
        }


@keras.saving.register_keras_serializable(package="tfsent")
class MacaronBlock(layers.Layer):
    """One Macaron block: pre-norm ½·FF → pre-norm attention → pre-norm ½·FF (three residual sub-layers).

    Args:
        num_heads, head_dim, num_memory_kv, gate_values: see `MacaronAttention`.
        intermediate_dim: feed-forward hidden width (2048 in seed 000).
        dropout: dropout in the feed-forward networks and on attention weights.
        activation: feed-forward activation (GELU as in x-transformers).

    Example:
    >>> y = MacaronBlock(num_heads=8, intermediate_dim=2048)(x, padding_mask)
    """

    def __init__(
        self,
        num_heads=8,
        head_dim=64,
        intermediate_dim=2048,
        num_memory_kv=16,
        gate_values=True,
        dropout=0.0,
        activation="gelu",
        layer_norm_epsilon=1e-5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.head_dim = int(head_dim)
        self.intermediate_dim = int(intermediate_dim)
        self.num_memory_kv = int(num_memory_kv)
        self.gate_values = bool(gate_values)
        self.dropout = float(dropout)
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon

    def build(self, inputs_shape, padding_mask_shape=None):
        dim = inputs_shape[-1]
        p = dict(dtype=self.dtype_policy)
        eps = self.layer_norm_epsilon
        self.norms = [layers.LayerNormalization(epsilon=eps, name=f"norm_{i}", **p) for i in range(3)]
        for n in self.norms:
            n.build(inputs_shape)
        self.ffn = []
        for i in range(2):
            inner = layers.Dense(self.intermediate_dim, activation=self.activation, name=f"ff{i}_inner", **p)
            outer = layers.Dense(dim, name=f"ff{i}_outer", **p)
            inner.build(inputs_shape)
            outer.build(tuple(inputs_shape[:-1]) + (self.intermediate_dim,))
            self.ffn.append((inner, outer))
        self.attention = MacaronAttention(
            num_heads=self.num_heads,
            head_dim=self.head_dim,
            num_memory_kv=self.num_memory_kv,
            gate_values=self.gate_values,
            dropout=self.dropout,
            name="attention",
            **p,
        )
        self.attention.build(inputs_shape)
        self.dropout_layer = layers.Dropout(self.dropout)
        self.built = True

    def _ff(self, i, x, training):
        inner, outer = self.ffn[i]
        y = self.dropout_layer(inner(x), training=training)
        return 0.5 * outer(y)

    def call(self, inputs, padding_mask=None, training=None):
        x = inputs + self._ff(0, self.norms[0](inputs), training)
        x = x + self.attention(self.norms[1](x), padding_mask, training=training)
        return x + self._ff(1, self.norms[2](x), training)

    def compute_output_shape(self, inputs_shape, padding_mask_shape=None):
        return inputs_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "head_dim": self.head_dim,
            "intermediate_dim": self.intermediate_dim,
            "num_memory_kv": self.num_memory_kv,
            "gate_values": self.gate_values,
            "dropout": self.dropout,
            "activation": self.activation,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }


@keras.saving.register_keras_serializable(package="tfsent")
class StackHiddenStates(layers.Layer):
    """Stacks a list of `[B, T, D]` hidden states into `[B, N, T, D]`."""

    def call(self, inputs):
        return ops.stack(inputs, axis=1)

    def compute_output_shape(self, input_shape):
        first = input_shape[0]
        return (first[0], len(input_shape)) + tuple(first[1:])


@keras.saving.register_keras_serializable(package="tfsent")
class LayerwiseStatisticsPooling(layers.Layer):
    """Masked mean ‖ std over time of every layer's hidden states: `[B, N, T, D]` → `[B, N, 2D]`.

    Args:
        epsilon: added to the variance before the square root.
    """

    def __init__(self, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, inputs, mask):
        m = ops.cast(mask, inputs.dtype)[:, None, :, None]  # [B, 1, T, 1]
        count = ops.maximum(ops.sum(m, axis=2), ops.cast(1.0, inputs.dtype))
        mean = ops.sum(inputs * m, axis=2) / count
        var = ops.sum(ops.square((inputs - mean[:, :, None]) * m), axis=2) / count
        return ops.concatenate([mean, ops.sqrt(var + self.epsilon)], axis=-1)

    def compute_output_shape(self, inputs_shape, mask_shape=None):
        return (inputs_shape[0], inputs_shape[1], 2 * inputs_shape[3])

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="tfsent")
class SoftmaxWeightedSum(layers.Layer):
    """Learned softmax-normalised weights over axis 1: `[B, N, D]` → `[B, D]` (layer-weighted sum)."""

    def build(self, input_shape):
        self.layer_weights = self.add_weight(
            name="layer_weights", shape=(input_shape[1],), initializer="zeros"
        )

    def call(self, inputs):
        w = ops.softmax(ops.cast(self.layer_weights, inputs.dtype))
        return ops.einsum("bnd,n->bd", inputs, w)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package="tfsent")
class MaskedInstanceNorm1D(layers.Layer):
    """Per-channel normalisation over the real frames of `[B, T, C]` (wav2vec2 "group" norm, masked).

    wav2vec2-base normalises its first convolution with `GroupNorm(512 groups, 512 channels)`, i.e.
    each channel over time; computed over padded frames that makes outputs depend on the padding, so
    here the statistics use the real frames only.
    """

    def __init__(self, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, inputs_shape, mask_shape=None):
        c = inputs_shape[-1]
        self.gamma = self.add_weight(name="gamma", shape=(c,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(c,), initializer="zeros")

    def call(self, inputs, mask):
        m = ops.cast(mask, inputs.dtype)[..., None]
        count = ops.maximum(ops.sum(m, axis=1, keepdims=True), ops.cast(1.0, inputs.dtype))
        mean = ops.sum(inputs * m, axis=1, keepdims=True) / count
        var = ops.sum(ops.square((inputs - mean) * m), axis=1, keepdims=True) / count
        return (inputs - mean) / ops.sqrt(var + self.epsilon) * self.gamma + self.beta

    def compute_output_shape(self, inputs_shape, mask_shape=None):
        return inputs_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


# Registered under its own name: tfsent.encoders.audio has a (differently configured)
# PositionalConvEmbedding too, and one registered name can only map to one class.
@keras.saving.register_keras_serializable(package="tfsent", name="RandomInitPositionalConvEmbedding")
class PositionalConvEmbedding(layers.Layer):
    """wav2vec2's convolutional relative position embedding: grouped Conv1D (even kernel) → GELU.

    Pads `kernel_size // 2` frames on both sides and drops the last output frame (as the reference
    does for even kernels), so the output has the input's length. The input's padded frames must be
    zero (see `ApplyTimeMask`).

    Args:
        kernel_size: 128 in wav2vec 2.0.
        groups: 16 in wav2vec 2.0.
    """

    def __init__(self, kernel_size=128, groups=16, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = int(kernel_size)
        self.groups = int(groups)

    def build(self, input_shape):
        dim = input_shape[-1]
        self.conv = layers.Conv1D(
            dim, self.kernel_size, groups=self.groups, dtype=self.dtype_policy, name="conv"
        )
        self.conv.build((None, None, dim))
        self.built = True

    def call(self, inputs):
        pad = self.kernel_size // 2
        y = self.conv(ops.pad(inputs, [[0, 0], [pad, pad], [0, 0]]))
        if self.kernel_size % 2 == 0:
            y = y[:, :-1]
        return keras.activations.gelu(y, approximate=False)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size, "groups": self.groups}


# === Functional Model ===


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
    h = layers.Dropout(dropout, name=f"{name}_dropout")(h)
    return layers.Dense(num_classes, dtype="float32", name="logits")(h)


def macaron_encoder(
    *,
    vocab_size=4096,
    sequence_length=64,
    hidden_dim=512,
    num_layers=6,
    num_heads=8,
    head_dim=64,
    intermediate_dim=2048,
    num_memory_kv=16,
    gate_values=True,
    dropout=0.0,
    name="macaron_encoder",
):
    """The seed-000 Macaron encoder as a functional backbone.

    Inputs `token_ids`, `padding_mask` int32 `[B, L]` (`L <= sequence_length`); output the final-norm
    sequence `[B, L, hidden_dim]`.
    """
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    padding_mask = keras.Input((None,), dtype="int32", name="padding_mask")
    x = layers.Embedding(
        vocab_size,
        hidden_dim,
        embeddings_initializer=keras.initializers.RandomNormal(stddev=0.02),
        name=f"{name}_token_embedding",
    )(token_ids)
    x = LearnedPositionEmbedding(sequence_length, name=f"{name}_position_embedding")(x)
    x = layers.Dropout(dropout, name=f"{name}_embedding_dropout")(x)
    for i in range(num_layers):
        x = MacaronBlock(
            num_heads=num_heads,
            head_dim=head_dim,
            intermediate_dim=intermediate_dim,
            num_memory_kv=num_memory_kv,
            gate_values=gate_values,
            dropout=dropout,
            name=f"{name}_block_{i}",
        )(x, padding_mask)
    x = layers.LayerNormalization(epsilon=1e-5, name=f"{name}_final_norm")(x)
    return keras.Model({"token_ids": token_ids, "padding_mask": padding_mask}, x, name=name)


@registry.register(
    "macaron_text",
    modality="text",
    seed="S0 (seed 000)",
    description="Macaron transformer encoder (6 FF-attention-FF blocks, gated values, 16 memory "
    "key/values) on a 4096-token corpus WordPiece, [CLS]→4096 projection, NN_Classifier head",
)
def macaron_text(
    *,
    num_classes,
    vocab_size=4096,
    sequence_length=64,
    hidden_dim=512,
    num_layers=6,
    num_heads=8,
    head_dim=64,
    intermediate_dim=2048,
    num_memory_kv=16,
    gate_values=True,
    dropout=0.0,
    output_dim=None,
    head_filters=128,
    head_dropout=0.1,
):
    """Seed 000's text classifier. `output_dim` (the [CLS] projection fed to the head) defaults to
    `vocab_size`, as in the seed (its encoder's language-model output layer, 512→4096)."""
    encoder = macaron_encoder(
        vocab_size=vocab_size,
        sequence_length=sequence_length,
        hidden_dim=hidden_dim,
        num_layers=num_layers,
        num_heads=num_heads,
        head_dim=head_dim,
        intermediate_dim=intermediate_dim,
        num_memory_kv=num_memory_kv,
        gate_values=gate_values,
        dropout=dropout,
    )
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    padding_mask = keras.Input((None,), dtype="int32", name="padding_mask")
    inputs = {"token_ids": token_ids, "padding_mask": padding_mask}
    sequence = encoder(inputs)
    cls = SelectPosition(0, name="cls_token")(sequence)
    cls = layers.Dense(output_dim or vocab_size, name="encoder_output_projection")(cls)
    logits = nn_classifier_head(
        cls, num_classes=num_classes, filters=head_filters, dropout=head_dropout
    )
    return keras.Model(inputs, {"logits": logits}, name="macaron_text")


@registry.register(
    "mfcc_fusion",
    modality="multimodal",
    seed="S0 (seed 000)",
    description="per-clip MFCC means → Dense(128, relu) ‖ small Macaron text encoder [CLS] "
    "projection → NN_Classifier head",
)
def mfcc_fusion(
    *,
    num_classes,
    feature_dim=13,
    vocab_size=4096,
    sequence_length=64,
    audio_units=128,
    text_hidden_dim=256,
    text_num_layers=2,
    text_num_heads=4,
    text_intermediate_dim=1024,
    text_num_memory_kv=16,
    text_output_dim=1024,
    dropout=0.0,
    head_filters=128,
    head_dropout=0.1,
):
    """Seed 000's multimodal model. Inputs `audio_features` `[B, T, n_mfcc]` + `audio_mask` (the
    per-clip mean over real frames is taken in the model) and `token_ids` + `padding_mask`. The text
    encoder's sizes are not given by the seed ("a small text encoder"); the defaults are ours."""
    features = keras.Input((None, feature_dim), name="audio_features")
    audio_mask = keras.Input((None,), dtype="int32", name="audio_mask")
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    padding_mask = keras.Input((None,), dtype="int32", name="padding_mask")
    mfcc_mean = MaskedGlobalAveragePooling1D(name="mfcc_mean")(features, audio_mask)
    audio = layers.Dense(audio_units, activation="relu", name="mfcc_dense")(mfcc_mean)
    encoder = macaron_encoder(
        vocab_size=vocab_size,
        sequence_length=sequence_length,
        hidden_dim=text_hidden_dim,
        num_layers=text_num_layers,
        num_heads=text_num_heads,
        head_dim=text_hidden_dim // text_num_heads,
        intermediate_dim=text_intermediate_dim,
        num_memory_kv=text_num_memory_kv,
        dropout=dropout,
        name="text_encoder",
    )
    sequence = encoder({"token_ids": token_ids, "padding_mask": padding_mask})
    text = SelectPosition(0, name="cls_token")(sequence)
    text = layers.Dense(text_output_dim, name="text_output_projection")(text)
    fused = layers.Concatenate(name="fusion")([audio, text])
    logits = nn_classifier_head(
        fused, num_classes=num_classes, filters=head_filters, dropout=head_dropout
    )
    inputs = {
        "audio_features": features,
        "audio_mask": audio_mask,
        "token_ids": token_ids,
        "padding_mask": padding_mask,
    }
    return keras.Model(inputs, {"logits": logits}, name="mfcc_fusion")


def wav2vec2_encoder(
    *,
    conv_dim=(512, 512, 512, 512, 512, 512, 512),
    conv_kernel=(10, 3, 3, 3, 3, 2, 2),
    conv_stride=(5, 2, 2, 2, 2, 2, 2),
    conv_bias=True,
    feat_extract_norm="layer",
    hidden_dim=1024,
    num_layers=3,
    num_heads=16,
    intermediate_dim=4096,
    pos_conv_kernel=128,
    pos_conv_groups=16,
    stable_layer_norm=True,
    dropout=0.1,
    layer_norm_epsilon=1e-5,
    name="wav2vec2_encoder",
):
    """A wav2vec 2.0 encoder (defaults: the large / XLSR layout with `num_layers` kept layers).

    Inputs `waveform` float32 `[B, S]`, `waveform_mask` int32 `[B, S]`. Outputs a dict:
    `hidden_states` `[B, num_layers + 1, T', hidden_dim]` (the input to the transformer, then each
    layer's output; the last one after the final LayerNorm when `stable_layer_norm`) and `frame_mask`
    int32 `[B, T']`. Layer names follow the Hugging Face module names so converted weights can be
    assigned layer by layer.

    `feat_extract_norm="layer"` (large/XLSR) normalises every conv output per frame; `"group"` (base)
    normalises the first conv per channel over the real frames (`MaskedInstanceNorm1D`).
    """
    if feat_extract_norm not in ("layer", "group"):
        raise ValueError(f"feat_extract_norm must be 'layer' or 'group', got {feat_extract_norm!r}")
    if not (len(conv_dim) == len(conv_kernel) == len(conv_stride)):
        raise ValueError(
            f"conv_dim, conv_kernel and conv_stride must have the same length, got "
            f"{conv_dim}, {conv_kernel}, {conv_stride}"
        )
    waveform = keras.Input((None,), name="waveform")
    waveform_mask = keras.Input((None,), dtype="int32", name="waveform_mask")
    x = ApplyTimeMask(name="zero_padding_samples")(waveform, waveform_mask)
    x = layers.Reshape((-1, 1), name="waveform_as_channel")(x)
    frame_mask = waveform_mask
    for i, (dim, k, s) in enumerate(zip(conv_dim, conv_kernel, conv_stride)):
        x = layers.Conv1D(dim, k, strides=s, use_bias=conv_bias, name=f"feature_extractor_conv_{i}")(x)
        frame_mask = ConvFrameMask([k], [s], name=f"feature_extractor_mask_{i}")(frame_mask, x)
        if feat_extract_norm == "layer":
            x = layers.LayerNormalization(epsilon=layer_norm_epsilon, name=f"feature_extractor_norm_{i}")(x)
        elif i == 0:
            x = MaskedInstanceNorm1D(name="feature_extractor_norm_0")(x, frame_mask)
        x = layers.Activation("gelu", name=f"feature_extractor_gelu_{i}")(x)
    x = layers.LayerNormalization(epsilon=layer_norm_epsilon, name="feature_projection_norm")(x)
    x = layers.Dense(hidden_dim, name="feature_projection")(x)
    x = layers.Dropout(dropout, name="feature_projection_dropout")(x)
    x = ApplyTimeMask(name="zero_padding_frames")(x, frame_mask)
    position = PositionalConvEmbedding(pos_conv_kernel, pos_conv_groups, name="pos_conv_embed")(x)
    x = layers.Add(name="add_positions")([x, position])
    if not stable_layer_norm:
        x = layers.LayerNormalization(epsilon=layer_norm_epsilon, name="encoder_norm")(x)
    x = layers.Dropout(dropout, name="encoder_dropout")(x)
    hidden_states = [x]
    for i in range(num_layers):
        x = TransformerEncoderBlock(
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            activation="gelu",
            norm_first=stable_layer_norm,
            layer_norm_epsilon=layer_norm_epsilon,
            name=f"encoder_layer_{i}",
        )(x, frame_mask)
        hidden_states.append(x)
    if stable_layer_norm:
        hidden_states[-1] = layers.LayerNormalization(
            epsilon=layer_norm_epsilon, name="encoder_final_norm"
        )(x)
    stacked = StackHiddenStates(name="hidden_states")(hidden_states)
    return keras.Model(
        {"waveform": waveform, "waveform_mask": waveform_mask},
        {"hidden_states": stacked, "frame_mask": frame_mask},
        name=name,
    )


def w2v2_classifier_from_encoder(encoder, *, num_classes, dropout=0.2, freeze_feature_encoder=True):
    """Seed 000's wav2vec2 head on any encoder with the `wav2vec2_encoder` interface.

    `encoder` takes `{"waveform", "waveform_mask"}` and returns `{"hidden_states": [B, N, T', D],
    "frame_mask": [B, T']}` (e.g. one converted from a Hugging Face checkpoint in
    `tfsent.encoders`). With `freeze_feature_encoder`, every layer whose name starts with
    `feature_extractor` is frozen (as in the seed).
    """
    if freeze_feature_encoder:
        for layer in encoder.layers:
            if layer.name.startswith("feature_extractor"):
                layer.trainable = False
    waveform = keras.Input((None,), name="waveform")
    waveform_mask = keras.Input((None,), dtype="int32", name="waveform_mask")
    outputs = encoder({"waveform": waveform, "waveform_mask": waveform_mask})
    pooled = LayerwiseStatisticsPooling(name="mean_std_pooling")(
        outputs["hidden_states"], outputs["frame_mask"]
    )
    x = SoftmaxWeightedSum(name="layer_weighted_sum")(pooled)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    logits = layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(
        {"waveform": waveform, "waveform_mask": waveform_mask},
        {"logits": logits},
        name="w2v2_classifier",
    )


@registry.register(
    "w2v2_classifier",
    modality="audio",
    seed="S0 (seed 000)",
    description="wav2vec 2.0-style encoder (first num_layers transformer layers kept; seed: 3), "
    "masked mean+std pooling of every layer, softmax-weighted layer sum, dropout 0.2, Dense",
)
def w2v2_classifier(
    *,
    num_classes,
    num_layers=3,
    hidden_dim=1024,
    num_heads=16,
    intermediate_dim=4096,
    conv_dim=(512,) * 7,
    conv_kernel=(10, 3, 3, 3, 3, 2, 2),
    conv_stride=(5, 2, 2, 2, 2, 2, 2),
    feat_extract_norm="layer",
    stable_layer_norm=True,
    pos_conv_kernel=128,
    pos_conv_groups=16,
    encoder_dropout=0.1,
    dropout=0.2,
    freeze_feature_encoder=True,
    audio_encoder=None,
):
    """Randomly initialised, or on a pretrained `audio_encoder` (what `tfsent.encoders.load_audio_encoder`
    returns, or its `.model`; `bin/train --audio_encoder=DIR` loads it with `num_layers` layers), in
    which case the architecture arguments (`hidden_dim` ... `encoder_dropout`) are not used."""
    if audio_encoder is not None:
        return w2v2_classifier_from_encoder(
            getattr(audio_encoder, "model", audio_encoder),
            num_classes=num_classes,
            dropout=dropout,
            freeze_feature_encoder=freeze_feature_encoder,
        )
    encoder = wav2vec2_encoder(
        conv_dim=tuple(conv_dim),
        conv_kernel=tuple(conv_kernel),
        conv_stride=tuple(conv_stride),
        feat_extract_norm=feat_extract_norm,
        hidden_dim=hidden_dim,
        num_layers=num_layers,
        num_heads=num_heads,
        intermediate_dim=intermediate_dim,
        pos_conv_kernel=pos_conv_kernel,
        pos_conv_groups=pos_conv_groups,
        stable_layer_norm=stable_layer_norm,
        dropout=encoder_dropout,
    )
    return w2v2_classifier_from_encoder(
        encoder,
        num_classes=num_classes,
        dropout=dropout,
        freeze_feature_encoder=freeze_feature_encoder,
    )
