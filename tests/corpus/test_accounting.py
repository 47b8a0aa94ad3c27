"""Issue 17, class 3 (lost rows) and 7 (paths outside the corpus), 8 (file modes): every annotation
and audio file under the corpus ends up read, rejected with a reason or listed as an orphan."""

import os
import shutil
import stat

from tfsent.corpus import layouts
from tfsent.corpus.manifest import write_manifest
from tfsent.corpus.prepare import PrepareOptions, prepare


def _prepare(root, out, **kw):
    return prepare(PrepareOptions(format="kemdy20", data_dir=root, out=str(out), progress=False, **kw))


def _file_rejects(result):
    return {(r.source_file, r.reason) for r in result.rejects if r.line == ""}


def test_empty_annotation_file_orphans_and_outside_symlinks_are_reported(kemdy20_corpus, tmp_path):
    root, _ = kemdy20_corpus
    before = _prepare(root, tmp_path / "out")
    assert not _file_rejects(before)  # the fixture accounts for every file already
    session = os.path.join(root, "wav", "Session05")
    layouts.write_wav(os.path.join(session, "Sess05_script01_User009F_001.wav"), frames=1600)
    open(os.path.join(root, "annotation", "Sess05_eval.csv"), "wb").close()  # 0 bytes
    shutil.copy(os.path.join(root, "annotation", "Sess01_eval.csv"), os.path.join(root, "annotation", "Sess01_eval (copy).csv"))
    outside = tmp_path / "outside.wav"
    layouts.write_wav(str(outside), frames=1600)
    os.symlink(outside, os.path.join(session, "link.wav"))
    after = _prepare(root, tmp_path / "out")
    assert _file_rejects(after) == {
        ("annotation/Sess05_eval.csv", "annotation_file_without_rows"),
        ("annotation/Sess01_eval (copy).csv", "annotation_file_not_read"),
        ("wav/Session05/Sess05_script01_User009F_001.wav", "orphan_wav"),
        ("wav/Session05/link.wav", "symlink_outside_data_dir"),
    }
    counts = after.sidecar["counts"]
    assert counts["files_without_row"] == 1 and counts["files_rejected"] == 3
    assert counts["rows_rejected"] == before.sidecar["counts"]["rows_rejected"]
    assert "files rejected 3" in after.summary


def test_outputs_follow_the_umask(kemdy20_corpus, tmp_path):
    root, _ = kemdy20_corpus
    result = _prepare(root, tmp_path / "out")
    old = os.umask(0o022)
    try:
        write_manifest(str(tmp_path / "out"), result.records, result.sidecar, result.rejects)
    finally:
        os.umask(old)
    for name in ("manifest.csv", "manifest.json", "rejects.csv"):
        assert stat.S_IMODE(os.stat(tmp_path / "out" / name).st_mode) == 0o644, name
