"""Train / valid / test splits, reproducible from a seed, and the disjointness check.

Strategies (`--split`):
  * `session`: KEMDy standard — KEMDy20 sessions 1-32 train, 33-40 test; other
    corpora (KEMDy19, partial copies) test on the last `test_fraction` of sessions
    by number. Validation sessions are drawn (seeded) from the training sessions.
  * `speaker`: disjoint speakers, drawn (seeded) until each split holds its share
    of utterances.
  * `age_gender`: like `speaker` over age+gender groups — the closest proxy on
    AI Hub, which has no speaker id.
  * `kfold_session`: k folds by session; the split column holds the fold number
    and `fold_roles` tells, for fold i, test = fold i, valid = fold (i+1) % k,
    train = the rest (so a validation split exists for every fold).
  * `kfold_age_gender`: k folds of whole age+gender groups (AI Hub's speaker proxy), balanced by
    size (largest group first into the smallest fold); `fold_roles` as above.
  * `random_stratified`: per-emotion random split, only to reproduce the seeds'
    numbers; warns that speakers and sentences leak.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"session": [f"Sess{i:02d}" for i in range(1, 41)],
    ...                    "speaker": [f"User{i:03d}" for i in range(1, 41)],
    ...                    "emotion": ["neutral"] * 40})
    >>> split, info = assign_splits(df, "session", seed=0, corpus="kemdy20")
    >>> sorted(split.unique())
    ['test', 'train', 'valid']
    >>> check_disjoint(df.assign(split=split), "session")
"""

import re

import numpy as np
import pandas as pd

SPLITS = ("session", "speaker", "age_gender", "kfold_session", "kfold_age_gender", "random_stratified")
KFOLD_SPLITS = ("kfold_session", "kfold_age_gender")
LEAK_WARNING = (
    "random_stratified split: the same speakers and (on KEMDy) the same scripted "
    "sentences appear in train and test; use it only to reproduce the seeds' numbers"
)


class SplitError(ValueError):
    """A split that cannot be made (missing ids, too few groups) or is not disjoint."""


def _number(name):
    m = re.search(r"(\d+)", str(name))
    return int(m.group(1)) if m else -1


def _groups(df, strategy):
    if strategy in ("age_gender", "kfold_age_gender"):
        missing = (df["age"].astype(str) == "") | (df["gender"].astype(str) == "")
        if missing.all():
            raise SplitError(
                "--split=age_gender needs age and gender (AI Hub); this corpus has no age: "
                "use --split=speaker or --split=session"
            )
        key = df["age"].astype(str) + "_" + df["gender"].astype(str)
    else:
        column = "session" if strategy in ("session", "kfold_session") else "speaker"
        key = df[column].astype(str)
        missing = key == ""
        if missing.all():
            raise SplitError(
                f"--split={strategy} needs {column} ids, and this corpus has none "
                "(AI Hub has no speaker or session id: use --split=age_gender, the "
                "closest speaker proxy, or --split=random_stratified)"
            )
    if missing.any():
        raise SplitError(
            f"--split={strategy}: {int(missing.sum())} rows lack a group id "
            f"(first: {df.loc[missing, 'utt_id'].iloc[0]!r})"
        )
    return key


def _group_split(key, seed, valid_fraction, test_fraction):
    """Draws whole groups for test, then valid, the rest is train (each non-empty)."""
    sizes = key.value_counts()
    groups = sorted(sizes.index, key=lambda g: (_number(g), g))
    if len(groups) < 3:
        raise SplitError(f"need at least 3 groups for train/valid/test, found {len(groups)}")
    order = [groups[i] for i in np.random.default_rng(seed).permutation(len(groups))]
    total = len(key)
    assignment, i = {}, 0
    for name, fraction in (("test", test_fraction), ("valid", valid_fraction)):
        taken = 0
        while i < len(order) - 1 and (taken == 0 or taken < fraction * total):
            if len(order) - i <= (2 if name == "test" else 1):  # leave groups for the rest
                break
            assignment[order[i]] = name
            taken += sizes[order[i]]
            i += 1
    for g in order[i:]:
        assignment[g] = "train"
    return key.map(assignment)


def _session_split(key, seed, valid_fraction, test_fraction, corpus):
    sessions = sorted(set(key), key=lambda s: (_number(s), s))
    if len(sessions) < 3:
        raise SplitError(f"--split=session needs at least 3 sessions, found {len(sessions)}")
    numbers = {s: _number(s) for s in sessions}
    if corpus == "kemdy20" and any(n >= 33 for n in numbers.values()) and any(
        n <= 32 for n in numbers.values()
    ):
        test = [s for s in sessions if numbers[s] >= 33]
        rule = "KEMDy20 standard: sessions 1-32 train/valid, 33-40 test"
    else:
        n_test = max(1, int(round(test_fraction * len(sessions))))
        test = sessions[-n_test:]
        rule = f"last {n_test} of {len(sessions)} sessions (by number) test"
    train = [s for s in sessions if s not in test]
    if len(train) < 2:
        raise SplitError(f"--split=session: only {len(train)} training session(s) left")
    n_valid = min(len(train) - 1, max(1, int(round(valid_fraction * len(train)))))
    rng = np.random.default_rng(seed)
    valid = [train[i] for i in sorted(rng.choice(len(train), n_valid, replace=False))]
    assignment = {s: "train" for s in train}
    assignment.update({s: "valid" for s in valid})
    assignment.update({s: "test" for s in test})
    return key.map(assignment), {"session_rule": rule, "valid_sessions": valid, "test_sessions": test}


def _stratified(labels, seed, valid_fraction, test_fraction):
    rng = np.random.default_rng(seed)
    split = pd.Series("train", index=labels.index, dtype=object)
    for label in sorted(labels.unique()):
        idx = labels.index[labels == label].to_numpy()
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(test_fraction * len(idx)))
        n_valid = int(round(valid_fraction * len(idx)))
        split.loc[idx[:n_test]] = "test"
        split.loc[idx[n_test:n_test + n_valid]] = "valid"
    return split


def _session_folds(key, folds, seed, contiguous):
    """Fold of every session: seeded shuffle, or runs of consecutive session numbers (`contiguous`)."""
    sessions = sorted(set(key), key=lambda s: (_number(s), s))
    if len(sessions) < folds:
        raise SplitError(f"--folds={folds} but only {len(sessions)} sessions")
    if contiguous:
        return {s: str(i * folds // len(sessions)) for i, s in enumerate(sessions)}, sessions
    order = [sessions[i] for i in np.random.default_rng(seed).permutation(len(sessions))]
    return {s: str(i % folds) for i, s in enumerate(order)}, sessions


def _balanced_group_folds(key, folds, seed):
    """Whole groups into folds, largest first into the fold with the fewest rows (seeded tie order)."""
    sizes = key.value_counts()
    groups = sorted(sizes.index, key=lambda g: (_number(g), g))
    if len(groups) < folds:
        raise SplitError(f"--folds={folds} but only {len(groups)} groups")
    order = [groups[i] for i in np.random.default_rng(seed).permutation(len(groups))]
    order.sort(key=lambda g: -sizes[g])  # stable: the seeded order breaks ties
    totals, fold_of = [0] * folds, {}
    for g in order:
        f = min(range(folds), key=lambda i: (totals[i], i))
        fold_of[g] = str(f)
        totals[f] += int(sizes[g])
    return fold_of, groups


def _kfold(key, strategy, seed, folds, contiguous):
    if folds < 3:
        raise SplitError(f"--folds={folds}: need at least 3 (test, valid and train folds)")
    if strategy == "kfold_session":
        fold_of, groups = _session_folds(key, folds, seed, contiguous)
    else:
        fold_of, groups = _balanced_group_folds(key, folds, seed)
    info = {
        "folds": folds,
        "fold_protocol": "for fold i: test = fold i, valid = fold (i+1) % k, train = the rest",
        "fold_order": "contiguous session numbers" if contiguous and strategy == "kfold_session" else "seeded",
        ("fold_sessions" if strategy == "kfold_session" else "fold_groups"): {
            str(f): sorted((g for g in groups if fold_of[g] == str(f)), key=lambda g: (_number(g), g))
            for f in range(folds)
        },
    }
    return key.map(fold_of), info


def assign_splits(df, strategy, seed=0, *, folds=5, valid_fraction=0.1, test_fraction=0.2,
                  corpus=None, contiguous_folds=False):
    """Assigns every row of a manifest frame to a split.

    Args:
        df: manifest rows (`utt_id, session, speaker, age, gender, emotion` used).
        strategy: one of `SPLITS`.
        seed: the random seed; the same seed gives the same split.
        folds: k of `kfold_session` / `kfold_age_gender` (at least 3).
        valid_fraction, test_fraction: shares of utterances (or of sessions).
        corpus: the corpus name (the KEMDy20 session rule applies to `kemdy20`).
        contiguous_folds: `kfold_session` folds of consecutive session numbers (the named protocols)
            instead of a seeded shuffle.

    Returns:
        `(split, info)`: a string Series aligned with `df` (`train`/`valid`/`test`,
        or `"0"`..`"k-1"`), and a dict of facts for the sidecar (rule, warnings).
    """
    if strategy not in SPLITS:
        raise SplitError(f"unknown split {strategy!r}; expected one of {', '.join(SPLITS)}")
    info = {"strategy": strategy, "warnings": []}
    if strategy == "random_stratified":
        info["warnings"].append(LEAK_WARNING)
        return _stratified(df["emotion"], seed, valid_fraction, test_fraction), info
    key = _groups(df, strategy)
    if strategy == "session":
        split, extra = _session_split(key, seed, valid_fraction, test_fraction, corpus)
        info.update(extra)
    elif strategy in KFOLD_SPLITS:
        split, extra = _kfold(key, strategy, seed, folds, contiguous_folds)
        info.update(extra)
    else:
        split = _group_split(key, seed, valid_fraction, test_fraction)
        if strategy == "age_gender":
            info["note"] = "age+gender groups stand in for speakers (AI Hub has no speaker id)"
    return split.astype(object), info


def fold_roles(split, fold, folds):
    """Maps a `kfold_session` split column to `train`/`valid`/`test` for one fold."""
    fold, folds = int(fold), int(folds)
    values = split.astype(str)
    roles = pd.Series("train", index=split.index, dtype=object)
    roles[values == str(fold)] = "test"
    roles[values == str((fold + 1) % folds)] = "valid"
    return roles


def check_disjoint(df, column, split_column="split"):
    """Raises SplitError when a value of `column` occurs in more than one split."""
    spread = df.groupby(column)[split_column].nunique()
    bad = spread[spread > 1]
    if len(bad):
        raise SplitError(
            f"{column} not disjoint across splits: {', '.join(map(str, bad.index[:5]))}"
            + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        )
