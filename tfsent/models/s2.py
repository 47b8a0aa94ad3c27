"""Seed 002: valence/arousal-pretrained regressors and their frozen-backbone fusion classifier.

Three stages, each its own run (`configs/s2_*.flags`):

1. `arousal_regressor`: log-Mel+delta `[B, T=512, 128, 2]` → frequency-only Conv2D stack (time steps
   stay independent) → `[B, T, 768]` → post-norm transformer blocks → 2-layer GRU → Dense(1).
2. `valence_regressor`: a frozen text backbone's hidden states `[B, 64, 768]` → 5 blocks → 2-layer
   GRU → Dense(1).
3. `va_fusion_classifier`: the two regressors' backbones (everything before their GRU heads) loaded
   from the stage 1–2 runs (`--init_from=arousal_regressor=DIR,valence_regressor=DIR`) and frozen;
   their sequences concatenated on time → 4 blocks → 2-layer LSTM → Dense(classes).

Every regressor is `backbone` (a nested functional model named `audio_arousal_backbone` /
`text_valence_backbone`) + head, so stage 3 takes the trained backbone out of the saved model.

Example:

```python
model = registry.build("arousal_regressor", feature_dim=128, feature_channels=2)
model({"audio_features": x, "audio_mask": m})["arousal"]  # [B, 1]
```
"""

from __future__ import annotations

import os

import keras
from absl import logging
from keras import layers, ops

from tfsent.models import registry
from tfsent.models.layers import (
    ApplyTimeMask,
    LearnedPositionEmbedding,
    MaskedRNN,
    TransformerEncoderBlock,
    text_backbone_model,
    text_sequence_output,
)

AUDIO_BACKBONE = "audio_arousal_backbone"
TEXT_BACKBONE = "text_valence_backbone"

# === Layers ===


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


# === Functional Model ===


def _recurrent_head(x, mask, *, cell, units, num_layers, dropout, name):
    """`num_layers` masked recurrent layers (dropout between them) → state after the last real step."""
    rnn_cls = {"gru": layers.GRU, "lstm": layers.LSTM}[cell]
    for i in range(num_layers):
        last = i == num_layers - 1
        x = MaskedRNN(rnn_cls(units, return_sequences=not last), name=f"{name}_{cell}_{i}")(x, mask)
        if not last:
            x = layers.Dropout(dropout, name=f"{name}_{cell}_dropout_{i}")(x)
    return x


def _blocks(x, mask, *, num_layers, num_heads, intermediate_dim, dropout, name):
    for i in range(num_layers):
        x = TransformerEncoderBlock(
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            norm_first=False,
            name=f"{name}_block_{i}",
        )(x, mask)
    return x


def arousal_backbone(
    *,
    feature_dim=128,
    feature_channels=2,
    conv_channels=(8, 8, 24, 24),
    conv_kernels=(4, 7, 4, 7),
    conv_strides=(2, 1, 2, 1),
    num_layers=7,
    num_heads=6,
    intermediate_dim=1024,
    dropout=0.1,
):
    """Audio part of the arousal regressor: `[B, T, F, C]` + mask → `[B, T, F/4 · 24]` (768 for F=128)."""
    if feature_channels > 1:
        features = keras.Input((None, feature_dim, feature_channels), name="audio_features")
        x = features
    else:
        features = keras.Input((None, feature_dim), name="audio_features")
        x = layers.Reshape((-1, feature_dim, 1), name="add_channel")(features)
    mask = keras.Input((None,), dtype="int32", name="audio_mask")
    x = ApplyTimeMask(name="zero_padding_frames")(x, mask)
    freq = feature_dim
    for i, (c, k, s) in enumerate(zip(conv_channels, conv_kernels, conv_strides)):
        # Kernels span frequency only, so each time step is transformed independently.
        x = layers.Conv2D(c, (1, k), strides=(1, s), padding="same", use_bias=False, name=f"freq_conv_{i}")(x)
        freq = -(-freq // s)
    x = layers.Reshape((-1, freq * conv_channels[-1]), name="frames")(x)
    x = _blocks(
        x, mask, num_layers=num_layers, num_heads=num_heads,
        intermediate_dim=intermediate_dim, dropout=dropout, name="audio",
    )
    return keras.Model({"audio_features": features, "audio_mask": mask}, x, name=AUDIO_BACKBONE)


@registry.register(
    "arousal_regressor",
    modality="audio",
    task="regression",
    seed="S2 (seed 002)",
    description="log-Mel+delta → frequency-only Conv2D → post-norm transformer blocks (padding mask) "
    "→ 2-layer GRU(64) → last real step → Dense(1); stage 1 of the S2 recipe",
)
def arousal_regressor(
    *,
    feature_dim=128,
    feature_channels=2,
    conv_channels=(8, 8, 24, 24),
    num_layers=7,
    num_heads=6,
    intermediate_dim=1024,
    dropout=0.1,
    gru_units=64,
    gru_layers=2,
    gru_dropout=0.1,
    target="arousal",
):
    """Seed 002's audio→arousal regressor; output key `target` (`arousal`), `[B, 1]` float32."""
    backbone = arousal_backbone(
        feature_dim=feature_dim,
        feature_channels=feature_channels,
        conv_channels=tuple(conv_channels),
        num_layers=num_layers,
        num_heads=num_heads,
        intermediate_dim=intermediate_dim,
        dropout=dropout,
    )
    inputs = {
        "audio_features": keras.Input(backbone.input["audio_features"].shape[1:], name="audio_features"),
        "audio_mask": keras.Input((None,), dtype="int32", name="audio_mask"),
    }
    x = backbone(inputs)
    x = _recurrent_head(
        x, inputs["audio_mask"], cell="gru", units=gru_units, num_layers=gru_layers,
        dropout=gru_dropout, name="head",
    )
    out = layers.Dense(1, dtype="float32", name=target)(x)
    return keras.Model(inputs, {target: out}, name="arousal_regressor")


def valence_backbone(
    *,
    text_encoder=None,
    vocab_size=None,
    sequence_length=64,
    hidden_dim=768,
    num_layers=5,
    num_heads=6,
    intermediate_dim=1024,
    dropout=0.1,
):
    """Text part of the valence regressor: tokens → frozen text backbone → blocks → `[B, L, hidden]`.

    Without `text_encoder` a trainable token + learned-position embedding of width `hidden_dim`
    stands in for the pretrained backbone (tests, or a corpus WordPiece vocabulary of `vocab_size`).
    """
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    padding_mask = keras.Input((None,), dtype="int32", name="padding_mask")
    if text_encoder is not None:
        encoder = text_backbone_model(text_encoder)
        encoder.trainable = False
        x = text_sequence_output(encoder, token_ids, padding_mask)
    else:
        if not vocab_size:
            raise ValueError("valence_regressor needs --text_encoder or a vocabulary (vocab_size)")
        logging.warning("valence_regressor: no --text_encoder, using a trainable embedding backbone")
        x = layers.Embedding(vocab_size, hidden_dim, name="token_embedding")(token_ids)
        x = LearnedPositionEmbedding(sequence_length, name="position_embedding")(x)
    x = _blocks(
        x, padding_mask, num_layers=num_layers, num_heads=num_heads,
        intermediate_dim=intermediate_dim, dropout=dropout, name="text",
    )
    return keras.Model(
        {"token_ids": token_ids, "padding_mask": padding_mask}, x, name=TEXT_BACKBONE
    )


@registry.register(
    "valence_regressor",
    modality="text",
    task="regression",
    seed="S2 (seed 002)",
    description="frozen text backbone hidden states → 5 post-norm transformer blocks → 2-layer "
    "GRU(64) → Dense(1); stage 2 of the S2 recipe",
)
def valence_regressor(
    *,
    text_encoder=None,
    vocab_size=None,
    sequence_length=64,
    hidden_dim=768,
    num_layers=5,
    num_heads=6,
    intermediate_dim=1024,
    dropout=0.1,
    gru_units=64,
    gru_layers=2,
    gru_dropout=0.1,
    target="valence",
):
    """Seed 002's text→valence regressor; output key `target` (`valence`), `[B, 1]` float32."""
    backbone = valence_backbone(
        text_encoder=text_encoder,
        vocab_size=vocab_size,
        sequence_length=sequence_length,
        hidden_dim=hidden_dim,
        num_layers=num_layers,
        num_heads=num_heads,
        intermediate_dim=intermediate_dim,
        dropout=dropout,
    )
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    padding_mask = keras.Input((None,), dtype="int32", name="padding_mask")
    inputs = {"token_ids": token_ids, "padding_mask": padding_mask}
    x = backbone(inputs)
    x = _recurrent_head(
        x, padding_mask, cell="gru", units=gru_units, num_layers=gru_layers,
        dropout=gru_dropout, name="head",
    )
    out = layers.Dense(1, dtype="float32", name=target)(x)
    return keras.Model(inputs, {target: out}, name="valence_regressor")


def load_backbone(model_dir, backbone_name):
    """The frozen sub-model `backbone_name` of the model saved in `model_dir` (or a `.keras` file)."""
    path = model_dir
    if os.path.isdir(model_dir):
        path = os.path.join(model_dir, "model.keras")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"no trained model at {path!r} (looked for model.keras in the --init_from directory)"
        )
    try:  # registers keras-hub classes a saved text backbone may use
        import keras_hub  # noqa: F401
    except ImportError:
        pass
    model = keras.saving.load_model(path, safe_mode=True, compile=False)
    try:
        backbone = model.get_layer(backbone_name)
    except ValueError:
        raise ValueError(
            f"{path}: the saved model {model.name!r} has no sub-model {backbone_name!r}; "
            f"was it trained as an S2 regressor?"
        ) from None
    freeze(backbone)
    return backbone


def freeze(layer):
    """Makes `layer` and every layer inside it non-trainable.

    Not `layer.trainable = False` alone: under the TensorFlow backend that assignment is skipped when
    the value does not change, and a layer deserialized with `trainable=False` (a frozen KoBERT inside
    a saved valence regressor) holds sublayers built afterwards that are still trainable, so they
    would be fine-tuned in stage 3.
    """
    for sub in layer._flatten_layers(include_self=True, recursive=True):
        keras.layers.Layer.trainable.fset(sub, False)


@registry.register(
    "va_fusion_classifier",
    modality="multimodal",
    seed="S2 (seed 002)",
    description="frozen arousal (audio) and valence (text) regressor backbones, sequences "
    "concatenated on time → 4 transformer blocks → 2-layer LSTM(128) → Dense; stage 3 of S2",
)
def va_fusion_classifier(
    *,
    num_classes,
    init_from=None,
    num_layers=4,
    num_heads=6,
    intermediate_dim=3072,
    dropout=0.1,
    lstm_units=128,
    lstm_layers=2,
    lstm_dropout=0.1,
):
    """Seed 002's classifier. `init_from` maps `arousal_regressor` and `valence_regressor` to the
    model directories (or `.keras` files) of the stage 1 and stage 2 runs."""
    init_from = dict(init_from or {})
    missing = [k for k in ("arousal_regressor", "valence_regressor") if k not in init_from]
    if missing:
        raise ValueError(
            "va_fusion_classifier needs the trained regressors: "
            f"--init_from=arousal_regressor=DIR,valence_regressor=DIR (missing: {', '.join(missing)})"
        )
    audio = load_backbone(init_from["arousal_regressor"], AUDIO_BACKBONE)
    text = load_backbone(init_from["valence_regressor"], TEXT_BACKBONE)
    audio_dim, text_dim = audio.output.shape[-1], text.output.shape[-1]
    if audio_dim != text_dim:
        raise ValueError(
            f"regressor widths differ: audio {audio_dim} vs text {text_dim}; they must match to "
            "concatenate on time"
        )
    feat_shape = audio.input["audio_features"].shape[1:]
    inputs = {
        "audio_features": keras.Input(feat_shape, name="audio_features"),
        "audio_mask": keras.Input((None,), dtype="int32", name="audio_mask"),
        "token_ids": keras.Input((None,), dtype="int32", name="token_ids"),
        "padding_mask": keras.Input((None,), dtype="int32", name="padding_mask"),
    }
    a = audio({"audio_features": inputs["audio_features"], "audio_mask": inputs["audio_mask"]})
    t = text({"token_ids": inputs["token_ids"], "padding_mask": inputs["padding_mask"]})
    x, mask = PackedConcatenate(name="concatenate_on_time")(
        a, inputs["audio_mask"], t, inputs["padding_mask"]
    )
    x = _blocks(
        x, mask, num_layers=num_layers, num_heads=num_heads,
        intermediate_dim=intermediate_dim, dropout=dropout, name="fusion",
    )
    x = _recurrent_head(
        x, mask, cell="lstm", units=lstm_units, num_layers=lstm_layers,
        dropout=lstm_dropout, name="head",
    )
    logits = layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, {"logits": logits}, name="va_fusion_classifier")


__all__ = [
    "AUDIO_BACKBONE",
    "TEXT_BACKBONE",
    "PackedConcatenate",
    "arousal_backbone",
    "arousal_regressor",
    "freeze",
    "load_backbone",
    "va_fusion_classifier",
    "valence_backbone",
    "valence_regressor",
]
