"""`bin/prepare` as a subprocess: error paths, strict mode, warnings, summary."""

import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PREPARE = os.path.join(ROOT, "bin", "prepare")


def _prepare(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([PREPARE, *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("args, needle", [
    (["--format=kemdy20", "--out=OUT"], "--data_dir is required"),
    (["--format=timit", "--data_dir=DATA", "--out=OUT"], "--format=timit"),
    (["--format=kemdy20", "--data_dir=DATA", "--out=OUT"], "no annotation/SessNN_eval.csv"),
    (["--format=kemdy20", "--data_dir=DATA/nope", "--out=OUT"], "is not a directory"),
    (["--format=kemdy20", "--data_dir=DATA", "--out=DATA/out"], "inside --data_dir"),
    (["--format=aihub", "--data_dir=DATA", "--out=OUT", "--split=session"], "no speaker or session id"),
])
def test_error_paths_one_line_nothing_written(tmp_path, args, needle):
    data = tmp_path / "data"
    data.mkdir()
    out = tmp_path / "out"
    args = [a.replace("DATA", str(data)).replace("OUT", str(out)) for a in args]
    proc = _prepare(*args)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("bin/prepare: error:")
    assert not out.exists() and not (data / "out").exists()


def test_empty_annotation_is_an_error_and_keeps_previous_outputs(kemdy20_corpus, tmp_path):
    root, _ = kemdy20_corpus
    out = tmp_path / "out"
    assert _prepare("--format=kemdy20", f"--data_dir={root}", f"--out={out}").returncode == 0
    before = {p: (out / p).read_bytes() for p in os.listdir(out)}
    empty = tmp_path / "emptycorpus" / "annotation"
    empty.mkdir(parents=True)
    (empty / "Sess01_eval.csv").write_text("Numb,Wav,,Segment ID,Total Evaluation\n")
    proc = _prepare("--format=kemdy20", f"--data_dir={empty.parent}", f"--out={out}")
    assert proc.returncode != 0 and "empty corpus" in proc.stderr
    assert {p: (out / p).read_bytes() for p in os.listdir(out)} == before


def test_summary_strict_and_warnings(kemdy20_corpus, tmp_path):
    root, _ = kemdy20_corpus
    out = tmp_path / "out"
    proc = _prepare("--format=kemdy20", f"--data_dir={root}", f"--out={out}", "--strict",
                    "--split=random_stratified")
    assert proc.returncode == 1
    assert "--strict: 10 row(s) rejected" in proc.stderr
    assert "WARNING: random_stratified split" in proc.stderr
    assert "rows read       19" in proc.stdout and "kept             9" in proc.stdout
    assert "label_tie" in proc.stdout and "per-class counts per split" in proc.stdout
    assert (out / "rejects.csv").exists()  # written so the rejects can be read
