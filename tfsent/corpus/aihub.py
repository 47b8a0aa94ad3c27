"""Reader for AI Hub 감정 분류를 위한 대화 음성 데이터셋 (4차년도, 5차년도, 5차년도_2차).

Layout: one or several annotation CSVs (CP949; a TSV copy is accepted too) anywhere
under the corpus root, and `<wav_id>.wav` files anywhere under it. Header:
`wav_id, 발화문, 상황, 1번 감정, 1번 감정세기, ..., 4번 감정, 4번감정세기, 5번 감정,
5번 감정세기, 나이, 성별` — column names are matched ignoring white space, which
absorbs the `4번감정세기` spelling. Rows without a wav are rejected
(`missing_audio`), wavs without a row are reported (`orphan_wav`), a repeated
`wav_id` is rejected (`duplicate_utt_id`). There is no speaker id: `speaker` and
`session` stay empty, `age` + `gender` are the closest speaker proxy.

Example:
    >>> out = read_aihub("/data/aihub", label_rule="intensity_sum")  # doctest: +SKIP
    >>> out.rows[0].outcome.emotions
    ('happy',)
"""

import os

from tfsent.corpus import labels
from tfsent.corpus.common import PrepareError
from tfsent.corpus.common import ReaderOutput
from tfsent.corpus.common import Reject
from tfsent.corpus.common import Row
from tfsent.corpus.common import index_files
from tfsent.corpus.common import parse_gender
from tfsent.corpus.common import read_csv_rows
from tfsent.corpus.common import safe_relpath
from tfsent.corpus.encoding import normalize_text

SOURCE = "aihub"
EXPECTED_SAMPLE_RATE = 48000
_REQUIRED = ["wav_id", "발화문"] + [
    f"{i}번감정{suffix}" for i in range(1, 6) for suffix in ("", "세기")
] + ["나이", "성별"]


def _column_index(header, relname):
    keys = ["".join(h.replace("\ufeff", "").split()).lower() for h in header]
    index = {}
    for name in _REQUIRED:
        if name.lower() in keys:
            index[name] = keys.index(name.lower())
    missing = [n for n in _REQUIRED if n not in index]
    if missing:
        raise PrepareError(
            f"{relname}: not an AI Hub annotation file, missing column(s) {', '.join(missing)}"
        )
    return index


def read_aihub(data_dir, label_rule="intensity_sum", min_agree=3, progress=None):
    """Reads every AI Hub annotation CSV under `data_dir`.

    Args:
        data_dir: the corpus root (never written to).
        label_rule: `intensity_sum` (seed 001) or `majority`.
        min_agree: k of the `majority` rule.
        progress: unused (AI Hub parsing is fast); kept for a uniform signature.

    Returns:
        A `ReaderOutput`.
    """
    if label_rule not in ("intensity_sum", "majority"):
        raise PrepareError(
            f"--label_rule={label_rule} does not apply to aihub (use intensity_sum or majority)"
        )
    files = index_files(data_dir)
    tables = [f for f in files if f.lower().endswith((".csv", ".tsv"))]
    if not tables:
        raise PrepareError(f"no AI Hub annotation CSV (*.csv) under {data_dir}")
    out = ReaderOutput()
    wavs, duplicates = {}, []
    for rel in files:
        if rel.lower().endswith(".wav"):
            stem = os.path.splitext(rel.rsplit("/", 1)[-1])[0]
            if stem in wavs:
                duplicates.append(rel)
            wavs.setdefault(stem, rel)
    if duplicates:  # the same wav name in two folders: the first (sorted) path is used
        out.notes["duplicate_wav_names_ignored"] = len(duplicates)
    seen = {}
    referenced = set()
    for relname in tables:
        rows = read_csv_rows(os.path.join(data_dir, relname), relname, out)
        header_line, header = next(rows, (None, None))
        if header is None:
            out.notes["empty_annotation_files"] += 1
            continue
        col = _column_index(header, relname)
        width = max(col.values()) + 1
        for line, fields in rows:
            out.rows_read += 1
            utt_id = fields[col["wav_id"]] if len(fields) > col["wav_id"] else ""

            def reject(reason, value=""):
                out.rejects.append(Reject(relname, line, utt_id, reason, value))

            referenced.add(utt_id)
            if len(fields) < width:
                reject("malformed_row", f"{len(fields)} fields, expected {len(header)}")
                continue
            if not utt_id:
                reject("missing_utt_id", "empty wav_id")
                continue
            if utt_id in seen:
                reject("duplicate_utt_id", f"first seen at {seen[utt_id]}")
                continue
            seen[utt_id] = f"{relname}:{line}"
            if safe_relpath(utt_id + ".wav") is None or "/" in utt_id or "\\" in utt_id:
                reject("path_outside_data_dir", repr(utt_id))
                continue
            try:
                annotations = labels.parse_aihub_annotations(
                    [(fields[col[f"{i}번감정"]], fields[col[f"{i}번감정세기"]]) for i in range(1, 6)]
                )
                if label_rule == "intensity_sum":
                    outcome = labels.intensity_sum(annotations)
                else:
                    outcome = labels.majority(annotations, min_agree)
            except labels.LabelError as err:
                reject(err.reason, err.value)
                continue
            text_raw = fields[col["발화문"]]
            if not text_raw:
                out.notes["empty_transcript"] += 1
            out.rows.append(
                Row(
                    utt_id=utt_id,
                    audio_path=wavs.get(utt_id, utt_id + ".wav"),
                    text=normalize_text(text_raw),
                    text_raw=text_raw,
                    speaker="",
                    session="",
                    gender=parse_gender(fields[col["성별"]]),
                    age=fields[col["나이"]],
                    source=SOURCE,
                    outcome=outcome,
                    votes=labels.vote_counts(e for e, _ in annotations),
                    source_file=relname,
                    line=line,
                )
            )
    for stem, rel in sorted(wavs.items(), key=lambda kv: kv[1]):
        if stem not in referenced:
            out.rejects.append(Reject(rel, "", stem, "orphan_wav", "wav file without an annotation row"))
    return out
