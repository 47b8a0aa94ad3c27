"""Per-speaker feature normalisation: each utterance's spectral features standardised, per bin, with
the mean and standard deviation of its speaker's *other* utterances.

A speaker's voice and recording shift every bin of their log-Mel frames; removing the speaker's own
mean and scale leaves more of what varies within a speaker. The statistics come from the speaker's
other utterances of the same split: the training split's in training, the evaluated split's at
inference (an enrolment set of the speaker's other recordings), never from the utterance itself. A
speaker with no other utterance, or a row without a `speaker`, gets the whole split's statistics
(without the row). They are computed once per split from clean audio (centre crop, no augmentation,
no corruption): `InputPipeline` (`PipelineConfig.speaker_norm`) sums each row's frames in one pass and
feeds per-row constants to the graph.

The standardised bins are mapped back onto the split's own mean and scale per bin
(`(x - speaker mean) / speaker std * split std + split mean`, `speaker_affine`), so the features keep
the range the models were built for (e.g. the demo's fixed dB rescaling) whatever the feature kind.

Example:

```python
scale, shift = speaker_affine(speakers, sums, squares, frames)   # features * scale + shift, [N, F] each
```
"""

from __future__ import annotations

import numpy as np

MIN_STD = 1e-3


def _speaker_ids(speakers):
    out = []
    for s in speakers:
        missing = s is None or (isinstance(s, float) and np.isnan(s))
        out.append("" if missing else str(s).strip())
    return np.asarray(out, dtype=object)


def leave_one_out_stats(speakers, sums, squares, frames, min_std=MIN_STD):
    """Per-row `(mean, std)` of the frames of the row's speaker's other rows.

    Args:
        speakers: `[N]` speaker ids (`""`, None or NaN: unknown).
        sums, squares: `[N, ...]` per-row sums over frames of the features and of their squares.
        frames: `[N]` frames per row (0 for a row that could not be read: it adds nothing).
        min_std: floor of the standard deviation (a constant bin would otherwise divide by 0).

    Returns float32 `mean`, `std` shaped like `sums`; `(0, 1)` for a row with no other frame at all.

    Example:

    ```python
    mean, std = leave_one_out_stats(["a", "a", "b"], sums, squares, [100, 80, 90])
    ```
    """
    sums, squares = np.asarray(sums, np.float64), np.asarray(squares, np.float64)
    frames = np.asarray(frames, np.float64)
    ids = _speaker_ids(speakers)
    if not (len(ids) == len(sums) == len(squares) == len(frames)):
        raise ValueError("speakers, sums, squares and frames need one entry per row")
    keys, inverse = np.unique(ids, return_inverse=True)
    per = (len(keys),) + sums.shape[1:]
    spk_sum, spk_sq, spk_n = np.zeros(per), np.zeros(per), np.zeros(len(keys))
    np.add.at(spk_sum, inverse, sums)
    np.add.at(spk_sq, inverse, squares)
    np.add.at(spk_n, inverse, frames)
    other_n = spk_n[inverse] - frames
    known = (ids != "") & (other_n > 0)
    n = np.where(known, other_n, frames.sum() - frames)
    expand = (slice(None),) + (None,) * (sums.ndim - 1)
    use = known[expand]
    s = np.where(use, spk_sum[inverse] - sums, sums.sum(0) - sums)
    sq = np.where(use, spk_sq[inverse] - squares, squares.sum(0) - squares)
    safe = np.maximum(n, 1.0)[expand]
    mean = s / safe
    std = np.maximum(np.sqrt(np.maximum(sq / safe - mean**2, 0.0)), min_std)
    empty = (n <= 0)[expand]
    mean = np.where(empty, 0.0, mean)
    std = np.where(empty, 1.0, std)
    return mean.astype(np.float32), std.astype(np.float32)


def speaker_affine(speakers, sums, squares, frames, min_std=MIN_STD):
    """Per-row `(scale, shift)`: `features * scale + shift` is the row standardised with its speaker's
    other rows (`leave_one_out_stats`) and mapped onto the mean and std of the split's other rows.

    Example:

    ```python
    scale, shift = speaker_affine(rows["speaker"], sums, squares, frames)
    ```
    """
    mean, std = leave_one_out_stats(speakers, sums, squares, frames, min_std)
    split_mean, split_std = leave_one_out_stats([None] * len(frames), sums, squares, frames, min_std)
    scale = split_std / std
    return scale.astype(np.float32), (split_mean - mean * scale).astype(np.float32)
