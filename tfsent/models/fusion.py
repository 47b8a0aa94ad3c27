"""Multimodal models: every registered Keras model that takes audio and text.

- `demo_fusion`: the design card's audio branch ‖ text branch → Dense head, with modality dropout.
- `mfcc_fusion`: per-clip MFCC means → Dense(128, relu) ‖ a small Macaron text encoder's [CLS]
  projection → the `NN_Classifier` head.
- `conv1d_fusion`: standardized [13-band log-Mel mean ‖ sentence embedding] → Conv1D(256, 5, same,
  relu) → Dropout(0.2) → Flatten → Dense(32, relu) → Dense. The standardization is a Keras
  `Normalization` layer; `tfsent.models.stages.adapt_normalization(model, train_dataset)` sets it.
- `va_fusion_classifier`: the arousal and valence regressors' backbones, loaded from their runs
  (`--init_from=arousal_regressor=DIR,valence_regressor=DIR`) and frozen, their sequences concatenated
  on time → transformer blocks → 2-layer LSTM → Dense.

Which seed each comes from is the registry's `seed` field (README's model table).

Example:

```python
model = registry.build("demo_fusion", num_classes=4, feature_dim=64, vocab_size=2000)
outputs = model({"audio_features": feats, "audio_mask": frame_mask,
                 "token_ids": ids, "padding_mask": token_mask})
outputs["logits"]  # [B, 4]
```
"""

from __future__ import annotations

from keras import layers

from tfsent.core import inputs
from tfsent.models import registry
from tfsent.models.audio_backbones import audio_branch, masked_clip_mean
from tfsent.models.heads import (
    classifier,
    dense_head,
    logits_layer,
    modality_heads,
    nn_classifier_head,
    recurrent_head,
)
from tfsent.models.layers import GatedSum, PackedConcatenate, SelectPosition
from tfsent.models.stages import AUDIO_BACKBONE, TEXT_BACKBONE, load_backbone
from tfsent.models.text_backbones import macaron_encoder, sentence_embedding, text_branch
from tfsent.models.transformer import encoder_blocks


def _audio_text_inputs(feature_dim=None, shape=None):
    return {**inputs.audio_inputs(feature_dim, shape=shape), **inputs.text_inputs()}


def late_fusion(branches, *, num_classes, aux_heads=False, modality_dropout=None, fusion="concat",
                gate_units=None):
    """The shared fusion step of the multimodal models: `{modality: [B, D_m]}` → (the concatenated
    embedding `[B, ΣD_m]`, the auxiliary outputs).

    Args:
        branches: one embedding per modality, in concatenation order.
        num_classes: classes of the auxiliary heads.
        aux_heads: add one linear classifier per modality (`audio_logits`, `text_logits`), trained by
            its own loss term (`--aux_loss_weight`), so the slower branch learns even when the fused
            head could fit the training set from the faster one alone.
        modality_dropout: `{modality: rate}`: zero that modality's whole embedding for a random
            fraction of training examples (the head must then decide from the other one).
        fusion: `concat` (the embeddings side by side) or `gated` (a gated multimodal unit: each
            embedding → Dense(`gate_units`, tanh), mixed by per-example softmax weights computed from
            all embeddings, so the head can lean on the voice when the words carry nothing).
        gate_units: width of the gated projections (default: the widest embedding).
    """
    modality_dropout = modality_dropout or {}
    dropped = []
    for modality, x in branches.items():
        rate = modality_dropout.get(modality) or 0.0
        if rate:
            x = layers.Dropout(rate, noise_shape=(None, 1), name=f"{modality}_modality_dropout")(x)
        dropped.append(x)
    if fusion == "gated":
        fused = _gated_fusion(dropped, list(branches), gate_units)
    elif fusion == "concat":
        fused = layers.Concatenate(name="fusion")(dropped)
    else:
        raise ValueError(f"fusion={fusion!r}: expected 'concat' or 'gated'")
    return fused, (modality_heads(branches, num_classes) if aux_heads else {})


def _gated_fusion(embeddings, names, units=None):
    """Gated multimodal unit (Arevalo et al., 2017) over any number of modalities: `Σ_m g_m · tanh(W_m x_m)`
    with `g = softmax(W_g [x_1 ‖ … ‖ x_M])` per example."""
    units = units or max(int(x.shape[-1]) for x in embeddings)
    projected = [layers.Dense(units, activation="tanh", name=f"{m}_gate_projection")(x)
                 for m, x in zip(names, embeddings)]
    gates = layers.Dense(len(names), activation="softmax", name="fusion_gates")(
        layers.Concatenate(name="gate_input")(embeddings))
    return GatedSum(name="fusion")(projected, gates)


@registry.register("demo_fusion", modality="multimodal", seed="design card",
                   description="Flagship demo: conv1d_mel audio branch ‖ text_cnn text branch → Dense "
                   "fusion head")
def demo_fusion(*, num_classes, feature_dim, vocab_size, filters=96, num_layers=3, embedding_dim=96,
                hidden=64, dropout=0.2, branch_dropout=0.1, modality_dropout=0.3,
                audio_modality_dropout=None, text_modality_dropout=None, aux_heads=False, fusion="concat"):
    """Late fusion of the two branches. `modality_dropout` zeroes one whole branch's embedding for a
    random fraction of training examples, so the head learns to cope with a missing modality (the
    exported model accepts an empty text or zero-length audio); `audio_modality_dropout` /
    `text_modality_dropout` set one modality's rate apart. `aux_heads`, `fusion` (`concat` / `gated`, by
    `--model_kwargs=fusion=gated`): see `late_fusion`."""
    audio = audio_branch(feature_dim=feature_dim, filters=filters, num_layers=num_layers,
                         dropout=branch_dropout)
    text = text_branch(vocab_size=vocab_size, embedding_dim=embedding_dim, filters=filters,
                       dropout=branch_dropout)
    feed = _audio_text_inputs(feature_dim)
    branches = {modality: branch({name: feed[name] for name in inputs.input_names(branch)})
                for modality, branch in (("audio", audio), ("text", text))}
    rates = {"audio": modality_dropout if audio_modality_dropout is None else audio_modality_dropout,
             "text": modality_dropout if text_modality_dropout is None else text_modality_dropout}
    x, aux = late_fusion(branches, num_classes=num_classes, aux_heads=aux_heads, modality_dropout=rates,
                         fusion=fusion)
    logits = dense_head(x, num_classes=num_classes, hidden=hidden, dropout=dropout)
    return classifier(feed, logits, "demo_fusion", aux)


@registry.register("mfcc_fusion", modality="multimodal", seed="S0 (seed 000)",
                   description="per-clip MFCC means → Dense(128, relu) ‖ small Macaron text encoder "
                   "[CLS] projection → NN_Classifier head")
def mfcc_fusion(*, num_classes, feature_dim=13, vocab_size=4096, sequence_length=64, audio_units=128,
                text_hidden_dim=256, text_num_layers=2, text_num_heads=4, text_intermediate_dim=1024,
                text_num_memory_kv=16, text_output_dim=1024, dropout=0.0, head_filters=128,
                head_dropout=0.1, aux_heads=False, audio_modality_dropout=0.0, text_modality_dropout=0.0,
                fusion="concat"):
    """MFCC means ‖ Macaron [CLS] fusion. Inputs `audio_features` `[B, T, n_mfcc]` + `audio_mask` (the
    per-clip mean over real frames is taken in the model) and `token_ids` + `padding_mask`. The text
    encoder's sizes are not given by the seed ("a small text encoder"); the defaults are ours.
    `aux_heads`, `<modality>_modality_dropout`, `fusion`: see `late_fusion`."""
    encoder = macaron_encoder(
        vocab_size=vocab_size, sequence_length=sequence_length, hidden_dim=text_hidden_dim,
        num_layers=text_num_layers, num_heads=text_num_heads, head_dim=text_hidden_dim // text_num_heads,
        intermediate_dim=text_intermediate_dim, num_memory_kv=text_num_memory_kv, dropout=dropout,
        name="text_encoder")
    feed = _audio_text_inputs(feature_dim)
    mfcc_mean = masked_clip_mean(feed, "mfcc_mean")
    audio = layers.Dense(audio_units, activation="relu", name="mfcc_dense")(mfcc_mean)
    text = SelectPosition(0, name="cls_token")(encoder({k: feed[k] for k in inputs.TEXT_INPUTS}))
    text = layers.Dense(text_output_dim, name="text_output_projection")(text)
    fused, aux = late_fusion({"audio": audio, "text": text}, num_classes=num_classes, aux_heads=aux_heads,
                             modality_dropout={"audio": audio_modality_dropout, "text": text_modality_dropout},
                             fusion=fusion)
    logits = nn_classifier_head(fused, num_classes=num_classes, filters=head_filters, dropout=head_dropout)
    return classifier(feed, logits, "mfcc_fusion", aux)


@registry.register("conv1d_fusion", modality="multimodal", seed="S1 (seed 001)",
                   description="standardized [13-band log-Mel mean ‖ frozen sentence embedding] → "
                   "Conv1D(256, k=5) → Dropout(0.2) → Dense(32, relu) → Dense; statistics from the "
                   "training split")
def conv1d_fusion(*, num_classes, feature_dim=13, text_encoder=None, vocab_size=None, pooling="cls",
                  hidden_dim=64, filters=256, kernel_size=5, dropout=0.2, dense_units=32,
                  freeze_text_encoder=True, aux_heads=False):
    """Log-Mel mean ‖ sentence embedding fusion. Inputs `audio_features` `[B, T, 13]` (log-Mel, the per-clip mean is
    taken in the model over real frames) + `audio_mask`, and `token_ids` + `padding_mask` for the
    sentence encoder (`text_encoder`, frozen as in the seed, which embedded sentences offline;
    without one a trainable `hidden_dim` embedding stands in). Call `adapt_normalization` with the
    training split before training so the `standardize` layer holds train-only statistics.
    `aux_heads`: one linear classifier on each modality's standardized part (see `late_fusion`)."""
    feed = _audio_text_inputs(feature_dim)
    sentence = sentence_embedding(feed, pooling=pooling, text_encoder=text_encoder, vocab_size=vocab_size,
                                  hidden_dim=hidden_dim, model="conv1d_fusion", freeze=freeze_text_encoder)
    fused = layers.Concatenate(name="fusion")([masked_clip_mean(feed, "log_mel_mean"), sentence])
    x = layers.Normalization(axis=-1, name="standardize")(fused)
    aux = modality_heads({"audio": x[:, :feature_dim], "text": x[:, feature_dim:]},
                         num_classes) if aux_heads else {}
    x = layers.Reshape((-1, 1), name="as_sequence")(x)
    x = layers.Conv1D(filters, kernel_size, padding="same", activation="relu", name="conv")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, activation="relu", name="dense")(x)
    return classifier(feed, logits_layer(x, num_classes), "conv1d_fusion", aux)


def _trained_backbones(init_from):
    """The frozen stage 1 and 2 backbones `va_fusion_classifier` is built on."""
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
    return audio, text


@registry.register("va_fusion_classifier", modality="multimodal", seed="S2 (seed 002)",
                   description="frozen arousal (audio) and valence (text) regressor backbones, sequences "
                   "concatenated on time → 4 transformer blocks → 2-layer LSTM(128) → Dense; stage 3 of "
                   "S2")
def va_fusion_classifier(*, num_classes, init_from=None, num_layers=4, num_heads=6, intermediate_dim=3072,
                         dropout=0.1, lstm_units=128, lstm_layers=2, lstm_dropout=0.1):
    """Stage 3 of the valence/arousal recipe. `init_from` maps `arousal_regressor` and `valence_regressor` to the model
    directories (or `.keras` files) of the stage 1 and stage 2 runs."""
    audio, text = _trained_backbones(init_from)
    feed = _audio_text_inputs(shape=audio.input[inputs.AUDIO_FEATURES].shape[1:])
    a = audio({k: feed[k] for k in (inputs.AUDIO_FEATURES, inputs.AUDIO_MASK)})
    t = text({k: feed[k] for k in inputs.TEXT_INPUTS})
    x, mask = PackedConcatenate(name="concatenate_on_time")(
        a, feed[inputs.AUDIO_MASK], t, feed[inputs.PADDING_MASK]
    )
    x = encoder_blocks(x, mask, num_layers=num_layers, num_heads=num_heads,
                       intermediate_dim=intermediate_dim, dropout=dropout, prefix="fusion_block_")
    x = recurrent_head(x, mask, cell="lstm", units=lstm_units, num_layers=lstm_layers,
                       dropout=lstm_dropout, name="head")
    return classifier(feed, logits_layer(x, num_classes), "va_fusion_classifier")
