"""Per-file text decoding (UTF-8 with or without BOM, CP949 / EUC-KR) and transcript cleaning.

The corpora mix encodings: AI Hub CSVs and KEMDy20 transcripts are CP949, KEMDy19
text is UTF-8, and a user's re-saved copy may be anything of these. The encoding is
therefore detected for every file, never assumed for a corpus.

Example:
    >>> text, enc = decode_bytes("안녕".encode("cp949"))
    >>> text, enc
    ('안녕', 'cp949')
    >>> clean_transcript("c/ 어/ 그래서 b/ 갔어 +  *")
    '어 그래서 갔어'
"""

import re
import unicodedata

_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


class DecodeError(ValueError):
    """Raised when a file's bytes are neither UTF-8 nor CP949."""


def decode_bytes(data):
    """Decodes file bytes, detecting the encoding.

    Args:
        data: the raw bytes of one file.

    Returns:
        `(text, encoding)` where encoding is one of `utf-8-sig` (UTF-8 with BOM),
        `utf-16`, `utf-16-le` / `utf-16-be` (no BOM, told by its NUL bytes), `utf-8` (also covers
        pure ASCII) or `cp949` (a superset of EUC-KR).

    Raises:
        DecodeError: when no supported encoding decodes the bytes strictly.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError as err:
                raise DecodeError(f"{encoding} BOM but invalid bytes: {err}") from err
    utf16 = _bomless_utf16(data)
    if utf16:
        try:
            return data.decode(utf16), utf16
        except UnicodeDecodeError as err:
            raise DecodeError(f"looks like {utf16} without a BOM (NUL bytes) but is not: {err}") from err
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp949"), "cp949"
    except UnicodeDecodeError as err:
        raise DecodeError(f"neither UTF-8 nor CP949/EUC-KR ({err})") from err


def _bomless_utf16(data):
    """`utf-16-le` / `utf-16-be` when NUL bytes fill every other byte (UTF-16 saved without a BOM;
    NULs are valid UTF-8, so the UTF-8 attempt would "succeed" into garbage), else None."""
    if len(data) < 4 or data.count(b"\x00") < max(1, len(data) // 8):
        return None
    odd, even = data[1::2].count(b"\x00"), data[0::2].count(b"\x00")
    return "utf-16-le" if odd > even else "utf-16-be"


def read_text_file(path):
    """Reads and decodes a whole file; returns `(text, encoding)`. Never writes."""
    with open(path, "rb") as f:
        data = f.read()
    return decode_bytes(data)


# KEMDy/ETRI transcription tags: one ASCII letter + '/' marks noise, breath,
# laughter, unintelligible speech...; a '/' right after a word marks a filler;
# '(spelling)/(pronunciation)' keeps the spelling; '*', '+' and ',' are
# uncertainty / repetition marks.
_DUAL = re.compile(r"\(([^()]*)\)/\(([^()]*)\)")
_LETTER_TAG = re.compile(r"(?<![0-9A-Za-z가-힣])[A-Za-z]/")
_MARKS = re.compile(r"[*+,/]")
_SPACES = re.compile(r"\s+")


def clean_transcript(text):
    """Strips KEMDy transcription tags and normalises to NFC.

    Removes letter tags (`c/ n/ N/ u/ l/ b/ o/ ...`), filler slashes, `* + ,`,
    keeps the spelling side of `(A)/(B)` dual transcriptions, collapses white space.
    """
    text = unicodedata.normalize("NFC", text)
    text = _DUAL.sub(r"\1", text)
    text = _LETTER_TAG.sub(" ", text)
    text = _MARKS.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def normalize_text(text):
    """NFC normalisation plus white-space collapsing (for corpora without tags)."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip()
