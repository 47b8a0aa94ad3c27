"""TensorBoard logging for the trainer: `MODEL_DIR/logs/train` and `MODEL_DIR/logs/valid`.

Per step: loss, learning rate, throughput (examples/s). Per epoch: training loss and every validation
metric (WA, UA, macro-F1, ... or CCC/RMSE), a confusion-matrix image, and for a model taking audio and
text the same metrics with each modality removed (`modality_ablation/audio_removed/macro_f1`, ...).
Once: the resolved flags as text and an hparams summary. Optionally a few augmented training clips (audio + log-Mel image).
"""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf

from tfsent.metrics.plots import confusion_matrix_png


class Writers:
    """The run's TensorBoard writers (no-ops when `enabled` is False, i.e. on non-chief workers).

    Args:
        model_dir: the run's model dir; logs go to `model_dir/logs/{train,valid}`.
        enabled: write anything at all.
    """

    def __init__(self, model_dir, enabled=True):
        self.enabled = enabled
        if enabled:
            logs = os.path.join(model_dir, "logs")
            self.train = tf.summary.create_file_writer(os.path.join(logs, "train"))
            self.valid = tf.summary.create_file_writer(os.path.join(logs, "valid"))

    def write_run_info(self, task, trainer_config, model, run_flags=None):
        """The resolved flags and task config as text, an hparams summary, the model summary."""
        if not self.enabled:
            return
        text = "```\n" + json.dumps(
            {"flags": run_flags or {}, "task": task.config.to_dict()}, indent=2, ensure_ascii=False, default=str
        ) + "\n```"
        with self.train.as_default():
            tf.summary.text("run/config", text, step=0)
            from tensorboard.plugins.hparams import api as hp

            hp.hparams({
                "model": task.config.model,
                "features": task.config.feature.kind,
                "batch_size": trainer_config.batch_size,
                "learning_rate": trainer_config.learning_rate,
                "optimizer": trainer_config.optimizer,
                "epochs": trainer_config.epochs,
                "seed": trainer_config.seed,
            })
            lines = []
            model.summary(print_fn=lambda line, *a, **k: lines.append(line))
            tf.summary.text("run/model_summary", "```\n" + "\n".join(lines) + "\n```", step=0)

    def train_step(self, step, loss, lr, examples_per_second):
        if not self.enabled:
            return
        with self.train.as_default():
            tf.summary.scalar("loss", loss, step=step)
            tf.summary.scalar("learning_rate", lr, step=step)
            tf.summary.scalar("examples_per_second", examples_per_second, step=step)

    def epoch_end(self, epoch, train_loss, valid_metrics, task, learning_rate=None,
                  examples_per_second=None, modality_ablation=None):
        """Epoch scalars; with `modality_ablation` (`tfsent.evaluation.ablation`), the validation metrics
        with each modality removed as `modality_ablation/<condition>/<metric>`."""
        if not self.enabled:
            return
        with self.train.as_default():
            tf.summary.scalar("epoch/loss", train_loss, step=epoch)
            if learning_rate is not None:
                tf.summary.scalar("epoch/learning_rate", learning_rate, step=epoch)
            if examples_per_second is not None:
                tf.summary.scalar("epoch/examples_per_second", examples_per_second, step=epoch)
        with self.valid.as_default():
            for key, value in valid_metrics.items():
                if isinstance(value, (int, float)) and np.isfinite(value):
                    tf.summary.scalar(f"epoch/{key}", value, step=epoch)
            if "confusion_matrix" in valid_metrics:
                png = confusion_matrix_png(
                    np.asarray(valid_metrics["confusion_matrix"]), list(task.config.classes),
                    title=f"validation, epoch {epoch}",
                )
                image = tf.image.decode_png(png, channels=4)[None]
                tf.summary.image("confusion_matrix", image, step=epoch)
            for condition, metrics in (modality_ablation or {}).items():
                if condition in ("how", "chance"):
                    continue
                for key, value in metrics.items():
                    if isinstance(value, (int, float)) and np.isfinite(value):
                        tf.summary.scalar(f"modality_ablation/{condition}/{key}", value, step=epoch)
        self.train.flush()
        self.valid.flush()

    def write_audio_examples(self, task, count, split="train"):
        """A few augmented clips of `split` (the training split) as log-Mel images and as audio."""
        if not self.enabled:
            return
        pipeline = task.pipeline()
        if not pipeline.config.needs_audio:
            return
        ds = pipeline.dataset(split, training=True, epoch=0)
        written = 0
        with self.train.as_default():
            for inputs, _ in ds:
                if "audio_features" not in inputs:
                    break
                feats = inputs["audio_features"].numpy()
                for i in range(min(count - written, feats.shape[0])):
                    image = feats[i]
                    if image.ndim == 3:
                        image = image[..., 0]
                    image = (image - image.min()) / max(float(np.ptp(image)), 1e-6)
                    tf.summary.image(f"augmented/log_mel_{written}", image.T[::-1][None, :, :, None],
                                     step=0)
                    written += 1
                if written >= count:
                    break
            audio = pipeline.augmented_waveforms(split, count, epoch=0)
            if audio is not None:
                tf.summary.audio("augmented/audio", audio[..., None], task.config.feature.sample_rate, step=0,
                                 max_outputs=count)

    def close(self):
        if self.enabled:
            self.train.close()
            self.valid.close()
