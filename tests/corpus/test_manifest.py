"""Contract 1: manifest columns, dtypes, sidecar, atomic writes."""

import json
import os

import pytest

from tfsent.corpus import manifest
from tfsent.corpus.prepare import PrepareOptions
from tfsent.corpus.prepare import run_prepare
from tfsent.corpus.common import PrepareError


def _run(root, out, **kw):
    opts = PrepareOptions(format="kemdy20", data_dir=root, out=str(out), progress=False, **kw)
    return run_prepare(opts, stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))


def test_manifest_contract_roundtrip(kemdy20_corpus, tmp_path):
    root, _ = kemdy20_corpus
    result = _run(root, tmp_path / "out", classes="5", tie_policy="soft")
    df, sidecar = manifest.read_manifest(str(tmp_path / "out"))
    assert list(df.columns) == [
        "utt_id", "audio_path", "text", "text_raw", "emotion", "valence", "arousal", "speaker",
        "session", "gender", "age", "source", "split", "weight",
        "votes_neutral", "votes_happy", "votes_sad", "votes_angry", "votes_surprise", "votes_fear",
        "votes_disgust",
        "target_neutral", "target_happy", "target_sad", "target_angry", "target_surprise"]
    assert len(df) == len(result.records)
    assert sidecar["classes"] == ["neutral", "happy", "sad", "angry", "surprise"]
    assert sidecar["data_dir"] == os.path.abspath(root)
    for key in ("corpus", "label_rule", "tie_policy", "split", "seed", "counts", "tfsent_version"):
        assert key in sidecar
    assert df["valence"].dtype == "float64" and df["valence"].isna().sum() == 1
    assert str(df["votes_happy"].dtype) == "Int64"
    assert df["text"].map(type).eq(str).all() and (df["age"] == "").all()
    targets = df[[c for c in df.columns if c.startswith("target_")]].to_numpy()
    assert abs(targets.sum(axis=1) - 1).max() < 1e-9
    assert set(df["emotion"]) <= set(sidecar["classes"])
    rejects = (tmp_path / "out" / "rejects.csv").read_text(encoding="utf-8").splitlines()
    assert rejects[0] == "source_file,line,utt_id,reason,value"
    assert len(rejects) - 1 == len(result.rejects)


def test_rerun_is_byte_identical(kemdy20_corpus, tmp_path):
    root, _ = kemdy20_corpus
    _run(root, tmp_path / "a")
    _run(root, tmp_path / "b")
    for name in ("manifest.csv", "rejects.csv", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    _run(root, tmp_path / "c", seed=1)
    assert (tmp_path / "a" / "manifest.csv").read_bytes() != (tmp_path / "c" / "manifest.csv").read_bytes()


def test_crash_while_writing_keeps_previous_outputs(kemdy20_corpus, tmp_path, monkeypatch):
    root, _ = kemdy20_corpus
    out = tmp_path / "out"
    _run(root, out)
    before = {p: (out / p).read_bytes() for p in os.listdir(out)}
    real_replace = os.replace

    def crash_on_manifest(src, dst):
        if dst.endswith("manifest.csv"):
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_manifest)
    with pytest.raises(PrepareError, match=r"--out=.*: cannot write there \(disk full\)"):  # one line, exit 2
        _run(root, out, classes="4")
    monkeypatch.undo()
    assert sorted(os.listdir(out)) == sorted(before)  # no temporary files left behind
    for name, data in before.items():
        assert (out / name).read_bytes() == data
    manifest.read_manifest(str(out))  # still a consistent pair


def test_read_manifest_refuses_mismatched_pair(kemdy20_corpus, tmp_path):
    root, _ = kemdy20_corpus
    _run(root, tmp_path / "a")
    _run(root, tmp_path / "b", classes="4")
    os.replace(tmp_path / "b" / "manifest.json", tmp_path / "a" / "manifest.json")
    with pytest.raises(ValueError, match="does not match"):
        manifest.read_manifest(str(tmp_path / "a" / "manifest.csv"))
    with pytest.raises(FileNotFoundError, match="bin/prepare"):
        manifest.read_manifest(str(tmp_path / "nowhere"))
    sidecar = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert sidecar["classes"] == ["neutral", "happy", "sad", "angry"]
