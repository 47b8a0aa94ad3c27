"""The per-modality auxiliary heads of fusion models: their loss term, the flag that adds them, and
what each model builds."""

import numpy as np
import pytest

from tfsent.audio.features import FeatureConfig
from tfsent.core.errors import UsageError
from tfsent.tasks import EmotionTask, TaskConfig

CLASSES = ["neutral", "happy", "sad", "angry"]


def _task(model="demo_fusion", aux_loss_weight=0.0, vocabulary=None, modality_dropout=None, **model_kwargs):
    config = TaskConfig(model=model, model_kwargs=model_kwargs, task="classification", classes=CLASSES,
                        feature=FeatureConfig(n_mels=8), max_seconds=1.0, sequence_length=8,
                        vocabulary=vocabulary, aux_loss_weight=aux_loss_weight,
                        modality_dropout=modality_dropout or {})
    return EmotionTask(config, None, {})


def _cross_entropy(logits, targets):
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return -(targets * log_p).sum(-1)


@pytest.mark.parametrize("weight", [0.0, 0.5])
def test_aux_outputs_add_their_weighted_cross_entropy(weight):
    rng = np.random.default_rng(0)
    outputs = {k: rng.normal(size=(5, 4)).astype(np.float32) for k in ("logits", "audio_logits", "text_logits")}
    targets = {"target": np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 1]],
               "weight": np.array([1, 1, 2, 1, 0], np.float32)}
    loss = _task(aux_loss_weight=weight).per_example_loss(targets, outputs).numpy()
    expected = sum(_cross_entropy(outputs[k], targets["target"]) * (1.0 if k == "logits" else weight)
                   for k in outputs) * targets["weight"]
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    # Evaluation passes the fused logits alone: the same loss as a model without auxiliary heads.
    alone = _task(aux_loss_weight=weight).per_example_loss(targets, {"logits": outputs["logits"]}).numpy()
    np.testing.assert_allclose(alone, _cross_entropy(outputs["logits"], targets["target"]) * targets["weight"],
                               rtol=1e-5)


@pytest.fixture(scope="module")
def vocabulary(tmp_path_factory):
    from tfsent.text.tokenizer import SPECIAL_TOKENS

    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(list(SPECIAL_TOKENS) + ["오늘", "정말"]) + "\n", encoding="utf-8")
    return str(path)


TINY = {"filters": 4, "num_layers": 1, "embedding_dim": 4, "hidden": 4}


def test_aux_loss_weight_adds_heads_to_fusion_models_only(vocabulary):
    fused = _task(aux_loss_weight=1.0, vocabulary=vocabulary, **TINY).build_model()
    assert sorted(fused.output) == ["audio_logits", "logits", "text_logits"]
    assert list(_task(vocabulary=vocabulary, **TINY).build_model().output) == ["logits"]
    text_only = _task("text_cnn", aux_loss_weight=1.0, vocabulary=vocabulary, embedding_dim=4, filters=4,
                      hidden=4).build_model()
    assert list(text_only.output) == ["logits"]  # single-modality models ignore the weight


def test_aux_loss_weight_on_a_fusion_model_without_heads_is_a_usage_error():
    with pytest.raises(UsageError, match="--aux_loss_weight: model 'va_fusion_classifier' does not take "
                                         "aux_heads .models that do: conv1d_fusion, demo_fusion, mfcc_fusion"):
        _task("va_fusion_classifier", aux_loss_weight=1.0).build_model()
    with pytest.raises(UsageError, match="--modality_dropout: model 'conv1d_fusion' does not take "
                                         "text_modality_dropout"):
        _task("conv1d_fusion", modality_dropout={"text": 0.5}).build_model()


def test_modality_dropout_flag_sets_each_branch_rate(vocabulary):
    from tfsent.cli import train_flags

    rates = train_flags.modality_dropout(["audio=0.1", "text=0.5"])
    assert rates == {"audio": 0.1, "text": 0.5}
    model = _task(vocabulary=vocabulary, modality_dropout=rates, **TINY).build_model()
    assert model.get_layer("audio_modality_dropout").rate == 0.1
    assert model.get_layer("text_modality_dropout").rate == 0.5
    for bad in (["voice=0.1"], ["text=1.0"], ["text=high"]):
        with pytest.raises(UsageError, match="--modality_dropout: "):
            train_flags.modality_dropout(bad)


@pytest.mark.parametrize("name, kwargs", [
    ("mfcc_fusion", dict(feature_dim=13, vocab_size=20, sequence_length=8, audio_units=4, text_hidden_dim=8,
                         text_num_layers=1, text_num_heads=2, text_intermediate_dim=8, text_num_memory_kv=2,
                         text_output_dim=8, head_filters=4)),
    ("conv1d_fusion", dict(feature_dim=13, vocab_size=20, hidden_dim=4, filters=4, dense_units=4)),
])
def test_every_trainable_fusion_model_has_the_shared_aux_heads(name, kwargs):
    from tfsent.models import registry

    model = registry.build(name, num_classes=4, aux_heads=True, **kwargs)
    assert sorted(model.output) == ["audio_logits", "logits", "text_logits"]
    assert list(registry.build(name, num_classes=4, **kwargs).output) == ["logits"]
