"""Corruptions inside the tf.data pipeline: evaluation conditions (`dataset(corruption=...)`) and robust
training (`PipelineConfig.robust_augment`) on the tiny prepared corpus."""

import numpy as np
import pytest
import tensorflow as tf

from tfsent.audio import corrupt
from tfsent.audio.features import FeatureConfig
from tfsent.data.corruptions import Corruption, RobustAugment, RobustAugmentConfig, corpus_clips, mismatched_text
from tfsent.data.pipeline import InputPipeline, PipelineConfig

WAVE = ("waveform", "waveform_mask")


def _pipeline(manifest, **overrides):
    frame, sidecar = manifest
    config = PipelineConfig(feature=FeatureConfig(kind="waveform"), batch_size=4, max_seconds=2.0,
                            model_inputs=WAVE, bucket=False, **overrides)
    return InputPipeline(frame, sidecar, config)


def _waves(ds):
    return [(i["waveform"].numpy(), i["waveform_mask"].numpy()) for i, _ in ds]


def test_evaluation_corruption_reaches_the_model_input(manifest):
    pipe = _pipeline(manifest)
    clean = _waves(pipe.dataset("test", training=False))
    quiet = _waves(pipe.dataset("test", training=False, corruption=Corruption(
        "gain", audio=lambda x, s: corrupt.gain(x, -20.0))))
    for (c, cm), (q, qm) in zip(clean, quiet):
        np.testing.assert_array_equal(cm, qm)
        np.testing.assert_allclose(q, 0.1 * c, rtol=1e-5, atol=1e-7)
    noisy = Corruption("noise", audio=lambda x, s: corrupt.white_noise(x, s, 10.0), seed=3)
    first = _waves(pipe.dataset("test", training=False, corruption=noisy))
    again = _waves(pipe.dataset("test", training=False, corruption=noisy))
    other = _waves(pipe.dataset("test", training=False, corruption=Corruption(
        "noise", audio=lambda x, s: corrupt.white_noise(x, s, 10.0), seed=4)))
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(first, again))
    assert not all(np.allclose(a, b) for (a, _), (b, _) in zip(first, other))
    for (c, m), (n, _) in zip(clean, first):  # 10 dB over each clip's real samples
        for row in range(len(c)):
            real = m[row].astype(bool)
            snr = 10 * np.log10(np.mean(c[row][real] ** 2) / np.mean((n[row][real] - c[row][real]) ** 2))
            assert snr == pytest.approx(10.0, abs=0.5)


def test_mismatched_text_gives_every_row_another_rows_text():
    texts = ["하나", "둘", "셋", "넷", "다섯"]
    fn = mismatched_text(texts, seed=2)
    got = [fn(tf.constant(t), None, tf.constant(i)).numpy().decode() for i, t in enumerate(texts)]
    assert sorted(got) == sorted(texts) and all(g != t for g, t in zip(got, texts))
    assert got == [mismatched_text(texts, seed=2)(None, None, tf.constant(i)).numpy().decode() for i in range(5)]


def test_robust_augment_on_training_only_and_deterministic(manifest):
    frame, sidecar = manifest
    config = RobustAugmentConfig(noise_prob=1.0, noise_snr_db=(5.0, 5.0), babble_prob=0.5, telephone_prob=0.5)
    augment = RobustAugment.build(config, frame, sidecar, seed=1, max_samples=32000)
    assert augment.babble.shape == (16, 32000) and augment.irs is None
    plain, robust = _pipeline(manifest), _pipeline(manifest, robust_augment=augment)
    a = _waves(robust.dataset("train", training=True, epoch=0))
    b = _waves(robust.dataset("train", training=True, epoch=0))
    c = _waves(plain.dataset("train", training=True, epoch=0))
    assert all(np.array_equal(x, y) for (x, _), (y, _) in zip(a, b))
    assert all(not np.allclose(x, y) for (x, _), (y, _) in zip(a, c))
    assert all(np.array_equal(x, y) for (x, _), (y, _) in zip(
        _waves(robust.dataset("test", training=False)), _waves(plain.dataset("test", training=False))))


def test_robust_augment_config_checks():
    with pytest.raises(ValueError, match="noise_prob"):
        RobustAugmentConfig(noise_prob=1.5)
    with pytest.raises(ValueError, match="babble bank"):
        RobustAugment(RobustAugmentConfig(babble_prob=0.5))
    assert not RobustAugmentConfig().enabled and RobustAugmentConfig(text_cer_prob=0.1).enabled


def test_corpus_clips_reads_the_split(manifest):
    frame, sidecar = manifest
    clips = corpus_clips(frame, sidecar, "train", 5, seed=0, sample_rate=16000, max_samples=8000)
    assert len(clips) == 5 and all(c.dtype == np.float32 and 0 < len(c) <= 8000 for c in clips)
