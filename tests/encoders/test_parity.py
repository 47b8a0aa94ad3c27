"""Parity with Hugging Face: token ids identical, hidden states within 1e-4.

The reference outputs were computed by `transformers` (tools/make_hf_fixtures.py)
from the tiny checkpoints under tests/encoders/data.
"""
import os

import numpy as np
import pytest
import tensorflow as tf

from tfsent.encoders import load_audio_encoder, load_text_encoder

DATA = os.path.join(os.path.dirname(__file__), "data")
TOL = 1e-4
TEXT = ["kobert_spm", "bert_uncased_mlm", "roberta_klue", "electra_disc", "distilbert",
        "albert_spm"]
FAMILY = {"kobert_spm": "bert", "bert_uncased_mlm": "bert", "roberta_klue": "roberta",
          "electra_disc": "electra", "distilbert": "distilbert", "albert_spm": "albert"}


def check_text(path, ref):
    L = ref["token_ids"].shape[1]
    enc = load_text_encoder(path, sequence_length=L)
    feats = enc.preprocessor(tf.constant(ref["texts"]))
    np.testing.assert_array_equal(feats["token_ids"].numpy(), ref["token_ids"])
    np.testing.assert_array_equal(feats["padding_mask"].numpy(), ref["padding_mask"])
    out = enc.backbone(feats)
    real = ref["padding_mask"].astype(bool)
    seq = out["sequence_output"].numpy()
    diff = np.abs(seq - ref["sequence_output"])[real].max()
    assert diff <= TOL, f"{path}: max abs diff {diff}"
    if "pooled_output" in ref:
        assert enc.has_pooler
        pdiff = np.abs(out["pooled_output"].numpy() - ref["pooled_output"]).max()
        assert pdiff <= TOL, f"{path}: pooled max abs diff {pdiff}"
    else:
        assert not enc.has_pooler
        np.testing.assert_allclose(out["pooled_output"].numpy(), seq[:, 0], atol=1e-6)
    return enc


@pytest.mark.parametrize("name", TEXT)
def test_text_parity(name):
    ref = np.load(os.path.join(DATA, name, "reference.npz"))
    enc = check_text(os.path.join(DATA, name), ref)
    assert enc.family == FAMILY[name]
    assert enc.hidden_size == ref["sequence_output"].shape[-1]


def test_hangul_kept_whole_unless_checkpoint_strips_accents():
    cased = load_text_encoder(os.path.join(DATA, "roberta_klue"), sequence_length=16)
    words = cased.preprocessor.words(tf.constant(["행복해요 Café"])).to_list()[0]
    assert [w.decode() for w in words] == ["행복해요", "Café"]
    uncased = load_text_encoder(os.path.join(DATA, "bert_uncased_mlm"), sequence_length=16)
    words = uncased.preprocessor.words(tf.constant(["행복해요 Café"])).to_list()[0]
    # do_lower_case=True strips accents via NFD, as Hugging Face does: jamo.
    assert [w.decode() for w in words] == ["\u1112\u1162\u11bc\u1107\u1169\u11a8\u1112\u1162"
                                           "\u110b\u116d", "cafe"]


def test_truncation_keeps_sep_and_batch_independence():
    enc = load_text_encoder(os.path.join(DATA, "roberta_klue"), sequence_length=8)
    long = "이 문장은 꽤 길어서 시퀀스 길이를 넘어가면 잘려야 합니다"
    feats = enc.preprocessor(tf.constant([long, "슬퍼"]))
    ids, mask = feats["token_ids"].numpy(), feats["padding_mask"].numpy()
    assert ids.shape == (2, 8) and mask[0].sum() == 8
    assert ids[0, 0] == enc.preprocessor.cls_id and ids[0, -1] == enc.preprocessor.sep_id
    alone = enc.backbone(enc.preprocessor(tf.constant(["슬퍼"])))["sequence_output"].numpy()
    both = enc.backbone(feats)["sequence_output"].numpy()
    n = mask[1].sum()
    np.testing.assert_allclose(both[1, :n], alone[0, :n], atol=1e-5)


def test_preprocessor_in_tf_data_graph():
    enc = load_text_encoder(os.path.join(DATA, "kobert_spm"), sequence_length=24)
    ref = np.load(os.path.join(DATA, "kobert_spm", "reference.npz"))
    ds = tf.data.Dataset.from_tensor_slices(ref["texts"]).batch(4).map(enc.preprocessor)
    ids = np.concatenate([b["token_ids"].numpy() for b in ds])
    np.testing.assert_array_equal(ids, ref["token_ids"])


@pytest.mark.parametrize("name,num_layers,tag", [
    ("wav2vec2_group", None, ""), ("wav2vec2_layer", None, ""),
    ("wav2vec2_layer", 1, "layers1_"), ("hubert", None, "")])
def test_audio_parity(name, num_layers, tag):
    ref = np.load(os.path.join(DATA, name, "reference.npz"))
    enc = load_audio_encoder(os.path.join(DATA, name), num_layers=num_layers)
    out = enc.model({"waveform": ref["waveform"], "waveform_mask": ref["waveform_mask"]})
    np.testing.assert_array_equal(out["frame_mask"].numpy(), ref[tag + "frame_mask"])
    hs, rh = out["hidden_states"].numpy(), ref[tag + "hidden_states"]
    assert hs.shape == rh.shape
    real = ref[tag + "frame_mask"].astype(bool)
    for layer in range(rh.shape[1]):
        diff = np.abs(hs[:, layer] - rh[:, layer])[real].max()
        assert diff <= TOL, f"{name} layer {layer}: max abs diff {diff}"
    # Padded frames are zero, and the last state is the sequence output.
    assert (~real).any()
    assert np.all(hs.transpose(0, 2, 1, 3)[~real] == 0)
    np.testing.assert_array_equal(out["sequence_output"].numpy(), hs[:, -1])


def test_group_norm_encoder_does_not_depend_on_padding():
    ref = np.load(os.path.join(DATA, "wav2vec2_group", "reference.npz"))
    enc = load_audio_encoder(os.path.join(DATA, "wav2vec2_group"))
    wav, mask = ref["waveform"], ref["waveform_mask"]
    extra = np.pad(wav, [[0, 0], [0, 500]]), np.pad(mask, [[0, 0], [0, 500]])
    a = enc.model({"waveform": wav, "waveform_mask": mask})
    b = enc.model({"waveform": extra[0], "waveform_mask": extra[1]})
    T = a["frame_mask"].shape[1]
    np.testing.assert_allclose(b["hidden_states"].numpy()[:, :, :T], a["hidden_states"].numpy(),
                               atol=1e-5)


REAL = [("TFSENT_KLUE_ROBERTA_DIR", "roberta"), ("TFSENT_KOBERT_DIR", "bert"),
        ("TFSENT_KOELECTRA_DIR", "electra")]


@pytest.mark.slow
@pytest.mark.parametrize("env,family", REAL)
def test_real_checkpoint(env, family):
    """A published checkpoint vs the reference written by
    `tools/make_hf_fixtures.py --real DIR [--real_out FILE]` (where transformers is
    installed); FILE defaults to DIR/tfsent_reference.npz, or set ENV_REFERENCE."""
    path = os.environ.get(env)
    if not path or not os.path.isdir(path):
        pytest.skip(f"set {env} to a local {family} checkpoint folder to run this test")
    ref_file = os.environ.get(env + "_REFERENCE", os.path.join(path, "tfsent_reference.npz"))
    if not os.path.isfile(ref_file):
        pytest.skip(f"{ref_file} missing: run tools/make_hf_fixtures.py --real {path}")
    enc = check_text(path, dict(np.load(ref_file)))
    assert enc.family == family


@pytest.mark.slow
def test_real_audio_checkpoint():
    """e.g. kresnik/wav2vec2-large-xlsr-korean in TFSENT_W2V2_DIR (reference made as
    for text, by tools/make_hf_fixtures.py --real DIR)."""
    env = "TFSENT_W2V2_DIR"
    path = os.environ.get(env)
    if not path or not os.path.isdir(path):
        pytest.skip(f"set {env} to a local wav2vec2 / HuBERT checkpoint folder to run this test")
    ref_file = os.environ.get(env + "_REFERENCE", os.path.join(path, "tfsent_reference.npz"))
    if not os.path.isfile(ref_file):
        pytest.skip(f"{ref_file} missing: run tools/make_hf_fixtures.py --real {path}")
    ref = np.load(ref_file)
    enc = load_audio_encoder(path)
    out = enc.model({"waveform": ref["waveform"], "waveform_mask": ref["waveform_mask"]})
    real = ref["frame_mask"].astype(bool)
    hs = out["hidden_states"].numpy().transpose(0, 2, 1, 3)[real]
    diff = np.abs(hs - ref["hidden_states"].transpose(0, 2, 1, 3)[real]).max()
    assert diff <= TOL, f"{path}: max abs diff {diff}"


def test_fixtures_detect_the_tanh_gelu_approximation():
    """keras-hub's BERT/ELECTRA backbones use the tanh GELU; Hugging Face the exact
    one. The fixtures' weights are large enough for that to break parity."""
    from keras_hub.src.utils.keras_utils import gelu_approximate

    ref = np.load(os.path.join(DATA, "electra_disc", "reference.npz"))
    enc = load_text_encoder(os.path.join(DATA, "electra_disc"), sequence_length=24)
    for i in range(2):
        dense = enc.backbone.get_layer(f"transformer_layer_{i}")._feedforward_intermediate_dense
        dense.activation = gelu_approximate
    out = enc.backbone(enc.preprocessor(tf.constant(ref["texts"])))["sequence_output"].numpy()
    real = ref["padding_mask"].astype(bool)
    assert np.abs(out - ref["sequence_output"])[real].max() > 3 * TOL


def test_mixed_float16_policy():
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        enc = load_audio_encoder(os.path.join(DATA, "wav2vec2_group"))
        text = load_text_encoder(os.path.join(DATA, "roberta_klue"), sequence_length=24)
    finally:
        keras.config.set_dtype_policy(previous)
    ref = np.load(os.path.join(DATA, "wav2vec2_group", "reference.npz"))
    out = enc.model({"waveform": ref["waveform"], "waveform_mask": ref["waveform_mask"]})
    hs = np.asarray(out["hidden_states"], np.float32)
    real = ref["frame_mask"].astype(bool)
    assert np.abs(hs - ref["hidden_states"]).transpose(0, 2, 1, 3)[real].max() < 0.05
    tref = np.load(os.path.join(DATA, "roberta_klue", "reference.npz"))
    seq = text.backbone(text.preprocessor(tf.constant(tref["texts"])))["sequence_output"]
    diff = np.abs(np.asarray(seq, np.float32) - tref["sequence_output"])
    assert diff[tref["padding_mask"].astype(bool)].max() < 0.05


def test_wordpiece_from_tokenizer_json_only(tmp_path):
    import shutil

    src = os.path.join(DATA, "roberta_klue")
    dst = tmp_path / "klue"
    shutil.copytree(src, dst)
    os.remove(dst / "vocab.txt")
    check_text(str(dst), np.load(os.path.join(src, "reference.npz")))
