"""`PipelineConfig.augment_domain`: time stretch and pitch shift on the spectrogram vs on the waveform."""

import numpy as np
import pytest
import tensorflow as tf

from tfsent.audio.augment import AudioAugmentConfig
from tfsent.audio.features import FeatureConfig
from tfsent.core.errors import UsageError
from tfsent.data.pipeline import InputPipeline, PipelineConfig

INPUTS = ("audio_features", "audio_mask")
# Seed 001's chain with stretch and pitch always on; no noise, so the two domains are comparable.
AUG = AudioAugmentConfig(stretch_prob=1.0, stretch_rate=(0.8, 0.8), pitch_prob=1.0, pitch_semitones=(0.7, 0.7))


def pipeline(manifest, domain, feature=None, seed=5, aug=AUG):
    frame, sidecar = manifest
    config = PipelineConfig(feature=feature or FeatureConfig(kind="log_mel", n_mels=64), batch_size=8,
                            max_seconds=2.0, model_inputs=INPUTS, seed=seed, audio_augment=aug,
                            augment_domain=domain, bucket=False)
    return InputPipeline(frame, sidecar, config)


def by_index(pipe, epoch=0):
    """{row index: real frames of its log-Mel} of one training epoch."""
    out = {}
    for inputs, targets in pipe.dataset("train", training=True, epoch=epoch):
        feats, mask = inputs["audio_features"].numpy(), inputs["audio_mask"].numpy()
        for i, row in enumerate(targets["index"].numpy()):
            out[int(row)] = feats[i, : mask[i].sum()]
    return out


def test_feature_domain_matches_the_waveform_domain_and_is_deterministic(manifest):
    auto, wave = pipeline(manifest, "auto"), pipeline(manifest, "waveform")
    assert auto.config.feature_domain_augment and not wave.config.feature_domain_augment
    feature = by_index(auto)
    waveform = by_index(wave)
    plain = by_index(pipeline(manifest, "auto", aug=None))
    assert feature.keys() == waveform.keys() == plain.keys()
    for row in feature:
        # Same draws: both stretched by 0.8 (cut at the 2 s crop), both shifted by 0.7 semitone.
        assert len(feature[row]) == len(waveform[row]) >= min(len(plain[row]), 201)
        corr = np.corrcoef(feature[row].mean(0), waveform[row].mean(0))[0, 1]
        assert corr > 0.9, (row, corr)
    again = by_index(auto)  # replayed: same seed and epoch, same features
    for row in feature:
        np.testing.assert_array_equal(feature[row], again[row])


def test_stretch_and_pitch_draws_follow_the_probabilities(manifest):
    half = AudioAugmentConfig.seed001(amp_noise_prob=0.0)  # stretch 0.8 and pitch 0.7, each with p = 0.5
    warped = by_index(pipeline(manifest, "feature", aug=half))
    plain = by_index(pipeline(manifest, "feature", aug=None))
    stretched = [r for r in warped if len(warped[r]) > len(plain[r])]
    changed = [r for r in warped if len(warped[r]) == len(plain[r]) and not np.allclose(warped[r], plain[r])]
    untouched = [r for r in warped if len(warped[r]) == len(plain[r]) and np.allclose(warped[r], plain[r])]
    # Clips longer than the 2 s crop cannot get longer; the rest show which clips were stretched.
    assert stretched and changed and untouched


def test_augment_domain_is_checked_against_the_features(manifest):
    with pytest.raises(UsageError, match="spectral"):
        pipeline(manifest, "feature", feature=FeatureConfig(kind="waveform"))
    with pytest.raises(UsageError, match="augment_domain"):
        pipeline(manifest, "spectrogram")
    assert not pipeline(manifest, "auto", feature=FeatureConfig(kind="waveform")).config.feature_domain_augment


def test_tensorboard_clips_keep_the_waveform_stretch(manifest):
    pipe = pipeline(manifest, "feature")
    clips = pipe.augmented_waveforms("train", count=2)
    plain = pipeline(manifest, "feature", aug=None).augmented_waveforms("train", count=2)
    assert clips.shape[1] > plain.shape[1] or clips.shape[1] == pipe.config.max_samples
    assert isinstance(clips, tf.Tensor)
