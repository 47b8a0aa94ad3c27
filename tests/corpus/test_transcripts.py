"""Timed transcripts (.srt, .vtt, .tsv): parsing and the one-line errors for bad files."""
import pytest

from tfsent.core.errors import UsageError
from tfsent.corpus.transcripts import Cue, check_within, read_transcript, text_between

SRT = """1
00:00:01,000 --> 00:00:02,500
오늘 정말
행복해요

2
00:00:04,250 --> 00:00:06,000
화가 나요
"""

VTT = """WEBVTT - demo

NOTE a comment
that spans lines

intro
00:01.000 --> 00:02.500 align:start
<v 화자1>오늘 정말</v> 행복해요

00:00:04.250 --> 00:00:06.000
화가 나요
"""

TSV = "start\tend\ttext\n4.25\t6.0\t화가 나요\n1.0\t2.5\t오늘 정말 행복해요\n"

EXPECTED = [Cue(1.0, 2.5, "오늘 정말 행복해요"), Cue(4.25, 6.0, "화가 나요")]


def _write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return str(path)


@pytest.mark.parametrize("name,text,encoding", [("a.srt", SRT, "utf-8"), ("a.vtt", VTT, "utf-8-sig"),
                                                ("a.tsv", TSV, "cp949"), ("A.SRT", SRT.replace("\n", "\r\n"),
                                                                          "cp949")])
def test_formats_give_the_same_cues(tmp_path, name, text, encoding):
    assert read_transcript(_write(tmp_path, name, text, encoding)) == EXPECTED


def test_text_between_joins_overlapping_cues():
    assert text_between(EXPECTED, 0.0, 1.0) == ""          # touching is not overlapping
    assert text_between(EXPECTED, 2.0, 3.0) == "오늘 정말 행복해요"
    assert text_between(EXPECTED, 2.0, 4.5) == "오늘 정말 행복해요 화가 나요"
    assert text_between(EXPECTED, 6.0, 9.0) == ""


@pytest.mark.parametrize("name,text,message", [
    ("a.txt", "hello", "unknown transcript format '.txt'"),
    ("a.srt", "1\n00:00:01,000 -> 00:00:02,000\nhi\n", "a.srt:1: cue without a START --> END line"),
    ("a.srt", "1\n00:00:01.0 --> 00:00:02,000\nhi\n", "a.srt:2: malformed cue timing"),
    ("a.srt", "1\n00:00:03,000 --> 00:00:02,000\nhi\n", "a.srt:2: cue ends (2 s) before it starts (3 s)"),
    ("a.srt", "1\n00:00:01,000 --> 00:00:02,000\n\n2\n00:00:03,000 --> 00:00:04,000\nhi\n", "cue without text"),
    ("a.vtt", "00:01.000 --> 00:02.000\nhi\n", "a.vtt:1: a WebVTT file starts with 'WEBVTT'"),
    ("a.vtt", "WEBVTT\n\n00:01.000 --> 00:xx.000\nhi\n", "a.vtt:3: malformed cue timing"),
    ("a.tsv", "1.0\t2.0\n", "a.tsv:1: want START<TAB>END<TAB>TEXT; got 2 field(s)"),
    ("a.tsv", "1.0\t2.0\thi\none\t2.0\tho\n", "a.tsv:2: START and END must be seconds"),
    ("a.tsv", "2.0\t1.0\thi\n", "need 0 <= START <= END"),
    ("a.tsv", "\n\n", "no cues"),
])
def test_bad_files_raise_one_line_usage_errors(tmp_path, name, text, message):
    with pytest.raises(UsageError) as raised:
        read_transcript(_write(tmp_path, name, text))
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_cues_past_the_audio_are_rejected():
    check_within(EXPECTED, 6.05)  # within the rounding tolerance
    with pytest.raises(UsageError, match=r"1 cue\(s\) end after the audio \(5.000 s\), the first at 4.25-6 s"):
        check_within(EXPECTED, 5.0, "a.srt")


def test_missing_file(tmp_path):
    with pytest.raises(UsageError, match="no such transcript file"):
        read_transcript(str(tmp_path / "nope.srt"))
