"""Writers for the exact on-disk layouts of the corpora (test fixtures and benchmarks).

These produce small copies shaped like the real deliveries — header and sub-header
rows, per-file encodings, folder names — so the readers can be tested on them.
They are not the demo corpus (see `demo_corpus.py`); they write exactly the cells
they are given, quirks included.

Example:
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> write_wav(f"{root}/a.wav", frames=160)
    >>> write_kemdy20_eval(f"{root}/annotation/Sess01_eval.csv",
    ...                    [kemdy20_row(1, "Sess01_script01_User001F_001", "happy", 4.1, 3.3)])
"""

import csv
import io
import os
import struct

AIHUB_HEADER = [
    "wav_id", "발화문", "상황", "1번 감정", "1번 감정세기", "2번 감정", "2번 감정세기",
    "3번 감정", "3번 감정세기", "4번 감정", "4번감정세기", "5번 감정", "5번 감정세기", "나이", "성별",
]
_RATERS = [f"Eval{i:02d}{'F' if i % 2 else 'M'}" for i in range(1, 11)]
KEMDY20_HEADER = ["Numb", "Wav", "", "Segment ID", "Total Evaluation", "", ""] + [
    cell for r in _RATERS for cell in (r, "", "")
]
KEMDY20_SUBHEADER = ["", "start", "end", "", "Emotion", "Valence", "Arousal"] + [
    "Emotion", "Valence", "Arousal"
] * 10
KEMDY19_HEADER = [
    "Numb", "Wav", "", "ECG", "", "E4-EDA", "", "E4-TEMP", "", "Segment ID", "Total Evaluation", "", "",
] + [cell for r in _RATERS for cell in (r, "", "")]
KEMDY19_SUBHEADER = ["", "start", "end"] + ["start", "end"] * 3 + [
    "", "Emotion", "Valence", "Arousal"
] + ["Emotion", "Valence", "Arousal"] * 10


def wav_bytes(frames=160, sample_rate=16000, channels=1, bits=16, truncate_to=None):
    """A PCM WAV file as bytes (silence); 8-bit is unsigned like real WAVs.

    `truncate_to` cuts the bytes while the header keeps the full data size.
    """
    block = channels * bits // 8
    data = (b"\x80" if bits == 8 else b"\x00") * (frames * block)
    fmt = struct.pack("<HHIIHH", 1, channels, sample_rate, sample_rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    out = b"RIFF" + struct.pack("<I", len(body)) + body
    return out[:truncate_to] if truncate_to is not None else out


def write_wav(path, frames=160, sample_rate=16000, channels=1, bits=16, truncate_to=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(wav_bytes(frames, sample_rate, channels, bits, truncate_to))


def write_text(path, text, encoding="cp949"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(text.encode(encoding))


def write_table(path, rows, encoding="utf-8", delimiter=","):
    """Writes rows (lists of cells) as CSV in the given encoding (`utf-8-sig` for a BOM)."""
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    write_text(path, buf.getvalue(), encoding)


def kemdy20_row(numb, segment_id, emotion, valence, arousal, raters=None, start=0.0, end=1.0):
    """One 37-cell KEMDy20 annotation row; `raters` is 10 (emotion, valence, arousal)."""
    raters = raters or [(emotion.split(";")[0], 3, 3)] * 10
    return [str(numb), str(start), str(end), segment_id, emotion, str(valence), str(arousal)] + [
        str(x) for r in raters for x in r
    ]


def kemdy19_row(numb, segment_id, emotion, valence, arousal, raters=None):
    """One 43-cell KEMDy19 annotation row."""
    raters = raters or [(emotion.split(";")[0], 3, 3)] * 10
    return [str(numb), "0.0", "1.0"] + ["0", "1"] * 3 + [segment_id, emotion, str(valence), str(arousal)] + [
        str(x) for r in raters for x in r
    ]


def write_kemdy20_eval(path, rows, encoding="utf-8"):
    write_table(path, [KEMDY20_HEADER, KEMDY20_SUBHEADER] + rows, encoding)


def write_kemdy19_res(path, rows, encoding="utf-8"):
    write_table(path, [KEMDY19_HEADER, KEMDY19_SUBHEADER] + rows, encoding)


def write_aihub_csv(path, rows, encoding="cp949", delimiter=","):
    write_table(path, [AIHUB_HEADER] + rows, encoding, delimiter)


def build_kemdy20(root, rows=13462, sessions=40, frames=16, text_encoding="cp949"):
    """A synthetic KEMDy20 copy of `rows` segments (tiny wavs) for benchmarks."""
    emotions = ["neutral", "happy", "sad", "angry", "surprise", "fear", "disqust", "happy;neutral"]
    wav = wav_bytes(frames)
    per = [rows // sessions + (1 if s < rows % sessions else 0) for s in range(sessions)]
    n = 0
    for s, count in enumerate(per, start=1):
        table = []
        folder = os.path.join(root, "wav", f"Session{s:02d}")
        os.makedirs(folder, exist_ok=True)
        for i in range(count):
            user = 2 * s - (i % 2)
            seg = f"Sess{s:02d}_script{i // 40 + 1:02d}_User{user:03d}{'MF'[i % 2]}_{i % 40 + 1:03d}"
            emotion = emotions[n % len(emotions)]
            table.append(kemdy20_row(i + 1, seg, emotion, 1 + (n % 5), 1 + (n * 3 % 5)))
            with open(os.path.join(folder, seg + ".wav"), "wb") as f:
                f.write(wav)
            with open(os.path.join(folder, seg + ".txt"), "wb") as f:
                f.write(f"c/ 안녕하세요 {n} 번째 문장 b/".encode(text_encoding))
            n += 1
        write_kemdy20_eval(os.path.join(root, "annotation", f"Sess{s:02d}_eval.csv"), table)
    return n
