"""The energy VAD (tfsent.audio.vad) eagerly and in tf.data, and block-wise reading (tfsent.audio.stream)."""
import numpy as np
import pytest
import soundfile
import tensorflow as tf

from tfsent.audio import vad
from tfsent.audio.resample import resample
from tfsent.audio.stream import AudioStream

SR = 16000


def _speechlike(seconds, rng, level=0.2):
    """Noise shaped by a 4 Hz syllable envelope that never falls silent for long (voiced-speech-like)."""
    t = np.arange(int(seconds * SR)) / SR
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6))
    return (level * envelope * rng.standard_normal(t.size)).astype(np.float32)


def _recording(layout, rng, hiss=1e-3):
    """Concatenates ("speech"|"pause", seconds) parts over a hiss floor; returns (audio, speech spans)."""
    parts, spans, t = [], [], 0.0
    for kind, seconds in layout:
        part = _speechlike(seconds, rng) if kind == "speech" else np.zeros(int(seconds * SR), np.float32)
        if kind == "speech":
            spans.append((t, t + seconds))
        parts.append(part)
        t += seconds
    audio = np.concatenate(parts)
    return audio + (hiss * rng.standard_normal(audio.size)).astype(np.float32), spans


def _regions(audio, config=vad.DEFAULT):
    mask = vad.detect_speech(audio, config)
    return vad.speech_regions(mask, audio.size, config).numpy()


def test_regions_follow_speech_and_pauses():
    rng = np.random.default_rng(0)
    audio, spans = _recording([("pause", 1.0), ("speech", 2.0), ("pause", 1.5), ("speech", 1.2), ("pause", 1.0)],
                              rng)
    regions = _regions(audio)
    assert len(regions) == len(spans)
    for (start, end), (true_start, true_end) in zip(regions, spans):
        # The hangover (0.1 s) widens each run; nothing else may move the edges much.
        assert abs(start - (true_start - 0.1)) <= 0.05 and abs(end - (true_end + 0.1)) <= 0.05


def test_short_pauses_are_filled_and_blips_dropped():
    rng = np.random.default_rng(1)
    audio, _ = _recording([("pause", 1.0), ("speech", 1.0), ("pause", 0.15), ("speech", 1.0), ("pause", 1.0),
                           ("speech", 0.04), ("pause", 1.0)], rng)
    regions = _regions(audio)
    assert len(regions) == 1  # the 0.15 s pause is filled, the 40 ms click is dropped
    assert regions[0][0] == pytest.approx(0.9, abs=0.05) and regions[0][1] == pytest.approx(3.25, abs=0.05)
    # With the filters off, both show up.
    raw = vad.VadConfig(min_pause_seconds=0.0, min_speech_seconds=0.0, hangover_seconds=0.0)
    assert len(_regions(audio, raw)) == 3


def test_threshold_follows_the_noise_floor_but_not_below_the_minimum():
    rng = np.random.default_rng(2)
    noisy, spans = _recording([("pause", 1.0), ("speech", 1.0), ("pause", 1.0)], rng, hiss=0.02)
    regions = _regions(noisy)  # -34 dBFS hiss: the floor rises, speech still stands out
    assert len(regions) == 1 and abs(regions[0][0] - 0.9) < 0.1
    threshold = vad.noise_floor_threshold(vad.frame_energies_db(noisy)).numpy()
    assert -30 < threshold < -20
    faint = (1e-4 * rng.standard_normal(3 * SR)).astype(np.float32)  # -80 dBFS hiss alone: no speech
    faint[SR:2 * SR] = 0  # a second of digital silence pulls the percentile floor to -100 dBFS
    assert not vad.detect_speech(faint).numpy().any()
    unguarded = vad.VadConfig(min_threshold_db=-200.0)  # without the minimum, the hiss would be "speech"
    assert vad.detect_speech(faint, unguarded).numpy().mean() > 0.5


def test_blockwise_energies_equal_whole_recording():
    rng = np.random.default_rng(3)
    audio, _ = _recording([("speech", 1.3), ("pause", 0.77), ("speech", 0.91)], rng)
    config = vad.DEFAULT
    whole = vad.frame_energies_db(audio, config=config).numpy()
    block = 4000  # a multiple of the frame hop (160)
    parts = []
    for begin in range(0, audio.size, block):
        chunk = audio[begin:begin + block + config.frame_length - config.frame_hop]
        parts.append(vad.frame_energies_db(chunk, audio.size - begin, config, frames=block // config.frame_hop))
    blocks = np.concatenate([p.numpy() for p in parts])
    assert blocks.shape == whole.shape == (int(np.ceil(audio.size / 160)),)
    np.testing.assert_allclose(blocks, whole, atol=1e-4)


def test_in_tf_data_and_tf_function_same_as_eager():
    rng = np.random.default_rng(4)
    clips = [_recording([("pause", 0.5), ("speech", s), ("pause", 0.6)], rng)[0] for s in (0.8, 1.4)]
    eager = [vad.detect_speech(c).numpy() for c in clips]
    ds = tf.data.Dataset.from_generator(lambda: iter(clips), output_signature=tf.TensorSpec([None], tf.float32))
    mapped = [m.numpy() for m in ds.map(lambda x: vad.detect_speech(x))]
    assert all(np.array_equal(a, b) for a, b in zip(eager, mapped))
    graph = tf.function(vad.detect_speech, input_signature=[tf.TensorSpec([None], tf.float32)])
    assert np.array_equal(graph(clips[1]).numpy(), eager[1]) and eager[1].any() and not eager[1].all()


def test_window_speech_owns_every_speech_sample_once():
    rng = np.random.default_rng(5)
    audio, _ = _recording([("pause", 0.7), ("speech", 1.6), ("pause", 1.1), ("speech", 0.9)], rng)
    mask = vad.detect_speech(audio)
    window, hop = SR, SR // 2
    starts = np.array(list(range(0, audio.size - window + 1, hop)) + [audio.size - window])
    speech, owned = vad.window_speech(mask, starts, window, audio.size)
    total = vad.speech_regions(mask, audio.size).numpy()
    assert owned.numpy().sum() == pytest.approx(float(np.sum(total[:, 1] - total[:, 0])), abs=1e-4)
    assert speech.numpy()[0] == False and speech.numpy().any()  # noqa: E712


@pytest.mark.parametrize("rate", [16000, 48000, 44100])
def test_stream_blocks_equal_whole_file(tmp_path, rate):
    rng = np.random.default_rng(6)
    x = (0.3 * rng.standard_normal((int(2.3 * rate), 2))).astype(np.float32)
    path = str(tmp_path / "x.wav")
    soundfile.write(path, x, rate, subtype="PCM_16")
    pcm, _ = soundfile.read(path, dtype="float32", always_2d=True)
    mono = pcm.mean(axis=1)
    whole = mono if rate == SR else resample(mono, rate, SR).numpy()
    with AudioStream(path, SR) as stream:
        assert stream.num_samples == whole.size
        for start, stop in [(0, 5000), (12345, 20000), (whole.size - 3000, whole.size + 500)]:
            block = stream.read(start, stop)
            expected = np.zeros(stop - start, np.float32)
            expected[: min(stop, whole.size) - start] = whole[start:stop]
            np.testing.assert_allclose(block, expected, atol=2e-5)
