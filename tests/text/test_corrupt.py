"""Hangul jamo-level transcript corruption: CER on target (measured with jiwer), valid syllables,
determinism and Dataset.map."""
import numpy as np
import pytest
import tensorflow as tf

from tfsent.text.corrupt import character_error_rate, corrupt_hangul

SENTENCES = [
    "오늘 정말 기분이 좋아요.", "왜 이렇게 늦었어? 너무 화가 나!", "그냥 그렇지 뭐.", "가슴이 먹먹해.",
    "이번 주말에 같이 영화 보러 갈래?", "아무 말도 하고 싶지 않아.", "정말 괘씸해!", "우와, 이게 무슨 일이야?",
    "회의는 세 시에 시작합니다.", "아이가 우유를 마셨어요.",
]


def _corrupt_all(texts, cer, base=0):
    seeds = tf.constant([[base, i] for i in range(len(texts))], tf.int32)
    ds = tf.data.Dataset.from_tensor_slices((tf.constant(texts), seeds)).map(lambda t, s: corrupt_hangul(t, s, cer))
    return [t.numpy().decode("utf-8") for t in ds]


@pytest.mark.parametrize("cer", [0.1, 0.3])
def test_cer_on_target(cer):
    refs = SENTENCES * 20
    hyps = _corrupt_all(refs, cer)
    assert character_error_rate(refs, hyps) == pytest.approx(cer, abs=0.02)


def test_only_hangul_syllables_change_and_stay_valid():
    refs = SENTENCES * 5
    hyps = _corrupt_all(refs, 0.3, base=1)
    for ref, hyp in zip(refs, hyps):
        assert [c for c in hyp if not "\uac00" <= c <= "\ud7a3"] == [c for c in ref if not "\uac00" <= c <= "\ud7a3"]
    assert any(r != h for r, h in zip(refs, hyps))
    assert any(len(h) < len(r) for r, h in zip(refs, hyps))  # some syllables are deleted


def test_zero_rate_and_no_hangul_leave_the_text():
    assert _corrupt_all(SENTENCES, 0.0) == SENTENCES
    assert _corrupt_all(["hello, world 123"], 0.5) == ["hello, world 123"]
    assert _corrupt_all([""], 0.3) == [""]


def test_deterministic_and_graph_equals_eager():
    texts = tf.constant(SENTENCES)
    seeds = tf.constant([[4, i] for i in range(len(SENTENCES))])
    ds = tf.data.Dataset.from_tensor_slices((texts, seeds)).map(lambda t, s: corrupt_hangul(t, s, 0.3))
    graph = [t.numpy().decode() for t in ds]
    eager = [corrupt_hangul(t, s, 0.3).numpy().decode() for t, s in zip(texts, seeds)]
    assert graph == eager
    other = _corrupt_all(SENTENCES, 0.3, base=5)
    assert other != graph


def test_character_error_rate_leaves_out_empty_references():
    assert character_error_rate(["가나", ""], ["가다", "x"]) == pytest.approx(0.5)
    assert np.isnan(character_error_rate([""], ["x"]))
