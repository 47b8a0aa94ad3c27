"""Audio models: every registered Keras model that takes audio only.

- `conv1d_mel`: the design card's Conv1D audio branch + Dense head.
- `resnet_mel`: a ResNet (basic blocks) over the log-Mel image, padding-masked end to end.
- `w2v2_classifier`: a wav2vec 2.0 encoder (random or a pretrained checkpoint) → masked mean+std
  pooling of every hidden state → softmax-weighted layer sum → dropout → Dense.
- `arousal_regressor`: frequency-only Conv2D → post-norm transformer blocks → GRU → Dense(1).

Which seed each comes from is the registry's `seed` field (README's model table).

Example:

```python
model = registry.build("resnet_mel", num_classes=4, feature_dim=128)
model({"audio_features": x, "audio_mask": m})["logits"]
```
"""

from __future__ import annotations

from tfsent.core import inputs
from tfsent.models import registry
from tfsent.models.audio_backbones import (
    arousal_backbone,
    audio_branch,
    resnet_features,
    wav2vec2_encoder,
)
from tfsent.models.heads import (
    branch_classifier,
    classifier,
    dropout_head,
    layer_statistics_head,
    recurrent_regressor,
)


@registry.register("conv1d_mel", modality="audio", seed="design card",
                   description="Conv1D stack over log-Mel frames (Mel bands as channels), masked "
                   "mean+max pooling, Dense")
def conv1d_mel(*, num_classes, feature_dim, filters=96, num_layers=3, hidden=64, dropout=0.2,
               branch_dropout=0.1):
    """The design card's audio baseline: `audio_branch` (the audio half of `demo_fusion`) → Dense head.

    `filters`, `num_layers` and `branch_dropout` configure the branch; `hidden` and `dropout` the head.
    """
    branch = audio_branch(feature_dim=feature_dim, filters=filters, num_layers=num_layers,
                          dropout=branch_dropout)
    return branch_classifier(branch, inputs.audio_inputs(feature_dim), num_classes=num_classes,
                             hidden=hidden, dropout=dropout, name="conv1d_mel")


@registry.register("resnet_mel", modality="audio", seed="S1 (seed 001)",
                   description="ResNet (basic blocks, ResNet-18 layout by default) over the log-Mel "
                   "image (n_fft 400, hop 160, 128 bands), padding re-zeroed after every conv, masked "
                   "pooling")
def resnet_mel(*, num_classes, feature_dim=128, feature_channels=1, widths=(64, 128, 256, 512),
               blocks_per_stage=(2, 2, 2, 2), stem_kernel=7, dropout=0.0):
    """ResNet over `audio_features` `[B, T, F]` (or `[B, T, F, C]`) with `audio_mask` (see
    `resnet_features`: a clip's logits do not depend on its batch in inference mode)."""
    feed = inputs.audio_inputs(feature_dim, feature_channels)
    x = resnet_features(feed, feature_dim=feature_dim, widths=widths, blocks_per_stage=blocks_per_stage,
                        stem_kernel=stem_kernel)
    return classifier(feed, dropout_head(x, num_classes, dropout), "resnet_mel")


def w2v2_classifier_from_encoder(encoder, *, num_classes, dropout=0.2, freeze_feature_encoder=True):
    """The wav2vec2 classifier head on any encoder with the `tfsent.encoders.audio` interface.

    `encoder` takes `{"waveform", "waveform_mask"}` and returns `{"hidden_states": [B, N, T', D],
    "frame_mask": [B, T']}` (one converted from a Hugging Face checkpoint by
    `tfsent.encoders.load_audio_encoder`, or `wav2vec2_encoder`). With `freeze_feature_encoder`,
    every layer whose name starts with `feature_extractor` is frozen (as in the seed).
    """
    if freeze_feature_encoder:
        for layer in encoder.layers:
            if layer.name.startswith("feature_extractor"):
                layer.trainable = False
    feed = inputs.waveform_inputs()
    outputs = encoder(feed)
    logits = layer_statistics_head(outputs["hidden_states"], outputs["frame_mask"],
                                   num_classes=num_classes, dropout=dropout)
    return classifier(feed, logits, "w2v2_classifier")


@registry.register("w2v2_classifier", modality="audio", seed="S0 (seed 000)",
                   description="wav2vec 2.0-style encoder (first num_layers transformer layers kept; "
                   "seed: 3), masked mean+std pooling of every layer, softmax-weighted layer sum, "
                   "dropout 0.2, Dense")
def w2v2_classifier(*, num_classes, num_layers=3, hidden_dim=1024, num_heads=16, intermediate_dim=4096,
                    conv_dim=(512,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2),
                    conv_stride=(5, 2, 2, 2, 2, 2, 2), feat_extract_norm="layer", stable_layer_norm=True,
                    pos_conv_kernel=128, pos_conv_groups=16, encoder_dropout=0.1, dropout=0.2,
                    freeze_feature_encoder=True, audio_encoder=None):
    """Randomly initialised (`wav2vec2_encoder`; defaults: the large / XLSR layout), or on a pretrained
    `audio_encoder` (what `tfsent.encoders.load_audio_encoder` returns, or its `.model`; `bin/train
    --audio_encoder=DIR` loads it with `num_layers` layers), in which case the architecture arguments
    (`hidden_dim` ... `encoder_dropout`) are not used."""
    if audio_encoder is None:
        audio_encoder = wav2vec2_encoder(
            **registry.arguments_for(wav2vec2_encoder, locals(), dropout=encoder_dropout))
    return w2v2_classifier_from_encoder(
        getattr(audio_encoder, "model", audio_encoder),
        num_classes=num_classes,
        dropout=dropout,
        freeze_feature_encoder=freeze_feature_encoder,
    )


@registry.register("arousal_regressor", modality="audio", task="regression", seed="S2 (seed 002)",
                   description="log-Mel+delta → frequency-only Conv2D → post-norm transformer blocks "
                   "(padding mask) → 2-layer GRU(64) → last real step → Dense(1); stage 1 of the S2 "
                   "recipe")
def arousal_regressor(*, feature_dim=128, feature_channels=2, conv_channels=(8, 8, 24, 24), num_layers=7,
                      num_heads=6, intermediate_dim=1024, dropout=0.1, gru_units=64, gru_layers=2,
                      gru_dropout=0.1, target="arousal"):
    """Stage 1 of the valence/arousal recipe: `audio_features` `[B, T=512, 128, 2]` (log-Mel+delta) → `arousal_backbone`
    (the nested model stage 3 loads) → GRU head; output key `target` (`arousal`), `[B, 1]` float32."""
    backbone = arousal_backbone(
        **registry.arguments_for(arousal_backbone, locals(), conv_channels=tuple(conv_channels)))
    feed = inputs.audio_inputs(None, shape=backbone.input[inputs.AUDIO_FEATURES].shape[1:])
    return recurrent_regressor(backbone, feed, feed[inputs.AUDIO_MASK], gru_units=gru_units,
                               gru_layers=gru_layers, gru_dropout=gru_dropout, target=target,
                               name="arousal_regressor")
