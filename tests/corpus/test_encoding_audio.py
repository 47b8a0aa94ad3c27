"""Per-file text decoding, transcript cleaning and header-based audio checks."""

import unicodedata

import numpy as np
import pytest
import soundfile

from tfsent.corpus import audio_check
from tfsent.corpus import layouts
from tfsent.corpus.encoding import DecodeError
from tfsent.corpus.encoding import clean_transcript
from tfsent.corpus.encoding import decode_bytes


@pytest.mark.parametrize("encoding, detected", [
    ("cp949", "cp949"), ("euc-kr", "cp949"), ("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"),
])
def test_decode_detects_encoding(encoding, detected):
    text = "나 요즘 너무 우울해 죽겠어."
    assert decode_bytes(text.encode(encoding)) == (text, detected)


def test_cp949_only_syllables_and_garbage():
    assert decode_bytes("똠방각하 펲".encode("cp949"))[0] == "똠방각하 펲"  # outside EUC-KR
    with pytest.raises(DecodeError):
        decode_bytes(b"\xff\xff\x80\x81\xfe")


def test_clean_transcript_strips_tags_and_normalises_nfc():
    assert clean_transcript("c/ 어/ 그래서 b/ 갔어 +  *") == "어 그래서 갔어"
    assert clean_transcript("n/ N/ u/ l/ 하하, 응") == "하하 응"
    assert clean_transcript("(3학년)/(삼 학년) 이야") == "3학년 이야"
    nfd = unicodedata.normalize("NFD", "감정 인식")
    assert nfd != "감정 인식" and clean_transcript(nfd) == "감정 인식"


def _write(tmp_path, name, **kw):
    path = str(tmp_path / name)
    layouts.write_wav(path, **kw)
    return path


def test_header_checks(tmp_path):
    ok = audio_check.check_audio(_write(tmp_path, "a.wav", frames=1600))
    assert (ok.error, ok.sample_rate, ok.channels, ok.frames) == (None, 16000, 1, 1600)
    stereo = audio_check.check_audio(_write(tmp_path, "b.wav", frames=4800, sample_rate=48000, channels=2))
    assert (stereo.error, stereo.sample_rate, stereo.channels, stereo.frames) == (None, 48000, 2, 4800)
    u8 = audio_check.check_audio(_write(tmp_path, "c.wav", frames=1600, bits=8))
    assert (u8.error, u8.bits, u8.frames) == (None, 8, 1600)
    cut = audio_check.check_audio(_write(tmp_path, "d.wav", frames=1600, truncate_to=500))
    assert cut.error == "truncated_audio" and "3200" in cut.detail
    assert audio_check.check_audio(_write(tmp_path, "e.wav", frames=0)).error == "empty_audio"
    (tmp_path / "f.wav").write_bytes(b"")
    assert audio_check.check_audio(str(tmp_path / "f.wav")).error == "empty_audio"
    assert audio_check.check_audio(str(tmp_path / "missing.wav")).error == "missing_audio"
    (tmp_path / "g.wav").write_bytes(b"this is not audio at all" * 10)
    assert audio_check.check_audio(str(tmp_path / "g.wav")).error == "unreadable_audio"


def test_header_agrees_with_soundfile_and_verify_decodes(tmp_path):
    path = str(tmp_path / "sf.wav")
    soundfile.write(path, np.zeros((4410, 2), "float32"), 44100, subtype="PCM_24")
    info = audio_check.check_audio(path)
    sf = soundfile.info(path)
    assert (info.sample_rate, info.channels, info.frames) == (sf.samplerate, sf.channels, sf.frames)
    assert audio_check.check_audio(path, verify=True).error is None
    flac = str(tmp_path / "x.flac")  # non-RIFF formats go through soundfile
    soundfile.write(flac, np.zeros(1600, "float32"), 16000)
    assert audio_check.check_audio(flac).frames == 1600


def test_too_short_and_non_finite_audio_are_rejected(tmp_path):
    # issue 17, classes 1-2: a 1 ms clip and a float WAV full of NaN used to be kept.
    short = audio_check.check_audio(_write(tmp_path, "short.wav", frames=16))
    assert short.error == "too_short_audio" and "1.0 ms" in short.detail
    nan = str(tmp_path / "nan.wav")
    samples = np.full(16000, np.nan, "float32")
    samples[:100] = 0.1
    soundfile.write(nan, samples, 16000, subtype="FLOAT")
    assert audio_check.check_audio(nan).error is None  # the header cannot tell
    info = audio_check.check_audio(nan, verify=True)
    assert info.error == "non_finite_audio" and "15900" in info.detail


def test_utf16_without_bom_is_decoded(tmp_path):
    # issue 17, class 8: UTF-16 without a BOM decoded "as UTF-8" into NUL-riddled malformed rows.
    from tfsent.corpus.encoding import decode_bytes

    text = "Numb,Segment ID,감정\n1,Sess01_x,happy\n"
    assert decode_bytes(text.encode("utf-16-le")) == (text, "utf-16-le")
    assert decode_bytes(text.encode("utf-16-be")) == (text, "utf-16-be")
    assert decode_bytes(text.encode("utf-8")) == (text, "utf-8")
