"""Named evaluation protocols: `bin/prepare --protocol=NAME` presets that a paper can cite.

Each fixes the corpus, the split strategy and the folds; `bin/crossval` then trains fold k on the other
folds, selects on fold (k+1) % K and tests on fold k. The folds of the KEMDy protocols are runs of
consecutive session numbers, so they need no seed to be reproduced.

| name | corpus | folds |
|---|---|---|
| `kemdy20_5fold` | KEMDy20 | 5 folds of 8 sessions: Sess01-08, 09-16, 17-24, 25-32, 33-40 |
| `kemdy19_5fold` | KEMDy19 | 5 folds of 4 of the 20 sessions: Session01-04, ..., 17-20 (the 2022 ETRI competition winners' protocol) |
| `aihub_speaker_proxy_5fold` | AI Hub | 5 folds of whole age+gender groups (no speaker id: the closest proxy), balanced by size |

Example:

```python
protocol = PROTOCOLS["kemdy20_5fold"]
protocol.split, protocol.folds      # ("kfold_session", 5)
```
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Protocol:
    """A named cross-validation protocol.

    Args:
        corpus: the `bin/prepare --format` it applies to.
        split: the split strategy (`kfold_session` or `kfold_age_gender`).
        folds: K.
        contiguous_folds: session folds of consecutive session numbers (else seeded).
        description: one line for docs and the sidecar.
    """

    corpus: str
    split: str
    folds: int
    contiguous_folds: bool
    description: str


PROTOCOLS = {
    "kemdy20_5fold": Protocol(
        "kemdy20", "kfold_session", 5, True,
        "KEMDy20 5-fold session CV: 8 consecutive sessions per fold (Sess01-08, ..., Sess33-40)"),
    "kemdy19_5fold": Protocol(
        "kemdy19", "kfold_session", 5, True,
        "KEMDy19 5-fold session CV: 4 of the 20 sessions per fold (01-04, ..., 17-20), as the 2022 ETRI "
        "competition winners"),
    "aihub_speaker_proxy_5fold": Protocol(
        "aihub", "kfold_age_gender", 5, False,
        "AI Hub 5-fold CV over whole age+gender groups (the only speaker proxy), balanced by size"),
}
