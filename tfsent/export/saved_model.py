"""SavedModel export in TF Serving's layout, with every preprocessing step inside the graph.

`export_model_dir(model_dir, export_dir)` writes `EXPORT_DIR/<model_name>/<version>/` (version = next
integer unless given) atomically: everything is written under a hidden temporary name next to the
final one (`.tmp-<version>-<pid>`, which TF Serving ignores: not an integer) and renamed when
complete, so an interrupted export never leaves a loadable half-model.

Signatures (TF core + tensorflow-text ops only; no py_function / numpy_function):

- `serving_default(audio float32 [B,S] at the model rate, audio_length int32 [B], text string [B])`
- `predict_wav(wav string [B] — whole WAV files, any rate, mono or stereo; text string [B])`
- `timeline(audio float32 [S])` / `timeline_wav(wav string [])` (models that take audio): one long
  recording → one prediction per window with a speech flag (`tfsent.export.timeline_signature`)

Both return `probabilities` float32 [B,C] (calibrated: `softmax(logits / T)` with the run's
temperature, `calibration.json`; T = 1 for runs without one), `logits` float32 [B,C] (raw), `label`
string [B] and `classes` string [B,C] (the label of each probability column) for classifiers, and `valence` / `arousal` float32 [B] for regressors.
Audio-only models take no `text`; text-only models export `serving_default(text)` only.

Recordings longer than the scoring window are cut into overlapping windows inside the graph; each
row's window logits are pooled (mean by default), so long audio is neither rejected nor cut to its
first seconds. Bad requests (wrong rank, NaN/Inf samples, `audio_length` out of range, undecodable
WAV, mismatched batch sizes, a missing modality) fail with an `InvalidArgument` assertion that says
what is wrong and in which rows; so does audio shorter than `tfsent.core.inputs.MIN_AUDIO_SECONDS`
(0.1 s) — a model answers a 1 ms clip as confidently as a sentence. Multimodal models also return
`modalities` string [B] (`audio+text`, `audio` or `text`): what each row was really scored on.

Example:

```python
path = export_model_dir("runs/demo", "exports")        # exports/demo_fusion/1
loaded = tf.saved_model.load(path)
out = loaded.signatures["serving_default"](audio=a, audio_length=n, text=t)
```
"""

from __future__ import annotations

import datetime
import io
import json
import os
import shutil
import wave

import numpy as np
import tensorflow as tf

from tfsent.audio.features import AudioFrontend
from tfsent.audio.io import decode_wav_bytes
from tfsent.core import files
from tfsent.core import inputs as inputs_lib
from tfsent.core.errors import UsageError
from tfsent.core.run_dir import RunDir
from tfsent.export.timeline_signature import timeline_description, timeline_signatures
from tfsent.tasks import load_run

POOLING = ("mean", "max")
MODEL_CARD = "model_card.json"
WARMUP_FILE = "tf_serving_warmup_requests"

MISSING_MODALITY_NOTE = (
    "A multimodal model accepts, per row, an empty text (\"\" or whitespace only) or zero-length audio "
    "(audio_length 0, or an empty `wav` string): the missing branch is fully masked, so its pooled "
    "embedding is exactly zero, which is what modality dropout shows the model during training. "
    "A row with neither audio nor text is rejected (InvalidArgument). Expect accuracy near the "
    "single-modality model's on such rows. Single-modality models reject an empty input."
)


NO_CALIBRATION_NOTE = ("no calibration.json in the run (trained before temperature scaling): probabilities are "
                       "the plain softmax (T = 1); bin/evaluate --calibrate fits one, then export again")


class ServingModule(tf.Module):
    """Raw audio / text in, predictions out: the graph behind the exported signatures.

    Args:
        model: the trained Keras model (Contract 2 inputs, dict outputs).
        config: the run's `TaskConfig` (feature settings, task, class names, crop length).
        text_preprocessor: in-graph tokenizer layer (strings → `token_ids`, `padding_mask`); needed
            when the model takes text.
        window_seconds: scoring window for long audio (default: the training crop `max_seconds`).
        hop_seconds: hop between windows (default: half a window).
        pooling: how the windows' logits / values of one recording are pooled: `mean` or `max`.
        temperature: temperature scaling of classifiers (the run's `calibration.json`):
            `probabilities = softmax(logits / temperature)`; the `logits` output stays raw.

    Example:

    ```python
    module = ServingModule(model, task.config, task.text_preprocessor())
    out = module.predict(audio, audio_length, text)       # eager, or via module.signatures()
    tf.saved_model.save(module, path, signatures=module.signatures())
    ```
    """

    def __init__(self, model, config, text_preprocessor=None, window_seconds=None, hop_seconds=None,
                 pooling="mean", temperature=1.0):
        super().__init__(name="tfsent_serving")
        if not float(temperature) > 0:
            raise ValueError(f"temperature must be > 0; got {temperature!r}")
        self.temperature = float(temperature)
        self.model = model
        self.config = config
        feature = config.feature_config
        self.sample_rate = int(feature.sample_rate)
        self.min_samples = int(round(inputs_lib.MIN_AUDIO_SECONDS * self.sample_rate))
        self.frontend = AudioFrontend(feature) if feature.kind != "waveform" else None
        self.text_preprocessor = text_preprocessor
        inputs = inputs_lib.input_names(model)
        self.model_inputs = inputs
        self.takes_audio = inputs_lib.takes_audio(inputs)
        self.takes_text = inputs_lib.takes_text(inputs)
        if self.takes_text and text_preprocessor is None:
            raise ValueError(f"model {config.model!r} takes text but no text preprocessor was given")
        if pooling not in POOLING:
            raise ValueError(f"pooling must be one of {POOLING}; got {pooling!r}")
        self.pooling = pooling
        window_seconds = float(window_seconds or config.max_seconds)
        hop_seconds = float(hop_seconds or window_seconds / 2)
        self.window = int(round(window_seconds * self.sample_rate))
        self.hop = int(round(hop_seconds * self.sample_rate))
        if not 0 < self.hop <= self.window:
            raise ValueError(f"the window hop must be in (0, window]; got window {window_seconds} s, "
                             f"hop {hop_seconds} s")
        self.classification = config.task == "classification"
        self.class_names = list(config.classes) if self.classification else []
        self.labels = tf.constant(self.class_names or [""], tf.string)

    @property
    def multimodal(self):
        return self.takes_audio and self.takes_text

    # --- request checks -------------------------------------------------------------------------

    def _check_audio(self, audio, audio_length):
        """Runtime checks with row numbers in the message; returns the checked tensors."""
        audio = tf.ensure_shape(audio, [None, None], name="audio_must_be_batch_by_samples")
        audio_length = tf.ensure_shape(audio_length, [None], name="audio_length_must_be_a_vector")
        samples = tf.shape(audio)[1]
        bad_batch = tf.not_equal(tf.shape(audio_length)[0], tf.shape(audio)[0])
        checks = [tf.debugging.Assert(
            tf.logical_not(bad_batch),
            ["audio and audio_length must have the same batch size; got", tf.shape(audio)[0],
             "and", tf.shape(audio_length)[0]])]
        with tf.control_dependencies(checks):
            not_finite = tf.logical_not(tf.reduce_all(tf.math.is_finite(audio), axis=1))
            checks.append(tf.debugging.Assert(
                tf.logical_not(tf.reduce_any(not_finite)),
                ["audio contains NaN or Inf samples in rows", tf.where(not_finite)[:, 0]], summarize=16))
            negative = audio_length < 0
            checks.append(tf.debugging.Assert(
                tf.logical_not(tf.reduce_any(negative)),
                ["audio_length must be >= 0; negative in rows", tf.where(negative)[:, 0]], summarize=16))
            too_long = audio_length > samples
            checks.append(tf.debugging.Assert(
                tf.logical_not(tf.reduce_any(too_long)),
                ["audio_length is larger than the audio row it describes in rows", tf.where(too_long)[:, 0],
                 "(rows hold", samples, "samples)"], summarize=16))
            # Below the minimum there is nothing to hear; a model would still answer confidently.
            short = tf.logical_and(audio_length > 0, audio_length < self.min_samples)
            checks.append(tf.debugging.Assert(
                tf.logical_not(tf.reduce_any(short)),
                ["audio shorter than the minimum of", self.min_samples, "samples",
                 f"({inputs_lib.MIN_AUDIO_SECONDS} s) in rows", tf.where(short)[:, 0]], summarize=16))
            if not self.multimodal:
                empty = tf.equal(audio_length, 0)
                checks.append(tf.debugging.Assert(
                    tf.logical_not(tf.reduce_any(empty)),
                    ["this model needs audio; audio_length is 0 in rows", tf.where(empty)[:, 0]],
                    summarize=16))
        with tf.control_dependencies(checks):
            return tf.identity(audio), tf.identity(audio_length)

    def _check_text(self, text, batch=None, audio_length=None):
        text = tf.ensure_shape(text, [None], name="text_must_be_a_vector")
        checks = []
        has_text = tf.strings.length(tf.strings.strip(text)) > 0
        if batch is not None:
            checks.append(tf.debugging.Assert(
                tf.equal(tf.shape(text)[0], batch),
                ["text must have one string per audio row; got", tf.shape(text)[0], "texts for",
                 batch, "audio rows"]))
            with tf.control_dependencies(checks):
                neither = tf.logical_and(tf.logical_not(has_text), tf.equal(audio_length, 0))
                checks.append(tf.debugging.Assert(
                    tf.logical_not(tf.reduce_any(neither)),
                    ["rows with neither audio nor text:", tf.where(neither)[:, 0]], summarize=16))
        else:
            checks.append(tf.debugging.Assert(
                tf.reduce_all(has_text),
                ["this model needs text; empty text in rows", tf.where(tf.logical_not(has_text))[:, 0]],
                summarize=16))
        with tf.control_dependencies(checks):
            return tf.identity(text), has_text

    # --- the graph ------------------------------------------------------------------------------

    def _text_inputs(self, text, has_text):
        tokens = self.text_preprocessor(text)
        mask = tf.cast(tokens["padding_mask"], tf.int32)
        if self.multimodal:  # a missing text is a fully masked one (see MISSING_MODALITY_NOTE)
            mask = mask * tf.cast(has_text, tf.int32)[:, None]
        return {"token_ids": tf.cast(tokens["token_ids"], tf.int32), "padding_mask": mask}

    def _audio_inputs(self, audio, lengths):
        if self.frontend is None:
            mask = tf.sequence_mask(lengths, tf.shape(audio)[1])
            return {"waveform": audio * tf.cast(mask, tf.float32), "waveform_mask": tf.cast(mask, tf.int32)}
        features, frame_mask = self.frontend(audio, lengths)
        # A zero-length clip still gives one (silent) frame; a missing modality is fully masked.
        frame_mask = tf.cast(frame_mask, tf.int32) * tf.cast(lengths > 0, tf.int32)[:, None]
        return {"audio_features": features, "audio_mask": frame_mask}

    def _run_model(self, inputs):
        outputs = self.model({k: inputs[k] for k in self.model_inputs}, training=False)
        return {k: tf.cast(v, tf.float32) for k, v in outputs.items()}

    def predict(self, audio=None, audio_length=None, text=None):
        """Windowed scoring: rows → valid windows → model → pooled per row → probabilities / values."""
        if not self.takes_audio:
            text, has_text = self._check_text(text)
            return self._finish(self._run_model(self._text_inputs(text, has_text)))
        audio, audio_length = self._check_audio(audio, audio_length)
        batch = tf.shape(audio)[0]
        text_inputs = {}
        modalities = None
        if self.takes_text:
            text, has_text = self._check_text(text, batch, audio_length)
            text_inputs = self._text_inputs(text, has_text)
            modalities = tf.where(has_text, tf.where(audio_length > 0, "audio+text", "text"), "audio")
        window, hop = self.window, self.hop
        # Windows needed for the longest real recording; window w is scored when it reaches audio the
        # previous window did not cover (window 0 always), so a clip of at most one window is scored
        # exactly once, as in training.
        longest_row = tf.reduce_max(tf.concat([audio_length, [0]], 0))
        num_windows = 1 + (tf.maximum(longest_row - window, 0) + hop - 1) // hop
        total = (num_windows - 1) * hop + window
        audio = audio[:, :total]
        audio = tf.pad(audio, [[0, 0], [0, total - tf.shape(audio)[1]]])
        windows = tf.signal.frame(audio, window, hop)  # [B, W, window]
        starts = tf.range(num_windows) * hop
        win_lengths = tf.clip_by_value(audio_length[:, None] - starts[None, :], 0, window)  # [B, W]
        valid = tf.logical_or(tf.equal(starts, 0)[None, :], audio_length[:, None] > starts[None, :] + window - hop)
        picked = tf.cast(tf.where(tf.reshape(valid, [-1]))[:, 0], tf.int32)
        row_ids = picked // num_windows
        flat_audio = tf.gather(tf.reshape(windows, [-1, window]), picked)
        flat_len = tf.gather(tf.reshape(win_lengths, [-1]), picked)
        # Trim the padding all windows share so short requests cost little.
        flat_audio = flat_audio[:, : tf.maximum(tf.reduce_max(tf.concat([flat_len, [0]], 0)), 1)]
        inputs = self._audio_inputs(flat_audio, flat_len)
        for key, value in text_inputs.items():
            inputs[key] = tf.gather(value, row_ids)
        outputs = self._run_model(inputs)
        segment = tf.math.unsorted_segment_max if self.pooling == "max" else tf.math.unsorted_segment_mean
        pooled = {key: segment(value, row_ids, batch) for key, value in outputs.items()}
        result = self._finish(pooled)
        if modalities is not None:  # a multimodal model says when a row had one modality only
            result["modalities"] = modalities
        return result

    def _finish(self, outputs):
        result = {}
        if "logits" in outputs and self.classification:
            probabilities = self.calibrated_probabilities(outputs["logits"])
            result["logits"] = outputs["logits"]  # raw (pooled) logits: the temperature is not applied
            batch = tf.shape(probabilities)[0]
            result["probabilities"] = probabilities
            result["label"] = tf.gather(self.labels, tf.argmax(probabilities, axis=-1, output_type=tf.int32))
            result["classes"] = tf.tile(self.labels[None], [batch, 1])
        for key in ("valence", "arousal"):
            if key in outputs:
                result[key] = tf.reshape(outputs[key], [-1])
        if not result:
            raise ValueError(f"model outputs {sorted(outputs)} hold neither logits (with task=classification) "
                             "nor valence / arousal")
        return result

    def calibrated_probabilities(self, logits):
        """`softmax(logits / T)`: the run's temperature scaling (T = 1 without `calibration.json`)."""
        return tf.nn.softmax(logits / tf.constant(self.temperature, logits.dtype), axis=-1)

    def decode_wavs(self, wav):
        """Whole WAV files `[B]` → (audio `[B, S]` at the model rate, lengths `[B]`).

        An empty string decodes to zero samples (a missing modality for multimodal models).
        """
        wav = tf.ensure_shape(wav, [None], name="wav_must_be_a_vector")

        def decode(args):
            data, index = args
            samples = tf.cond(
                tf.strings.length(data) > 0,
                lambda: decode_wav_bytes(data, self.sample_rate, name=tf.strings.format("(wav row {})", index)),
                lambda: tf.zeros([0], tf.float32),
            )
            return tf.RaggedTensor.from_tensor(samples[None])

        ragged = tf.map_fn(
            decode, (wav, tf.range(tf.shape(wav)[0])),
            fn_output_signature=tf.RaggedTensorSpec(shape=[1, None], dtype=tf.float32, ragged_rank=1),
        )
        ragged = ragged.merge_dims(1, 2)
        return ragged.to_tensor(shape=[None, None]), tf.cast(ragged.row_lengths(), tf.int32)

    def signatures(self):
        """The concrete functions to export, keyed by signature name."""
        audio_spec = tf.TensorSpec([None, None], tf.float32, name="audio")
        length_spec = tf.TensorSpec([None], tf.int32, name="audio_length")
        text_spec = tf.TensorSpec([None], tf.string, name="text")
        wav_spec = tf.TensorSpec([None], tf.string, name="wav")
        # predict_wav calls serving_default's function (traced once, embedded as a function call); so
        # do the timeline signatures, which share predict_wav's WAV decoder the same way.
        decode = tf.function(self.decode_wavs, input_signature=[wav_spec])
        if self.multimodal:
            default = tf.function(lambda audio, audio_length, text: self.predict(audio, audio_length, text),
                                  input_signature=[audio_spec, length_spec, text_spec])
            wav_fn = tf.function(lambda wav, text: default(*decode(wav), text),
                                 input_signature=[wav_spec, text_spec])
        elif self.takes_audio:
            default = tf.function(lambda audio, audio_length: self.predict(audio, audio_length),
                                  input_signature=[audio_spec, length_spec])
            wav_fn = tf.function(lambda wav: default(*decode(wav)), input_signature=[wav_spec])
        else:
            default = tf.function(lambda text: self.predict(text=text), input_signature=[text_spec])
            wav_fn = None
        sigs = {"serving_default": default.get_concrete_function()}
        if wav_fn is not None:
            sigs["predict_wav"] = wav_fn.get_concrete_function()
            sigs.update(timeline_signatures(self, default, decode))  # one long recording → per-window timeline
        return sigs

    def describe(self):
        """Inputs and outputs of each signature (for the model card)."""
        inputs = {}
        if self.takes_audio:
            inputs["serving_default"] = {"audio": "float32 [batch, samples] at %d Hz" % self.sample_rate,
                                         "audio_length": "int32 [batch]: real samples per row"}
            inputs["predict_wav"] = {"wav": "string [batch]: whole WAV files (any rate, mono/stereo)"}
        if self.takes_text:
            for sig in inputs or {"serving_default": {}}:
                inputs.setdefault(sig, {})["text"] = "string [batch]: UTF-8 transcript"
        outputs = {}
        if self.classification:
            outputs = {"probabilities": f"float32 [batch, classes]: softmax(logits / T), T = {self.temperature:.4g} "
                                        "(temperature scaling fitted on the validation split)",
                       "logits": "float32 [batch, classes]: raw logits (pooled over windows)",
                       "label": "string [batch]",
                       "classes": "string [batch, classes]: the label of each probability column"}
        if self.multimodal:
            outputs["modalities"] = "string [batch]: what each row was scored on: audio+text, audio or text"
        described = {"inputs": inputs, "outputs": outputs}
        if self.takes_audio:
            described["timeline"] = timeline_description(self)
        return described


# === Export ===


class ExportExistsError(UsageError, FileExistsError):
    """The version directory to export to exists already (an export never overwrites one)."""


def next_version(base: str) -> int:
    """The next integer version under a TF Serving model base dir (1 when empty or missing)."""
    if not os.path.isdir(base):
        return 1
    versions = [int(d) for d in os.listdir(base) if d.isdigit()]
    return max(versions, default=0) + 1


def load_for_export(model_dir, manifest=None):
    """(config, model, text_preprocessor, task) of a Keras run, through the one run loader
    (`tfsent.tasks.load_run`). The manifest is optional here (it only feeds the model card's training
    data summary), so a model dir copied to another machine still exports."""
    loaded = load_run(model_dir, manifest, require_manifest=False)
    if loaded.kind != "keras":
        raise UsageError(f"{model_dir}: {loaded.config.model!r} is a scikit-learn model; only Keras models "
                         f"export as SavedModels")
    if getattr(loaded.config, "speaker_norm", False):
        raise UsageError(f"{model_dir}: trained with --speaker_norm (features standardised with statistics of "
                         f"each speaker's other utterances), which the SavedModel has no input for; "
                         f"retrain without it to export")
    task = loaded.task
    text_preprocessor = task.text_preprocessor() if inputs_lib.takes_text(task.model_inputs) else None
    return loaded.config, loaded.model, text_preprocessor, task


def export_model(model, config, export_dir, *, model_name=None, version=None, text_preprocessor=None,
                 window_seconds=None, hop_seconds=None, pooling="mean", card=None, temperature=1.0):
    """Exports an in-memory model; returns the version dir's path.

    Args:
        model, config, text_preprocessor, window_seconds, hop_seconds, pooling: see `ServingModule`.
        export_dir: TF Serving model base root; the model goes to `export_dir/<model_name>/<version>`.
        model_name: served name (default `config.model`).
        version: integer version (default: the next one). An existing version is never overwritten.
        card: extra model card fields (training data, metrics, flags).
        temperature: classifiers' temperature scaling (see `ServingModule`).
    """
    model_name = model_name or config.model
    if not model_name or "/" in model_name or model_name.startswith("."):
        raise UsageError(f"model_name {model_name!r} must be a plain directory name")
    base = os.path.join(export_dir, model_name)
    version = int(version) if version is not None else next_version(base)
    if version < 1:
        raise UsageError(f"version must be a positive integer; got {version}")
    final = os.path.join(base, str(version))
    if os.path.exists(final):
        raise ExportExistsError(f"{final} already exists; pick another --version or leave it unset")
    os.makedirs(base, exist_ok=True)
    _remove_stale_temporaries(base)
    tmp = os.path.join(base, f".tmp-{version}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    module = ServingModule(model, config, text_preprocessor=text_preprocessor, window_seconds=window_seconds,
                           hop_seconds=hop_seconds, pooling=pooling, temperature=temperature)
    try:
        tf.saved_model.save(module, tmp, signatures=module.signatures())
        extra = os.path.join(tmp, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        _write_model_card(os.path.join(extra, MODEL_CARD), module, model_name, version, card or {})
        write_warmup_requests(os.path.join(extra, WARMUP_FILE), module, model_name)
        try:
            os.rename(tmp, final)
        except OSError as e:  # another export took this version meanwhile
            raise ExportExistsError(f"{final} appeared while exporting ({e}); export again") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def export_model_dir(model_dir, export_dir, *, model_name=None, version=None, window_seconds=None,
                     hop_seconds=None, pooling="mean", manifest=None):
    """Exports a trained model dir (bin/train's output); returns the version dir's path.

    Example:

    ```python
    export_model_dir("runs/demo_fusion", "exports", window_seconds=4.0, hop_seconds=2.0)
    ```
    """
    config, model, text_preprocessor, task = load_for_export(model_dir, manifest)
    card = training_card(model_dir, task)
    temperature = card["calibration"]["temperature"] if config.task == "classification" else 1.0
    return export_model(model, config, export_dir, model_name=model_name, version=version,
                        text_preprocessor=text_preprocessor, window_seconds=window_seconds,
                        hop_seconds=hop_seconds, pooling=pooling, card=card, temperature=temperature)


def _remove_stale_temporaries(base):
    """Removes `.tmp-<version>-<pid>` dirs left by exports that were killed (their pid is gone)."""
    for name in os.listdir(base):
        parts = name.split("-")
        if not (name.startswith(".tmp-") and len(parts) == 3 and parts[2].isdigit()):
            continue
        try:
            os.kill(int(parts[2]), 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
        except PermissionError:  # alive, owned by someone else
            pass


# === Model card ===


def training_card(model_dir, task=None):
    """Model card fields from a model dir: flags, training data summary, validation and test metrics."""
    run = RunDir(model_dir)
    flags = run.read_flags()
    train_summary = run.read_train_summary()
    data = {"manifest": task.config.manifest if task else None}
    if task is not None and task.frame is not None:
        frame = task.frame
        data.update({
            "corpus": task.sidecar.get("corpus"),
            "split_strategy": task.sidecar.get("split"),
            "label_rule": task.sidecar.get("label_rule"),
            "tie_policy": task.sidecar.get("tie_policy"),
            "examples_per_split": {str(k): int(v) for k, v in frame["split"].astype(str).value_counts().items()},
        })
        train = frame[frame["split"].astype(str) == "train"]
        if "emotion" in train:
            data["train_examples_per_class"] = {str(k): int(v) for k, v in train["emotion"].value_counts().items()}
    elif task is not None:
        data["note"] = "manifest not found at export time; no data summary"
    return {
        "flags": flags,
        "training_data": data,
        "training": {k: train_summary.get(k) for k in ("selection_metric", "best_value", "epochs_run",
                                                           "global_step") if k in train_summary},
        "validation_metrics": _headline(train_summary.get("valid_metrics")),
        "test_metrics": _headline(run.read_eval_metrics("test")),
        "calibration": run.read_calibration() or {"temperature": 1.0, "note": NO_CALIBRATION_NOTE
                                                  if task is None or task.is_classification else "n/a (regressor)"},
    }


def _headline(metrics):
    if not metrics:
        return None
    keys = ("split", "num_examples", "accuracy", "unweighted_accuracy", "macro_f1", "weighted_f1", "rmse",
            "mae", "pearson_r", "ccc")
    return {k: metrics[k] for k in keys if k in metrics}


def _write_model_card(path, module, model_name, version, card):
    import keras

    import tfsent

    try:
        import tensorflow_text

        tf_text_version = tensorflow_text.__version__
    except ImportError:  # pragma: no cover - tfsent depends on it
        tf_text_version = None
    config = module.config
    content = {
        "model": config.model,
        "served_name": model_name,
        "version": version,
        "task": config.task,
        "labels": list(module.class_names),
        "signatures": module.describe(),
        "inputs": {
            "audio": module.takes_audio,
            "text": module.takes_text,
            "sample_rate": module.sample_rate,
            "scoring_window_seconds": module.window / module.sample_rate,
            "scoring_hop_seconds": module.hop / module.sample_rate,
            "window_pooling": f"{module.pooling} of the windows' logits (values for regressors)",
            "text_sequence_length": config.sequence_length if module.takes_text else None,
        },
        "missing_modality": MISSING_MODALITY_NOTE if module.multimodal else "n/a (single modality)",
        "long_audio": (
            f"Audio longer than {module.window / module.sample_rate:g} s is scored in windows of that length "
            f"every {module.hop / module.sample_rate:g} s (a window is used when it reaches audio the previous "
            f"one did not); the windows' outputs are pooled ({module.pooling})."
            if module.takes_audio else "n/a"
        ),
        "text_truncation": (
            f"Texts longer than {config.sequence_length} tokens ([CLS] and [SEP] included) are truncated: "
            f"the first {config.sequence_length - 2} word pieces are kept." if module.takes_text else "n/a"
        ),
        "model_config": config.to_dict(),
        **card,
        "versions": {"tfsent": tfsent.__version__, "tensorflow": tf.__version__, "keras": keras.__version__,
                     "tensorflow_text": tf_text_version},
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    files.write_text(path, json.dumps(content, indent=2, ensure_ascii=False, default=str))


# === Warm-up requests ===


def wav_bytes(samples, sample_rate):
    """16-bit PCM mono WAV bytes for float samples in [-1, 1] (for warm-up records, tests, clients)."""
    pcm = np.clip(np.asarray(samples, np.float32), -1.0, 1.0)
    pcm = (pcm * 32767.0).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())
    return buffer.getvalue()


def write_warmup_requests(path, module, model_name):
    """`assets.extra/tf_serving_warmup_requests`: PredictionLogs TF Serving replays before serving.

    One request per signature (one window of low noise + a short sentence), so the first real request
    does not pay for graph initialisation. Skipped when tensorflow-serving-api is not installed.
    """
    try:
        from tensorflow_serving.apis import predict_pb2, prediction_log_pb2
    except ImportError:  # tensorflow-serving-api is optional; the model itself is complete
        return False
    rng = np.random.default_rng(0)
    samples = (0.01 * rng.standard_normal(module.window)).astype(np.float32)
    text = np.array(["안녕하세요, 오늘 기분이 어때요?".encode()], dtype=object)
    requests = []
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = "serving_default"
    if module.takes_audio:
        request.inputs["audio"].CopyFrom(tf.make_tensor_proto(samples[None]))
        request.inputs["audio_length"].CopyFrom(tf.make_tensor_proto(np.array([module.window], np.int32)))
    if module.takes_text:
        request.inputs["text"].CopyFrom(tf.make_tensor_proto(text))
    requests.append(request)
    if module.takes_audio:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model_name
        request.model_spec.signature_name = "predict_wav"
        request.inputs["wav"].CopyFrom(tf.make_tensor_proto(
            np.array([wav_bytes(samples, module.sample_rate)], dtype=object)))
        if module.takes_text:
            request.inputs["text"].CopyFrom(tf.make_tensor_proto(text))
        requests.append(request)
    with tf.io.TFRecordWriter(path) as writer:
        for request in requests:
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return True


def read_warmup_requests(path):
    """The `PredictRequest`s of a warm-up file (for tests and `bin/predict --warmup`)."""
    from tensorflow_serving.apis import prediction_log_pb2

    requests = []
    for record in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        requests.append(log.predict_log.request)
    return requests
