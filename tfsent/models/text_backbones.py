"""Text backbones: functional sub-models and blocks that turn `token_ids` + `padding_mask` into features.

- `text_branch`: token embedding + Conv1D + masked mean‖max pooling (the design card).
- `macaron_encoder`: seed 000's Macaron transformer encoder.
- `token_states` / `sentence_embedding`: a pretrained backbone from `tfsent.encoders` (or, without
  one, a trainable embedding) as per-token states or one vector per sentence.
- `valence_backbone`: seed 002's text part of the valence regressor.

Example:

```python
feed = inputs.text_inputs()
vector = sentence_embedding(feed, text_encoder=encoder, pooling="cls", model="my_model")  # [B, H]
```
"""

from __future__ import annotations

import keras
from absl import logging
from keras import layers, ops

from tfsent.core import inputs
from tfsent.models.layers import (
    LearnedPositionEmbedding,
    MaskedGlobalAveragePooling1D,
    SelectPosition,
    mask_channel,
    masked_mean_max,
)
from tfsent.models.stages import TEXT_BACKBONE
from tfsent.models.transformer import MacaronBlock, encoder_blocks

# === Layers ===


@keras.saving.register_keras_serializable(package="tfsent")
class ZerosLike(layers.Layer):
    """int32 zeros shaped like the input (segment ids for single-sentence BERT inputs).

    Example:
    >>> segment_ids = ZerosLike()(token_ids)
    """

    def call(self, inputs):
        return ops.zeros_like(inputs, dtype="int32")


# === Pretrained backbones ===


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
    names = list(inputs.input_names(backbone))
    feed = {inputs.TOKEN_IDS: token_ids, inputs.PADDING_MASK: padding_mask}
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


def token_states(feed, *, text_encoder, vocab_size, hidden_dim, max_positions, model, freeze=False,
                 key="sequence_output"):
    """The pretrained `text_encoder`'s output `key` on `feed`, frozen with `freeze`.

    Without `text_encoder` a trainable token + learned-position embedding of width `hidden_dim` stands
    in (tests, or a corpus WordPiece vocabulary of `vocab_size`); `model` names the model in messages.
    """
    token_ids, padding_mask = feed[inputs.TOKEN_IDS], feed[inputs.PADDING_MASK]
    if text_encoder is not None:
        backbone = text_backbone_model(text_encoder)
        if freeze:
            backbone.trainable = False
        return text_sequence_output(backbone, token_ids, padding_mask, key)
    if not vocab_size:
        raise ValueError(f"{model} needs --text_encoder or a vocabulary (vocab_size)")
    logging.warning("%s: no --text_encoder, using a trainable embedding as the text encoder", model)
    x = layers.Embedding(vocab_size, hidden_dim, name="token_embedding")(token_ids)
    return LearnedPositionEmbedding(max_positions, name="position_embedding")(x)


def sentence_embedding(feed, *, pooling, text_encoder, vocab_size=None, hidden_dim=64, model,
                       freeze=False):
    """One vector per sentence: `cls` (position 0), `mean` (masked mean of the tokens) or `pooled`
    (the pretrained backbone's pooler output) of `token_states`."""
    if pooling not in ("cls", "mean", "pooled"):
        raise ValueError(f"pooling must be cls, mean or pooled, got {pooling!r}")
    if pooling == "pooled" and text_encoder is None:
        raise ValueError(f"{model}: pooling='pooled' needs a pretrained --text_encoder")
    states = token_states(feed, text_encoder=text_encoder, vocab_size=vocab_size, hidden_dim=hidden_dim,
                          max_positions=512, model=model, freeze=freeze,
                          key="pooled_output" if pooling == "pooled" else "sequence_output")
    if pooling == "pooled":
        return states
    if pooling == "cls":
        return SelectPosition(0, name="cls_token")(states)
    return MaskedGlobalAveragePooling1D(name="mean_tokens")(states, feed[inputs.PADDING_MASK])


# === Functional Model ===


def text_branch(*, vocab_size: int, embedding_dim: int = 96, filters: int = 96, kernel_size: int = 3,
                dropout: float = 0.1, name: str = "text_branch") -> keras.Model:
    """Token embedding + one Conv1D + masked pooling: a small text encoder for the demo vocabulary.

    Inputs `token_ids`, `padding_mask` int32 [B, L]; output [B, 2*filters].
    """
    feed = inputs.text_inputs()
    padding_mask = feed[inputs.PADDING_MASK]
    x = layers.Embedding(vocab_size, embedding_dim, name=f"{name}_embedding")(feed[inputs.TOKEN_IDS])
    x = layers.Dropout(dropout, name=f"{name}_embedding_dropout")(x)
    x = layers.Multiply(name=f"{name}_zero_pad")([x, mask_channel(padding_mask, name)])
    x = layers.Conv1D(filters, kernel_size, padding="same", activation="relu", name=f"{name}_conv")(x)
    return keras.Model(feed, masked_mean_max(x, padding_mask, name), name=name)


def macaron_encoder(*, vocab_size, sequence_length, hidden_dim, num_layers, num_heads, head_dim,
                    intermediate_dim, num_memory_kv, dropout, gate_values=True, name="macaron_encoder"):
    """The Macaron encoder as a functional backbone.

    Inputs `token_ids`, `padding_mask` int32 `[B, L]` (`L <= sequence_length`); output the final-norm
    sequence `[B, L, hidden_dim]`.
    """
    feed = inputs.text_inputs()
    x = layers.Embedding(
        vocab_size,
        hidden_dim,
        embeddings_initializer=keras.initializers.RandomNormal(stddev=0.02),
        name=f"{name}_token_embedding",
    )(feed[inputs.TOKEN_IDS])
    x = LearnedPositionEmbedding(sequence_length, name=f"{name}_position_embedding")(x)
    x = layers.Dropout(dropout, name=f"{name}_embedding_dropout")(x)
    block = dict(num_heads=num_heads, head_dim=head_dim, intermediate_dim=intermediate_dim,
                 num_memory_kv=num_memory_kv, gate_values=gate_values, dropout=dropout)
    for i in range(num_layers):
        x = MacaronBlock(**block, name=f"{name}_block_{i}")(x, feed[inputs.PADDING_MASK])
    x = layers.LayerNormalization(epsilon=1e-5, name=f"{name}_final_norm")(x)
    return keras.Model(feed, x, name=name)


def valence_backbone(*, text_encoder, vocab_size, sequence_length, hidden_dim, num_layers, num_heads,
                     intermediate_dim, dropout):
    """The text part of the valence regressor, a nested model named `TEXT_BACKBONE`: tokens →
    frozen pretrained text backbone (or a trainable embedding) → post-norm blocks → `[B, L, hidden]`."""
    feed = inputs.text_inputs()
    x = token_states(feed, text_encoder=text_encoder, vocab_size=vocab_size, hidden_dim=hidden_dim,
                     max_positions=sequence_length, model="valence_regressor", freeze=True)
    x = encoder_blocks(x, feed[inputs.PADDING_MASK], num_layers=num_layers, num_heads=num_heads,
                       intermediate_dim=intermediate_dim, dropout=dropout, prefix="text_block_")
    return keras.Model(feed, x, name=TEXT_BACKBONE)
