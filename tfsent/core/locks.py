"""One writer per directory: a lock file holding the owner's pid and host, stale locks detected.

`bin/train` holds its model dir's lock for the whole run, `bin/export` the model name's folder while
it writes a version: a second command on the same directory refuses with a one-line error instead of
sharing checkpoints or racing for a version. The lock is a file created with `O_EXCL` (atomic on
POSIX and NFSv3+), removed when the holder exits. A lock whose pid is dead on this host is stale and
taken over (noted on stderr); one from another host is never guessed at: the message says which
file to remove.

Creating the lock is also the first write into the directory, so a read-only or missing directory
fails here, with the path in the message, before any work starts.

Example:

```python
with DirLock("runs/demo", flag="--model_dir"):
    train()
```
"""

from __future__ import annotations

import atexit
import datetime
import json
import os
import socket
import sys

from tfsent.core.errors import UsageError

LOCK_FILE = ".tfsent.lock"


class LockedError(UsageError):
    """Another live command holds the directory."""


def _alive(pid) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


class DirLock:
    """The lock on one directory.

    Args:
        directory: the directory to lock (created when missing).
        flag: how the user named it (`--model_dir`), for messages.
        name: the lock file's name inside `directory`.
    """

    def __init__(self, directory, flag="directory", name=LOCK_FILE):
        self.directory = os.fspath(directory)
        self.flag = flag
        self.path = os.path.join(self.directory, name)
        self.held = False

    def _where(self):
        return f"{self.flag}={self.directory}"

    def _create(self):
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "since": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "command": " ".join(sys.argv)[:500]}
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(info, f)

    def _holder(self):
        try:
            with open(self.path, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def acquire(self):
        try:
            os.makedirs(self.directory, exist_ok=True)
            for _ in range(2):
                try:
                    self._create()
                    break
                except FileExistsError:
                    holder = self._holder()
                    pid, host = holder.get("pid"), holder.get("host")
                    if host == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
                        print(f"note: removing the stale lock {self.path} (pid {pid} is gone)", file=sys.stderr)
                        os.unlink(self.path)
                        continue
                    raise LockedError(
                        f"{self._where()} is in use by pid {pid} on {host} since {holder.get('since')} "
                        f"({holder.get('command', '?')}); wait for it, or remove {self.path} if that "
                        f"command is gone") from None
            else:
                raise LockedError(f"{self._where()}: cannot take the lock {self.path}")
        except OSError as e:
            raise UsageError(f"{self._where()}: cannot write there ({e.strerror})") from None
        self.held = True
        atexit.register(self.release)
        return self

    def release(self):
        if self.held:
            self.held = False
            try:
                if self._holder().get("pid") == os.getpid():
                    os.unlink(self.path)
            except OSError:
                pass

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
