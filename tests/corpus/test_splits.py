"""Splits: disjointness, reproducibility, the KEMDy20 session rule, folds, the leak warning."""

import pandas as pd
import pytest

from tfsent.corpus import splits


def _frame(sessions=40, per_session=6):
    rows = []
    for s in range(1, sessions + 1):
        for i in range(per_session):
            rows.append({
                "utt_id": f"Sess{s:02d}_{i}", "session": f"Sess{s:02d}",
                "speaker": f"User{2 * s - i % 2:03d}", "age": str(20 + 10 * (s % 5)),
                "gender": "female" if s % 2 else "male",
                "emotion": ["neutral", "happy", "sad"][i % 3],
            })
    return pd.DataFrame(rows)


def test_kemdy20_session_rule_and_disjointness():
    df = _frame()
    split, info = splits.assign_splits(df, "session", seed=3, corpus="kemdy20")
    df["split"] = split
    test_sessions = set(df.session[df.split == "test"])
    assert test_sessions == {f"Sess{s}" for s in range(33, 41)}
    assert set(df.split) == {"train", "valid", "test"}
    assert len(set(df.session[df.split == "valid"])) == 3  # round(0.1 * 32) sessions from train
    splits.check_disjoint(df, "session")
    splits.check_disjoint(df, "speaker")
    again, _ = splits.assign_splits(df, "session", seed=3, corpus="kemdy20")
    other, _ = splits.assign_splits(df, "session", seed=4, corpus="kemdy20")
    assert again.tolist() == split.tolist() and other.tolist() != split.tolist()


@pytest.mark.parametrize("strategy, column", [("speaker", "speaker"), ("age_gender", None)])
def test_group_splits_are_disjoint_and_have_validation(strategy, column):
    df = _frame(sessions=20)
    split, _ = splits.assign_splits(df, strategy, seed=0)
    df["split"] = split
    df["age_gender"] = df.age + "_" + df.gender
    splits.check_disjoint(df, column or "age_gender")
    assert set(df.split) == {"train", "valid", "test"}
    assert df.split.value_counts()["train"] > df.split.value_counts()["test"]


def test_check_disjoint_catches_leaks():
    df = pd.DataFrame({"speaker": ["a", "a", "b"], "split": ["train", "test", "train"]})
    with pytest.raises(splits.SplitError, match="speaker not disjoint.*a"):
        splits.check_disjoint(df, "speaker")


def test_kfold_session_folds_and_roles():
    df = _frame(sessions=10)
    split, info = splits.assign_splits(df, "kfold_session", seed=1, folds=5)
    df["split"] = split
    assert sorted(df.split.unique()) == ["0", "1", "2", "3", "4"]
    splits.check_disjoint(df, "session")
    for fold in range(5):
        roles = splits.fold_roles(df.split, fold, 5)
        assert set(roles) == {"train", "valid", "test"}
        assert set(df.session[roles == "test"]).isdisjoint(df.session[roles != "test"])
    with pytest.raises(splits.SplitError, match="only 10 sessions"):
        splits.assign_splits(df, "kfold_session", folds=12)


def test_random_stratified_warns_and_stratifies():
    df = _frame(sessions=10)
    split, info = splits.assign_splits(df, "random_stratified", seed=0)
    assert any("leak" in w or "appear in train and test" in w for w in info["warnings"])
    table = pd.crosstab(df.emotion, split)
    assert (table["test"] == 4).all() and (table["valid"] == 2).all()  # 20 per class: 20%, 10%


def test_missing_ids_are_clear_errors():
    df = _frame(sessions=5).assign(speaker="", session="")
    with pytest.raises(splits.SplitError, match="use --split=age_gender"):
        splits.assign_splits(df, "speaker")
    with pytest.raises(splits.SplitError, match="has no age"):
        splits.assign_splits(df.assign(age=""), "age_gender")
    with pytest.raises(splits.SplitError, match="at least 3 groups"):
        splits.assign_splits(_frame(sessions=2), "age_gender")  # 2 age+gender groups
