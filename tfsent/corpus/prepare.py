"""`prepare`: corpus → labelled, checked, split manifest (+ rejects and sidecar).

Every row read ends in exactly one place: `manifest.csv` or `rejects.csv` (with a
reason). Reasons starting with `excluded_` are policy exclusions (outside the class
set, valence = 3 in the binary task, the other gender's KEMDy19 file); the others
are data errors. `strict=True` fails on data errors (exclusions are the user's
choice). The same options give byte-identical outputs.

Example:
    >>> opts = PrepareOptions(format="kemdy20", data_dir="/data/KEMDy20", out="runs/k20")  # doctest: +SKIP
    >>> result = run_prepare(opts)  # doctest: +SKIP
    >>> print(result.summary)  # doctest: +SKIP
"""

import collections
import dataclasses
import math
import os
import posixpath
import sys

import pandas as pd

import tfsent
from tfsent.corpus import audio_check
from tfsent.corpus import labels
from tfsent.corpus import splits as splits_lib
from tfsent.corpus.aihub import read_aihub
from tfsent.corpus.common import PrepareError
from tfsent.corpus.common import StrictRejectsError
from tfsent.corpus.common import Progress
from tfsent.corpus.common import Reject
from tfsent.corpus.common import index_files
from tfsent.corpus.emotions import EMOTIONS_7
from tfsent.corpus.emotions import class_names
from tfsent.corpus.kemdy19 import read_kemdy19
from tfsent.corpus.kemdy20 import read_kemdy20
from tfsent.corpus.manifest import write_manifest

FORMATS = ("aihub", "kemdy19", "kemdy20")
READERS = {"aihub": read_aihub, "kemdy19": read_kemdy19, "kemdy20": read_kemdy20}
EXPECTED_AUDIO = {"aihub": (48000, 1), "kemdy19": (16000, 1), "kemdy20": (16000, 1)}
DEFAULT_RULE = {"aihub": "intensity_sum", "kemdy19": "total", "kemdy20": "total"}
DEFAULT_SPLIT = {"aihub": "age_gender", "kemdy19": "session", "kemdy20": "session"}


@dataclasses.dataclass
class PrepareOptions:
    """Options of `bin/prepare` (see `tfsent/cli/prepare.py` for the flags).

    Args:
        format: `aihub`, `kemdy19` or `kemdy20`.
        data_dir: the corpus root (read only).
        out: output folder.
        label_rule: None for the corpus default (`intensity_sum` / `total`).
        min_agree: k of the `majority` rule.
        tie_policy: `drop`, `first` or `soft`.
        classes: `4`, `5`, `7` or `binary`.
        split: None for the corpus default (`age_gender` / `session`).
        folds, seed, valid_fraction, test_fraction: split parameters.
        verify_audio: fully decode every file instead of reading headers.
        require_valence_arousal: reject rows without valid valence/arousal
            (for regression tasks).
        strict: any data-error reject fails the run.
        progress: show a progress bar on slow corpora.
        protocol: the named protocol (`tfsent.corpus.protocols`) the split follows, or None.
        contiguous_folds: `kfold_session` folds of consecutive session numbers (named protocols).
    """

    format: str
    data_dir: str
    out: str
    label_rule: str = None
    min_agree: int = 3
    tie_policy: str = "drop"
    classes: str = "7"
    split: str = None
    folds: int = 5
    seed: int = 0
    valid_fraction: float = 0.1
    test_fraction: float = 0.2
    verify_audio: bool = False
    require_valence_arousal: bool = False
    strict: bool = False
    progress: bool = True
    protocol: str = None
    contiguous_folds: bool = False


@dataclasses.dataclass
class PrepareResult:
    """What `prepare` produced: manifest records, rejects, sidecar and a summary text."""

    records: list
    rejects: list
    sidecar: dict
    summary: str
    warnings: list

    @property
    def errors(self):
        return [r for r in self.rejects if not r.reason.startswith(labels.EXCLUDED_PREFIX)]


def _validate(opts):
    if opts.format not in FORMATS:
        raise PrepareError(f"unknown --format={opts.format!r}; expected one of {', '.join(FORMATS)}")
    if not opts.data_dir:
        raise PrepareError("--data_dir is required (the corpus root)")
    if not os.path.isdir(opts.data_dir):
        raise PrepareError(f"--data_dir={opts.data_dir} is not a directory")
    if not opts.out:
        raise PrepareError("--out is required (the output folder)")
    if os.path.exists(opts.out) and not os.path.isdir(opts.out):
        raise PrepareError(f"--out={opts.out} exists and is not a directory")
    out_real, data_real = os.path.realpath(opts.out), os.path.realpath(opts.data_dir)
    if out_real == data_real or out_real.startswith(data_real + os.sep):
        raise PrepareError(f"--out={opts.out} is inside --data_dir: tfsent never writes into the corpus")
    rule = opts.label_rule or DEFAULT_RULE[opts.format]
    if rule not in labels.LABEL_RULES:
        raise PrepareError(f"unknown --label_rule={rule!r}; expected one of {', '.join(labels.LABEL_RULES)}")
    if opts.tie_policy not in labels.TIE_POLICIES:
        raise PrepareError(f"unknown --tie_policy={opts.tie_policy!r}; expected drop, first or soft")
    try:
        classes = class_names(opts.classes)
    except ValueError as err:
        raise PrepareError(f"--classes: {err}") from err
    split = opts.split or DEFAULT_SPLIT[opts.format]
    if split not in splits_lib.SPLITS:
        raise PrepareError(f"unknown --split={split!r}; expected one of {', '.join(splits_lib.SPLITS)}")
    if opts.format == "aihub" and split in ("session", "speaker", "kfold_session"):
        raise PrepareError(
            f"--split={split} is impossible on aihub: it has no speaker or session id; "
            "use --split=age_gender (age+gender groups, the closest speaker proxy) or random_stratified"
        )
    if opts.format != "aihub" and split in ("age_gender", "kfold_age_gender"):
        raise PrepareError(f"--split={split} needs ages, which {opts.format} lacks; use --split=speaker")
    if not 1 <= opts.min_agree <= 5:
        raise PrepareError(f"--min_agree={opts.min_agree} must be between 1 and 5")
    if not (0 < opts.valid_fraction < 1 and 0 < opts.test_fraction < 1
            and opts.valid_fraction + opts.test_fraction < 1):
        raise PrepareError("--valid_fraction and --test_fraction must be in (0, 1) and sum below 1")
    return rule, classes, split


def _label(row, opts, classes):
    """Returns `(emotion, targets)` or raises LabelError."""
    binary = str(opts.classes) == "binary"
    if binary and opts.format != "aihub":
        emotion = labels.binary_from_valence(row.valence)
        return emotion, {c: float(c == emotion) for c in classes}
    return labels.resolve(row.outcome, classes, opts.tie_policy, binary=binary)


def prepare(opts):
    """Reads, labels, checks and splits a corpus; returns a `PrepareResult` (writes nothing)."""
    rule, classes, split_name = _validate(opts)
    data_dir = os.path.abspath(opts.data_dir)

    def progress(total, desc="reading"):
        return Progress(total, desc, enabled=opts.progress)

    read = READERS[opts.format](data_dir, label_rule=rule, min_agree=opts.min_agree,
                                progress=lambda total: progress(total, "reading"))
    if read.rows_read == 0:
        raise PrepareError(f"empty corpus: no annotation row found under {opts.data_dir}")
    rejects = list(read.rejects) + _unaccounted_files(data_dir, read)
    labelled = _label_rows(read.rows, opts, classes, rejects)
    bar = progress(len(labelled), "verifying audio" if opts.verify_audio else "checking audio")
    kept, audio = _check_audio_rows(labelled, data_dir, opts.verify_audio, rejects, bar)
    if not kept:
        reasons = collections.Counter(r.reason for r in rejects).most_common(3)
        raise PrepareError(
            f"no row kept out of {read.rows_read} read ("
            + ", ".join(f"{n} {reason}" for reason, n in reasons) + ")"
        )
    split, split_info = _assign_splits(kept, split_name, opts)
    records = [_record(row, emotion, targets, split_value, classes)
               for (row, emotion, targets), split_value in zip(kept, split)]
    rejects.sort(key=lambda r: (r.line == "", r.source_file, r.line if r.line != "" else 0, r.utt_id))
    row_rejects = sum(1 for r in rejects if r.line != "")
    assert row_rejects + len(records) == read.rows_read, "a row was lost"
    warnings = list(split_info.get("warnings", [])) + _audio_warnings(opts.format, audio)
    sidecar = {
        "corpus": opts.format,
        "data_dir": data_dir,
        "label_rule": rule,
        "min_agree": opts.min_agree if rule == "majority" else None,
        "tie_policy": opts.tie_policy,
        "classes": list(classes),
        "class_set": str(opts.classes),
        "split": split_name,
        "split_info": {k: v for k, v in split_info.items() if k != "warnings"},
        "folds": opts.folds if split_name in splits_lib.KFOLD_SPLITS else None,
        "protocol": opts.protocol,
        "seed": opts.seed,
        "valid_fraction": opts.valid_fraction,
        "test_fraction": opts.test_fraction,
        "require_valence_arousal": opts.require_valence_arousal,
        "verify_audio": opts.verify_audio,
        "counts": _counts(read, records, rejects, classes, audio, opts.format, opts.verify_audio),
        "warnings": warnings,
        "annotation_files": sorted(read.files),
        "tfsent_version": tfsent.__version__,
    }
    return PrepareResult(records, rejects, sidecar, format_summary(sidecar), warnings)


AUDIO_EXTENSIONS = (".wav", ".flac")
TABLE_EXTENSIONS = (".csv", ".tsv")


def _unaccounted_files(data_dir, read):
    """File-level rejects (line "") so that every annotation and audio file under the corpus ends
    up somewhere: `annotation_file_without_rows` (an empty or header-only annotation file),
    `annotation_file_not_read` (a table beside the annotation files that the reader's file pattern
    skips: `Sess01_eval (copy).csv`),
    `orphan_wav` (audio no row names; the AI Hub reader reports its own), `symlink_outside_data_dir`."""
    found = []
    with_rows = {r.source_file for r in read.rows} | {r.source_file for r in read.rejects if r.line != ""}
    for relname in sorted(set(read.files) - with_rows):
        found.append(Reject(relname, "", "", "annotation_file_without_rows",
                            "no data row (empty or header-only file)"))
    named = {r.audio_path for r in read.rows}
    stems = {r.utt_id for r in read.rows} | {r.utt_id for r in read.rejects}
    reported = {r.source_file for r in read.rejects if r.line == ""}
    root = os.path.realpath(data_dir)
    table_dirs = {posixpath.dirname(f) for f in read.files}  # not EDA/*.csv and other sensor tables
    for rel in index_files(data_dir):
        real = os.path.realpath(os.path.join(data_dir, rel))
        if real != root and not real.startswith(root + os.sep):
            found.append(Reject(rel, "", "", "symlink_outside_data_dir", f"points to {real}"))
            continue
        stem, ext = os.path.splitext(os.path.basename(rel))
        if ext.lower() in TABLE_EXTENSIONS and rel not in read.files and posixpath.dirname(rel) in table_dirs:
            found.append(Reject(rel, "", "", "annotation_file_not_read",
                                "not a file name this --format reads (renamed or copied?)"))
        elif (ext.lower() in AUDIO_EXTENSIONS and rel not in named and stem not in stems
                and rel not in reported):
            found.append(Reject(rel, "", stem, "orphan_wav", "audio file without an annotation row"))
    return found


def _label_rows(rows, opts, classes, rejects):
    """`(row, emotion, targets)` for every row the label rule accepts; the others go to `rejects`."""
    labelled = []
    for row in rows:
        try:
            emotion, targets = _label(row, opts, classes)
            if opts.require_valence_arousal and (math.isnan(row.valence) or math.isnan(row.arousal)):
                raise labels.LabelError("missing_valence_arousal", "valence or arousal missing/invalid")
        except labels.LabelError as err:
            rejects.append(Reject(row.source_file, row.line, row.utt_id, err.reason, err.value))
            continue
        labelled.append((row, emotion, targets))
    return labelled


def _check_audio_rows(labelled, data_dir, verify, rejects, bar):
    """The rows whose audio passes the check (header, or full decode with `verify`), and what the
    audio was like (`rates`, `channels` counters, total `seconds`)."""
    audio = {"rates": collections.Counter(), "channels": collections.Counter(), "seconds": 0.0}
    kept = []
    for row, emotion, targets in labelled:
        bar.update()
        info = audio_check.check_audio(os.path.join(data_dir, row.audio_path), verify=verify)
        if info.error:
            rejects.append(Reject(row.source_file, row.line, row.utt_id, info.error,
                                  f"{row.audio_path}: {info.detail}"))
            continue
        audio["rates"][info.sample_rate] += 1
        audio["channels"][info.channels] += 1
        audio["seconds"] += info.duration
        kept.append((row, emotion, targets))
    bar.close()
    return kept, audio


def _assign_splits(kept, split_name, opts):
    """The split of every kept row (disjointness asserted) and the split info."""
    frame = pd.DataFrame({
        "utt_id": [r.utt_id for r, _, _ in kept],
        "session": [r.session for r, _, _ in kept],
        "speaker": [r.speaker for r, _, _ in kept],
        "age": [r.age for r, _, _ in kept],
        "gender": [r.gender for r, _, _ in kept],
        "emotion": [e for _, e, _ in kept],
    })
    try:
        split, split_info = splits_lib.assign_splits(
            frame, split_name, opts.seed, folds=opts.folds, valid_fraction=opts.valid_fraction,
            test_fraction=opts.test_fraction, corpus=opts.format, contiguous_folds=opts.contiguous_folds)
        frame["split"] = split
        if split_name in ("session", "kfold_session"):
            splits_lib.check_disjoint(frame, "session")
        if split_name == "speaker":
            splits_lib.check_disjoint(frame, "speaker")
        if split_name in ("age_gender", "kfold_age_gender"):
            splits_lib.check_disjoint(frame.assign(group=frame.age + "_" + frame.gender), "group")
    except splits_lib.SplitError as err:
        raise PrepareError(str(err)) from err
    return list(frame["split"]), split_info


def _record(row, emotion, targets, split_value, classes):
    """One manifest record (Contract 1)."""
    rec = {
        "utt_id": row.utt_id, "audio_path": row.audio_path, "text": row.text,
        "text_raw": row.text_raw, "emotion": emotion, "valence": row.valence,
        "arousal": row.arousal, "speaker": row.speaker, "session": row.session,
        "gender": row.gender, "age": row.age, "source": row.source,
        "split": split_value, "weight": 1.0,
    }
    for e in EMOTIONS_7:
        rec[f"votes_{e}"] = "" if row.votes is None else row.votes[e]
    for c in classes:
        rec[f"target_{c}"] = targets[c]
    return rec


def _unexpected_audio(corpus, audio):
    expected_rate, expected_channels = EXPECTED_AUDIO[corpus]
    unexpected = {f"sample_rate_{r}": n for r, n in sorted(audio["rates"].items()) if r != expected_rate}
    unexpected.update({f"channels_{c}": n for c, n in sorted(audio["channels"].items()) if c != expected_channels})
    return unexpected


def _audio_warnings(corpus, audio):
    unexpected = _unexpected_audio(corpus, audio)
    if not unexpected:
        return []
    expected_rate, expected_channels = EXPECTED_AUDIO[corpus]
    return [f"audio differs from the corpus norm ({expected_rate} Hz, {expected_channels} ch): "
            + ", ".join(f"{n} x {k}" for k, n in unexpected.items())
            + " (accepted; decoded to 16 kHz mono downstream)"]


def _counts(read, records, rejects, classes, audio, corpus, verify):
    """The sidecar's `counts`: rows read / kept / rejected / excluded, per split and class, audio."""
    reasons = collections.Counter(r.reason for r in rejects)
    per_split = collections.defaultdict(collections.Counter)
    for rec in records:
        per_split[rec["split"]][rec["emotion"]] += 1
    return {
        "rows_read": read.rows_read,
        "rows_kept": len(records),
        "rows_rejected": sum(1 for r in rejects
                             if r.line != "" and not r.reason.startswith(labels.EXCLUDED_PREFIX)),
        "rows_excluded": sum(n for r, n in reasons.items() if r.startswith(labels.EXCLUDED_PREFIX)),
        "files_without_row": reasons.get("orphan_wav", 0),
        "files_rejected": sum(1 for r in rejects if r.line == "" and r.reason != "orphan_wav"),
        "rejects_by_reason": dict(sorted(reasons.items())),
        "per_split_class": {
            s: {c: per_split[s].get(c, 0) for c in classes} for s in _split_order(per_split)
        },
        "notes": dict(sorted(collections.Counter(read.notes).items())),
        "text_encodings": dict(sorted(read.encodings.items())),
        "audio": {
            "sample_rates": {str(k): v for k, v in sorted(audio["rates"].items())},
            "channels": {str(k): v for k, v in sorted(audio["channels"].items())},
            "hours": round(audio["seconds"] / 3600.0, 4),
            "unexpected": _unexpected_audio(corpus, audio),
            "checked_by": "full decode" if verify else "header",
        },
    }


def _split_order(per_split):
    named = [s for s in ("train", "valid", "test") if s in per_split]
    folds = sorted((s for s in per_split if s not in ("train", "valid", "test")), key=lambda s: int(s))
    return named + folds


def format_summary(sidecar):
    """The human-readable table `bin/prepare` prints."""
    c = sidecar["counts"]
    lines = [
        f"corpus {sidecar['corpus']} | rule {sidecar['label_rule']} | ties {sidecar['tie_policy']} "
        f"| classes {sidecar['class_set']} | split {sidecar['split']} (seed {sidecar['seed']})",
        f"rows read {c['rows_read']:>8}",
        f"kept      {c['rows_kept']:>8}",
        f"rejected  {c['rows_rejected']:>8}",
        f"excluded  {c['rows_excluded']:>8}",
    ]
    if c["files_without_row"]:
        lines.append(f"wavs without a row {c['files_without_row']}")
    if c.get("files_rejected"):
        lines.append(f"files rejected {c['files_rejected']} (see rejects.csv)")
    if c["rejects_by_reason"]:
        lines.append("rejects by reason:")
        lines += [f"  {reason:<28} {n:>8}" for reason, n in c["rejects_by_reason"].items()]
    classes = sidecar["classes"]
    width = max(8, *(len(x) for x in classes)) + 1
    lines.append("per-class counts per split:")
    lines.append("  " + f"{'split':<8}" + "".join(f"{x:>{width}}" for x in classes) + f"{'total':>{width}}")
    for s, per in c["per_split_class"].items():
        lines.append("  " + f"{s:<8}" + "".join(f"{per[x]:>{width}}" for x in classes)
                     + f"{sum(per.values()):>{width}}")
    if c["notes"]:
        lines.append("notes: " + ", ".join(f"{k} {v}" for k, v in c["notes"].items()))
    return "\n".join(lines)


def run_prepare(opts, stdout=None, stderr=None):
    """`prepare` + atomic writes + printing; returns the `PrepareResult`.

    Raises:
        PrepareError: on bad options or an unusable corpus (nothing is written).
        StrictRejectsError: under `strict` when rows were rejected for data errors (the outputs
            are written first, so rejects.csv can be read).
    """
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    result = prepare(opts)
    for w in result.warnings:
        print(f"WARNING: {w}", file=stderr)
    try:  # files are staged then renamed: a failed write leaves the previous outputs whole
        write_manifest(opts.out, result.records, result.sidecar, result.rejects)
    except OSError as e:  # read-only, full disk, a file in the way: the user's --out
        why = f"{e.strerror or e}" + (f": {e.filename}" if e.filename else "")
        raise PrepareError(f"--out={opts.out}: cannot write there ({why})") from None
    print(result.summary, file=stdout)
    print(f"wrote {os.path.join(opts.out, 'manifest.csv')} ({len(result.records)} rows), "
          f"rejects.csv ({len(result.rejects)}), manifest.json", file=stdout)
    if opts.strict and result.errors:
        first = result.errors[0]
        raise StrictRejectsError(
            f"--strict: {len(result.errors)} row(s) rejected, first {first.source_file}:{first.line} "
            f"{first.reason} {first.value} (see {os.path.join(opts.out, 'rejects.csv')})"
        )
    return result
