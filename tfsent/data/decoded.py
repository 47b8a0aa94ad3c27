"""Decoded audio kept across epochs, looked up by row index: in memory or on disk.

Decoding and resampling are most of the input pipeline's work and do not depend on the epoch, so
`InputPipeline` can do them once per split (opt-in: `cache_audio`, `snapshot_dir`): every row of the split is decoded in manifest order into
a store, and each epoch's dataset looks its rows up by their index within the split (the epoch's
order, the crop and the augmentation still come from `(seed, epoch, index)`, so the batches are the
same as without a store). Both stores are TensorFlow only: no Python runs per element. Both keep the
clips as int16 (16-bit PCM at the model rate: half the memory / disk of float32); the pipeline puts
every decoded clip on that grid (`pcm16_grid`) whether or not it uses a store, so cached and uncached
batches are identical.

- `MemoryStore` (`cache_audio`): an in-memory `Dataset.cache()` of the decoded clips, read with
  random access (`tf.data.experimental.at`). It fills on first use, streaming through the decode
  (in parallel), and holds the whole split until the pipeline goes away.
- `SnapshotStore` (`snapshot_dir`): one serialized tensor file per readable clip in a directory,
  plus `index.json` (rows, which were unreadable). Each epoch reads its clips back by index with
  `tf.io.read_file`, so memory stays flat in the corpus size, and a later process (or pipeline)
  reuses the directory without decoding. It is built in a temporary directory next to the target and
  renamed into place once complete: a crash leaves a `.NAME.tmp-*` directory (removed by the next
  build on the same host), never a half-written snapshot. Its name is a fingerprint of the clip paths,
  the sample rate and `FORMAT_VERSION`, so a different manifest gets a different snapshot; bump
  `FORMAT_VERSION` when decoding changes.

Unreadable clips (`ok` False) are kept out of both: `attach` drops their rows. The decoder logs their
ids when it meets them; a reused snapshot logs them again from its index.

Example:

```python
decoded = rows_ds.map(load)                          # {"index", "utt_id", "path", "audio", "ok"}
store = MemoryStore(decoded)                         # or SnapshotStore.open_or_build(...)
epoch_ds = store.attach(tf.data.Dataset.from_tensor_slices({"index": order, ...}))
```
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sys
import uuid

import numpy as np
import tensorflow as tf

from tfsent.core import files

FORMAT_VERSION = 2  # 2: int16 clips
INDEX_FILE = "index.json"
_PCM_SCALE = 32768.0


def to_pcm16(audio):
    """float32 `[S]` in [-1, 1) -> int16 `[S]` (rounded, clipped at full scale)."""
    return tf.cast(tf.round(tf.clip_by_value(audio * _PCM_SCALE, -_PCM_SCALE, _PCM_SCALE - 1)), tf.int16)


def from_pcm16(pcm):
    """int16 `[S]` -> float32 `[S]` (as `tf.audio.decode_wav` scales 16-bit PCM)."""
    return tf.cast(pcm, tf.float32) / _PCM_SCALE


def pcm16_grid(audio):
    """`audio` rounded to the 16-bit PCM grid the stores keep (exact for 16-bit sources at the model
    rate; after resampling, an error below 2e-5 of full scale)."""
    return from_pcm16(to_pcm16(audio))


class MemoryStore:
    """Decoded clips of one split in memory, looked up by row index.

    Args:
        decoded: a dataset with one element per row of the split, in row order, holding at least
            `audio` (float32 [S]) and `ok` (bool). It is iterated once, lazily: the first lookup
            starts it, and it runs (with its own parallelism) as far as the rows asked for.

    Example:

    >>> store = MemoryStore(rows.map(load, num_parallel_calls=tf.data.AUTOTUNE))  # doctest: +SKIP
    >>> ds = store.attach(tf.data.Dataset.from_tensor_slices({"index": [3, 0, 2]}))  # doctest: +SKIP
    """

    def __init__(self, decoded):
        slim = decoded.map(lambda ex: {"audio": to_pcm16(ex["audio"]), "ok": ex["ok"]})
        self._cache = slim.cache()

    def attach(self, ds):
        """`ds` (elements with an int `index`) with `audio` and `ok` added; unreadable rows dropped."""
        cache = self._cache

        def add(ex):
            found = tf.data.experimental.at(cache, tf.cast(ex["index"], tf.int64))
            return {**ex, "audio": from_pcm16(found["audio"]), "ok": found["ok"]}

        return ds.map(add, num_parallel_calls=tf.data.AUTOTUNE).filter(lambda ex: ex["ok"])


class SnapshotStore:
    """Decoded clips of one split on disk (one file per clip), looked up by row index.

    Use `SnapshotStore.open_or_build`; the constructor opens a complete snapshot directory.

    Args:
        directory: a complete snapshot directory (it has `index.json`).

    Example:

    >>> store = SnapshotStore.open_or_build("snap/train", paths, ids, decode, 16000)  # doctest: +SKIP
    >>> ds = store.attach(tf.data.Dataset.from_tensor_slices({"index": [3, 0, 2]}))  # doctest: +SKIP
    """

    def __init__(self, directory):
        self.directory = directory
        index = files.read_json(os.path.join(directory, INDEX_FILE))
        if index is None or index.get("format") != FORMAT_VERSION:
            raise ValueError(f"{directory} is not a complete tfsent audio snapshot")
        self.rows = int(index["rows"])
        self.ok = np.ones(self.rows, bool)
        self.skipped = index["skipped"]
        self.ok[[s["index"] for s in self.skipped]] = False

    @classmethod
    def open_or_build(cls, root, paths, utt_ids, decode, sample_rate):
        """The snapshot of these clips under `root`, built first when there is none.

        Args:
            root: the split's snapshot folder (`snapshot_dir/SPLIT`).
            paths, utt_ids: the split's clip paths and ids, in row order.
            decode: maps a dataset of `{"index", "path", "utt_id"}` (row order) to one with `audio`
                and `ok` added (decoded and resampled; `ok` False for unreadable clips).
            sample_rate: the decoded rate (part of the fingerprint).
        """
        name = "audio-v%d-%s" % (FORMAT_VERSION, fingerprint(paths, sample_rate))
        directory = os.path.join(root, name)
        if os.path.exists(os.path.join(directory, INDEX_FILE)):
            store = cls(directory)
            store.log_skipped()
            return store
        os.makedirs(root, exist_ok=True)
        _remove_stale(root, name)
        tmp = os.path.join(root, f".{name}.tmp-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        os.makedirs(tmp)
        try:
            rows = {"index": np.arange(len(paths), dtype=np.int32),
                    "path": np.asarray(paths, dtype=object), "utt_id": np.asarray(utt_ids, dtype=object)}
            ok = _write_clips(decode(tf.data.Dataset.from_tensor_slices(rows)), tmp, len(paths))
            skipped = [{"index": int(i), "utt_id": str(utt_ids[i]), "path": str(paths[i])}
                       for i in np.flatnonzero(~ok)]
            files.write_json(os.path.join(tmp, INDEX_FILE), {
                "format": FORMAT_VERSION, "sample_rate": int(sample_rate), "rows": len(paths),
                "skipped": skipped,
            })
            _commit(tmp, directory)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return cls(directory)

    def log_skipped(self):
        """Logs the unreadable clips (as the decoder did when it built the snapshot)."""
        for s in self.skipped:
            print("tfsent: skipping unreadable audio", s["utt_id"], s["path"], f"(snapshot {self.directory})",
                  file=sys.stderr, flush=True)

    def attach(self, ds):
        """`ds` (elements with an int `index`) with `audio` and `ok` added; unreadable rows dropped."""
        ok = tf.constant(self.ok)
        prefix = os.path.join(self.directory, "")

        def add(ex):
            audio = tf.io.parse_tensor(tf.io.read_file(clip_path(prefix, ex["index"])), tf.int16)
            audio = from_pcm16(tf.ensure_shape(audio, [None]))
            return {**ex, "audio": audio, "ok": tf.constant(True)}

        ds = ds.filter(lambda ex: tf.gather(ok, ex["index"]))
        return ds.map(add, num_parallel_calls=tf.data.AUTOTUNE)


def clip_path(prefix, index):
    """The file of row `index` (a string tensor) under the directory `prefix` (ending in a slash)."""
    return tf.strings.join([prefix, tf.strings.as_string(index, width=8, fill="0"), ".tensor"])


def fingerprint(paths, sample_rate) -> str:
    """16 hex digits naming the snapshot of these clips at this rate."""
    key = json.dumps({"format": FORMAT_VERSION, "sample_rate": int(sample_rate),
                      "paths": [os.path.abspath(str(p)) for p in paths]}, ensure_ascii=False)
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def _write_clips(decoded, directory, n):
    """Writes each readable clip of `decoded` to `directory`; returns the per-row `ok` flags."""
    prefix = os.path.join(directory, "")

    def write(ex):
        def save():
            op = tf.io.write_file(clip_path(prefix, ex["index"]), tf.io.serialize_tensor(to_pcm16(ex["audio"])))
            with tf.control_dependencies([op]):
                return tf.constant(True)

        return ex["index"], tf.cond(ex["ok"], save, lambda: tf.constant(False))

    ok = np.zeros(n, bool)
    seen = 0
    for index, written in decoded.map(write, num_parallel_calls=tf.data.AUTOTUNE).batch(256):
        ok[index.numpy()] = written.numpy()
        seen += len(index)
    if seen != n:
        raise RuntimeError(f"snapshot {directory}: decoded {seen} of {n} rows")
    return ok


def _commit(tmp, directory):
    """Renames the complete `tmp` to `directory`; another process that got there first wins."""
    try:
        os.rename(tmp, directory)
    except OSError:
        if not os.path.exists(os.path.join(directory, INDEX_FILE)):
            # An incomplete directory under the final name (copied or edited by hand): replace it.
            trash = directory + f".old-{uuid.uuid4().hex[:8]}"
            os.rename(directory, trash)
            os.rename(tmp, directory)
            shutil.rmtree(trash, ignore_errors=True)


def _remove_stale(root, name):
    """Removes temporary directories of `name` left by crashed builds on this host."""
    host = socket.gethostname()
    for entry in os.listdir(root):
        if not entry.startswith(f".{name}.tmp-{host}-"):
            continue
        pid = entry[len(f".{name}.tmp-{host}-"):].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(os.path.join(root, entry), ignore_errors=True)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
