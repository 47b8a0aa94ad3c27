"""Quiet logging by default: a command prints its own progress lines, not TensorFlow's.

`bin/*` commands run under absl, which routes every Python logger through its handler on the root
logger at INFO (absl's default `--verbosity=0`). That prints, among others:

- through `absl.logging` (logger `absl`): `functional_saver.py] Sharding callback duration` at every
  checkpoint save, and at every SavedModel export `signature_serialization.py] ... will be renamed
  to ...` and `fingerprinting_utils.py] Writing fingerprint`;
- through TensorFlow's logger (`tensorflow`): `builder_impl.py] Assets written to`, AutoGraph's
  `ag_logging.py] AutoGraph could not transform ...` warnings;
- through matplotlib's (`matplotlib`): `font_manager.py] generated new fontManager` on a fresh cache.

`quiet()` sets absl's verbosity to WARNING (absl then sets the root logger to WARNING: that is the
level TensorFlow itself saves and restores around a SavedModel export, so it sticks, where a plain
`setLevel` on the root logger is undone at the first `tf.saved_model.save`), and raises `tensorflow`
to ERROR, `matplotlib`, `PIL`, `h5py` to WARNING. When the user asked for logs (`--verbosity=N` /
`-v N`, absl's own flag) it does nothing, so the level that flag set stands. The C++ lines TensorFlow
writes before absl's C++ logging is initialised (`I0000 00:00:... port.cc`, `cudart_stub.cc`,
`E0000 ... cuda_platform.cc`) come from native code and are out of reach here.

Example:

```python
from tfsent.core import logs

logs.quiet(verbosity_explicit=False)   # after absl parsed the flags (tfsent.cli.common does this)
```
"""

from __future__ import annotations

import logging

#: Python logger → the level `quiet` raises it to (records below it are dropped).
QUIET_LEVELS = {
    "tensorflow": logging.ERROR,
    "matplotlib": logging.WARNING,
    "PIL": logging.WARNING,
    "h5py": logging.WARNING,
}


def quiet(verbosity_explicit: bool = False) -> None:
    """Silences TensorFlow / absl / matplotlib INFO chatter, unless `verbosity_explicit`.

    Call it after absl parsed the flags (absl raises an unset `--verbosity` to INFO right after
    parsing); `tfsent.cli.common.run_main` calls it as `main` starts.

    Args:
        verbosity_explicit: the user passed absl's `--verbosity` (or `-v`); leave every level alone.
    """
    if verbosity_explicit:
        return
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)  # `absl` logger, and root under absl's handler
    for name, level in QUIET_LEVELS.items():
        logging.getLogger(name).setLevel(level)
