"""Fast prepare-time audio checks: RIFF/WAVE header reads, not decodes.

`check_audio(path)` opens the file, walks the RIFF chunks up to `data` and compares
the declared data size with the bytes the file really holds. It catches missing,
zero-length, truncated and non-WAV files in microseconds per file. With
`verify=True` the whole file is decoded with soundfile too. Unexpected sample
rates and channel counts are *notes*, not errors: downstream decoding resamples to
16 kHz mono.

Example:
    >>> info = check_audio("wav/Session01/Sess01_script01_User002M_001.wav")  # doctest: +SKIP
    >>> info.error, info.sample_rate, info.channels
    (None, 16000, 1)
"""

import dataclasses
import os
import struct

import numpy as np

from tfsent.core.inputs import MIN_AUDIO_SECONDS

# Reasons (rejects.csv) for unusable audio.
MISSING = "missing_audio"
EMPTY = "empty_audio"
TRUNCATED = "truncated_audio"
UNREADABLE = "unreadable_audio"
UNDECODABLE = "undecodable_audio"
TOO_SHORT = "too_short_audio"
NON_FINITE = "non_finite_audio"


@dataclasses.dataclass
class AudioInfo:
    """What the header says about one file.

    Args:
        error: None when usable, else a reason (`missing_audio`, `empty_audio`,
            `truncated_audio`, `unreadable_audio`, `undecodable_audio`, `too_short_audio`
            (under `MIN_AUDIO_SECONDS`), `non_finite_audio` (NaN/Inf samples; full decode only)).
        detail: human-readable detail for the reason.
        sample_rate, channels, bits, frames: from the header (0 when unknown).
    """

    error: str = None
    detail: str = ""
    sample_rate: int = 0
    channels: int = 0
    bits: int = 0
    frames: int = 0

    @property
    def duration(self):
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def _parse_riff(f, file_size):
    head = f.read(12)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
        return None  # not RIFF/WAVE: let soundfile try (FLAC, RF64, ...)
    fmt = None
    pos = 12
    while pos + 8 <= file_size:
        f.seek(pos)
        chunk = f.read(8)
        if len(chunk) < 8:
            break
        cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if cid == b"fmt ":
            body = f.read(min(size, 40))
            if len(body) < 16:
                return AudioInfo(TRUNCATED, "fmt chunk cut short")
            _, channels, rate, _, block_align, bits = struct.unpack("<HHIIHH", body[:16])
            fmt = (channels, rate, block_align, bits)
        elif cid == b"data":
            if fmt is None:
                return AudioInfo(UNREADABLE, "data chunk before fmt chunk")
            channels, rate, block_align, bits = fmt
            if channels == 0 or rate == 0 or block_align == 0:
                return AudioInfo(UNREADABLE, f"bad fmt: {channels} ch, {rate} Hz")
            available = file_size - (pos + 8)
            info = AudioInfo(sample_rate=rate, channels=channels, bits=bits)
            if size == 0 or available <= 0:
                info.error, info.detail = EMPTY, "no audio samples"
                return info
            if size > available:
                info.error = TRUNCATED
                info.detail = f"header declares {size} data bytes, file holds {available}"
                return info
            info.frames = size // block_align
            if info.frames == 0:
                info.error, info.detail = EMPTY, "no complete frame"
            return info
        pos += 8 + size + (size & 1)
    if fmt is None:
        return AudioInfo(UNREADABLE, "no fmt chunk")
    return AudioInfo(TRUNCATED, "no data chunk")


def check_audio(path, verify=False):
    """Checks one audio file; returns an `AudioInfo` (never raises for bad files)."""
    try:
        file_size = os.path.getsize(path)
    except OSError:
        return AudioInfo(MISSING, "file not found")
    if file_size == 0:
        return AudioInfo(EMPTY, "zero-length file")
    info = None
    try:
        with open(path, "rb") as f:
            info = _parse_riff(f, file_size)
    except OSError as err:
        return AudioInfo(UNREADABLE, str(err))
    if info is None or verify:
        import soundfile

        try:
            sf_info = soundfile.info(path)
        except Exception as err:  # soundfile raises several error types
            return AudioInfo(UNREADABLE, f"not a readable audio file ({err})")
        if info is None:
            info = AudioInfo(
                sample_rate=sf_info.samplerate, channels=sf_info.channels, frames=sf_info.frames
            )
            if info.frames == 0:
                info.error, info.detail = EMPTY, "no audio samples"
    if verify and info.error is None:
        info = _verify(path, info)
    if info.error is None and info.sample_rate and info.duration < MIN_AUDIO_SECONDS:
        info.error = TOO_SHORT
        info.detail = f"{info.duration * 1000:.1f} ms, the minimum is {MIN_AUDIO_SECONDS * 1000:.0f} ms"
    return info


def _verify(path, info):
    import soundfile

    try:
        data, _ = soundfile.read(path, dtype="float32", always_2d=True)
    except Exception as err:
        return AudioInfo(UNDECODABLE, f"full decode failed ({err})")
    if data.shape[0] == 0:
        return AudioInfo(EMPTY, "decoded to zero samples")
    if info.frames and data.shape[0] != info.frames:
        return AudioInfo(TRUNCATED, f"header says {info.frames} frames, decoded {data.shape[0]}")
    finite = np.isfinite(data)
    if not finite.all():
        bad = int((~finite).sum())
        return AudioInfo(NON_FINITE, f"{bad} NaN/Inf sample(s) of {data.size}")
    return info
