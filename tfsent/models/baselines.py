"""Seed 003/004 Keras text baselines: embedding + (Bi)RNN, and a small transformer encoder.

Registered models:

- `rnn_text`: Embedding → `num_layers` × (Bi)LSTM / GRU / SimpleRNN (padding masked) → Dense.
- `transformer_text`: Embedding + sinusoidal positions → post-norm transformer blocks (padding mask)
  → masked mean pooling → Dense.

Example:

```python
model = registry.build("rnn_text", num_classes=2, vocab_size=8000, cell="gru", bidirectional=True)
model({"token_ids": ids, "padding_mask": mask})["logits"]
```
"""

from __future__ import annotations

import keras
from keras import layers

from tfsent.models import registry
from tfsent.models.layers import (
    MaskedGlobalAveragePooling1D,
    MaskedRNN,
    SinusoidalPositionEncoding,
    TransformerEncoderBlock,
)

_CELLS = {"lstm": layers.LSTM, "gru": layers.GRU, "simple_rnn": layers.SimpleRNN}


def _text_inputs():
    return {
        "token_ids": keras.Input((None,), dtype="int32", name="token_ids"),
        "padding_mask": keras.Input((None,), dtype="int32", name="padding_mask"),
    }


@registry.register(
    "rnn_text",
    modality="text",
    seed="S3 (seed 003), S4 (seed 004)",
    description="Embedding → (Bi)LSTM / GRU / SimpleRNN layers (cell=, bidirectional=) with the "
    "padding mask → Dense: the recurrent text baselines",
)
def rnn_text(
    *,
    num_classes,
    vocab_size,
    embedding_dim=128,
    cell="lstm",
    units=128,
    num_layers=1,
    bidirectional=False,
    dropout=0.2,
):
    """Recurrent baseline; the last layer returns the state after each sentence's last real token."""
    if cell not in _CELLS:
        raise ValueError(f"cell must be one of {sorted(_CELLS)}, got {cell!r}")
    if not vocab_size:
        raise ValueError("rnn_text needs vocab_size (a --vocabulary)")
    inputs = _text_inputs()
    x = layers.Embedding(vocab_size, embedding_dim, name="token_embedding")(inputs["token_ids"])
    for i in range(num_layers):
        last = i == num_layers - 1
        rnn = _CELLS[cell](units, return_sequences=not last, name=f"{cell}_{i}")
        if bidirectional:
            rnn = layers.Bidirectional(rnn, name=f"bi{cell}_{i}")
        x = MaskedRNN(rnn, name=f"masked_{cell}_{i}")(x, inputs["padding_mask"])
        x = layers.Dropout(dropout, name=f"dropout_{i}")(x)
    logits = layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, {"logits": logits}, name="rnn_text")


@registry.register(
    "transformer_text",
    modality="text",
    seed="S4 (seed 004)",
    description="Embedding + sinusoidal positions → transformer encoder blocks with padding masks → "
    "masked mean pooling → Dense",
)
def transformer_text(
    *,
    num_classes,
    vocab_size,
    hidden_dim=128,
    num_layers=2,
    num_heads=4,
    intermediate_dim=256,
    dropout=0.1,
):
    """Small transformer-encoder text classifier (seed 004's Keras tutorial model)."""
    if not vocab_size:
        raise ValueError("transformer_text needs vocab_size (a --vocabulary)")
    inputs = _text_inputs()
    mask = inputs["padding_mask"]
    x = layers.Embedding(vocab_size, hidden_dim, name="token_embedding")(inputs["token_ids"])
    x = SinusoidalPositionEncoding(name="positions")(x)
    x = layers.Dropout(dropout, name="embedding_dropout")(x)
    for i in range(num_layers):
        x = TransformerEncoderBlock(
            num_heads=num_heads, intermediate_dim=intermediate_dim, dropout=dropout, name=f"block_{i}"
        )(x, mask)
    x = MaskedGlobalAveragePooling1D(name="mean_pool")(x, mask)
    x = layers.Dropout(dropout, name="dropout")(x)
    logits = layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, {"logits": logits}, name="transformer_text")
