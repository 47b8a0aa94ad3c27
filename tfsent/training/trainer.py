"""The custom training loop: one code path for `default`, `mirrored` and `multi_worker` strategies.

Keras 3's `model.fit` cannot drive `MultiWorkerMirroredStrategy` (keras-team/keras#20585), so the
loop is written with `strategy.run` over distributed datasets, with the loss scaled by the global
batch. It checkpoints every N steps and at epoch end (`tf.train.CheckpointManager`: the last K plus
the best by a validation metric), resumes from the last checkpoint with optimizer state, step,
epoch, data position and early-stopping state, stops on a NaN/Inf loss without saving anything
corrupt, and logs to TensorBoard.

Model selection reads the validation split only; the test split is `bin/evaluate`'s.

Example:

```python
trainer = Trainer(task, TrainerConfig(model_dir="runs/x", epochs=3), strategy)
summary = trainer.train()
```
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from tfsent.evaluation import metrics as metric_defs
from tfsent.training import summaries
from tfsent.training.distribution import strategy_name, worker_dir, worker_info
from tfsent.training.flags import LOWER_IS_BETTER


class TrainingError(RuntimeError):
    """Training cannot go on (NaN loss, empty split, ...); the message says why and where."""


@dataclasses.dataclass
class TrainerConfig:
    """Loop settings (see `tfsent/training/flags.py` for the flag of each)."""

    model_dir: str
    epochs: int = 10
    batch_size: int = 32
    steps_per_epoch: int | None = None
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    clipnorm: float | None = None
    freeze_encoder: bool = False
    trainable_encoder_layers: int | None = None
    freeze_feature_encoder: bool = False
    layerwise_lr_decay: float | None = None
    early_stopping_patience: int = 0
    selection_metric: str | None = None
    seed: int = 42
    mixed_precision: str = "off"
    jit_compile: bool = False
    log_every_steps: int = 10
    checkpoint_every_steps: int = 100
    keep_checkpoints: int = 3
    progress: bool = True
    train_split: str = "train"
    valid_split: str = "valid"
    tensorboard_audio_examples: int = 0


class Trainer:
    """Trains `task`'s model under `strategy`.

    Args:
        task: an `EmotionTask`.
        config: a `TrainerConfig`.
        strategy: a `tf.distribute.Strategy` (see `distribution.make_strategy`).
    """

    def __init__(self, task, config: TrainerConfig, strategy=None):
        self.task = task
        self.config = config
        self.strategy = strategy or tf.distribute.get_strategy()
        self.is_chief, self.task_id = worker_info(self.strategy)
        # Non-chief workers write their (required) checkpoint copies to a scratch dir.
        self.write_dir = worker_dir(self.strategy, config.model_dir)
        os.makedirs(self.write_dir, exist_ok=True)
        metric = config.selection_metric or ("macro_f1" if task.is_classification else "ccc")
        self.selection_metric = metric
        self.lower_is_better = metric in LOWER_IS_BETTER
        self.log = (lambda *a: print(*a, flush=True)) if self.is_chief else (lambda *a: None)

    # --- set-up ---------------------------------------------------------------------------------

    def _steps_per_epoch(self):
        # Length bucketing can flush one partial batch per bucket: plan the learning-rate schedule
        # for the most batches an epoch can have, so it never reaches its end (lr 0 for
        # cosine/linear) before training does.
        steps = self.task.pipeline().max_batches(self.config.train_split, training=True)
        if self.config.steps_per_epoch:
            steps = min(steps, self.config.steps_per_epoch)
        return steps

    def _configure_encoder(self, model):
        """Applies --freeze_encoder / --trainable_encoder_layers / --freeze_feature_encoder to the
        pretrained encoder inside `model`; returns the layer-wise lr multipliers (or None)."""
        from tfsent.training.optimizers import freeze_encoder, layerwise_lr_multipliers

        c = self.config
        asked = [name for name, on in (
            ("--freeze_encoder", c.freeze_encoder),
            ("--trainable_encoder_layers", c.trainable_encoder_layers is not None),
            ("--freeze_feature_encoder", c.freeze_feature_encoder),
            ("--layerwise_lr_decay", c.layerwise_lr_decay is not None)) if on]
        if asked and not (self.task.config.text_encoder or self.task.config.audio_encoder):
            raise TrainingError(f"{', '.join(asked)} act on a pretrained encoder, but neither --text_encoder "
                                f"nor --audio_encoder is set")
        if c.freeze_encoder or c.trainable_encoder_layers is not None or c.freeze_feature_encoder:
            trainable = 0 if c.freeze_encoder else (
                -1 if c.trainable_encoder_layers is None else c.trainable_encoder_layers)
            frozen = freeze_encoder(model, trainable_layers=trainable,
                                    freeze_feature_encoder=c.freeze_feature_encoder or c.freeze_encoder)
            if not frozen:
                raise TrainingError(
                    f"--freeze_encoder / --trainable_encoder_layers / --freeze_feature_encoder: model "
                    f"{model.name!r} has no pretrained encoder layers (transformer_layer_<i>, "
                    f"token_embedding, feature_extractor); pass --text_encoder or --audio_encoder")
            self.log(f"frozen encoder layers: {', '.join(frozen)}")
        if c.layerwise_lr_decay is None:
            return None
        try:
            multipliers = layerwise_lr_multipliers(model, c.layerwise_lr_decay)
        except ValueError as e:
            raise TrainingError(f"--layerwise_lr_decay: {e} (it needs a pretrained encoder: "
                                f"--text_encoder or --audio_encoder)") from None
        if not multipliers:
            raise TrainingError("--layerwise_lr_decay: every encoder layer is frozen; nothing to decay")
        self.log(f"layer-wise lr decay {c.layerwise_lr_decay}: {len(multipliers)} encoder variables, "
                 f"multipliers {min(multipliers.values()):.3g}..{max(multipliers.values()):.3g}")
        return multipliers

    def _build_optimizer(self, total_steps, lr_multipliers=None):
        from tfsent.training.optimizers import make_learning_rate_schedule, make_optimizer

        c = self.config
        schedule = make_learning_rate_schedule(
            c.lr_schedule, c.learning_rate, total_steps=total_steps, warmup_steps=c.warmup_steps
        )
        optimizer = make_optimizer(c.optimizer, schedule, weight_decay=c.weight_decay, clipnorm=c.clipnorm,
                                   lr_multipliers=lr_multipliers)
        if c.mixed_precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        return optimizer

    # --- the loop -------------------------------------------------------------------------------

    def train(self) -> dict:
        c = self.config
        task = self.task
        strategy = self.strategy

        with strategy.scope():
            # Seeded right before the build, so initial weights depend on --seed alone (not on what
            # the process did before: vocabulary training, other models).
            keras.utils.set_random_seed(c.seed)
            model = task.build_model()
            lr_multipliers = self._configure_encoder(model)
            # Models with a Normalization layer (S1 conv1d_fusion) standardise with statistics of the
            # training split only; they are saved with the model (and overwritten by a resume).
            from tfsent.models.s1 import adapt_normalization

            adapted = adapt_normalization(model, task.build_inputs(c.train_split, training=False))
            if adapted:
                self.log(f"adapted {', '.join(adapted)} on the {c.train_split} split")
            n_train = task.pipeline().num_examples(c.train_split)
            task.pipeline().num_examples(c.valid_split)  # fails early, naming the split, when empty
            steps_per_epoch = self._steps_per_epoch()
            optimizer = self._build_optimizer(steps_per_epoch * c.epochs, lr_multipliers)
            optimizer.build(model.trainable_variables)
        # Loop bookkeeping lives outside the strategy scope: plain variables, read and written by the
        # Python loop only (and a string variable could not be mirrored across workers).
        state = {
            "global_step": tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step"),
            "epoch": tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch"),
            "step_in_epoch": tf.Variable(0, dtype=tf.int64, trainable=False, name="step_in_epoch"),
            "best_value": tf.Variable(np.inf if self.lower_is_better else -np.inf, dtype=tf.float64,
                                      trainable=False, name="best_value"),
            "bad_epochs": tf.Variable(0, dtype=tf.int64, trainable=False, name="bad_epochs"),
            "finished": tf.Variable(0, dtype=tf.int64, trainable=False, name="finished"),
            # The running sums of the current epoch's training loss, so a resumed epoch reports
            # the same loss as an uninterrupted one.
            "epoch_loss_sum": tf.Variable(0.0, dtype=tf.float64, trainable=False, name="epoch_loss_sum"),
            "epoch_loss_count": tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch_loss_count"),
            "history": tf.Variable("[]", dtype=tf.string, trainable=False, name="history"),
        }
        checkpoint = tf.train.Checkpoint(
            model=model, optimizer=optimizer, seed_generators=seed_generator_states(model), **state
        )
        manager = tf.train.CheckpointManager(
            checkpoint, os.path.join(self.write_dir, "checkpoints"), max_to_keep=c.keep_checkpoints
        )
        best_checkpoint = tf.train.Checkpoint(model=model)
        best_manager = tf.train.CheckpointManager(
            best_checkpoint, os.path.join(self.write_dir, "best"), max_to_keep=1
        )
        self.log(f"strategy {strategy_name(strategy)}: {strategy.num_replicas_in_sync} replica(s), "
                 f"global batch {c.batch_size}")
        resumed_from = self._restore(checkpoint, manager)
        if resumed_from:
            self.log(f"resuming from {resumed_from}: epoch {int(state['epoch'])}, "
                     f"step {int(state['global_step'])} ({int(state['step_in_epoch'])} into the epoch)")
        writers = summaries.Writers(self.write_dir, enabled=self.is_chief)
        if not resumed_from:
            writers.write_run_info(task, c, model)
        self.log(f"TensorBoard logs: {os.path.join(c.model_dir, 'logs')}  "
                 f"(watch with: tensorboard --logdir {os.path.join(c.model_dir, 'logs')})")

        train_step = self._make_train_step(model, optimizer)
        predict_step = self._make_predict_step(model)
        history = json.loads(state["history"].numpy().decode("utf-8"))
        if int(state["finished"]):
            self.log("training already finished in this model dir; nothing to do "
                     "(use a new --model_dir to train again)")
        while not int(state["finished"]) and int(state["epoch"]) < c.epochs:
            epoch = int(state["epoch"])
            skip = int(state["step_in_epoch"])
            ds = task.build_inputs(c.train_split, training=True, epoch=epoch, skip_batches=skip)
            if c.steps_per_epoch:
                ds = ds.take(max(steps_per_epoch - skip, 0))
            if epoch == 0 and skip == 0 and c.tensorboard_audio_examples:
                writers.write_audio_examples(task, c.tensorboard_audio_examples)
            dist_ds = strategy.experimental_distribute_dataset(ds)
            examples_this_run = 0
            t0 = time.time()
            for inputs, targets in dist_ds:
                loss, count, bad_grads = train_step(inputs, targets)
                loss = float(loss)
                count = int(count)
                step = int(state["global_step"]) + 1
                if not math.isfinite(loss) or int(bad_grads):
                    what = f"the loss became {loss}" if not math.isfinite(loss) else (
                        f"the gradients became non-finite (loss {loss})")
                    raise TrainingError(
                        f"{what} at step {step} (epoch {epoch + 1}); training stopped and nothing from "
                        f"this step on was saved. Last good checkpoint: "
                        f"{manager.latest_checkpoint or 'none'}. Lower --learning_rate or check the data."
                    )
                state["global_step"].assign(step)
                state["step_in_epoch"].assign_add(1)
                examples_this_run += count
                state["epoch_loss_sum"].assign_add(loss * count)
                state["epoch_loss_count"].assign_add(count)
                if step % c.log_every_steps == 0:
                    elapsed = max(time.time() - t0, 1e-9)
                    lr = float(_current_lr(optimizer))
                    writers.train_step(step, loss, lr, examples_this_run / elapsed)
                    if c.progress:
                        done = int(state["step_in_epoch"])
                        eta = (steps_per_epoch - done) * elapsed / max(done - skip, 1)
                        self.log(f"epoch {epoch + 1}/{c.epochs} step {done}/{steps_per_epoch} "
                                 f"loss {loss:.4f} lr {lr:.2e} {examples_this_run / elapsed:.1f} ex/s "
                                 f"ETA {eta:.0f}s")
                if step % c.checkpoint_every_steps == 0:
                    self._save(manager, model, step)
            epoch_seconds = time.time() - t0
            if not c.steps_per_epoch and skip == 0 and examples_this_run != n_train:
                self.log(f"warning: epoch {epoch + 1} used {examples_this_run} of {n_train} training "
                         f"examples; {n_train - examples_this_run} were skipped (unreadable audio, ids "
                         f"logged above)")
            train_loss = float(state["epoch_loss_sum"].numpy()) / max(int(state["epoch_loss_count"]), 1)

            # Validation and model selection (validation split only).
            valid = self.predict(model, predict_step, c.valid_split)
            valid_metrics = self.compute_metrics(valid)
            value = float(valid_metrics[self.selection_metric])
            best = float(state["best_value"].numpy())
            improved = value < best if self.lower_is_better else value > best
            if improved:
                state["best_value"].assign(value)
                state["bad_epochs"].assign(0)
                self._save(best_manager, model, int(state["global_step"]))
            else:
                state["bad_epochs"].assign_add(1)
            writers.epoch_end(epoch + 1, train_loss, valid_metrics, task,
                              learning_rate=float(_current_lr(optimizer)),
                              examples_per_second=examples_this_run / max(epoch_seconds, 1e-9))
            history.append({"epoch": epoch + 1, "train_loss": train_loss,
                            **{k: v for k, v in valid_metrics.items() if isinstance(v, (int, float))}})
            state["history"].assign(json.dumps(history, default=_json_default))
            self.log(f"epoch {epoch + 1}/{c.epochs}: train loss {train_loss:.4f}; valid "
                     + " ".join(f"{k} {valid_metrics[k]:.4f}" for k in _headline(valid_metrics))
                     + (" (best so far)" if improved else ""))
            state["epoch"].assign_add(1)
            state["step_in_epoch"].assign(0)
            state["epoch_loss_sum"].assign(0.0)
            state["epoch_loss_count"].assign(0)
            stop = c.early_stopping_patience and int(state["bad_epochs"]) >= c.early_stopping_patience
            if stop or int(state["epoch"]) >= c.epochs:
                state["finished"].assign(1)
                if stop:
                    self.log(f"early stopping: {self.selection_metric} did not improve for "
                             f"{c.early_stopping_patience} epochs")
            self._save(manager, model, int(state["global_step"]))

        # The trained model is the best checkpoint by the validation metric.
        if best_manager.latest_checkpoint:
            best_checkpoint.restore(best_manager.latest_checkpoint).expect_partial()
        summary = {
            "selection_metric": self.selection_metric,
            "best_value": float(state["best_value"].numpy()),
            "epochs_run": int(state["epoch"]),
            "global_step": int(state["global_step"]),
            "history": history,
            "weights_fingerprint": weights_fingerprint(model),
        }
        # Every worker prints it: under multi_worker all workers must hold identical weights.
        print(f"worker {self.task_id}: final weights fingerprint {summary['weights_fingerprint']}", flush=True)
        if self.is_chief:
            valid = self.predict(model, predict_step, c.valid_split)
            summary["valid_metrics"] = self.compute_metrics(valid)
            _save_model_atomic(model, os.path.join(c.model_dir, "model.keras"))
            _write_json(os.path.join(c.model_dir, "train_summary.json"), summary)
        else:
            shutil.rmtree(self.write_dir, ignore_errors=True)
            try:  # MODEL_DIR/.workers, once the last scratch dir is gone
                os.rmdir(os.path.dirname(self.write_dir))
            except OSError:
                pass
        writers.close()
        self.model = model
        self.optimizer = optimizer
        return summary

    # --- steps ----------------------------------------------------------------------------------

    def _make_train_step(self, model, optimizer):
        task = self.task
        strategy = self.strategy
        mixed16 = self.config.mixed_precision == "mixed_float16"

        def loss_and_grads(inputs, targets, global_count):
            with tf.GradientTape() as tape:
                outputs = model(inputs, training=True)
                per_example = task.per_example_loss(targets, outputs)
                # Scaled by the global batch, so summing the replicas' gradients (which the Keras
                # optimizer's apply_gradients does in a replica context) gives the global mean.
                loss = tf.reduce_sum(per_example) / tf.maximum(global_count, 1.0)
                if model.losses:
                    loss += tf.add_n(model.losses) / strategy.num_replicas_in_sync
                scaled = optimizer.scale_loss(loss) if mixed16 else loss
            grads = tape.gradient(scaled, model.trainable_variables)
            return loss, grads

        if self.config.jit_compile:
            # XLA compiles the forward and backward pass of one replica; the all-reduce and the
            # optimizer update stay outside (cross-replica collectives do not compile on every device).
            loss_and_grads = tf.function(loss_and_grads, jit_compile=True, reduce_retracing=True)

        def step_fn(inputs, targets):
            ctx = tf.distribute.get_replica_context()
            local_count = tf.cast(tf.shape(targets["label"])[0], tf.float32)
            global_count = ctx.all_reduce(tf.distribute.ReduceOp.SUM, local_count)
            loss, grads = loss_and_grads(inputs, targets, global_count)
            if mixed16:
                # LossScaleOptimizer skips non-finite steps itself (and lowers the scale).
                bad = tf.constant(0.0)
            else:
                finite = [tf.reduce_all(tf.math.is_finite(g)) for g in grads if g is not None]
                bad = 1.0 - tf.cast(tf.reduce_all(tf.stack(finite)), tf.float32) if finite else tf.constant(0.0)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss, local_count, bad

        @tf.function(reduce_retracing=True)
        def train_step(inputs, targets):
            loss, count, bad = strategy.run(step_fn, args=(inputs, targets))
            return (strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None),
                    strategy.reduce(tf.distribute.ReduceOp.SUM, count, axis=None),
                    strategy.reduce(tf.distribute.ReduceOp.SUM, bad, axis=None))

        return train_step

    # --- checkpoints ----------------------------------------------------------------------------

    def _restore(self, checkpoint, manager):
        """Restores the latest checkpoint; returns its path, or None for a fresh start.

        Non-chief workers restore from the chief's directory (a shared file system, see
        docs/distributed.md), so every worker starts from the same state; they save into their own
        scratch directory because every worker must take part in saving.
        """
        path = manager.latest_checkpoint
        if not self.is_chief:
            path = tf.train.latest_checkpoint(os.path.join(self.config.model_dir, "checkpoints"))
        if not path:
            return None
        checkpoint.restore(path).assert_existing_objects_matched()
        return path

    def _save(self, manager, model, step):
        """Saves a checkpoint, after checking that every weight is finite (never save a corrupt model)."""
        bad = [v.path for v in model.weights if not bool(np.all(np.isfinite(_as_numpy(v))))]
        if bad:
            raise TrainingError(
                f"non-finite weights at step {step} ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}); "
                f"training stopped without saving. Last good checkpoint: {manager.latest_checkpoint or 'none'}."
            )
        return manager.save(checkpoint_number=step)

    def _make_predict_step(self, model):
        key = self.task.output_key()

        @tf.function(reduce_retracing=True)
        def predict_step(inputs):
            return tf.cast(model(inputs, training=False)[key], tf.float32)

        return predict_step

    def predict(self, model, predict_step, split):
        """Runs the model over a whole split (no dropped remainder), in manifest order."""
        log = self.log if self.config.progress else None
        return predict_split(self.task, predict_step, split, log=log)

    def compute_metrics(self, predictions):
        return compute_metrics(self.task, predictions)


def predict_split(task, predict_step, split, log=None, log_every_seconds=10.0):
    """Outputs, labels and row indices for every example of `split` that could be read.

    With `log` (e.g. `print`), a progress line (batch and ETA) every `log_every_seconds`.
    """
    outputs, labels, targets_va, indices, loss_terms = [], [], [], [], []
    total = math.ceil(task.pipeline().num_examples(split) / task.pipeline().config.batch_size)
    t0 = last = time.time()
    for batch, (inputs, targets) in enumerate(task.build_inputs(split, training=False), start=1):
        if log is not None and time.time() - last >= log_every_seconds:
            last = time.time()
            eta = (total - batch + 1) * (last - t0) / max(batch - 1, 1)
            log(f"{split}: batch {batch}/{total} ETA {eta:.0f}s")
        out = predict_step(inputs)
        outputs.append(out.numpy())
        labels.append(targets["label"].numpy())
        if not task.is_classification:
            targets_va.append(targets[task.config.task].numpy())
        indices.append(targets["index"].numpy())
        loss_terms.append(task.per_example_loss(targets, {task.output_key(): out}).numpy())
    return {
        "outputs": np.concatenate(outputs) if outputs else np.zeros((0,)),
        "labels": np.concatenate(labels) if labels else np.zeros((0,), np.int32),
        "values": np.concatenate(targets_va) if targets_va else None,
        "index": np.concatenate(indices) if indices else np.zeros((0,), np.int32),
        "loss": float(np.mean(np.concatenate(loss_terms))) if loss_terms else float("nan"),
    }


def compute_metrics(task, predictions):
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


def seed_generator_states(model) -> list:
    """The state variables of the model's Keras `SeedGenerator`s (dropout and other random layers).

    `tf.train.Checkpoint(model=...)` does not reach them (a `SeedGenerator` is not trackable), so a
    resumed run would draw different dropout masks than an uninterrupted one; the trainer tracks
    them explicitly. The order is the model's variable order, which a rebuilt model reproduces.
    """
    return [v for v in model.non_trainable_variables if v.path.endswith("seed_generator_state")]


def weights_fingerprint(model) -> str:
    """A short SHA-256 of all weights (in model order): equal weights give equal fingerprints."""
    import hashlib

    digest = hashlib.sha256()
    for v in model.weights:
        digest.update(np.ascontiguousarray(_as_numpy(v)).tobytes())
    return digest.hexdigest()[:16]


def _as_numpy(variable):
    value = variable.value if hasattr(variable, "value") else variable
    return np.asarray(tf.convert_to_tensor(value).numpy() if hasattr(value, "numpy") else value)


def _headline(m):
    keys = ["loss", "accuracy", "unweighted_accuracy", "macro_f1", "ccc", "rmse"]
    return [k for k in keys if k in m]


def _current_lr(optimizer):
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    lr = inner.learning_rate
    return lr.numpy() if hasattr(lr, "numpy") else lr


def _save_model_atomic(model, path):
    tmp = path + ".tmp.keras"
    model.save(tmp)
    os.replace(tmp, path)


def _write_json(path, obj):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False, default=_json_default)
    os.replace(tmp, path)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


def print_err(*args):
    print(*args, file=sys.stderr, flush=True)
