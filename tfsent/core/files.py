"""The one atomic writer: a crash leaves every target old or new, never half-written.

Each file is written to a temporary name in the target's folder, flushed and fsynced, then renamed
over the target (`os.replace`, atomic on POSIX). `write_files` stages a whole set first and renames
them in order, so the last file can "commit" the set (the manifest's sidecar, a run's config).

Example:

```python
from tfsent.core import files

files.write_text("runs/x/flags.txt", "--model=demo_fusion\n")
files.write_json("runs/x/train_summary.json", {"best_value": 0.8})
with files.atomic_path("runs/x/model.keras") as tmp:   # for writers that want a path
    model.save(tmp)
```
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile

import numpy as np


def _umask_mode() -> int:
    """The mode a plain `open(path, "w")` would give: 0666 less the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _stage(path, data: bytes) -> str:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        # mkstemp creates 0600; outputs are shared (prepared data, run dirs): follow the umask.
        os.fchmod(fd, _umask_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def write_files(contents: dict) -> None:
    """Writes `{path: bytes or str}`; all are staged first, then renamed in the given order."""
    staged = []
    try:
        for path, data in contents.items():
            if isinstance(data, str):
                data = data.encode("utf-8")
            staged.append((_stage(path, data), path))
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)


def write_bytes(path, data: bytes) -> None:
    """Writes one file atomically."""
    write_files({path: data})


def write_text(path, text: str) -> None:
    """Writes UTF-8 text atomically."""
    write_files({path: text.encode("utf-8")})


def json_default(o):
    """`json.dumps(default=...)` for numpy scalars and arrays."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def dumps_json(obj) -> str:
    """The project's JSON style: indented, UTF-8 text kept (Korean stays readable), numpy allowed."""
    return json.dumps(obj, indent=2, ensure_ascii=False, default=json_default)


def write_json(path, obj) -> None:
    """Writes `obj` as indented UTF-8 JSON atomically."""
    write_text(path, dumps_json(obj) + "\n")


def read_json(path, default=None):
    """The parsed JSON file, or `default` when it does not exist."""
    if not os.path.exists(path):
        return default
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@contextlib.contextmanager
def atomic_path(path, suffix=None):
    """Yields a temporary path next to `path` for a writer that takes a path (Keras `save`,
    matplotlib `savefig`, pandas `to_csv`); renamed over `path` when the block ends without error,
    removed otherwise. `suffix` defaults to `path`'s extension (Keras and matplotlib pick the format
    from it)."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    suffix = suffix if suffix is not None else os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp" + suffix, dir=directory)
    os.close(fd)
    os.unlink(tmp)  # writers such as Keras refuse to overwrite; they create it
    try:
        yield tmp
        if os.path.isfile(tmp):
            os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    finally:
        if os.path.isdir(tmp):
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.unlink(tmp)
