"""Every registered Keras model (tiny configurations): padding invariance, serialization, training."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfsent.encoders import load_audio_encoder
from tfsent.models import audio, fusion, heads, registry, stages, text, transformer

VOCAB = 40
FEAT = 16


def _mask(lengths, t):
    return (np.arange(t)[None] < np.asarray(lengths)[:, None]).astype("int32")


def _inputs(names, lengths, rng, shape_of):
    """A batch with the given per-example lengths; padded positions hold junk (never zeros)."""
    out = {}
    for key, (data_name, mask_name) in {
        "audio": ("audio_features", "audio_mask"),
        "text": ("token_ids", "padding_mask"),
        "wave": ("waveform", "waveform_mask"),
    }.items():
        if data_name not in names:
            continue
        lens = lengths[key]
        t = max(lens)
        if data_name == "token_ids":
            x = rng.integers(5, VOCAB, size=(len(lens), t)).astype("int32")
        else:
            x = (rng.normal(size=(len(lens), t) + shape_of.get(data_name, ())) * 3).astype("float32")
        out[data_name] = x
        out[mask_name] = _mask(lens, t)
    return out


def _alone(batch, i, lengths):
    """Example `i` on its own, cut to its real length (no padding at all)."""
    out = {}
    for key, (data_name, mask_name) in {
        "audio": ("audio_features", "audio_mask"),
        "text": ("token_ids", "padding_mask"),
        "wave": ("waveform", "waveform_mask"),
    }.items():
        if data_name in batch:
            n = lengths[key][i]
            out[data_name] = batch[data_name][i : i + 1, :n]
            out[mask_name] = batch[mask_name][i : i + 1, :n]
    return out


@pytest.fixture(scope="module")
def s2_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("s2")
    arousal = audio.arousal_regressor(**TINY["arousal_regressor"][0])
    valence = text.valence_regressor(**TINY["valence_regressor"][0])
    for name, model in (("a", arousal), ("v", valence)):
        os.makedirs(root / name)
        model.save(str(root / name / "model.keras"))
    return {"arousal_regressor": str(root / "a"), "valence_regressor": str(root / "v")}


# name -> (builder kwargs, per-input trailing shapes, lengths per modality)
TINY = {
    # The design card's demo models.
    "conv1d_mel": (
        dict(num_classes=3, feature_dim=FEAT, filters=8, num_layers=2, hidden=8, dropout=0.0, branch_dropout=0.0),
        {"audio_features": (FEAT,)}, {"audio": [13, 23, 8]},
    ),
    "text_cnn": (
        dict(num_classes=3, vocab_size=VOCAB, embedding_dim=8, filters=8, hidden=8, dropout=0.0,
             branch_dropout=0.0),
        {}, {"text": [5, 12, 9]},
    ),
    "demo_fusion": (
        dict(num_classes=3, feature_dim=FEAT, vocab_size=VOCAB, filters=8, num_layers=2, embedding_dim=8,
             hidden=8, dropout=0.0, branch_dropout=0.0, modality_dropout=0.0),
        {"audio_features": (FEAT,)}, {"audio": [13, 23, 8], "text": [5, 12, 9]},
    ),
    "macaron_text": (
        dict(num_classes=3, vocab_size=VOCAB, sequence_length=16, hidden_dim=16, num_layers=2,
             num_heads=2, head_dim=8, intermediate_dim=32, num_memory_kv=4, output_dim=24, head_filters=4),
        {}, {"text": [5, 12, 9]},
    ),
    "mfcc_fusion": (
        dict(num_classes=3, feature_dim=13, vocab_size=VOCAB, sequence_length=16, text_hidden_dim=8,
             text_num_layers=1, text_num_heads=2, text_intermediate_dim=16, text_num_memory_kv=2,
             text_output_dim=20, head_filters=4),
        {"audio_features": (13,)}, {"audio": [4, 9, 7], "text": [6, 3, 10]},
    ),
    "w2v2_classifier": (
        dict(num_classes=3, num_layers=2, hidden_dim=16, num_heads=2, intermediate_dim=32,
             conv_dim=(8, 8), conv_kernel=(10, 3), conv_stride=(5, 2), pos_conv_kernel=8, pos_conv_groups=2),
        {}, {"wave": [333, 800, 517]},
    ),
    "arousal_regressor": (
        dict(feature_dim=FEAT, feature_channels=2, conv_channels=(2, 2, 4, 4), num_layers=1,
             num_heads=2, intermediate_dim=16, gru_units=4),
        {"audio_features": (FEAT, 2)}, {"audio": [6, 10, 3]},
    ),
    "valence_regressor": (
        dict(vocab_size=VOCAB, sequence_length=16, hidden_dim=16, num_layers=1, num_heads=2,
             intermediate_dim=16, gru_units=4),
        {}, {"text": [3, 8, 11]},
    ),
    "va_fusion_classifier": (
        dict(num_classes=3, num_layers=1, num_heads=2, intermediate_dim=16, lstm_units=4),
        {"audio_features": (FEAT, 2)}, {"audio": [6, 10, 3], "text": [3, 8, 11]},
    ),
    "resnet_mel": (
        dict(num_classes=3, feature_dim=FEAT, widths=(4, 8), blocks_per_stage=(1, 1)),
        {"audio_features": (FEAT,)}, {"audio": [13, 23, 8]},
    ),
    "conv1d_fusion": (
        dict(num_classes=3, feature_dim=13, vocab_size=VOCAB, hidden_dim=8, filters=4, dense_units=8),
        {"audio_features": (13,)}, {"audio": [4, 9, 7], "text": [6, 3, 10]},
    ),
    "rnn_text": (
        dict(num_classes=3, vocab_size=VOCAB, embedding_dim=8, cell="gru", units=8, num_layers=2,
             bidirectional=True),
        {}, {"text": [5, 12, 9]},
    ),
    "transformer_text": (
        dict(num_classes=3, vocab_size=VOCAB, hidden_dim=16, num_layers=1, num_heads=2, intermediate_dim=16),
        {}, {"text": [5, 12, 9]},
    ),
    "text_finetune_classifier": (
        dict(num_classes=3, vocab_size=VOCAB, hidden_dim=8, pooling="mean"),
        {}, {"text": [5, 12, 9]},
    ),
}


def _build(name, s2_runs):
    kwargs = dict(TINY[name][0])
    if name == "va_fusion_classifier":
        kwargs["init_from"] = s2_runs
    return registry.build(name, **kwargs)


def _output_key(model):
    return next(iter(model.output))


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _check_padding_invariance(model, name):
    _, shapes, lengths = TINY[name]
    batch = _inputs(set(model.input), lengths, np.random.default_rng(0), shapes)
    key = _output_key(model)
    batched = _numpy(model(batch, training=False)[key])
    for i in range(len(next(iter(lengths.values())))):
        alone = _numpy(model(_alone(batch, i, lengths), training=False)[key])
        np.testing.assert_allclose(batched[i], alone[0], atol=2e-4, rtol=1e-3, err_msg=f"example {i}")
    # A different batch composition (reversed order) gives the same per-example outputs.
    order = np.arange(len(batched))[::-1]
    reordered = _numpy(model({k: v[order] for k, v in batch.items()}, training=False)[key])
    np.testing.assert_allclose(reordered, batched[order], atol=2e-4, rtol=1e-3)


def _check_round_trips(model, name, tmp_path):
    _, shapes, lengths = TINY[name]
    batch = _inputs(set(model.input), lengths, np.random.default_rng(1), shapes)
    key = _output_key(model)
    expected = _numpy(model(batch, training=False)[key])
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(_numpy(restored(batch, training=False)[key]), expected, atol=1e-5)
    assert restored.count_params() == model.count_params()
    clone = keras.Model.from_config(model.get_config())
    assert clone.count_params() == model.count_params()
    assert [w.shape for w in clone.weights] == [w.shape for w in model.weights]


def _check_trains(model, name):
    _, shapes, lengths = TINY[name]
    batch = _inputs(set(model.input), lengths, np.random.default_rng(2), shapes)
    key = _output_key(model)
    n = len(next(iter(lengths.values())))
    if key == "logits":
        target = tf.one_hot([0, 1, 2][:n], 3)
        loss_fn = lambda out: tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(target, out))  # noqa: E731
    else:
        target = tf.constant([[0.5], [-0.5], [0.2]][:n])
        loss_fn = lambda out: tf.sqrt(tf.reduce_mean(tf.square(out - target)))  # noqa: E731 (RMSE)
    optimizer = keras.optimizers.Adam(3e-3)
    assert model.trainable_weights, name
    losses = []
    for _ in range(6):
        with tf.GradientTape() as tape:
            loss = loss_fn(model(batch, training=True)[key])
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights))
        losses.append(float(loss))
    assert losses[-1] < losses[0], losses


_SLOW = {"va_fusion_classifier", "rnn_text", "valence_regressor"}  # eager recurrent loops


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in _SLOW else n for n in sorted(TINY)]
)
def test_model_is_padding_invariant_serializable_and_trains(name, s2_runs, tmp_path):
    """Per model (one build, to keep the suite fast on shared CPUs): a prediction is the same alone
    and inside a padded batch whose padding holds junk, and under another batch order; `.keras`
    (safe mode) and `get_config`/`from_config` round-trip; a few training steps lower the loss."""
    keras.utils.set_random_seed(1)
    model = _build(name, s2_runs)
    _check_padding_invariance(model, name)
    _check_round_trips(model, name, tmp_path)
    _check_trains(model, name)


def test_nn_classifier_head_has_the_seed_parameter_count():
    """Seed 000's NN_Classifier on the 4096-d [CLS] output, 7 classes: 4,299,510 parameters."""
    x_in = keras.Input((4096,))
    logits = heads.nn_classifier_head(x_in, num_classes=7)
    head = keras.Model(x_in, logits)
    assert head.count_params() == 4_299_510
    assert head.get_layer("head_attention").output.shape == (None, 2045)


def test_macaron_text_is_six_blocks_of_three_sublayers():
    model = text.macaron_text(num_classes=7, num_layers=6, hidden_dim=16, num_heads=2, head_dim=8,
                            intermediate_dim=32, vocab_size=64, sequence_length=8, output_dim=32, head_filters=4)
    encoder = model.get_layer("macaron_encoder")
    blocks = [l for l in encoder.layers if isinstance(l, transformer.MacaronBlock)]
    assert len(blocks) == 6
    # 2 feed-forward + 1 attention residual sub-layers each, with 4 memory key/value slots per head.
    assert blocks[0].attention.memory_k.shape == (2, 16, 8)
    assert len(blocks[0].ffn) == 2


def test_arousal_backbone_shape_matches_the_seed():
    """Frequency-only convs turn [T, 128, 2] into [T, 768] with time steps kept."""
    model = registry.build("arousal_regressor", feature_dim=128, feature_channels=2, num_layers=0)
    assert model.get_layer(stages.AUDIO_BACKBONE).output.shape == (None, None, 768)


def test_va_fusion_freezes_the_regressors(s2_runs):
    model = _build("va_fusion_classifier", s2_runs)
    assert not model.get_layer(stages.AUDIO_BACKBONE).trainable
    assert not model.get_layer(stages.TEXT_BACKBONE).trainable
    with pytest.raises(ValueError, match="init_from"):
        fusion.va_fusion_classifier(num_classes=3, init_from={"arousal_regressor": s2_runs["arousal_regressor"]})
    with pytest.raises(FileNotFoundError, match="model.keras"):
        fusion.va_fusion_classifier(num_classes=3, init_from={"arousal_regressor": "/nonexistent",
                                                         "valence_regressor": "/nonexistent"})


def test_conv1d_fusion_standardization_uses_the_given_data_only():
    model = fusion.conv1d_fusion(**TINY["conv1d_fusion"][0])
    rng = np.random.default_rng(5)
    batch = _inputs(set(model.input), {"audio": [4, 9, 7], "text": [6, 3, 10]}, rng, {"audio_features": (13,)})
    batch["audio_features"] = batch["audio_features"] + 10.0
    assert stages.adapt_normalization(model, [batch]) == ["standardize"]
    norm = model.get_layer("standardize")
    mel_mean = _numpy(model.get_layer("log_mel_mean")(batch["audio_features"], batch["audio_mask"]))
    np.testing.assert_allclose(_numpy(norm.mean)[0, :13], mel_mean.mean(0), rtol=1e-4)
    np.testing.assert_allclose(_numpy(norm.variance)[0, :13], mel_mean.var(0), rtol=1e-3, atol=1e-5)


def test_text_finetune_classifier_on_a_keras_hub_backbone(tmp_path):
    keras_hub = pytest.importorskip("keras_hub")
    backbone = keras_hub.models.BertBackbone(vocabulary_size=VOCAB, num_layers=1, num_heads=2, hidden_dim=8,
                                             intermediate_dim=16, max_sequence_length=16)
    model = text.text_finetune_classifier(num_classes=2, text_encoder=backbone, pooling="cls")
    batch = _inputs(set(model.input), {"text": [4, 9]}, np.random.default_rng(0), {})
    out = _numpy(model(batch)["logits"])
    alone = _numpy(model(_alone(batch, 0, {"text": [4, 9]}))["logits"])
    np.testing.assert_allclose(out[0], alone[0], atol=1e-5)
    model.save(str(tmp_path / "m.keras"))
    restored = keras.saving.load_model(str(tmp_path / "m.keras"))
    np.testing.assert_allclose(_numpy(restored(batch)["logits"]), out, atol=1e-5)


def test_builders_reject_bad_arguments():
    with pytest.raises(ValueError, match="cell"):
        registry.build("rnn_text", num_classes=2, vocab_size=10, cell="transformer")
    with pytest.raises(ValueError, match="does not take"):
        registry.build("macaron_text", num_classes=2, vocab_size=10, not_an_arg=1)
    with pytest.raises(ValueError, match="feat_extract_norm"):
        registry.build("w2v2_classifier", num_classes=2, feat_extract_norm="batch")
    with pytest.raises(ValueError, match="pooled"):
        registry.build("text_finetune_classifier", num_classes=2, vocab_size=10, pooling="pooled")


def test_random_init_w2v2_has_the_layers_of_a_converted_checkpoint():
    """One wav2vec2: `w2v2_classifier` without `audio_encoder` builds the very encoder
    `tfsent.encoders` converts checkpoints into (same layers, same weight shapes)."""
    data = os.path.join(os.path.dirname(__file__), "..", "encoders", "data", "wav2vec2_layer")
    converted = load_audio_encoder(data, normalize=False).model
    model = registry.build("w2v2_classifier", num_classes=2, num_layers=2, hidden_dim=16, num_heads=2,
                           intermediate_dim=32, conv_dim=(8, 8, 8), conv_kernel=(10, 3, 3),
                           conv_stride=(5, 2, 2), pos_conv_kernel=16, pos_conv_groups=2)
    random_init = model.get_layer("wav2vec2_encoder")
    assert [l.name for l in random_init.layers] == [l.name for l in converted.layers]
    assert [(w.path, w.shape) for w in random_init.weights] == [(w.path, w.shape) for w in converted.weights]
    assert not random_init.get_layer("feature_extractor").trainable


def test_gated_fusion_mixes_modalities_per_example(tmp_path):
    """`fusion=gated` (a gated multimodal unit): same checks as every model, and its gates are a
    per-example distribution over the two modalities that depends on the inputs."""
    keras.utils.set_random_seed(1)
    model = registry.build("demo_fusion", **dict(TINY["demo_fusion"][0], fusion="gated"))
    _check_padding_invariance(model, "demo_fusion")
    _check_round_trips(model, "demo_fusion", tmp_path)
    _, shapes, lengths = TINY["demo_fusion"]
    batch = _inputs(set(model.input), lengths, np.random.default_rng(3), shapes)
    gates = _numpy(keras.Model(model.input, model.get_layer("fusion_gates").output)(batch))
    assert gates.shape == (3, 2)
    np.testing.assert_allclose(gates.sum(axis=1), 1.0, atol=1e-5)
    assert np.ptp(gates[:, 0]) > 0  # not one constant mix for every example
    _check_trains(model, "demo_fusion")
    with pytest.raises(ValueError, match="fusion='sum'"):
        registry.build("demo_fusion", **dict(TINY["demo_fusion"][0], fusion="sum"))
