"""Is a manifest's training split something a model can learn from? Checked before any work starts.

`bin/train` calls these right after reading the manifest (before TensorFlow starts and before anything
is written into the model dir), so a degenerate training set costs seconds and leaves nothing behind:

- no row in `--train_split` (a renamed split), a single class, `target_*` columns that are not
  distributions (negative, non-finite, not summing to 1): errors;
- classes of the class set with no training example (the model cannot learn them but will still
  predict them): a loud warning;
- a text model whose training text is empty (or the literal `NaN` / `None` a spreadsheet left) in
  every row: an error, before a vocabulary learns the token `NaN`; in most rows: a warning.

Example:
    >>> warnings = check_training_set(frame, sidecar, "train", "classification")  # doctest: +SKIP
    >>> check_training_text(frame, "train")  # doctest: +SKIP
"""

import numpy as np

from tfsent.corpus.manifest import ManifestError

# Cells a spreadsheet or pandas writes for "no text".
EMPTY_TEXT = ("", "nan", "none", "null")


def _split_rows(frame, split, flag):
    rows = frame[frame["split"].astype(str) == str(split)]
    if len(rows) == 0:
        present = ", ".join(sorted(frame["split"].astype(str).unique()))
        raise ManifestError(f"--{flag}={split}: no row of the manifest is in this split (splits: {present})")
    return rows


def _check_targets(frame, classes):
    columns = [f"target_{c}" for c in classes]
    targets = frame[columns].to_numpy(np.float64)
    bad = ~np.isfinite(targets).all(axis=1) | (targets < 0).any(axis=1)
    bad |= np.abs(np.nan_to_num(targets).sum(axis=1) - 1.0) > 1e-3
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        row = frame.iloc[i]
        raise ManifestError(
            f"manifest row {row['utt_id']!r}: target_* columns {targets[i].tolist()} are not a distribution "
            f"(finite, >= 0, summing to 1); {int(bad.sum())} row(s) like it: re-run bin/prepare")


def check_training_set(frame, sidecar, train_split, task):
    """Errors for a training split nothing can be learnt from; returns warnings (strings) for one that
    is merely poor. `task` is `classification`, `valence` or `arousal`."""
    rows = _split_rows(frame, train_split, "train_split")
    warnings = []
    if task != "classification":
        known = rows[task].notna().sum()
        if known == 0:
            raise ManifestError(f"--task={task}: no row of --train_split={train_split} has a {task} value")
        return warnings
    classes = list(sidecar["classes"])
    _check_targets(frame, classes)
    counts = rows["emotion"].astype(str).value_counts()
    present = [c for c in classes if counts.get(c, 0) > 0]
    if len(present) < 2:
        raise ManifestError(f"--train_split={train_split} holds {len(rows)} row(s) of {len(present)} class(es) "
                            f"({', '.join(present) or 'none'}): a classifier needs at least two")
    missing = [c for c in classes if c not in present]
    if missing:
        warnings.append(f"classes {missing} have no example in --train_split={train_split}: the model cannot "
                        f"learn them but will still predict them (prepare with a class set the corpus has, "
                        f"e.g. bin/prepare --classes=4)")
    return warnings


def check_training_text(frame, train_split):
    """For text models: an error when every training text is empty (or `NaN` / `None`), a warning
    (returned) when most are."""
    texts = _split_rows(frame, train_split, "train_split")["text"].fillna("").astype(str)
    empty = texts.str.strip().str.lower().isin(EMPTY_TEXT)
    if empty.all():
        raise ManifestError(f"--train_split={train_split}: the text of all {len(texts)} row(s) is empty "
                            f"(or NaN/None): a text model has nothing to learn from")
    if empty.mean() > 0.5:
        return [f"{int(empty.sum())} of {len(texts)} training texts are empty (or NaN/None)"]
    return []
