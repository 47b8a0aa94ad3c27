"""On-the-fly augmentation: ranges, determinism, class gating, eager == Dataset.map."""
import numpy as np
import pytest
import tensorflow as tf

from tfsent.audio.augment import (
    AudioAugmentConfig,
    augment_waveform,
    example_seed,
    phase_vocoder_stretch,
    spec_augment,
)

SR = 16000


def _peak_hz(y, sr=SR):
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y)), n=8 * len(y)))
    return np.argmax(spec) * sr / (8 * len(y))


def _tone(seconds=0.5, hz=440.0):
    t = np.arange(int(SR * seconds)) / SR
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _aug(x, cfg, index=0, class_id=None, background=None, global_seed=7):
    seed = example_seed(global_seed, 0, index)
    y, n = augment_waveform(tf.constant(x), len(x), seed, cfg, class_id=class_id, background=background)
    assert y.dtype == tf.float32 and int(n) == y.shape[0]
    return y.numpy()


def test_noise_at_snr():
    x = _tone(1.0)
    y = _aug(x, AudioAugmentConfig(noise_prob=1.0, noise_snr_db=(20.0, 20.0)))
    snr = 10 * np.log10(np.mean(x**2) / np.mean((y - x) ** 2))
    assert y.shape == x.shape and snr == pytest.approx(20.0, abs=0.5)


def test_seed001_amplitude_noise_bounded():
    x = _tone()
    y = _aug(x, AudioAugmentConfig(amp_noise_prob=1.0))
    d = y - x
    assert 0 < np.std(d) <= 0.005 * np.abs(x).max() * 1.1


def test_gain_range():
    x = _tone()
    for i in range(3):
        y = _aug(x, AudioAugmentConfig(gain_prob=1.0, gain_db=(-6.0, 6.0)), index=i)
        db = 20 * np.log10(np.abs(y).max() / np.abs(x).max())
        assert -6.01 <= db <= 6.01
        np.testing.assert_allclose(y / x.max() * np.abs(x).max(), y, rtol=1e-6)


def test_shift_zero_fills_and_keeps_length():
    x = np.arange(1, 1601, dtype=np.float32)
    y = _aug(x, AudioAugmentConfig(shift_prob=1.0, shift_max_s=0.05), index=3)
    s = int(np.argmax(y == 1.0)) if y[0] == 0 else -int(y[0] - 1)
    assert y.shape == x.shape and s != 0
    np.testing.assert_array_equal(y, np.roll(x, s) * ((np.arange(1600) - s >= 0) & (np.arange(1600) - s < 1600)))


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturbation_changes_length_and_pitch(factor):
    x = _tone()
    y = _aug(x, AudioAugmentConfig(speed_prob=1.0, speed_factors=(factor,)))
    assert len(y) == int(np.ceil(len(x) / factor))
    assert _peak_hz(y) == pytest.approx(440.0 * factor, rel=0.01)


def test_time_stretch_keeps_pitch():
    x = _tone()
    y = _aug(x, AudioAugmentConfig(stretch_prob=1.0, stretch_rate=(0.8, 0.8)))
    assert len(y) == round(len(x) / 0.8)
    assert _peak_hz(y) == pytest.approx(440.0, rel=0.01)
    assert np.sqrt(np.mean(y[1000:-1000] ** 2)) == pytest.approx(np.sqrt(np.mean(x**2)), rel=0.1)


def test_pitch_shift_keeps_length():
    x = _tone()
    y = _aug(x, AudioAugmentConfig(pitch_prob=1.0, pitch_semitones=(0.7, 0.7)))
    assert len(y) == len(x)
    assert _peak_hz(y) == pytest.approx(440.0 * 2 ** (0.7 / 12), rel=0.005)


def test_stretch_and_pitch_together():
    x = _tone()
    cfg = AudioAugmentConfig.seed001(amp_noise_prob=0.0, stretch_prob=1.0, pitch_prob=1.0)
    y = _aug(x, cfg)
    assert len(y) == round(len(x) / 0.8)
    assert _peak_hz(y) == pytest.approx(440.0 * 2 ** (0.7 / 12), rel=0.005)


def test_phase_vocoder_identity_rate():
    x = _tone()
    y = phase_vocoder_stretch(tf.constant(x), 1.0).numpy()
    np.testing.assert_allclose(y[600:-600], x[600:-600], atol=1e-3)


def test_background_mixing_at_snr():
    x = _tone(0.5)
    clips = np.random.default_rng(0).standard_normal([2, 3000]).astype(np.float32)
    cfg = AudioAugmentConfig(background_prob=1.0, background_snr_db=(10.0, 10.0))
    y = _aug(x, cfg, background=tf.constant(clips))
    snr = 10 * np.log10(np.mean(x**2) / np.mean((y - x) ** 2))
    assert snr == pytest.approx(10.0, abs=0.01)
    with pytest.raises(ValueError, match="background"):
        _aug(x, cfg)


FULL = AudioAugmentConfig(
    noise_prob=0.5, amp_noise_prob=0.5, gain_prob=0.5, shift_prob=0.5, speed_prob=0.5,
    stretch_prob=0.5, pitch_prob=0.5,
)


def test_deterministic_per_seed_and_varies_across_seeds():
    x = _tone(0.3)
    a = _aug(x, FULL, index=1)
    b = _aug(x, FULL, index=1)
    np.testing.assert_array_equal(a, b)
    others = [_aug(x, FULL, index=i) for i in range(2, 6)]
    assert any(len(o) != len(a) or not np.allclose(o, a) for o in others)
    c = _aug(x, FULL, index=1, global_seed=8)
    assert len(c) != len(a) or not np.allclose(c, a)


@pytest.mark.slow
def test_dataset_map_matches_eager():
    clips = [_tone(0.3, 440.0), _tone(0.25, 660.0), _tone(0.2, 300.0)]
    ds = tf.data.Dataset.from_generator(
        lambda: iter(clips), output_signature=tf.TensorSpec([None], tf.float32)
    ).enumerate()
    out = ds.map(
        lambda i, x: augment_waveform(x, tf.shape(x)[0], example_seed(7, 0, i), FULL, class_id=1)
    )
    for i, (y, n) in enumerate(out):
        eager = _aug(clips[i], FULL, index=i, class_id=1)
        assert y.dtype == tf.float32 and n.dtype == tf.int32 and int(n) == len(eager)
        np.testing.assert_allclose(y.numpy(), eager, atol=1e-5)


def test_class_gating():
    x = _tone(0.3)
    cfg = AudioAugmentConfig(noise_prob=1.0, classes=(2, 4))
    np.testing.assert_array_equal(_aug(x, cfg, class_id=1), x)
    assert not np.allclose(_aug(x, cfg, class_id=4), x)


def _features(t=60, real=45, f=128, seed=0):
    feats = np.random.default_rng(seed).normal(-40, 10, [t, f]).astype(np.float32)
    feats[real:] = 0
    mask = np.zeros([t], np.int32)
    mask[:real] = 1
    return feats, mask


def test_seed002_frequency_masks_on_real_frames():
    feats, mask = _features()
    cfg = AudioAugmentConfig.seed002(classes=[3])
    for i in range(5):
        out = spec_augment(tf.constant(feats), tf.constant(mask), example_seed(1, 0, i), cfg, class_id=3).numpy()
        changed = out != feats
        bins = np.where(changed[:45].all(axis=0))[0]
        assert 10 <= len(bins) <= 30 and np.all(np.diff(bins) == 1)
        assert changed[:45].any(axis=0).sum() == len(bins)
        assert not changed[45:].any()
        np.testing.assert_allclose(out[0, bins], feats[:45].mean(), rtol=1e-5)
    same = spec_augment(tf.constant(feats), tf.constant(mask), example_seed(1, 0, 0), cfg, class_id=0)
    np.testing.assert_array_equal(same.numpy(), feats)


def test_time_masks_stay_in_real_frames():
    feats, mask = _features()
    cfg = AudioAugmentConfig(time_mask_prob=1.0, time_mask_width=(5, 10), num_time_masks=2, mask_value=-80.0)
    out = spec_augment(tf.constant(feats), tf.constant(mask), example_seed(1, 0, 0), cfg).numpy()
    frames = np.where((out == -80.0).all(axis=1))[0]
    assert 5 <= len(frames) <= 20 and frames.max() < 45


def test_spec_augment_batched_and_in_dataset_map_match_unbatched():
    pairs = [_features(seed=s) for s in range(3)]
    feats = np.stack([np.stack([f, -f], axis=-1) for f, _ in pairs])  # [B, T, F, 2]
    masks = np.stack([m for _, m in pairs])
    cfg = AudioAugmentConfig(freq_mask_prob=1.0, time_mask_prob=0.5, num_freq_masks=2)
    seeds = tf.stack([example_seed(5, 1, i) for i in range(3)])
    batched = spec_augment(tf.constant(feats), tf.constant(masks), seeds, cfg).numpy()
    assert batched.shape == feats.shape and batched.dtype == np.float32
    ds = tf.data.Dataset.from_tensor_slices((feats, masks)).enumerate().map(
        lambda i, fm: spec_augment(fm[0], fm[1], example_seed(5, 1, i), cfg)
    )
    for i, got in enumerate(ds):
        single = spec_augment(tf.constant(feats[i]), tf.constant(masks[i]), seeds[i], cfg).numpy()
        np.testing.assert_array_equal(batched[i], single)
        np.testing.assert_array_equal(got.numpy(), single)
    assert not np.array_equal(batched, feats)


def test_config_validation():
    with pytest.raises(ValueError, match="noise_prob"):
        AudioAugmentConfig(noise_prob=1.5)
    with pytest.raises(ValueError, match="gain_db"):
        AudioAugmentConfig(gain_db=(6.0, -6.0))
    with pytest.raises(ValueError, match="mask_value"):
        AudioAugmentConfig(mask_value="median")


def test_gaussian_noise_is_white_unit_gaussian_and_seeded():
    from tfsent.audio.augment import NOISE_TABLE_SIZE, gaussian_noise

    a = gaussian_noise(48000, tf.constant([1, 2])).numpy()
    assert a.shape == (48000,) and a.dtype == np.float32
    assert abs(a.mean()) < 0.02 and abs(a.std() - 1.0) < 0.02
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < 0.02  # white: neighbours uncorrelated
    np.testing.assert_array_equal(a, gaussian_noise(48000, tf.constant([1, 2])).numpy())
    b = gaussian_noise(48000, tf.constant([1, 3])).numpy()
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.05  # another seed, another stretch of the table
    # Longer than the table: it wraps around (repeats), every sample still N(0, 1).
    long = gaussian_noise(NOISE_TABLE_SIZE + 1000, tf.constant([4, 5])).numpy()
    np.testing.assert_array_equal(long[:1000], long[NOISE_TABLE_SIZE:])
    # Inside tf.data, per element, as the pipeline draws it.
    ds = tf.data.Dataset.range(3).map(lambda i: gaussian_noise(100, tf.stack([tf.cast(i, tf.int32), 2])))
    first = next(iter(ds)).numpy()
    np.testing.assert_array_equal(first, gaussian_noise(100, tf.constant([0, 2])).numpy())
