"""Contract 1: the manifest (`manifest.csv` + `manifest.json` sidecar) and `rejects.csv`.

Columns, in order: `utt_id, audio_path, text, text_raw, emotion, valence, arousal,
speaker, session, gender, age, source, split, weight, votes_<e>` (the 7 emotions)
and `target_<c>` (every class of the sidecar's `classes`). The files are written
atomically (all staged to fsynced temporary files, then renamed), the sidecar last; the sidecar records
the SHA-256 of `manifest.csv`, and `read_manifest` refuses a pair that does not match
(e.g. a crash between the renames).

Example:
    >>> df, sidecar = read_manifest("runs/prepared/manifest.csv")  # doctest: +SKIP
    >>> sidecar["classes"], df["split"].unique()
    (['neutral', 'happy', 'sad', 'angry'], array(['train', 'valid', 'test'], dtype=object))
"""

import csv
import hashlib
import io
import json
import math
import os

import pandas as pd

from tfsent.core import files
from tfsent.core.errors import UsageError
from tfsent.corpus.common import safe_relpath
from tfsent.corpus.emotions import EMOTIONS_7

MANIFEST_NAME = "manifest.csv"
SIDECAR_NAME = "manifest.json"
REJECTS_NAME = "rejects.csv"
BASE_COLUMNS = (
    "utt_id", "audio_path", "text", "text_raw", "emotion", "valence", "arousal",
    "speaker", "session", "gender", "age", "source", "split", "weight",
)
VOTE_COLUMNS = tuple(f"votes_{e}" for e in EMOTIONS_7)
REJECT_COLUMNS = ("source_file", "line", "utt_id", "reason", "value")
_STRING_COLUMNS = (
    "utt_id", "audio_path", "text", "text_raw", "emotion", "speaker", "session",
    "gender", "age", "source", "split",
)



class ManifestError(UsageError, ValueError):
    """A manifest that does not satisfy Contract 1 (one line, exit 2 in the CLIs)."""


class ManifestNotFound(UsageError, FileNotFoundError):
    """No manifest (or no sidecar) where one was named."""

def manifest_columns(classes):
    """The manifest's columns for an ordered class set."""
    return BASE_COLUMNS + VOTE_COLUMNS + tuple(f"target_{c}" for c in classes)


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


def to_csv_bytes(records, columns):
    """Serialises records (dicts or sequences) as UTF-8 CSV bytes, `\\n` line ends."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for rec in records:
        if isinstance(rec, dict):
            writer.writerow([_cell(rec.get(c)) for c in columns])
        else:
            writer.writerow([_cell(v) for v in rec])
    return buf.getvalue().encode("utf-8")


def write_manifest(out_dir, manifest_records, sidecar, rejects=()):
    """Writes `manifest.csv`, `rejects.csv`, then `manifest.json`, each atomically.

    Args:
        out_dir: output folder (created if missing).
        manifest_records: dicts keyed by `manifest_columns(sidecar["classes"])`.
        sidecar: the JSON-serialisable sidecar; `manifest_sha256`, `rejects_sha256`
            and `columns` are added here.
        rejects: `Reject`-like objects or dicts with `REJECT_COLUMNS`.

    Returns:
        The path of `manifest.csv`.
    """
    os.makedirs(out_dir, exist_ok=True)
    columns = manifest_columns(sidecar["classes"])
    manifest_bytes = to_csv_bytes(manifest_records, columns)
    reject_rows = [
        r if isinstance(r, dict) else {c: getattr(r, c) for c in REJECT_COLUMNS} for r in rejects
    ]
    rejects_bytes = to_csv_bytes(reject_rows, REJECT_COLUMNS)
    sidecar = dict(sidecar)
    sidecar["columns"] = list(columns)
    sidecar["manifest_sha256"] = hashlib.sha256(manifest_bytes).hexdigest()
    sidecar["rejects_sha256"] = hashlib.sha256(rejects_bytes).hexdigest()
    sidecar_bytes = (json.dumps(sidecar, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
    files.write_files({
        os.path.join(out_dir, MANIFEST_NAME): manifest_bytes,
        os.path.join(out_dir, REJECTS_NAME): rejects_bytes,
        os.path.join(out_dir, SIDECAR_NAME): sidecar_bytes,  # last: it commits the set
    })
    return os.path.join(out_dir, MANIFEST_NAME)


def confined_paths(frame, data_dir):
    """The `audio_path` column, each normalised and checked to stay inside the corpus root
    (`bin/prepare` confines them; a hand-edited manifest may not).

    Raises:
        ManifestError: naming the first row whose path is absolute or climbs out of `data_dir`.
    """
    paths = []
    for utt_id, path in zip(frame["utt_id"].astype(str), frame["audio_path"].astype(str)):
        rel = safe_relpath(path)
        if rel is None:
            raise ManifestError(f"manifest row {utt_id!r}: audio_path {path!r} leaves the corpus root "
                                f"{data_dir!r} (bin/prepare never writes such a path: was the manifest edited?)")
        paths.append(rel)
    return paths


def read_manifest(path):
    """Reads a prepared manifest.

    Args:
        path: `manifest.csv`, or the folder holding it and `manifest.json`.

    Returns:
        `(DataFrame, sidecar dict)`. String columns hold "" (never NaN) when empty;
        `valence`, `arousal`, `weight` and `target_*` are float (NaN when empty);
        `votes_*` are nullable Int64; `split` is a string (fold numbers too).

    Raises:
        ManifestNotFound (a FileNotFoundError): when the manifest or its sidecar is missing.
        ManifestError (a ValueError): when the sidecar does not describe this manifest.
    """
    if os.path.isdir(path):
        path = os.path.join(path, MANIFEST_NAME)
    sidecar_path = os.path.join(os.path.dirname(os.path.abspath(path)), SIDECAR_NAME)
    if not os.path.exists(path):
        raise ManifestNotFound(f"no manifest at {path} (run bin/prepare first)")
    if not os.path.exists(sidecar_path):
        raise ManifestNotFound(f"{path} has no sidecar {sidecar_path}")
    with open(sidecar_path, encoding="utf-8") as f:
        sidecar = json.load(f)
    with open(path, "rb") as f:
        data = f.read()
    expected = sidecar.get("manifest_sha256")
    if expected and hashlib.sha256(data).hexdigest() != expected:
        raise ManifestError(f"{path} does not match {sidecar_path} (different prepare runs?)")
    dtypes = {c: str for c in _STRING_COLUMNS}
    df = pd.read_csv(io.BytesIO(data), dtype=dtypes, keep_default_na=False, encoding="utf-8")
    expected_cols = list(manifest_columns(sidecar["classes"]))
    if list(df.columns) != expected_cols:
        raise ManifestError(f"{path}: columns {list(df.columns)} differ from the contract {expected_cols}")
    try:
        for c in ("valence", "arousal", "weight") + tuple(c for c in df.columns if c.startswith("target_")):
            df[c] = pd.to_numeric(df[c].replace("", float("nan")), errors="raise").astype("float64")
        for c in VOTE_COLUMNS:
            df[c] = pd.to_numeric(df[c].replace("", None), errors="raise").astype("Int64")
    except (ValueError, TypeError) as e:
        raise ManifestError(f"{path}: column {c!r} holds a value that is not a number ({e})") from None
    return df, sidecar
