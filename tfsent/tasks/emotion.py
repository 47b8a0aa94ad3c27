"""The emotion task (TF Model Garden style): inputs, model, loss, set-up hook, predictions and metrics
for one run of a Keras model. The training loop (`tfsent.training.trainer`) knows no model: it asks
the task.

A `TaskConfig` is everything needed to rebuild a run's data path and model later (evaluation,
export), saved as `MODEL_DIR/tfsent_config.json` (through `tfsent.core.run_dir.RunDir`).

Example:

```python
config = TaskConfig(model="demo_fusion", model_kwargs={}, task="classification",
                    classes=["neutral", "happy", "sad", "angry"], feature=FeatureConfig(),
                    max_seconds=3.0, sequence_length=32, vocabulary="runs/x/vocab.txt")
task = EmotionTask(config, frame, sidecar, batch_size=16)
model = task.build_model()
task.initialize(model, train_split="train")       # normalisation statistics, ...
ds = task.build_inputs("train", training=True, epoch=0)
predictions = task.predict(task.make_predict_fn(model), "valid")
task.compute_metrics(predictions)["macro_f1"]
```
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import tensorflow as tf

from tfsent.audio.features import FeatureConfig
from tfsent.core import config as config_lib
from tfsent.core import inputs as model_inputs_lib
from tfsent.core.errors import UsageError
from tfsent.core.run_dir import RunDir
from tfsent.data.pipeline import InputPipeline, PipelineConfig
from tfsent.metrics import definitions as metric_defs
from tfsent.models import registry

# What must match between a run and an earlier run (`init_from`) whose trained parts it loads, by the
# earlier model's modality: its audio side was trained on these features, its text side on these tokens.
SHARED_WITH_EARLIER_STAGES = {
    "audio": ("feature", "audio_encoder"),
    "text": ("sequence_length", "vocabulary", "text_encoder"),
}


@dataclasses.dataclass
class TaskConfig:
    """What a trained model needs to be rebuilt and fed exactly as in training.

    Args:
        model: registered model name.
        model_kwargs: model-specific builder arguments.
        task: `classification`, `valence` or `arousal`.
        classes: the class names, index = class id.
        feature: the audio features (`FeatureConfig`; a dict is converted, unknown keys are errors).
        max_seconds: training crop length; also the export's scoring window.
        sequence_length: tokens per text.
        vocabulary: WordPiece vocabulary path (inside the model dir once trained), or None.
        text_encoder / audio_encoder: local Hugging Face checkpoint folders, or None.
        manifest: the manifest trained on.
        init_from: name → model dir of earlier runs a model builds on.
        aux_loss_weight: weight of the per-modality auxiliary heads' losses of a multimodal model
            (`--aux_loss_weight`; 0: no auxiliary heads). Single-modality models ignore it.
        modality_dropout: `{"audio": rate, "text": rate}` for a multimodal model
            (`--modality_dropout`; passed as its `<modality>_modality_dropout` arguments).
        speaker_norm: spectral features standardised with the statistics of the speaker's other
            utterances in the same split (`--speaker_norm`, `tfsent.data.speaker_norm`); the exported
            SavedModel cannot do this, so such a run does not export.

    Example:

    ```python
    config = TaskConfig.load("runs/demo")          # typed: config.feature is a FeatureConfig
    config.feature.sample_rate
    ```
    """

    model: str
    model_kwargs: dict
    task: str
    classes: list
    feature: FeatureConfig
    max_seconds: float
    sequence_length: int
    vocabulary: str | None = None
    text_encoder: str | None = None
    audio_encoder: str | None = None
    manifest: str | None = None
    init_from: dict = dataclasses.field(default_factory=dict)
    aux_loss_weight: float = 0.0
    modality_dropout: dict = dataclasses.field(default_factory=dict)
    speaker_norm: bool = False

    def __post_init__(self):
        if isinstance(self.feature, dict):
            self.feature = FeatureConfig.from_dict(self.feature)
        if not isinstance(self.feature, FeatureConfig):
            raise TypeError(f"TaskConfig.feature must be a FeatureConfig, got {type(self.feature).__name__}")

    @property
    def feature_config(self) -> FeatureConfig:
        return self.feature

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d) -> "TaskConfig":
        """From a dict (`tfsent_config.json`); unknown keys are errors."""
        return config_lib.from_dict(cls, d)

    def save(self, model_dir):
        RunDir(model_dir).write_config(self.to_dict())

    @classmethod
    def load(cls, model_dir) -> "TaskConfig":
        return cls.from_dict(RunDir(model_dir).read_config())


def check_earlier_stage(config: TaskConfig, name: str, model_dir) -> None:
    """Fails with a clear message when the earlier run `model_dir` (loaded as `init_from[name]`) was
    trained with other feature / text settings than `config`: its trained parts would then be fed
    inputs they never saw."""
    run = RunDir(model_dir)
    if not run.is_run():
        raise UsageError(f"--init_from={name}={model_dir}: not a tfsent model dir (no {run.config_path})")
    earlier = TaskConfig.load(model_dir)
    modality = registry.get(earlier.model).modality
    keys = [k for side in ("audio", "text") if modality in (side, "multimodal")
            for k in SHARED_WITH_EARLIER_STAGES[side]]
    differ = []
    for key in keys:
        mine, theirs = getattr(config, key), getattr(earlier, key)
        if key == "vocabulary":  # the same words, wherever the file lives
            mine, theirs = _file_text(mine), _file_text(run.resolve_vocabulary(theirs))
        if mine != theirs:
            differ.append(key if key == "vocabulary" else f"{key} ({_short(mine)} here, {_short(theirs)} there)")
    if differ:
        raise UsageError(f"--init_from={name}={model_dir} was trained with different settings: "
                         f"{'; '.join(differ)}. Train every stage with the same shared flags "
                         f"(e.g. configs/s2_shared.flags)")


def _file_text(path):
    if not path:
        return None
    with open(path, encoding="utf-8") as f:
        return f.read()


def _short(value):
    text = repr(dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value)
    return text if len(text) <= 200 else text[:200] + "..."


class EmotionTask:
    """Inputs, model, loss, set-up and predictions for one run of a Keras model.

    Args:
        config: the `TaskConfig`.
        frame: the manifest DataFrame (None when only the model is needed, e.g. export).
        sidecar: the manifest sidecar.
        pipeline_overrides: extra `PipelineConfig` fields (batch size, augmentation, ...).
    """

    kind = "keras"

    def __init__(self, config: TaskConfig, frame, sidecar, **pipeline_overrides):
        self.config = config
        self.entry = registry.get(config.model)
        self.frame = frame
        self.sidecar = sidecar or {}
        self._text_preprocessor = None
        self._text_encoder = None
        self._model_inputs = None
        self._pipeline_overrides = pipeline_overrides
        self._pipeline = None

    @property
    def is_classification(self) -> bool:
        return self.config.task == "classification"

    # === Text ===

    def text_preprocessor(self):
        """The in-graph tokenizer: the text encoder's own, or WordPiece on the corpus vocabulary."""
        if self._text_preprocessor is None:
            if self.config.text_encoder:
                self._text_preprocessor = self._load_text_encoder().preprocessor
            elif self.config.vocabulary:
                from tfsent.text.tokenizer import make_text_preprocessor

                self._text_preprocessor = make_text_preprocessor(
                    "wordpiece", self.config.vocabulary, self.config.sequence_length
                )
        return self._text_preprocessor

    def _load_text_encoder(self):
        if self._text_encoder is None:
            from tfsent.encoders import load_text_encoder

            self._text_encoder = load_text_encoder(
                self.config.text_encoder, sequence_length=self.config.sequence_length
            )
        return self._text_encoder

    def _load_audio_encoder(self, kwargs, params):
        """The --audio_encoder checkpoint, keeping the builder's `num_layers` transformer layers."""
        from tfsent.encoders import load_audio_encoder

        num_layers = kwargs.get("num_layers")
        if num_layers is None and "num_layers" in params:
            default = params["num_layers"].default
            num_layers = None if default is params["num_layers"].empty else default
        encoder = load_audio_encoder(self.config.audio_encoder, num_layers=num_layers)
        rate = self.config.feature.sample_rate
        if rate != encoder.sample_rate:
            raise UsageError(f"--audio_encoder={self.config.audio_encoder} expects {encoder.sample_rate} Hz "
                             f"audio, but --sample_rate={rate}")
        if self.config.feature.kind != "waveform":
            raise UsageError(f"--audio_encoder takes the waveform: use --features=waveform, "
                             f"not {self.config.feature.kind}")
        return encoder

    def vocab_size(self):
        if self.config.vocabulary:
            with open(self.config.vocabulary, encoding="utf-8") as f:
                return sum(1 for _ in f)
        return None

    # === Model ===

    def build_model(self):
        cfg = self.config
        for name, model_dir in cfg.init_from.items():
            check_earlier_stage(cfg, name, model_dir)
        common = {
            "num_classes": len(cfg.classes) if self.is_classification else 1,
            "feature_dim": cfg.feature.feature_dim,
            "feature_channels": cfg.feature.channels,
            "max_frames": cfg.feature.max_frames or None,
            "vocab_size": self.vocab_size(),
            "sequence_length": cfg.sequence_length,
        }
        params = self.entry.parameters
        kwargs = registry.split_kwargs(cfg.model, common, dict(cfg.model_kwargs))
        if "init_from" in params:
            kwargs["init_from"] = dict(cfg.init_from)
        kwargs.update(self._encoder_kwargs(kwargs, params))
        if self.entry.modality == "multimodal":
            kwargs.update(self._fusion_kwargs(params))
        model = self.entry.builder(**kwargs)
        self._model_inputs = model_inputs_lib.input_names(model)
        return model

    def _fusion_kwargs(self, params):
        """The builder arguments of `--aux_loss_weight` and `--modality_dropout` (multimodal models)."""
        cfg = self.config
        wanted = {f"{m}_modality_dropout": rate for m, rate in (cfg.modality_dropout or {}).items()}
        if cfg.aux_loss_weight:
            wanted["aux_heads"] = True
        for key in wanted:
            if key not in params:
                flag = "--aux_loss_weight" if key == "aux_heads" else "--modality_dropout"
                raise UsageError(f"{flag}: model {cfg.model!r} does not take {key} "
                                 f"(models that do: {', '.join(_models_taking(key))})")
        return wanted

    def _encoder_kwargs(self, kwargs, params):
        cfg = self.config
        out = {}
        if "text_encoder" in params and cfg.text_encoder:
            out["text_encoder"] = self._load_text_encoder()
        if cfg.text_encoder and "text_encoder" not in params and (
                self.entry.modality == "audio" or "vocab_size" in params):
            # A model with its own token embedding would index it with the encoder's token ids.
            raise UsageError(f"--text_encoder: model {cfg.model!r} does not take a pretrained text encoder "
                             f"(models that do: {', '.join(_models_taking('text_encoder'))})")
        if cfg.audio_encoder:
            if "audio_encoder" not in params:
                raise UsageError(f"--audio_encoder: model {cfg.model!r} does not take a pretrained audio "
                                 f"encoder (models that do: {', '.join(_models_taking('audio_encoder'))})")
            out["audio_encoder"] = self._load_audio_encoder(kwargs, params)
        return out

    def use_model(self, model):
        """Adopts an already built or loaded model (its input names decide what the pipeline builds)."""
        self._model_inputs = model_inputs_lib.input_names(model)
        return model

    @property
    def model_inputs(self):
        if self._model_inputs is None:
            raise RuntimeError("build_model() or use_model() first")
        return self._model_inputs

    def initialize(self, model, train_split="train") -> list:
        """Model-specific set-up after the build, before training (Model Garden's `initialize`).

        Layers that standardise with data statistics (Keras `Normalization`, S1 conv1d_fusion) are
        adapted on the training split only. Earlier stages (`init_from`) are loaded by the builder
        after `build_model` checked their settings. Returns one line per thing done (for the log).
        """
        from tfsent.models.stages import adapt_normalization

        adapted = adapt_normalization(model, self.build_inputs(train_split, training=False))
        return [f"adapted {', '.join(adapted)} on the {train_split} split"] if adapted else []

    # === Inputs ===

    def pipeline(self) -> InputPipeline:
        if self._pipeline is None:
            cfg = self.config
            overrides = dict(self._pipeline_overrides)
            if overrides.get("text_augment") is not None and self.text_preprocessor() is not None:
                overrides["text_augment"] = _protect_special_tokens(
                    overrides["text_augment"], self.text_preprocessor())
            pipeline_config = PipelineConfig(
                feature=cfg.feature,
                max_seconds=cfg.max_seconds,
                model_inputs=self.model_inputs,
                speaker_norm=cfg.speaker_norm,
                **overrides,
            )
            self._pipeline = InputPipeline(
                self.frame, self.sidecar, pipeline_config,
                text_preprocessor=self.text_preprocessor() if pipeline_config.needs_text else None,
            )
        return self._pipeline

    def build_inputs(self, split, *, training, epoch=0, skip_batches=0, remove_modality=None, corruption=None):
        return self.pipeline().dataset(split, training=training, epoch=epoch, skip_batches=skip_batches,
                                       remove_modality=remove_modality, corruption=corruption)

    def epoch_stream(self, split):
        """`split`'s training epochs from one long-lived iterator: `.dataset(epoch, skip_batches)` gives
        `build_inputs(split, training=True, epoch=epoch, skip_batches=skip_batches)`'s batches."""
        return self.pipeline().epoch_stream(split)

    def split_frame(self, split):
        return self.pipeline().split_frame(split)

    # === Loss ===

    def per_example_loss(self, targets, outputs):
        """Weighted per-example loss: soft-label cross-entropy, or squared error for regression.

        A fusion model's auxiliary per-modality outputs (`audio_logits`, `text_logits`) add their own
        cross-entropy times `aux_loss_weight` (training only: evaluation passes the fused logits alone).
        Regression rows without a target (NaN) get weight 0.
        """
        weight = tf.cast(targets["weight"], tf.float32)
        if self.is_classification:
            def cross_entropy(key):
                logits = tf.cast(outputs[key], tf.float32)
                return tf.nn.softmax_cross_entropy_with_logits(labels=targets["target"], logits=logits)

            loss = cross_entropy("logits")
            for key in sorted(outputs):
                if key != "logits" and key.endswith("_logits") and self.config.aux_loss_weight:
                    loss += self.config.aux_loss_weight * cross_entropy(key)
            return loss * weight
        y = tf.cast(targets[self.config.task], tf.float32)
        known = tf.math.is_finite(y)
        pred = tf.reshape(tf.cast(outputs[self.config.task], tf.float32), [-1])
        err = tf.where(known, pred - tf.where(known, y, 0.0), 0.0)
        return tf.square(err) * weight * tf.cast(known, tf.float32)

    def output_key(self):
        return "logits" if self.is_classification else self.config.task

    # === Predictions and metrics (validation_step / evaluation) ===

    def make_predict_fn(self, model):
        """A `tf.function` from model inputs to the float32 output (`logits` or the regression value)."""
        key = self.output_key()

        @tf.function(reduce_retracing=True)
        def predict_fn(inputs):
            return tf.cast(model(inputs, training=False)[key], tf.float32)

        return predict_fn

    def predict(self, predict_fn, split, log=None, log_every_seconds=10.0, remove_modality=None,
                corruption=None) -> dict:
        """Outputs, labels and row indices for every example of `split` that could be read, in
        manifest order (no dropped remainder). With `log` (e.g. `print`), a progress line (batch and
        ETA) every `log_every_seconds`. `remove_modality` (`"audio"` / `"text"`, multimodal models):
        every row without it, as the exported model sees a missing modality (`InputPipeline.dataset`).
        `corruption` (`tfsent.data.corruptions.Corruption`): every row corrupted (robustness)."""
        outputs, labels, targets_va, indices, loss_terms = [], [], [], [], []
        total = math.ceil(self.pipeline().num_examples(split) / self.pipeline().config.batch_size)
        t0 = last = time.time()
        dataset = self.build_inputs(split, training=False, remove_modality=remove_modality, corruption=corruption)
        for batch, (inputs, targets) in enumerate(dataset, start=1):
            if log is not None and time.time() - last >= log_every_seconds:
                last = time.time()
                eta = (total - batch + 1) * (last - t0) / max(batch - 1, 1)
                log(f"{split}: batch {batch}/{total} ETA {eta:.0f}s")
            out = predict_fn(inputs)
            outputs.append(out.numpy())
            labels.append(targets["label"].numpy())
            if not self.is_classification:
                targets_va.append(targets[self.config.task].numpy())
            indices.append(targets["index"].numpy())
            loss_terms.append(self.per_example_loss(targets, {self.output_key(): out}).numpy())
        return {
            "outputs": np.concatenate(outputs) if outputs else np.zeros((0,)),
            "labels": np.concatenate(labels) if labels else np.zeros((0,), np.int32),
            "values": np.concatenate(targets_va) if targets_va else None,
            "index": np.concatenate(indices) if indices else np.zeros((0,), np.int32),
            "loss": float(np.mean(np.concatenate(loss_terms))) if loss_terms else float("nan"),
        }

    def compute_metrics(self, predictions) -> dict:
        return compute_metrics(self, predictions)


def compute_metrics(task, predictions) -> dict:
    """The split's metrics from `predict`'s output (classification or regression, by the task)."""
    if task.is_classification:
        y_pred = np.argmax(predictions["outputs"], axis=-1)
        result = metric_defs.classification_metrics(
            predictions["labels"], y_pred, labels=list(task.config.classes)
        )
    else:
        values = predictions["values"]
        known = np.isfinite(values)
        result = metric_defs.regression_metrics(values[known], predictions["outputs"].reshape(-1)[known])
    result["loss"] = predictions["loss"]
    return result


def _protect_special_tokens(config, preprocessor):
    """Text augmentation with the tokenizer's own [CLS]/[SEP]/[PAD] ids protected.

    `TextAugmentConfig` defaults to tfsent's WordPiece ids; a pretrained encoder's tokenizer numbers
    its special tokens differently (klue/roberta-base: [CLS]=0, [PAD]=1, [SEP]=2).
    """
    ids = {}
    for name in ("cls_id", "start_id", "sep_id", "end_id", "pad_id"):
        value = getattr(preprocessor, name, None)
        if value is not None:
            ids[name] = int(value)
    if "pad_id" not in ids:
        return config
    protected = set(ids.values())
    default = next(f.default for f in dataclasses.fields(config) if f.name == "protected_ids")
    if tuple(config.protected_ids) != tuple(default):  # ids the user chose stay protected too
        protected |= set(config.protected_ids)
    return dataclasses.replace(config, protected_ids=tuple(sorted(protected)), pad_id=ids["pad_id"])


def _models_taking(parameter):
    return [name for name in registry.names() if parameter in registry.get(name).parameters] or ["none"]


def class_weights_balanced(labels: np.ndarray, num_classes: int) -> tuple:
    """N / (C * N_c) per class (classes absent from training get weight 0)."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    n = counts.sum()
    weights = np.where(counts > 0, n / (num_classes * np.maximum(counts, 1)), 0.0)
    return tuple(float(w) for w in weights)
