"""Waveform corruptions, each alone: SNR, telephone band, RT60 of simulated rooms, level, packet loss;
determinism and eager == Dataset.map."""
import numpy as np
import pytest
import tensorflow as tf

from tfsent.audio import corrupt

SR = 16000


def _speechlike(seconds=2.0, f0=140.0, seed=0):
    """Harmonics of f0 up to 7.5 kHz with a syllable-rate envelope, plus a little broadband noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * seconds)) / SR
    x = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6.28)) / k for k in range(1, int(7500 // f0)))
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 4.0 * t)) + 0.01 * rng.standard_normal(len(t))
    return (0.3 * x / np.max(np.abs(x))).astype(np.float32)


def _snr_db(clean, mixed):
    return 10 * np.log10(np.mean(clean**2) / np.mean((mixed - clean) ** 2))


@pytest.mark.parametrize("snr", [20.0, 10.0, 0.0])
def test_white_noise_snr(snr):
    x = _speechlike()
    y = corrupt.white_noise(tf.constant(x), tf.constant([3, 9]), snr).numpy()
    assert y.shape == x.shape
    assert _snr_db(x, y) == pytest.approx(snr, abs=0.5)


@pytest.mark.parametrize("snr", [20.0, 10.0, 0.0])
def test_babble_snr(snr):
    clips = [_speechlike(1.0 + 0.2 * k, f0=100 + 30 * k, seed=k) for k in range(6)]
    bank = corrupt.babble_bank(clips, seed=1, count=3, voices=4, length=SR)
    assert bank.shape == (3, SR) and np.all(np.std(bank, axis=1) > 0)
    x = _speechlike(2.5)  # longer than the bank's clips: the babble repeats
    y = corrupt.babble(tf.constant(x), tf.constant([1, 2]), bank, snr).numpy()
    assert _snr_db(x, y) == pytest.approx(snr, abs=0.5)


def test_babble_bank_needs_enough_voices():
    with pytest.raises(ValueError, match="at least 4"):
        corrupt.babble_bank([_speechlike(0.5)] * 3, seed=0, voices=4)


def test_telephone_has_no_energy_above_4khz():
    rng = np.random.default_rng(0)
    x = (_speechlike() + 0.05 * rng.standard_normal(2 * SR)).astype(np.float32)  # energy up to 8 kHz
    y = corrupt.telephone(tf.constant(x), SR).numpy()
    assert y.shape == x.shape
    spec_x, spec_y = np.abs(np.fft.rfft(x)) ** 2, np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    above = 10 * np.log10(spec_y[freqs > 4000].sum() / spec_y.sum())
    assert above < -40.0, above
    assert 10 * np.log10(spec_x[freqs > 4000].sum() / spec_x.sum()) > -20.0  # the input had plenty there
    # The band itself survives: 500-3000 Hz of the output follows the input closely.
    band = (freqs > 500) & (freqs < 3000)
    assert np.corrcoef(spec_x[band], spec_y[band])[0, 1] > 0.9


def test_mu_law_round_trip_is_8_bit():
    x = tf.linspace(-1.0, 1.0, 20001)
    y = corrupt.mu_law_round_trip(x).numpy()
    assert len(np.unique(np.round(y, 6))) <= 256
    assert np.max(np.abs(y - x.numpy())) < 0.05 and np.max(np.abs(y - x.numpy())) > 0


@pytest.mark.parametrize("rt60", [0.3, 0.8])
def test_impulse_responses_have_the_requested_rt60(rt60):
    irs = corrupt.room_impulse_responses(rt60, count=1, seed=4)
    assert irs.dtype == np.float32 and irs.shape[0] == 1
    h = irs[0]
    assert np.sum(h**2) == pytest.approx(1.0, rel=1e-4)
    assert corrupt.rt60_schroeder(h, SR) == pytest.approx(rt60, rel=0.2)
    assert np.argmax(np.abs(h)) < 0.01 * SR  # the direct path comes first (no long silent lead)


def test_rt60_schroeder_of_an_exponential_decay():
    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    h = rng.standard_normal(SR) * 10 ** (-3 * t / 0.5)  # 60 dB of energy decay in 0.5 s
    assert corrupt.rt60_schroeder(h, SR) == pytest.approx(0.5, rel=0.05)


def test_reverb_convolves_and_keeps_the_length():
    x = np.zeros(SR, np.float32)
    x[100] = 1.0
    irs = np.zeros((2, 50), np.float32)
    irs[0, [0, 10]] = [1.0, 0.5]
    irs[1, [0, 20]] = [1.0, -0.5]
    ys = [corrupt.reverb(tf.constant(x), tf.constant([s, 0]), irs).numpy() for s in range(8)]
    assert all(y.shape == x.shape for y in ys)
    seen = {(round(float(y[110]), 3), round(float(y[120]), 3)) for y in ys}
    assert seen == {(0.5, 0.0), (0.0, -0.5)}  # both responses drawn, each an exact convolution


def test_gain_clipping_packet_loss():
    x = _speechlike()
    assert corrupt.gain(tf.constant(x), -20.0).numpy() == pytest.approx(x * 0.1, rel=1e-5)
    clipped = corrupt.clipping(tf.constant(x), -12.0).numpy()
    assert np.max(np.abs(clipped)) == pytest.approx(np.max(np.abs(x)) * 10 ** (-12 / 20), rel=1e-5)
    lost = corrupt.packet_loss(tf.constant(x), tf.constant([5, 5]), rate=0.3, sample_rate=SR).numpy()
    packets = lost[: len(x) // 320 * 320].reshape(-1, 320)
    dropped = np.all(packets == 0, axis=1)
    assert 0.15 < dropped.mean() < 0.45
    kept = packets[~dropped]
    assert np.array_equal(kept, x[: len(x) // 320 * 320].reshape(-1, 320)[~dropped])


def test_same_seed_same_output_in_dataset_map():
    x = _speechlike(1.0)
    bank = corrupt.babble_bank([_speechlike(0.7, seed=k) for k in range(5)], seed=0, count=2, length=8000)

    def chain(wave, seed):
        wave = corrupt.white_noise(wave, seed, 10.0)
        wave = corrupt.babble(wave, seed + 1, bank, 5.0)
        return corrupt.packet_loss(corrupt.telephone(wave, SR), seed + 2, 0.2, SR)

    seeds = tf.constant([[1, 2], [1, 2], [3, 4]])
    ds = tf.data.Dataset.from_tensor_slices(seeds).map(lambda s: chain(tf.constant(x), s))
    graph = [y.numpy() for y in ds]
    eager = chain(tf.constant(x), seeds[0]).numpy()
    np.testing.assert_allclose(graph[0], eager, atol=1e-5)
    assert np.array_equal(graph[0], graph[1]) and not np.allclose(graph[0], graph[2])
