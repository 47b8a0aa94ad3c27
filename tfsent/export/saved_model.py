"""SavedModel export in TF Serving's layout, with every preprocessing step inside the graph.

`export_model_dir(model_dir, export_dir)` writes `EXPORT_DIR/<model_name>/<version>/` (version = next
integer unless given) atomically: everything is written under a hidden temporary name next to the
final one and renamed when complete, so an interrupted export never leaves a loadable half-model.

Signatures (TF core + tensorflow-text ops only; no py_function / numpy_function):
- `serving_default(audio float32 [B,S] at the model rate, audio_length int32 [B], text string [B])`
- `predict_wav(wav string [B] — whole WAV files, any rate, mono or stereo; text string [B])`
Both return `probabilities` [B,C] and `label` string [B] (classifiers), `valence` / `arousal` [B]
(regressors). Audio-only models take no `text`; text-only models take only `text`.

Recordings longer than the scoring window are cut into overlapping windows inside the graph and the
per-window logits are averaged, so long audio is neither rejected nor cut to its first seconds.

Example:

```python
path = export_model_dir("runs/demo", "exports")        # exports/demo_fusion/1
loaded = tf.saved_model.load(path)
out = loaded.signatures["serving_default"](audio=a, audio_length=n, text=t)
```
"""

from __future__ import annotations

import datetime
import json
import os
import shutil

import numpy as np
import tensorflow as tf

from tfsent.audio.features import AudioFrontend

AUDIO_KEYS = ("audio_features", "audio_mask", "waveform", "waveform_mask")
TEXT_KEYS = ("token_ids", "padding_mask")


class ServingModule(tf.Module):
    """Raw audio / text in, predictions out.

    Args:
        model: the trained Keras model (Contract 2 inputs, dict outputs).
        config: the run's `TaskConfig`.
        text_preprocessor: in-graph tokenizer layer (None for audio-only models).
        window_seconds: scoring window for long audio (default: the training crop length).
        hop_seconds: hop between windows (default: half a window).
    """

    def __init__(self, model, config, text_preprocessor=None, window_seconds=None, hop_seconds=None):
        super().__init__(name="tfsent_serving")
        self.model = model
        self.config = config
        feature = config.feature_config
        self.sample_rate = int(feature.sample_rate)
        self.frontend = AudioFrontend(feature) if feature.kind != "waveform" else None
        self.text_preprocessor = text_preprocessor
        inputs = tuple(model.input.keys())
        self.takes_audio = any(k in AUDIO_KEYS for k in inputs)
        self.takes_text = any(k in TEXT_KEYS for k in inputs)
        self.model_inputs = inputs
        window_seconds = window_seconds or config.max_seconds
        self.window = int(round(window_seconds * self.sample_rate))
        self.hop = int(round((hop_seconds or window_seconds / 2) * self.sample_rate))
        if not 0 < self.hop <= self.window:
            raise ValueError(f"window hop must be in (0, window]; got window {window_seconds}s, hop {hop_seconds}s")
        self.classification = config.task == "classification"
        self.labels = tf.constant(list(config.classes) if self.classification else [], tf.string)

    # --- the graph ------------------------------------------------------------------------------

    def _check_audio(self, audio, audio_length):
        tf.debugging.assert_all_finite(audio, "audio contains NaN or Inf samples")
        tf.debugging.assert_non_negative(audio_length, message="audio_length must be >= 0")
        tf.debugging.assert_less_equal(
            audio_length, tf.shape(audio)[1],
            message="audio_length is larger than the audio row it describes",
        )
        tf.debugging.assert_equal(
            tf.shape(audio_length)[0], tf.shape(audio)[0],
            message="audio and audio_length must have the same batch size",
        )

    def _text_inputs(self, text):
        tokens = self.text_preprocessor(text)
        return {"token_ids": tf.cast(tokens["token_ids"], tf.int32),
                "padding_mask": tf.cast(tokens["padding_mask"], tf.int32)}

    def _audio_inputs(self, audio, lengths):
        if self.frontend is None:
            mask = tf.sequence_mask(lengths, tf.shape(audio)[1])
            return {"waveform": audio * tf.cast(mask, tf.float32), "waveform_mask": tf.cast(mask, tf.int32)}
        features, frame_mask = self.frontend(audio, lengths)
        return {"audio_features": features, "audio_mask": tf.cast(frame_mask, tf.int32)}

    def _run_model(self, inputs):
        outputs = self.model({k: inputs[k] for k in self.model_inputs}, training=False)
        return {k: tf.cast(v, tf.float32) for k, v in outputs.items()}

    def predict(self, audio=None, audio_length=None, text=None):
        """Windowed scoring: [B, S] audio → windows [B*W, window] → model → mean over real windows."""
        text_inputs = self._text_inputs(text) if self.takes_text else {}
        if not self.takes_audio:
            return self._finish(self._run_model(text_inputs))
        self._check_audio(audio, audio_length)
        batch = tf.shape(audio)[0]
        samples = tf.shape(audio)[1]
        # Zero-pad so that tf.signal.frame yields at least one window per row.
        padded = tf.pad(audio, [[0, 0], [0, tf.maximum(self.window - samples, 0)]])
        windows = tf.signal.frame(padded, self.window, self.hop, pad_end=True)  # [B, W, window]
        num_windows = tf.shape(windows)[1]
        starts = tf.range(num_windows) * self.hop  # [W]
        win_lengths = tf.clip_by_value(audio_length[:, None] - starts[None, :], 0, self.window)  # [B, W]
        # A window is scored when it starts inside the real audio; window 0 always (zero-length audio
        # then gives a fully masked window: "audio missing").
        valid = tf.logical_or(starts[None, :] < audio_length[:, None], tf.equal(starts, 0)[None, :])
        flat_audio = tf.reshape(windows, [-1, self.window])
        flat_len = tf.reshape(win_lengths, [-1])
        # Trim the padding all windows share so short requests cost little.
        longest = tf.maximum(tf.reduce_max(flat_len), 1)
        flat_audio = flat_audio[:, :longest]
        inputs = self._audio_inputs(flat_audio, flat_len)
        for k, v in text_inputs.items():
            inputs[k] = tf.repeat(v, num_windows, axis=0)
        outputs = self._run_model(inputs)
        weights = tf.reshape(tf.cast(valid, tf.float32), [-1, 1])
        pooled = {}
        for key, value in outputs.items():
            value = tf.reshape(value, [batch * num_windows, -1]) * weights
            value = tf.reshape(value, [batch, num_windows, -1])
            count = tf.reshape(tf.reduce_sum(tf.cast(valid, tf.float32), axis=1), [batch, 1])
            pooled[key] = tf.reduce_sum(value, axis=1) / tf.maximum(count, 1.0)
        return self._finish(pooled)

    def _finish(self, outputs):
        result = {}
        if "logits" in outputs:
            probabilities = tf.nn.softmax(outputs["logits"], axis=-1)
            result["probabilities"] = probabilities
            result["label"] = tf.gather(self.labels, tf.argmax(probabilities, axis=-1))
        for key in ("valence", "arousal"):
            if key in outputs:
                result[key] = tf.reshape(outputs[key], [-1])
        return result

    def decode_wavs(self, wav):
        """Whole WAV files [B] → (audio [B, S] at the model rate, lengths [B])."""
        from tfsent.audio.io import decode_wav_bytes

        ragged = tf.map_fn(
            lambda w: tf.RaggedTensor.from_tensor(decode_wav_bytes(w, self.sample_rate)[None]),
            wav,
            fn_output_signature=tf.RaggedTensorSpec(shape=[1, None], dtype=tf.float32, ragged_rank=1),
        )
        ragged = ragged.merge_dims(1, 2) if ragged.shape.rank == 3 else ragged
        lengths = tf.cast(ragged.row_lengths(), tf.int32)
        return ragged.to_tensor(), lengths

    def signatures(self):
        """The concrete functions to export, keyed by signature name."""
        sigs = {}
        audio_spec = tf.TensorSpec([None, None], tf.float32, name="audio")
        length_spec = tf.TensorSpec([None], tf.int32, name="audio_length")
        text_spec = tf.TensorSpec([None], tf.string, name="text")
        wav_spec = tf.TensorSpec([None], tf.string, name="wav")
        if self.takes_audio and self.takes_text:
            sigs["serving_default"] = tf.function(
                lambda audio, audio_length, text: self.predict(audio, audio_length, text),
                input_signature=[audio_spec, length_spec, text_spec],
            ).get_concrete_function()
            sigs["predict_wav"] = tf.function(
                lambda wav, text: self.predict(*self.decode_wavs(wav), text),
                input_signature=[wav_spec, text_spec],
            ).get_concrete_function()
        elif self.takes_audio:
            sigs["serving_default"] = tf.function(
                lambda audio, audio_length: self.predict(audio, audio_length),
                input_signature=[audio_spec, length_spec],
            ).get_concrete_function()
            sigs["predict_wav"] = tf.function(
                lambda wav: self.predict(*self.decode_wavs(wav)),
                input_signature=[wav_spec],
            ).get_concrete_function()
        else:
            sigs["serving_default"] = tf.function(
                lambda text: self.predict(text=text), input_signature=[text_spec]
            ).get_concrete_function()
        return sigs


def next_version(base: str) -> int:
    if not os.path.isdir(base):
        return 1
    versions = [int(d) for d in os.listdir(base) if d.isdigit()]
    return max(versions, default=0) + 1


def export_model_dir(model_dir, export_dir, *, model_name=None, version=None, window_seconds=None,
                     hop_seconds=None, manifest=None):
    """Exports a trained model dir; returns the version dir's path."""
    from tfsent.evaluation.evaluate import load_trained

    task, model = load_trained(model_dir, manifest=manifest)
    config = task.config
    model_name = model_name or config.model
    base = os.path.join(export_dir, model_name)
    version = int(version) if version is not None else next_version(base)
    final = os.path.join(base, str(version))
    if os.path.exists(final):
        raise FileExistsError(f"{final} already exists; pick another --version or leave it unset")
    os.makedirs(base, exist_ok=True)
    tmp = os.path.join(base, f".tmp-{version}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    module = ServingModule(
        model, config,
        text_preprocessor=task.text_preprocessor() if any(k in TEXT_KEYS for k in model.input) else None,
        window_seconds=window_seconds, hop_seconds=hop_seconds,
    )
    try:
        signatures = module.signatures()
        tf.saved_model.save(module, tmp, signatures=signatures)
        _write_model_card(tmp, model_dir, module, task, window_seconds, hop_seconds)
        _write_warmup(tmp, module)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _write_model_card(path, model_dir, module, task, window_seconds, hop_seconds):
    import keras

    import tfsent

    config = task.config

    def _load(name):
        p = os.path.join(model_dir, name)
        if os.path.exists(p):
            with open(p, encoding="utf-8") as f:
                return json.load(f)
        return None

    train_summary = _load("train_summary.json") or {}
    eval_metrics = _load(os.path.join("eval", "metrics.json"))
    frame = task.frame
    card = {
        "model": config.model,
        "task": config.task,
        "labels": list(config.classes),
        "inputs": {
            "audio": module.takes_audio,
            "text": module.takes_text,
            "sample_rate": module.sample_rate,
            "scoring_window_seconds": module.window / module.sample_rate,
            "scoring_hop_seconds": module.hop / module.sample_rate,
            "text_sequence_length": config.sequence_length,
        },
        "missing_modality": (
            "A multimodal model accepts an empty text (\"\") — it is tokenized to [CLS] [SEP] only — and "
            "zero-length audio (audio_length 0) — the audio branch then sees a fully masked clip. "
            "The demo fusion model is trained with modality dropout so it falls back on the other "
            "modality; expect accuracy near the single-modality models' in that case."
            if module.takes_audio and module.takes_text else "n/a (single modality)"
        ),
        "long_audio": "Audio longer than the scoring window is scored in overlapping windows; the "
                      "per-window logits are averaged.",
        "text_truncation": f"Texts longer than {config.sequence_length} tokens ([CLS] and [SEP] "
                           "included) are truncated at the end.",
        "model_config": {k: v for k, v in config.__dict__.items()},
        "training_data": {
            "manifest": config.manifest,
            "corpus": task.sidecar.get("corpus"),
            "split_strategy": task.sidecar.get("split"),
            "label_rule": task.sidecar.get("label_rule"),
            "examples_per_split": {str(k): int(v) for k, v in frame["split"].astype(str).value_counts().items()},
        },
        "validation_metrics": _headline(train_summary.get("valid_metrics")),
        "test_metrics": _headline(eval_metrics),
        "versions": {"tfsent": tfsent.__version__, "tensorflow": tf.__version__, "keras": keras.__version__},
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    extra = os.path.join(path, "assets.extra")
    os.makedirs(extra, exist_ok=True)
    with open(os.path.join(extra, "model_card.json"), "w", encoding="utf-8") as f:
        json.dump(card, f, indent=2, ensure_ascii=False, default=str)


def _headline(metrics):
    if not metrics:
        return None
    keys = ("accuracy", "unweighted_accuracy", "macro_f1", "weighted_f1", "rmse", "mae", "pearson_r", "ccc",
            "num_examples", "split")
    return {k: metrics[k] for k in keys if k in metrics}


def _write_warmup(path, module):
    """`assets.extra/tf_serving_warmup_requests`: one PredictionLog TF Serving replays at load."""
    try:
        from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
    except ImportError:  # tensorflow-serving-api is optional; the model itself is complete
        return
    request = predict_pb2.PredictRequest()
    request.model_spec.name = module.config.model
    request.model_spec.signature_name = "serving_default"
    if module.takes_audio:
        samples = module.sample_rate  # one second of silence
        request.inputs["audio"].CopyFrom(tf.make_tensor_proto(np.zeros((1, samples), np.float32)))
        request.inputs["audio_length"].CopyFrom(tf.make_tensor_proto(np.array([samples], np.int32)))
    if module.takes_text:
        request.inputs["text"].CopyFrom(tf.make_tensor_proto(np.array(["안녕하세요".encode()], object)))
    log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
    extra = os.path.join(path, "assets.extra")
    os.makedirs(extra, exist_ok=True)
    with tf.io.TFRecordWriter(os.path.join(extra, "tf_serving_warmup_requests")) as writer:
        writer.write(log.SerializeToString())
    del model_pb2
