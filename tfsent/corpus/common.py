"""Shared reader plumbing: row and reject records, file indexing, path safety, progress.

Example:
    >>> safe_relpath("wav/Session01/x.wav")
    'wav/Session01/x.wav'
    >>> safe_relpath("../outside.wav") is None
    True
"""

import collections
import csv
import dataclasses
import io
import math
import os
import posixpath
import sys
import time

from tfsent.core.errors import UsageError
from tfsent.corpus.encoding import read_text_file


class PrepareError(UsageError):
    """A problem that stops `prepare` as a whole (bad flags, not a corpus, empty corpus): one line,
    exit 2 in the CLI."""


class StrictRejectsError(Exception):
    """`--strict` and rows were rejected for data errors: the data failed the check the user asked for
    (exit 1; the outputs are written so rejects.csv can be read)."""


@dataclasses.dataclass
class Reject:
    """One line of rejects.csv.

    Args:
        source_file: the file (relative to the corpus root) holding the row.
        line: 1-based physical line of the row in that file ("" for files, not rows).
        utt_id: the row's utterance id when known.
        reason: a stable snake_case reason (`excluded_*` reasons are policy exclusions).
        value: the offending value or a detail, quoted when it is corpus text.
    """

    source_file: str
    line: object
    utt_id: str
    reason: str
    value: str = ""


@dataclasses.dataclass
class Row:
    """One annotated utterance read from a corpus, before the class set and splits.

    Args:
        utt_id, audio_path (posix, relative to the corpus root), text (cleaned, NFC),
        text_raw (as delivered), speaker, session, gender (`female`/`male`/""), age,
        source (corpus name).
        outcome: the label rule's `LabelOutcome`.
        votes: `{emotion: raters}` over `EMOTIONS_7`, or None without raters.
        valence, arousal: floats, NaN when unknown.
        source_file, line: where the row came from (for rejects).
    """

    utt_id: str
    audio_path: str
    text: str
    text_raw: str
    speaker: str
    session: str
    gender: str
    age: str
    source: str
    outcome: object
    votes: dict
    valence: float = math.nan
    arousal: float = math.nan
    source_file: str = ""
    line: int = 0


@dataclasses.dataclass
class ReaderOutput:
    """What a corpus reader returns."""

    rows: list = dataclasses.field(default_factory=list)
    rejects: list = dataclasses.field(default_factory=list)
    rows_read: int = 0
    notes: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    encodings: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    files: list = dataclasses.field(default_factory=list)


def safe_relpath(relpath):
    """Normalises a corpus-relative path; None when it would leave the corpus root."""
    rel = posixpath.normpath(relpath.replace("\\", "/"))
    if rel.startswith("/") or rel == ".." or rel.startswith("../") or ":" in rel.split("/")[0]:
        return None
    return rel


def index_files(root, subdir=""):
    """Relative posix paths of all files under `root/subdir` (follows symlinked folders)."""
    top = os.path.join(root, subdir) if subdir else root
    found = []
    seen = set()
    for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a symlink loop
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        for name in filenames:
            found.append(name if rel_dir == "." else f"{rel_dir}/{name}")
    found.sort()
    return found


def read_csv_rows(path, relname, out):
    """Decodes a CSV/TSV (encoding detected per file) and yields `(line, fields)`.

    `line` is the 1-based physical line where the record starts. Blank lines are
    skipped. The delimiter is a tab when the first line has more tabs than commas.
    """
    try:
        text, encoding = read_text_file(path)
    except ValueError as err:
        raise PrepareError(f"{relname}: cannot decode ({err})") from err
    out.encodings[encoding] += 1
    out.files.append(relname)
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 1
    for fields in reader:
        line = start
        start = reader.line_num + 1
        if not fields or all(not f.strip() for f in fields):
            continue
        yield line, [f.strip() for f in fields]


def parse_float(text):
    """float(text), NaN when empty or not a number."""
    try:
        value = float(str(text).strip())
    except ValueError:
        return math.nan
    return value


def parse_gender(text):
    """`female` / `male` from the spellings in the corpora (F, M, female, 여, 남...); else ''."""
    key = str(text).strip().lower()
    if key in ("f", "female", "여", "여성", "woman"):
        return "female"
    if key in ("m", "male", "남", "남성", "man"):
        return "male"
    return ""


class Progress:
    """A stderr progress bar that appears only once work has taken `delay` seconds.

    Example:
        >>> p = Progress(100, "audio")
        >>> for _ in range(100):
        ...     p.update()
        >>> p.close()
    """

    def __init__(self, total, desc, enabled=True, delay=2.0, stream=None):
        self.total, self.desc, self.enabled, self.delay = total, desc, enabled, delay
        self.stream = stream or sys.stderr
        self.count = 0
        self.start = time.monotonic()
        self.last = 0.0
        self.shown = False

    def update(self, n=1):
        self.count += n
        if not self.enabled or self.count % 64:
            return
        now = time.monotonic()
        if now - self.start < self.delay or now - self.last < 0.5:
            return
        self.last = now
        self._draw(now)

    def _draw(self, now):
        frac = self.count / self.total if self.total else 1.0
        bar = "#" * int(30 * frac)
        rate = self.count / max(now - self.start, 1e-9)
        end = "\r" if self.stream.isatty() else "\n"
        self.stream.write(
            f"{self.desc}: [{bar:<30}] {self.count}/{self.total} ({rate:.0f}/s){end}"
        )
        self.stream.flush()
        self.shown = True

    def close(self):
        if self.shown:
            self._draw(time.monotonic())
            if self.stream.isatty():
                self.stream.write("\n")
