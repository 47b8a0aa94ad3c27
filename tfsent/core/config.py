"""Typed configuration: dataclasses from dicts (JSON files, flags) with unknown keys as errors.

Example:

```python
feature = from_dict(FeatureConfig, {"kind": "log_mel", "n_mels": 64})
from_dict(FeatureConfig, {"n_mel": 64})      # ValueError: unknown FeatureConfig field(s): ['n_mel']
```
"""

from __future__ import annotations

import dataclasses


def from_dict(cls, values: dict):
    """`cls(**values)` after checking that every key is one of the dataclass's fields."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s): {unknown}")
    return cls(**values)
