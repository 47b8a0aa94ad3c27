"""The bottom layer: what every other sub-package may use and nothing else defines.

- `tfsent.core.files`: the one atomic writer (text, bytes, JSON, several files as a set).
- `tfsent.core.errors`: `UsageError` (one line, exit 2) vs everything else (traceback, exit 1).
- `tfsent.core.logs`: quiet TensorFlow / absl / matplotlib logging by default.
- `tfsent.core.run_dir`: `RunDir`, the layout of a training run's directory (who writes and reads what).
"""
