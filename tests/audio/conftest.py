"""Synthetic signals shared by the audio tests."""
import numpy as np
import pytest


def _chirp(sr, seconds, f0, f1, amp=0.5):
    t = np.arange(int(sr * seconds)) / sr
    k = (f1 - f0) / (2 * seconds)
    return (amp * np.sin(2 * np.pi * (f0 * t + k * t**2))).astype(np.float32)


def _sines(sr, seconds, freqs=(440.0, 1000.0, 3100.0), amp=0.3):
    t = np.arange(int(sr * seconds)) / sr
    return sum(amp * np.sin(2 * np.pi * f * t) for f in freqs).astype(np.float32)


@pytest.fixture
def signals():
    """Factory: signals(kind, sr, seconds) -> float32 numpy array."""
    rng = np.random.default_rng(1234)

    def make(kind, sr=16000, seconds=1.0):
        if kind == "sine":
            return _sines(sr, seconds)
        if kind == "chirp":
            # Stays inside every tested band (< 0.85 * 4 kHz, the 8 kHz input's Nyquist).
            return _chirp(sr, seconds, 100.0, 3300.0)
        if kind == "noise":
            return (0.3 * rng.standard_normal(int(sr * seconds))).astype(np.float32)
        if kind == "mix":
            return (_sines(sr, seconds) + 0.05 * rng.standard_normal(int(sr * seconds))).astype(
                np.float32
            )
        raise ValueError(kind)

    return make
