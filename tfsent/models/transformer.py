"""Transformer encoder blocks with explicit padding masks: the standard (post-/pre-norm) block and
seed 000's Macaron block (½·FF → attention with gated values and memory key/values → ½·FF).

Example:

```python
x = keras.Input((None, 64))
mask = keras.Input((None,), dtype="int32")
h = encoder_blocks(x, mask, num_layers=2, num_heads=4, intermediate_dim=128, dropout=0.1, prefix="block_")
h = MacaronBlock(num_heads=4, head_dim=16, intermediate_dim=128)(h, mask)
```
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops


def attention_mask_from_padding(padding_mask):
    """int32 padding mask [B, S] -> bool attention mask [B, 1, S] (every query sees the real keys)."""
    return ops.expand_dims(ops.cast(padding_mask, "bool"), axis=1)


def _attributes(layer, names):
    """`{name: layer.name}` for `names` (a layer's constructor arguments, for `get_config`)."""
    return {name: getattr(layer, name) for name in names}


# === Layers ===


class _SequenceBlock(layers.Layer):
    """Base of the blocks here: `[B, T, D]` (+ padding mask) → `[B, T, D]`, configured by the
    constructor arguments named in `_CONFIG`."""

    _CONFIG = ()

    def compute_output_shape(self, inputs_shape, padding_mask_shape=None):
        return inputs_shape

    def get_config(self):
        return {**super().get_config(), **_attributes(self, self._CONFIG)}


@keras.saving.register_keras_serializable(package="tfsent")
class TransformerEncoderBlock(_SequenceBlock):
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

    _CONFIG = (
        "num_heads", "intermediate_dim", "dropout", "activation", "norm_first", "layer_norm_epsilon"
    )

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
        self.num_heads, self.intermediate_dim = int(num_heads), int(intermediate_dim)
        self.dropout, self.activation = float(dropout), activation
        self.norm_first, self.layer_norm_epsilon = bool(norm_first), layer_norm_epsilon

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


@keras.saving.register_keras_serializable(package="tfsent")
class MacaronAttention(_SequenceBlock):
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

    _CONFIG = ("num_heads", "head_dim", "num_memory_kv", "gate_values", "dropout")

    def __init__(
        self, num_heads=8, head_dim=64, num_memory_kv=16, gate_values=True, dropout=0.0, **kwargs
    ):
        super().__init__(**kwargs)
        self.num_heads, self.head_dim, self.num_memory_kv = int(num_heads), int(head_dim), int(num_memory_kv)
        self.gate_values, self.dropout = bool(gate_values), float(dropout)

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


@keras.saving.register_keras_serializable(package="tfsent")
class MacaronBlock(_SequenceBlock):
    """One Macaron block: pre-norm ½·FF → pre-norm attention → pre-norm ½·FF (three residual sub-layers).

    Args:
        num_heads, head_dim, num_memory_kv, gate_values: see `MacaronAttention`.
        intermediate_dim: feed-forward hidden width (2048 in seed 000).
        dropout: dropout in the feed-forward networks and on attention weights.
        activation: feed-forward activation (GELU as in x-transformers).

    Example:
    >>> y = MacaronBlock(num_heads=8, intermediate_dim=2048)(x, padding_mask)
    """

    _CONFIG = MacaronAttention._CONFIG + ("intermediate_dim", "activation", "layer_norm_epsilon")

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
        self.num_heads, self.head_dim, self.num_memory_kv = int(num_heads), int(head_dim), int(num_memory_kv)
        self.intermediate_dim, self.gate_values = int(intermediate_dim), bool(gate_values)
        self.dropout = float(dropout)
        self.activation, self.layer_norm_epsilon = activation, layer_norm_epsilon

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
            **_attributes(self, MacaronAttention._CONFIG), name="attention", **p
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



# === Functional blocks ===


def encoder_blocks(x, mask, *, num_layers, num_heads, intermediate_dim, dropout, prefix, norm_first=False):
    """`num_layers` `TransformerEncoderBlock`s named `{prefix}<i>` (post-norm by default)."""
    for i in range(num_layers):
        x = TransformerEncoderBlock(
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            norm_first=norm_first,
            name=f"{prefix}{i}",
        )(x, mask)
    return x
