"""The custom training loop: one code path for `default`, `mirrored` and `multi_worker` strategies.

Keras 3's `model.fit` cannot drive `MultiWorkerMirroredStrategy` (keras-team/keras#20585), so the
loop is written with `strategy.run` over distributed datasets, with the loss scaled by the global
batch. It checkpoints every N steps and at epoch end (`tf.train.CheckpointManager`: the last K plus
the best by a validation metric), resumes from the last checkpoint with optimizer state, step,
epoch, data position and early-stopping state, stops on a NaN/Inf loss without saving anything
corrupt, and logs to TensorBoard.

The loop knows no model: the task builds it, sets it up (`task.initialize`: normalisation
statistics, earlier stages), feeds and scores it. The train step keeps its bookkeeping in the graph
(step counters, loss sums, the first non-finite step), so the host reads it only every
`--log_every_steps` steps and before each checkpoint — an accelerator is never stalled per step — and
a NaN/Inf still names the exact step it appeared at.

Model selection reads the validation split only; the test split is `bin/evaluate`'s.

Example:

```python
trainer = Trainer(task, TrainerConfig(model_dir="runs/x", epochs=3), strategy)
summary = trainer.train()
```
"""

from __future__ import annotations

import dataclasses
import glob
import json
import math
import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

from tfsent.core import files
from tfsent.core.errors import UsageError
from tfsent.core.files import json_default
from tfsent.core.run_dir import TRAIN_SUMMARY_FILE, RunDir
from tfsent.evaluation import ablation as ablation_lib
from tfsent.metrics import calibration
from tfsent.metrics.definitions import LOWER_IS_BETTER
from tfsent.training import summaries
from tfsent.training.distribution import strategy_name, worker_dir, worker_info


class CheckpointWriteError(UsageError):
    """A checkpoint could not be written (full or read-only disk); nothing half-written is left."""


def _one_line(error) -> str:
    message = getattr(error, "message", None) or str(error)
    return " ".join(message.split())[:300]


class TrainingError(RuntimeError):
    """Training cannot go on (NaN loss, empty split, ...); the message says why and where."""


@dataclasses.dataclass
class TrainerConfig:
    """Loop settings (see `tfsent/cli/train_flags.py` for the flag of each)."""

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
    modality_ablation: bool = True
    data_service: str | None = None


class Trainer:
    """Trains `task`'s model under `strategy`.

    Args:
        task: an `EmotionTask` (the loop knows no model: it builds, sets up, feeds and scores it
            through the task).
        config: a `TrainerConfig`.
        strategy: a `tf.distribute.Strategy` (see `distribution.make_strategy`).
        run_flags: the resolved command-line flags, for TensorBoard's run text (optional).
    """

    def __init__(self, task, config: TrainerConfig, strategy=None, run_flags=None):
        self.task = task
        self.run_flags = run_flags or {}
        self.config = config
        self.strategy = strategy or tf.distribute.get_strategy()
        self._started = int(time.time() * 1000)  # names this run's tf.data service jobs
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

    # === The loop ===

    def train(self) -> dict:
        """Trains to the end (or early stopping) from the last checkpoint; returns the summary."""
        c = self.config
        model, optimizer = self._build()
        state = _LoopState.create(self.lower_is_better)
        ckpt = _Checkpoints(self.write_dir, model, optimizer, state, c.keep_checkpoints)
        self.log(f"strategy {strategy_name(self.strategy)}: {self.strategy.num_replicas_in_sync} replica(s), "
                 f"global batch {c.batch_size}")
        resumed_from = self._restore(ckpt.checkpoint, ckpt.manager)
        if resumed_from:
            self.log(f"resuming from {resumed_from}: epoch {int(state.epoch)}, "
                     f"step {int(state.global_step)} ({int(state.step_in_epoch)} into the epoch)")
        writers = summaries.Writers(self.write_dir, enabled=self.is_chief)
        if not resumed_from:
            writers.write_run_info(self.task, c, model, self.run_flags)
        self.log(f"TensorBoard logs: {os.path.join(c.model_dir, 'logs')}  "
                 f"(watch with: tensorboard --logdir {os.path.join(c.model_dir, 'logs')})")
        train_step = self._make_train_step(model, optimizer, state)
        predict_fn = self.task.make_predict_fn(model)
        history = json.loads(state.history.numpy().decode("utf-8"))
        if int(state.finished):
            self.log("training already finished in this model dir; nothing to do "
                     "(use a new --model_dir to train again)")
        while not int(state.finished) and int(state.epoch) < c.epochs:
            seen, seconds = self._run_epoch(train_step, model, optimizer, state, ckpt, writers)
            train_loss = float(state.epoch_loss_sum.numpy()) / max(int(state.epoch_loss_count), 1)
            self._end_epoch(model, optimizer, predict_fn, state, ckpt, writers, history,
                            train_loss=train_loss, examples_per_second=seen / max(seconds, 1e-9))
        return self._finish(model, optimizer, predict_fn, state, ckpt, writers, history)

    def _build(self):
        """The model (set up by the task's `initialize` hook) and its optimizer, under the strategy."""
        c = self.config
        with self.strategy.scope():
            # Seeded right before the build, so initial weights depend on --seed alone (not on what
            # the process did before: vocabulary training, other models).
            keras.utils.set_random_seed(c.seed)
            model = self.task.build_model()
            lr_multipliers = self._configure_encoder(model)
            for line in self.task.initialize(model, train_split=c.train_split):
                self.log(line)
            self.n_train = self.task.pipeline().num_examples(c.train_split)
            self.task.pipeline().num_examples(c.valid_split)  # fails early, naming the split, when empty
            self.steps_per_epoch = self._steps_per_epoch()
            optimizer = self._build_optimizer(self.steps_per_epoch * c.epochs, lr_multipliers)
            optimizer.build(model.trainable_variables)
        return model, optimizer

    def _run_epoch(self, train_step, model, optimizer, state, ckpt, writers):
        """One (possibly resumed) epoch of training steps; returns (examples seen, seconds)."""
        c = self.config
        epoch, skip = int(state.epoch), int(state.step_in_epoch)
        if c.data_service:  # preprocessing on tf.data service workers (tfsent.data.service)
            ds = self._service_inputs(epoch, skip)
        elif self._streams_epochs():  # one iterator for all epochs (tfsent.data.epoch_stream)
            stream = self.task.epoch_stream(c.train_split)
            # One device reads the stream from Python; a tf.data view (~100-150 ms of CPU per epoch to build
            # and start) only where the strategy splits batches across replicas.
            replicas = self.strategy.num_replicas_in_sync
            ds = stream.dataset(epoch, skip) if replicas > 1 else stream.batches(epoch, skip)
        else:
            ds = self.task.build_inputs(c.train_split, training=True, epoch=epoch, skip_batches=skip)
        if c.steps_per_epoch:
            ds = ds.take(max(self.steps_per_epoch - skip, 0))
        if epoch == 0 and skip == 0 and c.tensorboard_audio_examples:
            writers.write_audio_examples(self.task, c.tensorboard_audio_examples, split=c.train_split)
        step = int(state.global_step)
        window = _Window(state, time.time(), skip)
        if isinstance(ds, tf.data.Dataset):
            ds = self.strategy.experimental_distribute_dataset(ds)
        for inputs, targets in ds:
            train_step(inputs, targets)  # no host sync here: checks run every --log_every_steps
            step += 1
            if step % c.log_every_steps == 0 or step % c.checkpoint_every_steps == 0:
                window.check(epoch, ckpt.manager)
            if step % c.log_every_steps == 0:
                self._log_progress(window, step, epoch, optimizer, writers)
            if step % c.checkpoint_every_steps == 0:
                self._save(ckpt.manager, model, step)
        window.check(epoch, ckpt.manager)
        if not c.steps_per_epoch and skip == 0 and window.examples != self.n_train:
            self.log(f"warning: epoch {epoch + 1} used {window.examples} of {self.n_train} training "
                     f"examples; {self.n_train - window.examples} were skipped (unreadable audio, ids "
                     f"logged above)")
        return window.examples, time.time() - window.t0

    def _streams_epochs(self):
        """Whether training epochs come from one long-lived iterator: not with `--steps_per_epoch` (the
        stream prepares whole epochs) nor under multi_worker (auto-sharding serializes the dataset,
        which the stream's Python epoch orders prevent)."""
        return (not self.config.steps_per_epoch and hasattr(self.task, "epoch_stream")
                and strategy_name(self.strategy) != "MultiWorkerMirroredStrategy")

    def _log_progress(self, window, step, epoch, optimizer, writers):
        c = self.config
        elapsed = max(time.time() - window.t0, 1e-9)
        lr = float(_current_lr(optimizer))
        loss = window.take_loss()
        writers.train_step(step, loss, lr, window.examples / elapsed)
        if c.progress:
            done = int(window.state.step_in_epoch)
            eta = (self.steps_per_epoch - done) * elapsed / max(done - window.skip, 1)
            self.log(f"epoch {epoch + 1}/{c.epochs} step {done}/{self.steps_per_epoch} "
                     f"loss {loss:.4f} lr {lr:.2e} {window.examples / elapsed:.1f} ex/s ETA {eta:.0f}s")

    def _end_epoch(self, model, optimizer, predict_fn, state, ckpt, writers, history, *, train_loss,
                   examples_per_second):
        """Validation, model selection (validation split only), history, early stopping, checkpoint."""
        c = self.config
        epoch = int(state.epoch)
        valid_predictions = self.predict(predict_fn, c.valid_split)
        valid_metrics = self.task.compute_metrics(valid_predictions)
        ablation = self._modality_ablation(predict_fn, valid_predictions)
        value = float(valid_metrics[self.selection_metric])
        best = float(state.best_value.numpy())
        improved = value < best if self.lower_is_better else value > best
        if improved:
            state.best_value.assign(value)
            state.bad_epochs.assign(0)
            self._save(ckpt.best_manager, model, int(state.global_step))
        else:
            state.bad_epochs.assign_add(1)
        writers.epoch_end(epoch + 1, train_loss, valid_metrics, self.task,
                          learning_rate=float(_current_lr(optimizer)), examples_per_second=examples_per_second,
                          modality_ablation=ablation)
        history.append({"epoch": epoch + 1, "train_loss": train_loss,
                        **{k: v for k, v in valid_metrics.items() if isinstance(v, (int, float))}})
        state.history.assign(json.dumps(history, default=json_default))
        self.log(f"epoch {epoch + 1}/{c.epochs}: train loss {train_loss:.4f}; valid "
                 + " ".join(f"{k} {valid_metrics[k]:.4f}" for k in _headline(valid_metrics))
                 + (" (best so far)" if improved else ""))
        state.next_epoch()
        stop = c.early_stopping_patience and int(state.bad_epochs) >= c.early_stopping_patience
        if stop or int(state.epoch) >= c.epochs:
            state.finished.assign(1)
            if stop:
                self.log(f"early stopping: {self.selection_metric} did not improve for "
                         f"{c.early_stopping_patience} epochs")
        self._save(ckpt.manager, model, int(state.global_step))

    def _modality_ablation(self, predict_fn, valid_predictions, log=True):
        """The validation split without audio and without text (TensorBoard's `modality_ablation/`,
        `train_summary.json`'s `valid_modality_ablation`), for a model taking both, on the chief: one
        extra pass per modality. None otherwise."""
        c = self.config
        if not (c.modality_ablation and self.is_chief and ablation_lib.takes_both_modalities(self.task)):
            return None
        ablation, _ = ablation_lib.modality_ablation(self.task, predict_fn, c.valid_split, valid_predictions)
        key = self.selection_metric
        if log:
            self.log("valid without audio / text: " + " / ".join(
                f"{ablation[name].get(key, float('nan')):.4f}" for name in ablation_lib.ABLATIONS) + f" {key} "
                f"(full {ablation['full'].get(key, float('nan')):.4f})")
        return ablation

    def _finish(self, model, optimizer, predict_fn, state, ckpt, writers, history):
        """Restores the best checkpoint (the trained model), writes model and summary (chief)."""
        c = self.config
        if ckpt.best_manager.latest_checkpoint:
            ckpt.best_checkpoint.restore(ckpt.best_manager.latest_checkpoint).expect_partial()
        summary = {
            "selection_metric": self.selection_metric,
            "best_value": float(state.best_value.numpy()),
            "epochs_run": int(state.epoch),
            "global_step": int(state.global_step),
            "history": history,
            "weights_fingerprint": weights_fingerprint(model),
        }
        # Every worker prints it: under multi_worker all workers must hold identical weights.
        print(f"worker {self.task_id}: final weights fingerprint {summary['weights_fingerprint']}", flush=True)
        if self.is_chief:
            valid_predictions = self.predict(predict_fn, c.valid_split)
            summary["valid_metrics"] = self.task.compute_metrics(valid_predictions)
            ablation = self._modality_ablation(predict_fn, valid_predictions, log=False)
            if ablation is not None:
                summary["valid_modality_ablation"] = ablation
            run = RunDir(c.model_dir)
            self._calibrate(run, valid_predictions)  # before model.keras: a finished classifier has one
            with files.atomic_path(run.keras_model_path) as tmp:
                model.save(tmp)
            run.write_json(TRAIN_SUMMARY_FILE, summary)
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

    def _service_inputs(self, epoch, skip):
        """The epoch's training batches from the tf.data service at `data_service` (one job per run and
        epoch, shared by the workers of a multi-worker strategy; a resumed epoch skips on this side)."""
        from tfsent.data import service

        ds = self.task.build_inputs(self.config.train_split, training=True, epoch=epoch)
        run = os.path.basename(os.path.abspath(self.config.model_dir))
        # The workers of a multi-worker strategy must name the same job (they share its batches), so
        # the name is deterministic there; alone, a start-time token keeps a rerun off a finished job.
        token = "" if strategy_name(self.strategy) == "MultiWorkerMirroredStrategy" else f"-{self._started}"
        job = f"tfsent-{run}-seed{self.config.seed}-epoch{epoch}{token}"
        ds = service.distribute(ds, self.config.data_service, job_name=job)
        # Each service worker flushes its own partial batches, and the epoch splits unevenly over the
        # readers of a multi-worker strategy: replicas left without rows skip the model (`_unless_empty`).
        return ds.skip(skip) if skip else ds

    def _calibrate(self, run, valid_predictions):
        """Temperature scaling fitted on the validation split (classifiers): `calibration.json`."""
        if not self.task.is_classification or not len(valid_predictions["labels"]):
            return
        record = calibration.fit_temperature(valid_predictions["outputs"], valid_predictions["labels"])
        record.update(split=self.config.valid_split, fitted_by="bin/train")
        run.write_calibration(record)
        self.log(f"temperature scaling on the {self.config.valid_split} split: T={record['temperature']:.3f}, "
                 f"NLL {record['nll_before']:.4f} -> {record['nll_after']:.4f} ({run.path}/calibration.json)")

    # === Steps ===

    def _make_train_step(self, model, optimizer, state):
        """A `tf.function` running one distributed step. It updates the loop state in the graph
        (step counters, the epoch's loss sums, the first non-finite step), so the Python loop needs
        no host sync per step."""
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
            if strategy.num_replicas_in_sync > 1:
                loss, grads = _unless_empty(local_count, lambda: loss_and_grads(inputs, targets, global_count),
                                            model.trainable_variables)
            else:
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
            loss = strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
            count = strategy.reduce(tf.distribute.ReduceOp.SUM, count, axis=None)
            bad = strategy.reduce(tf.distribute.ReduceOp.SUM, bad, axis=None)
            state.record_step(loss, count, bad)

        return train_step

    def predict(self, predict_fn, split):
        """Runs the model over a whole split (no dropped remainder), in manifest order."""
        return self.task.predict(predict_fn, split, log=self.log if self.config.progress else None)

    # --- checkpoints ----------------------------------------------------------------------------

    def _restore(self, checkpoint, manager):
        """Restores the latest checkpoint; returns its path, or None for a fresh start.

        Non-chief workers restore from the chief's directory (a shared file system, see BUILD.md,
        "Several machines"), so every worker starts from the same state; they save into their own
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
        try:
            return manager.save(checkpoint_number=step)
        except (OSError, tf.errors.OpError) as e:  # a full or read-only disk: the user's --model_dir
            for temp in glob.glob(os.path.join(manager.directory, f"ckpt-{step}_temp*")):
                if os.path.isdir(temp):
                    shutil.rmtree(temp, ignore_errors=True)
                else:
                    os.unlink(temp)
            raise CheckpointWriteError(
                f"--model_dir={self.config.model_dir}: cannot save the checkpoint of step {step} in "
                f"{manager.directory} ({_one_line(e)}); last good checkpoint: "
                f"{manager.latest_checkpoint or 'none'}") from None


def _unless_empty(count, loss_and_grads, variables):
    """`loss_and_grads()`, or a zero loss and zero gradients when this replica's batch is empty.

    Replicas get empty batches at the end of an uneven epoch: a multi-worker strategy feeds a worker
    whose data ran out empty batches until every worker's has (tf.data service workers split an epoch
    unevenly), and a batch smaller than the replica count leaves some replicas none. The model is not
    run on them (a convolution over zero frames fails); they still take part in the gradient all-reduce.
    The gradients keep their kinds (None, dense, IndexedSlices), so the optimizer update is unchanged.
    """
    kinds = []  # per variable: None, "dense" or the IndexedSlices' (values, indices, dense_shape) dtypes
    loss_dtype = []  # both noted while `run` is traced (tf.cond traces it before `skip`)

    def run():
        loss, grads = loss_and_grads()
        kinds[:] = [None if g is None else
                    (g.values.dtype, g.indices.dtype, g.dense_shape.dtype) if isinstance(g, tf.IndexedSlices) else
                    "dense" for g in grads]
        loss_dtype[:] = [loss.dtype]
        return loss, [g for g in grads if g is not None]

    def skip():
        zeros = []
        for v, kind in zip(variables, kinds):
            shape = list(v.shape)
            if kind == "dense":
                zeros.append(tf.zeros(shape, v.dtype))
            elif kind is not None:
                values, indices, dense_shape = kind
                zeros.append(tf.IndexedSlices(tf.zeros([0, *shape[1:]], values), tf.zeros([0], indices),
                                              tf.constant(shape, dense_shape)))
        return tf.zeros([], loss_dtype[0]), zeros

    loss, present = tf.cond(count > 0, run, skip)
    present = iter(present)
    return loss, [None if kind is None else next(present) for kind in kinds]


class _LoopState:
    """The loop's bookkeeping as plain variables (checkpointed with the model): step, epoch, data
    position, early-stopping state, the epoch's running loss (so a resumed epoch reports the same loss
    as an uninterrupted one) and the history. They live outside the strategy scope: read and written
    by the Python loop and the train step's cross-replica part only (and a string variable could not
    be mirrored across workers). `first_bad_step` is not checkpointed: it only carries a non-finite
    step from the graph to the next check."""

    CHECKPOINTED = ("global_step", "epoch", "step_in_epoch", "best_value", "bad_epochs", "finished",
                    "epoch_loss_sum", "epoch_loss_count", "history")

    @classmethod
    def create(cls, lower_is_better):
        self = cls()
        for name in ("global_step", "epoch", "step_in_epoch", "bad_epochs", "finished", "epoch_loss_count"):
            setattr(self, name, tf.Variable(0, dtype=tf.int64, trainable=False, name=name))
        self.best_value = tf.Variable(np.inf if lower_is_better else -np.inf, dtype=tf.float64,
                                      trainable=False, name="best_value")
        self.epoch_loss_sum = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="epoch_loss_sum")
        self.history = tf.Variable("[]", dtype=tf.string, trainable=False, name="history")
        self.first_bad_step = tf.Variable(-1, dtype=tf.int64, trainable=False, name="first_bad_step")
        self.first_bad_loss = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="first_bad_loss")
        return self

    def checkpointed(self) -> dict:
        return {name: getattr(self, name) for name in self.CHECKPOINTED}

    def record_step(self, loss, count, bad):
        """In the train step's graph: count the step, add its loss, remember the first bad step."""
        step = self.global_step.assign_add(1)
        self.step_in_epoch.assign_add(1)
        loss = tf.cast(loss, tf.float64)
        count64 = tf.cast(count, tf.int64)
        self.epoch_loss_sum.assign_add(loss * tf.cast(count64, tf.float64))
        self.epoch_loss_count.assign_add(count64)
        is_bad = tf.logical_or(tf.logical_not(tf.math.is_finite(loss)), bad > 0)
        first = tf.logical_and(is_bad, self.first_bad_step < 0)
        self.first_bad_step.assign(tf.where(first, step, self.first_bad_step))
        self.first_bad_loss.assign(tf.where(first, loss, self.first_bad_loss))

    def next_epoch(self):
        self.epoch.assign_add(1)
        self.step_in_epoch.assign(0)
        self.epoch_loss_sum.assign(0.0)
        self.epoch_loss_count.assign(0)


class _Checkpoints:
    """The run's checkpoint (last K, with optimizer and loop state) and best-model managers."""

    def __init__(self, write_dir, model, optimizer, state, keep):
        self.checkpoint = tf.train.Checkpoint(
            model=model, optimizer=optimizer, seed_generators=seed_generator_states(model), **state.checkpointed()
        )
        self.manager = tf.train.CheckpointManager(self.checkpoint, os.path.join(write_dir, "checkpoints"),
                                                  max_to_keep=keep)
        self.best_checkpoint = tf.train.Checkpoint(model=model)
        self.best_manager = tf.train.CheckpointManager(self.best_checkpoint, os.path.join(write_dir, "best"),
                                                       max_to_keep=1)


class _Window:
    """What the loop reads from the graph at each check (every --log_every_steps, before every
    checkpoint, at epoch end): examples seen, the mean loss since the last log, non-finite steps."""

    def __init__(self, state, t0, skip):
        self.state, self.t0, self.skip = state, t0, skip
        self.start_count = int(state.epoch_loss_count)
        self.examples = 0
        self._sum, self._count = float(state.epoch_loss_sum.numpy()), self.start_count

    def check(self, epoch, manager):
        """Raises `TrainingError` naming the first non-finite step since the last check."""
        self.examples = int(self.state.epoch_loss_count) - self.start_count
        bad_step = int(self.state.first_bad_step)
        if bad_step >= 0:
            loss = float(self.state.first_bad_loss.numpy())
            what = f"the loss became {loss}" if not math.isfinite(loss) else (
                f"the gradients became non-finite (loss {loss})")
            raise TrainingError(
                f"{what} at step {bad_step} (epoch {epoch + 1}); training stopped and nothing from this step "
                f"on was saved. Last good checkpoint: {manager.latest_checkpoint or 'none'}. Lower "
                f"--learning_rate or check the data."
            )

    def take_loss(self):
        """The mean training loss since the previous call."""
        total, count = float(self.state.epoch_loss_sum.numpy()), int(self.state.epoch_loss_count)
        loss = (total - self._sum) / max(count - self._count, 1)
        self._sum, self._count = total, count
        return loss


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
