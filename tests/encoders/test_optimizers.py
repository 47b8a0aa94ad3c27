"""Optimisers for fine-tuning encoders: schedules, layer-wise LR decay, freezing."""
import os

import keras
import numpy as np
import pytest

from tfsent.encoders import load_audio_encoder, load_text_encoder
from tfsent.training.optimizers import (
    WarmupSchedule,
    freeze_encoder,
    layerwise_lr_multipliers,
    make_learning_rate_schedule,
    make_optimizer,
    set_trainable,
)

DATA = os.path.join(os.path.dirname(__file__), "data")


def test_warmup_cosine_and_linear():
    cos = make_learning_rate_schedule("cosine", 1e-3, total_steps=110, warmup_steps=10)
    assert isinstance(cos, WarmupSchedule)
    lrs = np.array([float(cos(s)) for s in range(0, 111)])
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert np.all(np.diff(lrs[:10]) > 0) and np.all(np.diff(lrs[10:]) <= 1e-12)
    assert float(cos(60)) == pytest.approx(0.5e-3, rel=1e-5)  # half way down the cosine
    lin = make_learning_rate_schedule("linear", 1e-3, total_steps=110, warmup_steps=10)
    assert float(lin(35)) == pytest.approx(0.75e-3, rel=1e-5)
    assert float(lin(110)) == pytest.approx(0.0, abs=1e-12)


def _text_classifier():
    enc = load_text_encoder(os.path.join(DATA, "electra_disc"), sequence_length=8, dropout=0.0)
    out = enc.backbone(enc.backbone.input)["pooled_output"]
    head = keras.layers.Dense(2, name="head")(out)
    return enc, keras.Model(enc.backbone.input, head)


def _step(model, optimizer):
    x = {"token_ids": np.array([[2, 10, 11, 3, 0, 0, 0, 0]] * 2, np.int32),
         "padding_mask": np.array([[1, 1, 1, 1, 0, 0, 0, 0]] * 2, np.int32)}
    import tensorflow as tf
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(keras.ops.square(model(x) - 1.0))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))


def test_layerwise_lr_decay_scales_updates():
    enc, model = _text_classifier()
    mult = layerwise_lr_multipliers(model, 0.5)
    paths = {v.path: v for v in model.trainable_variables}
    top = [p for p in mult if "transformer_layer_1" in p]
    low = [p for p in mult if "transformer_layer_0" in p]
    emb = [p for p in mult if "token_embedding" in p]
    assert mult[top[0]] == 0.5 and mult[low[0]] == 0.25 and mult[emb[0]] == 0.125
    assert not any("head" in p for p in mult)

    # Adam's first step moves each weight by ~lr * multiplier (sign of the gradient).
    opt = make_optimizer("adam", 1e-2, lr_multipliers=mult)
    before = {p: v.numpy().copy() for p, v in paths.items()}
    _step(model, opt)
    def step_size(p):
        return np.abs(paths[p].numpy() - before[p]).max()
    head_kernel = [p for p in paths if p.startswith("head") and p.endswith("kernel")][0]
    top_kernel = [p for p in top if p.endswith("kernel")][0]
    low_kernel = [p for p in low if p.endswith("kernel")][0]
    assert step_size(head_kernel) == pytest.approx(1e-2, rel=1e-3)
    assert step_size(top_kernel) == pytest.approx(0.5e-2, rel=1e-3)
    assert step_size(low_kernel) == pytest.approx(0.25e-2, rel=1e-3)


def test_adamw_excludes_vectors_from_weight_decay():
    enc, model = _text_classifier()
    opt = make_optimizer("adamw", 1e-3, weight_decay=0.1)
    opt.build(model.trainable_variables)
    decayed = [v for v in model.trainable_variables if opt._use_weight_decay(v)]
    kept = [v for v in model.trainable_variables if not opt._use_weight_decay(v)]
    assert decayed and all(v.name in ("kernel", "embeddings", "position_embeddings")
                           for v in decayed)
    assert kept and all(v.name in ("bias", "gamma", "beta") for v in kept)


def test_freeze_text_encoder_keeps_top_layers():
    enc, model = _text_classifier()
    n_all = len(model.trainable_variables)
    frozen = freeze_encoder(model, trainable_layers=1)
    assert "transformer_layer_0" in frozen and "token_embedding" in frozen
    assert "transformer_layer_1" not in frozen
    trainable = {v.path.split("/")[0] for v in model.trainable_variables}
    assert trainable == {"transformer_layer_1", "pooled_dense", "head"} - {"pooled_dense"}
    assert len(model.trainable_variables) < n_all
    set_trainable(model, [r"transformer_layer_\d+", "token_embedding"], True)
    assert "token_embedding" in {v.path.split("/")[0] for v in model.trainable_variables}
    with pytest.raises(ValueError, match="no layer matches"):
        set_trainable(model, ["nothing_here"], False)


def test_freeze_audio_feature_encoder_only():
    enc = load_audio_encoder(os.path.join(DATA, "hubert"), num_layers=1)
    frozen = freeze_encoder(enc.model, trainable_layers=-1, freeze_feature_encoder=True)
    assert frozen == ["feature_extractor"]
    assert not enc.feature_encoder.trainable
    names = {v.path.split("/")[0] for v in enc.model.trainable_variables}
    assert "feature_extractor" not in names and "transformer_layer_0" in names


def test_pretrained_audio_encoder_in_the_w2v2_classifier():
    """The model zoo's seed-000 head wraps a loaded encoder and freezes its feature extractor."""
    from tfsent.models.audio import w2v2_classifier_from_encoder

    enc = load_audio_encoder(os.path.join(DATA, "wav2vec2_layer"), num_layers=1)
    model = w2v2_classifier_from_encoder(enc.model, num_classes=4)
    assert not enc.feature_encoder.trainable
    ref = np.load(os.path.join(DATA, "wav2vec2_layer", "reference.npz"))
    logits = model({"waveform": ref["waveform"], "waveform_mask": ref["waveform_mask"]})["logits"]
    assert logits.shape == (3, 4) and np.all(np.isfinite(logits))
