"""Timed transcripts: SubRip (.srt), WebVTT (.vtt) and tab-separated (.tsv) cue files.

`read_transcript(path)` returns the cues (start, end seconds, text) sorted by start; any encoding
`tfsent.corpus.encoding` detects (UTF-8 with or without BOM, CP949). Formats:

- `.srt`: blocks separated by blank lines: an optional index line, `HH:MM:SS,mmm --> HH:MM:SS,mmm`,
  then the text lines.
- `.vtt`: `WEBVTT` first, then cues `[id]` / `[HH:]MM:SS.mmm --> [HH:]MM:SS.mmm [settings]` / text;
  NOTE, STYLE and REGION blocks are skipped, `<...>` tags removed.
- `.tsv`: `start<TAB>end<TAB>text` per line in seconds (an optional header line `start end text`).

A file that breaks these rules raises `TranscriptError` (a `UsageError`) naming the file and the
line: an unknown extension, a malformed time, an end before its start, a cue without text.
`check_within(cues, duration)` rejects cues that end after the audio does; `text_between(cues,
start, end)` joins the text of the cues overlapping a time span.

Example:

```python
cues = read_transcript("call.srt")
check_within(cues, 62.5, "call.srt")
text_between(cues, 3.0, 6.0)            # "오늘 정말 행복해요 네 그래요"
```
"""

from __future__ import annotations

import dataclasses
import os
import re

from tfsent.core.errors import UsageError
from tfsent.corpus.encoding import DecodeError, normalize_text, read_text_file

FORMATS = (".srt", ".vtt", ".tsv")
# Subtitle tools round times; a cue may end this far past the audio.
END_TOLERANCE_SECONDS = 0.1

_SRT_TIME = r"(\d+):(\d{2}):(\d{2})[,.](\d{3})"
_VTT_TIME = r"(?:(\d+):)?(\d{2}):(\d{2})\.(\d{3})"
_TAG = re.compile(r"<[^>]*>")


class TranscriptError(UsageError):
    """A transcript file that cannot be read as timed cues."""


@dataclasses.dataclass(frozen=True)
class Cue:
    """One timed piece of transcript.

    Args:
        start: seconds from the start of the recording.
        end: seconds; `end >= start`.
        text: the words said.

    Example:

    ```python
    Cue(1.5, 3.0, "안녕하세요")
    ```
    """

    start: float
    end: float
    text: str


def _seconds(match, groups=(1, 2, 3, 4)):
    h, m, s, ms = (match.group(g) for g in groups)
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000.0


def _timing(line, pattern, where):
    match = re.fullmatch(rf"\s*{pattern}\s*-->\s*{pattern}(?:\s+.*)?", line)
    if not match:
        raise TranscriptError(f"{where}: malformed cue timing {line.strip()!r} (want START --> END)")
    start, end = _seconds(match, (1, 2, 3, 4)), _seconds(match, (5, 6, 7, 8))
    if end < start:
        raise TranscriptError(f"{where}: cue ends ({end:g} s) before it starts ({start:g} s)")
    return start, end


def _blocks(text):
    """(first line number, [lines]) of each blank-line separated block."""
    block, first = [], 0
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            if not block:
                first = number
            block.append(line)
        elif block:
            yield first, block
            block = []
    if block:
        yield first, block


def _parse_timed_blocks(text, path, pattern, vtt):
    cues = []
    for number, lines in _blocks(text):
        if vtt and lines[0].split(" ", 1)[0].split("\t", 1)[0] in ("WEBVTT", "NOTE", "STYLE", "REGION"):
            continue
        at = next((i for i, line in enumerate(lines[:2]) if "-->" in line), None)
        if at is None:
            raise TranscriptError(f"{path}:{number}: cue without a START --> END line")
        start, end = _timing(lines[at], pattern, f"{path}:{number + at}")
        body = normalize_text(" ".join(_TAG.sub("", line) for line in lines[at + 1:]))
        if not body:
            raise TranscriptError(f"{path}:{number + at}: cue without text")
        cues.append(Cue(start, end, body))
    return cues


def _parse_tsv(text, path):
    cues = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if number == 1 and [f.strip().lower() for f in fields[:2]] == ["start", "end"]:
            continue
        where = f"{path}:{number}"
        if len(fields) < 3:
            raise TranscriptError(f"{where}: want START<TAB>END<TAB>TEXT; got {len(fields)} field(s)")
        try:
            start, end = float(fields[0]), float(fields[1])
        except ValueError:
            raise TranscriptError(f"{where}: START and END must be seconds; got {fields[0]!r}, {fields[1]!r}") \
                from None
        if not (0 <= start <= end) or end != end:
            raise TranscriptError(f"{where}: need 0 <= START <= END; got {start:g}, {end:g}")
        body = normalize_text("\t".join(fields[2:]))
        if not body:
            raise TranscriptError(f"{where}: cue without text")
        cues.append(Cue(start, end, body))
    return cues


def read_transcript(path):
    """The cues of an .srt, .vtt or .tsv file, sorted by start time."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in FORMATS:
        raise TranscriptError(f"{path}: unknown transcript format {extension or '(no extension)'!r}; "
                              f"use one of {', '.join(FORMATS)}")
    if not os.path.isfile(path):
        raise TranscriptError(f"{path}: no such transcript file")
    try:
        text = read_text_file(path)[0]
    except DecodeError as e:
        raise TranscriptError(f"{path}: cannot decode this transcript ({e})") from None
    if extension == ".vtt":
        if not text.lstrip("\ufeff").startswith("WEBVTT"):
            raise TranscriptError(f"{path}:1: a WebVTT file starts with 'WEBVTT'")
        cues = _parse_timed_blocks(text, path, _VTT_TIME, vtt=True)
    elif extension == ".srt":
        cues = _parse_timed_blocks(text, path, _SRT_TIME, vtt=False)
    else:
        cues = _parse_tsv(text, path)
    if not cues:
        raise TranscriptError(f"{path}: no cues")
    return sorted(cues, key=lambda c: (c.start, c.end))


def check_within(cues, duration, path="transcript"):
    """Raises `TranscriptError` when a cue ends after the audio (`duration` seconds)."""
    late = [c for c in cues if c.end > duration + END_TOLERANCE_SECONDS]
    if late:
        raise TranscriptError(f"{path}: {len(late)} cue(s) end after the audio ({duration:.3f} s), the first at "
                              f"{late[0].start:g}-{late[0].end:g} s; is this the transcript of this recording?")


def text_between(cues, start, end):
    """The text of the cues overlapping `[start, end)` (in time order, joined by spaces)."""
    return " ".join(c.text for c in cues if c.start < end and c.end > start)
