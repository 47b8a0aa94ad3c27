"""bin/predict: run an exported model (a local version dir or a TF Serving server); prints JSON lines.

    bin/predict --model=EXPORTS/<name>/<version> --wav=FILE.wav --text="문장"
    bin/predict --model=EXPORTS/<name>/<version> --wav=FOLDER            (FILE.txt beside a wav: its text)
    bin/predict --model=EXPORTS/<name>/<version> --manifest=OUT/manifest.csv --split=test
    bin/predict --server=localhost:8501 --model_name=demo_fusion --wav=FILE.wav --text="문장"
    bin/predict --server=localhost:8500 --protocol=grpc --model_name=demo_fusion --wav=...

One JSON object per input on stdout: `id`, `label`, `probabilities` (class → probability) and, for
models that predict them, `valence` / `arousal` (manifest rows also carry the true `emotion`).
Locally only `tensorflow` and `tensorflow_text` are needed; WAVs are sent whole (any rate, mono or
stereo) to the `predict_wav` signature, which decodes and resamples in the graph. Text-only models take
`--text` (or the manifest's text column) alone. Exit status 2 on a usage error or a rejected request.
"""

from __future__ import annotations

import csv
import json
import os
import sys

from absl import app, flags

flags.DEFINE_string("model", None, "Exported version dir (EXPORTS/<name>/<version>).")
flags.DEFINE_string("server", None, "TF Serving HOST:PORT (REST 8501 or, with --protocol=grpc, 8500).")
flags.DEFINE_string("model_name", None, "Served model name (with --server).")
flags.DEFINE_enum("protocol", "rest", ["rest", "grpc"], "TF Serving API (with --server).")
flags.DEFINE_integer("model_version", None, "Pin a served version (with --server; default: latest).")
flags.DEFINE_float("timeout", 30.0, "Seconds to wait for each server answer.")
flags.DEFINE_string("wav", None, "A WAV file, or a folder of them (FILE.txt next to FILE.wav holds its text).")
flags.DEFINE_string("text", None, "Transcript (for one --wav, or for a text-only model); default for a folder.")
flags.DEFINE_string("manifest", None, "A bin/prepare manifest.csv: predicts its rows (audio_path, text).")
flags.DEFINE_string("split", None, "With --manifest: only rows of this split.")
flags.DEFINE_integer("batch_size", 8, "Inputs per request.")
FLAGS = flags.FLAGS


class UsageError(ValueError):
    pass


# === Inputs ===


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
                with open(side, encoding="utf-8") as f:
                    t = f.read().strip()
            items.append((name, path, t, {}))
        return items
    if wav:
        if not os.path.isfile(wav):
            raise UsageError(f"--wav={wav}: no such file or folder")
        return [(os.path.basename(wav), wav, text, {})]
    if text is not None:
        return [("text", None, text, {})]
    raise UsageError("give --wav (file or folder), --text, or --manifest")


def _manifest_inputs(path, split):
    if not os.path.isfile(path):
        raise UsageError(f"--manifest={path}: no such file")
    sidecar_path = os.path.splitext(path)[0] + ".json"
    data_dir = os.path.dirname(os.path.abspath(path))
    if os.path.isfile(sidecar_path):
        with open(sidecar_path, encoding="utf-8") as f:
            data_dir = json.load(f).get("data_dir") or data_dir
    items = []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = {"utt_id", "audio_path", "text"} - set(reader.fieldnames or [])
        if missing:
            raise UsageError(f"{path}: not a tfsent manifest (missing columns {sorted(missing)})")
        for row in reader:
            if split and row.get("split") != split:
                continue
            audio = row["audio_path"]
            audio = audio if os.path.isabs(audio) else os.path.join(data_dir, audio)
            items.append((row["utt_id"], audio, row["text"], {"emotion": row.get("emotion")}))
    if not items:
        raise UsageError(f"{path}: no rows" + (f" in split {split!r}" if split else ""))
    return items


# === Runners ===


class LocalRunner:
    """Calls a version dir's signatures in this process (TF + tensorflow_text only)."""

    def __init__(self, path):
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers the tokenizer ops the graph uses)

        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise UsageError(f"--model={path} is not a SavedModel version dir (no saved_model.pb)")
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
    """Calls a TF Serving server through `tfsent.serving.ServingClient`."""

    def __init__(self, server, model_name, protocol, version, timeout):
        from tfsent.export.client import ServingClient

        if not model_name:
            raise UsageError("--server needs --model_name (the name TF Serving serves the model under)")
        self.client = ServingClient(server, model_name, protocol=protocol, version=version, timeout=timeout)
        self.takes_audio = self.takes_text = None  # learnt from the inputs given

    def __call__(self, wavs, texts):
        inputs = {}
        if wavs is not None:
            inputs["wav"] = wavs
        if texts is not None:
            inputs["text"] = texts
        return self.client.predict(inputs, signature_name="predict_wav" if wavs is not None else "serving_default")


def _rows(outputs, n):
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
        for key in ("valence", "arousal"):
            if key in outputs:
                row[key] = round(float(outputs[key][i]), 6)
        rows.append(row)
    return rows


def predict(runner, items, batch_size=8, out=sys.stdout):
    """Runs `items` through `runner` in batches; writes one JSON line per item; returns the rows."""
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
                with open(path, "rb") as f:
                    wavs.append(f.read())
        texts = None
        if takes_text:
            texts = []
            for ident, _, text, _ in chunk:
                if text is None and not takes_audio:
                    raise UsageError("this model takes text: pass --text")
                texts.append(text or "")
        outputs = runner(wavs, texts)
        for (ident, path, text, extra), row in zip(chunk, _rows(outputs, len(chunk))):
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


def main(argv):
    if len(argv) > 1:
        print(f"bin/predict: error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    if bool(FLAGS.model) == bool(FLAGS.server):
        print("bin/predict: error: give exactly one of --model (a version dir) or --server=HOST:PORT", file=sys.stderr)
        return 2
    from tfsent.export.client import ServingError

    try:
        import tensorflow as tf

        items = collect_inputs(FLAGS.wav, FLAGS.text, FLAGS.manifest, FLAGS.split)
        if FLAGS.model:
            runner = LocalRunner(FLAGS.model)
        else:
            runner = ServerRunner(FLAGS.server, FLAGS.model_name, FLAGS.protocol, FLAGS.model_version, FLAGS.timeout)
        predict(runner, items, FLAGS.batch_size)
    except (UsageError, ValueError, OSError) as e:
        print(f"bin/predict: error: {e}", file=sys.stderr)
        return 2
    except ServingError as e:
        print(f"bin/predict: error: {e}", file=sys.stderr)
        return 2
    except tf.errors.InvalidArgumentError as e:
        print(f"bin/predict: error: the model rejected the request: {_graph_message(e.message)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    app.run(main)
