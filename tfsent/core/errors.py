"""Two kinds of failure, told apart everywhere.

- `UsageError`: the user can fix it (a flag, a path, a file's content). The command prints one line,
  `bin/NAME: error: <message>`, and exits 2. Raise it (or a subclass) only where the message names
  what to change; never wrap an arbitrary exception in it.
- Anything else is a bug or an environment failure: the traceback is printed and the exit code is 1.

Example:

```python
from tfsent.core.errors import UsageError

if not os.path.isfile(path):
    raise UsageError(f"--manifest={path}: no such file (bin/prepare writes OUT/manifest.csv)")
```
"""

from __future__ import annotations


class UsageError(Exception):
    """A mistake in the command line or the user's input; one line, exit code 2."""
