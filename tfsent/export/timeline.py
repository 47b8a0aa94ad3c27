"""Emotion timelines of long recordings with an exported model (the library behind `bin/predict --timeline`).

`timeline(model, path)` streams an audio file through windows and returns

```
{"duration": s, "window_seconds": w, "hop_seconds": h, "vad": "tf", "speech_seconds": s,
 "speech_regions": [[start, end], ...],
 "segments": [{"start", "end", "speech", "speech_seconds", "label", "probabilities", "text"?}, ...],
 "summary": {class: share of speech time, ...}}
```

Memory is flat in the recording's length: the file is read in blocks (`tfsent.audio.stream`), first
for the VAD's frame energies (a few floats per 10 ms; the noise floor is the whole recording's),
then `timeline_signature.BATCH` windows at a time for the model, through the exported
`serving_default` signature (one row per window, so a row is scored exactly as the `timeline`
signature scores that window). The windows, the VAD and the per-window speech time are those of
the `timeline` signature (`tfsent.export.timeline_signature`, `tfsent.audio.vad`); without a
transcript the numbers equal that signature's. With a transcript, each window's text is the text of
the cues overlapping it (`tfsent.corpus.transcripts`), fed with the audio window to a multimodal model.

`summary`: each speech sample counts for the label of the window whose centre is nearest; the
share of speech time per label (all 0 when nothing is speech). Regressors get the speech-time
weighted mean of `valence` / `arousal` instead.

Example:

```python
model = TimelineModel("exports/demo_fusion/1")
result = timeline(model, "call.wav", window_seconds=3.0, hop_seconds=1.0, transcript="call.srt")
result["segments"][0]["label"], result["summary"]
```
"""

from __future__ import annotations

import csv
import io
import json
import os

import numpy as np

from tfsent.audio import vad
from tfsent.core.errors import UsageError
from tfsent.corpus.transcripts import check_within, read_transcript, text_between
from tfsent.export.timeline_signature import BATCH, window_starts_np

VAD_BLOCK_SECONDS = 60.0
VADS = ("tf", "webrtcvad")
_DIGITS = 6


class TimelineModel:
    """An exported audio model's `serving_default` signature and its scoring window (from the model card).

    Args:
        path: a SavedModel version dir (EXPORTS/<name>/<version>).

    Example:

    ```python
    model = TimelineModel("exports/conv1d_mel/1")
    model.sample_rate, model.window_seconds, model.hop_seconds
    ```
    """

    def __init__(self, path):
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise UsageError(f"--model={path} is not a SavedModel version dir (no saved_model.pb)")
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers the tokenizer ops the graph uses)

        self._tf = tf
        loaded = tf.saved_model.load(path)
        if "predict_wav" not in loaded.signatures:
            raise UsageError(f"--model={path}: a timeline needs a model that takes audio; this one takes text only")
        self._loaded = loaded
        self._fn = loaded.signatures["serving_default"]
        self.takes_text = "text" in self._fn.structured_input_signature[1]
        card_path = os.path.join(path, "assets.extra", "model_card.json")
        card = {}
        if os.path.isfile(card_path):
            with open(card_path, encoding="utf-8") as f:
                card = json.load(f)
        inputs = card.get("inputs", {})
        self.sample_rate = int(inputs.get("sample_rate", 16000))
        self.window_seconds = inputs.get("scoring_window_seconds")
        self.hop_seconds = inputs.get("scoring_hop_seconds")

    def __call__(self, windows, texts=None):
        """Outputs of `serving_default` for `windows` `[B, window]` (numpy; strings decoded)."""
        tf = self._tf
        kwargs = {"audio": tf.constant(windows, tf.float32),
                  "audio_length": tf.fill([len(windows)], tf.constant(windows.shape[1], tf.int32))}
        if self.takes_text:
            kwargs["text"] = tf.constant(texts if texts is not None else [""] * len(windows))
        out = {k: v.numpy() for k, v in self._fn(**kwargs).items()}
        for key in ("label", "classes", "modalities"):
            if key in out:
                out[key] = np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(out[key])
        return out


def check_geometry(window_seconds, hop_seconds, duration, sample_rate):
    """(window, hop) in samples; `UsageError` for a hop <= 0 or > window, or a window past the file."""
    if window_seconds is None or hop_seconds is None:
        raise UsageError("this export has no model card with its scoring window: give --window_seconds and "
                         "--hop_seconds")
    if not window_seconds > 0:
        raise UsageError(f"--window_seconds must be > 0; got {window_seconds:g}")
    if not 0 < hop_seconds <= window_seconds:
        raise UsageError(f"--hop_seconds must be in (0, window_seconds={window_seconds:g}]; got {hop_seconds:g}")
    if window_seconds > duration:
        raise UsageError(f"--window_seconds={window_seconds:g} is longer than the recording ({duration:.3f} s); "
                         f"use a window of at most {duration:.3f} s")
    return int(round(window_seconds * sample_rate)), int(round(hop_seconds * sample_rate))


def _open_audio(path, sample_rate):
    from tfsent.audio.stream import AudioStream
    from tfsent.corpus.audio_check import check_audio

    if not os.path.isfile(path):
        raise UsageError(f"--wav={path}: no such file")
    info = check_audio(path)
    if info.error:
        raise UsageError(f"{path}: {info.error} ({info.detail}); refusing to predict on it")
    try:
        return AudioStream(path, sample_rate)
    except Exception as e:  # soundfile raises several error types for files it cannot read
        raise UsageError(f"{path}: not a readable audio file ({e})") from None


def speech_mask(stream, config, kind="tf"):
    """Speech per VAD frame of the whole stream (bool numpy `[F]`), reading it block by block."""
    hop = config.frame_hop
    block = int(VAD_BLOCK_SECONDS * config.sample_rate) // hop * hop
    if kind == "webrtcvad":
        return _webrtc_mask(stream, config, block)
    energies = []
    for begin in range(0, stream.num_samples, block):
        samples = stream.read(begin, begin + block + config.frame_length - hop)
        energies.append(vad.frame_energies_db(samples, stream.num_samples - begin, config, frames=block // hop))
    return vad.speech_frames(np.concatenate([e.numpy() for e in energies]), config).numpy()


def _webrtc_mask(stream, config, block):
    """webrtcvad's decision per 10 ms frame (aggressiveness 2), smoothed like the TF VAD's."""
    try:
        import webrtcvad
    except ImportError:
        raise UsageError("--vad=webrtcvad needs the webrtcvad package: pip install 'tfsent[vad]'") from None
    if config.sample_rate not in (8000, 16000, 32000, 48000) or config.frame_hop * 100 != config.sample_rate:
        raise UsageError(f"--vad=webrtcvad needs 10 ms frames at 8/16/32/48 kHz; the model runs at "
                         f"{config.sample_rate} Hz")
    detector = webrtcvad.Vad(2)
    hop = config.frame_hop
    raw = []
    for begin in range(0, stream.num_samples, block):
        samples = stream.read(begin, min(begin + block, stream.num_samples))
        samples = np.pad(samples, (0, -len(samples) % hop))
        pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
        raw.extend(detector.is_speech(pcm[i:i + hop].tobytes(), config.sample_rate) for i in range(0, len(pcm), hop))
    return vad.smooth(np.asarray(raw, bool), config).numpy()


def _score(model, stream, starts, window, texts):
    """Model outputs for every window, `BATCH` windows (one block of the file) at a time."""
    chunks = []
    for first in range(0, len(starts), BATCH):
        batch = starts[first:first + BATCH]
        span = stream.read(batch[0], batch[-1] + window)
        windows = np.stack([span[s - batch[0]: s - batch[0] + window] for s in batch])
        chunks.append(model(windows, texts[first:first + BATCH] if texts is not None else None))
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0] if k != "classes"}, \
        chunks[0].get("classes")


def _segments(starts, window, rate, speech, owned, outputs, classes, texts):
    segments = []
    for i, start in enumerate(starts):
        seg = {"start": round(float(np.float32(start) / np.float32(rate)), _DIGITS),
               "end": round(float(np.float32(start + window) / np.float32(rate)), _DIGITS),
               "speech": bool(speech[i]), "speech_seconds": round(float(owned[i]), _DIGITS)}
        if "probabilities" in outputs:
            seg["label"] = str(outputs["label"][i])
            seg["probabilities"] = {str(c): round(float(p), _DIGITS)
                                    for c, p in zip(classes[0], outputs["probabilities"][i])}
        for key in ("valence", "arousal"):
            if key in outputs:
                seg[key] = round(float(outputs[key][i]), _DIGITS)
        if texts is not None:
            seg["text"] = texts[i]
        segments.append(seg)
    return segments


def summarize(segments, classes=None):
    """Per-class share of speech time (classifiers) or speech-weighted mean values (regressors)."""
    total = sum(s["speech_seconds"] for s in segments)
    if classes is not None:
        shares = {str(c): 0.0 for c in classes}
        for s in segments:
            shares[s["label"]] += s["speech_seconds"]
        return {c: round(v / total, _DIGITS) if total > 0 else 0.0 for c, v in shares.items()}
    summary = {}
    for key in ("valence", "arousal"):
        if segments and key in segments[0]:
            weighted = sum(s[key] * s["speech_seconds"] for s in segments)
            summary[key] = round(weighted / total, _DIGITS) if total > 0 else None
    return summary


def timeline(model, path, window_seconds=None, hop_seconds=None, transcript=None, vad_kind="tf"):
    """The timeline of one audio file (see the module docstring)."""
    if vad_kind not in VADS:
        raise UsageError(f"--vad must be one of {', '.join(VADS)}; got {vad_kind!r}")
    rate = model.sample_rate
    cues = read_transcript(transcript) if transcript else None
    with _open_audio(path, rate) as stream:
        duration = stream.num_samples / rate
        window, hop = check_geometry(window_seconds if window_seconds is not None else model.window_seconds,
                                     hop_seconds if hop_seconds is not None else model.hop_seconds,
                                     duration, rate)
        if cues is not None:
            check_within(cues, duration, transcript)
        config = vad.VadConfig(sample_rate=rate)
        mask = speech_mask(stream, config, vad_kind)
        starts = window_starts_np(stream.num_samples, window, hop)
        speech, owned = (t.numpy() for t in vad.window_speech(mask, starts, window, stream.num_samples, config))
        texts = None
        if cues is not None:
            texts = [text_between(cues, s / rate, (s + window) / rate) for s in starts]
        outputs, classes = _score(model, stream, starts, window, texts if model.takes_text else None)
        regions = vad.speech_regions(mask, stream.num_samples, config).numpy()
    segments = _segments(starts, window, rate, speech, owned, outputs, classes, texts)
    return {
        "duration": round(stream.num_samples / rate, _DIGITS),
        "window_seconds": window / rate, "hop_seconds": hop / rate, "vad": vad_kind,
        "speech_seconds": round(float(owned.sum()), _DIGITS),
        "speech_regions": [[round(float(a), _DIGITS), round(float(b), _DIGITS)] for a, b in regions],
        "segments": segments,
        "summary": summarize(segments, classes[0] if classes is not None else None),
    }


def to_csv(result):
    """The segments as CSV text: start, end, speech, speech_seconds, label, one column per class, text."""
    segments = result["segments"]
    classes = list(segments[0].get("probabilities", {})) if segments else []
    values = [k for k in ("valence", "arousal") if segments and k in segments[0]]
    has_text = bool(segments) and "text" in segments[0]
    header = ["start", "end", "speech", "speech_seconds"] + (["label"] if classes else []) + \
        [f"p_{c}" for c in classes] + values + (["text"] if has_text else [])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for s in segments:
        row = [s["start"], s["end"], int(s["speech"]), s["speech_seconds"]]
        row += ([s["label"]] if classes else []) + [s["probabilities"][c] for c in classes]
        row += [s[k] for k in values] + ([s["text"]] if has_text else [])
        writer.writerow(row)
    return buffer.getvalue()
