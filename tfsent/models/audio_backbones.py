"""Audio backbones: functional sub-models and blocks that turn audio inputs into features.

- `audio_branch`: Conv1D stack over log-Mel frames + masked mean‖max pooling (the design card).
- `resnet_features`: a ResNet (basic blocks) over the log-Mel image, padding-masked end to end.
- `arousal_backbone`: frequency-only Conv2D stack → post-norm transformer blocks (seed 002).
- `wav2vec2_encoder`: a randomly initialised wav2vec 2.0 encoder, the same Keras model
  `tfsent.encoders.audio` converts Hugging Face checkpoints into.

Every backbone takes the Contract-2 inputs (`tfsent.core.inputs`) and honours their masks.

Example:

```python
branch = audio_branch(feature_dim=64)
branch(inputs.audio_inputs(64))  # [B, 2 * 96]
```
"""

from __future__ import annotations

import keras
from keras import layers

from tfsent.core import inputs
from tfsent.encoders.audio import build_audio_encoder
from tfsent.models.layers import (
    ApplyTimeMask,
    DownsampleMask,
    MaskedGlobalAveragePooling1D,
    MeanOverAxis,
    mask_channel,
    masked_mean_max,
)
from tfsent.models.stages import AUDIO_BACKBONE
from tfsent.models.transformer import encoder_blocks

# === Shared blocks ===


def as_image(features, feature_dim):
    """Rank-3 features `[B, T, F]` as a one-channel image `[B, T, F, 1]`; rank-4 ones unchanged."""
    if len(features.shape) == 4:
        return features
    return layers.Reshape((-1, feature_dim, 1), name="add_channel")(features)


def masked_clip_mean(feed, name):
    """The per-clip mean of `audio_features` over its real frames `[B, F]`."""
    return MaskedGlobalAveragePooling1D(name=name)(feed[inputs.AUDIO_FEATURES], feed[inputs.AUDIO_MASK])


# === Functional Model ===


def audio_branch(*, feature_dim: int, filters: int = 96, kernel_size: int = 5, num_layers: int = 3,
                 dropout: float = 0.1, name: str = "audio_branch") -> keras.Model:
    """Conv1D stack over log-Mel frames (time = sequence axis, Mel bands = channels) + masked pooling.

    Inputs `audio_features` float32 [B, T, F] and `audio_mask` int32 [B, T]; output [B, 2*filters]
    (masked mean ‖ masked max over real frames). Padding frames are zeroed before every convolution so
    a clip's output does not depend on how much padding its batch added ("same" padding would otherwise
    let zeros and neighbour frames leak in at the clip's end).
    """
    feed = inputs.audio_inputs(feature_dim)
    mask = feed[inputs.AUDIO_MASK]
    mask_f = mask_channel(mask, name)
    # log-Mel in dB (ref=max, top_db 80) lies in [-80, 0]: a fixed affine map keeps the spectral
    # level differences a per-frame normalisation would erase.
    x = layers.Rescaling(1.0 / 40.0, offset=1.0, name=f"{name}_input_scale")(feed[inputs.AUDIO_FEATURES])
    for i in range(num_layers):
        x = layers.Multiply(name=f"{name}_zero_pad_{i}")([x, mask_f])
        # Dilations 1, 2, 4, ... widen the receptive field to syllable scale (rate, pitch contour).
        x = layers.Conv1D(filters, kernel_size, padding="same", dilation_rate=2**i, name=f"{name}_conv_{i}")(x)
        # LayerNorm, not BatchNorm: a clip's output must not depend on its batch (padding, neighbours,
        # replicas), in training as in serving.
        x = layers.LayerNormalization(name=f"{name}_norm_{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu_{i}")(x)
        x = layers.SpatialDropout1D(dropout, name=f"{name}_dropout_{i}")(x)
    return keras.Model(feed, masked_mean_max(x, mask, name), name=name)


def _conv_bn(x, mask, filters, kernel, stride, name, relu=True):
    """Explicitly padded conv (frame i centred on input frame i*stride whatever T) + BN (+ ReLU)."""
    pad = kernel // 2
    if pad:
        x = layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
    x = layers.Conv2D(filters, kernel, strides=stride, use_bias=False, name=f"{name}_conv")(x)
    if stride > 1:
        mask = DownsampleMask(stride, name=f"{name}_mask")(mask)
    x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=f"{name}_bn")(x)
    if relu:
        x = layers.Activation("relu", name=f"{name}_relu")(x)
    return ApplyTimeMask(name=f"{name}_zero_padding")(x, mask), mask


def _basic_block(x, mask, filters, stride, name):
    shortcut, short_mask = x, mask
    y, mask = _conv_bn(x, mask, filters, 3, stride, f"{name}_a")
    y, mask = _conv_bn(y, mask, filters, 3, 1, f"{name}_b", relu=False)
    if stride > 1 or x.shape[-1] != filters:
        shortcut, short_mask = _conv_bn(shortcut, short_mask, filters, 1, stride, f"{name}_proj", relu=False)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    y = layers.Activation("relu", name=f"{name}_relu")(y)
    return y, mask


def resnet_features(feed, *, feature_dim, widths, blocks_per_stage, stem_kernel):
    """ResNet over the log-Mel image of `feed` (Contract-2 audio inputs) → masked time mean `[B, C]`.

    Strided convolutions are explicitly padded and the time mask is downsampled with them; padded
    frames are zeroed after every convolution, so a clip's features do not depend on its batch (in
    inference mode; BatchNorm batch statistics during training include zeroed padding frames).
    """
    if len(widths) != len(blocks_per_stage):
        raise ValueError(f"widths {widths} and blocks_per_stage {blocks_per_stage} differ in length")
    mask = feed[inputs.AUDIO_MASK]
    x = ApplyTimeMask(name="zero_padding_input")(as_image(feed[inputs.AUDIO_FEATURES], feature_dim), mask)
    x, m = _conv_bn(x, mask, widths[0], stem_kernel, 2, "stem")
    x = layers.ZeroPadding2D(1, name="stem_pool_pad")(x)  # post-ReLU values ≥ 0: zero = -inf here
    x = layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)
    m = DownsampleMask(2, name="stem_pool_mask")(m)
    x = ApplyTimeMask(name="stem_pool_zero_padding")(x, m)
    for s, (width, blocks) in enumerate(zip(widths, blocks_per_stage)):
        for b in range(blocks):
            stride = 2 if (b == 0 and s > 0) else 1
            x, m = _basic_block(x, m, width, stride, f"stage{s}_block{b}")
            x = ApplyTimeMask(name=f"stage{s}_block{b}_zero_padding")(x, m)
    x = MeanOverAxis(2, name="mean_over_frequency")(x)
    return MaskedGlobalAveragePooling1D(name="time_pool")(x, m)


def arousal_backbone(*, feature_dim, feature_channels, conv_channels, num_layers, num_heads,
                     intermediate_dim, dropout, conv_kernels=(4, 7, 4, 7), conv_strides=(2, 1, 2, 1)):
    """The audio part of the arousal regressor, a nested model named `AUDIO_BACKBONE`.

    `[B, T, F, C]` + mask → frequency-only Conv2D stack (time steps stay independent) → `[B, T, F/4 ·
    24]` (768 for F=128) → `num_layers` post-norm transformer blocks.
    """
    feed = inputs.audio_inputs(feature_dim, feature_channels)
    mask = feed[inputs.AUDIO_MASK]
    x = ApplyTimeMask(name="zero_padding_frames")(as_image(feed[inputs.AUDIO_FEATURES], feature_dim), mask)
    freq = feature_dim
    for i, (c, k, s) in enumerate(zip(conv_channels, conv_kernels, conv_strides)):
        # Kernels span frequency only, so each time step is transformed independently.
        x = layers.Conv2D(c, (1, k), strides=(1, s), padding="same", use_bias=False, name=f"freq_conv_{i}")(x)
        freq = -(-freq // s)
    x = layers.Reshape((-1, freq * conv_channels[-1]), name="frames")(x)
    x = encoder_blocks(x, mask, num_layers=num_layers, num_heads=num_heads,
                       intermediate_dim=intermediate_dim, dropout=dropout, prefix="audio_block_")
    return keras.Model(feed, x, name=AUDIO_BACKBONE)


def wav2vec2_encoder(*, conv_dim, conv_kernel, conv_stride, feat_extract_norm, hidden_dim, num_layers,
                     num_heads, intermediate_dim, pos_conv_kernel, pos_conv_groups, stable_layer_norm,
                     dropout, conv_bias=True, layer_norm_epsilon=1e-5):
    """A randomly initialised wav2vec 2.0 encoder: `tfsent.encoders.audio.build_audio_encoder` on the
    Hugging Face config these arguments describe, so it has exactly the layers (and the padding
    handling) of an encoder loaded from a checkpoint.

    Inputs `waveform` float32 `[B, S]`, `waveform_mask` int32 `[B, S]`; outputs `hidden_states`
    `[B, num_layers + 1, T', hidden_dim]`, `sequence_output` and `frame_mask` int32 `[B, T']`.
    `feat_extract_norm="layer"` (large/XLSR) normalises every conv output per frame; `"group"` (base)
    the first conv per channel over the real frames. The waveform is used as given (no in-graph
    normalisation, which only checkpoints whose preprocessor asks for it get).
    """
    if feat_extract_norm not in ("layer", "group"):
        raise ValueError(f"feat_extract_norm must be 'layer' or 'group', got {feat_extract_norm!r}")
    if not (len(conv_dim) == len(conv_kernel) == len(conv_stride)):
        raise ValueError(
            f"conv_dim, conv_kernel and conv_stride must have the same length, got "
            f"{conv_dim}, {conv_kernel}, {conv_stride}"
        )
    config = {
        "model_type": "wav2vec2", "conv_dim": list(conv_dim), "conv_kernel": list(conv_kernel),
        "conv_stride": list(conv_stride), "conv_bias": conv_bias, "feat_extract_norm": feat_extract_norm,
        "hidden_size": hidden_dim, "num_hidden_layers": num_layers, "num_attention_heads": num_heads,
        "intermediate_size": intermediate_dim, "num_conv_pos_embeddings": pos_conv_kernel,
        "num_conv_pos_embedding_groups": pos_conv_groups, "do_stable_layer_norm": stable_layer_norm,
        "hidden_dropout": dropout, "layer_norm_eps": layer_norm_epsilon,
    }
    return build_audio_encoder(config, normalize=False)
