"""wav2vec 2.0 / HuBERT encoders in Keras, loaded from local Hugging Face checkpoints.

    enc = load_audio_encoder("/models/wav2vec2-large-xlsr-korean", num_layers=3)
    out = enc.model({"waveform": wav, "waveform_mask": mask})
    out["hidden_states"]  # [B, N+1, T, H]: embeddings, layer 1 .. layer N output
    out["frame_mask"]     # [B, T] int32

Architecture per `config.json`: convolutional feature encoder with group norm
(first layer, `feat_extract_norm="group"`) or layer norm (every layer), feature
projection, grouped convolutional positional embedding (weight-normalised),
post-norm transformer (`do_stable_layer_norm=False`) or pre-norm with a final
layer norm (`True`). `hidden_states` follows the transformers 4 convention used
by the seed systems: the last entry is the encoder output (after the final layer
norm of pre-norm models). With `num_layers=N` only the first N layers are kept
(the final layer norm of pre-norm models still applies), as Hugging Face does
for `num_hidden_layers=N`.

Padding: every example's outputs on its real frames equal Hugging Face's for
that example alone, unpadded. Group norm statistics and attention are computed
over real frames only and padded frames are zeroed before the positional
convolution. (Hugging Face feeds group-norm checkpoints padded batches without an
attention mask, so there the outputs depend on how much padding a batch has.)
If `preprocessor_config.json` says `do_normalize` (zero mean, unit variance per
utterance, as `Wav2Vec2FeatureExtractor` does), the model does it in-graph over
the real samples.
"""

import dataclasses

import keras
import numpy as np
from keras import ops

from tfsent.core import inputs
from tfsent.encoders.checkpoint import CheckpointError
from tfsent.encoders import porting

AUDIO_FAMILIES = ("wav2vec2", "hubert")


def conv_output_lengths(lengths, kernels, strides):
    """Frames after valid 1-D convolutions: floor((L - k) / s) + 1 per layer."""
    for k, s in zip(kernels, strides):
        lengths = ops.maximum(ops.floor_divide(lengths - k, s) + 1, 0)
    return lengths


def _sequence_mask(lengths, maxlen):
    return ops.cast(ops.arange(maxlen)[None, :] < lengths[:, None], "float32")


# === Layers ===

@keras.saving.register_keras_serializable(package="tfsent")
class WaveformNormalization(keras.layers.Layer):
    """Zero mean, unit variance over each waveform's real samples (padding -> 0).

    Args:
        epsilon: added to the variance (Hugging Face uses 1e-7).

    Example:
    >>> y = WaveformNormalization()(wav, mask)  # doctest: +SKIP
    """

    def __init__(self, epsilon=1e-7, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, waveform, mask):
        # Statistics in float32 whatever the policy (1e-7 underflows in float16).
        dtype = waveform.dtype
        waveform = ops.cast(waveform, "float32")
        mask = ops.cast(mask, "float32")
        n = ops.maximum(ops.sum(mask, axis=1, keepdims=True), 1.0)
        mean = ops.sum(waveform * mask, axis=1, keepdims=True) / n
        var = ops.sum(ops.square(waveform - mean) * mask, axis=1, keepdims=True) / n
        return ops.cast((waveform - mean) / ops.sqrt(var + self.epsilon) * mask, dtype)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="tfsent")
class FeatureEncoder(keras.layers.Layer):
    """wav2vec 2.0 convolutional feature encoder with masked group norm.

    Args:
        conv_dim, conv_kernel, conv_stride: per-layer channels, kernels, strides.
        conv_bias: bool, convolutions have biases.
        norm: "group" (group norm with one group per channel on layer 0,
            statistics over real frames only) or "layer" (layer norm on every
            layer, over channels).
        activation: activation after each layer (Hugging Face's
            `feat_extract_activation`).

    Call: `(waveform [B, S], lengths [B]) -> (features [B, T, C], frame_lengths [B])`.

    Example:
    >>> fe = FeatureEncoder([512] * 7, [10, 3, 3, 3, 3, 2, 2], [5, 2, 2, 2, 2, 2, 2])
    >>> feats, n = fe(wav, lengths)  # doctest: +SKIP
    """

    def __init__(self, conv_dim, conv_kernel, conv_stride, conv_bias=False,
                 norm="group", activation="gelu", **kwargs):
        super().__init__(**kwargs)
        if norm not in ("group", "layer"):
            raise ValueError(f"norm must be 'group' or 'layer', got {norm!r}.")
        self.conv_dim, self.conv_kernel = list(conv_dim), list(conv_kernel)
        self.conv_stride, self.conv_bias = list(conv_stride), bool(conv_bias)
        self.norm, self.activation = norm, activation
        self.convs = [
            keras.layers.Conv1D(d, k, strides=s, use_bias=self.conv_bias,
                                dtype=self.dtype_policy, name=f"conv_{i}")
            for i, (d, k, s) in enumerate(zip(conv_dim, conv_kernel, conv_stride))
        ]
        n_norms = 1 if norm == "group" else len(conv_dim)
        # Layer 0's group norm keeps its own gamma/beta; the stats are masked.
        self.norms = [
            keras.layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy,
                                            name=f"norm_{i}")
            for i in range(n_norms)
        ]
        self._act = keras.activations.get(activation)

    def build(self, input_shape):
        shape = (None, None, 1)
        for i, conv in enumerate(self.convs):
            conv.build(shape)
            shape = (None, None, self.conv_dim[i])
            if i < len(self.norms):
                self.norms[i].build(shape)
        self.built = True

    def _masked_group_norm(self, x, frame_mask, layer):
        dtype = x.dtype
        x = ops.cast(x, "float32")
        m = frame_mask[:, :, None]
        n = ops.maximum(ops.sum(m, axis=1, keepdims=True), 1.0)
        mean = ops.sum(x * m, axis=1, keepdims=True) / n
        var = ops.sum(ops.square(x - mean) * m, axis=1, keepdims=True) / n
        x = (x - mean) / ops.sqrt(var + layer.epsilon)
        x = x * ops.cast(layer.gamma, "float32") + ops.cast(layer.beta, "float32")
        return ops.cast(x, dtype)

    def call(self, waveform, lengths):
        x = ops.expand_dims(waveform, -1)
        for i, conv in enumerate(self.convs):
            x = conv(x)
            lengths = conv_output_lengths(lengths, [self.conv_kernel[i]], [self.conv_stride[i]])
            if self.norm == "group" and i == 0:
                x = self._masked_group_norm(x, _sequence_mask(lengths, ops.shape(x)[1]),
                                            self.norms[0])
            elif self.norm == "layer":
                x = self.norms[i](x)
            x = self._act(x)
        return x, lengths

    def get_config(self):
        return {**super().get_config(), "conv_dim": self.conv_dim,
                "conv_kernel": self.conv_kernel, "conv_stride": self.conv_stride,
                "conv_bias": self.conv_bias, "norm": self.norm,
                "activation": self.activation}


@keras.saving.register_keras_serializable(package="tfsent")
class PositionalConvEmbedding(keras.layers.Layer):
    """wav2vec 2.0 relative positions: grouped 'same' convolution + GELU.

    Args:
        hidden_size: channels.
        kernel_size: `num_conv_pos_embeddings` (an even kernel drops the last
            output frame, as Hugging Face's `SamePad` does).
        groups: `num_conv_pos_embedding_groups`.
        activation: `feat_extract_activation`.

    Example:
    >>> pos = PositionalConvEmbedding(768, 128, 16)(x)  # doctest: +SKIP
    """

    def __init__(self, hidden_size, kernel_size, groups, activation="gelu", **kwargs):
        super().__init__(**kwargs)
        self.hidden_size, self.kernel_size = hidden_size, kernel_size
        self.groups, self.activation = groups, activation
        self.conv = keras.layers.Conv1D(hidden_size, kernel_size, groups=groups,
                                        dtype=self.dtype_policy, name="conv")
        self._act = keras.activations.get(activation)

    def build(self, input_shape):
        self.conv.build((None, None, self.hidden_size))
        self.built = True

    def call(self, x):
        pad = self.kernel_size // 2
        y = ops.pad(x, [[0, 0], [pad, pad], [0, 0]])
        y = self.conv(y)
        if self.kernel_size % 2 == 0:
            y = y[:, :-1, :]
        return self._act(y)

    def get_config(self):
        return {**super().get_config(), "hidden_size": self.hidden_size,
                "kernel_size": self.kernel_size, "groups": self.groups,
                "activation": self.activation}


@keras.saving.register_keras_serializable(package="tfsent")
class FrameMask(keras.layers.Layer):
    """Frame lengths [B] + a [B, T, ...] tensor -> int32 mask [B, T]."""

    def call(self, lengths, like):
        return ops.cast(_sequence_mask(lengths, ops.shape(like)[1]), "int32")


@keras.saving.register_keras_serializable(package="tfsent")
class SampleLengths(keras.layers.Layer):
    """waveform_mask [B, S] -> lengths [B] (int32)."""

    def call(self, mask):
        return ops.sum(ops.cast(mask, "int32"), axis=1)


@dataclasses.dataclass
class AudioEncoder:
    """A loaded wav2vec 2.0 / HuBERT encoder.

    Attributes:
        model: keras.Model, inputs `waveform` float32 [B, S] and `waveform_mask`
            int32 [B, S]; outputs dict `hidden_states` [B, N+1, T, H] (zero on
            padded frames), `sequence_output` [B, T, H] (the last entry) and
            `frame_mask` int32 [B, T].
        hidden_size: int H.
        num_layers: int N, transformer layers kept.
        family: "wav2vec2" or "hubert".
        sample_rate: expected input rate (16000).
        path: the checkpoint folder.
    """

    model: keras.Model
    hidden_size: int
    num_layers: int
    family: str
    sample_rate: int
    path: str

    @property
    def feature_encoder(self):
        """The convolutional feature encoder layer, named `feature_extractor` as in
        Hugging Face (freeze it with `.trainable`)."""
        return self.model.get_layer("feature_extractor")


def build_audio_encoder(config, num_layers=None, normalize=True, name=None):
    """The Keras wav2vec 2.0 / HuBERT encoder for a Hugging Face config (random weights).

    `load_audio_encoder` ports a checkpoint's weights into it; `tfsent.models.audio_backbones.
    wav2vec2_encoder` builds it from `w2v2_classifier`'s arguments, so a randomly initialised and a
    pretrained classifier have the same layers.
    """
    c = config
    family = c.get("model_type", "wav2vec2")
    total = c["num_hidden_layers"]
    n = total if num_layers is None else int(num_layers)
    if not 0 <= n <= total:
        raise ValueError(f"num_layers must be in [0, {total}], got {num_layers}.")
    H = c["hidden_size"]
    eps = c.get("layer_norm_eps", 1e-5)
    stable = bool(c.get("do_stable_layer_norm", False))
    act = porting.ACTIVATIONS.get(c.get("hidden_act", "gelu"))
    if act is None:
        raise CheckpointError(f"hidden_act {c.get('hidden_act')!r} is not supported.")
    feat_act = porting.ACTIVATIONS.get(c.get("feat_extract_activation", "gelu"), "gelu")
    proj_norm = c.get("feat_proj_layer_norm", True) if family == "hubert" else True

    # === Layers ===
    normalizer = WaveformNormalization(name="waveform_normalization") if normalize else None
    feature_encoder = FeatureEncoder(
        c["conv_dim"], c["conv_kernel"], c["conv_stride"], c.get("conv_bias", False),
        norm=c.get("feat_extract_norm", "group"), activation=feat_act,
        name="feature_extractor")
    projection_norm = (keras.layers.LayerNormalization(epsilon=eps, name="feature_projection_norm")
                       if proj_norm else None)
    projection = keras.layers.Dense(H, name="feature_projection")
    dropout = keras.layers.Dropout(c.get("hidden_dropout", 0.1), name="encoder_dropout")
    pos_conv = PositionalConvEmbedding(H, c["num_conv_pos_embeddings"],
                                       c["num_conv_pos_embedding_groups"], activation=feat_act,
                                       name="positional_conv_embedding")
    encoder_norm = keras.layers.LayerNormalization(epsilon=eps, name="encoder_layer_norm")
    blocks = porting.transformer_layers(
        n, intermediate_dim=c["intermediate_size"], num_heads=c["num_attention_heads"],
        dropout=c.get("hidden_dropout", 0.1), activation=act, layer_norm_epsilon=eps,
        normalize_first=stable)

    # === Functional Model ===
    feed = inputs.waveform_inputs()
    waveform, waveform_mask = feed[inputs.WAVEFORM], feed[inputs.WAVEFORM_MASK]
    lengths = SampleLengths(name="sample_lengths")(waveform_mask)
    x = waveform if normalizer is None else normalizer(waveform, waveform_mask)
    x, frame_lengths = feature_encoder(x, lengths)
    frame_mask = FrameMask(name="frame_mask")(frame_lengths, x)
    if projection_norm is not None:
        x = projection_norm(x)
    x = projection(x)
    fmask = ops.cast(frame_mask, x.dtype)[:, :, None]
    x = x * fmask
    x = x + pos_conv(x)
    if not stable:
        x = encoder_norm(x)
    x = dropout(x)
    states = [x]
    for block in blocks:
        x = block(x, padding_mask=frame_mask)
        states.append(x)
    if stable:
        states[-1] = encoder_norm(states[-1])
    states = [s * fmask for s in states]
    hidden_states = ops.stack(states, axis=1)
    return keras.Model(
        inputs=feed,
        outputs={"hidden_states": hidden_states, "sequence_output": states[-1],
                 "frame_mask": frame_mask},
        name=name or f"{family}_encoder",
    )


def _pos_conv_kernel(ckpt, H, K, groups):
    base = "encoder.pos_conv_embed.conv."
    shape_v = (H, H // groups, K)
    if ckpt.has(base + "weight_g") or ckpt.has(base + "parametrizations.weight.original0"):
        if ckpt.has(base + "weight_g"):
            g, v = ckpt.get(base + "weight_g", (1, 1, K)), ckpt.get(base + "weight_v", shape_v)
        else:
            g = ckpt.get(base + "parametrizations.weight.original0", (1, 1, K))
            v = ckpt.get(base + "parametrizations.weight.original1", shape_v)
        # torch weight_norm(dim=2): one norm per kernel tap over (out, in).
        norm = np.sqrt(np.sum(np.square(v), axis=(0, 1), keepdims=True))
        w = g * v / norm
    else:
        w = ckpt.get(base + "weight", shape_v)
    return np.transpose(w, (2, 1, 0))


def port_audio_weights(model, ckpt, config):
    """Copies Hugging Face wav2vec2/HuBERT weights into `build_audio_encoder`'s model."""
    c = config
    H = c["hidden_size"]
    fe = model.get_layer("feature_extractor")
    in_dim = 1
    for i, conv in enumerate(fe.convs):
        name = f"feature_extractor.conv_layers.{i}.conv"
        w = ckpt.get(name + ".weight", (c["conv_dim"][i], in_dim, c["conv_kernel"][i]))
        porting.assign(conv.kernel, np.transpose(w, (2, 1, 0)), name)
        if fe.conv_bias:
            porting.assign(conv.bias, ckpt.get(name + ".bias", (c["conv_dim"][i],)), name)
        if i < len(fe.norms):
            porting.port_norm(ckpt, fe.norms[i], f"feature_extractor.conv_layers.{i}.layer_norm",
                              c["conv_dim"][i])
        in_dim = c["conv_dim"][i]
    layer_names = {layer.name for layer in model.layers}
    if "feature_projection_norm" in layer_names:
        porting.port_norm(ckpt, model.get_layer("feature_projection_norm"),
                          "feature_projection.layer_norm", in_dim)
    porting.port_dense(ckpt, model.get_layer("feature_projection"), "feature_projection.projection",
                       in_dim, H)
    pos = model.get_layer("positional_conv_embedding")
    porting.assign(pos.conv.kernel, _pos_conv_kernel(ckpt, H, pos.kernel_size, pos.groups),
                   "encoder.pos_conv_embed.conv")
    porting.assign(pos.conv.bias, ckpt.get("encoder.pos_conv_embed.conv.bias", (H,)),
                   "encoder.pos_conv_embed.conv.bias")
    porting.port_norm(ckpt, model.get_layer("encoder_layer_norm"), "encoder.layer_norm", H)
    i = 0
    while f"transformer_layer_{i}" in layer_names:
        p = f"encoder.layers.{i}."
        names = dict(q=p + "attention.q_proj", k=p + "attention.k_proj", v=p + "attention.v_proj",
                     o=p + "attention.out_proj", ln1=p + "layer_norm",
                     ff1=p + "feed_forward.intermediate_dense", ff2=p + "feed_forward.output_dense",
                     ln2=p + "final_layer_norm")
        porting.port_transformer_layer(ckpt, model.get_layer(f"transformer_layer_{i}"), names, H,
                                       c["num_attention_heads"], c["intermediate_size"])
        i += 1


def load_audio_encoder(path, num_layers=None, normalize=None):
    """Loads a wav2vec 2.0 / HuBERT encoder from a local Hugging Face checkpoint.

    Args:
        path: folder with config.json and model.safetensors (and optionally
            preprocessor_config.json).
        num_layers: keep only the first N transformer layers (None: all).
        normalize: per-utterance waveform normalisation; None reads
            `do_normalize` from preprocessor_config.json (default True).

    Returns:
        An `AudioEncoder`.

    Example:
    >>> enc = load_audio_encoder("/models/w2v2-xlsr-ko", num_layers=3)  # doctest: +SKIP
    """
    ckpt, config_file = porting.read_supported_checkpoint(
        path, anchors=("feature_projection.projection.weight",), families=AUDIO_FAMILIES,
        what="audio encoder")
    family = ckpt.model_type
    pre = ckpt.read_json("preprocessor_config.json")
    if normalize is None:
        normalize = bool(pre.get("do_normalize", True))
    rate = int(pre.get("sampling_rate", 16000))
    try:
        model = build_audio_encoder(ckpt.config, num_layers=num_layers, normalize=normalize)
    except KeyError as e:
        raise CheckpointError(f"{config_file}: missing key {e} for model_type {family!r}.") from e
    port_audio_weights(model, ckpt, ckpt.config)
    n = ckpt.config["num_hidden_layers"] if num_layers is None else int(num_layers)
    return AudioEncoder(model=model, hidden_size=ckpt.config["hidden_size"], num_layers=n,
                        family=family, sample_rate=rate, path=ckpt.path)
