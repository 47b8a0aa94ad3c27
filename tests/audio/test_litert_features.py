"""`FixedWindowFrontend` (LiteRT builtin ops) computes `AudioFrontend`'s features for the same rows."""

import numpy as np
import pytest
import tensorflow as tf

from tfsent.audio.features import AudioFrontend, FeatureConfig
from tfsent.audio.litert_features import FixedWindowFrontend, dft_matrices

WINDOW = 8000


def _rows(seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(WINDOW) / 16000
    full = (0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(WINDOW)).astype(np.float32)
    short = np.zeros(WINDOW, np.float32)
    short[:3000] = full[:3000] * 0.5
    return np.stack([full, short]), np.array([WINDOW, 3000], np.int32)


@pytest.mark.parametrize("kind,n_fft,extra", [
    ("log_mel", 400, {}),                       # the demo's settings: DFT as MatMuls
    ("log_mel", 512, {"win_length": 400}),      # power of two: RFFT
    ("mfcc", 400, {"n_mfcc": 13}),
    ("log_mel_delta", 400, {"db_ref": 1.0, "top_db": None}),
    ("log_mel", 400, {"pad_mode": "reflect", "max_frames": 40}),
])
def test_matches_audio_frontend(kind, n_fft, extra):
    config = FeatureConfig(kind=kind, n_fft=n_fft, hop_length=160, n_mels=32, **extra)
    audio, lengths = _rows()
    want, want_mask = AudioFrontend(config)(tf.constant(audio), tf.constant(lengths))
    got, got_mask = FixedWindowFrontend(config, WINDOW)(tf.constant(audio), tf.constant(lengths))
    assert got.shape == want.shape
    np.testing.assert_array_equal(got_mask.numpy(), want_mask.numpy())
    # dB features spanning ~80 dB: only float32 rounding of the DFT vs the FFT (seen: 5e-5 dB).
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=5e-4)
    # A short row alone gives the frames it gives in the batch (no leak from the padding).
    alone, _ = FixedWindowFrontend(config, WINDOW)(tf.constant(audio[1:]), tf.constant(lengths[1:]))
    np.testing.assert_allclose(alone.numpy()[0], got.numpy()[1], atol=1e-4)


def test_dft_matrices_are_the_rfft():
    x = np.random.default_rng(1).standard_normal((3, 400))
    cos, sin = dft_matrices(400)
    np.testing.assert_allclose(x @ cos + 1j * (x @ sin), np.fft.rfft(x), atol=1e-3)
