"""Random access to a long audio file in blocks, mono float32 at a target rate, without loading it whole.

`AudioStream(path, target_rate)` opens the file with soundfile (WAV, FLAC, OGG, ...) and reads only
the blocks asked for: `read(start, stop)` returns samples `[start, stop)` at `target_rate`, zeros past
the end, channels averaged (as `tfsent.audio.io` does). When the file's rate differs, each block is
resampled with `tfsent.audio.resample.resample` from the input samples it needs plus a margin wider
than the filter, so a block equals the same span of the whole resampled file (< 1e-5; the filter
reads zeros past the file's ends in both cases). Memory is that of one block, whatever the length.

Example:

```python
with AudioStream("call.wav", 16000) as stream:
    stream.num_samples                 # at 16 kHz
    block = stream.read(0, 16000 * 60)  # the first minute
```
"""

from __future__ import annotations

import math

import numpy as np
import soundfile

from tfsent.audio.resample import ZERO_CROSSINGS, resample


class AudioStream:
    """Blocks of a long audio file at a target rate.

    Args:
        path: an audio file soundfile reads.
        target_rate: samples per second of what `read` returns.

    Example:

    ```python
    with AudioStream("call.wav", 16000) as s:
        first_second = s.read(0, 16000)
    ```
    """

    def __init__(self, path, target_rate):
        self._file = soundfile.SoundFile(path)
        self.rate = int(self._file.samplerate)
        self.target_rate = int(target_rate)
        self.frames = int(self._file.frames)  # at the file's rate
        g = math.gcd(self.rate, self.target_rate)
        self._up, self._down = self.target_rate // g, self.rate // g
        self.num_samples = -(-self.frames * self.target_rate // self.rate)  # ceil, as resample's output
        # Input samples either side that the resampling filter reaches (+ slack), in whole down-blocks.
        reach = ZERO_CROSSINGS * max(1.0, self.rate / self.target_rate) * 2 + 8
        self._margin = int(math.ceil(reach / self._down)) * self._down

    @property
    def duration(self):
        return self.frames / self.rate

    def _read_input(self, start, stop):
        """File samples `[start, stop)` (mono float32), zeros outside the file."""
        lo, hi = max(start, 0), min(stop, self.frames)
        out = np.zeros(max(stop - start, 0), np.float32)
        if hi > lo:
            self._file.seek(lo)
            data = self._file.read(hi - lo, dtype="float32", always_2d=True)
            out[lo - start: lo - start + len(data)] = data.mean(axis=1)
        return out

    def read(self, start, stop):
        """Samples `[start, stop)` at the target rate (float32; zeros past the end)."""
        start, stop = int(start), int(stop)
        if self.rate == self.target_rate:
            return self._read_input(start, stop)
        # Output n sits at input time n * down / up; read from a multiple of `down` (an output boundary).
        first_block = max(start * self._down // self._up // self._down * self._down - self._margin, 0)
        last = -(-stop * self._down // self._up) + self._margin
        x = self._read_input(first_block, min(last, self.frames))
        if x.size == 0:
            return np.zeros(max(stop - start, 0), np.float32)
        y = resample(x, self.rate, self.target_rate).numpy()
        offset = first_block // self._down * self._up
        out = np.zeros(max(stop - start, 0), np.float32)
        lo, hi = max(start, offset), min(stop, offset + len(y), self.num_samples)
        if hi > lo:
            out[lo - start: hi - start] = y[lo - offset: hi - offset]
        return out

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
