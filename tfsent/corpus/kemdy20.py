"""Reader for ETRI KEMDy20 (v1.1) and the parts it shares with KEMDy19.

Layout: `annotation/SessNN_eval.csv` (37 columns by position: Numb, Wav start,
Wav end, Segment ID, Total Evaluation Emotion / Valence / Arousal, then 10 raters x
(Emotion, Valence, Arousal)); a header row plus a sub-header row
(`,start,end,,Emotion,Valence,Arousal,...`) which are skipped and counted;
`wav/SessionNN/<Segment ID>.wav` with a one-line `<Segment ID>.txt` transcript
(CP949). `Sess17_eval.csv` names its segments `Sess42_...`: they are Sess17 and are
renamed (counted in notes). The label comes from the Total Evaluation column
(`total` rule); `;`-joined labels are ties for the tie policy.

Example:
    >>> out = read_kemdy20("/data/KEMDy20_v1_1")  # doctest: +SKIP
    >>> out.rows[0].utt_id, out.rows[0].speaker, out.rows[0].session
    ('Sess01_script01_User002M_001', 'User002M', 'Sess01')
"""

import math
import os
import re

from tfsent.corpus import labels
from tfsent.corpus.common import PrepareError
from tfsent.corpus.common import ReaderOutput
from tfsent.corpus.common import Reject
from tfsent.corpus.common import Row
from tfsent.corpus.common import index_files
from tfsent.corpus.common import parse_float
from tfsent.corpus.common import read_csv_rows
from tfsent.corpus.common import safe_relpath
from tfsent.corpus.emotions import normalize_emotion
from tfsent.corpus.encoding import DecodeError
from tfsent.corpus.encoding import clean_transcript
from tfsent.corpus.encoding import read_text_file

SOURCE = "kemdy20"
EXPECTED_SAMPLE_RATE = 16000
_FILE = re.compile(r"^Sess(\d+)_eval\.csv$", re.IGNORECASE)
_SEGMENT = re.compile(r"^Sess(\d+)_((?:script|impro)\d+)_User(\d+)([MF])_(\d+)$", re.IGNORECASE)
# (file session, id session) pairs known to be the same session.
_SESSION_ALIASES = {(17, 42)}


def is_subheader(emotion_cell):
    """The sub-header row carries `Emotion` where data rows carry the label."""
    return emotion_cell.strip().lower() == "emotion"


def annotation_rows(path, relname, out, *, id_column, emotion_column, segment, bar=None):
    """The data rows of a KEMDy annotation CSV, as `(line, fields, utt_id)`.

    Skips the header row (a file without one starts with data, which is kept) and the rater
    sub-header row, noting both in `out.notes`, and counts every data row in `out.rows_read`.
    """
    first = True
    for line, fields in read_csv_rows(path, relname, out):
        if first:
            first = False
            if not (len(fields) > id_column and segment.match(fields[id_column])):
                continue
            out.notes["files_without_header_row"] += 1
        if len(fields) > emotion_column and is_subheader(fields[emotion_column]):
            out.notes["subheader_rows_skipped"] += 1
            continue
        out.rows_read += 1
        if bar:
            bar.update()
        yield line, fields, fields[id_column] if len(fields) > id_column else ""


def match_segment_id(utt_id, file_session, segment):
    """`(match, None)` for a well-formed segment id, else `(None, (reason, value))` for the rejects."""
    m = segment.match(utt_id)
    if m:
        return m, None
    if safe_relpath(f"wav/Session{file_session:02d}/{utt_id}.wav") is None:
        return None, ("path_outside_data_dir", repr(utt_id))
    return None, ("bad_segment_id", repr(utt_id))


def parse_va(text, name, out):
    """A 1-5 valence/arousal mean as float; NaN (noted) when missing or invalid."""
    value = parse_float(text)
    if math.isnan(value) or not 1.0 <= value <= 5.0:
        out.notes[f"{name}_missing_or_invalid"] += 1
        return math.nan
    return value


def rater_votes(fields, first, out):
    """Counts the raters' emotion cells at `first, first+3, ...` (unknown ones noted)."""
    emotions = []
    for i in range(first, len(fields), 3):
        cell = fields[i]
        if not cell:
            continue
        for part in cell.split(";"):
            emotion = normalize_emotion(part)
            if emotion is None:
                out.notes["unknown_rater_emotion"] += 1
            else:
                emotions.append(emotion)
    return labels.vote_counts(emotions)


def read_transcript(data_dir, rel_txt, present, out):
    """Returns `(text_raw, text)` or raises DecodeError; ('', '') when absent (noted)."""
    if rel_txt not in present:
        out.notes["missing_transcript"] += 1
        return "", ""
    raw, encoding = read_text_file(os.path.join(data_dir, rel_txt))
    out.encodings[encoding] += 1
    raw = " ".join(raw.split("\n")).strip()
    text = clean_transcript(raw)
    if not text:
        out.notes["empty_transcript"] += 1
    return raw, text


def read_kemdy20(data_dir, label_rule="total", min_agree=3, progress=None):
    """Reads a KEMDy20 copy rooted at `data_dir` (never written to).

    Args:
        data_dir: the corpus root (holding `annotation/` and `wav/`).
        label_rule: only `total` (the Total Evaluation column).
        min_agree: unused.
        progress: optional callable `(total) -> Progress` for a progress bar.

    Returns:
        A `ReaderOutput`.
    """
    if label_rule != "total":
        raise PrepareError(f"--label_rule={label_rule} does not apply to kemdy20 (use total)")
    ann_dir = os.path.join(data_dir, "annotation")
    tables = []
    if os.path.isdir(ann_dir):
        tables = sorted(
            (int(m.group(1)), name)
            for name in os.listdir(ann_dir)
            if (m := _FILE.match(name))
        )
    if not tables:
        raise PrepareError(f"no annotation/SessNN_eval.csv under {data_dir} (is it KEMDy20?)")
    present = set(index_files(data_dir, "wav"))
    out = ReaderOutput()
    bar = progress(len(present) // 2 or 1) if progress else None
    seen = {}
    for file_session, name in tables:
        relname = f"annotation/{name}"
        rows = annotation_rows(os.path.join(ann_dir, name), relname, out, id_column=3,
                               emotion_column=4, segment=_SEGMENT, bar=bar)
        for line, fields, utt_id in rows:

            def reject(reason, value=""):
                out.rejects.append(Reject(relname, line, utt_id, reason, value))

            if len(fields) < 7:
                reject("malformed_row", f"{len(fields)} fields, expected 37")
                continue
            m, problem = match_segment_id(utt_id, file_session, _SEGMENT)
            if problem:
                reject(*problem)
                continue
            id_session = int(m.group(1))
            original_id = utt_id
            if id_session != file_session:
                if (file_session, id_session) not in _SESSION_ALIASES:
                    reject("session_mismatch", f"{utt_id!r} in {name}")
                    continue
                utt_id = f"Sess{file_session:02d}" + utt_id[len(f"Sess{m.group(1)}"):]
                out.notes[f"sess{id_session}_ids_renamed_sess{file_session:02d}"] += 1
            if utt_id in seen:
                reject("duplicate_utt_id", f"first seen at {seen[utt_id]}")
                continue
            seen[utt_id] = f"{relname}:{line}"
            folder = f"wav/Session{file_session:02d}"
            stems = [f"{folder}/{utt_id}"]
            if original_id != utt_id:
                stems += [f"{folder}/{original_id}", f"wav/Session{id_session:02d}/{original_id}"]
            stem = next((s for s in stems if s + ".wav" in present), stems[0])
            try:
                outcome = labels.total_evaluation(fields[4])
                text_raw, text = read_transcript(data_dir, stem + ".txt", present, out)
            except labels.LabelError as err:
                reject(err.reason, err.value)
                continue
            except (DecodeError, OSError) as err:
                reject("undecodable_text", f"{stem}.txt: {err}")
                continue
            gender = "male" if m.group(4).upper() == "M" else "female"
            out.rows.append(
                Row(
                    utt_id=utt_id,
                    audio_path=stem + ".wav",
                    text=text,
                    text_raw=text_raw,
                    speaker=f"User{m.group(3)}{m.group(4).upper()}",
                    session=f"Sess{file_session:02d}",
                    gender=gender,
                    age="",
                    source=SOURCE,
                    outcome=outcome,
                    votes=rater_votes(fields, 7, out),
                    valence=parse_va(fields[5], "valence", out),
                    arousal=parse_va(fields[6], "arousal", out),
                    source_file=relname,
                    line=line,
                )
            )
    if bar:
        bar.close()
    return out
