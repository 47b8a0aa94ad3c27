"""Reader for ETRI KEMDy19.

Layout: `annotation/SessionNN_F_res.csv` and `SessionNN_M_res.csv` (Numb, Wav
start/end, ECG start/end, EDA start/end, TEMP start/end, Segment ID, Total
Evaluation, valence, arousal, then 10 raters x (Emotion, Valence, Arousal)), a
header and a sub-header row; wavs (and `.txt` transcripts when present) under
`wav/SessionNN/SessNN_impro01/SessNN_impro01_F001.wav` (script and impro folders).
Each annotation file keeps only the segments of its own gender: the others are
reported as `excluded_other_gender` (they belong to the other file).
Speaker = session + gender (one actor of each gender per session).

Example:
    >>> out = read_kemdy19("/data/KEMDy19")  # doctest: +SKIP
    >>> out.rows[0].speaker
    'Sess01_F'
"""

import os
import re

from tfsent.corpus import labels
from tfsent.corpus.common import PrepareError
from tfsent.corpus.common import ReaderOutput
from tfsent.corpus.common import Reject
from tfsent.corpus.common import Row
from tfsent.corpus.common import index_files
from tfsent.corpus.encoding import DecodeError
from tfsent.corpus.kemdy20 import annotation_rows
from tfsent.corpus.kemdy20 import match_segment_id
from tfsent.corpus.kemdy20 import parse_va
from tfsent.corpus.kemdy20 import rater_votes
from tfsent.corpus.kemdy20 import read_transcript

SOURCE = "kemdy19"
EXPECTED_SAMPLE_RATE = 16000
_FILE = re.compile(r"^Session(\d+)_([FM])_res\.csv$", re.IGNORECASE)
_SEGMENT = re.compile(r"^Sess(\d+)_((?:script|impro)\d+)_([MF])(\d+)$", re.IGNORECASE)
_COL_ID, _COL_EMOTION, _COL_VALENCE, _COL_AROUSAL, _COL_RATERS = 9, 10, 11, 12, 13


def read_kemdy19(data_dir, label_rule="total", min_agree=3, progress=None):
    """Reads a KEMDy19 copy rooted at `data_dir` (never written to); see the module doc."""
    if label_rule != "total":
        raise PrepareError(f"--label_rule={label_rule} does not apply to kemdy19 (use total)")
    ann_dir = os.path.join(data_dir, "annotation")
    tables = []
    if os.path.isdir(ann_dir):
        tables = sorted(
            (int(m.group(1)), m.group(2).upper(), name)
            for name in os.listdir(ann_dir)
            if (m := _FILE.match(name))
        )
    if not tables:
        raise PrepareError(
            f"no annotation/SessionNN_F_res.csv or _M_res.csv under {data_dir} (is it KEMDy19?)"
        )
    present = set(index_files(data_dir, "wav"))
    out = ReaderOutput()
    bar = progress(len(present) // 2 or 1) if progress else None
    seen = {}
    for file_session, file_gender, name in tables:
        relname = f"annotation/{name}"
        rows = annotation_rows(os.path.join(ann_dir, name), relname, out, id_column=_COL_ID,
                               emotion_column=_COL_EMOTION, segment=_SEGMENT, bar=bar)
        for line, fields, utt_id in rows:

            def reject(reason, value=""):
                out.rejects.append(Reject(relname, line, utt_id, reason, value))

            if len(fields) <= _COL_AROUSAL:
                reject("malformed_row", f"{len(fields)} fields, expected 43")
                continue
            m, problem = match_segment_id(utt_id, file_session, _SEGMENT)
            if problem:
                reject(*problem)
                continue
            if int(m.group(1)) != file_session:
                reject("session_mismatch", f"{utt_id!r} in {name}")
                continue
            gender_letter = m.group(3).upper()
            if gender_letter != file_gender:
                reject("excluded_other_gender", f"{gender_letter} segment in the {file_gender} file")
                continue
            if utt_id in seen:
                reject("duplicate_utt_id", f"first seen at {seen[utt_id]}")
                continue
            seen[utt_id] = f"{relname}:{line}"
            session = f"Sess{file_session:02d}"
            stem = f"wav/Session{file_session:02d}/{session}_{m.group(2)}/{utt_id}"
            try:
                outcome = labels.total_evaluation(fields[_COL_EMOTION])
                text_raw, text = read_transcript(data_dir, stem + ".txt", present, out)
            except labels.LabelError as err:
                reject(err.reason, err.value)
                continue
            except (DecodeError, OSError) as err:
                reject("undecodable_text", f"{stem}.txt: {err}")
                continue
            out.rows.append(
                Row(
                    utt_id=utt_id,
                    audio_path=stem + ".wav",
                    text=text,
                    text_raw=text_raw,
                    speaker=f"{session}_{gender_letter}",
                    session=session,
                    gender="male" if gender_letter == "M" else "female",
                    age="",
                    source=SOURCE,
                    outcome=outcome,
                    votes=rater_votes(fields, _COL_RATERS, out),
                    valence=parse_va(fields[_COL_VALENCE], "valence", out),
                    arousal=parse_va(fields[_COL_AROUSAL], "arousal", out),
                    source_file=relname,
                    line=line,
                )
            )
    if bar:
        bar.close()
    return out
