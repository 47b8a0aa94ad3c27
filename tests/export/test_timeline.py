"""Emotion timelines of a long recording: `bin/predict --timeline` and the `timeline` signature.

The recording: ~60 s of demo-corpus utterances (a 16-utterance demo corpus) with 1-2.5 s pauses of faint hiss
between them, so the true speech positions are known. Models: the tiny untrained exports of
tests/export/conftest.py (window 1 s, hop 0.5 s); their random weights give window-dependent
probabilities, which is what the comparisons below need.
"""
import glob
import io
import json
import os

import numpy as np
import pytest
import soundfile

from tests.conftest import run_cli
from tfsent.core.errors import UsageError
from tfsent.corpus.encoding import read_text_file
from tfsent.export.timeline import TimelineModel, summarize, timeline, to_csv

SR = 16000


def _cover(intervals, spans):
    """Share of the time in `spans` that `intervals` cover (intervals may overlap: merged first)."""
    merged = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    total = sum(e - s for s, e in spans)
    return sum(max(0.0, min(b, e) - max(a, s)) for s, e in spans for a, b in merged) / total


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """(path, audio, utterances [(start s, end s, text)], pauses [(start s, end s)]) of a ~60 s WAV."""
    from tfsent.corpus.demo_corpus import make_demo_corpus

    corpus = tmp_path_factory.mktemp("timeline_corpus") / "demo"
    make_demo_corpus(str(corpus), "kemdy20", seed=3, per_class=4, workers=2)
    rng = np.random.default_rng(0)
    wavs = sorted(glob.glob(os.path.join(str(corpus), "wav", "*", "*.wav")))
    parts, utterances, t = [], [], 0
    for path in wavs:
        if t > 57 * SR:
            break
        pause = (1e-3 * rng.standard_normal(int(rng.uniform(1.0, 2.5) * SR))).astype(np.float32)
        speech, rate = soundfile.read(path, dtype="float32")
        assert rate == SR
        parts += [pause, speech]
        text = read_text_file(os.path.splitext(path)[0] + ".txt")[0].strip()
        utterances.append(((t + pause.size) / SR, (t + pause.size + speech.size) / SR, text))
        t += pause.size + speech.size
    parts.append((1e-3 * rng.standard_normal(SR)).astype(np.float32))
    audio = np.concatenate(parts)
    assert 55 < audio.size / SR < 65
    pauses = [(0.0, utterances[0][0])] + [(a[1], b[0]) for a, b in zip(utterances, utterances[1:])] + \
        [(utterances[-1][1], audio.size / SR)]
    path = str(tmp_path_factory.mktemp("timeline") / "long.wav")
    soundfile.write(path, audio, SR, subtype="PCM_16")
    audio, _ = soundfile.read(path, dtype="float32")  # what the file really holds (PCM16)
    return path, audio, utterances, pauses


@pytest.fixture(scope="module")
def cli_result(exports, recording, tmp_path_factory):
    """`bin/predict --timeline --plot` on the recording with the audio-only model: (JSON, PNG path)."""
    png = str(tmp_path_factory.mktemp("plot") / "long.png")
    proc = run_cli("predict", f"--model={exports['conv1d_mel']}", f"--wav={recording[0]}", "--timeline",
                   f"--plot={png}")
    return json.loads(proc.stdout), png


@pytest.fixture(scope="module")
def fusion(exports):
    return TimelineModel(exports["demo_fusion"])


@pytest.fixture(scope="module")
def conv1d(exports):
    """The audio-only export, loaded as a TF Serving client would (its signatures)."""
    import tensorflow as tf

    return tf.saved_model.load(exports["conv1d_mel"])


def test_speech_segments_line_up_with_the_utterances(cli_result, recording):
    result, png = cli_result
    _, audio, utterances, pauses = recording
    spans = [(a, b) for a, b, _ in utterances]
    segments = result["segments"]
    assert result["duration"] == pytest.approx(audio.size / SR, abs=1e-6)
    assert result["window_seconds"] == 1.0 and result["hop_seconds"] == 0.5  # the export's defaults
    assert all(s["end"] - s["start"] == pytest.approx(1.0, abs=1e-5) for s in segments)
    assert segments[-1]["end"] == pytest.approx(result["duration"], abs=1e-5)  # the tail window
    # >= 90 % of the speech time is inside speech segments and inside the VAD's speech regions.
    assert _cover([(s["start"], s["end"]) for s in segments if s["speech"]], spans) >= 0.9
    assert _cover(result["speech_regions"], spans) >= 0.9
    # Pauses are non-speech: no region reaches into a pause beyond the hangover, and every window
    # lying inside a pause is marked non-speech.
    inner = [(a + 0.2, b - 0.2) for a, b in pauses if b - a > 0.4]
    assert _cover(result["speech_regions"], inner) == 0.0
    in_pause = [s for s in segments if any(a <= s["start"] and s["end"] <= b for a, b in pauses)]
    assert len(in_pause) >= 10 and not any(s["speech"] for s in in_pause)
    assert result["speech_seconds"] == pytest.approx(sum(s["speech_seconds"] for s in segments), abs=1e-4)
    assert result["speech_seconds"] == pytest.approx(sum(b - a for a, b in spans), rel=0.15)
    assert sum(result["summary"].values()) == pytest.approx(1.0, abs=1e-5)
    assert set(result["summary"]) == set(segments[0]["probabilities"])
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_signature_gives_the_cli_timeline(cli_result, conv1d, recording):
    import tensorflow as tf

    result = cli_result[0]
    out = conv1d.signatures["timeline_wav"](wav=tf.io.read_file(recording[0]))
    segments = result["segments"]
    assert len(segments) == out["start"].shape[0]
    for key in ("start", "end", "speech_seconds"):
        np.testing.assert_allclose([s[key] for s in segments], out[key].numpy(), atol=1e-5)
    assert [s["speech"] for s in segments] == out["speech"].numpy().tolist()
    assert [s["label"] for s in segments] == [x.decode() for x in out["label"].numpy()]
    classes = [c.decode() for c in out["classes"].numpy()]
    probabilities = np.array([[s["probabilities"][c] for c in classes] for s in segments])
    np.testing.assert_allclose(probabilities, out["probabilities"].numpy(), atol=1e-5)
    assert out["logits"].shape == out["probabilities"].shape
    np.testing.assert_allclose(result["speech_regions"], out["speech_regions"].numpy(), atol=1e-5)
    assert result["duration"] == pytest.approx(float(out["duration"]), abs=1e-5)
    assert probabilities.std(axis=0).max() > 1e-3  # windows differ: a misplaced window would show
    # The raw-waveform signature is the same graph.
    raw = conv1d.signatures["timeline"](audio=tf.constant(recording[1]))
    np.testing.assert_allclose(raw["probabilities"].numpy(), out["probabilities"].numpy(), atol=1e-6)


def test_windows_inside_utterances_score_as_that_clip(cli_result, conv1d, recording):
    """A timeline window is scored as the same stretch of audio sent alone (predict_wav); a window
    off by a quarter second would not be."""
    import tensorflow as tf

    _, audio, utterances, _ = recording
    segments = cli_result[0]["segments"]
    inside = [s for s in segments if any(a <= s["start"] and s["end"] <= b for a, b, _ in utterances)]
    assert len(inside) >= 8
    clips = [_float_wav(audio[round(s["start"] * SR): round(s["start"] * SR) + SR]) for s in inside]
    shifted = [_float_wav(audio[round(s["start"] * SR) + SR // 4: round(s["start"] * SR) + SR // 4 + SR])
               for s in inside]
    fn = conv1d.signatures["predict_wav"]
    alone = fn(wav=tf.constant(clips))
    classes = [c.decode() for c in alone["classes"].numpy()[0]]
    timeline_probs = np.array([[s["probabilities"][c] for c in classes] for s in inside])
    np.testing.assert_allclose(timeline_probs, alone["probabilities"].numpy(), atol=1e-5)
    assert [s["label"] for s in inside] == [x.decode() for x in alone["label"].numpy()]
    off = fn(wav=tf.constant(shifted))["probabilities"].numpy()
    assert np.abs(off - timeline_probs).max() > 1e-4


def _float_wav(samples):
    """32-bit float WAV bytes: the exact samples (PCM16 would round them again)."""
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, SR, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def _srt(utterances, path):
    def stamp(t):
        ms = int(round(t * 1000))
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    with open(path, "w", encoding="utf-8") as f:
        for i, (a, b, text) in enumerate(utterances, 1):
            f.write(f"{i}\n{stamp(a)} --> {stamp(b)}\n{text}\n\n")
    return path


def test_transcript_gives_each_window_its_text(fusion, exports, recording, tmp_path):
    import tensorflow as tf

    path, audio, utterances, _ = recording
    srt = _srt(utterances, str(tmp_path / "long.srt"))
    with_text = timeline(fusion, path, window_seconds=2.0, hop_seconds=1.0, transcript=srt)
    plain = timeline(fusion, path, window_seconds=2.0, hop_seconds=1.0)
    segments = with_text["segments"]
    assert all(s["end"] - s["start"] == pytest.approx(2.0, abs=1e-5) for s in segments)
    for s in segments:
        expected = " ".join(t for a, b, t in utterances if a < s["end"] and b > s["start"])
        assert s["text"] == expected
    texted = [i for i, s in enumerate(segments) if s["text"]]
    assert 10 <= len(texted) < len(segments)
    # Window + its text through serving_default directly gives the same probabilities ...
    loaded = tf.saved_model.load(exports["demo_fusion"])
    picks = texted[:5]
    windows = np.stack([audio[round(segments[i]["start"] * SR): round(segments[i]["start"] * SR) + 2 * SR]
                        for i in picks])
    direct = loaded.signatures["serving_default"](
        audio=tf.constant(windows), audio_length=tf.fill([len(picks)], 2 * SR),
        text=tf.constant([segments[i]["text"] for i in picks]))
    classes = [c.decode() for c in direct["classes"].numpy()[0]]
    got = np.array([[segments[i]["probabilities"][c] for c in classes] for i in picks])
    np.testing.assert_allclose(got, direct["probabilities"].numpy(), atol=1e-5)
    # ... and the text changes them (it is really fed), where windows without text do not change.
    plain_probs = np.array([[plain["segments"][i]["probabilities"][c] for c in classes] for i in picks])
    assert np.abs(plain_probs - got).max() > 1e-4
    silent = [i for i, s in enumerate(segments) if not s["text"]]
    for i in silent:
        for c in classes:
            assert plain["segments"][i]["probabilities"][c] == pytest.approx(segments[i]["probabilities"][c],
                                                                            abs=1e-5)
    assert "text" not in plain["segments"][0]


def test_regressor_timeline_and_csv(exports, recording):
    model = TimelineModel(exports["arousal_regressor"])
    result = timeline(model, recording[0], window_seconds=3.0, hop_seconds=3.0)
    segments = result["segments"]
    assert "arousal" in segments[0] and "label" not in segments[0]
    weighted = sum(s["arousal"] * s["speech_seconds"] for s in segments) / result["speech_seconds"]
    assert result["summary"]["arousal"] == pytest.approx(weighted, abs=1e-5)
    assert summarize(segments) == result["summary"]
    lines = to_csv(result).splitlines()
    assert lines[0] == "start,end,speech,speech_seconds,arousal" and len(lines) == len(segments) + 1
    assert lines[1].startswith("0.0,3.0,")


@pytest.mark.parametrize("kwargs,transcript,message", [
    ({"window_seconds": 90.0}, None, "--window_seconds=90 is longer than the recording"),
    ({"window_seconds": 2.0, "hop_seconds": 0.0}, None, "--hop_seconds must be in (0, window_seconds=2]; got 0"),
    ({"window_seconds": 2.0, "hop_seconds": 3.0}, None, "--hop_seconds must be in (0, window_seconds=2]; got 3"),
    ({}, ("late.srt", "1\n00:00:50,000 --> 00:01:30,000\n네\n"), "1 cue(s) end after the audio"),
    ({}, ("cues.txt", "00:00:01 네\n"), "unknown transcript format '.txt'"),
    ({}, ("bad.vtt", "WEBVTT\n\n00:01.000 --> 00:02\n네\n"), "bad.vtt:3: malformed cue timing"),
    ({"vad_kind": "silero"}, None, "--vad must be one of tf, webrtcvad"),
])
def test_bad_input_is_one_line_usage_error(fusion, recording, tmp_path, kwargs, transcript, message):
    path = None
    if transcript:
        path = str(tmp_path / transcript[0])
        with open(path, "w", encoding="utf-8") as f:
            f.write(transcript[1])
    with pytest.raises(UsageError) as raised:
        timeline(fusion, recording[0], transcript=path, **kwargs)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_cli_errors_exit_2_with_one_line(exports, recording, tmp_path):
    short = str(tmp_path / "short.wav")
    soundfile.write(short, recording[1][: SR // 2], SR, subtype="PCM_16")
    proc = run_cli("predict", f"--model={exports['conv1d_mel']}", f"--wav={short}", "--timeline", check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("bin/predict: error: --window_seconds=1 is longer than "
                                                             "the recording (0.500 s)")


def test_signature_rejects_a_recording_shorter_than_the_window(conv1d):
    import tensorflow as tf

    with pytest.raises(tf.errors.InvalidArgumentError, match="shorter than the timeline window"):
        conv1d.signatures["timeline"](audio=tf.zeros([SR // 2]))


def test_webrtc_vad_finds_the_same_speech(fusion, recording):
    pytest.importorskip("webrtcvad")
    _, _, utterances, pauses = recording
    result = timeline(fusion, recording[0], vad_kind="webrtcvad")
    assert result["vad"] == "webrtcvad"
    assert _cover(result["speech_regions"], [(a, b) for a, b, _ in utterances]) >= 0.9
    assert _cover(result["speech_regions"], [(a + 0.3, b - 0.3) for a, b in pauses if b - a > 0.6]) < 0.05


def test_other_rates_stream_through_the_resampler(exports, conv1d, recording, tmp_path):
    """A 48 kHz stereo file: the CLI resamples block by block, the signature the whole file."""
    import tensorflow as tf

    from tfsent.audio.resample import resample

    clip = resample(recording[1][: 12 * SR], SR, 48000).numpy()
    path = str(tmp_path / "stereo48k.wav")
    soundfile.write(path, np.stack([clip, 0.5 * clip], axis=1), 48000, subtype="FLOAT")
    result = timeline(TimelineModel(exports["conv1d_mel"]), path)
    out = conv1d.signatures["timeline_wav"](wav=tf.io.read_file(path))
    classes = [c.decode() for c in out["classes"].numpy()]
    got = np.array([[s["probabilities"][c] for c in classes] for s in result["segments"]])
    np.testing.assert_allclose(got, out["probabilities"].numpy(), atol=1e-4)
    assert [s["speech"] for s in result["segments"]] == out["speech"].numpy().tolist()
    assert result["duration"] == pytest.approx(12.0, abs=1e-6)
