"""Readers + prepare on fixture corpora in the real layouts: every row is accounted for."""

import collections
import math
import os

import pytest

from tfsent.corpus import prepare as prepare_lib
from tfsent.corpus.aihub import read_aihub
from tfsent.corpus.common import PrepareError, StrictRejectsError
from tfsent.corpus.prepare import PrepareOptions
from tfsent.corpus.prepare import prepare



def _outcomes(result):
    got = collections.Counter(("kept", r["utt_id"], r["emotion"]) for r in result.records)
    got.update(("reject", r.utt_id, r.reason) for r in result.rejects if r.line != "")
    return got


def _expected(expected):
    want = collections.Counter()
    for key, (kind, value) in expected.items():
        want[(kind, key.split("#")[0].split("@")[0], value)] += 1
    return want


def _opts(fmt, root, tmp_path, **kw):
    return PrepareOptions(format=fmt, data_dir=root, out=str(tmp_path / "out"), progress=False, **kw)


def test_kemdy20_every_row_lands_in_manifest_or_rejects(kemdy20_corpus, tmp_path):
    root, expected = kemdy20_corpus
    result = prepare(_opts("kemdy20", root, tmp_path))
    assert _outcomes(result) == _expected(expected)
    counts = result.sidecar["counts"]
    assert counts["rows_read"] == len(expected) == counts["rows_kept"] + sum(
        1 for r in result.rejects if r.line != "")
    # The sub-header row of each of the 5 files is skipped and counted, not read as data.
    assert counts["notes"]["subheader_rows_skipped"] == 5
    assert counts["notes"]["sess42_ids_renamed_sess17"] == 2
    assert counts["text_encodings"]["cp949"] >= 5 and counts["text_encodings"]["utf-8-sig"] == 1


def test_kemdy20_row_contents(kemdy20_corpus, tmp_path):
    root, _ = kemdy20_corpus
    result = prepare(_opts("kemdy20", root, tmp_path))
    by_id = {r["utt_id"]: r for r in result.records}
    first = by_id["Sess01_script01_User001F_001"]
    assert first["text"] == "오늘 정말 좋아"  # CP949 decoded, tags stripped
    assert first["text_raw"] == "c/ 오늘 정말 b/ 좋아 +"
    assert (first["speaker"], first["session"], first["gender"]) == ("User001F", "Sess01", "female")
    assert first["valence"] == 4.2 and first["arousal"] == 3.1
    assert first["votes_happy"] == 10 and first["target_happy"] == 1.0
    assert by_id["Sess01_script01_User002M_001"]["text"] == "그만해 진짜"
    assert by_id["Sess01_script01_User002M_003"]["text"] == ""  # empty transcript kept
    assert math.isnan(by_id["Sess02_script01_User004M_001"]["valence"])  # missing valence kept
    assert by_id["Sess02_script01_User003F_001"]["text"] == "응 그래"  # UTF-8 with BOM
    # Sess42 ids in Sess17_eval.csv are Sess17; the wav is found under either name.
    renamed = by_id["Sess17_script01_User033M_001"]
    assert renamed["session"] == "Sess17"
    assert renamed["audio_path"] == "wav/Session17/Sess17_script01_User033M_001.wav"
    assert by_id["Sess17_script01_User034F_001"]["audio_path"] == (
        "wav/Session17/Sess42_script01_User034F_001.wav")
    for r in result.records:
        assert not os.path.isabs(r["audio_path"]) and ".." not in r["audio_path"].split("/")
        assert os.path.exists(os.path.join(root, r["audio_path"]))
    # 48 kHz stereo and 8-bit wavs are accepted, reported as unusual.
    audio = result.sidecar["counts"]["audio"]
    assert audio["sample_rates"] == {"16000": 8, "48000": 1}
    assert audio["unexpected"] == {"sample_rate_48000": 1, "channels_2": 1}
    rejects = {r.utt_id: r for r in result.rejects}
    assert rejects["Sess01_script01_User002M_002"].value == "'joy'"
    assert rejects["Sess01_script01_User001F_002"].value == "angry;neutral;disgust"
    assert rejects["Sess02_script01_User004M_002"].reason == "truncated_audio"
    assert (rejects["garbage_id"].source_file, rejects["garbage_id"].line) == ("annotation/Sess17_eval.csv", 6)


def test_kemdy20_tie_policies(kemdy20_corpus, tmp_path):
    root, _ = kemdy20_corpus
    soft = {r["utt_id"]: r for r in prepare(_opts("kemdy20", root, tmp_path, tie_policy="soft")).records}
    three = soft["Sess01_script01_User001F_002"]
    assert three["emotion"] == "angry"
    assert [three[f"target_{c}"] for c in ("angry", "neutral", "disgust", "happy")] == [1 / 3] * 3 + [0.0]
    first = {r["utt_id"]: r for r in prepare(_opts("kemdy20", root, tmp_path, tie_policy="first")).records}
    assert first["Sess33_script01_User066M_001"]["emotion"] == "happy"
    assert first["Sess33_script01_User066M_001"]["target_happy"] == 1.0


def test_kemdy20_class_subsets_count_exclusions(kemdy20_corpus, tmp_path):
    root, _ = kemdy20_corpus
    result = prepare(_opts("kemdy20", root, tmp_path, classes="4"))
    excluded = sorted((r.utt_id, r.value) for r in result.rejects if r.reason == "excluded_class")
    assert excluded == [("Sess01_script01_User002M_001", "disgust"),
                        ("Sess02_script01_User004M_001", "surprise"),
                        ("Sess34_script01_User067F_001", "fear")]
    assert result.sidecar["counts"]["rows_excluded"] == 3
    assert {r["emotion"] for r in result.records} <= {"neutral", "happy", "sad", "angry"}
    assert result.sidecar["classes"] == ["neutral", "happy", "sad", "angry"]
    five = prepare(_opts("kemdy20", root, tmp_path, classes="5"))
    assert "surprise" in {r["emotion"] for r in five.records}


def test_kemdy20_binary_from_valence(kemdy20_corpus, tmp_path):
    root, _ = kemdy20_corpus
    result = prepare(_opts("kemdy20", root, tmp_path, classes="binary"))
    emotions = {r["utt_id"]: r["emotion"] for r in result.records}
    assert emotions == {
        "Sess01_script01_User001F_001": "positive",  # 4.2
        "Sess01_script01_User002M_001": "negative",  # 1.5
        "Sess02_script01_User003F_001": "negative",  # 2.0
        "Sess17_script01_User033M_001": "positive",  # 4
        "Sess17_script01_User034F_001": "negative",  # 1.2
        "Sess33_script01_User066M_001": "positive",  # 3.4 (an emotion tie does not matter)
        "Sess34_script01_User067F_001": "negative",  # 2.1
    }
    reasons = collections.Counter(r.reason for r in result.rejects)
    assert reasons["excluded_valence_3"] == 4  # valence exactly 3
    assert reasons["missing_valence"] == 1
    assert result.sidecar["classes"] == ["negative", "positive"]


def test_kemdy20_require_valence_arousal(kemdy20_corpus, tmp_path):
    root, _ = kemdy20_corpus
    result = prepare(_opts("kemdy20", root, tmp_path, require_valence_arousal=True))
    assert [r.utt_id for r in result.rejects if r.reason == "missing_valence_arousal"] == [
        "Sess02_script01_User004M_001"]


def test_kemdy19_keeps_only_the_files_own_gender(kemdy19_corpus, tmp_path):
    root, expected = kemdy19_corpus
    result = prepare(_opts("kemdy19", root, tmp_path))
    assert _outcomes(result) == _expected(expected)
    assert result.sidecar["counts"]["rows_excluded"] == 8
    row = next(r for r in result.records if r["utt_id"] == "Sess01_impro01_F001")
    assert row["audio_path"] == "wav/Session01/Sess01_impro01/Sess01_impro01_F001.wav"
    assert (row["speaker"], row["gender"], row["text"]) == ("Sess01_F", "female", "문장 1 F 1")
    assert row["valence"] == 3.0


def test_aihub_every_row_accounted_and_orphans_reported(aihub_corpus, tmp_path):
    root, expected = aihub_corpus
    result = prepare(_opts("aihub", root, tmp_path))
    assert _outcomes(result) == _expected(expected)
    orphans = [r for r in result.rejects if r.reason == "orphan_wav"]
    assert [(o.source_file, o.line, o.utt_id) for o in orphans] == [
        ("5차년도_2차/wav/6000000000000000000000ff.wav", "", "6000000000000000000000ff")]
    counts = result.sidecar["counts"]
    assert counts["text_encodings"] == {"cp949": 1, "utf-8-sig": 1}
    assert counts["rows_read"] == len(expected)
    by_id = {r["utt_id"]: r for r in result.records}
    assert by_id["6000000000000000000000b2"]["text"] == ""
    assert by_id["6000000000000000000000a1"]["votes_angry"] == 4
    assert by_id["6000000000000000000000a1"]["votes_sad"] == 1
    assert (by_id["6000000000000000000000a1"]["age"], by_id["6000000000000000000000a1"]["gender"]) == (
        "20", "male")
    assert math.isnan(by_id["6000000000000000000000a1"]["valence"])
    assert {r["speaker"] for r in result.records} == {""}
    rejects = {r.utt_id: r for r in result.rejects}
    assert rejects["6000000000000000000000a2"].value == "'joy'"
    assert rejects["6000000000000000000000a5"].value == "fear;surprise"


def test_aihub_seed001_sample_labels(aihub_corpus, aihub_sample):
    """The 11 rows quoted in seed 001 get the labels of its rule (stated here)."""
    root, _ = aihub_corpus
    header, sample, _ = aihub_sample
    assert "4번감정세기" in header
    out = read_aihub(root, label_rule="intensity_sum")
    labels = {r.utt_id: r.outcome.emotions for r in out.rows}
    assert [labels[row[0]] for row in sample] == [
        ("happy",), ("happy",), ("happy",), ("happy",), ("happy",), ("happy",),
        ("sad",), ("happy",), ("sad",), ("happy",), ("sad",)]
    # Row 7: happy 2+1 = 3 ties sad 1+1+1 = 3; sad was chosen by more annotators.
    # Row 10: four annotators chose neutral (intensity 0), one happy at 1: happy wins.
    assert labels[sample[6][0]] == ("sad",) and labels[sample[9][0]] == ("happy",)


def test_aihub_majority_rule(aihub_corpus, aihub_sample, tmp_path):
    root, _ = aihub_corpus
    result = prepare(_opts("aihub", root, tmp_path, label_rule="majority"))
    kept = {r["utt_id"]: r["emotion"] for r in result.records}
    _, sample, _ = aihub_sample
    # Row 7 (2 happy, 3 sad) -> sad; row 9 (1 happy, 2 sad, 2 neutral) has no 3-of-5 majority.
    assert kept[sample[6][0]] == "sad"
    assert kept[sample[9][0]] == "neutral"  # 4 of 5 chose neutral
    no_majority = {r.utt_id: r.value for r in result.rejects if r.reason == "no_majority"}
    assert sample[8][0] in no_majority and "fewer than 3 agree" in no_majority[sample[8][0]]
    assert result.sidecar["label_rule"] == "majority" and result.sidecar["min_agree"] == 3
    loose = prepare(_opts("aihub", root, tmp_path, label_rule="majority", min_agree=2, tie_policy="first"))
    assert sample[8][0] in {r["utt_id"] for r in loose.records}


def test_aihub_binary_from_emotion(aihub_corpus, tmp_path):
    root, _ = aihub_corpus
    result = prepare(_opts("aihub", root, tmp_path, classes="binary"))
    emotions = collections.Counter(r["emotion"] for r in result.records)
    assert emotions == {"positive": 9, "negative": 5}  # 8 + b1 happy; 4 sad + 1 angry
    excluded = [(r.utt_id, r.value) for r in result.rejects if r.reason == "excluded_class"]
    assert excluded == [("6000000000000000000000a4", "neutral")]  # neutral: not in the binary task


def test_reader_errors_are_clear(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for fmt, needle in (("kemdy20", "SessNN_eval.csv"), ("kemdy19", "_F_res.csv"), ("aihub", "CSV")):
        with pytest.raises(PrepareError, match=needle):
            prepare(_opts(fmt, str(empty), tmp_path))
    with pytest.raises(PrepareError, match="no speaker or session id"):
        prepare(_opts("aihub", str(empty), tmp_path, split="speaker"))
    with pytest.raises(PrepareError, match="does not apply to kemdy20"):
        prepare(_opts("kemdy20", str(empty), tmp_path, label_rule="intensity_sum"))
    bad = tmp_path / "bad"
    (bad / "r").mkdir(parents=True)
    (bad / "r" / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(PrepareError, match=r"r/x.csv: not an AI Hub annotation file, missing column"):
        prepare(_opts("aihub", str(bad), tmp_path))
    assert prepare_lib.DEFAULT_SPLIT == {"aihub": "age_gender", "kemdy19": "session", "kemdy20": "session"}


def test_kemdy20_file_without_header_row_keeps_its_first_row(kemdy20_corpus, tmp_path):
    from tfsent.corpus import layouts

    root, expected = kemdy20_corpus
    layouts.write_table(os.path.join(root, "annotation", "Sess33_eval.csv"), [
        layouts.kemdy20_row(1, "Sess33_script01_User065F_001", "neutral", 3, 3)])
    result = prepare(_opts("kemdy20", root, tmp_path))
    assert "Sess33_script01_User065F_001" in {r["utt_id"] for r in result.records}
    assert result.sidecar["counts"]["notes"]["files_without_header_row"] == 1
    assert result.sidecar["counts"]["rows_read"] == len(expected) - 1


def test_strict_ignores_policy_exclusions(kemdy19_corpus, tmp_path):
    root, _ = kemdy19_corpus
    opts = _opts("kemdy19", root, tmp_path, tie_policy="first", strict=True)
    result = prepare_lib.run_prepare(opts, stdout=open(os.devnull, "w"))
    assert result.rejects and not result.errors  # only excluded_other_gender rows
    with pytest.raises(StrictRejectsError, match="--strict: 2 row"):
        prepare_lib.run_prepare(_opts("kemdy19", root, tmp_path, strict=True),
                                stdout=open(os.devnull, "w"))
