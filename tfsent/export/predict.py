"""Prediction with an exported model, locally or through TF Serving (the library behind bin/predict).

`collect_inputs` gathers the inputs from a WAV file, a folder of WAVs (FILE.txt beside FILE.wav holds
its text), a text, or a `bin/prepare` manifest; a `LocalRunner` (a SavedModel version dir, run in this
process) or a `ServerRunner` (TF Serving over REST or gRPC) scores them, and `predict` sends them in
batches and writes one JSON line per input. Mistakes in what the user gave raise
`tfsent.core.errors.UsageError` with a message naming the flag or file.

Example:

```python
import sys

from tfsent.export.predict import LocalRunner, ServerRunner, collect_inputs, predict

items = collect_inputs(wav="clips/", text="오늘 정말 행복해요")
rows = predict(LocalRunner("exports/demo_fusion/1"), items, batch_size=8, out=sys.stdout)
rows = predict(ServerRunner("localhost:8501", "demo_fusion", "rest", None, 30.0), items)
rows[0]["label"], rows[0]["probabilities"]
```
"""

from __future__ import annotations

import json
import os
import sys

from tfsent.core.errors import UsageError

__all__ = ["UsageError", "collect_inputs", "LocalRunner", "ServerRunner", "predict"]


def collect_inputs(wav=None, text=None, manifest=None, split=None):
    """[(id, wav path or None, text or None, extra dict)] from the flags."""
    if manifest:
        return _manifest_inputs(manifest, split)
    if wav and os.path.isdir(wav):
        names = sorted(n for n in os.listdir(wav) if n.lower().endswith(".wav"))
        if not names:
            raise UsageError(f"--wav={wav}: no .wav files in this folder")
        items = []
        for name in names:
            path = os.path.join(wav, name)
            side = os.path.splitext(path)[0] + ".txt"
            t = text
            if os.path.isfile(side):
                t = _read_transcript(side)
            items.append((name, path, t, {}))
        return items
    if wav:
        if not os.path.isfile(wav):
            raise UsageError(f"--wav={wav}: no such file or folder")
        return [(os.path.basename(wav), wav, text, {})]
    if text is not None:
        return [("text", None, text, {})]
    raise UsageError("give --wav (file or folder), --text, or --manifest")


def _read_transcript(path):
    """A sidecar transcript in any encoding the corpora use (KEMDy20's are CP949)."""
    from tfsent.corpus.encoding import DecodeError, read_text_file

    try:
        return read_text_file(path)[0].strip()
    except DecodeError as e:
        raise UsageError(f"{path}: cannot decode this transcript ({e})") from None


def _read_audio(ident, path):
    """The bytes of an audio file that passes the header check (present, not empty, not shorter than
    `MIN_AUDIO_SECONDS`): a model would label an empty file as confidently as a sentence."""
    from tfsent.corpus.audio_check import check_audio

    if not os.path.isfile(path):
        raise UsageError(f"{ident}: audio file {path} not found")
    info = check_audio(path)
    if info.error:
        raise UsageError(f"{path}: {info.error} ({info.detail}); refusing to predict on it")
    with open(path, "rb") as f:
        return f.read()


def _manifest_inputs(path, split):
    from tfsent.corpus.manifest import read_manifest

    if not os.path.isfile(path):
        raise UsageError(f"--manifest={path}: no such file")
    try:  # the user's file: missing sidecar, a sidecar of another manifest, not Contract 1
        frame, sidecar = read_manifest(path)
    except (FileNotFoundError, ValueError) as e:  # what read_manifest raises for them
        raise UsageError(f"--manifest={path}: not a bin/prepare manifest ({e})") from None
    data_dir = sidecar.get("data_dir") or os.path.dirname(os.path.abspath(path))
    if split:
        frame = frame[frame["split"] == str(split)]
    items = []
    for row in frame.itertuples(index=False):
        audio = row.audio_path
        if audio:
            audio = audio if os.path.isabs(audio) else os.path.join(data_dir, audio)
        items.append((row.utt_id, audio or None, row.text, {"emotion": row.emotion}))
    if not items:
        raise UsageError(f"{path}: no rows" + (f" in split {split!r}" if split else ""))
    return items


class LocalRunner:
    """Calls a version dir's signatures in this process (TF + tensorflow_text only)."""

    def __init__(self, path):
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise UsageError(f"--model={path} is not a SavedModel version dir (no saved_model.pb)")
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers the tokenizer ops the graph uses)

        self._tf = tf
        self._loaded = tf.saved_model.load(path)
        self.takes_audio = "predict_wav" in self._loaded.signatures
        default = self._loaded.signatures["serving_default"]
        self.takes_text = "text" in default.structured_input_signature[1]

    def __call__(self, wavs, texts):
        tf = self._tf
        kwargs = {}
        if self.takes_text:
            kwargs["text"] = tf.constant(texts)
        if self.takes_audio:
            fn = self._loaded.signatures["predict_wav"]
            kwargs["wav"] = tf.constant(wavs)
        else:
            fn = self._loaded.signatures["serving_default"]
        out = fn(**kwargs)
        return {k: v.numpy() for k, v in out.items()}


class ServerRunner:
    """Calls a TF Serving server through `tfsent.export.client.ServingClient`."""

    def __init__(self, server, model_name, protocol, version, timeout):
        from tfsent.export.client import ServingClient

        if not model_name:
            raise UsageError("--server needs --model_name (the name TF Serving serves the model under)")
        try:  # the client checks --server (HOST:PORT) and --protocol
            self.client = ServingClient(server, model_name, protocol=protocol, version=version, timeout=timeout)
        except ValueError as e:
            raise UsageError(f"--server={server}: {e}") from None
        self.takes_audio = self.takes_text = None  # learnt from the inputs given

    def __call__(self, wavs, texts):
        inputs = {}
        if wavs is not None:
            inputs["wav"] = wavs
        if texts is not None:
            inputs["text"] = texts
        return self.client.predict(inputs, signature_name="predict_wav" if wavs is not None else "serving_default")


UNCERTAIN = "uncertain"


def check_abstain_below(value):
    """`--abstain_below=P` must be a probability strictly between 0 and 1 (None: never abstain)."""
    if value is not None and not 0.0 < float(value) < 1.0:
        raise UsageError(f"--abstain_below={value}: must be a probability in (0, 1), e.g. 0.6")
    return value


def _rows(outputs, n, abstain_below=None):
    rows = []
    for i in range(n):
        row = {}
        if "probabilities" in outputs:
            probs = outputs["probabilities"][i]
            label = outputs["label"][i]
            row["label"] = label.decode("utf-8") if isinstance(label, bytes) else str(label)
            classes = outputs.get("classes")
            names = [c.decode("utf-8") if isinstance(c, bytes) else str(c) for c in classes[i]] if classes is not None \
                else [str(j) for j in range(len(probs))]
            row["probabilities"] = {c: round(float(p), 6) for c, p in zip(names, probs)}
            if abstain_below is not None and float(max(probs)) < abstain_below:
                row["top_label"], row["label"] = row["label"], UNCERTAIN  # not sure enough to answer
        for key in ("valence", "arousal"):
            if key in outputs:
                row[key] = round(float(outputs[key][i]), 6)
        if "modalities" in outputs:  # multimodal models: what the row was really scored on
            m = outputs["modalities"][i]
            row["modalities"] = m.decode("utf-8") if isinstance(m, bytes) else str(m)
        rows.append(row)
    return rows


def predict(runner, items, batch_size=8, out=sys.stdout, abstain_below=None):
    """Runs `items` through `runner` in batches; writes one JSON line per item; returns the rows.
    With `abstain_below=P`, a row whose top (calibrated) probability is below P gets the label
    `"uncertain"` (and its argmax in `top_label`)."""
    check_abstain_below(abstain_below)
    results = []
    takes_audio = runner.takes_audio if runner.takes_audio is not None else any(i[1] for i in items)
    takes_text = runner.takes_text if runner.takes_text is not None else any(i[2] is not None for i in items)
    for start in range(0, len(items), max(1, batch_size)):
        chunk = items[start: start + batch_size]
        wavs = None
        if takes_audio:
            wavs = []
            for ident, path, _, _ in chunk:
                if not path:
                    raise UsageError(f"{ident}: this model takes audio: pass --wav")
                wavs.append(_read_audio(ident, path))
        texts = None
        if takes_text:
            texts = []
            for ident, _, text, _ in chunk:
                if text is None and not takes_audio:
                    raise UsageError("this model takes text: pass --text")
                texts.append(text or "")
        outputs = runner(wavs, texts)
        for (ident, path, text, extra), row in zip(chunk, _rows(outputs, len(chunk), abstain_below)):
            record = {"id": ident, **row, **{k: v for k, v in extra.items() if v is not None}}
            results.append(record)
            print(json.dumps(record, ensure_ascii=False), file=out, flush=True)
    return results


def _graph_message(message):
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("assertion failed", "Shape of tensor")):
            return line
    return lines[-1] if lines else message

