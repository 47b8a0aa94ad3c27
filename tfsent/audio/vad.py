"""Voice-activity detection in TensorFlow ops: frame energy against the recording's own noise floor.

Pure TF (no py_function), so it runs eagerly, in `Dataset.map` and inside an exported SavedModel (the
`timeline` signature). The detection is split in two steps so a long recording can stream:

1. `frame_energies_db(samples, length)`: log energy (dBFS) of 25 ms frames every 10 ms. Frame `i`
   covers samples `[i*H, i*H + L)`; only the real samples count. A block of a long file starting at
   a multiple of `H` (with `L - H` samples of look-ahead) gives exactly that block's frames, so
   energies can be computed block by block and concatenated.
2. `speech_frames(energies_db)`: threshold = the `percentile`-th frame energy of the whole recording
   (its noise floor) + `margin_db`, never below `min_threshold_db` (digital silence would otherwise
   turn faint hiss into speech). Then pauses shorter than `min_pause_seconds` are filled, speech
   runs shorter than `min_speech_seconds` dropped, and each speech run extended by
   `hangover_seconds` on both sides (morphological closing, opening, dilation).

Frame `i` stands for the hop slice `[i*H, (i+1)*H)` of the recording; `speech_regions` and
`window_speech` measure time on those slices.

Example:

```python
mask = detect_speech(samples)                                    # bool [frames]
regions = speech_regions(mask, tf.size(samples))                 # [[start_s, end_s], ...]
ds = ds.map(lambda x: (x, detect_speech(x)))                      # inside tf.data
```
"""

from __future__ import annotations

import dataclasses
import math

import tensorflow as tf

_EPS = 1e-10  # -100 dBFS: the energy of digital silence


@dataclasses.dataclass(frozen=True)
class VadConfig:
    """Settings of the energy VAD (defaults suit 16 kHz speech with pauses of a few hundred ms).

    Args:
        sample_rate: samples per second of the audio given.
        frame_seconds: analysis frame length.
        hop_seconds: frame hop; one frame = one hop slice of time.
        percentile: which frame energy (0-100) of the recording is its noise floor.
        margin_db: speech is this many dB above the noise floor.
        min_threshold_db: the threshold never goes below this (dBFS).
        min_speech_seconds: speech runs shorter than this are dropped.
        min_pause_seconds: pauses shorter than this are filled (speech continues).
        hangover_seconds: speech runs are extended by this much on both sides.
        min_speech_fraction: a timeline window is `speech` when at least this share of it is.

    Example:

    ```python
    config = VadConfig(margin_db=12.0)
    mask = detect_speech(samples, config)
    ```
    """

    sample_rate: int = 16000
    frame_seconds: float = 0.025
    hop_seconds: float = 0.010
    percentile: float = 10.0
    margin_db: float = 10.0
    min_threshold_db: float = -50.0
    min_speech_seconds: float = 0.1
    min_pause_seconds: float = 0.3
    hangover_seconds: float = 0.1
    min_speech_fraction: float = 0.5

    @property
    def frame_length(self) -> int:
        return int(round(self.frame_seconds * self.sample_rate))

    @property
    def frame_hop(self) -> int:
        return int(round(self.hop_seconds * self.sample_rate))

    def frames(self, seconds) -> int:
        return int(round(seconds / self.hop_seconds))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


DEFAULT = VadConfig()


def num_frames(length, config=DEFAULT):
    """Frames of a recording of `length` samples: `ceil(length / H)` (int32 tensor)."""
    length = tf.cast(length, tf.int32)
    return (length + config.frame_hop - 1) // config.frame_hop


def frame_energies_db(samples, length=None, config=DEFAULT, frames=None):
    """Energy in dBFS of each frame of `samples` `[S]` (mean square of the real samples).

    Sums of squares over blocks of gcd(L, H) samples are added up per frame, so the memory is that of
    the audio, not frames x frame length (an hour at 16 kHz stays ~0.2 GB, not 0.6 GB).

    Args:
        samples: float32 `[S]`; samples past `length` do not count.
        length: real samples (default: all); frames whose start is past it are not returned.
        config: `VadConfig`.
        frames: return only the first `frames` frames (for blocks of a longer recording).
    """
    samples = tf.convert_to_tensor(samples, tf.float32)
    length = tf.size(samples) if length is None else tf.cast(length, tf.int32)
    hop, size = config.frame_hop, config.frame_length
    unit = math.gcd(hop, size)
    count = num_frames(length, config)
    if frames is not None:
        count = tf.minimum(tf.cast(frames, tf.int32), count)
    needed = tf.maximum((count - 1) * hop + size, 0)
    real = samples[:tf.minimum(needed, length)]
    squares = tf.pad(tf.square(real), [[0, needed - tf.size(real)]])
    sums = tf.reduce_sum(tf.reshape(squares, [-1, unit]), axis=1)
    power = tf.reduce_sum(tf.signal.frame(sums, size // unit, hop // unit), axis=1)[:count]
    counted = tf.clip_by_value(length - tf.range(count) * hop, 1, size)
    return 10.0 * tf.math.log(power / tf.cast(counted, tf.float32) + _EPS) / tf.math.log(10.0)


def _dilate(mask, radius):
    if radius <= 0:
        return mask
    x = tf.cast(mask, tf.float32)[None, :, None]
    return tf.nn.max_pool1d(x, 2 * radius + 1, 1, "SAME")[0, :, 0] > 0.5


def _erode(mask, radius):
    return tf.logical_not(_dilate(tf.logical_not(mask), radius))


def noise_floor_threshold(energies_db, config=DEFAULT):
    """The speech threshold (dBFS) of a recording from all its frame energies."""
    energies_db = tf.convert_to_tensor(energies_db, tf.float32)
    ordered = tf.sort(energies_db)
    count = tf.size(ordered)
    index = tf.cast(tf.round(config.percentile / 100.0 * tf.cast(tf.maximum(count - 1, 0), tf.float32)), tf.int32)
    floor = tf.cond(count > 0, lambda: ordered[tf.minimum(index, count - 1)], lambda: tf.constant(-100.0))
    return tf.maximum(floor + config.margin_db, config.min_threshold_db)


def speech_frames(energies_db, config=DEFAULT):
    """Speech (bool `[F]`) from the frame energies of a whole recording."""
    energies_db = tf.convert_to_tensor(energies_db, tf.float32)
    return smooth(energies_db > noise_floor_threshold(energies_db, config), config)


def smooth(raw, config=DEFAULT):
    """Fills short pauses, drops short speech runs and adds the hangover to a raw per-frame decision."""
    raw = tf.cast(tf.convert_to_tensor(raw), tf.bool)
    # Closing fills pauses of up to 2r frames; opening drops runs of up to 2r frames.
    pause_r = config.frames(config.min_pause_seconds) // 2
    speech_r = config.frames(config.min_speech_seconds) // 2
    closed = _erode(_dilate(raw, pause_r), pause_r)
    opened = _dilate(_erode(closed, speech_r), speech_r)
    return _dilate(opened, config.frames(config.hangover_seconds))


def detect_speech(samples, config=DEFAULT, length=None):
    """`speech_frames(frame_energies_db(samples, length))`: one recording in one call."""
    return speech_frames(frame_energies_db(samples, length, config), config)


def speech_regions(mask, length, config=DEFAULT):
    """Runs of speech frames as `[R, 2]` float32 (start, end) in seconds, clipped to the recording."""
    mask = tf.cast(tf.convert_to_tensor(mask), tf.int32)
    edges = mask - tf.pad(mask, [[1, 0]])[:-1]   # +1 where a run starts
    ends = tf.pad(mask, [[0, 1]])[1:] - mask     # -1 after the frame where a run ends
    starts = tf.cast(tf.where(tf.equal(edges, 1))[:, 0], tf.int32) * config.frame_hop
    stops = (tf.cast(tf.where(tf.equal(ends, -1))[:, 0], tf.int32) + 1) * config.frame_hop
    stops = tf.minimum(stops, tf.cast(length, tf.int32))
    return tf.cast(tf.stack([starts, stops], axis=1), tf.float32) / float(config.sample_rate)


def speech_samples_before(mask, positions, length, config=DEFAULT):
    """Speech samples in `[0, p)` for each sample position `p` of `positions` (int64)."""
    hop = config.frame_hop
    mask = tf.cast(tf.convert_to_tensor(mask), tf.int64)
    cumulative = tf.concat([[0], tf.cumsum(mask * hop)], 0)
    positions = tf.clip_by_value(tf.cast(positions, tf.int64), 0, tf.cast(length, tf.int64))
    index = positions // hop
    partial = tf.gather(tf.concat([mask, [0]], 0), index) * (positions - index * hop)
    return tf.gather(cumulative, index) + partial


def window_speech(mask, starts, window, length, config=DEFAULT):
    """Per timeline window: (speech bool `[W]`, speech seconds it owns float32 `[W]`).

    A window is `speech` when at least `min_speech_fraction` of it is speech. Each speech sample is
    owned by the window whose centre is nearest (boundaries half-way between centres; the first window
    owns from 0, the last to the end), so the owned speech seconds of all windows add up to the
    recording's speech time: the basis of a timeline's per-class share of speech time.
    """
    starts = tf.cast(starts, tf.int64)
    length = tf.cast(length, tf.int64)
    inside = speech_samples_before(mask, starts + window, length, config) - \
        speech_samples_before(mask, starts, length, config)
    speech = tf.cast(inside, tf.float64) >= config.min_speech_fraction * window
    centres2 = 2 * starts + window                      # twice the centre, to stay in integers
    cuts = (centres2[:-1] + centres2[1:]) // 4          # midpoints between neighbouring centres
    lo = tf.concat([[0], cuts], 0)
    hi = tf.concat([cuts, [length]], 0)
    owned = speech_samples_before(mask, hi, length, config) - speech_samples_before(mask, lo, length, config)
    return speech, tf.cast(owned, tf.float32) / float(config.sample_rate)
