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
import shutil
import subprocess
import sys

from absl import app, flags

from tfsent.training import flags as train_flags

train_flags.define_train_flags()
FLAGS = flags.FLAGS


class UsageError(Exception):
    """A problem with the command line; printed as one line, exit code 2."""


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
    augment_ids = _augment_class_ids(list(sidecar["classes"])) if FLAGS.augment_classes else None
    # Logical CPU devices must be configured before anything initialises TensorFlow's devices.
    from tfsent.training.distribution import configure_devices, make_strategy

    configure_devices(FLAGS.cpu_devices)
    from tfsent.models import registry

    entry = registry.get(FLAGS.model)

    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(FLAGS.seed)
    if FLAGS.deterministic:
        tf.config.experimental.enable_op_determinism()
    if FLAGS.mixed_precision != "off":
        keras.mixed_precision.set_global_policy(FLAGS.mixed_precision)
    strategy = make_strategy(FLAGS.strategy)

    model_dir = FLAGS.model_dir
    if entry.kind == "sklearn":
        os.makedirs(model_dir, exist_ok=True)
        return _train_classic(entry, frame, sidecar, model_dir)
    # Augmentation settings are checked before anything is written into the model dir.
    pipeline_overrides = _pipeline_overrides(augment_ids)
    os.makedirs(model_dir, exist_ok=True)

    from tfsent.training.distribution import worker_dir

    # Under multi_worker only the chief writes the model dir; the others write a scratch copy of
    # what they need (and the trainer removes it when they finish).
    write_dir = worker_dir(strategy, model_dir)
    os.makedirs(write_dir, exist_ok=True)
    task_config = _task_config(entry, frame, sidecar, model_dir, write_dir)
    _write_run_info(write_dir, task_config)

    from tfsent.training.task import EmotionTask, class_weights_balanced
    from tfsent.training.trainer import Trainer, TrainerConfig, TrainingError

    if FLAGS.class_weights == "balanced" and task_config.task == "classification":
        train = frame[frame["split"].astype(str) == FLAGS.train_split]
        ids = train["emotion"].map({c: i for i, c in enumerate(task_config.classes)}).to_numpy()
        pipeline_overrides["class_weights"] = class_weights_balanced(ids, len(task_config.classes))
    task = EmotionTask(task_config, frame, sidecar, **pipeline_overrides)
    trainer_config = TrainerConfig(
        model_dir=model_dir,
        **{f.name: FLAGS[f.name].value for f in dataclasses.fields(TrainerConfig) if f.name != "model_dir"},
    )
    try:
        summary = Trainer(task, trainer_config, strategy).train()
    except TrainingError as e:
        print(f"bin/train: error: {e}", file=sys.stderr, flush=True)
        return 1
    print(f"model: {os.path.join(model_dir, 'model.keras')}")
    print(f"best validation {summary['selection_metric']}: {summary['best_value']:.4f} "
          f"after {summary['epochs_run']} epochs")
    print(f"next: bin/evaluate --model_dir={model_dir}   then   bin/export --model_dir={model_dir} --export_dir=DIR")
    return 0


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


def _task_config(entry, frame, sidecar, model_dir, write_dir):
    from tfsent.audio.features import FeatureConfig
    from tfsent.training.task import TaskConfig

    db_ref = FLAGS.db_ref
    try:
        db_ref = float(db_ref)
    except ValueError:
        if db_ref != "max":
            raise UsageError(f"--db_ref must be 'max' or a number, got {db_ref!r}")
    feature = FeatureConfig(
        kind=FLAGS.features, sample_rate=FLAGS.sample_rate, n_fft=FLAGS.n_fft,
        win_length=FLAGS.win_length, hop_length=FLAGS.hop_length, n_mels=FLAGS.n_mels,
        fmin=FLAGS.fmin, fmax=FLAGS.fmax, mel_scale=FLAGS.mel_scale, n_mfcc=FLAGS.n_mfcc,
        db_ref=db_ref, top_db=FLAGS.top_db, max_frames=FLAGS.max_frames,
    )
    model_kwargs = train_flags.parse_key_values(FLAGS.model_kwargs, "model_kwargs")
    init_from = {k: str(v) for k, v in train_flags.parse_key_values(FLAGS.init_from, "init_from").items()}
    vocabulary = None
    needs_text = entry.modality in ("text", "multimodal") and not FLAGS.text_encoder
    if needs_text:
        vocabulary = _vocabulary(frame, write_dir)
    config = TaskConfig(
        model=FLAGS.model,
        model_kwargs=model_kwargs,
        task=FLAGS.task,
        classes=list(sidecar["classes"]),
        feature=dataclasses.asdict(feature),
        max_seconds=FLAGS.max_seconds,
        sequence_length=FLAGS.sequence_length,
        vocabulary=vocabulary,
        text_encoder=os.path.abspath(FLAGS.text_encoder) if FLAGS.text_encoder else None,
        audio_encoder=os.path.abspath(FLAGS.audio_encoder) if FLAGS.audio_encoder else None,
        manifest=os.path.abspath(FLAGS.manifest),
        init_from=init_from,
    )
    from tfsent.models import registry

    registry.split_kwargs(FLAGS.model, {}, model_kwargs)  # unknown --model_kwargs keys fail here
    previous = os.path.join(model_dir, "tfsent_config.json")
    if os.path.exists(previous):
        with open(previous, encoding="utf-8") as f:
            old = json.load(f)
        new = dataclasses.asdict(config)
        changed = [k for k in ("model", "model_kwargs", "task", "classes", "feature", "sequence_length")
                   if old.get(k) != new.get(k)]
        if changed:
            raise UsageError(
                f"--model_dir={model_dir} holds a run with different {', '.join(changed)}; "
                f"use a new --model_dir (or delete this one) to start over"
            )
    config.save(write_dir)
    return config


def _vocabulary(frame, model_dir):
    """The run's WordPiece vocabulary, copied into (or trained in) the model dir."""
    target = os.path.join(model_dir, "vocab.txt")
    if FLAGS.vocabulary:
        if not os.path.isfile(FLAGS.vocabulary):
            raise UsageError(f"--vocabulary={FLAGS.vocabulary}: no such file")
        if os.path.abspath(FLAGS.vocabulary) != os.path.abspath(target):
            shutil.copyfile(FLAGS.vocabulary, target + ".tmp")
            os.replace(target + ".tmp", target)
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
    }
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
    if preset is None:
        return cls(**values)
    presets = sorted(n for n in dir(cls) if n.startswith("seed") and callable(getattr(cls, n)))
    if str(preset) not in presets:
        raise UsageError(f"--{flag_name}: unknown preset {preset!r}; known: {', '.join(presets)}")
    return getattr(cls, str(preset))(**values)


def _write_run_info(model_dir, task_config):
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
    _atomic_write(os.path.join(model_dir, "run_info.json"), json.dumps(info, indent=2, ensure_ascii=False, default=str))
    _atomic_write(os.path.join(model_dir, "flags.txt"), train_flags.flagfile_text())


def _git_commit():
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _atomic_write(path, text):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _train_classic(entry, frame, sidecar, model_dir):
    from tfsent.models.classic import fit_and_score

    model_kwargs = train_flags.parse_key_values(FLAGS.model_kwargs, "model_kwargs")
    result = fit_and_score(entry, frame, sidecar, model_dir=model_dir,
                           train_split=FLAGS.train_split, valid_split=FLAGS.valid_split,
                           model_kwargs=model_kwargs)
    print(json.dumps(result.get("valid_metrics", result), indent=2, ensure_ascii=False, default=str)[:2000])
    return 0


def run():
    def _main(argv):
        try:
            return main(argv)
        except (UsageError, ValueError, FileNotFoundError, KeyError) as e:
            msg = e.args[0] if isinstance(e, KeyError) and e.args else e
            print(f"bin/train: error: {msg}", file=sys.stderr)
            return 2

    app.run(_main)


if __name__ == "__main__":
    run()
