"""Per-speaker feature normalisation: statistics of the speaker's other utterances, never the row's own."""

import numpy as np
import pytest

from tfsent.audio.features import FeatureConfig
from tfsent.data.pipeline import InputPipeline, PipelineConfig
from tfsent.data.speaker_norm import leave_one_out_stats, speaker_affine

INPUTS = ("audio_features", "audio_mask")


def _frames_stats(rows):
    frames = np.concatenate(rows)
    return frames.mean(0), frames.std(0)


def test_leave_one_out_uses_only_the_speakers_other_rows():
    rng = np.random.default_rng(0)
    speakers = ["a", "a", "a", "b", "b", None, "c"]
    rows = [rng.normal(loc=3 * i, scale=1 + i, size=(5 + i, 3)) for i in range(len(speakers))]
    sums = np.stack([r.sum(0) for r in rows])
    squares = np.stack([np.square(r).sum(0) for r in rows])
    mean, std = leave_one_out_stats(speakers, sums, squares, [len(r) for r in rows])
    for i, s in enumerate(speakers):
        same = [j for j, t in enumerate(speakers) if t == s and j != i and s is not None]
        others = same or [j for j in range(len(rows)) if j != i]  # unknown / alone: the split without the row
        want_mean, want_std = _frames_stats([rows[j] for j in others])
        np.testing.assert_allclose(mean[i], want_mean, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(std[i], want_std, rtol=1e-5, atol=1e-5)


def test_affine_maps_the_speakers_other_rows_onto_the_splits_statistics():
    rng = np.random.default_rng(1)
    speakers = ["a", "a", "b", "b", "b"]
    rows = [rng.normal(loc=5 * (s == "a"), scale=1 + 2 * (s == "b"), size=(40, 2)) for s in speakers]
    sums = np.stack([r.sum(0) for r in rows])
    squares = np.stack([np.square(r).sum(0) for r in rows])
    scale, shift = speaker_affine(speakers, sums, squares, [len(r) for r in rows])
    for i, s in enumerate(speakers):
        own = np.concatenate([rows[j] for j in range(len(rows)) if speakers[j] == s and j != i])
        split = np.concatenate([rows[j] for j in range(len(rows)) if j != i])
        mapped = own * scale[i] + shift[i]  # the speaker's other rows land on the split's mean and std
        np.testing.assert_allclose(mapped.mean(0), split.mean(0), atol=1e-4)
        np.testing.assert_allclose(mapped.std(0), split.std(0), rtol=1e-4)


def test_a_row_with_no_other_frames_is_left_as_is():
    mean, std = leave_one_out_stats(["a"], np.ones((1, 2)), np.ones((1, 2)), [1])
    assert mean.tolist() == [[0.0, 0.0]] and std.tolist() == [[1.0, 1.0]]


def _features(manifest, speaker_norm):
    frame, sidecar = manifest
    config = PipelineConfig(feature=FeatureConfig(kind="log_mel", n_mels=16), batch_size=4, max_seconds=2.0,
                            model_inputs=INPUTS, speaker_norm=speaker_norm)
    pipe = InputPipeline(frame, sidecar, config)
    out = {}
    for inputs, targets in pipe.dataset("train", training=False):
        for f, m, i in zip(inputs["audio_features"].numpy(), inputs["audio_mask"].numpy(), targets["index"].numpy()):
            out[int(i)] = f[m.astype(bool)]
    return pipe.split_frame("train"), out


def test_pipeline_standardises_each_row_with_its_speakers_other_rows(manifest):
    rows, raw = _features(manifest, False)
    _, normed = _features(manifest, True)
    speakers = rows["speaker"].astype(str).tolist()
    checked = 0
    for i, s in enumerate(speakers):
        others = [j for j, t in enumerate(speakers) if t == s and j != i]
        if not others:
            continue
        mean, std = _frames_stats([raw[j] for j in others])
        split_mean, split_std = _frames_stats([raw[j] for j in raw if j != i])
        want = (raw[i] - mean) / np.maximum(std, 1e-3) * split_std + split_mean
        np.testing.assert_allclose(normed[i], want, rtol=1e-3, atol=2e-3)
        checked += 1
    assert checked >= 4, "the tiny corpus should have speakers with several training rows"


def test_speaker_norm_needs_spectral_features(manifest):
    frame, sidecar = manifest
    config = PipelineConfig(feature=FeatureConfig(kind="waveform"), model_inputs=("waveform", "waveform_mask"),
                            speaker_norm=True)
    with pytest.raises(Exception, match="speaker_norm"):
        InputPipeline(frame, sidecar, config)
