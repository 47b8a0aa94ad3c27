"""Pure-TensorFlow band-limited resampling (Kaiser-windowed sinc).

`resample(waveform, in_rate, out_rate)` runs in eager mode, `tf.function`,
`Dataset.map` and exported SavedModels: the input rate may be a run-time
scalar tensor (an exported model receives WAVs of any rate), the output rate
is a Python int. Two exact implementations of the same filter:

- polyphase: with `g = gcd(in, out)`, `L = out / g`, `M = in / g`, the input is
  cut into blocks of `M` samples and an `[nb, M, L]` filter bank gives `L`
  outputs per block. One `conv1d` row holds `k = max(1, 32 // L)` blocks (the
  bank zero-padded into a `[~nb/k + 1, k*M, k*L]` filter), so integer decimation
  (48 -> 16 kHz, L = 1) is a well-shaped matmul instead of a matrix-vector
  product: 1.4 instead of 6.9 ms per 3 s clip, same samples (< 1e-6). Cost ~
  `n_out * (M + 2P + k*M)` MACs, no big intermediates. Used when the filter
  bank is small (all common rates).
- direct: each output sample gathers its `2P` neighbours. Used for awkward
  ratios (e.g. 44099 Hz) and for run-time (tensor) ratios of speed / pitch
  augmentation (`resample_by_ratio`; a Python ratio takes the polyphase path).

Output sample `n` sits at input time `n * in / out` (zero delay); samples
outside the signal are zeros, so a zero-padded batch gives each example the
same output as resampling it alone. Output length is `ceil(S * out / in)`,
as `librosa.resample`. Filter: `zero_crossings=64` sinc lobes each side,
cut-off `rolloff=0.955` of the lower Nyquist, Kaiser `beta=10`. Against
`librosa.resample(res_type="soxr_hq")` the difference is dominated by the
two filters' transition bands (see tests/audio/test_resample.py for the
measured tolerances).
"""

import fractions
import math

import numpy as np
import tensorflow as tf

from tfsent.core.control_flow import lazy_cond, lazy_switch_case

ZERO_CROSSINGS = 64
ROLLOFF = 0.955
KAISER_BETA = 10.0
# Largest polyphase filter bank (floats) before falling back to the direct path.
_MAX_BANK = 1 << 22


def resampled_length(length, in_rate, out_rate):
    """`ceil(length * out_rate / in_rate)` as int32 (tensor or Python int in, tensor out)."""
    length = tf.cast(length, tf.int64)
    in_rate = tf.cast(in_rate, tf.int64)
    out = (length * int(out_rate) + in_rate - 1) // in_rate
    return tf.cast(out, tf.int32)


def _gcd(a, b):
    a, b = tf.while_loop(lambda a, b: b > 0, lambda a, b: (b, a % b), (a, b))
    return a


def _sinc(x):
    safe = tf.where(tf.equal(x, 0.0), tf.ones_like(x), x)
    return tf.where(tf.equal(x, 0.0), tf.ones_like(x), tf.sin(math.pi * safe) / (math.pi * safe))


# The Kaiser window depends only on |t| / half_width for a fixed beta: tabulate it once
# (numpy, float64) and interpolate linearly in the graph; evaluating Bessel I0 per tap
# in TF costs ~100x more. Interpolation error < 1e-7.
_WINDOW_POINTS = 8192
_WINDOW_TABLES = {}


def _kaiser_table(beta):
    key = float(beta)
    if key not in _WINDOW_TABLES:
        x = np.linspace(0.0, 1.0, _WINDOW_POINTS + 1)
        table = np.i0(key * np.sqrt(np.maximum(1.0 - x * x, 0.0))) / np.i0(key)
        table[-1] = 0.0
        _WINDOW_TABLES[key] = np.append(table, 0.0)  # one guard entry past x == 1
    return _WINDOW_TABLES[key]


def _kernel(t, cutoff, half_width, beta):
    """Windowed-sinc value at offset `t` input samples (float64 in, float64 out)."""
    x = tf.minimum(tf.abs(t) / half_width, 1.0) * _WINDOW_POINTS
    i = tf.cast(tf.floor(x), tf.int32)
    frac = x - tf.floor(x)
    table = tf.constant(_kaiser_table(beta), tf.float64)
    win = (1.0 - frac) * tf.gather(table, i) + frac * tf.gather(table, i + 1)
    return cutoff * _sinc(cutoff * t) * win


def _filter_geometry(ratio, zero_crossings, rolloff):
    """cut-off (relative to the input Nyquist), half width and tap reach P (int32)."""
    cutoff = tf.minimum(tf.constant(1.0, tf.float64), ratio) * rolloff
    half_width = zero_crossings / cutoff
    reach = tf.cast(tf.math.ceil(half_width), tf.int32) + 1
    return cutoff, half_width, reach


def _polyphase_bank(up, down, zero_crossings, rolloff, beta):
    """Filter bank `[nb, M, L]` (float32) and the tap reach P; up=L, down=M int32 (coprime).

    Bank[jj, m, r] = h(r * M / L - (jj * M + m - P)): output phase r, input offset
    `jj * M + m - P` from the block start q * M.
    """
    ratio = tf.cast(up, tf.float64) / tf.cast(down, tf.float64)
    cutoff, half_width, reach = _filter_geometry(ratio, zero_crossings, rolloff)
    taps = down + 2 * reach
    nb = (taps + down - 1) // down
    jj = tf.cast(tf.range(nb * down) - reach, tf.float64)
    phase = tf.cast(tf.range(up), tf.float64) * tf.cast(down, tf.float64) / tf.cast(up, tf.float64)
    bank = _kernel(phase[None, :] - jj[:, None], cutoff, half_width, beta)
    return tf.reshape(tf.cast(bank, tf.float32), [nb, down, up]), reach


# Output channels per conv row the grouping aims for: with L = 1 (integer decimation,
# 48 -> 16 kHz) one block per row is a [taps, M, 1] kernel, a matrix-vector product that
# runs at a fraction of the matmul rate; 32 blocks per row make it a [taps/32, 32 M, 32]
# matmul: 4-5x faster despite the zero taps (6 x 32 block taps instead of 137). 16 is as
# fast, 8 and 64 slower (measured on AVX-512, 1 and 2 threads, batch 1 and 32).
_GROUP_CHANNELS = 32


def _grouped_filter(up, down, zero_crossings, rolloff, beta, group=None):
    """The grouped polyphase filter `[nbk, k*M, k*L]`, the tap reach P and the group size k.

    `k` consecutive blocks share one conv row: the filter `W[c, s*M + m, r*L + l] =
    bank[c*k + s - r, m, l]` (zero outside the bank) maps row `g` of k*M samples to
    the k*L outputs of blocks `g*k .. g*k + k - 1`. `group=k` forces k (1 is the plain
    polyphase conv); by default `k = max(1, 32 // L)`.
    """
    up = tf.convert_to_tensor(up, tf.int32)
    down = tf.convert_to_tensor(down, tf.int32)
    bank, reach = _polyphase_bank(up, down, zero_crossings, rolloff, beta)
    nb = tf.shape(bank)[0]
    k = tf.maximum(_GROUP_CHANNELS // up, 1) if group is None else tf.constant(int(group), tf.int32)
    nbk = (nb + 2 * k - 2) // k  # ceil((nb + k - 1) / k) taps of the grouped filter
    c = tf.range(nbk)[:, None, None]
    s = tf.range(k)[None, :, None]
    r = tf.range(k)[None, None, :]
    # Index into the bank padded with k - 1 zero blocks before and enough after.
    idx = c * k + s - r + (k - 1)
    padded = tf.pad(bank, [[k - 1, nbk * k - nb], [0, 0], [0, 0]])
    w = tf.gather(padded, idx)  # [nbk, k(s), k(r), M, L]
    w = tf.transpose(w, [0, 1, 3, 2, 4])
    return tf.reshape(w, [nbk, k * down, k * up]), reach, k


# Grouped filters of static (Python int) ratios, built once per process and embedded in graphs
# as constants: building one in the graph costs ~1 ms per call (per clip in `Dataset.map`).
_FILTERS = {}


def _static_filter(up, down, zero_crossings, rolloff, beta, group=None):
    """`_grouped_filter` for Python ints, computed eagerly once and cached: (numpy W, P, k)."""
    key = (int(up), int(down), float(zero_crossings), float(rolloff), float(beta), group)
    if key not in _FILTERS:
        with tf.init_scope():  # eager even while a tf.function / Dataset.map is being traced
            w, reach, k = _grouped_filter(int(up), int(down), zero_crossings, rolloff, beta, group)
            _FILTERS[key] = (w.numpy(), int(reach), int(k))
    return _FILTERS[key]


def _resample_polyphase(x, up, down, n_out, zero_crossings, rolloff, beta, group=None):
    """x [B, S] float32; up=L, down=M int32 scalars or Python ints (coprime).

    Blocks of M input samples give L outputs each: `y[q] = sum_j blocks[q + j] @ bank[j]`,
    computed as one VALID conv with the grouped filter (`_grouped_filter`). Python-int `up`
    and `down` use the cached filter (`_static_filter`); tensors build it in the graph.
    """
    if isinstance(up, (int, np.integer)) and isinstance(down, (int, np.integer)):
        w, reach, k = _static_filter(up, down, zero_crossings, rolloff, beta, group)
        nbk = w.shape[0]
        w = tf.constant(w)
    else:
        w, reach, k = _grouped_filter(up, down, zero_crossings, rolloff, beta, group)
        nbk = tf.shape(w)[0]
    up = tf.convert_to_tensor(up, tf.int32)
    down = tf.convert_to_tensor(down, tf.int32)
    batch = tf.shape(x)[0]
    samples = tf.shape(x)[1]
    q = (n_out + up - 1) // up  # output blocks
    rows = (q + k - 1) // k  # conv output rows
    total = (rows + nbk - 1) * k * down  # input samples the VALID conv reads
    right = total - reach - samples
    xp = tf.pad(x, [[0, 0], [reach, tf.maximum(right, 0)]])[:, :total]
    frames = tf.reshape(xp, [batch, rows + nbk - 1, k * down])
    y = tf.nn.conv1d(frames, w, stride=1, padding="VALID")  # [B, rows, k * L]
    y = tf.reshape(y, [batch, rows * k * up])
    return y[:, :n_out]


_PHASES = 1024


def _resample_direct(x, ratio, n_out, zero_crossings, rolloff, beta):
    """x [B, S] float32; ratio = out/in (float64 scalar, any positive value).

    The kernel is tabulated at `_PHASES` fractional offsets and interpolated
    linearly per output sample (error < 1e-5 of full scale).
    """
    cutoff, half_width, reach = _filter_geometry(ratio, zero_crossings, rolloff)
    offsets = tf.range(-reach + 1, reach + 1)
    grid = tf.cast(tf.range(_PHASES + 1), tf.float64) / _PHASES
    table = _kernel(grid[:, None] - tf.cast(offsets, tf.float64)[None, :], cutoff, half_width, beta)
    table = tf.cast(table, tf.float32)  # [PHASES + 1, 2P]
    t = tf.cast(tf.range(n_out), tf.float64) / ratio
    base = tf.math.floor(t)
    pos = (t - base) * _PHASES
    row = tf.cast(tf.floor(pos), tf.int32)
    w = tf.cast(pos - tf.floor(pos), tf.float32)[:, None]
    weights = (1.0 - w) * tf.gather(table, row) + w * tf.gather(table, row + 1)
    samples = tf.shape(x)[1]
    idx = tf.cast(base, tf.int32)[:, None] + offsets[None, :] + reach
    xp = tf.pad(x, [[0, 0], [reach, reach + 1]])
    idx = tf.clip_by_value(idx, 0, samples + 2 * reach)
    gathered = tf.gather(xp, idx, axis=1)  # [B, n_out, 2P]
    return tf.einsum("bnk,nk->bn", gathered, weights)


def _as_batch(waveform):
    waveform = tf.convert_to_tensor(waveform)
    if waveform.dtype != tf.float32:
        waveform = tf.cast(waveform, tf.float32)
    if waveform.shape.rank not in (1, 2):
        raise ValueError(f"waveform must be [S] or [B, S], got shape {waveform.shape}")
    unbatched = waveform.shape.rank == 1
    return (waveform[None] if unbatched else waveform), unbatched


# Recording rates whose filters `resample(..., common_rates=COMMON_RATES)` embeds as constants.
COMMON_RATES = (48000, 44100, 32000, 24000, 22050, 16000, 8000)


def resample(waveform, in_rate, out_rate, *, zero_crossings=ZERO_CROSSINGS, rolloff=ROLLOFF,
             beta=KAISER_BETA, common_rates=(), _method=None):
    """Resample `[S]` or `[B, S]` float32 from `in_rate` to `out_rate` Hz.

    Args:
        waveform: float32 `[S]` or `[B, S]` (zero padding after the real samples
            of an example does not change its output).
        in_rate: int or int scalar tensor (known only at run time is fine).
        out_rate: Python int.
        zero_crossings, rolloff, beta: filter length, cut-off (fraction of the
            lower Nyquist) and Kaiser window shape.
        common_rates: for a tensor `in_rate`, rates whose filters are built once
            (per process) and embedded in the graph as constants (up to ~1 MB each,
            e.g. 22.05 kHz); any other rate builds its filter per call (~1 ms).
            Static (Python int) rates always use the built-once filter.

    Returns:
        float32 `[ceil(S * out / in)]` or `[B, ceil(S * out / in)]`; the input
        itself when the rates are equal.

    Example:
    >>> y = resample(tf.zeros([2, 48000]), tf.constant(48000), 16000)
    >>> y.shape
    TensorShape([2, 16000])
    """
    out_rate = int(out_rate)
    if out_rate <= 0:
        raise ValueError(f"out_rate must be a positive integer, got {out_rate}")
    if isinstance(in_rate, (int, float)) and int(in_rate) <= 0:
        raise ValueError(f"in_rate must be a positive integer, got {in_rate}")
    x, unbatched = _as_batch(waveform)
    if isinstance(in_rate, (int, np.integer)):
        # Static rates: choose the path (and the gcd) in Python.
        in_rate = int(in_rate)
        if in_rate == out_rate:
            return x[0] if unbatched else x
        g = math.gcd(in_rate, out_rate)
        up, down = out_rate // g, in_rate // g
        n_out = resampled_length(tf.shape(x)[1], in_rate, out_rate)
        bank = (2 * down + 2 * zero_crossings * max(down // up, 1) + 2) * up
        method = _method or ("polyphase" if bank <= _MAX_BANK else "direct")
        if method == "polyphase":
            y = _resample_polyphase(x, up, down, n_out, zero_crossings, rolloff, beta)
        else:
            ratio = tf.constant(out_rate / in_rate, tf.float64)
            y = _resample_direct(x, ratio, n_out, zero_crossings, rolloff, beta)
        return y[0] if unbatched else y
    in_rate = tf.cast(in_rate, tf.int32)
    checks = [tf.debugging.assert_positive(in_rate, message="resample: in_rate must be > 0")]
    with tf.control_dependencies(checks):
        in_rate = tf.identity(in_rate)

    def general():
        # Inside the branch: the gcd loop and the geometry cost ~0.5 ms, which common rates skip.
        n_out = resampled_length(tf.shape(x)[1], in_rate, out_rate)
        g = _gcd(in_rate, tf.constant(out_rate, tf.int32))
        up, down = out_rate // g, in_rate // g
        ratio = tf.cast(out_rate, tf.float64) / tf.cast(in_rate, tf.float64)

        def poly():
            return _resample_polyphase(x, up, down, n_out, zero_crossings, rolloff, beta)

        def direct():
            return _resample_direct(x, ratio, n_out, zero_crossings, rolloff, beta)

        if _method == "polyphase":
            return poly()
        if _method == "direct":
            return direct()
        # Bank floats ~ (M + 2P + M) * L; beyond a few million use the direct path.
        cost = tf.cast(2 * down + 2 * zero_crossings * tf.maximum(down // up, 1) + 2, tf.int64)
        small = cost * tf.cast(up, tf.int64) <= _MAX_BANK
        return tf.cond(small, poly, direct)

    known = [int(r) for r in dict.fromkeys(common_rates) if int(r) != out_rate] if _method is None else []
    if not known:
        y = lazy_cond(tf.equal(in_rate, out_rate), lambda: tf.identity(x), general)
        return y[0] if unbatched else y
    # One branch per common rate (its filter a constant), then identity, then the general path.
    branches = [lambda r=r: resample(x, r, out_rate, zero_crossings=zero_crossings, rolloff=rolloff, beta=beta)
                for r in known]
    branches += [lambda: tf.identity(x), general]
    rates = tf.constant(known + [out_rate], tf.int32)
    hits = tf.cast(tf.where(tf.equal(rates, in_rate))[:, 0], tf.int32)
    index = tf.reduce_min(tf.concat([hits, [len(known) + 1]], 0))
    y = lazy_switch_case(index, branches)
    return y[0] if unbatched else y


def resample_by_ratio(waveform, ratio, *, zero_crossings=16, rolloff=ROLLOFF, beta=8.0,
                      max_denominator=256):
    """Resample by a factor `ratio = out/in` (speed / pitch augmentation).

    A Python number is approximated by the nearest fraction `p/q` with
    `q <= max_denominator` (relative error < 1/q^2, e.g. < 0.0003 semitone
    for a pitch shift) and takes the cheap polyphase path; a tensor ratio (drawn
    at run time) takes the direct path. Shorter filter by default (16 zero
    crossings, Kaiser beta 8): it runs per training example.
    Output length `ceil(S * ratio)`.
    """
    if isinstance(ratio, (int, float)):
        if ratio <= 0:
            raise ValueError(f"ratio must be > 0, got {ratio}")
        frac = fractions.Fraction(ratio).limit_denominator(max_denominator)
        return resample(waveform, frac.denominator, frac.numerator,
                        zero_crossings=zero_crossings, rolloff=rolloff, beta=beta)
    x, unbatched = _as_batch(waveform)
    ratio = tf.cast(ratio, tf.float64)
    n_out = tf.cast(tf.math.ceil(tf.cast(tf.shape(x)[1], tf.float64) * ratio - 1e-9), tf.int32)
    y = _resample_direct(x, ratio, n_out, zero_crossings, rolloff, beta)
    return y[0] if unbatched else y
