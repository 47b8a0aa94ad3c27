"""Fixtures for the export tests: tiny trained-model dirs built directly in Python, and their exports.

A model dir here is what `load_for_export` reads from a bin/train run — `model.keras`,
`tfsent_config.json`, `vocab.txt` (text models) and `flags.txt` — without a training run: the weights
are the initial random ones, which is all the export path needs (it must reproduce the model, whatever
its weights). Window 1 s, hop 0.5 s keep long-audio tests cheap.
"""

import dataclasses
import importlib.util
import json
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = os.path.dirname(os.path.abspath(__file__))
CLASSES = ["neutral", "happy", "sad", "angry"]
WORDS = ["오늘", "정말", "행복", "해요", "화가", "나요", "슬퍼", "요", "기분", "좋아", "너무", "싫어", "네", "아니요",
         ",", ".", "!", "?"]
SEQUENCE_LENGTH = 12

# family → (registry name, feature settings, builder kwargs beyond the common ones, task)
FAMILIES = {
    "demo_fusion": ("demo_fusion", {"kind": "log_mel", "n_mels": 16},
                    {"filters": 8, "num_layers": 2, "embedding_dim": 8, "hidden": 8, "aux_heads": True},
                    "classification"),
    "conv1d_mel": ("conv1d_mel", {"kind": "mfcc", "n_mels": 20, "n_mfcc": 13},
                   {"filters": 8, "num_layers": 2, "hidden": 8}, "classification"),
    "text_cnn": ("text_cnn", {"kind": "log_mel", "n_mels": 16},
                 {"embedding_dim": 8, "filters": 8, "hidden": 8}, "classification"),
    "arousal_regressor": ("arousal_regressor", {"kind": "log_mel_delta", "n_mels": 16},
                          {"conv_channels": (4, 4, 6, 6), "num_layers": 1, "num_heads": 2,
                           "intermediate_dim": 16, "gru_units": 8, "gru_layers": 1}, "arousal"),
}


def load_helper(name):
    """Imports `tests/export/<name>.py` (pytest runs with --import-mode=importlib: no package path)."""
    spec = importlib.util.spec_from_file_location(f"tfsent_export_tests_{name}", os.path.join(HERE, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_model_dir(path, family, *, max_seconds=1.0):
    """Writes a tiny untrained model dir for `family`; returns (path, config, model)."""
    import keras

    from tfsent.audio.features import FeatureConfig
    from tfsent.models import registry
    from tfsent.text.tokenizer import SPECIAL_TOKENS
    from tfsent.tasks import EmotionTask, TaskConfig

    name, feature_kwargs, kwargs, task = FAMILIES[family]
    os.makedirs(path, exist_ok=True)
    feature = FeatureConfig(sample_rate=16000, n_fft=400, hop_length=160, **feature_kwargs)
    entry = registry.get(name)
    vocabulary = None
    if entry.modality in ("text", "multimodal"):
        vocabulary = os.path.join(path, "vocab.txt")
        with open(vocabulary, "w", encoding="utf-8") as f:
            f.write("\n".join(list(SPECIAL_TOKENS) + WORDS) + "\n")
    config = TaskConfig(model=name, model_kwargs=dict(kwargs), task=task, classes=list(CLASSES),
                        feature=feature, max_seconds=max_seconds,
                        sequence_length=SEQUENCE_LENGTH, vocabulary=vocabulary)
    keras.utils.set_random_seed(1)
    model = EmotionTask(config, None, {}).build_model()
    model.save(os.path.join(path, "model.keras"))
    config.save(path)
    with open(os.path.join(path, "flags.txt"), "w", encoding="utf-8") as f:
        f.write(f"--model={name}\n--max_seconds={max_seconds}\n")
    with open(os.path.join(path, "train_summary.json"), "w", encoding="utf-8") as f:
        json.dump({"selection_metric": "macro_f1", "best_value": 0.5, "epochs_run": 1,
                   "valid_metrics": {"num_examples": 8, "accuracy": 0.5, "macro_f1": 0.5}}, f)
    return path, config, model


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory):
    """family → model dir (tiny, untrained) for every family in FAMILIES."""
    root = tmp_path_factory.mktemp("model_dirs")
    return {family: make_model_dir(str(root / family), family)[0] for family in FAMILIES}


@pytest.fixture(scope="session")
def exports(model_dirs, tmp_path_factory):
    """family → exported version dir (EXPORTS/<family>/1), window 1 s, hop 0.5 s."""
    from tfsent.export.saved_model import export_model_dir

    root = tmp_path_factory.mktemp("exports")
    return {family: export_model_dir(path, str(root), hop_seconds=0.5) for family, path in model_dirs.items()}


@pytest.fixture(scope="session")
def loaded(exports):
    """family → `tf.saved_model.load` of its export."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    return {family: tf.saved_model.load(path) for family, path in exports.items()}


@pytest.fixture(scope="session")
def standin_module():
    return load_helper("standin_server")


def noise(seconds, seed=0, rate=16000):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * (200 + 100 * seed) * t)
    return (tone + 0.05 * rng.standard_normal(t.shape)).astype(np.float32)


@pytest.fixture(scope="session")
def kit():
    """The helpers above, for test modules (importlib import mode: no `from conftest import ...`)."""
    import types

    return types.SimpleNamespace(noise=noise, make_model_dir=make_model_dir, load_helper=load_helper,
                                 FAMILIES=FAMILIES, CLASSES=CLASSES, SEQUENCE_LENGTH=SEQUENCE_LENGTH)
