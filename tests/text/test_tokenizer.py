"""Tests for tfsent.text.tokenizer: Korean golden ids, packing, graph use, SavedModel export."""

import json
import os
import subprocess
import sys
import textwrap
import unicodedata

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfsent.text import tokenizer as tok
from tfsent.text.tokenizer import TextPreprocessor, make_text_preprocessor

# A hand-written Korean WordPiece vocabulary; the line number is the id.
VOCAB = [
    "[UNK]",  # 0
    "[PAD]",  # 1
    "[CLS]",  # 2
    "[SEP]",  # 3
    "[MASK]",  # 4
    "안녕",  # 5
    "##하세요",  # 6
    "저",  # 7
    "##는",  # 8
    "오늘",  # 9
    "정말",  # 10
    "행복",  # 11
    "##해요",  # 12
    "!",  # 13
    ",",  # 14
    ".",  # 15
    "슬퍼",  # 16
    "##요",  # 17
    "hello",  # 18
    "Hello",  # 19
    "?",  # 20
]


def ids_of(pre, texts):
    return pre(tf.constant(texts))["token_ids"].numpy().tolist()


def test_korean_golden_ids():
    pre = TextPreprocessor(VOCAB, sequence_length=12)
    out = pre(tf.constant(["안녕하세요, 저는 오늘 정말 행복해요!", "슬퍼요.", "모르는 단어"]))
    # "안녕하세요" -> 안녕 ##하세요 (5 6); "," (14); "저는" -> 저 ##는 (7 8); 오늘 9; 정말 10;
    # "행복해요" -> 행복 ##해요 (11 12); "!" 13; framed by [CLS]=2 ... [SEP]=3: 12 tokens exactly.
    assert out["token_ids"].numpy().tolist() == [
        [2, 5, 6, 14, 7, 8, 9, 10, 11, 12, 13, 3],
        # "슬퍼요" -> 슬퍼 ##요 (16 17), "." 15, then [PAD]=1
        [2, 16, 17, 15, 3, 1, 1, 1, 1, 1, 1, 1],
        # two words not coverable by the vocabulary -> one [UNK]=0 each
        [2, 0, 0, 3, 1, 1, 1, 1, 1, 1, 1, 1],
    ]
    assert out["padding_mask"].numpy().tolist() == [
        [1] * 12,
        [1] * 5 + [0] * 7,
        [1] * 4 + [0] * 8,
    ]
    assert out["token_ids"].dtype == tf.int32 and out["padding_mask"].dtype == tf.int32


def test_hangul_is_not_split_into_jamo():
    pre = TextPreprocessor(VOCAB, sequence_length=8)
    nfc = "안녕하세요"
    nfd = unicodedata.normalize("NFD", nfc)
    assert len(nfd) > len(nfc)  # NFD really decomposes Hangul into jamo
    # Decomposed input is recomposed (NFC) and tokenizes like the composed text.
    assert ids_of(pre, [nfc, nfd]) == [[2, 5, 6, 3, 1, 1, 1, 1]] * 2


def test_lowercase_off_by_default():
    assert ids_of(TextPreprocessor(VOCAB, sequence_length=4), ["Hello"])[0][1] == 19
    assert ids_of(TextPreprocessor(VOCAB, sequence_length=4, lowercase=True), ["Hello"])[0][1] == 18


def test_truncation_keeps_sep():
    pre = TextPreprocessor(VOCAB, sequence_length=5)
    # 안녕 ##하세요 , 저 ##는 ... truncated to L - 2 = 3 pieces, then [SEP].
    assert ids_of(pre, ["안녕하세요, 저는 오늘"]) == [[2, 5, 6, 14, 3]]
    assert ids_of(pre, [""]) == [[2, 3, 1, 1, 1]]


def test_vocabulary_file_and_errors(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    pre = make_text_preprocessor("wordpiece", str(path), 6)
    assert pre.vocabulary_size() == len(VOCAB) and pre.token_to_id("행복") == 11
    assert ids_of(pre, ["정말?"]) == [[2, 10, 20, 3, 1, 1]]
    assert make_text_preprocessor("wordpiece", str(tmp_path), 6).vocabulary == VOCAB
    with pytest.raises(ValueError, match="not found"):
        TextPreprocessor(str(tmp_path / "missing.txt"))
    dup = tmp_path / "dup.txt"
    dup.write_text("[UNK]\n[PAD]\n[CLS]\n[SEP]\n[PAD]\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"dup.txt.*twice"):
        TextPreprocessor(str(dup))
    with pytest.raises(ValueError, match="cls_token"):
        TextPreprocessor(["[UNK]", "[PAD]", "[SEP]"])
    with pytest.raises(ValueError, match="sequence_length"):
        TextPreprocessor(VOCAB, sequence_length=1)
    with pytest.raises(ValueError, match="Unknown tokenizer kind"):
        make_text_preprocessor("char", str(path), 8)
    with pytest.warns(UserWarning, match="NFC"):
        TextPreprocessor(VOCAB + [unicodedata.normalize("NFD", "슬픔")])


def test_graph_dataset_keras_and_config():
    pre = TextPreprocessor(VOCAB, sequence_length=6)
    expected = ids_of(pre, ["안녕하세요", "저는 슬퍼요"])
    ds = tf.data.Dataset.from_tensor_slices(["안녕하세요", "저는 슬퍼요"]).map(pre).batch(2)
    batch = next(iter(ds))
    assert batch["token_ids"].numpy().tolist() == expected
    assert batch["token_ids"].shape == (2, 6)
    # Scalar input -> [L].
    assert pre(tf.constant("안녕하세요"))["token_ids"].shape == (6,)
    # Inside a Keras functional model, and rebuilt from its config.
    inp = keras.Input(shape=(), dtype="string")
    model = keras.Model(inp, pre(inp))
    assert model(tf.constant(["안녕하세요", "저는 슬퍼요"]))["token_ids"].numpy().tolist() == expected
    clone = TextPreprocessor.from_config(pre.get_config())
    assert ids_of(clone, ["안녕하세요", "저는 슬퍼요"]) == expected


_LOADER = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    import tensorflow_text  # registers the tokenizer ops
    m = tf.saved_model.load(sys.argv[1])
    out = m.serve(tf.constant(json.loads(sys.argv[2])))
    leaked = sorted(k for k in sys.modules if k.split(".")[0] in ("tfsent", "keras_hub"))
    print(json.dumps({"ids": out["token_ids"].numpy().tolist(),
                      "mask": out["padding_mask"].numpy().tolist(),
                      "pooled": out["pooled"].numpy().tolist(), "leaked": leaked}))
    """
)


@pytest.mark.slow
def test_saved_model_reloads_in_fresh_process(tmp_path):
    """Tokenization inside a Keras model inside a tf.Module, reloaded with only TF + TF Text."""
    pre = TextPreprocessor(VOCAB, sequence_length=10)
    inp = keras.Input(shape=(), dtype="string")
    packed = pre(inp)
    emb = keras.layers.Embedding(len(VOCAB), 4)(packed["token_ids"])
    mask = keras.ops.cast(packed["padding_mask"], "float32")[..., None]
    pooled = keras.ops.sum(emb * mask, axis=1) / keras.ops.sum(mask, axis=1)
    model = keras.Model(inp, {**packed, "pooled": pooled})

    module = tf.Module()
    module.model = model
    module.serve = tf.function(
        lambda s: model(s), input_signature=[tf.TensorSpec([None], tf.string)]
    )
    export_dir = str(tmp_path / "sm")
    tf.saved_model.save(module, export_dir)

    texts = ["안녕하세요, 저는 오늘 정말 행복해요!", "모르는 말"]
    expected = model(tf.constant(texts))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [sys.executable, "-c", _LOADER, export_dir, json.dumps(texts)],
        capture_output=True, text=True, env=env, timeout=300, cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["leaked"] == []
    assert got["ids"] == expected["token_ids"].numpy().tolist()
    assert got["ids"][0] == [2, 5, 6, 14, 7, 8, 9, 10, 11, 3]
    assert got["mask"] == expected["padding_mask"].numpy().tolist()
    np.testing.assert_allclose(got["pooled"], expected["pooled"].numpy(), rtol=1e-5, atol=1e-6)


KOREAN_CORPUS = [
    "안녕하세요, 저는 오늘 정말 행복해요!",
    "오늘은 너무 슬퍼요.",
    "면접에 떨어졌다는 소식을 듣고 너무 실망해서 밥맛도 없어.",
    "헐! 나 이벤트에 당첨 됐어.",
    "정말 화가 나서 참을 수가 없어요.",
    "그냥 평범한 하루였어요.",
] * 4


def test_sentencepiece_matches_reference(tmp_path):
    spm = pytest.importorskip("sentencepiece")
    prefix = str(tmp_path / "sp")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(KOREAN_CORPUS), model_prefix=prefix, vocab_size=100, hard_vocab_limit=False,
        model_type="unigram", character_coverage=1.0, unk_id=0, pad_id=1, bos_id=2, eos_id=3,
        unk_piece="[UNK]", pad_piece="[PAD]", bos_piece="[CLS]", eos_piece="[SEP]",
        minloglevel=2, num_threads=1,
    )
    reference = spm.SentencePieceProcessor(model_file=prefix + ".model")
    pre = make_text_preprocessor("sentencepiece", prefix + ".model", 24)
    assert (pre.start_id, pre.end_id, pre.pad_id) == (2, 3, 1)
    texts = KOREAN_CORPUS[:3]
    out = pre(tf.constant(texts))
    for row, mask, text in zip(out["token_ids"].numpy(), out["padding_mask"].numpy(), texts):
        ref = [2] + reference.encode(text)[:22] + [3]
        assert row.tolist() == ref + [1] * (24 - len(ref))
        assert mask.tolist() == [1] * len(ref) + [0] * (24 - len(ref))


def test_byte_level_bpe_matches_reference(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        KOREAN_CORPUS, vocab_size=400, min_frequency=1,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>"], show_progress=False,
    )
    bpe.save_model(str(tmp_path))
    pre = make_text_preprocessor("bpe", str(tmp_path), 40)
    assert (pre.start_id, pre.pad_id, pre.end_id) == (0, 1, 2)
    texts = ["오늘은 너무 슬퍼요.", "정말 화가 나서 참을 수가 없어요."]
    out = pre(tf.constant(texts))
    for row, text in zip(out["token_ids"].numpy(), texts):
        ref = [0] + bpe.encode(text).ids + [2]
        assert row.tolist() == ref + [1] * (40 - len(ref))
    with pytest.raises(ValueError, match="vocab.json"):
        make_text_preprocessor("bpe", str(tmp_path / "nothing"), 8)
