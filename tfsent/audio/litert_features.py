"""`AudioFrontend`'s features for a fixed-length window, built from LiteRT (TFLite) builtin ops only.

On-device models (`bin/export --format=litert`) take a fixed window of 16 kHz samples and compute the
run's features inside the `.tflite` graph. `AudioFrontend` cannot be converted as is: its STFT slices
complex tensors, its dB reference uses `is_finite`, MFCC's DCT runs an FFT of `2 * n_mels` points, and
LiteRT's `RFFT2D` takes power-of-two sizes only. `FixedWindowFrontend` computes the same numbers:

- frames are joined from hop-sized chunks (centre padding as in `stft_power`);
- the spectrum is `RFFT2D` when `n_fft` is a power of two; otherwise (the demo's `n_fft=400`) the exact
  `n_fft`-point DFT as two matrix products (cos / sin, `[n_fft, 1 + n_fft // 2]`). Zero-padding a
  400-sample frame to 512 would move the bins (k/512 instead of k/400 of the rate), so the Mel
  energies, and every feature after them, would no longer be the ones the model was trained on;
- Mel matrix, dB with the per-example maximum over real frames, `top_db` floor, MFCC as a product
  with the orthonormal DCT-II matrix, deltas as in `features.delta`;
- the matrices are multiplied by a 1.0 computed at run time, so a quantised `.tflite` (dynamic range:
  int8 weights, activations quantised on the fly) keeps the whole front end in float32.

A window always holds at least one real frame (`num_frames(0) == 1`), so the dB reference needs no
infinity test. Agreement with `AudioFrontend` is tested in `tests/audio/test_litert_features.py`.

Example:

```python
frontend = FixedWindowFrontend(FeatureConfig(kind="log_mel", n_fft=400), num_samples=64000)
features, frame_mask = frontend(waveform, lengths)      # [B, 401, 64], [B, 401]
```
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from tfsent.audio import features as features_lib

_AMIN = 1e-10
_FLOOR = -1e30  # "minus infinity" for the masked maximum; a real frame always exists


def is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def dft_matrices(n_fft: int):
    """(cos, -sin) `[n_fft, 1 + n_fft // 2]` float32: `x @ cos + i x @ (-sin)` is `rfft(x)`."""
    n = np.arange(n_fft)[:, None]
    k = np.arange(n_fft // 2 + 1)[None, :]
    angle = 2.0 * np.pi * ((n * k) % n_fft) / n_fft  # exact integer phase, then float64 trigonometry
    return np.cos(angle).astype(np.float32), (-np.sin(angle)).astype(np.float32)


def dct_matrix(n_in: int, n_out: int):
    """Orthonormal DCT-II `[n_in, n_out]` (as `tf.signal.dct(type=2, norm="ortho")[..., :n_out]`)."""
    n = np.arange(n_in)[:, None]
    k = np.arange(n_out)[None, :]
    m = np.cos(np.pi * k * (2 * n + 1) / (2.0 * n_in)) * math.sqrt(2.0 / n_in)
    m[:, 0] /= math.sqrt(2.0)
    return m.astype(np.float32)


class FixedWindowFrontend:
    """Features of `[B, num_samples]` waveforms with per-row real lengths; LiteRT builtin ops only.

    Args:
        config: the run's `FeatureConfig` (`kind` log_mel, log_mel_delta, mfcc or waveform).
        num_samples: the fixed window length in samples.

    Returns (when called with `waveform` float32 `[B, num_samples]`, `lengths` int32 `[B]`):
    `(features, frame_mask)` as `AudioFrontend` gives for the same rows padded to `num_samples`.

    Example:

    ```python
    feats, mask = FixedWindowFrontend(cfg, 16000)(tf.zeros([1, 16000]), tf.constant([8000]))
    ```
    """

    def __init__(self, config, num_samples: int):
        self.config = config
        self.num_samples = int(num_samples)
        if config.kind == "waveform":
            return
        self.frames = features_lib.num_frames(self.num_samples, config)
        n_fft, hop = config.n_fft, config.hop_length
        self.pad = n_fft // 2
        # Frames are cut from hop-sized chunks: frame t = chunks t .. t+k-1 joined, first n_fft samples.
        self.chunks_per_frame = -(-n_fft // hop)
        self.padded_samples = (self.frames + self.chunks_per_frame - 1) * hop
        self.window = features_lib._stft_window(n_fft, config.win_length)
        self.use_rfft = is_power_of_two(n_fft)
        self.dft = None if self.use_rfft else dft_matrices(n_fft)
        self.mel = features_lib.mel_filterbank(config.sample_rate, n_fft, config.n_mels, config.fmin, config.fmax,
                                               config.mel_scale, config.mel_norm)
        self.dct = dct_matrix(config.n_mels, config.n_mfcc) if config.kind == "mfcc" else None

    @property
    def spectrum(self) -> str:
        """How the spectrum is computed, for model cards."""
        if self.config.kind == "waveform":
            return "none (the model takes the waveform)"
        n = self.config.n_fft
        return (f"RFFT2D, {n} points" if self.use_rfft else
                f"exact {n}-point DFT as two MatMuls ({n} is not a power of two, LiteRT's RFFT2D needs one)")

    def __call__(self, waveform, lengths):
        cfg = self.config
        waveform = tf.ensure_shape(tf.cast(waveform, tf.float32), [None, self.num_samples])
        lengths = tf.minimum(tf.cast(lengths, tf.int32), self.num_samples)
        sample_mask = tf.sequence_mask(lengths, self.num_samples, dtype=tf.float32)
        if cfg.kind == "waveform":
            feats, mask = waveform * sample_mask, tf.cast(sample_mask, tf.int32)
            return self._fix_frames(feats, mask)
        waveform = waveform * sample_mask
        if cfg.pad_mode == "constant":
            padded = tf.pad(waveform, [[0, 0], [self.pad, self.pad]])
        else:
            padded = features_lib._center_pad(waveform, lengths, self.pad, cfg.pad_mode)
        # 1.0, computed at run time: matrices scaled by it are no constant weights the converter could
        # quantise (dynamic-range quantisation would turn the DFT and Mel matrices into int8 and
        # quantise the power spectrum, which spans ~10 decades, to 256 levels).
        one = 1.0 + 0.0 * tf.reduce_sum(tf.cast(lengths, tf.float32))
        frames = self._frame(padded) * tf.constant(self.window)
        power = self._power(frames, one)  # [B, T, 1 + n_fft // 2]
        mask = tf.sequence_mask(features_lib.num_frames(lengths, cfg), self.frames, dtype=tf.int32)
        mel = tf.matmul(power, (tf.constant(self.mel) * one)[None])
        feats = self._db(mel, mask)
        if cfg.kind == "mfcc":
            feats = tf.matmul(feats, (tf.constant(self.dct) * one)[None])
        elif cfg.kind == "log_mel_delta":
            feats = tf.stack([feats, features_lib.delta(feats, features_lib.num_frames(lengths, cfg))], axis=-1)
        mask_f = tf.cast(mask, tf.float32)
        feats = feats * (mask_f[:, :, None, None] if cfg.kind == "log_mel_delta" else mask_f[:, :, None])
        return self._fix_frames(feats, mask)

    def _frame(self, padded):
        """`[B, L]` → `[B, T, n_fft]` frames every `hop` samples (slices and a reshape, no big index table)."""
        have = self.num_samples + 2 * self.pad
        if have < self.padded_samples:
            padded = tf.pad(padded, [[0, 0], [0, self.padded_samples - have]])
        hop, t = self.config.hop_length, self.frames
        chunks = tf.reshape(padded[:, : self.padded_samples], [-1, t + self.chunks_per_frame - 1, hop])
        joined = tf.concat([chunks[:, i: i + t] for i in range(self.chunks_per_frame)], axis=-1)
        return joined[:, :, : self.config.n_fft]

    def _power(self, frames, one):
        if self.use_rfft:
            spec = tf.signal.rfft(frames, fft_length=[self.config.n_fft])
            return tf.math.real(spec) ** 2 + tf.math.imag(spec) ** 2
        cos, sin = self.dft
        real = tf.matmul(frames, (tf.constant(cos) * one)[None])
        imag = tf.matmul(frames, (tf.constant(sin) * one)[None])
        return real * real + imag * imag

    def _db(self, mel, mask):
        cfg = self.config
        log_spec = 10.0 * tf.math.log(tf.maximum(mel, _AMIN)) / math.log(10.0)
        valid = tf.cast(mask, tf.bool)[:, :, None]
        if isinstance(cfg.db_ref, str):
            log_spec = log_spec - tf.reduce_max(tf.where(valid, log_spec, _FLOOR), axis=[1, 2], keepdims=True)
        else:
            log_spec = log_spec - 10.0 * math.log10(max(_AMIN, float(cfg.db_ref)))
        if cfg.top_db is not None:
            peak = tf.reduce_max(tf.where(valid, log_spec, _FLOOR), axis=[1, 2], keepdims=True)
            log_spec = tf.maximum(log_spec, peak - float(cfg.top_db))
        return log_spec

    def _fix_frames(self, feats, mask):
        """`max_frames`: truncate / zero-pad on the (static) time axis, as `AudioFrontend` does."""
        target = self.config.max_frames
        t = int(feats.shape[1])
        if target is None or target == t:
            return feats, mask
        if target < t:
            return feats[:, :target], mask[:, :target]
        extra = [[0, 0], [0, target - t]]
        return tf.pad(feats, extra + [[0, 0]] * (feats.shape.rank - 2)), tf.pad(mask, extra)
