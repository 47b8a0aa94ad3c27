"""bin/train: train a registered model on a prepared manifest.

    bin/train --flagfile=configs/demo.flags [--manifest=M] [--model=NAME] [--model_dir=DIR] ...

Flags on the command line override the flagfile. Re-running the same command with the same
--model_dir resumes from the last checkpoint. `bin/train --list_models` lists the models.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys

from absl import flags

from tfsent.cli import train_flags
from tfsent.core.errors import UsageError
from tfsent.core.run_dir import FLAGS_FILE, RUN_INFO_FILE, RunDir

train_flags.define_train_flags()
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise UsageError(f"unexpected positional arguments: {' '.join(argv[1:])} (flags look like --name=value)")
    if FLAGS.list_models:
        from tfsent.models import registry

        for name in registry.names():
            print(name)
        return 0
    # Cheap checks first: a mistake costs no TensorFlow start-up.
    for required in ("manifest", "model", "model_dir"):
        if not FLAGS[required].value:
            raise UsageError(f"--{required} is required (put it in the flagfile or on the command line)")
    if not os.path.isfile(FLAGS.manifest):
        raise UsageError(f"--manifest={FLAGS.manifest}: no such file (bin/prepare writes OUT/manifest.csv)")
    from tfsent.corpus.manifest import read_manifest

    frame, sidecar = read_manifest(FLAGS.manifest)
    _check_classes(sidecar)
    _check_training_set(frame, sidecar)
    augment_ids = _augment_class_ids(list(sidecar["classes"])) if FLAGS.augment_classes else None
    # Logical CPU devices must be configured before anything initialises TensorFlow's devices.
    from tfsent.training.distribution import configure_devices, make_strategy

    configure_devices(FLAGS.cpu_devices)
    from tfsent.models import registry

    if FLAGS.model not in registry.names():
        raise UsageError(f"--model={FLAGS.model}: unknown model {FLAGS.model!r}; known models: "
                         f"{', '.join(registry.names())} (bin/train --list_models)")
    entry = registry.get(FLAGS.model)
    train_flags.modality_dropout(FLAGS.modality_dropout)  # a bad value fails before anything is written
    if entry.modality in ("text", "multimodal"):
        from tfsent.corpus.training_set import check_training_text

        _warn(check_training_text(frame, FLAGS.train_split))

    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(FLAGS.seed)
    if FLAGS.deterministic:
        tf.config.experimental.enable_op_determinism()
    if FLAGS.mixed_precision != "off":
        keras.mixed_precision.set_global_policy(FLAGS.mixed_precision)
    strategy = make_strategy(FLAGS.strategy)

    # Augmentation settings are checked before anything is written into the model dir.
    pipeline_overrides = _pipeline_overrides(augment_ids) if entry.kind != "sklearn" else {}
    if FLAGS.robust_augment and entry.kind != "sklearn":
        pipeline_overrides["robust_augment"] = _robust_augment(frame, sidecar)
    run = _make_run_dir(FLAGS.model_dir)
    from tfsent.training.distribution import worker_dir

    # Under multi_worker only the chief writes the model dir; the others write a scratch copy of
    # what they need (and the trainer removes it when they finish).
    write_dir = worker_dir(strategy, run.path)
    from tfsent.core.locks import DirLock

    DirLock(write_dir, "--model_dir").acquire()  # one run per model dir; released when the process exits
    task_config = _task_config(entry, frame, sidecar, run, write_dir)
    _write_run_info(RunDir(write_dir))

    from tfsent.tasks import class_weights_balanced, make_task

    if FLAGS.class_weights == "balanced" and task_config.task == "classification":
        train = frame[frame["split"].astype(str) == FLAGS.train_split]
        ids = train["emotion"].map({c: i for i, c in enumerate(task_config.classes)}).to_numpy()
        pipeline_overrides["class_weights"] = class_weights_balanced(ids, len(task_config.classes))
    task = make_task(task_config, frame, sidecar, **pipeline_overrides)
    if entry.kind == "sklearn":
        return _train_classic(task, run)
    return _train_keras(task, run, strategy)


def _make_run_dir(path):
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"--model_dir={path} is a file, not a directory")
    try:
        return RunDir(path).makedirs()
    except OSError as e:
        raise UsageError(f"--model_dir={path}: cannot create it ({e.strerror})") from None


def _train_keras(task, run, strategy):
    from tfsent.training.trainer import Trainer, TrainingError

    try:
        summary = Trainer(task, _trainer_config(run.path), strategy, run_flags=train_flags.resolved_flags()).train()
    except TrainingError as e:
        print(f"bin/train: error: {e}", file=sys.stderr, flush=True)
        return 1
    print(f"model: {run.keras_model_path}")
    print(f"best validation {summary['selection_metric']}: {summary['best_value']:.4f} "
          f"after {summary['epochs_run']} epochs")
    _print_next_steps(run)
    return 0


def _train_classic(task, run):
    from tfsent.training.classic import train_classic

    summary = train_classic(task, run.path, train_split=FLAGS.train_split, valid_split=FLAGS.valid_split)
    metrics = summary.get("valid_metrics")
    print(f"model: {run.sklearn_model_path}")
    if metrics:
        print(f"validation ({FLAGS.valid_split}): " + " ".join(
            f"{k} {metrics[k]:.4f}" for k in ("accuracy", "unweighted_accuracy", "macro_f1") if k in metrics))
    _print_next_steps(run)
    return 0


def _print_next_steps(run):
    print(f"next: bin/evaluate --model_dir={run.path}   then   bin/export --model_dir={run.path} --export_dir=DIR")


def _trainer_config(model_dir):
    """The loop settings, flag by flag."""
    from tfsent.training.trainer import TrainerConfig

    return TrainerConfig(
        model_dir=model_dir, epochs=FLAGS.epochs, batch_size=FLAGS.batch_size,
        steps_per_epoch=FLAGS.steps_per_epoch, learning_rate=FLAGS.learning_rate, optimizer=FLAGS.optimizer,
        weight_decay=FLAGS.weight_decay, lr_schedule=FLAGS.lr_schedule, warmup_steps=FLAGS.warmup_steps,
        clipnorm=FLAGS.clipnorm, freeze_encoder=FLAGS.freeze_encoder,
        trainable_encoder_layers=FLAGS.trainable_encoder_layers,
        freeze_feature_encoder=FLAGS.freeze_feature_encoder, layerwise_lr_decay=FLAGS.layerwise_lr_decay,
        early_stopping_patience=FLAGS.early_stopping_patience, selection_metric=FLAGS.selection_metric,
        seed=FLAGS.seed, mixed_precision=FLAGS.mixed_precision, jit_compile=FLAGS.jit_compile,
        log_every_steps=FLAGS.log_every_steps, checkpoint_every_steps=FLAGS.checkpoint_every_steps,
        keep_checkpoints=FLAGS.keep_checkpoints, progress=FLAGS.progress, train_split=FLAGS.train_split,
        valid_split=FLAGS.valid_split, tensorboard_audio_examples=FLAGS.tensorboard_audio_examples,
        modality_ablation=FLAGS.modality_ablation, data_service=FLAGS.data_service,
    )


def _check_classes(sidecar):
    """--classes is a check: the manifest's class set must be the one the flagfile expects."""
    if not FLAGS.classes:
        return
    from tfsent.corpus.emotions import CLASS_SETS

    expected = list(CLASS_SETS[FLAGS.classes])
    actual = list(sidecar.get("classes") or [])
    if actual != expected:
        raise UsageError(
            f"--classes={FLAGS.classes} expects the classes {expected}, but --manifest={FLAGS.manifest} "
            f"holds {actual} (manifest.json); prepare the manifest with bin/prepare --classes={FLAGS.classes} "
            f"or change --classes (the class set always comes from the manifest)"
        )


def _check_training_set(frame, sidecar):
    """Degenerate training sets and paths outside the corpus fail here, before TensorFlow starts and
    before anything is written into the model dir."""
    from tfsent.corpus.manifest import confined_paths
    from tfsent.corpus.training_set import check_training_set

    confined_paths(frame, sidecar.get("data_dir", ""))
    _warn(check_training_set(frame, sidecar, FLAGS.train_split, FLAGS.task))


def _warn(warnings):
    for warning in warnings:
        print(f"WARNING: {warning}", file=sys.stderr, flush=True)


def _feature_config():
    from tfsent.audio.features import FeatureConfig

    db_ref = FLAGS.db_ref
    try:
        db_ref = float(db_ref)
    except ValueError:
        if db_ref != "max":
            raise UsageError(f"--db_ref must be 'max' or a number, got {db_ref!r}") from None
    try:
        return FeatureConfig(
            kind=FLAGS.features, sample_rate=FLAGS.sample_rate, n_fft=FLAGS.n_fft,
            win_length=FLAGS.win_length, hop_length=FLAGS.hop_length, n_mels=FLAGS.n_mels,
            fmin=FLAGS.fmin, fmax=FLAGS.fmax, mel_scale=FLAGS.mel_scale, n_mfcc=FLAGS.n_mfcc,
            db_ref=db_ref, top_db=FLAGS.top_db, max_frames=FLAGS.max_frames,
        )
    except ValueError as e:  # the feature flags' values, checked by FeatureConfig
        raise UsageError(f"feature flags: {e}") from None


def _task_config(entry, frame, sidecar, run, write_dir):
    from tfsent.models import registry
    from tfsent.tasks import TaskConfig

    feature = _feature_config()
    model_kwargs = train_flags.parse_key_values(FLAGS.model_kwargs, "model_kwargs")
    try:
        registry.split_kwargs(FLAGS.model, {}, model_kwargs)  # unknown --model_kwargs keys fail here
    except ValueError as e:
        raise UsageError(str(e)) from None
    init_from = {k: os.path.abspath(str(v))
                 for k, v in train_flags.parse_key_values(FLAGS.init_from, "init_from").items()}
    vocabulary = None
    if entry.kind != "sklearn" and entry.modality in ("text", "multimodal") and not FLAGS.text_encoder:
        vocabulary = _vocabulary(frame, RunDir(write_dir))
    config = TaskConfig(
        model=FLAGS.model,
        model_kwargs=model_kwargs,
        task=FLAGS.task,
        classes=list(sidecar["classes"]),
        feature=feature,
        max_seconds=FLAGS.max_seconds,
        sequence_length=FLAGS.sequence_length,
        vocabulary=vocabulary,
        text_encoder=os.path.abspath(FLAGS.text_encoder) if FLAGS.text_encoder else None,
        audio_encoder=os.path.abspath(FLAGS.audio_encoder) if FLAGS.audio_encoder else None,
        manifest=os.path.abspath(FLAGS.manifest),
        init_from=init_from,
        # Recorded only where it applies, so one flagfile serves the fusion and single-modality runs.
        aux_loss_weight=FLAGS.aux_loss_weight if entry.modality == "multimodal" else 0.0,
        modality_dropout=train_flags.modality_dropout(FLAGS.modality_dropout) if entry.modality == "multimodal"
        else {},
        speaker_norm=FLAGS.speaker_norm,
    )
    if run.is_run():
        old = {"aux_loss_weight": 0.0, "modality_dropout": {}, "speaker_norm": False,
               **run.read_config()}  # runs from before
        new = config.to_dict()
        changed = [k for k in ("model", "model_kwargs", "task", "classes", "feature", "sequence_length",
                               "aux_loss_weight", "modality_dropout", "speaker_norm")
                   if old.get(k) != new.get(k)]
        if changed:
            raise UsageError(
                f"--model_dir={run.path} holds a run with different {', '.join(changed)}; "
                f"use a new --model_dir (or delete this one) to start over"
            )
    config.save(write_dir)
    return config


def _vocabulary(frame, run):
    """The run's WordPiece vocabulary, copied into (or trained in) the model dir."""
    target = run.vocab_path
    if FLAGS.vocabulary:
        if not os.path.isfile(FLAGS.vocabulary):
            raise UsageError(f"--vocabulary={FLAGS.vocabulary}: no such file")
        if os.path.abspath(FLAGS.vocabulary) != os.path.abspath(target):
            from tfsent.core import files

            with open(FLAGS.vocabulary, "rb") as f:
                files.write_bytes(target, f.read())
        return os.path.abspath(target)
    if not os.path.exists(target):
        from tfsent.text.vocab import train_wordpiece_vocabulary, write_vocabulary

        texts = frame.loc[frame["split"].astype(str) == FLAGS.train_split, "text"].fillna("").astype(str).tolist()
        print(f"training a {FLAGS.vocab_size}-token WordPiece vocabulary on {len(texts)} training sentences")
        tokens = train_wordpiece_vocabulary(texts, FLAGS.vocab_size)
        write_vocabulary(tokens, target)
    return os.path.abspath(target)


def _pipeline_overrides(augment_ids):
    overrides = {
        "batch_size": FLAGS.batch_size,
        "seed": FLAGS.seed,
        "cache_audio": FLAGS.cache_audio,
        "snapshot_dir": FLAGS.snapshot_dir,
        "balanced_sampling": FLAGS.balanced_sampling,
        "augment_domain": FLAGS.augment_domain,
        "wav_only": bool(FLAGS.data_service),  # tf.data service workers run no Python
    }
    if FLAGS.data_service and FLAGS.cache_audio:
        raise UsageError("--cache_audio keeps clips in this process's memory, which tf.data service workers "
                         "cannot read: use --snapshot_dir on a filesystem every worker reads")
    if FLAGS.audio_augment:
        from tfsent.audio.augment import AudioAugmentConfig

        overrides["audio_augment"] = _dataclass_from_flag(AudioAugmentConfig, "audio_augment")
    if FLAGS.text_augment:
        from tfsent.text.augment import TextAugmentConfig

        overrides["text_augment"] = _dataclass_from_flag(TextAugmentConfig, "text_augment")
    if augment_ids:
        ids = augment_ids
        if "audio_augment" not in overrides and "text_augment" not in overrides:
            print("warning: --augment_classes is set but neither --audio_augment nor --text_augment: "
                  "nothing is augmented", file=sys.stderr, flush=True)
        if "audio_augment" in overrides:
            overrides["audio_augment"] = dataclasses.replace(overrides["audio_augment"], classes=ids)
        if "text_augment" in overrides:
            overrides["text_augment"] = dataclasses.replace(overrides["text_augment"], class_ids=ids)
    if "audio_augment" in overrides:
        overrides["audio_augment"] = dataclasses.replace(
            overrides["audio_augment"], sample_rate=FLAGS.sample_rate)
    return overrides


def _robust_augment(frame, sidecar):
    """--robust_augment: the config, with its babble and impulse-response banks built once from --seed."""
    from tfsent.data.corruptions import RobustAugment, RobustAugmentConfig

    config = dataclasses.replace(_dataclass_from_flag(RobustAugmentConfig, "robust_augment"),
                                 sample_rate=FLAGS.sample_rate)
    return RobustAugment.build(config, frame, sidecar, FLAGS.seed, split=FLAGS.train_split,
                               max_samples=int(round(FLAGS.max_seconds * FLAGS.sample_rate)))


def _augment_class_ids(classes):
    """Class ids of --augment_classes. A known emotion the manifest lacks is skipped with a warning
    (the S2 flagfiles name 5 classes; a 4-class manifest has no surprise); a typo is an error."""
    from tfsent.corpus.emotions import CLASS_SETS

    known = {c for names in CLASS_SETS.values() for c in names}
    typos = [c for c in FLAGS.augment_classes if c not in known]
    if typos:
        raise UsageError(f"--augment_classes: {typos} are not emotion names (known: {sorted(known)})")
    absent = [c for c in FLAGS.augment_classes if c not in classes]
    present = [c for c in FLAGS.augment_classes if c in classes]
    if not present:
        raise UsageError(f"--augment_classes={','.join(FLAGS.augment_classes)}: none of these is in the "
                         f"manifest's classes {classes}")
    if absent:
        print(f"warning: --augment_classes: {absent} not in the manifest's classes {classes}; "
              f"augmenting {present} only", file=sys.stderr, flush=True)
    return tuple(classes.index(c) for c in present)


def _dataclass_from_flag(cls, flag_name):
    """A config dataclass from key=value pairs; `preset=NAME` starts from `cls.NAME()` (a seed recipe)."""
    values = train_flags.parse_key_values(FLAGS[flag_name].value, flag_name)
    preset = values.pop("preset", None)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise UsageError(f"--{flag_name}: unknown setting(s) {', '.join(unknown)}; known: "
                         f"preset, {', '.join(sorted(names))}")
    presets = sorted(n for n in dir(cls) if n.startswith("seed") and callable(getattr(cls, n)))
    if preset is not None and str(preset) not in presets:
        raise UsageError(f"--{flag_name}: unknown preset {preset!r}; known: {', '.join(presets)}")
    try:  # the dataclass checks the values (ranges, types)
        return cls(**values) if preset is None else getattr(cls, str(preset))(**values)
    except (ValueError, TypeError) as e:
        raise UsageError(f"--{flag_name}: {e}") from None


def _write_run_info(run):
    import keras
    import tensorflow as tf

    import tfsent

    versions = {"tfsent": tfsent.__version__, "tensorflow": tf.__version__, "keras": keras.__version__}
    try:
        import keras_hub

        versions["keras_hub"] = keras_hub.__version__
    except ImportError:
        pass
    with open(FLAGS.manifest, "rb") as f:
        manifest_sha = hashlib.sha256(f.read()).hexdigest()
    info = {
        "command": " ".join(sys.argv),
        "flags": train_flags.resolved_flags(),
        "versions": versions,
        "manifest": os.path.abspath(FLAGS.manifest),
        "manifest_sha256": manifest_sha,
        "git_commit": _git_commit(),
    }
    run.write_text(RUN_INFO_FILE, json.dumps(info, indent=2, ensure_ascii=False, default=str))
    run.write_text(FLAGS_FILE, train_flags.flagfile_text())


def _git_commit():
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def run():
    from tfsent.cli.common import run_main

    run_main(main, "train", help_groups=train_flags.help_groups)


if __name__ == "__main__":
    run()
