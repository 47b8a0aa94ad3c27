"""Fixtures for the evaluation tests: one tiny `demo_fusion` run dir on the session's `tiny_corpus`
whose text branch is cut (every weight of the nested text branch zero and frozen, so the text changes
nothing), fitted in process for a few epochs on the training split so its audio side is far above
chance there (a Keras `fit`, not bin/train: what is tested is how a run is scored)."""

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FIT_EPOCHS = 25
MAX_SECONDS = 4.0  # longer than every tiny_corpus clip: evaluation and serving see whole clips


def cut_text_branch(model):
    """Zeroes every weight of the nested sub-models that take only text; returns their names."""
    import keras

    from tfsent.core import inputs

    cut = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            names = inputs.input_names(layer)
            if inputs.takes_text(names) and not inputs.takes_audio(names):
                for weight in layer.weights:
                    weight.assign(keras.ops.zeros_like(weight))
                layer.trainable = False
                cut.append(layer.name)
    return cut


def _make_fusion_run(path, manifest, *, cut_text=True, seed=5, fit_epochs=0):
    """A `demo_fusion` run dir (model.keras, tfsent_config.json, vocab.txt) over `manifest`, fitted
    `fit_epochs` epochs on its training split."""
    import keras

    from tfsent.audio.features import FeatureConfig
    from tfsent.corpus.manifest import read_manifest
    from tfsent.tasks import EmotionTask, TaskConfig
    from tfsent.text.vocab import train_wordpiece_vocabulary, write_vocabulary

    os.makedirs(path, exist_ok=True)
    frame, sidecar = read_manifest(manifest)
    vocabulary = os.path.join(path, "vocab.txt")
    write_vocabulary(train_wordpiece_vocabulary(frame["text"].fillna("").astype(str).tolist(), 300), vocabulary)
    # No dropout: the fit below must reliably learn the 16 training rows from their audio.
    kwargs = {"filters": 8, "num_layers": 1, "embedding_dim": 8, "hidden": 8, "dropout": 0.0, "branch_dropout": 0.0,
              "modality_dropout": 0.0}
    config = TaskConfig(model="demo_fusion", model_kwargs=kwargs,
                        task="classification", classes=list(sidecar["classes"]),
                        feature=FeatureConfig(kind="log_mel", n_mels=16), max_seconds=MAX_SECONDS,
                        sequence_length=16, vocabulary=vocabulary, manifest=manifest)
    keras.utils.set_random_seed(seed)
    model = EmotionTask(config, None, {}).build_model()
    cut = cut_text_branch(model) if cut_text else []
    if cut_text and not cut:
        raise AssertionError("demo_fusion has no nested text-only branch to cut")
    if fit_epochs:
        _fit(model, EmotionTask(config, frame, sidecar, batch_size=8, seed=seed), fit_epochs)
    model.save(os.path.join(path, "model.keras"))
    config.save(path)
    with open(os.path.join(path, "flags.txt"), "w", encoding="utf-8") as f:
        f.write(f"--model=demo_fusion\n--max_seconds={MAX_SECONDS}\n")
    return path


def _fit(model, task, epochs):
    import keras

    task.use_model(model)
    data = task.build_inputs("train", training=False).map(lambda x, t: (x, {"logits": t["label"]})).cache()
    steps = task.pipeline().max_batches("train", training=False)
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss={"logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)})
    model.fit(data.repeat(), epochs=epochs, steps_per_epoch=steps, shuffle=False, verbose=0)


@pytest.fixture(scope="module")
def cut_fusion_run(tiny_corpus, tmp_path_factory):
    """A tiny demo_fusion run dir whose text branch is cut."""
    return _make_fusion_run(str(tmp_path_factory.mktemp("cut_fusion") / "run"), tiny_corpus["manifest"],
                           fit_epochs=FIT_EPOCHS)


@pytest.fixture(scope="session")
def make_fusion_run():
    """`_make_fusion_run(path, manifest, *, cut_text=True, seed=5, fit_epochs=0)` for test modules
    (pytest's importlib mode: conftest modules are not importable by name)."""
    return _make_fusion_run
