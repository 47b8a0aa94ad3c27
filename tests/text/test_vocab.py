"""Tests for tfsent.text.vocab and bin/train_tokenizer (tfsent.cli.train_tokenizer)."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from tfsent.text.tokenizer import SPECIAL_TOKENS, TextPreprocessor, load_vocabulary
from tfsent.text.vocab_report import train_tokenizer
from tfsent.text.vocab import _trim, count_words, train_wordpiece_vocabulary, write_vocabulary

CORPUS = [
    "안녕하세요, 저는 오늘 정말 행복해요!",
    "오늘은 너무 슬퍼요.",
    "면접에 떨어졌다는 소식을 듣고 너무 실망해서 밥맛도 없어.",
    "헐! 나 이벤트에 당첨 됐어.",
    "정말 화가 나서 참을 수가 없어요.",
    "그냥 평범한 하루였어요.",
    "내가 좋아하는 인플루언서가 이벤트를 하더라고.",
    "오늘 정말 행복한 하루였어요!",
] * 5


def test_count_words_keeps_hangul_whole():
    counts = count_words(["안녕하세요, 저는!", "저는"])
    assert counts == {"안녕하세요": 1, ",": 1, "저는": 2, "!": 1}


def test_train_vocabulary_reserved_ids_and_coverage():
    vocab = train_wordpiece_vocabulary(CORPUS, vocab_size=300)
    assert vocab[:5] == list(SPECIAL_TOKENS)
    assert len(vocab) <= 300 and len(set(vocab)) == len(vocab)
    # Hangul syllables, never NFD jamo (U+1100..U+11FF).
    assert not any("\u1100" <= ch <= "\u11ff" for token in vocab for ch in token)
    assert "오늘" in vocab and "정말" in vocab  # frequent words become whole tokens
    pre = TextPreprocessor(vocab, sequence_length=32)
    ids = pre(CORPUS[:8])["token_ids"].numpy()
    assert (ids != 0).all()  # every training word is covered: no [UNK]
    # Deterministic, independent of input order.
    assert train_wordpiece_vocabulary(list(reversed(CORPUS)), vocab_size=300) == vocab


def test_vocabulary_is_capped():
    # The learner may overshoot; the trim drops the least frequent multi-character pieces
    # (listed last) and never single characters or their ## forms.
    learned = list(SPECIAL_TOKENS) + ["가", "나", "##가", "##나", "가나", "나가", "##가나"]
    with pytest.warns(UserWarning, match="trimmed"):
        trimmed = _trim(learned, 10, SPECIAL_TOKENS, "##")
    assert trimmed == learned[:10]
    with pytest.raises(ValueError, match="single-character"):
        _trim(learned, 8, SPECIAL_TOKENS, "##")
    with pytest.raises(ValueError, match="single-character"):
        train_wordpiece_vocabulary(CORPUS, vocab_size=20)
    vocab = train_wordpiece_vocabulary(CORPUS, vocab_size=200, min_frequency=1)
    assert len(vocab) <= 200 and vocab[:5] == list(SPECIAL_TOKENS)


def test_write_vocabulary_atomic_roundtrip(tmp_path):
    path = tmp_path / "sub" / "vocab.txt"
    write_vocabulary(list(SPECIAL_TOKENS) + ["행복", "##해요"], str(path))
    assert load_vocabulary(str(path)) == list(SPECIAL_TOKENS) + ["행복", "##해요"]
    assert os.listdir(path.parent) == ["vocab.txt"]  # no temp file left behind
    with pytest.raises(ValueError, match="twice"):
        write_vocabulary(["a", "a"], str(path))


def test_cli_trains_on_train_split_only(tmp_path):
    train = CORPUS
    held_out = ["쀍쀍쀍 뷁뷁 테스트전용문장"] * 50  # frequent, but only in valid/test
    rows = [(t, "train") for t in train] + [(t, "test") for t in held_out] + [(t, "valid") for t in held_out]
    manifest = tmp_path / "manifest.csv"
    pd.DataFrame(rows, columns=["text", "split"]).to_csv(manifest, index=False)
    before = manifest.read_bytes()
    out = tmp_path / "tok"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = train_tokenizer(str(manifest), vocab_size=300, out=str(out))
    assert result["vocab_path"] == str(out / "vocab.txt")
    assert manifest.read_bytes() == before  # input untouched
    vocab = load_vocabulary(str(out / "vocab.txt"))
    assert vocab[:5] == list(SPECIAL_TOKENS)
    assert not any(ch in "쀍뷁" for token in vocab for ch in token)  # held-out text unseen
    report = json.loads((out / "token_lengths.json").read_text(encoding="utf-8"))
    stats = report["token_lengths"]
    assert report["split"] == "train" and stats["count"] == len(train)
    # Recompute the lengths independently: [CLS] + pieces + [SEP].
    pre = TextPreprocessor(vocab, sequence_length=2)
    lengths = pre.tokenize(train).row_lengths().numpy() + 2
    assert stats["mean"] == pytest.approx(lengths.mean())
    assert stats["std"] == pytest.approx(lengths.std())
    assert stats["max"] == lengths.max()
    assert stats["p75"] == pytest.approx(float(pd.Series(lengths).quantile(0.75)))
    assert (out / "token_lengths.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    bad = subprocess.run(
        [sys.executable, "-m", "tfsent.cli.train_tokenizer", f"--manifest={tmp_path / 'none.csv'}"],
        capture_output=True, text=True, cwd=root, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert bad.returncode == 2 and "none.csv" in bad.stderr
