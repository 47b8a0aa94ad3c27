"""tools/pipeline_table.py: BUILD.md's and README's bench/pipeline figures come from the benchmark's output."""

import pytest

# The lines bench/pipeline prints (bench/pipeline_bench.py), with two runs' numbers.
LOG = """machine: 2 CPUs (Test CPU), Linux 6
load average at start: 1.00 0.50 0.20
(a) seed-style librosa loop                  {a} clips/s      44.0 CPU ms/clip
(b) tfsent pipeline + augmentation          {b} clips/s       3.5 CPU ms/clip
(c) tfsent pipeline, no augmentation        560.0 clips/s       3.1 CPU ms/clip
(d) (b) from the decoded-audio cache       {d} clips/s       1.4 CPU ms/clip
(d) read through tf.data views of the stream (multi-replica strategies): 980.0 clips/s, 1.9 CPU ms/clip
(d) with a dataset built per epoch (before the epoch stream): 450.0 clips/s, 2.4 CPU ms/clip
(b) through a local tf.data service, 1 worker(s): 140.0 clips/s [load 1.35 1.44 1.05]
(b) through a local tf.data service, 2 worker(s): 150.0 clips/s [load 1.32 1.43 1.04]
memory  1x corpus, live (320 clips, pipeline (c), no augmentation): peak RSS 2065 MB (RSS before the epoch 856 MB, after 983 MB; 346.2 clips/s)
memory 10x corpus, live (3200 clips, pipeline (c), no augmentation): peak RSS 2066 MB (RSS before the epoch 859 MB, after 1036 MB; 719.5 clips/s)
load average at end: 1.50 0.60 0.30; total 100 s
pipeline_vs_librosa={ba} cpu_ratio=12.57 decode_ceiling_ratio=0.95 cached_vs_librosa={da} live_vs_cached=0.55 clips_per_s={b}
"""


@pytest.fixture(scope="module")
def tool(load_tool):
    return load_tool("pipeline_table")


def logs(tmp_path):
    paths = []
    for i, (a, b, d) in enumerate([(40.0, 520.0, 1300.0), (45.0, 430.0, 1250.0)]):
        path = tmp_path / f"run{i}.log"
        path.write_text(LOG.format(a=a, b=b, d=d, ba=f"{b / a:.2f}", da=f"{d / a:.2f}"), encoding="utf-8")
        paths.append(str(path))
    return paths


def test_tables_hold_the_printed_figures_and_judge_the_targets(tool, tmp_path, capsys):
    build, readme = tmp_path / "BUILD.md", tmp_path / "README.md"
    build.write_text("x\n<!-- pipeline-figures -->\nold\n<!-- /pipeline-figures -->\ny\n", encoding="utf-8")
    readme.write_text("<!-- pipeline-summary -->\nold\n<!-- /pipeline-summary -->\n", encoding="utf-8")
    assert tool.main([*logs(tmp_path), f"--build={build}", f"--readme={readme}"]) == 0
    text = build.read_text(encoding="utf-8")
    assert "old" not in text and text.startswith("x\n") and text.endswith("y\n")
    assert "| (b) tfsent pipeline + augmentation | 520.0 (3.5) | 430.0 (3.5) |" in text
    assert "| `pipeline_vs_librosa` ≥ 10: (b) / (a) clips/s | 13.00 | 9.56 | in 1 of 2 runs |" in text
    assert "| `cached_vs_librosa` ≥ 30: (d) / (a) clips/s | 32.50 | 27.78 | in 1 of 2 runs |" in text
    assert "| `cpu_ratio` ≥ 10: (a) / (b) CPU ms per clip | 12.57 | 12.57 | yes |" in text
    assert "| `live_vs_cached` ≥ 0.9: conv1d_mel training steps/s, live / from memory | 0.55 | 0.55 | **no** |" in text
    assert "| (d) read through the stream's tf.data views (multi-replica strategies) | 980.0 (1.9) | 980.0 (1.9) |" in text
    assert "| (d) with a dataset built per epoch (no epoch stream) | 450.0 (2.4) | 450.0 (2.4) |" in text
    assert "| 10× corpus, live | 859 / 1036 / 2066 | 859 / 1036 / 2066 |" in text
    assert "run 1 1.00 0.50 0.20 → 1.50 0.60 0.30" in text
    summary = readme.read_text(encoding="utf-8")
    assert "d/a 27.78–32.50 (target ≥ 30: met in 1 of 2 runs)" in summary
    assert "430–520 clips/s vs the seed-style librosa loop 40–45 clips/s" in summary


def test_an_unfinished_or_foreign_log_is_refused(tool, tmp_path, capsys):
    path = tmp_path / "cut.log"
    path.write_text(LOG.split("load average at end")[0].format(a=1, b=2, d=3), encoding="utf-8")
    assert tool.main([str(path)]) == 2
    assert "no machine-readable line" in capsys.readouterr().err
    other = tmp_path / "other.log"
    other.write_text("pipeline_vs_librosa=1\n", encoding="utf-8")
    assert tool.main([str(other)]) == 2
    assert "seed-style librosa loop" in capsys.readouterr().err


def test_the_labels_parsed_are_the_ones_the_benchmark_prints(tool):
    """A drift guard: the row labels and the line prefixes the tool looks for are in bench/pipeline_bench.py."""
    import os

    source = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench",
                               "pipeline_bench.py"), encoding="utf-8").read()
    for _, label in tool.ROWS:
        assert f'"{label}"' in source
    for prefix in ("(d) read through tf.data views", "(d) with a dataset built per epoch", "through a local tf.data service", "conv1d_mel training: live",
                   "peak RSS", "RSS before the epoch", "load average at", "pipeline_vs_librosa=", "machine: "):
        assert prefix in source, prefix
