"""Controlled waveform corruptions (robustness evaluation and robust training), as pure TensorFlow ops.

Each function takes one example's waveform `[S]` float32 and, where it draws anything, a stateless seed
`[2]` int32: the same seed gives the same samples in eager mode, a `tf.function`, `Dataset.map` and a
tf.data service worker (no Python or NumPy at run time, no `py_function`). Output length = input length.

- `white_noise`, `babble`: additive noise scaled so that the SNR over the clip is exactly the target
  (`mix_at_snr`); babble clips are sums of other utterances (`babble_bank`, built once with NumPy);
- `telephone`: resample to 8 kHz (`tfsent.audio.resample`), 300-3400 Hz band-pass, G.711-style μ-law
  8-bit round trip, back to the input rate;
- `reverb`: convolution (FFT) with a room impulse response drawn from a bank simulated once with
  pyroomacoustics (`room_impulse_responses`: shoebox rooms, image-source method, the absorption
  calibrated until the Schroeder-measured RT60 is the requested one);
- `gain`, `clipping` (hard clip relative to the clip's peak), `packet_loss` (random 20 ms drop-outs).

Banks are NumPy arrays that enter the graph as constants.

Example:

```python
seed = tf.constant([7, 3])
noisy = white_noise(x, seed, snr_db=10.0)
irs = room_impulse_responses(rt60=0.3, count=2, seed=0)       # [2, L] float32, once
wet = reverb(x, seed, irs)
phone = telephone(x, sample_rate=16000)
```
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfsent.audio.resample import resample

TELEPHONE_RATE = 8000
TELEPHONE_BAND_HZ = (300.0, 3400.0)
PACKET_SECONDS = 0.02


def _power(x):
    return tf.reduce_mean(tf.square(x))


def _fold(seed, slot):
    return tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int32), slot)


def mix_at_snr(signal, noise, snr_db):
    """`signal + g * noise`, `g` such that `10 log10(P_signal / P_(g noise)) == snr_db` (powers over the
    whole clip; `noise` as long as `signal`). A silent clip stays silent."""
    snr_db = tf.cast(snr_db, tf.float32)
    scale = tf.sqrt(_power(signal) / (tf.maximum(_power(noise), 1e-20) * tf.pow(10.0, snr_db / 10.0)))
    return signal + scale * noise


def white_noise(x, seed, snr_db):
    """Gaussian white noise at `snr_db` (exact over the clip)."""
    return mix_at_snr(x, tf.random.stateless_normal(tf.shape(x), tf.cast(seed, tf.int32)), snr_db)


def babble(x, seed, bank, snr_db):
    """Babble at `snr_db`: a clip drawn from `bank` (`[N, L]`, see `babble_bank`) from a random offset,
    repeated to the length of `x`."""
    bank = tf.convert_to_tensor(bank, tf.float32)
    n = tf.shape(x)[0]
    length = tf.shape(bank)[1]
    i = tf.random.stateless_uniform([], _fold(seed, 1), 0, tf.shape(bank)[0], dtype=tf.int32)
    offset = tf.random.stateless_uniform([], _fold(seed, 2), 0, length, dtype=tf.int32)
    noise = tf.tile(bank[i], [n // length + 2])[offset : offset + n]
    return mix_at_snr(x, noise, snr_db)


def babble_bank(clips, seed, count=8, voices=4, length=64000) -> np.ndarray:
    """`[count, length]` float32 babble clips (NumPy, built once): each the sum of `voices` different
    clips of `clips` (1-D arrays, other utterances), each scaled to unit RMS and repeated from a random
    offset to `length` samples."""
    clips = [np.asarray(c, np.float32) for c in clips if np.size(c) and np.any(c)]
    if len(clips) < voices:
        raise ValueError(f"babble needs at least {voices} non-silent clips, got {len(clips)}")
    rng = np.random.default_rng(seed)
    bank = np.zeros((count, length), np.float32)
    for k in range(count):
        for j in rng.choice(len(clips), size=voices, replace=False):
            c = clips[j] / np.sqrt(np.mean(np.square(clips[j])))
            start = int(rng.integers(len(c)))
            bank[k] += np.tile(c, length // len(c) + 2)[start : start + length]
    return bank


def band_pass(x, sample_rate, low_hz, high_hz):
    """Zeroes every frequency outside `[low_hz, high_hz]` (FFT of the whole clip)."""
    n = tf.shape(x)[0]
    spectrum = tf.signal.rfft(x)
    freqs = tf.cast(tf.range(n // 2 + 1), tf.float32) * (float(sample_rate) / tf.cast(n, tf.float32))
    keep = tf.logical_and(freqs >= low_hz, freqs <= high_hz)
    return tf.signal.irfft(spectrum * tf.cast(keep, spectrum.dtype), fft_length=[n])


def mu_law_round_trip(x, bits=8):
    """Encode to `bits`-bit μ-law codes (μ = 2^bits - 1, input clipped to [-1, 1]) and decode."""
    mu = float(2**bits - 1)
    x = tf.clip_by_value(x, -1.0, 1.0)
    y = tf.sign(x) * tf.math.log1p(mu * tf.abs(x)) / np.log1p(mu)
    codes = tf.round((y + 1.0) / 2.0 * mu)
    y = codes / mu * 2.0 - 1.0
    return tf.sign(y) * (tf.pow(1.0 + mu, tf.abs(y)) - 1.0) / mu


def telephone(x, sample_rate=16000):
    """Narrow-band telephone channel: to 8 kHz, 300-3400 Hz band-pass, μ-law 8-bit, back to
    `sample_rate` (Python int). Nothing is left above 4 kHz."""
    n = tf.shape(x)[0]
    y = resample(x, int(sample_rate), TELEPHONE_RATE)
    y = band_pass(y, TELEPHONE_RATE, *TELEPHONE_BAND_HZ)
    y = mu_law_round_trip(y)
    y = resample(y, TELEPHONE_RATE, int(sample_rate))
    return tf.pad(y, [[0, tf.maximum(n - tf.shape(y)[0], 0)]])[:n]


def reverb(x, seed, irs):
    """`x` convolved with an impulse response drawn from `irs` (`[K, L]`, see `room_impulse_responses`;
    unit energy, direct path first), cut to the length of `x` (the tail past the clip is dropped)."""
    irs = tf.convert_to_tensor(irs, tf.float32)
    h = irs[tf.random.stateless_uniform([], _fold(seed, 1), 0, tf.shape(irs)[0], dtype=tf.int32)]
    n = tf.shape(x)[0]
    total = n + tf.shape(h)[0] - 1
    size = tf.cast(tf.pow(2.0, tf.math.ceil(tf.math.log(tf.cast(total, tf.float32)) / np.log(2.0))), tf.int32)
    y = tf.signal.irfft(tf.signal.rfft(x, [size]) * tf.signal.rfft(h, [size]), fft_length=[size])
    return y[:n]


def gain(x, db):
    """`x` times `10^(db/20)`."""
    return x * float(10.0 ** (db / 20.0))


def clipping(x, level_db=-12.0):
    """Hard clipping at `level_db` relative to the clip's peak (−12 dB: a quarter of the peak)."""
    threshold = tf.reduce_max(tf.abs(x)) * float(10.0 ** (level_db / 20.0))
    return tf.clip_by_value(x, -threshold, threshold)


def packet_loss(x, seed, rate=0.1, sample_rate=16000, packet_seconds=PACKET_SECONDS):
    """Each `packet_seconds` packet of the clip is dropped (zeroed) with probability `rate`."""
    packet = max(int(round(packet_seconds * sample_rate)), 1)
    n = tf.shape(x)[0]
    packets = (n + packet - 1) // packet
    kept = tf.cast(tf.random.stateless_uniform([packets], tf.cast(seed, tf.int32)) >= rate, x.dtype)
    return x * tf.repeat(kept, packet)[:n]


# === Room impulse responses (NumPy at bank-build time) ===


def rt60_schroeder(h, sample_rate, decay_db=30.0):
    """RT60 (s) of an impulse response by Schroeder backward integration: the energy decay curve's
    slope fitted from −5 dB to −(5 + decay_db) dB, extrapolated to 60 dB (T30 by default)."""
    energy = np.cumsum(np.square(np.asarray(h, np.float64))[::-1])[::-1]
    edc = 10.0 * np.log10(np.maximum(energy / energy[0], 1e-300))
    start, end = int(np.argmax(edc <= -5.0)), int(np.argmax(edc <= -5.0 - decay_db))
    if end <= start + 1:
        raise ValueError(f"the impulse response does not decay by {5 + decay_db:.0f} dB")
    t = np.arange(len(edc)) / float(sample_rate)
    slope = np.polyfit(t[start:end], edc[start:end], 1)[0]
    return float(-60.0 / slope)


def _simulate_room(rt60, dims, source, mic, sample_rate):
    import pyroomacoustics as pra

    absorption, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=sample_rate, materials=pra.Material(absorption), max_order=max_order,
                       use_rand_ism=False)
    room.add_source(source)
    room.add_microphone(mic)
    room.compute_rir()
    return np.asarray(room.rir[0][0], np.float64)


def room_impulse_responses(rt60, count=2, seed=0, sample_rate=16000, tolerance=0.05, max_iterations=6):
    """`[count, L]` float32 impulse responses of random shoebox rooms with the requested `rt60` (s).

    Rooms (4-8 x 3-6 x 2.5-3.5 m, source and microphone at least 0.5 m from the walls) are drawn
    from `seed`. The image-source method with Sabine's absorption misses the RT60 by up to ~40 %, so
    the Sabine target is corrected until the response's Schroeder RT60 (`rt60_schroeder`) is within
    `tolerance`. Each response starts 2 ms before its direct path and has unit energy; zero-padded
    to the longest.
    """
    rng = np.random.default_rng([int(seed), int(round(rt60 * 1000))])
    responses = []
    for _ in range(count):
        dims = np.array([rng.uniform(4, 8), rng.uniform(3, 6), rng.uniform(2.5, 3.5)])
        source, mic = rng.uniform(0.5, dims - 0.5), rng.uniform(0.5, dims - 0.5)
        target = rt60
        for _ in range(max_iterations):
            h = _simulate_room(target, dims, source, mic, sample_rate)
            measured = rt60_schroeder(h, sample_rate)
            if abs(measured - rt60) <= tolerance * rt60:
                break
            target *= rt60 / measured
        start = max(int(np.argmax(np.abs(h))) - int(0.002 * sample_rate), 0)
        h = h[start:]
        responses.append(h / np.sqrt(np.sum(np.square(h))))
    bank = np.zeros((count, max(len(h) for h in responses)), np.float32)
    for k, h in enumerate(responses):
        bank[k, : len(h)] = h
    return bank
