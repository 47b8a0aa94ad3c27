"""Property tests of the readers (issue 17): whatever the bytes, a row is kept or rejected with a
reason and a file is read or rejected, never a crash.

The inputs come from `hypothesis` strategies: raw bytes, WAV files with random (and with coherent)
headers, CSV annotations of random cells written in the encodings the corpora use. The settings
profile in tests/conftest.py makes the runs derandomized (the same examples on every run of the same
tests, no example database) and cheap; a failure prints the falsifying example, shrunk.
"""

import csv
import io
import os
import shutil
import struct
import tempfile
from collections import Counter

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tfsent.core.errors import UsageError
from tfsent.core.inputs import MIN_AUDIO_SECONDS
from tfsent.corpus import audio_check
from tfsent.corpus.common import index_files
from tfsent.corpus.encoding import DecodeError, decode_bytes
from tfsent.corpus.prepare import PrepareOptions, prepare

REASONS = {None, audio_check.MISSING, audio_check.EMPTY, audio_check.TRUNCATED, audio_check.UNREADABLE,
           audio_check.UNDECODABLE, audio_check.TOO_SHORT, audio_check.NON_FINITE}
ENCODINGS = ("utf-8", "utf-8-sig", "cp949", "utf-16", "utf-16-le", "utf-16-be")
CELLS = ("", "NaN", "nan", "inf", "-1", "3.5", "99", "happy", "Happy;sad", "ANGER", "😀", "\t", " ", "\"", "a,b",
         "Sess01_script01_User001F_001", "../../x", "null", "중립", "화남;슬픔", "\x00")

U16 = st.integers(0, 2**16 - 1)
U32 = st.integers(0, 2**32 - 1)
# Sizes around the 44-byte canonical WAV header, and plain short garbage.
raw_bytes = st.sampled_from([64, 0, 1, 2, 12, 44, 45, 300]).flatmap(
    lambda n: st.binary(max_size=n) if n == 64 else st.binary(min_size=n, max_size=n))
cells = st.one_of(st.sampled_from(CELLS), st.text(max_size=12))
encodings = st.sampled_from(ENCODINGS)


def _fmt_chunk(format_tag, channels, rate, byte_rate, block_align, bits):
    return b"fmt " + struct.pack("<I", 16) + struct.pack("<HHIIHH", format_tag, channels, rate, byte_rate,
                                                         block_align, bits)


# Any field values, boundary values favoured.
random_fmt_chunks = st.builds(
    _fmt_chunk, st.sampled_from([1, 3, 0, 65534]) | U16, st.sampled_from([0, 1, 2, 255]) | U16,
    st.sampled_from([0, 1, 8000, 16000, 2**31]) | U32, U32, st.sampled_from([0, 1, 2, 3, 4]) | U16,
    st.sampled_from([0, 7, 8, 16, 24, 32]) | U16)


@st.composite
def coherent_fmt_chunks(draw):
    """A fmt chunk a decoder accepts (PCM 8/16 bit or float32), so the data bytes get decoded; 1 kHz
    lets a body of under 2,000 bytes last the 0.1 s minimum."""
    format_tag, bits = draw(st.sampled_from([(1, 8), (1, 16), (3, 32)]))
    channels, rate = draw(st.sampled_from([1, 2])), draw(st.sampled_from([1000, 8000, 16000]))
    block_align = channels * bits // 8
    return _fmt_chunk(format_tag, channels, rate, rate * block_align, block_align, bits)


@st.composite
def wav_files(draw, fmt_chunks=coherent_fmt_chunks() | random_fmt_chunks,
              bodies=st.binary(min_size=800, max_size=2000) | raw_bytes, tampered=st.booleans()):
    """RIFF/WAVE bytes, a fmt and a data chunk: well-formed (true sizes, fmt first) or, when
    `tampered` draws True, with random RIFF and data sizes and the chunks in either order."""
    fmt, body = draw(fmt_chunks), draw(bodies)
    size, riff_size, reverse = len(body), 12 + len(fmt) + len(body), False
    if draw(tampered):
        size = draw(st.sampled_from([0, 1, 2**31, 2**32 - 1, len(body)]) | U32)
        riff_size, reverse = draw(U32), draw(st.booleans())
    chunks = [fmt, b"data" + struct.pack("<I", size) + body]
    return b"RIFF" + struct.pack("<I", riff_size) + b"WAVE" + b"".join(chunks[::-1] if reverse else chunks)


encoded_cells = st.builds(lambda parts, encoding: "".join(parts).encode(encoding, errors="replace"),
                          st.lists(cells, max_size=8), encodings)


@given(data=raw_bytes | encoded_cells)
def test_decode_bytes_decodes_or_raises_decode_error(data):
    try:
        text, encoding = decode_bytes(data)
    except DecodeError:
        return
    assert isinstance(text, str) and encoding in ENCODINGS


@given(text=st.text(), encoding=st.sampled_from(["utf-8-sig", "utf-16"]))
def test_decode_bytes_round_trips_text_saved_with_a_bom(text, encoding):
    assert decode_bytes(text.encode(encoding)) == (text, encoding)


@example(text="오늘")  # a real two-syllable transcript: 6 bytes (once taken for UTF-16-BE without a BOM)
@given(text=st.text().filter(lambda t: "\x00" not in t and not t.startswith("\ufeff")))
def test_decode_bytes_round_trips_utf8_text_without_nul(text):
    assert decode_bytes(text.encode("utf-8")) == (text, "utf-8")


def _check_audio(data, verify):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "x.wav")
        with open(path, "wb") as f:
            f.write(data)
        return audio_check.check_audio(path, verify=verify)


@pytest.mark.parametrize("verify", [False, True])
@given(data=wav_files() | raw_bytes)
def test_check_audio_never_raises_and_names_a_known_reason(verify, data):
    info = _check_audio(data, verify)
    assert info.error in REASONS
    if info.error is None:
        assert info.sample_rate > 0 and info.duration >= MIN_AUDIO_SECONDS


@given(data=wav_files(coherent_fmt_chunks(), st.binary(max_size=64) | st.binary(min_size=800, max_size=2000),
                     tampered=st.just(False)))
def test_check_audio_accepts_well_formed_wavs_of_random_samples(data):
    # Any bytes are valid PCM samples; float32 ones may be NaN/Inf. The header alone says the rest.
    format_tag, _, rate, _, block_align, _ = struct.unpack_from("<HHIIHH", data, 20)
    frames = (len(data) - 44) // block_align
    info = _check_audio(data, verify=True)
    if frames == 0:
        expected = {audio_check.EMPTY}
    else:
        expected = {audio_check.TOO_SHORT if frames / rate < MIN_AUDIO_SECONDS else None}
        if format_tag == 3:  # the full decode runs first
            expected.add(audio_check.NON_FINITE)
    assert info.error in expected, info
    if info.error is None:
        assert (info.sample_rate, info.frames) == (rate, frames)


@st.composite
def annotations(draw, segments):
    """A KEMDy20 `SessNN_eval.csv` (two header rows), one row per segment: a real segment ID or a
    random cell, then a random number of random cells."""
    rows = [["Numb", "Wav", "", "Segment ID", "Total Evaluation", "", ""] + [""] * 30,
            ["", "start", "end", "", "Emotion", "Valence", "Arousal"] + [""] * 30]
    for n, segment in enumerate(segments, 1):
        row = [str(n), "0", "1", draw(st.just(segment) | st.just(segment) | cells)]
        width = draw(st.sampled_from([0, 3, 33, 40]))
        rows.append(row + draw(st.lists(cells, min_size=width, max_size=width)))
    return rows


def _check_prepared(result, corpus):
    """Every wav is kept or rejected; every annotation CSV is read or rejected; rejects say why."""
    kept = {r["audio_path"] for r in result.records}
    rejected = {r.source_file for r in result.rejects} | {r.utt_id for r in result.rejects}
    assert all(r.reason for r in result.rejects)
    for rel in index_files(corpus):
        stem, ext = os.path.splitext(os.path.basename(rel))
        if ext == ".wav":
            assert rel in kept or rel in rejected or stem in rejected, rel
        if ext == ".csv" and rel.startswith("annotation/"):  # not the EDA sensor tables
            assert rel in result.sidecar["annotation_files"] or rel in rejected, rel


def test_prepare_keeps_or_rejects_every_row_and_file_of_random_annotations(kemdy20_corpus):
    root, _ = kemdy20_corpus
    segments = [os.path.splitext(os.path.basename(p))[0] for p in index_files(root, "wav") if p.endswith(".wav")]
    outcomes = Counter()

    # `given` on an inner function: the function-scoped corpus is built once and only read (each
    # example works on its own copy), and the outcomes are counted over all examples.
    @settings(max_examples=20)
    @given(rows=annotations(segments), encoding=encodings)
    def check(rows, encoding):
        with tempfile.TemporaryDirectory() as tmp:
            copy = os.path.join(tmp, "corpus")
            shutil.copytree(root, copy)
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\r\n").writerows(rows)
            with open(os.path.join(copy, "annotation", "Sess01_eval.csv"), "wb") as f:
                f.write(buf.getvalue().encode(encoding, errors="replace"))
            try:
                result = prepare(PrepareOptions(format="kemdy20", data_dir=copy, out=os.path.join(tmp, "out"),
                                                progress=False))
            except UsageError:
                outcomes["error"] += 1
                return
            outcomes["prepared"] += 1
            _check_prepared(result, copy)

    check()
    assert outcomes["prepared"] > 0, outcomes
