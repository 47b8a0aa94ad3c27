"""In-graph audio features: STFT power, log-Mel, deltas and MFCC.

Everything here runs TensorFlow core ops only, so the same code serves
`tf.data` (`Dataset.map`), Keras models and exported SavedModels. The
numerics follow librosa 0.11 (`librosa.feature.melspectrogram`,
`librosa.power_to_db`, `librosa.feature.delta`, `librosa.feature.mfcc`):

- STFT: periodic Hann window of `win_length` centred in `n_fft`, frames
  centred on `t * hop_length` with `n_fft // 2` samples of padding on both
  sides. `pad_mode="constant"` (zeros; librosa's default since 0.10) or
  `"reflect"` (the torchaudio / old-librosa default). Reflection is done
  around each example's *real* end, so padded batches give the same
  frames as the unpadded clip.
- Mel filterbank: Slaney or HTK mel scale, Slaney area norm (or none).
- dB: `10 log10(max(S, 1e-10)) - 10 log10(max(ref, 1e-10))`, then floored at
  `max - top_db`. `db_ref="max"` takes the maximum over the *real* frames of
  each example only (padding never changes the reference).
- Deltas: librosa's `delta(width=9, mode="interp")` (Savitzky-Golay), with
  the edge frames taken relative to each example's real length.
- MFCC: orthonormal DCT-II of the dB log-Mel, first `n_mfcc` coefficients.
"""

import dataclasses
import math
from typing import Optional, Union

import keras
import numpy as np
import tensorflow as tf

from tfsent.audio import spectral_warp
from tfsent.core import config as config_lib

FEATURE_KINDS = ("log_mel", "log_mel_delta", "mfcc", "waveform")
_AMIN = 1e-10
_DELTA_WIDTH = 9


# === Config ===


@dataclasses.dataclass
class FeatureConfig:
    """What `AudioFrontend` computes from a 16 kHz (or `sample_rate`) waveform.

    Args:
        kind: one of `"log_mel"` (`[B, T, n_mels]`), `"log_mel_delta"`
            (`[B, T, n_mels, 2]`: log-Mel and its first-order delta),
            `"mfcc"` (`[B, T, n_mfcc]`) or `"waveform"` (`[B, S]` samples,
            the mask is then per sample).
        sample_rate: rate of the waveform the frontend receives, in Hz.
        n_fft: FFT size in samples.
        win_length: Hann window length (`None`: `n_fft`).
        hop_length: hop between frames in samples.
        n_mels: number of Mel bands.
        fmin, fmax: Mel filterbank edges in Hz (`fmax=None`: `sample_rate/2`).
        mel_scale: `"slaney"` (librosa's default) or `"htk"`.
        mel_norm: `"slaney"` (area normalisation, librosa's default) or `None`.
        pad_mode: centre padding, `"constant"` (librosa >= 0.10) or `"reflect"`.
        n_mfcc: number of cepstral coefficients for `kind="mfcc"`.
        db_ref: `"max"` (per-example maximum over real frames) or a float.
        top_db: dynamic range floor in dB below the maximum (`None`: no floor).
        max_frames: if set, features are truncated / zero-padded to exactly
            this many frames (samples for `kind="waveform"`).

    Example:
    >>> cfg = FeatureConfig(kind="log_mel_delta", n_fft=2048, hop_length=512,
    ...                     n_mels=128, fmin=100.0, fmax=8000.0, max_frames=512)
    >>> cfg.feature_dim, cfg.channels
    (128, 2)
    """

    kind: str = "log_mel"
    sample_rate: int = 16000
    n_fft: int = 400
    win_length: Optional[int] = None
    hop_length: int = 160
    n_mels: int = 64
    fmin: float = 0.0
    fmax: Optional[float] = None
    mel_scale: str = "slaney"
    n_mfcc: int = 13
    db_ref: Union[str, float] = "max"
    top_db: Optional[float] = 80.0
    max_frames: Optional[int] = None
    mel_norm: Optional[str] = "slaney"
    pad_mode: str = "constant"

    def __post_init__(self):
        if self.kind not in FEATURE_KINDS:
            raise ValueError(
                f"FeatureConfig.kind must be one of {FEATURE_KINDS}, got {self.kind!r}"
            )
        if self.mel_scale not in ("slaney", "htk"):
            raise ValueError(f"mel_scale must be 'slaney' or 'htk', got {self.mel_scale!r}")
        if self.mel_norm not in ("slaney", None):
            raise ValueError(f"mel_norm must be 'slaney' or None, got {self.mel_norm!r}")
        if self.pad_mode not in ("constant", "reflect"):
            raise ValueError(
                f"pad_mode must be 'constant' or 'reflect', got {self.pad_mode!r}"
            )
        if isinstance(self.db_ref, str) and self.db_ref != "max":
            raise ValueError(f"db_ref must be 'max' or a number, got {self.db_ref!r}")
        for name in ("sample_rate", "n_fft", "hop_length", "n_mels", "n_mfcc"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"FeatureConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if self.win_length is not None and not 0 < self.win_length <= self.n_fft:
            raise ValueError(
                f"win_length must be in (0, n_fft={self.n_fft}], got {self.win_length!r}"
            )
        fmax = self.sample_rate / 2 if self.fmax is None else self.fmax
        if not 0 <= self.fmin < fmax <= self.sample_rate / 2 + 1e-6:
            raise ValueError(
                f"need 0 <= fmin < fmax <= sample_rate/2, got fmin={self.fmin}, "
                f"fmax={self.fmax}, sample_rate={self.sample_rate}"
            )
        if self.kind == "mfcc" and self.n_mfcc > self.n_mels:
            raise ValueError(f"n_mfcc={self.n_mfcc} exceeds n_mels={self.n_mels}")
        if self.max_frames is not None and int(self.max_frames) <= 0:
            raise ValueError(f"max_frames must be > 0 or None, got {self.max_frames!r}")

    @property
    def feature_dim(self):
        """F, the size of the feature axis (1 for `kind="waveform"`)."""
        if self.kind == "mfcc":
            return self.n_mfcc
        if self.kind == "waveform":
            return 1
        return self.n_mels

    @property
    def channels(self):
        """C: 2 for `log_mel_delta`, else 1 (features then have no C axis)."""
        return 2 if self.kind == "log_mel_delta" else 1

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        """From a dict (a run's JSON config); unknown keys are errors."""
        return config_lib.from_dict(cls, d)


def num_frames(num_samples, config):
    """Frames a centred STFT gives: `1 + (n + 2 * (n_fft // 2) - n_fft) // hop`.

    That is `1 + n // hop_length` for even `n_fft`, as in librosa.

    Works on Python ints (returns an int) and on int tensors (returns int32).
    For `kind="waveform"` a frame is a sample. `max_frames` is not applied.
    """
    if config.kind == "waveform":
        return num_samples
    return _num_frames(num_samples, config.n_fft, config.hop_length)


def _num_frames(num_samples, n_fft, hop_length):
    extra = 2 * (n_fft // 2) - n_fft
    if isinstance(num_samples, (int, np.integer)):
        return 1 + max(int(num_samples) + extra, 0) // hop_length
    n = tf.cast(num_samples, tf.int32)
    return 1 + tf.maximum(n + extra, 0) // hop_length


# === Filterbanks (numpy, evaluated once when a layer is built) ===


def _hz_to_mel(f, htk):
    f = np.asarray(f, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(
        f >= min_log_hz,
        min_log_mel + np.log(np.maximum(f, 1e-12) / min_log_hz) / logstep,
        mels,
    )


def _mel_to_hz(m, htk):
    m = np.asarray(m, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


def mel_filterbank(sample_rate, n_fft, n_mels, fmin=0.0, fmax=None, mel_scale="slaney",
                   norm="slaney"):
    """Mel weights `[1 + n_fft // 2, n_mels]` (float32), as `librosa.filters.mel(...).T`."""
    fmax = sample_rate / 2.0 if fmax is None else float(fmax)
    htk = mel_scale == "htk"
    fftfreqs = np.linspace(0, sample_rate / 2.0, 1 + n_fft // 2)
    mel_f = _mel_to_hz(
        np.linspace(_hz_to_mel(fmin, htk), _hz_to_mel(fmax, htk), n_mels + 2), htk
    )
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if norm == "slaney":
        weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.T.astype(np.float32)


def _stft_window(n_fft, win_length):
    win_length = n_fft if win_length is None else win_length
    # Periodic Hann (scipy `get_window("hann", N, fftbins=True)`), centred in n_fft.
    n = np.arange(win_length)
    win = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / win_length)
    left = (n_fft - win_length) // 2
    out = np.zeros(n_fft, dtype=np.float64)
    out[left : left + win_length] = win
    return out.astype(np.float32)


def _savgol_center_coeffs(width, order):
    """Centre-point Savitzky-Golay derivative weights (as scipy's `savgol_coeffs`)."""
    half = width // 2
    k = np.arange(-half, half + 1, dtype=np.float64)
    vander = np.stack([k**p for p in range(order + 1)], axis=1)
    # Least-squares polynomial fit; the order-th derivative at 0 is order! * c_order.
    coeffs = np.linalg.pinv(vander)[order] * math.factorial(order)
    return coeffs.astype(np.float32)


# === Functional ops (graph-safe) ===


def sequence_mask(lengths, maxlen):
    """int32 `[B, maxlen]`, 1 where `t < lengths[b]`."""
    return tf.cast(tf.sequence_mask(lengths, maxlen), tf.int32)


def _center_pad(waveform, lengths, pad, mode):
    """Pad `[B, S]` by `pad` on both sides, zeroing samples at/after `lengths`."""
    samples = tf.shape(waveform)[1]
    valid = tf.sequence_mask(lengths, samples, dtype=waveform.dtype)
    waveform = waveform * valid
    if mode == "constant" or pad == 0:
        return tf.pad(waveform, [[0, 0], [pad, pad]])
    # Reflect around each example's real edges: index j -> |j|, then mirror at L-1.
    idx = tf.range(-pad, samples + pad)[None, :]
    last = tf.maximum(lengths[:, None] - 1, 0)
    j = tf.abs(idx)
    j = tf.where(j > last, 2 * last - j, j)
    j = tf.clip_by_value(j, 0, tf.maximum(samples - 1, 0))
    out = tf.gather(waveform, j, batch_dims=1)
    # Past the right reflection zone the frames are masked anyway; keep zeros there.
    keep = tf.cast(idx < lengths[:, None] + pad, waveform.dtype)
    return out * keep


def stft_power(waveform, lengths, n_fft, hop_length, win_length=None, pad_mode="constant"):
    """Power spectrogram `[B, T, 1 + n_fft // 2]`, `T` frames as `num_frames`.

    Args:
        waveform: float32 `[B, S]`.
        lengths: int32 `[B]` real samples per example.
    """
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    lengths = tf.cast(lengths, tf.int32)
    pad = n_fft // 2
    samples = tf.shape(waveform)[1]
    padded = _center_pad(waveform, lengths, pad, pad_mode)
    # Guarantee at least one full frame even for empty input.
    frames = _num_frames(samples, n_fft, hop_length)
    need = n_fft + hop_length * (frames - 1)
    padded = tf.pad(padded, [[0, 0], [0, tf.maximum(need - tf.shape(padded)[1], 0)]])
    window = tf.constant(_stft_window(n_fft, win_length))
    spec = tf.signal.stft(
        padded,
        frame_length=n_fft,
        frame_step=hop_length,
        fft_length=n_fft,
        window_fn=lambda length, dtype: window,
        pad_end=False,
    )
    spec = spec[:, :frames]
    return tf.math.real(spec) ** 2 + tf.math.imag(spec) ** 2


def power_to_db(power, frame_mask, ref="max", top_db=80.0):
    """librosa's `power_to_db` per example; `ref="max"` and `top_db` see real frames only.

    Args:
        power: float32 `[B, T, F]`.
        frame_mask: int32 `[B, T]`.
    """
    log_spec = 10.0 * tf.math.log(tf.maximum(power, _AMIN)) / math.log(10.0)
    valid = tf.cast(frame_mask, tf.bool)[:, :, None]
    neg = tf.constant(-np.inf, tf.float32)
    if isinstance(ref, str):
        ref_db = tf.reduce_max(tf.where(valid, log_spec, neg), axis=[1, 2], keepdims=True)
        # An example with no real frames has no reference; use 0 dB.
        ref_db = tf.where(tf.math.is_finite(ref_db), ref_db, 0.0)
        log_spec = log_spec - ref_db
    else:
        log_spec = log_spec - 10.0 * math.log10(max(_AMIN, float(ref)))
    if top_db is not None:
        if top_db < 0:
            raise ValueError(f"top_db must be non-negative, got {top_db}")
        if isinstance(ref, str):
            # The peak of `log_spec - ref_db` over real frames is exactly 0 (and 0 by the rule above
            # for an example with none): no second pass over the spectrogram.
            peak = 0.0
        else:
            peak = tf.reduce_max(tf.where(valid, log_spec, neg), axis=[1, 2], keepdims=True)
            peak = tf.where(tf.math.is_finite(peak), peak, 0.0)
        log_spec = tf.maximum(log_spec, peak - float(top_db))
    return log_spec


def delta(features, lengths, order=1, width=_DELTA_WIDTH):
    """librosa `delta(width=9, order, mode="interp")` along time, per example.

    Args:
        features: float32 `[B, T, F]`.
        lengths: int32 `[B]` real frames per example.

    Edge frames (the first and last `width // 2` real frames) copy the nearest
    interior value, which is what Savitzky-Golay "interp" mode gives for
    polynomial order == derivative order. Examples shorter than `width`
    frames (librosa refuses those) are treated as zero-padded.
    """
    if width < 3 or width % 2 == 0:
        raise ValueError(f"delta width must be odd and >= 3, got {width}")
    half = width // 2
    coeffs = tf.constant(_savgol_center_coeffs(width, order))
    t = tf.shape(features)[1]
    padded = tf.pad(features, [[0, 0], [half, half], [0, 0]])
    frames = tf.signal.frame(padded, width, 1, axis=1)  # [B, T, width, F]
    # `frame` lists the window left-to-right; coefficients are indexed by k=-half..half.
    full = tf.einsum("btwf,w->btf", frames, coeffs)
    lengths = tf.cast(lengths, tf.int32)
    lo = tf.minimum(half, tf.maximum(lengths - 1 - half, 0))
    hi = tf.maximum(lengths - 1 - half, lo)
    idx = tf.minimum(tf.maximum(tf.range(t)[None, :], lo[:, None]), hi[:, None])
    return tf.gather(full, idx, batch_dims=1)


def masked_mean(features, frame_mask):
    """Mean over real frames: `[B, T, ...]`, `[B, T]` -> `[B, ...]`."""
    mask = tf.cast(frame_mask, features.dtype)
    mask = tf.reshape(mask, tf.concat([tf.shape(mask), tf.ones([tf.rank(features) - 2], tf.int32)], 0))
    total = tf.reduce_sum(features * mask, axis=1)
    count = tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
    return total / count


# === Layers ===


@keras.saving.register_keras_serializable(package="tfsent")
class AudioFrontend(keras.layers.Layer):
    """Waveform -> masked features, as configured by a `FeatureConfig`.

    Call with `(waveform, lengths)`: float32 `[B, S]` and int32 `[B]` (or a
    single example `[S]` and a scalar). Returns `(features, frame_mask)`:

    - `log_mel`: `[B, T, n_mels]`; `log_mel_delta`: `[B, T, n_mels, 2]`
      (channel 0 the log-Mel, channel 1 its delta); `mfcc`: `[B, T, n_mfcc]`;
      `waveform`: the masked samples `[B, S]`.
    - `frame_mask`: int32 `[B, T]`, 1 on the `num_frames(length)` real frames.

    `T` is the frame count of the longest input (`1 + S // hop_length`), or
    `config.max_frames` (truncate / zero-pad). Values on padded frames are 0.
    Each example's real frames do not depend on how much padding follows
    it, so padded batches agree with one-at-a-time processing.

    Args:
        config: a `FeatureConfig` or its dict.

    Example:
    >>> frontend = AudioFrontend(FeatureConfig(kind="log_mel", n_mels=64))
    >>> feats, mask = frontend(tf.zeros([2, 16000]), tf.constant([16000, 8000]))
    >>> feats.shape, mask.shape
    (TensorShape([2, 101, 64]), TensorShape([2, 101]))
    """

    def __init__(self, config, **kwargs):
        # STFTs in float16 lose the quiet bands: stay float32 under mixed precision.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = FeatureConfig.from_dict(config)
        self.config = config
        self._mel = None
        self._dct = None
        if config.kind != "waveform":
            self._mel = mel_filterbank(
                config.sample_rate,
                config.n_fft,
                config.n_mels,
                config.fmin,
                config.fmax,
                config.mel_scale,
                config.mel_norm,
            )

    def call(self, waveform, lengths):
        return self.features(waveform, lengths)

    def features(self, waveform, lengths, stretch=None, semitones=None, max_samples=None):
        """`call`, optionally with time stretch and pitch shift applied to the spectrogram.

        Args:
            waveform, lengths: as for `call`.
            stretch: float32 `[B]` time-stretch rates (>1 faster), or None.
            semitones: float32 `[B]` pitch shifts, or None.
            max_samples: the stretched clips are cut to this many samples (as the waveform
                path crops them), or None.

        With `stretch` / `semitones` (spectral kinds only) the features are those of the
        stretched and pitch-shifted clip, computed on this clip's spectrogram
        (`tfsent.audio.spectral_warp`): no phase vocoder, no second STFT.
        """
        cfg = self.config
        warp = stretch is not None or semitones is not None
        if warp and cfg.kind == "waveform":
            raise ValueError("feature-domain stretch / pitch needs spectral features, not kind='waveform'")
        waveform = tf.convert_to_tensor(waveform)
        if waveform.dtype != tf.float32:
            waveform = tf.cast(waveform, tf.float32)
        lengths = tf.cast(tf.convert_to_tensor(lengths), tf.int32)
        unbatched = waveform.shape.rank == 1
        if unbatched:
            waveform = waveform[None]
            lengths = tf.reshape(lengths, [1])
        samples = tf.shape(waveform)[1]
        lengths = tf.minimum(lengths, samples)

        if cfg.kind == "waveform":
            mask = sequence_mask(lengths, samples)
            feats = waveform * tf.cast(mask, tf.float32)
        else:
            frames = num_frames(lengths, cfg)
            power = stft_power(
                waveform, lengths, cfg.n_fft, cfg.hop_length, cfg.win_length, cfg.pad_mode
            )
            if warp:
                mel, frames = self._warped_mel(power, lengths, frames, stretch, semitones, max_samples)
            else:
                mel = tf.einsum("btk,km->btm", power, tf.constant(self._mel))
            mask = sequence_mask(frames, tf.shape(mel)[1])
            feats = power_to_db(mel, mask, cfg.db_ref, cfg.top_db)
            if cfg.kind == "mfcc":
                feats = tf.signal.dct(feats, type=2, norm="ortho")[..., : cfg.n_mfcc]
            elif cfg.kind == "log_mel_delta":
                feats = tf.stack([feats, delta(feats, frames)], axis=-1)
            mask_f = tf.cast(mask, tf.float32)
            feats = feats * tf.reshape(
                mask_f, tf.concat([tf.shape(mask), tf.ones([tf.rank(feats) - 2], tf.int32)], 0)
            )

        if cfg.max_frames is not None:
            feats, mask = _fix_frames(feats, mask, cfg.max_frames)
        if unbatched:
            feats, mask = feats[0], mask[0]
        return feats, mask

    def _warped_mel(self, power, lengths, frames, stretch, semitones, max_samples):
        """Mel power `[B, T', n_mels]` of the pitch-shifted, stretched clips and their frames."""
        batch = tf.shape(power)[0]
        if semitones is None:
            mel = tf.einsum("btk,km->btm", power, tf.constant(self._mel))
        else:
            bank = spectral_warp.warped_mel_filterbank(self._mel, tf.reshape(semitones, [batch]))
            mel = tf.einsum("btk,bkm->btm", power, bank)
        if stretch is None:
            return mel, frames
        stretch = tf.reshape(tf.cast(stretch, tf.float32), [batch])
        out_frames = num_frames(spectral_warp.stretched_length(lengths, stretch, max_samples), self.config)
        return spectral_warp.stretch_frames(mel, frames, stretch, out_frames)

    def compute_output_shape(self, waveform_shape, lengths_shape=None):
        cfg = self.config
        batch = tuple(waveform_shape[:-1])
        t = cfg.max_frames
        if cfg.kind == "waveform":
            t = cfg.max_frames or waveform_shape[-1]
            return batch + (t,), batch + (t,)
        if t is None and waveform_shape[-1] is not None:
            t = num_frames(int(waveform_shape[-1]), cfg)
        feat = batch + (t, cfg.feature_dim) + ((2,) if cfg.channels == 2 else ())
        return feat, batch + (t,)

    def compute_output_spec(self, waveform, lengths):
        feat_shape, mask_shape = self.compute_output_shape(waveform.shape, lengths.shape)
        return (
            keras.KerasTensor(feat_shape, dtype="float32"),
            keras.KerasTensor(mask_shape, dtype="int32"),
        )

    def get_config(self):
        config = super().get_config()
        config.update({"config": self.config.to_dict()})
        return config


def _fix_frames(feats, mask, max_frames):
    t = tf.shape(mask)[1]
    feats = feats[:, :max_frames]
    mask = mask[:, :max_frames]
    extra = tf.maximum(max_frames - t, 0)
    paddings = tf.concat([[[0, 0], [0, extra]], tf.zeros([tf.rank(feats) - 2, 2], tf.int32)], 0)
    feats = tf.pad(feats, paddings)
    mask = tf.pad(mask, [[0, 0], [0, extra]])
    feat_shape = [None, max_frames] + feats.shape.as_list()[2:]
    feats = tf.ensure_shape(feats, feat_shape)
    mask = tf.ensure_shape(mask, [None, max_frames])
    return feats, mask
