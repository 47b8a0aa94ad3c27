"""Clear errors for broken checkpoint folders: they name the file and the fix."""
import json
import os
import shutil

import pytest
from safetensors.numpy import load_file, save_file

from tfsent.encoders import CheckpointError, load_audio_encoder, load_text_encoder

DATA = os.path.join(os.path.dirname(__file__), "data")


@pytest.fixture
def klue(tmp_path):
    dst = tmp_path / "klue"
    shutil.copytree(os.path.join(DATA, "roberta_klue"), dst)
    return dst


def test_not_a_folder(tmp_path):
    with pytest.raises(CheckpointError, match="not a folder"):
        load_text_encoder(tmp_path / "nope")


def test_missing_config(klue):
    os.remove(klue / "config.json")
    with pytest.raises(CheckpointError, match=r"config\.json: missing"):
        load_text_encoder(klue)


def test_only_pytorch_bin_says_how_to_convert(klue):
    os.remove(klue / "model.safetensors")
    (klue / "pytorch_model.bin").write_bytes(b"not really")
    with pytest.raises(CheckpointError, match="only pytorch_model.bin") as e:
        load_text_encoder(klue)
    assert "save_pretrained" in str(e.value) and "safe_serialization=True" in str(e.value)


def test_unknown_model_type(klue):
    cfg = json.loads((klue / "config.json").read_text())
    cfg["model_type"] = "gpt2"
    (klue / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="model_type 'gpt2' is not a supported"):
        load_text_encoder(klue)
    with pytest.raises(CheckpointError, match="not a supported audio encoder"):
        load_audio_encoder(klue)


def test_missing_tokenizer_file(klue):
    os.remove(klue / "vocab.txt")
    os.remove(klue / "tokenizer.json")
    with pytest.raises(CheckpointError, match="no tokenizer file.*vocab.txt"):
        load_text_encoder(klue)
    (klue / "vocab.json").write_text("{}")
    with pytest.raises(CheckpointError, match="byte-level BPE"):
        load_text_encoder(klue)


def test_special_token_not_in_vocab(klue):
    cfg = json.loads((klue / "tokenizer_config.json").read_text())
    cfg["cls_token"] = "<s>"
    (klue / "tokenizer_config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"vocab\.txt: cls_token '<s>'"):
        load_text_encoder(klue)


def test_config_weight_shape_mismatch(klue):
    cfg = json.loads((klue / "config.json").read_text())
    cfg["intermediate_size"] += 8
    (klue / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"intermediate\.dense\.weight.*shape.*config\.json"):
        load_text_encoder(klue)


def test_missing_weight(klue):
    weights = load_file(str(klue / "model.safetensors"))
    del weights["encoder.layer.1.output.dense.bias"]
    save_file(weights, str(klue / "model.safetensors"))
    with pytest.raises(CheckpointError, match="encoder.layer.1.output.dense.bias.*missing"):
        load_text_encoder(klue)


def test_sequence_length_beyond_positions(klue):
    with pytest.raises(ValueError, match="exceeds the 64 positions"):
        load_text_encoder(klue, sequence_length=65)


def test_audio_num_layers_out_of_range():
    with pytest.raises(ValueError, match="num_layers"):
        load_audio_encoder(os.path.join(DATA, "hubert"), num_layers=5)
