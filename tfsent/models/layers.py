"""Shared layers for tfsent models: masking, masked pooling, masked recurrence, positions.

Every layer here that mixes information across time takes an explicit int32 padding mask `[B, T]`
(1 = real step, 0 = padding) as a call argument, so a clip's or sentence's output does not depend on how
much padding its batch added. Keras implicit masks are never relied upon across layer boundaries.

Example:

```python
x = keras.Input((None, 64))
mask = keras.Input((None,), dtype="int32")
h = MaskedRNN(keras.layers.GRU(32, return_sequences=True))(x, mask)
pooled = MaskedGlobalAveragePooling1D()(h, mask)   # [B, 32]
```

Transformer blocks live in `tfsent.models.transformer`.
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops

# === Helpers ===


def _float_mask(mask, dtype):
    """int/bool mask [B, T] -> float [B, T, 1] in `dtype`."""
    return ops.expand_dims(ops.cast(mask, dtype), axis=-1)


def _masked_mean_std(inputs, m, axis, epsilon):
    """Mean and standard deviation of `inputs` over `axis`, counting the steps where `m` is 1."""
    count = ops.maximum(ops.sum(m, axis=axis), ops.cast(1.0, inputs.dtype))
    mean = ops.sum(inputs * m, axis=axis) / count
    var = ops.sum(ops.square((inputs - ops.expand_dims(mean, axis)) * m), axis=axis) / count
    return mean, ops.sqrt(var + epsilon)


# === Pooling ===


class _TimePooling(layers.Layer):
    """Base of the layers that reduce `[B, T, C]` (and an optional mask) to `[B, C]`."""

    def compute_output_shape(self, inputs_shape, mask_shape=None):
        return (inputs_shape[0], inputs_shape[-1])


@keras.saving.register_keras_serializable(package="tfsent")
class MaskedGlobalAveragePooling1D(_TimePooling):
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


@keras.saving.register_keras_serializable(package="tfsent")
class MaskedGlobalMaxPooling1D(_TimePooling):
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


@keras.saving.register_keras_serializable(package="tfsent")
class MaskedStatisticsPooling1D(_TimePooling):
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
        mean, std = _masked_mean_std(inputs, _float_mask(mask, inputs.dtype), 1, self.epsilon)
        return ops.concatenate([mean, std], axis=-1)

    def compute_output_shape(self, inputs_shape, mask_shape=None):
        return (inputs_shape[0], 2 * inputs_shape[-1])

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="tfsent")
class LastValidStep(_TimePooling):
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


@keras.saving.register_keras_serializable(package="tfsent")
class SelectPosition(layers.Layer):
    """`[B, T, D]` → `[B, D]`, the step at `index` (0 = the [CLS] position).

    Args:
        index: the time step to select.

    Example:
    >>> cls = SelectPosition(0)(sequence)  # [B, D]
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
class LayerwiseStatisticsPooling(layers.Layer):
    """Masked mean ‖ std over time of every layer's hidden states: `[B, N, T, D]` → `[B, N, 2D]`.

    Args:
        epsilon: added to the variance before the square root.

    Example:
    >>> stats = LayerwiseStatisticsPooling()(hidden_states, frame_mask)  # [B, N, 2D]
    """

    def __init__(self, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, inputs, mask):
        m = ops.cast(mask, inputs.dtype)[:, None, :, None]  # [B, 1, T, 1]
        mean, std = _masked_mean_std(inputs, m, 2, self.epsilon)
        return ops.concatenate([mean, std], axis=-1)

    def compute_output_shape(self, inputs_shape, mask_shape=None):
        return (inputs_shape[0], inputs_shape[1], 2 * inputs_shape[3])

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="tfsent")
class SoftmaxWeightedSum(layers.Layer):
    """Learned softmax-normalised weights over axis 1: `[B, N, D]` → `[B, D]` (layer-weighted sum).

    Example:
    >>> summary = SoftmaxWeightedSum()(per_layer_stats)  # [B, N, D] -> [B, D]
    """

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
class GatedSum(layers.Layer):
    """Per-example gated sum of M same-width embeddings: `([x_1 … x_M], gates [B, M])` → `Σ_m g_m · x_m`.

    The gates are given (e.g. a softmax over modalities computed from the inputs), so the layer has no
    weights; it is the mixing step of a gated multimodal unit.

    Example:
    >>> fused = GatedSum()([audio_h, text_h], gates)  # [B, D] each, gates [B, 2] -> [B, D]
    """

    def call(self, embeddings, gates):
        stacked = ops.stack(embeddings, axis=1)
        return ops.sum(stacked * ops.expand_dims(ops.cast(gates, stacked.dtype), -1), axis=1)

    def compute_output_shape(self, embeddings_shape, gates_shape=None):
        return tuple(embeddings_shape[0])


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
        return inputs_shape


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
class PackedConcatenate(layers.Layer):
    """Concatenates two masked sequences on time and packs the real steps to the front.

    `(a [B, Ta, D], mask_a [B, Ta], b [B, Tb, D], mask_b [B, Tb])` → `(x [B, Ta+Tb, D], mask)`, where
    each row holds `a`'s real steps, then `b`'s real steps, then padding. Keeps the result
    right-padded (what cuDNN recurrent kernels need and what "last real step" means), and makes it
    independent of how much padding each input had.

    Example:
    >>> seq, mask = PackedConcatenate()(audio_seq, audio_mask, text_seq, text_mask)
    """

    def call(self, a, mask_a, b, mask_b):
        x = ops.concatenate([a, ops.cast(b, a.dtype)], axis=1)
        mask = ops.concatenate([ops.cast(mask_a, "int32"), ops.cast(mask_b, "int32")], axis=1)
        total = ops.shape(x)[1]
        steps = ops.arange(total, dtype="int32")[None]
        # Real steps keep their order first; padded steps move behind all of them.
        key = ops.where(mask > 0, steps, steps + total)
        order = ops.argsort(key, axis=1)
        x = ops.take_along_axis(x, order[..., None], axis=1)
        mask = ops.take_along_axis(mask, order, axis=1)
        return x, mask

    def compute_output_spec(self, a, mask_a, b, mask_b):
        t = None if a.shape[1] is None or b.shape[1] is None else a.shape[1] + b.shape[1]
        return (
            keras.KerasTensor((a.shape[0], t, a.shape[2]), dtype=a.dtype),
            keras.KerasTensor((a.shape[0], t), dtype="int32"),
        )


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
        return self.layer.compute_output_shape(inputs_shape)

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


# === Functional helpers ===


def masked_mean_max(x, mask, name):
    """Masked mean ‖ masked max over the real steps of `[B, T, C]` → `[B, 2C]`."""
    mean = MaskedGlobalAveragePooling1D(name=f"{name}_mean_pool")(x, mask)
    peak = MaskedGlobalMaxPooling1D(name=f"{name}_max_pool")(x, mask)
    return layers.Concatenate(name=f"{name}_pooled")([mean, peak])


def mask_channel(mask, name):
    """int32 mask `[B, T]` → float32 `[B, T, 1]`, to zero padded steps with a `Multiply`."""
    as_float = layers.Identity(dtype="float32", name=f"{name}_mask_float")(mask)
    return layers.Reshape((-1, 1), name=f"{name}_mask_channel")(as_float)
