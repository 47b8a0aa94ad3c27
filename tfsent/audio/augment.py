"""On-the-fly audio augmentation in the TensorFlow graph.

Waveform augmentations run per example (inside `Dataset.map`, before
batching); SpecAugment masking runs on features, per example or per batch.
Every random draw is a `tf.random.stateless_*` op seeded from
`example_seed(global_seed, epoch, index)`, so a fixed seed replays identical
batches and different seeds / epochs / examples differ. Each augmentation has
its own probability and range; `classes` restricts augmentation to chosen
class ids (seed 002 augments only minority classes).

Waveform chain (each step applied with its own probability):
speed perturbation (resampling, factors 0.9/1.0/1.1) -> time stretch and pitch
shift (one phase vocoder on one STFT, then one resampling for the pitch; for
models that take spectral features the pipeline applies these two to the
spectrogram instead, `tfsent.audio.spectral_warp`, with the same draws) ->
time shift (zero fill) -> gain -> background noise at an SNR -> Gaussian noise
at an SNR -> seed-001 noise `x + 0.005 * U(0,1) * max|x| * N(0, 1)`.

The two Gaussian noises read their N(0, 1) samples from a fixed table at a seeded offset
(`gaussian_noise`) instead of drawing each sample: a copy instead of a Philox + Box-Muller draw per
sample, the largest per-example cost of `bench/pipeline`'s cached pipeline before.
"""

import dataclasses
import functools
import math
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from tfsent.audio.resample import resample_by_ratio

# Sub-seed slots, one per random decision (stable across releases: append only).
_SPEED, _STRETCH, _PITCH, _SHIFT, _GAIN, _BACKGROUND, _NOISE, _AMP_NOISE = range(8)
_FREQ_MASK, _TIME_MASK = 100, 200


# === Config ===


@dataclasses.dataclass
class AudioAugmentConfig:
    """Probabilities and ranges of the on-the-fly augmentations (all off by default).

    Args:
        sample_rate: waveform rate in Hz (for `shift_max_s`).
        classes: class ids to augment (`None`: every example).
        noise_prob, noise_snr_db: Gaussian noise at an SNR drawn from `(lo, hi)` dB.
        amp_noise_prob, amp_noise_scale: seed 001's
            `x + scale * U(0,1) * max|x| * N(0,1)`.
        gain_prob, gain_db: gain drawn from `(lo, hi)` dB.
        shift_prob, shift_max_s: shift by up to +-`shift_max_s` seconds, zero fill,
            length kept.
        speed_prob, speed_factors: speed perturbation, a factor drawn uniformly
            from the tuple (tempo and pitch change together; length / factor).
        stretch_prob, stretch_rate: time stretch by a rate from `(lo, hi)`
            (>1 faster, pitch kept; length / rate).
        pitch_prob, pitch_semitones: pitch shift by `(lo, hi)` semitones, length kept.
        background_prob, background_snr_db: mix a random excerpt of a
            background clip (passed to `augment_waveform`) at an SNR.
        freq_mask_prob, freq_mask_width, num_freq_masks: SpecAugment frequency
            masks, widths in bins drawn from `[lo, hi]`.
        time_mask_prob, time_mask_width, num_time_masks: SpecAugment time masks
            (within the real frames), widths in frames from `[lo, hi]`.
        mask_value: `"mean"` (each example's mean over real frames) or a float.
        vocoder_n_fft, vocoder_hop: phase-vocoder STFT for stretch / pitch.

    Example:
    >>> cfg = AudioAugmentConfig.seed001()
    >>> seed = example_seed(1234, epoch=0, index=7)
    >>> y, n = augment_waveform(tf.random.normal([16000]), 16000, seed, cfg)
    """

    sample_rate: int = 16000
    classes: Optional[Sequence[int]] = None
    noise_prob: float = 0.0
    noise_snr_db: Tuple[float, float] = (10.0, 30.0)
    amp_noise_prob: float = 0.0
    amp_noise_scale: float = 0.005
    gain_prob: float = 0.0
    gain_db: Tuple[float, float] = (-6.0, 6.0)
    shift_prob: float = 0.0
    shift_max_s: float = 0.1
    speed_prob: float = 0.0
    speed_factors: Tuple[float, ...] = (0.9, 1.0, 1.1)
    stretch_prob: float = 0.0
    stretch_rate: Tuple[float, float] = (0.8, 1.25)
    pitch_prob: float = 0.0
    pitch_semitones: Tuple[float, float] = (-2.0, 2.0)
    background_prob: float = 0.0
    background_snr_db: Tuple[float, float] = (5.0, 20.0)
    freq_mask_prob: float = 0.0
    freq_mask_width: Tuple[int, int] = (10, 30)
    num_freq_masks: int = 1
    time_mask_prob: float = 0.0
    time_mask_width: Tuple[int, int] = (0, 40)
    num_time_masks: int = 1
    mask_value: Union[str, float] = "mean"
    vocoder_n_fft: int = 512
    vocoder_hop: int = 128

    def __post_init__(self):
        for f in dataclasses.fields(self):
            if f.name.endswith("_prob"):
                p = getattr(self, f.name)
                if not 0.0 <= p <= 1.0:
                    raise ValueError(f"AudioAugmentConfig.{f.name} must be in [0, 1], got {p}")
        for name in ("noise_snr_db", "gain_db", "stretch_rate", "pitch_semitones",
                     "background_snr_db", "freq_mask_width", "time_mask_width"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"AudioAugmentConfig.{name} needs lo <= hi, got {(lo, hi)}")
        if min(self.stretch_rate) <= 0 or min(self.speed_factors) <= 0:
            raise ValueError("stretch_rate and speed_factors must be > 0")
        if min(self.freq_mask_width) < 0 or min(self.time_mask_width) < 0:
            raise ValueError("mask widths must be >= 0")
        if isinstance(self.mask_value, str) and self.mask_value != "mean":
            raise ValueError(f"mask_value must be 'mean' or a number, got {self.mask_value!r}")
        if self.classes is not None:
            self.classes = tuple(int(c) for c in self.classes)

    @classmethod
    def seed001(cls, **overrides):
        """Seed 001: amplitude noise, time stretch 0.8, pitch shift +0.7 semitone."""
        base = dict(amp_noise_prob=1.0, stretch_prob=0.5, stretch_rate=(0.8, 0.8),
                    pitch_prob=0.5, pitch_semitones=(0.7, 0.7))
        base.update(overrides)
        return cls(**base)

    @classmethod
    def seed002(cls, classes=None, **overrides):
        """Seed 002: frequency masks of 10-30 bins, minority `classes` only."""
        base = dict(classes=classes, freq_mask_prob=1.0, freq_mask_width=(10, 30))
        base.update(overrides)
        return cls(**base)

    @property
    def waveform_enabled(self):
        return any(getattr(self, n) > 0 for n in (
            "noise_prob", "amp_noise_prob", "gain_prob", "shift_prob", "speed_prob",
            "stretch_prob", "pitch_prob", "background_prob"))

    @property
    def stretch_pitch_enabled(self):
        return self.stretch_prob > 0 or self.pitch_prob > 0

    def without_stretch_pitch(self):
        """This config with time stretch and pitch shift off."""
        return dataclasses.replace(self, stretch_prob=0.0, pitch_prob=0.0)

    def to_dict(self):
        return dataclasses.asdict(self)


# === Seeds ===


def example_seed(global_seed, epoch, index):
    """Stateless seed `[2]` int32 for one example of one epoch.

    Works with Python ints or int tensors (e.g. inside `Dataset.map` after
    `enumerate()`).
    """
    base = tf.stack([tf.cast(global_seed, tf.int32), tf.cast(epoch, tf.int32)])
    return tf.random.experimental.stateless_fold_in(base, tf.cast(index, tf.int32))


def _sub(seed, slot):
    return tf.random.experimental.stateless_fold_in(seed, slot)


def _uniform(seed, slot, lo=0.0, hi=1.0, shape=()):
    return tf.random.stateless_uniform(shape, _sub(seed, slot), minval=lo, maxval=hi)


def _coin(seed, slot, prob):
    return _uniform(seed, slot * 1000 + 1) < prob


def _maybe(seed, slot, prob, fn, x):
    """`fn(x)` with probability `prob`; skips graph construction when prob is 0 or 1."""
    if prob <= 0.0:
        return x
    if prob >= 1.0:
        return fn(x)
    return tf.cond(_coin(seed, slot, prob), lambda: fn(x), lambda: tf.identity(x))


def _class_enabled(classes, class_id):
    if classes is None or class_id is None:
        return tf.constant(True)
    class_id = tf.cast(class_id, tf.int32)
    return tf.reduce_any(tf.equal(class_id[..., None], tf.constant(classes, tf.int32)), axis=-1)


# === Waveform augmentations ===


# Samples of the noise table: 2^18 (16.4 s at 16 kHz, longer than the pipeline's crops; a longer clip
# gets a noise that repeats every 16.4 s).
NOISE_TABLE_SIZE = 1 << 18


@functools.lru_cache(maxsize=1)
def _noise_table_twice():
    """The N(0, 1) table laid twice end to end (any stretch up to its length is one slice)."""
    table = np.random.default_rng(20240601).standard_normal(NOISE_TABLE_SIZE).astype(np.float32)
    return np.concatenate([table, table])


def gaussian_noise(n, seed):
    """`n` N(0, 1) samples (float32 `[n]`): the fixed noise table read from an offset drawn from `seed`.

    Each example's noise is a stretch of one white Gaussian sequence starting at a uniformly drawn
    position (wrapping around), so within a clip it is white Gaussian noise, and a seed replays it;
    two clips' noises can overlap in parts (harmless for augmentation). A copy instead of one
    Philox + Box-Muller draw per sample.
    """
    start = tf.random.stateless_uniform([], tf.cast(seed, tf.int32), 0, NOISE_TABLE_SIZE, dtype=tf.int32)
    # Sample i is table[(start + i) % size]: one slice of the doubled table (a copy; a gather of the
    # same samples costs twice the CPU), tiled when the clip is longer than the table.
    piece = tf.slice(tf.constant(_noise_table_twice()), [start], [tf.minimum(n, NOISE_TABLE_SIZE)])
    return tf.tile(piece, [(n + NOISE_TABLE_SIZE - 1) // NOISE_TABLE_SIZE])[:n]


def add_noise_snr(x, seed, snr_db):
    """Gaussian noise at `snr_db` dB below the signal power (`gaussian_noise`)."""
    noise_power = tf.reduce_mean(tf.square(x)) / tf.pow(10.0, snr_db / 10.0)
    return x + tf.sqrt(noise_power) * gaussian_noise(tf.shape(x)[0], seed)


def _hann(n, dtype=tf.float32):
    return tf.signal.hann_window(n, periodic=True, dtype=dtype)


def phase_vocoder_stretch(x, rate, n_fft=512, hop=128):
    """Time-stretch `[S]` by `rate` (>1 faster) keeping pitch; `round(S / rate)` samples.

    One STFT, a vectorised phase vocoder (librosa's algorithm: magnitude
    interpolation between neighbouring frames, phase advance accumulated with
    a cumulative sum), one inverse STFT.
    """
    rate = tf.cast(rate, tf.float32)
    samples = tf.shape(x)[0]
    pad = n_fft // 2
    xp = tf.pad(x, [[pad, pad + n_fft]])
    spec = tf.signal.stft(xp, n_fft, hop, n_fft, window_fn=_hann, pad_end=False)  # [T, K]
    frames = tf.shape(spec)[0]
    # Magnitude and phase once per frame, then gather neighbours (cheaper than per step).
    mags = tf.pad(tf.abs(spec), [[0, 2], [0, 0]])
    # atan2 on the parts, not tf.math.angle: same values, ~5x cheaper on CPU (Eigen's complex arg
    # is not vectorised), ~2 ms per 2.5 s clip.
    phases = tf.pad(tf.math.atan2(tf.math.imag(spec), tf.math.real(spec)), [[0, 2], [0, 0]])
    steps = tf.range(0.0, tf.cast(frames, tf.float32), rate)
    idx = tf.cast(tf.floor(steps), tf.int32)
    alpha = (steps - tf.floor(steps))[:, None]
    m0 = tf.gather(mags, idx)
    mag = m0 + alpha * (tf.gather(mags, idx + 1) - m0)
    k = n_fft // 2 + 1
    advance = tf.linspace(0.0, math.pi * hop, k)[None, :]
    dphase = tf.gather(phases, idx + 1) - tf.gather(phases, idx) - advance
    dphase = dphase - 2.0 * math.pi * tf.round(dphase / (2.0 * math.pi)) + advance
    phase = phases[:1] + tf.cumsum(dphase, axis=0, exclusive=True)
    out = tf.complex(mag * tf.cos(phase), mag * tf.sin(phase))
    y = tf.signal.inverse_stft(
        out, n_fft, hop, n_fft,
        window_fn=tf.signal.inverse_stft_window_fn(hop, forward_window_fn=_hann),
    )
    n_out = tf.cast(tf.round(tf.cast(samples, tf.float32) / rate), tf.int32)
    y = y[pad:]
    return tf.pad(y, [[0, tf.maximum(n_out - tf.shape(y)[0], 0)]])[:n_out]


def stretch_pitch_draws(seed, config, class_id=None):
    """One example's time-stretch rate and pitch shift: float32 scalars `(rate, semitones)`.

    `(1.0, 0.0)` when the coin flips say no (or `class_id` is not among `config.classes`). The
    waveform chain (`augment_waveform`) and the feature-domain version
    (`tfsent.audio.spectral_warp`) use these same draws, so a seed gives the same stretch and
    pitch in both domains.
    """
    seed = tf.cast(seed, tf.int32)
    do_stretch = _coin(seed, _STRETCH, config.stretch_prob) if config.stretch_prob > 0 else False
    do_pitch = _coin(seed, _PITCH, config.pitch_prob) if config.pitch_prob > 0 else False
    enabled = _class_enabled(config.classes, class_id)
    do_stretch = tf.logical_and(tf.convert_to_tensor(do_stretch), enabled)
    do_pitch = tf.logical_and(tf.convert_to_tensor(do_pitch), enabled)
    stretch = tf.where(do_stretch, _uniform(seed, _STRETCH, *config.stretch_rate), 1.0)
    semitones = tf.where(do_pitch, _uniform(seed, _PITCH, *config.pitch_semitones), 0.0)
    return stretch, semitones


def _stretch_and_pitch(x, seed, config):
    """Stretch and/or pitch-shift with one vocoder pass (and one resampling for pitch)."""
    stretch, semitones = stretch_pitch_draws(seed, config)
    do_stretch = tf.not_equal(stretch, 1.0)
    do_pitch = tf.not_equal(semitones, 0.0)
    # librosa pitch_shift: stretch by 2^(-n/12) then resample by the same ratio.
    pitch_rate = tf.pow(2.0, -semitones / 12.0)
    target = tf.cast(
        tf.round(tf.cast(tf.shape(x)[0], tf.float32) / stretch), tf.int32
    )

    lo, hi = config.pitch_semitones
    # A fixed shift (seed 001: 0.7 semitone) resamples by a static fraction (polyphase).
    static_rate = 2.0 ** (-lo / 12.0) if lo == hi else None

    def run():
        y = phase_vocoder_stretch(x, stretch * pitch_rate, config.vocoder_n_fft, config.vocoder_hop)
        shift = (lambda: resample_by_ratio(y, static_rate)) if static_rate else (
            lambda: resample_by_ratio(y, pitch_rate))
        y = tf.cond(tf.equal(pitch_rate, 1.0), lambda: y, shift)
        return tf.pad(y, [[0, tf.maximum(target - tf.shape(y)[0], 0)]])[:target]

    any_on = tf.logical_or(do_stretch, do_pitch)
    return tf.cond(any_on, run, lambda: tf.identity(x))


def _speed(x, seed, config):
    i = tf.random.stateless_uniform(
        [], _sub(seed, _SPEED), minval=0, maxval=len(config.speed_factors), dtype=tf.int32
    )
    # Factors are known in Python: each branch resamples by a static fraction (polyphase).
    branches = [
        (lambda: tf.identity(x)) if f == 1.0 else (lambda f=f: resample_by_ratio(x, 1.0 / f))
        for f in config.speed_factors
    ]
    return tf.switch_case(i, branches)


def _shift(x, seed, config):
    max_shift = int(round(config.shift_max_s * config.sample_rate))
    s = tf.random.stateless_uniform(
        [], _sub(seed, _SHIFT), minval=-max_shift, maxval=max_shift + 1, dtype=tf.int32
    )
    n = tf.shape(x)[0]
    pos = tf.range(n)
    keep = tf.logical_and(pos - s >= 0, pos - s < n)
    return tf.where(keep, tf.roll(x, s, axis=0), 0.0)


def _background(x, seed, clips, snr_range):
    clips = tf.convert_to_tensor(clips, tf.float32)
    n = tf.shape(x)[0]
    num = tf.shape(clips)[0]
    clip_len = tf.shape(clips)[1]
    i = tf.random.stateless_uniform([], _sub(seed, _BACKGROUND), 0, num, dtype=tf.int32)
    off = tf.random.stateless_uniform([], _sub(seed, _BACKGROUND + 50), 0, clip_len, dtype=tf.int32)
    reps = n // clip_len + 2
    noise = tf.tile(clips[i], [reps])[off : off + n]
    snr = _uniform(seed, _BACKGROUND + 70, *snr_range)
    p_sig = tf.reduce_mean(tf.square(x))
    p_noise = tf.maximum(tf.reduce_mean(tf.square(noise)), 1e-12)
    scale = tf.sqrt(p_sig / (p_noise * tf.pow(10.0, snr / 10.0)))
    return x + scale * noise


def augment_waveform(waveform, length, seed, config, class_id=None, background=None, stretch_pitch=True):
    """Augment one example's waveform.

    Args:
        waveform: float32 `[S]` (samples after `length` are ignored).
        length: int scalar, real samples.
        seed: int32 `[2]` stateless seed (see `example_seed`).
        config: `AudioAugmentConfig`.
        class_id: int scalar; with `config.classes` set, only those classes
            are augmented (others pass through unchanged).
        background: optional float32 `[N, S_bg]` background clips for
            `background_prob`.
        stretch_pitch: False leaves time stretch and pitch shift out (they are then
            applied to the spectrogram: `tfsent.audio.spectral_warp`).

    Returns:
        `(waveform [S'], length)` with `S' == length` (speed and stretch change it).
    """
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    if waveform.shape.rank != 1:
        raise ValueError(f"augment_waveform works per example: [S], got {waveform.shape}")
    x = waveform[: tf.cast(length, tf.int32)]
    seed = tf.cast(seed, tf.int32)
    if config.background_prob > 0 and background is None:
        raise ValueError("background_prob > 0 needs `background` clips")

    def chain(x):
        x = _maybe(seed, _SPEED, config.speed_prob, lambda v: _speed(v, seed, config), x)
        if stretch_pitch and (config.stretch_prob > 0 or config.pitch_prob > 0):
            x = _stretch_and_pitch(x, seed, config)
        x = _maybe(seed, _SHIFT, config.shift_prob, lambda v: _shift(v, seed, config), x)
        x = _maybe(
            seed, _GAIN, config.gain_prob,
            lambda v: v * tf.pow(10.0, _uniform(seed, _GAIN, *config.gain_db) / 20.0), x,
        )
        x = _maybe(
            seed, _BACKGROUND, config.background_prob,
            lambda v: _background(v, seed, background, config.background_snr_db), x,
        )
        x = _maybe(
            seed, _NOISE, config.noise_prob,
            lambda v: add_noise_snr(v, _sub(seed, _NOISE + 50), _uniform(seed, _NOISE, *config.noise_snr_db)),
            x,
        )

        def amp_noise(v):
            amp = config.amp_noise_scale * _uniform(seed, _AMP_NOISE) * tf.reduce_max(tf.abs(v))
            return v + amp * gaussian_noise(tf.shape(v)[0], _sub(seed, _AMP_NOISE + 50))

        return _maybe(seed, _AMP_NOISE, config.amp_noise_prob, amp_noise, x)

    if not config.waveform_enabled or (not stretch_pitch and not config.without_stretch_pitch().waveform_enabled):
        return x, tf.shape(x)[0]
    if config.classes is None or class_id is None:
        y = chain(x)
    else:
        y = tf.cond(_class_enabled(config.classes, class_id), lambda: chain(x), lambda: tf.identity(x))
    return y, tf.shape(y)[0]


# === SpecAugment ===


def _per_example_seeds(seed, batch):
    seed = tf.cast(seed, tf.int32)
    if seed.shape.rank == 2:
        return seed
    return tf.map_fn(
        lambda i: tf.random.experimental.stateless_fold_in(seed, i),
        tf.range(batch), fn_output_signature=tf.TensorSpec([2], tf.int32),
    )


def _band_masks(seeds, slot, count, prob, width_range, extent):
    """Bool `[B, D]` union of `count` random bands, each with its own coin flip.

    `extent` [B] int32: bands lie within [0, extent).
    """
    lo, hi = int(width_range[0]), int(width_range[1])

    def draw(s):
        return tf.stack([tf.random.stateless_uniform([3], _sub(s, slot + j)) for j in range(count)])

    u = tf.map_fn(draw, seeds, fn_output_signature=tf.TensorSpec([count, 3], tf.float32))
    on = u[..., 0] < prob  # [B, count]
    ext = tf.cast(extent, tf.float32)[:, None]
    width = tf.floor(lo + u[..., 1] * (hi - lo + 1))
    width = tf.minimum(width, ext)
    start = tf.floor(u[..., 2] * (ext - width + 1.0))
    return on, tf.cast(start, tf.int32), tf.cast(width, tf.int32)


def _band_union(on, start, width, size):
    pos = tf.range(size)[None, None, :]
    inside = tf.logical_and(pos >= start[..., None], pos < (start + width)[..., None])
    return tf.reduce_any(tf.logical_and(inside, on[..., None]), axis=1)  # [B, size]


def spec_augment(features, frame_mask, seed, config, class_id=None):
    """SpecAugment frequency and time masking on real frames.

    Args:
        features: float32 `[T, F]`, `[T, F, C]` or batched `[B, T, F(, C)]`.
        frame_mask: int32 `[T]` / `[B, T]`, 1 on real frames.
        seed: int32 `[2]`, or for a batch `[B, 2]` per-example seeds (a `[2]`
            seed for a batch is folded with each row index). A batched call
            with per-example seeds equals per-example calls.
        config: `AudioAugmentConfig` (`freq_mask_*`, `time_mask_*`, `mask_value`,
            `classes`).
        class_id: optional int scalar / `[B]` for `config.classes`.

    Returns:
        features of the same shape; padded frames stay as they were.
    """
    features = tf.convert_to_tensor(features, tf.float32)
    frame_mask = tf.convert_to_tensor(frame_mask)
    unbatched = frame_mask.shape.rank == 1
    if unbatched:
        features, frame_mask = features[None], frame_mask[None]
        seed = tf.reshape(tf.cast(seed, tf.int32), [1, 2])
        if class_id is not None:
            class_id = tf.reshape(class_id, [1])
    if config.freq_mask_prob <= 0 and config.time_mask_prob <= 0:
        out = features
    else:
        batch, t, f = tf.shape(features)[0], tf.shape(features)[1], tf.shape(features)[2]
        seeds = _per_example_seeds(seed, batch)
        real = tf.cast(frame_mask, tf.bool)  # [B, T]
        lengths = tf.reduce_sum(tf.cast(frame_mask, tf.int32), axis=1)
        hit = tf.zeros([batch, t, f], tf.bool)
        if config.freq_mask_prob > 0:
            on, start, width = _band_masks(
                seeds, _FREQ_MASK, config.num_freq_masks, config.freq_mask_prob,
                config.freq_mask_width, tf.fill([batch], f),
            )
            hit = tf.logical_or(hit, _band_union(on, start, width, f)[:, None, :])
        if config.time_mask_prob > 0:
            on, start, width = _band_masks(
                seeds, _TIME_MASK, config.num_time_masks, config.time_mask_prob,
                config.time_mask_width, lengths,
            )
            hit = tf.logical_or(hit, _band_union(on, start, width, t)[:, :, None])
        hit = tf.logical_and(hit, real[:, :, None])
        if class_id is not None and config.classes is not None:
            hit = tf.logical_and(hit, _class_enabled(config.classes, class_id)[:, None, None])
        extra = features.shape.rank - 3
        hit_b = tf.reshape(hit, tf.concat([tf.shape(hit), tf.ones([extra], tf.int32)], 0))
        if isinstance(config.mask_value, str):
            w = tf.cast(real, tf.float32)
            w = tf.reshape(w, tf.concat([tf.shape(w), tf.ones([extra + 1], tf.int32)], 0))
            total = tf.reduce_sum(features * w, axis=[1, 2], keepdims=True)
            count = tf.maximum(tf.reduce_sum(w, axis=[1, 2], keepdims=True) * tf.cast(f, tf.float32), 1.0)
            value = total / count
        else:
            value = tf.constant(float(config.mask_value), tf.float32)
        out = tf.where(hit_b, value, features)
    return out[0] if unbatched else out
