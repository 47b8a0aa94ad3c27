"""Feature layers: librosa parity for the seed configurations, masks, padding, export.

Tolerances (float32 TF vs float64-ish librosa, measured in brackets):
- log-Mel dB: max abs error <= 2e-3 dB [1.8e-4];
- delta of log-Mel: <= 1e-3 [3e-6]; MFCC: <= 2e-3 [1.1e-5];
- mel filterbank: <= 1e-6 [4e-9].
"""
import os

import keras
import librosa
import numpy as np
import pytest
import tensorflow as tf

from tfsent.audio.features import (
    AudioFrontend,
    FeatureConfig,
    delta,
    masked_mean,
    mel_filterbank,
    num_frames,
)

SR = 16000
SEED001 = dict(n_fft=400, hop_length=160, n_mels=128)
SEED002 = dict(n_fft=2048, hop_length=512, n_mels=128, fmin=100.0, fmax=8000.0)


def _librosa_logmel(y, sr=SR, ref=np.max, top_db=80.0, pad_mode="constant", **kw):
    mel = librosa.feature.melspectrogram(y=y, sr=sr, pad_mode=pad_mode, **kw)
    return librosa.power_to_db(mel, ref=ref, top_db=top_db).T  # [T, F]


def _run(cfg, wave, lengths=None):
    wave = np.atleast_2d(wave).astype(np.float32)
    if lengths is None:
        lengths = [wave.shape[1]] * wave.shape[0]
    feats, mask = AudioFrontend(cfg)(tf.constant(wave), tf.constant(lengths, tf.int32))
    return feats.numpy(), mask.numpy()


@pytest.mark.parametrize("scale,norm", [("slaney", "slaney"), ("htk", None), ("htk", "slaney")])
def test_mel_filterbank_matches_librosa(scale, norm):
    ours = mel_filterbank(SR, 2048, 128, 100.0, 8000.0, scale, norm)
    ref = librosa.filters.mel(
        sr=SR, n_fft=2048, n_mels=128, fmin=100.0, fmax=8000.0, htk=scale == "htk", norm=norm
    )
    assert ours.shape == (1025, 128)
    np.testing.assert_allclose(ours.T, ref, atol=1e-6)


@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
def test_seed001_log_mel_parity(signals, pad_mode):
    y = signals("mix", SR, 0.73)
    cfg = FeatureConfig(kind="log_mel", pad_mode=pad_mode, **SEED001)
    feats, mask = _run(cfg, y)
    ref = _librosa_logmel(y, pad_mode=pad_mode, **SEED001)
    assert feats.shape == (1,) + ref.shape and feats.dtype == np.float32
    assert ref.shape[0] == num_frames(len(y), cfg)
    np.testing.assert_allclose(feats[0], ref, atol=2e-3)
    assert mask.dtype == np.int32 and mask.sum() == ref.shape[0]


def test_seed001_mel13_mean_feature(signals):
    # Seed 001's fusion feature: mean over time of a 13-band log-Mel (librosa defaults).
    sr = 22050
    y = signals("mix", sr, 1.1)
    cfg = FeatureConfig(kind="log_mel", sample_rate=sr, n_fft=2048, hop_length=512, n_mels=13)
    feats, mask = AudioFrontend(cfg)(tf.constant(y[None]), tf.constant([len(y)]))
    ours = masked_mean(feats, mask).numpy()[0]
    ref = _librosa_logmel(y, sr=sr, n_mels=13).mean(axis=0)
    assert ours.shape == (13,)
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_seed002_log_mel_delta_parity_and_fixed_frames(signals):
    y = signals("chirp", SR, 1.2)
    full = _librosa_logmel(y, **SEED002)
    ref_delta = librosa.feature.delta(full.T).T
    cfg = FeatureConfig(kind="log_mel_delta", max_frames=512, **SEED002)
    assert (cfg.feature_dim, cfg.channels) == (128, 2)
    feats, mask = _run(cfg, y)
    t = full.shape[0]
    assert feats.shape == (1, 512, 128, 2) and mask.shape == (1, 512)
    np.testing.assert_allclose(feats[0, :t, :, 0], full, atol=2e-3)
    np.testing.assert_allclose(feats[0, :t, :, 1], ref_delta, atol=1e-3)
    assert np.all(feats[0, t:] == 0) and mask[0, :t].all() and not mask[0, t:].any()
    # Truncation keeps the dB reference of the whole clip (computed before truncating).
    short, short_mask = _run(FeatureConfig(kind="log_mel_delta", max_frames=20, **SEED002), y)
    assert short.shape == (1, 20, 128, 2) and short_mask.sum() == 20
    np.testing.assert_allclose(short[0, :, :, 0], full[:20], atol=2e-3)
    np.testing.assert_allclose(short[0, :, :, 1], ref_delta[:20], atol=1e-3)


def test_second_order_delta_parity(signals):
    y = signals("mix", SR, 0.5)
    s = _librosa_logmel(y, **SEED001)
    ours = delta(tf.constant(s[None]), tf.constant([s.shape[0]]), order=2).numpy()[0]
    np.testing.assert_allclose(ours, librosa.feature.delta(s.T, order=2).T, atol=1e-3)


def test_mfcc_parity(signals):
    y = signals("mix", SR, 0.9)
    cfg = FeatureConfig(kind="mfcc", n_fft=2048, hop_length=512, n_mels=128, db_ref=1.0)
    feats, _ = _run(cfg, y)
    ref = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=13).T
    assert feats.shape == (1,) + ref.shape
    np.testing.assert_allclose(feats[0], ref, atol=2e-3)


@pytest.mark.parametrize(
    "cfg",
    [
        FeatureConfig(kind="log_mel", pad_mode="reflect", **SEED001),
        FeatureConfig(kind="log_mel_delta", **SEED002),
        FeatureConfig(kind="mfcc", n_mels=40, db_ref=1.0, top_db=None),
        FeatureConfig(kind="waveform"),
    ],
    ids=["log_mel_reflect", "log_mel_delta", "mfcc", "waveform"],
)
def test_padded_batch_equals_unpadded(signals, cfg):
    clips = [signals("mix", SR, 0.9), signals("chirp", SR, 0.41), signals("noise", SR, 0.6)]
    longest = max(len(c) for c in clips)
    batch = np.zeros([3, longest], np.float32)
    for i, c in enumerate(clips):
        batch[i, : len(c)] = c
    batch[1, len(clips[1]) :] = 0.7  # garbage after the real samples must not matter
    feats, mask = _run(cfg, batch, [len(c) for c in clips])
    for i, c in enumerate(clips):
        single, single_mask = _run(cfg, c)
        n = int(single_mask.sum())
        assert n == int(mask[i].sum()) == num_frames(len(c), cfg)
        np.testing.assert_allclose(feats[i, :n], single[0, :n], atol=1e-3)
        assert np.all(feats[i, n:] == 0)


def test_unbatched_call_and_dataset_map(signals):
    cfg = FeatureConfig(kind="log_mel_delta", max_frames=64, **SEED001)
    frontend = AudioFrontend(cfg)
    clips = [signals("mix", SR, 0.3), signals("chirp", SR, 0.5)]
    eager = [frontend(tf.constant(c), tf.constant(len(c))) for c in clips]
    assert eager[0][0].shape == (64, 128, 2) and eager[0][1].shape == (64,)
    ds = tf.data.Dataset.from_generator(
        lambda: iter(clips), output_signature=tf.TensorSpec([None], tf.float32)
    )
    per_example = ds.map(lambda x: frontend(x, tf.shape(x)[0]))
    for (f, m), (ef, em) in zip(per_example, eager):
        assert f.dtype == tf.float32 and m.dtype == tf.int32
        np.testing.assert_allclose(f.numpy(), ef.numpy(), atol=1e-4)
        np.testing.assert_array_equal(m.numpy(), em.numpy())
    batched = ds.map(lambda x: (x, tf.shape(x)[0])).padded_batch(2).map(frontend)
    f, m = next(iter(batched))
    assert f.shape == (2, 64, 128, 2)
    for i in range(2):
        np.testing.assert_allclose(f[i].numpy(), eager[i][0].numpy(), atol=1e-3)
        np.testing.assert_array_equal(m[i].numpy(), eager[i][1].numpy())


def test_ref_max_ignores_padding_and_values_in_range(signals):
    y = signals("mix", SR, 0.5)
    cfg = FeatureConfig(kind="log_mel", **SEED001)
    loud = np.concatenate([y, 10.0 * np.ones(8000, np.float32)])
    feats, mask = _run(cfg, loud[None], [len(y)])
    alone, _ = _run(cfg, y)
    n = num_frames(len(y), cfg)
    np.testing.assert_allclose(feats[0, :n], alone[0], atol=1e-4)
    real = feats[0, :n]
    assert real.max() == pytest.approx(0.0, abs=1e-5) and real.min() >= -80.0 - 1e-3


def test_num_frames_int_and_tensor():
    cfg = FeatureConfig(**SEED001)
    assert num_frames(16000, cfg) == 101
    np.testing.assert_array_equal(num_frames(tf.constant([16000, 159, 0]), cfg).numpy(), [101, 1, 1])
    assert num_frames(1000, FeatureConfig(kind="log_mel", n_fft=401, hop_length=100)) == 10


def test_config_validation_and_roundtrip():
    with pytest.raises(ValueError, match="kind"):
        FeatureConfig(kind="spectrogram")
    with pytest.raises(ValueError, match="fmax"):
        FeatureConfig(fmax=9000.0)
    with pytest.raises(ValueError, match="db_ref"):
        FeatureConfig(db_ref="min")
    with pytest.raises(ValueError, match="unknown FeatureConfig"):
        FeatureConfig.from_dict({"kind": "mfcc", "bogus": 1})
    cfg = FeatureConfig(kind="mfcc", n_mfcc=20, max_frames=100)
    assert FeatureConfig.from_dict(cfg.to_dict()) == cfg
    assert (cfg.feature_dim, cfg.channels) == (20, 1)
    layer = AudioFrontend.from_config(AudioFrontend(cfg).get_config())
    assert layer.config == cfg


def _graph_op_types(concrete):
    graph_def = concrete.graph.as_graph_def()
    ops = {n.op for n in graph_def.node}
    for fn in graph_def.library.function:
        ops |= {n.op for n in fn.node_def}
    return ops


@pytest.mark.slow
def test_keras_model_with_frontend_survives_saved_model(tmp_path, signals):
    cfg = FeatureConfig(kind="log_mel_delta", max_frames=40, **SEED001)
    wave = keras.Input(shape=(None,), name="waveform")
    lengths = keras.Input(shape=(), dtype="int32", name="lengths")
    feats, mask = AudioFrontend(cfg)(wave, lengths)
    x = keras.layers.Reshape((40, 256))(feats)
    x = keras.layers.Dense(4)(x)
    logits = keras.layers.GlobalAveragePooling1D()(x, mask=keras.ops.cast(mask, "bool"))
    model = keras.Model([wave, lengths], {"logits": logits})

    clips = [signals("mix", SR, 0.35), signals("chirp", SR, 0.2)]
    batch = np.zeros([2, len(clips[0])], np.float32)
    batch[0], batch[1, : len(clips[1])] = clips
    lens = np.array([len(c) for c in clips], np.int32)
    expected = model([tf.constant(batch), tf.constant(lens)])["logits"].numpy()

    # Keras round trip.
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(
        reloaded([tf.constant(batch), tf.constant(lens)])["logits"].numpy(), expected, rtol=1e-5, atol=1e-4
    )

    # SavedModel round trip.
    export_dir = os.fspath(tmp_path / "saved")
    model.export(export_dir, format="tf_saved_model")
    loaded = tf.saved_model.load(export_dir)
    got = loaded.serve([tf.constant(batch), tf.constant(lens)])["logits"].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    single = loaded.serve([tf.constant(clips[1][None]), tf.constant(lens[1:])])["logits"].numpy()
    np.testing.assert_allclose(single[0], expected[1], rtol=1e-4, atol=1e-3)
    ops = _graph_op_types(loaded.signatures["serve"])
    assert "Rfft" in ops or "RFFT" in ops
    assert not ops & {"PyFunc", "EagerPyFunc", "PyFuncStateless"}


def test_power_to_db_ref_max_clamps_at_top_db_below_each_examples_peak():
    """With `ref="max"` the clamp is `-top_db` (the peak after subtracting the reference is 0): equal,
    bit for bit, to clamping at the peak measured over real frames, also for an example without any."""
    from tfsent.audio.features import power_to_db

    power = tf.random.stateless_uniform([3, 50, 16], [3, 4], 0, 1) ** 8  # a wide dynamic range
    mask = tf.constant(np.stack([np.arange(50) < n for n in (50, 17, 0)]).astype(np.int32))
    got = power_to_db(power, mask, "max", 80.0).numpy()
    log_spec = 10.0 * tf.math.log(tf.maximum(power, 1e-10)) / np.log(10.0)
    valid = tf.cast(mask, tf.bool)[:, :, None]
    ref = tf.reduce_max(tf.where(valid, log_spec, -np.inf), axis=[1, 2], keepdims=True)
    log_spec = log_spec - tf.where(tf.math.is_finite(ref), ref, 0.0)
    peak = tf.reduce_max(tf.where(valid, log_spec, -np.inf), axis=[1, 2], keepdims=True)
    expected = tf.maximum(log_spec, tf.where(tf.math.is_finite(peak), peak, 0.0) - 80.0).numpy()
    np.testing.assert_array_equal(got, expected)
    assert (got[0] == -80.0).any() and got[0].max() == 0.0  # the clamp and the reference both act
