"""bin/embed: text and audio embeddings to .npz."""
import json
import os
import subprocess

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from tfsent.encoders import embed
from tfsent.corpus.manifest import manifest_columns
from tfsent.encoders import load_audio_encoder, load_text_encoder

DATA = os.path.join(os.path.dirname(__file__), "data")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SENTENCES = ["오늘 정말 행복해요!", "Hello, 세상아.", "", "슬퍼.. 정말", "놀랐어?!"]


def test_text_pooling_matches_backbone(tmp_path):
    klue = os.path.join(DATA, "roberta_klue")
    enc = load_text_encoder(klue, sequence_length=16)
    feats = enc.preprocessor(tf.constant(SENTENCES))
    seq = enc.backbone(feats)["sequence_output"].numpy()
    mask = feats["padding_mask"].numpy()
    cls = embed.embed_text(klue, SENTENCES, 16, "cls", 2, False)
    np.testing.assert_allclose(cls["embeddings"], seq[:, 0], atol=1e-5)
    np.testing.assert_array_equal(cls["token_ids"], feats["token_ids"].numpy())
    np.testing.assert_array_equal(cls["mask"], mask)
    mean = embed.embed_text(klue, SENTENCES, 16, "mean", 4, False)
    expected = (seq * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    np.testing.assert_allclose(mean["embeddings"], expected, atol=1e-5)


def test_read_items_manifest_and_lines(tmp_path):
    (tmp_path / "s.txt").write_text("하나\n\n셋\n", encoding="utf-8")
    assert embed.read_items(str(tmp_path / "s.txt"), "text") == ["하나", "", "셋"]
    (tmp_path / "m.csv").write_text("utt_id,text\na,좋아요\nb,싫어요\n", encoding="utf-8")
    assert embed.read_items(str(tmp_path / "m.csv"), "text") == ["좋아요", "싫어요"]
    with pytest.raises(embed.EmbedError, match="no 'audio_path' column"):
        embed.read_items(str(tmp_path / "m.csv"), "audio_path")
    (tmp_path / "bad.txt").write_bytes("좋아요".encode("cp949"))
    with pytest.raises(embed.EmbedError, match="not UTF-8"):
        embed.read_items(str(tmp_path / "bad.txt"), "text")


def test_audio_manifest_relative_to_data_dir(tmp_path):
    data_dir = tmp_path / "corpus"
    (data_dir / "wav").mkdir(parents=True)
    ref = np.load(os.path.join(DATA, "wav2vec2_layer", "reference.npz"))
    classes = ["neutral", "happy"]
    columns = list(manifest_columns(classes))
    rows = []
    for i, (w, m) in enumerate(zip(ref["waveform"], ref["waveform_mask"])):
        sf.write(data_dir / "wav" / f"u{i}.wav", w[m.astype(bool)], 16000, subtype="FLOAT")
        row = dict.fromkeys(columns, "")
        row.update(utt_id=f"u{i}", audio_path=f"wav/u{i}.wav", text="텍스트", split="test")
        rows.append(",".join(row[c] for c in columns))
    out = tmp_path / "run"
    out.mkdir()
    (out / "manifest.csv").write_text(",".join(columns) + "\n" + "\n".join(rows) + "\n",
                                      encoding="utf-8")
    (out / "manifest.json").write_text(json.dumps({"data_dir": str(data_dir),
                                                   "classes": classes}))
    items = [os.path.join(str(data_dir), f"wav/u{i}.wav") for i in range(3)]
    assert embed.read_items(str(out / "manifest.csv"), "audio_path") == items
    res = embed.embed_audio(os.path.join(DATA, "wav2vec2_layer"), items, None, -1, "none", 2,
                            False)
    np.testing.assert_array_equal(res["mask"], ref["frame_mask"])
    real = ref["frame_mask"].astype(bool)
    assert np.abs(res["embeddings"] - ref["hidden_states"][:, -1])[real].max() < 1e-4
    mean = embed.embed_audio(os.path.join(DATA, "wav2vec2_layer"), items, 1, 0, "mean", 3, False)
    m = ref["frame_mask"][..., None]
    expected = (ref["hidden_states"][:, 0] * m).sum(1) / m.sum(1)
    np.testing.assert_allclose(mean["embeddings"], expected, atol=1e-4)
    with pytest.raises(embed.EmbedError, match="cls is for text"):
        embed.embed_audio(os.path.join(DATA, "hubert"), items, None, -1, "cls", 2, False)


@pytest.mark.slow
def test_cli_writes_npz_atomically(tmp_path):
    src = tmp_path / "s.txt"
    src.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    out = tmp_path / "deep" / "e.npz"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [os.path.join(ROOT, "bin", "embed"), f"--text_encoder={DATA}/kobert_spm",
           f"--input={src}", f"--out={out}", "--sequence_length=12", "--pooling=none"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    z = np.load(out)
    assert z["embeddings"].shape == (5, 12, 16) and z["token_ids"].dtype == np.int32
    assert z["mask"].sum(1).min() >= 2  # [CLS] and [SEP] even for the empty line
    assert [p for p in os.listdir(out.parent) if p != "e.npz"] == []
    bad = subprocess.run(cmd[:1] + [f"--text_encoder={tmp_path}", f"--input={src}",
                                     f"--out={tmp_path / 'x.npz'}"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 2 and "config.json: missing" in bad.stderr
    assert not (tmp_path / "x.npz").exists()
