"""Time stretch and pitch shift applied to the spectrogram the feature layer computes anyway.

For a model that consumes log-Mel / MFCC features, stretching or pitch-shifting the waveform (phase
vocoder, inverse STFT, resampling) and then taking its STFT again costs several times the features
themselves. Both are simple on the magnitude STFT:

- time stretch by `rate` (>1 faster): output frame `t` is the input spectrum at frame position
  `t * rate`, linearly interpolated between neighbouring frames (the magnitude interpolation of
  librosa's phase vocoder, without the phase: the features discard it). The clip gets
  `num_frames(round(length / rate))` frames, as if the stretched waveform had been analysed.
- pitch shift by `n` semitones: the content of bin `j` moves to bin `j * 2^(n/12)` (VTLP-style
  frequency warping; content moved past Nyquist is dropped). The warp is linear in the power
  spectrum, so it folds into the Mel filterbank: each example gets its own warped filterbank
  `[K, n_mels]`, the filterbank's rows read at the moved positions (linear interpolation).

Both act on power (mel power for the stretch, after the per-example filterbank), so the cost is a
gather over `[B, T, n_mels]` and a batched `[T, K] x [K, n_mels]` matmul that replaces the plain Mel
projection. Against `librosa.effects.time_stretch` / `pitch_shift` followed by the same log-Mel the
features agree within the tolerances in tests/audio/test_spectral_warp.py.

Example:

>>> mel = warped_mel_filterbank(mel_weights, semitones)               # [B, K, M]  # doctest: +SKIP
>>> mel_power = tf.einsum("btk,bkm->btm", power, mel)                            # doctest: +SKIP
>>> mel_power, frames = stretch_frames(mel_power, frames, rate, out_frames)      # doctest: +SKIP
"""

import tensorflow as tf


def warped_mel_filterbank(mel_weights, semitones):
    """Per-example Mel filterbanks `[B, K, M]` that pitch-shift the power spectrum by `semitones`.

    Args:
        mel_weights: float32 `[K, M]` (`K = 1 + n_fft // 2` bins).
        semitones: float32 `[B]` (0: the filterbank itself).

    The content of bin `j` is moved to (fractional) bin `j * 2^(semitones[b] / 12)`: row `j` of the
    result is the filterbank's row at that position, linearly interpolated (zero past the last
    bin). A pure tone keeps its level, as when the waveform is resampled.
    """
    mel_weights = tf.convert_to_tensor(mel_weights, tf.float32)
    semitones = tf.cast(semitones, tf.float32)
    k = tf.shape(mel_weights)[0]
    scale = tf.pow(2.0, semitones / 12.0)  # [B]
    pos = tf.cast(tf.range(k), tf.float32)[None, :] * scale[:, None]  # [B, K]: where bin j lands
    i0 = tf.floor(pos)
    frac = (pos - i0)[..., None]
    i0 = tf.cast(i0, tf.int32)
    padded = tf.pad(mel_weights, [[0, 2], [0, 0]])  # rows K, K+1: zero (past Nyquist)
    lo = tf.gather(padded, tf.minimum(i0, k))
    hi = tf.gather(padded, tf.minimum(i0 + 1, k))
    return lo + frac * (hi - lo)


def stretched_length(lengths, rate, max_samples=None):
    """Samples of each example after a time stretch by `rate`: `round(length / rate)` (int32 [B]),
    at most `max_samples` (the pipeline's crop)."""
    out = tf.cast(tf.round(tf.cast(lengths, tf.float32) / tf.cast(rate, tf.float32)), tf.int32)
    return out if max_samples is None else tf.minimum(out, int(max_samples))


def stretch_frames(frames_power, frames, rate, out_frames):
    """Time-stretch power spectrograms by resampling along the frame axis.

    Args:
        frames_power: float32 `[B, T, F]` (power or mel power; linear, not dB).
        frames: int32 `[B]` real frames of each example.
        rate: float32 `[B]` stretch rates (>1 faster; 1: unchanged).
        out_frames: int32 `[B]` real frames after the stretch.

    Returns:
        `(stretched [B, max(out_frames), F], out_frames)`; frames past an example's `out_frames`
        are zero. Output frame `t` is input frame position `t * rate`, linearly interpolated and
        held at the last real frame.
    """
    frames_power = tf.convert_to_tensor(frames_power, tf.float32)
    frames = tf.cast(frames, tf.int32)
    out_frames = tf.cast(out_frames, tf.int32)
    rate = tf.cast(rate, tf.float32)
    t_out = tf.reduce_max(out_frames)
    pos = tf.cast(tf.range(t_out), tf.float32)[None, :] * rate[:, None]  # [B, T']
    last = tf.maximum(frames - 1, 0)[:, None]
    i0 = tf.minimum(tf.cast(tf.floor(pos), tf.int32), last)
    frac = tf.where(i0 < last, pos - tf.floor(pos), 0.0)[..., None]
    i1 = tf.minimum(i0 + 1, last)
    a = tf.gather(frames_power, i0, batch_dims=1)
    b = tf.gather(frames_power, i1, batch_dims=1)
    out = a + frac * (b - a)
    valid = tf.sequence_mask(out_frames, t_out, dtype=out.dtype)[..., None]
    return out * valid, out_frames
