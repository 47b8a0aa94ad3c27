"""The emotion task (TF Model Garden style): inputs, model, loss and predictions for one run.

A `TaskConfig` is everything needed to rebuild a run's data path and model later (evaluation,
export), saved as `MODEL_DIR/tfsent_config.json`. `EmotionTask` turns it into a pipeline, a model
and a per-example loss.

Example:

```python
config = TaskConfig.from_flags(FLAGS, sidecar)
task = EmotionTask(config, frame, sidecar)
model = task.build_model()
ds = task.build_inputs("train", training=True, epoch=0)
```
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from tfsent.audio.features import FeatureConfig
from tfsent.data.pipeline import InputPipeline, PipelineConfig
from tfsent.models import registry

CONFIG_FILE = "tfsent_config.json"


@dataclasses.dataclass
class TaskConfig:
    """What a trained model needs to be rebuilt and fed exactly as in training.

    Args:
        model: registered model name.
        model_kwargs: model-specific builder arguments.
        task: `classification`, `valence` or `arousal`.
        classes: the class names, index = class id.
        feature: audio feature settings (`FeatureConfig` as a dict).
        max_seconds: training crop length; also the export's scoring window.
        sequence_length: tokens per text.
        vocabulary: WordPiece vocabulary path (inside the model dir once trained), or None.
        text_encoder / audio_encoder: local Hugging Face checkpoint folders, or None.
        manifest: the manifest trained on.
        init_from: name → model dir of earlier runs a model builds on.
    """

    model: str
    model_kwargs: dict
    task: str
    classes: list
    feature: dict
    max_seconds: float
    sequence_length: int
    vocabulary: str | None = None
    text_encoder: str | None = None
    audio_encoder: str | None = None
    manifest: str | None = None
    init_from: dict = dataclasses.field(default_factory=dict)

    @property
    def feature_config(self) -> FeatureConfig:
        return FeatureConfig(**self.feature)

    def save(self, model_dir):
        text = json.dumps(dataclasses.asdict(self), indent=2, ensure_ascii=False)
        _atomic_write_text(os.path.join(model_dir, CONFIG_FILE), text)

    @classmethod
    def load(cls, model_dir) -> "TaskConfig":
        path = os.path.join(model_dir, CONFIG_FILE)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} not found: is {model_dir!r} a tfsent model dir (made by bin/train)?")
        with open(path, encoding="utf-8") as f:
            return cls(**json.load(f))


class EmotionTask:
    """Inputs, model, loss and predictions for one training run.

    Args:
        config: the `TaskConfig`.
        frame: the manifest DataFrame.
        sidecar: the manifest sidecar.
        pipeline_overrides: extra `PipelineConfig` fields (batch size, augmentation, ...).
    """

    def __init__(self, config: TaskConfig, frame, sidecar, **pipeline_overrides):
        self.config = config
        self.entry = registry.get(config.model)
        self.frame = frame
        self.sidecar = sidecar
        self._text_preprocessor = None
        self._text_encoder = None
        self._model_inputs = None
        self._pipeline_overrides = pipeline_overrides
        self._pipeline = None

    @property
    def is_classification(self) -> bool:
        return self.config.task == "classification"

    # --- text -----------------------------------------------------------------------------------

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
        rate = self.config.feature.get("sample_rate")
        if rate != encoder.sample_rate:
            raise ValueError(f"--audio_encoder={self.config.audio_encoder} expects {encoder.sample_rate} Hz "
                             f"audio, but --sample_rate={rate}")
        if self.config.feature.get("kind") != "waveform":
            raise ValueError(f"--audio_encoder takes the waveform: use --features=waveform, "
                             f"not {self.config.feature.get('kind')}")
        return encoder

    def vocab_size(self):
        if self.config.vocabulary:
            with open(self.config.vocabulary, encoding="utf-8") as f:
                return sum(1 for _ in f)
        return None

    # --- model ----------------------------------------------------------------------------------

    def build_model(self):
        cfg = self.config
        feature = cfg.feature_config
        frames = None
        if cfg.feature.get("max_frames"):
            frames = cfg.feature["max_frames"]
        common = {
            "num_classes": len(cfg.classes) if self.is_classification else 1,
            "feature_dim": feature.feature_dim,
            "feature_channels": feature.channels,
            "max_frames": frames,
            "vocab_size": self.vocab_size(),
            "sequence_length": cfg.sequence_length,
        }
        params = self.entry.parameters
        kwargs = registry.split_kwargs(cfg.model, common, dict(cfg.model_kwargs))
        if "init_from" in params:
            kwargs["init_from"] = dict(cfg.init_from)
        if "text_encoder" in params and cfg.text_encoder:
            kwargs["text_encoder"] = self._load_text_encoder()
        if cfg.text_encoder and "text_encoder" not in params and (
                self.entry.modality == "audio" or "vocab_size" in params):
            # A model with its own token embedding would index it with the encoder's token ids.
            raise ValueError(f"--text_encoder: model {cfg.model!r} does not take a pretrained text encoder "
                             f"(models that do: {', '.join(_models_taking('text_encoder'))})")
        if cfg.audio_encoder:
            if "audio_encoder" not in params:
                raise ValueError(f"--audio_encoder: model {cfg.model!r} does not take a pretrained audio "
                                 f"encoder (models that do: {', '.join(_models_taking('audio_encoder'))})")
            kwargs["audio_encoder"] = self._load_audio_encoder(kwargs, params)
        model = self.entry.builder(**kwargs)
        self._model_inputs = registry.input_names(model)
        return model

    @property
    def model_inputs(self):
        if self._model_inputs is None:
            raise RuntimeError("build_model() first")
        return self._model_inputs

    # --- inputs ---------------------------------------------------------------------------------

    def pipeline(self) -> InputPipeline:
        if self._pipeline is None:
            cfg = self.config
            overrides = dict(self._pipeline_overrides)
            if overrides.get("text_augment") is not None and self.text_preprocessor() is not None:
                overrides["text_augment"] = _protect_special_tokens(
                    overrides["text_augment"], self.text_preprocessor())
            pipeline_config = PipelineConfig(
                feature=cfg.feature_config,
                max_seconds=cfg.max_seconds,
                model_inputs=self.model_inputs,
                **overrides,
            )
            self._pipeline = InputPipeline(
                self.frame, self.sidecar, pipeline_config,
                text_preprocessor=self.text_preprocessor() if pipeline_config.needs_text else None,
            )
        return self._pipeline

    def build_inputs(self, split, *, training, epoch=0, skip_batches=0):
        return self.pipeline().dataset(split, training=training, epoch=epoch, skip_batches=skip_batches)

    # --- loss and predictions -------------------------------------------------------------------

    def per_example_loss(self, targets, outputs):
        """Weighted per-example loss: soft-label cross-entropy, or squared error for regression.

        Regression rows without a target (NaN) get weight 0.
        """
        weight = tf.cast(targets["weight"], tf.float32)
        if self.is_classification:
            logits = tf.cast(outputs["logits"], tf.float32)
            loss = tf.nn.softmax_cross_entropy_with_logits(labels=targets["target"], logits=logits)
            return loss * weight
        y = tf.cast(targets[self.config.task], tf.float32)
        known = tf.math.is_finite(y)
        pred = tf.reshape(tf.cast(outputs[self.config.task], tf.float32), [-1])
        err = tf.where(known, pred - tf.where(known, y, 0.0), 0.0)
        return tf.square(err) * weight * tf.cast(known, tf.float32)

    def output_key(self):
        return "logits" if self.is_classification else self.config.task


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


def _atomic_write_text(path, text):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def class_weights_balanced(labels: np.ndarray, num_classes: int) -> tuple:
    """N / (C * N_c) per class (classes absent from training get weight 0)."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    n = counts.sum()
    weights = np.where(counts > 0, n / (num_classes * np.maximum(counts, 1)), 0.0)
    return tuple(float(w) for w in weights)
