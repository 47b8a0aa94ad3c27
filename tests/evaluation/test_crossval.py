"""The research protocol (issue 13): bin/crossval over a 3-fold session manifest of the tiny corpus
(results, OOF file, reuse, SIGKILL + re-run), stacking over three Keras cross-validations, cross-corpus
scoring with classes mapped by emotion name, a scikit-learn run scored and ranked by bin/report, and the
named bin/prepare protocols. The fast tests check the pieces without TensorFlow; the end-to-end ones
(tiny models, 3 folds, 1-2 epochs) are marked slow.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO, run_cli

TINY = ["--n_mels=16", "--max_seconds=2", "--sequence_length=16", "--batch_size=4", "--vocab_size=300",
        "--lr_schedule=constant", "--warmup_steps=0", "--learning_rate=0.01", "--audio_augment=",
        "--checkpoint_every_steps=2", "--log_every_steps=1", "--deterministic", "--progress=false"]
TEXT = ["--model=text_cnn", "--model_kwargs=filters=8,hidden=8,embedding_dim=8"]


@pytest.fixture(scope="module")
def kfold(tiny_corpus, tmp_path_factory):
    """The tiny corpus prepared with --split=kfold_session --folds=3."""
    out = tmp_path_factory.mktemp("kfold") / "prepared"
    run_cli("prepare", "--format=kemdy20", f"--data_dir={tiny_corpus['corpus']}", f"--out={out}",
            "--classes=4", "--tie_policy=first", "--split=kfold_session", "--folds=3")
    return str(out / "manifest.csv")


def crossval_args(kfold, out, model, epochs=2, *extra):
    return ["--flagfile=configs/demo.flags", f"--manifest={kfold}", f"--out={out}", *model, *TINY,
            f"--epochs={epochs}", *extra]


def crossval(*args, check=True):
    return run_cli("crossval", *args, check=check, timeout=900)


def _json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# === Fast: the pieces ===


def test_fold_manifests_and_k_fold_check(kfold, tmp_path):
    from tfsent.core.errors import UsageError
    from tfsent.corpus.manifest import read_manifest
    from tfsent.evaluation import crossval

    frame, sidecar = read_manifest(kfold)
    assert crossval.fold_count(frame, sidecar) == 3
    for k in range(3):
        path = crossval.write_fold_manifest(frame, sidecar, fold=k, folds=3, out_dir=str(tmp_path / f"f{k}"))
        rows, side = read_manifest(path)
        assert list(rows["utt_id"]) == list(frame["utt_id"])  # every row, in order
        roles = dict(zip(rows["utt_id"], rows["split"]))
        for utt, fold in zip(frame["utt_id"], frame["split"].astype(int)):
            assert roles[utt] == {k: "test", (k + 1) % 3: "valid"}.get(fold, "train")
        # No session in two roles: the validation fold is carved from the training folds by session.
        assert rows.groupby("session")["split"].nunique().max() == 1
        assert side["fold"] == k and side["counts"]["test"] == int((frame["split"] == str(k)).sum())
    with pytest.raises(UsageError, match="not k-fold"):
        crossval.fold_count(frame, {**sidecar, "split": "session"})


def test_summary_is_mean_and_sample_sd_over_runs():
    from tfsent.evaluation.crossval import summarize

    runs = [{"seed": s, "metrics": {"accuracy": a, "unweighted_accuracy": a, "macro_f1": f, "weighted_f1": f}}
            for s, a, f in ((0, 0.5, 0.4), (0, 0.7, 0.2), (1, 0.9, 0.6))]
    out = summarize(runs, is_classification=True)
    assert out["summary"]["accuracy"]["mean"] == pytest.approx(0.7)
    assert out["summary"]["accuracy"]["sd"] == pytest.approx(np.std([0.5, 0.7, 0.9], ddof=1))
    assert out["per_seed"]["0"]["macro_f1"] == pytest.approx(0.3) and out["per_seed"]["1"]["macro_f1"] == 0.6


def test_map_classes_counts_unknown_rows_and_refuses_when_nothing_maps():
    from tfsent.core.errors import UsageError
    from tfsent.tasks.runs import map_classes

    frame = pd.DataFrame({"utt_id": list("abcde"), "emotion": ["happy", "fear", "sad", "fear", "disgust"],
                          "split": ["test", "test", "train", "train", "test"],
                          **{f"target_{c}": [0.0] * 5 for c in ("happy", "sad", "fear", "disgust")}})
    sidecar = {"classes": ["happy", "sad", "fear", "disgust"], "corpus": "aihub"}
    kept, side, mapping = map_classes(frame, sidecar, ["neutral", "happy", "sad", "angry"], "m.csv")
    assert list(kept["utt_id"]) == ["a", "c"] and not any(c.startswith("target_") for c in kept)
    assert side["classes"] == ["neutral", "happy", "sad", "angry"]
    assert mapping["unmapped_rows"] == 3
    assert mapping["unmapped_by_split"] == {"test": {"disgust": 1, "fear": 1}, "train": {"fear": 1}}
    with pytest.raises(UsageError, match="nothing to score"):
        map_classes(frame[frame["emotion"] == "fear"], sidecar, ["neutral", "happy"], "m.csv")


def _fake_crossval(path, utt_ids, macro_f1):
    os.makedirs(path)
    results = {"protocol": {"model": "m", "corpus": "kemdy20", "split": "kfold_session", "label_rule": "total",
                            "classes": ["a", "b"], "folds": 3, "folds_run": [0, 1, 2], "seeds": [0, 1],
                            "git_commit": "abc"},
               "summary": {"accuracy": {"mean": 0.5, "sd": 0.1}, "macro_f1": {"mean": macro_f1, "sd": 0.05}}}
    with open(os.path.join(path, "results.json"), "w") as f:
        json.dump(results, f)
    pd.DataFrame({"utt_id": utt_ids}).to_csv(os.path.join(path, "oof_predictions.csv"), index=False)


def test_report_ranks_within_a_test_set_and_says_when_there_are_several(tmp_path):
    from tfsent.evaluation import report

    _fake_crossval(tmp_path / "a", ["u1", "u2"], 0.3)
    _fake_crossval(tmp_path / "b", ["u2", "u1"], 0.6)
    same = [report.load_entry(str(tmp_path / n)) for n in "ab"]
    table = report.markdown_table(same)
    assert "Not one ranking" not in table
    assert table.index(f"| 1 | {tmp_path / 'b'} |") < table.index(f"| 2 | {tmp_path / 'a'} |")
    assert "0.6000 ± 0.0500" in table and "2 seeds" in table
    _fake_crossval(tmp_path / "c", ["u1", "u3"], 0.9)
    mixed = report.markdown_table(same + [report.load_entry(str(tmp_path / "c"))])
    assert "Not one ranking" in mixed and "| B1 |" in mixed and "| A1 |" in mixed


def test_named_protocols_set_the_folds(tiny_corpus, tmp_path):
    out = tmp_path / "p"
    run_cli("prepare", "--format=kemdy20", f"--data_dir={tiny_corpus['corpus']}", f"--out={out}",
            "--classes=4", "--tie_policy=first", "--protocol=kemdy20_5fold")
    side = _json(out / "manifest.json")
    assert side["split"] == "kfold_session" and side["folds"] == 5 and side["protocol"] == "kemdy20_5fold"
    sessions = [s for k in sorted(side["split_info"]["fold_sessions"], key=int)
                for s in side["split_info"]["fold_sessions"][k]]
    assert sessions == sorted(sessions)  # consecutive session numbers per fold: no seed needed
    bad = run_cli("prepare", "--format=kemdy20", f"--data_dir={tiny_corpus['corpus']}", f"--out={tmp_path / 'q'}",
                  "--protocol=kemdy20_5fold", "--folds=3", check=False)
    assert bad.returncode == 2 and "contradicts --protocol=kemdy20_5fold" in bad.stderr


def test_kfold_age_gender_keeps_groups_whole_and_balanced():
    from tfsent.corpus.splits import assign_splits, fold_roles

    sizes = {"20_male": 9, "30_male": 7, "20_female": 6, "40_female": 5, "50_male": 3, "60_female": 2}
    age, gender = zip(*(g.split("_") for g, n in sizes.items() for _ in range(n)))
    df = pd.DataFrame({"utt_id": [str(i) for i in range(len(age))], "age": age, "gender": gender,
                       "session": "", "speaker": "", "emotion": "happy"})
    split, info = assign_splits(df, "kfold_age_gender", seed=1, folds=3)
    assert (df.assign(g=df.age + df.gender, s=split).groupby("g")["s"].nunique() == 1).all()
    assert sorted(split.value_counts().tolist()) == [10, 11, 11]
    assert set(fold_roles(split, 0, 3)) == {"train", "valid", "test"}


# === Slow: end to end through bin/crossval ===


@pytest.fixture(scope="module")
def text_cv(kfold, tmp_path_factory):
    """An uninterrupted 3-fold cross-validation of a tiny text model (deterministic)."""
    out = str(tmp_path_factory.mktemp("cv") / "text")
    proc = crossval(*crossval_args(kfold, out, TEXT))
    return {"out": out, "stdout": proc.stdout, "kfold": kfold}


@pytest.mark.slow
def test_crossval_writes_results_and_one_oof_row_per_manifest_row(kfold, text_cv):
    from tfsent.corpus.manifest import read_manifest

    out = text_cv["out"]
    assert "fold 3/3 (fold_2)" in text_cv["stdout"] and "ETA" in text_cv["stdout"]
    results = _json(os.path.join(out, "results.json"))
    assert [r["run"] for r in results["runs"]] == ["fold_0", "fold_1", "fold_2"]
    f1 = [r["metrics"]["macro_f1"] for r in results["runs"]]
    assert results["summary"]["macro_f1"]["mean"] == pytest.approx(np.mean(f1))
    assert results["summary"]["macro_f1"]["sd"] == pytest.approx(np.std(f1, ddof=1))
    p = results["protocol"]
    assert (p["corpus"], p["split"], p["folds"], p["label_rule"]) == ("kemdy20", "kfold_session", 3, "total")
    assert p["classes"] == ["neutral", "happy", "sad", "angry"] and p["git_commit"] and p["tfsent_version"]
    frame, _ = read_manifest(kfold)
    oof = pd.read_csv(os.path.join(out, "oof_predictions.csv"), dtype={"utt_id": str})
    assert list(oof["utt_id"]) == list(frame["utt_id"]) and results["oof_rows_without_prediction"] == 0
    assert (oof["fold"].astype(str) == frame["split"]).all() and (oof["true"] == frame["emotion"]).all()
    probs = oof[[f"p_{c}" for c in p["classes"]]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    # The pooled confusion matrix counts every manifest row once.
    assert np.asarray(results["pooled_confusion_matrix"]).sum() == len(frame)
    for name in ("results.md", "confusion_matrix.png"):
        assert os.path.isfile(os.path.join(out, name))
    for k in range(3):  # each fold dir is a normal run dir, scored on its held-out fold
        m = _json(os.path.join(out, f"fold_{k}", "eval", "metrics.json"))
        assert m["num_examples"] == int((frame["split"] == str(k)).sum())


@pytest.mark.slow
def test_rerun_reuses_every_fold_and_a_changed_recipe_is_refused(kfold, text_cv):
    before = open(os.path.join(text_cv["out"], "results.json"), "rb").read()
    start = time.time()
    proc = crossval(*crossval_args(kfold, text_cv["out"], TEXT))
    assert "epoch 1/2" not in proc.stdout and "scored" not in proc.stdout  # nothing trained or scored again
    assert time.time() - start < 60
    assert open(os.path.join(text_cv["out"], "results.json"), "rb").read() == before
    changed = crossval(*crossval_args(kfold, text_cv["out"], TEXT, 3), check=False)
    assert changed.returncode == 2 and "different train_flags" in changed.stderr


@pytest.mark.slow
def test_sigkill_in_the_middle_of_a_fold_then_rerun_gives_the_same_results(kfold, text_cv, tmp_path):
    """Folds 0 and 2 finished (copied from the uninterrupted run); fold 1 is killed between its epochs
    (the bin/train child dies with bin/crossval), and the same command then resumes it."""
    out = str(tmp_path / "killed")
    os.makedirs(out)
    for name in ("fold_0", "fold_2", "crossval.json"):
        copy = shutil.copytree if os.path.isdir(os.path.join(text_cv["out"], name)) else shutil.copy
        copy(os.path.join(text_cv["out"], name), os.path.join(out, name))
    cmd = [sys.executable, "-m", "tfsent.cli.crossval", *crossval_args(kfold, out, TEXT)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            bufsize=1, env=env)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "epoch 1/2:" in line:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    proc.stdout.close()
    assert proc.returncode == -9, "".join(seen)[-3000:]
    assert "fold 2/3 (fold_1)" in "".join(seen)
    assert not os.path.exists(os.path.join(out, "results.json"))
    assert not os.path.exists(os.path.join(out, "fold_1", "model.keras"))
    resumed = crossval(*crossval_args(kfold, out, TEXT))
    assert "fold 2/3 (fold_1)" in resumed.stdout and "resuming from" in resumed.stdout
    for name in ("results.json", "oof_predictions.csv"):
        with open(os.path.join(out, name), "rb") as a, open(os.path.join(text_cv["out"], name), "rb") as b:
            assert a.read() == b.read(), name


@pytest.mark.slow
def test_s1_stacking_flagfile_stacks_three_keras_crossvals(kfold, text_cv, tmp_path):
    """The recipe stacks text, audio and fusion cross-validations; to keep the suite's cost down the
    three bases here are the text cross-validation and two copies (the ensemble reads any three alike;
    three real ones cost 6 more fold trainings: 537 s on the shared, loaded 2-core machine)."""
    bases = {"text": text_cv["out"]}
    for name in ("audio", "fusion"):
        bases[name] = str(tmp_path / name)
        shutil.copytree(text_cv["out"], bases[name])
    run = str(tmp_path / "stacking")
    fold_manifest = os.path.join(text_cv["out"], "manifests", "fold_0", "manifest.csv")
    run_cli("train", "--flagfile=configs/s1_stacking.flags", f"--manifest={fold_manifest}", f"--model_dir={run}",
            f"--model_kwargs=base_runs={bases['text']}:{bases['audio']}:{bases['fusion']}")
    proc = run_cli("evaluate", f"--model_dir={run}")
    m = _json(os.path.join(run, "eval", "metrics.json"))
    assert m["context"]["model"] == "stacking" and m["num_examples"] == m["num_examples_in_split"] > 0
    assert "macro_f1" in proc.stdout
    # Its test rows were scored from the bases' OOF rows, which the fold-0 models never trained on.
    oof = pd.read_csv(os.path.join(bases["text"], "oof_predictions.csv"))
    test_ids = set(pd.read_csv(os.path.join(run, "eval", "predictions.csv"))["utt_id"])
    assert set(oof.loc[oof["fold"] == 0, "utt_id"]) == test_ids


@pytest.mark.slow
def test_cross_corpus_scoring_maps_classes_by_name(text_cv, tmp_path):
    corpus, prepared = tmp_path / "aihub", tmp_path / "aihub_prepared"
    run_cli("make_demo_corpus", f"--out={corpus}", "--layout=aihub", "--seed=4", "--per_class=2", "--classes=7")
    run_cli("prepare", "--format=aihub", f"--data_dir={corpus}", f"--out={prepared}", "--classes=7",
            "--tie_policy=first", "--split=random_stratified", "--test_fraction=0.5")
    manifest = str(prepared / "manifest.csv")
    out = str(tmp_path / "eval")
    proc = run_cli("evaluate", f"--model_dir={text_cv['out']}/fold_0", f"--manifest={manifest}", f"--out_dir={out}")
    m = _json(os.path.join(out, "metrics.json"))
    frame = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    test = frame[frame["split"] == "test"]
    known = test["emotion"].isin(["neutral", "happy", "sad", "angry"])
    assert m["context"]["corpus"] == "aihub" and m["context"]["trained_on"] == "kemdy20"
    assert m["num_examples"] == int(known.sum()) and m["unmapped_rows"] == int((~known).sum()) > 0
    assert "trained on kemdy20, scored on aihub" in proc.stdout
    with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
        assert f"{int((~known).sum())} rows of the split have an emotion the model does not know" in f.read()
    # bin/crossval --eval_manifest scores every fold model on the other corpus (the folds are reused).
    cv = str(tmp_path / "cv")
    shutil.copytree(text_cv["out"], cv)
    proc = crossval(*crossval_args(text_cv["kfold"], cv, TEXT), f"--eval_manifest={manifest}")
    assert "epoch 1/2" not in proc.stdout and "on aihub:" in proc.stdout
    other = _json(os.path.join(cv, "results.json"))["eval_manifest"]
    assert [r["run"] for r in other["runs"]] == ["fold_0", "fold_1", "fold_2"]
    assert all(r["unmapped_rows"] == m["unmapped_rows"] for r in other["runs"])
    f1 = [r["metrics"]["macro_f1"] for r in other["runs"]]
    assert other["summary"]["macro_f1"]["mean"] == pytest.approx(np.mean(f1))


@pytest.mark.slow
def test_tfidf_svm_run_is_scored_and_ranked_with_a_crossval(tiny_corpus, text_cv, tmp_path):
    run = str(tmp_path / "svm")
    run_cli("train", "--model=tfidf_svm", f"--manifest={tiny_corpus['manifest']}", f"--model_dir={run}")
    run_cli("evaluate", f"--model_dir={run}")
    csv_path, png = str(tmp_path / "t.csv"), str(tmp_path / "t.png")
    proc = run_cli("report", text_cv["out"], run, f"--csv={csv_path}", f"--plot={png}")
    assert "Not one ranking" in proc.stdout  # a session split's test set is not the 3 folds
    assert f"| {run} | tfidf_svm | kemdy20 |" in proc.stdout and "3 of 3 folds × 1 seed" in proc.stdout
    table = pd.read_csv(csv_path)
    assert set(table["model"]) == {"text_cnn", "tfidf_svm"} and os.path.getsize(png) > 0
