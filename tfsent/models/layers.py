"""Shared layers for tfsent models: masked pooling, transformer blocks, masked recurrence, positions.

Every layer here that mixes information across time takes an explicit int32 padding mask `[B, T]`
(1 = real step, 0 = padding) as a call argument, so a clip's or sentence's output does not depend on how
much padding its batch added. Keras implicit masks are never relied upon across layer boundaries.

Example:

```python
x = keras.Input((None, 64))
mask = keras.Input((None,), dtype="int32")
h = TransformerEncoderBlock(num_heads=4, intermediate_dim=128)(x, mask)
pooled = MaskedGlobalAveragePooling1D()(h, mask)   # [B, 64]
```
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops

# === Helpers ===


def _float_mask(mask, dtype):
    """int/bool mask [B, T] -> float [B, T, 1] in `dtype`."""
    return ops.expand_dims(ops.cast(mask, dtype), axis=-1)


def attention_mask_from_padding(padding_mask):
    """int32 padding mask [B, S] -> bool attention mask [B, 1, S] (every query sees the real keys)."""
    return ops.expand_dims(ops.cast(padding_mask, "bool"), axis=1)


# === Pooling ===


@keras.saving.register_keras_serializable(package="tfsent")
class MaskedGlobalAveragePooling1D(layers.Layer):
    """Mean over the real time steps of `[B, T, C]`.

    Args:
        **kwargs: standard layer arguments (`name`, `dtype`).

    Call arguments:
        inputs: float tensor `[B, T, C]`.
        mask: int32 `[B, T]`, 1 for real steps. When `None`, every step counts.

    An all-padding example yields zeros (never NaN).

    Example:
    >>> pooled = MaskedGlobalAveragePooling1D()(x, mask)  # [B, C]
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = False

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.mean(inputs, axis=1)
        m = _float_mask(mask, inputs.dtype)
        total = ops.sum(inputs * m, axis=1)
        count = ops.maximum(ops.sum(m, axis=1), ops.cast(1.0, inputs.dtype))
        return total / count

    def compute_output_shape(self, inputs_shape, mask_shape=None):
        input_shape = inputs_shape
        return (input_shape[0], input_shape[-1])


@keras.saving.register_keras_serializable(package="tfsent")
class MaskedGlobalMaxPooling1D(layers.Layer):
    """Max over the real time steps of `[B, T, C]`; an all-padding example yields zeros.

    Call arguments:
        inputs: float tensor `[B, T, C]`.
        mask: int32 `[B, T]`, 1 for real steps. When `None`, every step counts.

    Example:
    >>> peak = MaskedGlobalMaxPooling1D()(x, mask)  # [B, C]
    """

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.max(inputs, axis=1)
        valid = ops.expand_dims(ops.cast(mask, "bool"), axis=-1)
        lowest = ops.cast(-3.0e38 if inputs.dtype == "float32" else -6.0e4, inputs.dtype)
        peak = ops.max(ops.where(valid, inputs, lowest), axis=1)
        any_valid = ops.any(valid, axis=1)
        return ops.where(any_valid, peak, ops.zeros_like(peak))

    def compute_output_shape(self, inputs_shape, mask_shape=None):
        input_shape = inputs_shape
        return (input_shape[0], input_shape[-1])


@keras.saving.register_keras_serializable(package="tfsent")
class MaskedStatisticsPooling1D(layers.Layer):
    """Mean ‖ standard deviation over the real time steps: `[B, T, C]` -> `[B, 2C]`.

    Args:
        epsilon: added to the variance before the square root (keeps gradients finite).

    Example:
    >>> stats = MaskedStatisticsPooling1D()(hidden, frame_mask)  # [B, 2C]
    """

    def __init__(self, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, inputs, mask=None):
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="int32")
        m = _float_mask(mask, inputs.dtype)
        count = ops.maximum(ops.sum(m, axis=1), ops.cast(1.0, inputs.dtype))
        mean = ops.sum(inputs * m, axis=1) / count
        centred = (inputs - ops.expand_dims(mean, 1)) * m
        var = ops.sum(ops.square(centred), axis=1) / count
        return ops.concatenate([mean, ops.sqrt(var + self.epsilon)], axis=-1)

    def compute_output_shape(self, inputs_shape, mask_shape=None):
        input_shape = inputs_shape
        return (input_shape[0], 2 * input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="tfsent")
class LastValidStep(layers.Layer):
    """The last real time step of `[B, T, C]` (the step before the padding starts): `[B, C]`.

    Example:
    >>> last = LastValidStep()(sequence, mask)
    """

    def call(self, inputs, mask=None):
        if mask is None:
            return inputs[:, -1]
        steps = ops.arange(ops.shape(inputs)[1], dtype="int32")
        last = ops.max(ops.cast(mask, "int32") * ops.expand_dims(steps, 0), axis=1)
        return ops.take_along_axis(inputs, ops.reshape(last, (-1, 1, 1)), axis=1)[:, 0]

    def compute_output_shape(self, inputs_shape, mask_shape=None):
        input_shape = inputs_shape
        return (input_shape[0], input_shape[-1])


# === Masking utilities ===


@keras.saving.register_keras_serializable(package="tfsent")
class ApplyTimeMask(layers.Layer):
    """Zeroes the padded time steps of `[B, T, ...]` (mask `[B, T]`, int32).

    Convolutions over time must see zeros beyond a clip's end, whatever its batch neighbours made the
    padding hold; applying this before each convolution keeps the output padding-independent.

    Example:
    >>> x = ApplyTimeMask()(x, mask)
    """

    def call(self, inputs, mask):
        m = ops.cast(mask, inputs.dtype)
        for _ in range(len(inputs.shape) - 2):
            m = ops.expand_dims(m, -1)
        return inputs * m

    def compute_output_shape(self, inputs_shape, mask_shape=None):
        input_shape = inputs_shape
        return input_shape


@keras.saving.register_keras_serializable(package="tfsent")
class DownsampleMask(layers.Layer):
    """Time mask for a strided layer: keeps every `stride`-th step (frames centred on `i*stride`).

    Use with a convolution whose input is explicitly padded by `kernel_size // 2` on each side and
    applied with `padding="valid"`, so frame `i` of the output is centred on input step `i*stride`
    whatever the padded length.

    Args:
        stride: the time stride.
    """

    def __init__(self, stride, **kwargs):
        super().__init__(**kwargs)
        self.stride = int(stride)

    def call(self, inputs):
        return inputs[:, :: self.stride]

    def compute_output_shape(self, input_shape):
        t = input_shape[1]
        return (input_shape[0], None if t is None else -(-t // self.stride))

    def get_config(self):
        return {**super().get_config(), "stride": self.stride}


@keras.saving.register_keras_serializable(package="tfsent")
class ConvFrameMask(layers.Layer):
    """Frame mask after a stack of valid 1-D convolutions (wav2vec2 feature encoder).

    A clip with `n` real samples has `n' = (n - k) // s + 1` real frames after a convolution of kernel
    `k` and stride `s`; the output mask is `[B, T']` int32 with `T'` taken from `frames`.

    Args:
        kernel_sizes: kernel of each convolution.
        strides: stride of each convolution.

    Call arguments:
        inputs: int32 `[B, S]` sample mask.
        frames: the feature encoder output `[B, T', D]` (only its length is read).
    """

    def __init__(self, kernel_sizes, strides, **kwargs):
        super().__init__(**kwargs)
        self.kernel_sizes = [int(k) for k in kernel_sizes]
        self.strides = [int(s) for s in strides]

    def call(self, inputs, frames):
        lengths = ops.sum(ops.cast(inputs, "int32"), axis=1)
        for k, s in zip(self.kernel_sizes, self.strides):
            lengths = ops.maximum((lengths - k) // s + 1, 0)
        steps = ops.arange(ops.shape(frames)[1], dtype="int32")
        return ops.cast(ops.expand_dims(steps, 0) < ops.expand_dims(lengths, 1), "int32")

    def compute_output_shape(self, inputs_shape, frames_shape):
        return (inputs_shape[0], frames_shape[1])

    def compute_output_spec(self, inputs, frames):
        return keras.KerasTensor((inputs.shape[0], frames.shape[1]), dtype="int32")

    def get_config(self):
        return {
            **super().get_config(),
            "kernel_sizes": self.kernel_sizes,
            "strides": self.strides,
        }


@keras.saving.register_keras_serializable(package="tfsent")
class MaskedRNN(layers.Wrapper):
    """Runs a Keras recurrent layer (or `Bidirectional`) under an explicit int32 padding mask.

    Padded steps are skipped (the state carries over them), so `return_sequences=False` returns the
    state after the last real step, independent of how much padding follows.

    Args:
        layer: a `keras.layers.RNN` subclass instance (`GRU`, `LSTM`, `SimpleRNN`) or `Bidirectional`.

    Example:
    >>> h = MaskedRNN(keras.layers.GRU(64, return_sequences=True))(x, mask)
    """

    def call(self, inputs, mask=None, training=None):
        bool_mask = None if mask is None else ops.cast(mask, "bool")
        outputs = self.layer(inputs, mask=bool_mask, training=training)
        # A fresh tensor: the wrapped layer attached its implicit Keras mask to `outputs`, which would
        # otherwise follow the tensor into pooling/Dense layers and into the loss.
        return keras.tree.map_structure(ops.copy, outputs)

    def compute_output_shape(self, inputs_shape, mask_shape=None):
        input_shape = inputs_shape
        return self.layer.compute_output_shape(input_shape)

    def build(self, inputs_shape, mask_shape=None):
        if not self.layer.built:
            self.layer.build(inputs_shape)
        self.built = True


# === Positions ===


@keras.saving.register_keras_serializable(package="tfsent")
class SinusoidalPositionEncoding(layers.Layer):
    """Adds the fixed sine/cosine position encoding of "Attention is all you need" to `[B, T, D]`.

    Args:
        max_wavelength: the longest wavelength (10000 in the paper).

    Example:
    >>> x = SinusoidalPositionEncoding()(token_embeddings)
    """

    def __init__(self, max_wavelength=10000, **kwargs):
        super().__init__(**kwargs)
        self.max_wavelength = max_wavelength

    def call(self, inputs):
        length = ops.shape(inputs)[1]
        dim = inputs.shape[-1]
        positions = ops.cast(ops.arange(length), "float32")[:, None]
        i = ops.arange(dim // 2, dtype="float32")
        freqs = ops.exp(-math.log(self.max_wavelength) * 2.0 * i / dim)[None, :]
        angles = positions * freqs
        enc = ops.reshape(ops.stack([ops.sin(angles), ops.cos(angles)], axis=-1), (length, -1))
        if dim % 2:
            enc = ops.pad(enc, [[0, 0], [0, 1]])
        return inputs + ops.cast(enc[None], inputs.dtype)

    def get_config(self):
        return {**super().get_config(), "max_wavelength": self.max_wavelength}


@keras.saving.register_keras_serializable(package="tfsent")
class LearnedPositionEmbedding(layers.Layer):
    """Adds a learned embedding of the position (0..sequence_length-1) to `[B, T, D]`.

    Args:
        sequence_length: the largest `T` accepted.
        initializer: for the position table.

    Example:
    >>> x = LearnedPositionEmbedding(64)(token_embeddings)
    """

    def __init__(self, sequence_length, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.sequence_length = int(sequence_length)
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        self.position_embeddings = self.add_weight(
            name="embeddings",
            shape=(self.sequence_length, input_shape[-1]),
            initializer=self.initializer,
        )

    def call(self, inputs):
        length = ops.shape(inputs)[1]
        return inputs + ops.cast(self.position_embeddings[None, :length], inputs.dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "sequence_length": self.sequence_length,
            "initializer": keras.initializers.serialize(self.initializer),
        }


# === Transformer ===


@keras.saving.register_keras_serializable(package="tfsent")
class TransformerEncoderBlock(layers.Layer):
    """Self-attention + position-wise feed-forward block with an explicit padding mask.

    Post-norm (`norm_first=False`, PyTorch `nn.TransformerEncoderLayer` default, used by seed 002) or
    pre-norm (`norm_first=True`). Padded keys are never attended to; padded query rows produce values
    that later masked layers ignore.

    Args:
        num_heads: attention heads; the model width must be divisible by it.
        intermediate_dim: hidden width of the feed-forward network.
        dropout: dropout on attention weights, the attention output and the feed-forward network.
        activation: feed-forward activation.
        norm_first: pre-norm when True, post-norm when False.
        layer_norm_epsilon: LayerNorm epsilon.

    Call arguments:
        inputs: `[B, T, D]`.
        padding_mask: int32 `[B, T]` (1 = real); `None` attends to every step.

    Example:
    >>> block = TransformerEncoderBlock(num_heads=6, intermediate_dim=1024, dropout=0.1)
    >>> y = block(x, mask)  # same shape as x
    """

    def __init__(
        self,
        num_heads,
        intermediate_dim,
        dropout=0.0,
        activation="relu",
        norm_first=False,
        layer_norm_epsilon=1e-5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.intermediate_dim = int(intermediate_dim)
        self.dropout = float(dropout)
        self.activation = activation
        self.norm_first = bool(norm_first)
        self.layer_norm_epsilon = layer_norm_epsilon

    def build(self, inputs_shape, padding_mask_shape=None):
        input_shape = inputs_shape
        dim = input_shape[-1]
        if dim % self.num_heads:
            raise ValueError(
                f"{self.name}: model width {dim} is not divisible by num_heads={self.num_heads}"
            )
        self.attention = layers.MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=dim // self.num_heads,
            dropout=self.dropout,
            dtype=self.dtype_policy,
            name="self_attention",
        )
        self.attention.build(input_shape, input_shape)
        self.attention_norm = layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="attention_norm"
        )
        self.attention_norm.build(input_shape)
        self.ffn_inner = layers.Dense(
            self.intermediate_dim,
            activation=self.activation,
            dtype=self.dtype_policy,
            name="ffn_inner",
        )
        self.ffn_inner.build(input_shape)
        self.ffn_outer = layers.Dense(dim, dtype=self.dtype_policy, name="ffn_outer")
        self.ffn_outer.build(tuple(input_shape[:-1]) + (self.intermediate_dim,))
        self.ffn_norm = layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="ffn_norm"
        )
        self.ffn_norm.build(input_shape)
        self.dropout_layer = layers.Dropout(self.dropout)
        self.built = True

    def _attend(self, x, attention_mask, training):
        y = self.attention(x, x, attention_mask=attention_mask, training=training)
        return self.dropout_layer(y, training=training)

    def _feed_forward(self, x, training):
        y = self.ffn_inner(x)
        y = self.dropout_layer(y, training=training)
        return self.dropout_layer(self.ffn_outer(y), training=training)

    def call(self, inputs, padding_mask=None, training=None):
        attention_mask = None
        if padding_mask is not None:
            attention_mask = attention_mask_from_padding(padding_mask)
        x = inputs
        if self.norm_first:
            x = x + self._attend(self.attention_norm(x), attention_mask, training)
            x = x + self._feed_forward(self.ffn_norm(x), training)
        else:
            x = self.attention_norm(x + self._attend(x, attention_mask, training))
            x = self.ffn_norm(x + self._feed_forward(x, training))
        return x

    def compute_output_shape(self, inputs_shape, padding_mask_shape=None):
        return inputs_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
            "activation": self.activation,
            "norm_first": self.norm_first,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }


# === Reductions ===


@keras.saving.register_keras_serializable(package="tfsent")
class MeanOverAxis(layers.Layer):
    """Mean over one axis (e.g. frequency of `[B, T, F, C]` → `[B, T, C]`).

    Args:
        axis: the axis to average (not the batch or time axis when used before masked pooling).
    """

    def __init__(self, axis=2, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def call(self, inputs):
        return ops.mean(inputs, axis=self.axis)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        del shape[self.axis]
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


# === Text backbones ===


@keras.saving.register_keras_serializable(package="tfsent")
class ZerosLike(layers.Layer):
    """int32 zeros shaped like the input (segment ids for single-sentence BERT inputs)."""

    def call(self, inputs):
        return ops.zeros_like(inputs, dtype="int32")


def text_backbone_model(text_encoder):
    """The Keras backbone inside what `tfsent.encoders.load_text_encoder` returned (or the model itself)."""
    backbone = getattr(text_encoder, "backbone", text_encoder)
    if not isinstance(backbone, keras.Model):
        raise TypeError(
            "text_encoder must be a keras.Model or have a .backbone keras.Model, "
            f"got {type(text_encoder).__name__}"
        )
    return backbone


def text_sequence_output(backbone, token_ids, padding_mask, key="sequence_output"):
    """Calls a keras-hub style backbone on `token_ids`/`padding_mask` and returns one output.

    Feeds zero `segment_ids` when the backbone asks for them; a dict output is indexed by `key`
    (`sequence_output` `[B, L, D]`, or `pooled_output` `[B, D]` where the backbone has one).
    """
    if isinstance(backbone.input, dict):
        names = list(backbone.input)
    else:
        names = [t.name.split(":")[0] for t in keras.tree.flatten(backbone.inputs)]
    feed = {"token_ids": token_ids, "padding_mask": padding_mask}
    if "segment_ids" in names:
        feed["segment_ids"] = ZerosLike(name="segment_ids")(token_ids)
    unknown = [n for n in names if n not in feed]
    if unknown:
        raise ValueError(f"text backbone {backbone.name!r} needs inputs {unknown} tfsent cannot feed")
    out = backbone({k: feed[k] for k in names})
    if isinstance(out, dict):
        if key not in out:
            raise ValueError(f"text backbone {backbone.name!r} has no output {key!r}: {sorted(out)}")
        out = out[key]
    return out
