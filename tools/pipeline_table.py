"""BUILD.md's and README's `bench/pipeline` figures, from the benchmark's own output.

    bench/pipeline > run1.log; bench/pipeline > run2.log
    .venv/bin/python tools/pipeline_table.py run1.log run2.log [--build BUILD.md] [--readme README.md]

Prints the tables (one column per run): clips/s and CPU ms per clip of (a)-(d), the stream-view,
per-epoch-dataset and tf.data service lines, the machine-readable figures against their targets (tracker issue 15), peak
memory, the load averages and the machine. With `--build` / `--readme` it replaces the text between
`<!-- pipeline-figures -->` / `<!-- pipeline-summary -->` and their `<!-- /... -->` markers, so the
documents show exactly what the benchmark printed.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from demo_table import replace_block  # noqa: E402 -- tools/ is not a package

# (key, target, what the target is) in the order of the machine-readable line.
TARGETS = [
    ("pipeline_vs_librosa", 10.0, "(b) / (a) clips/s"),
    ("cpu_ratio", 10.0, "(a) / (b) CPU ms per clip"),
    ("decode_ceiling_ratio", 0.6, "(b) / (c) clips/s"),
    ("cached_vs_librosa", 30.0, "(d) / (a) clips/s"),
    ("live_vs_cached", 0.9, "conv1d_mel training steps/s, live / from memory"),
]
ROWS = [
    ("a", "(a) seed-style librosa loop"),
    ("b", "(b) tfsent pipeline + augmentation"),
    ("c", "(c) tfsent pipeline, no augmentation"),
    ("d", "(d) (b) from the decoded-audio cache"),
]


def parse(text: str) -> dict:
    """The figures of one `bench/pipeline` output."""
    run = {"rates": {}, "cpu": {}, "service": {}, "memory": {}}
    for key, label in ROWS:
        m = re.search(re.escape(label) + r"\s+([\d.]+) clips/s\s+([\d.]+) CPU ms/clip", text)
        if not m:
            raise ValueError(f"no {label!r} line: not a bench/pipeline output, or its format changed")
        run["rates"][key], run["cpu"][key] = float(m.group(1)), float(m.group(2))
    for key, pattern in (("d_views", r"\(d\) read through tf.data views"), ("d_per_epoch", r"\(d\) with a dataset built per epoch")):
        m = re.search(pattern + r"[^:]*: ([\d.]+) clips/s, ([\d.]+) CPU ms/clip", text)
        if m:
            run["rates"][key], run["cpu"][key] = float(m.group(1)), float(m.group(2))
    for m in re.finditer(r"local tf.data service, (\d) worker\(s\): ([\d.]+) clips/s", text):
        run["service"][int(m.group(1))] = float(m.group(2))
    for m in re.finditer(r"memory\s+(\d+)x corpus, (live|on-disk cache) .*?peak RSS (\d+) MB "
                         r"\(RSS before the epoch (\d+) MB, after (\d+) MB", text):
        run["memory"][(m.group(2), int(m.group(1)))] = tuple(int(m.group(i)) for i in (3, 4, 5))
    m = re.search(r"conv1d_mel training: live ([\d.]+) steps/s, cached ([\d.]+) steps/s", text)
    if m:
        run["steps"] = (float(m.group(1)), float(m.group(2)))
    for name in ("start", "end"):
        m = re.search(rf"load average at {name}: ([\d.]+ [\d.]+ [\d.]+)", text)
        run[f"load_{name}"] = m.group(1) if m else "?"
    m = re.search(r"^machine: (.*)$", text, re.M)
    run["machine"] = m.group(1) if m else "?"
    lines = [line for line in text.splitlines() if line.startswith("pipeline_vs_librosa=")]
    if not lines:
        raise ValueError("no machine-readable line (pipeline_vs_librosa=...): not a finished bench/pipeline output")
    run["line"] = lines[-1]
    run["figures"] = {k: float(v) for k, v in re.findall(r"(\w+)=([-\d.na]+)", lines[-1])}
    return run


def _cell(value, fmt="{:.1f}"):
    return "—" if value is None else fmt.format(value)


def figures_block(runs: list) -> str:
    """The BUILD.md block: machine, load, rates, figures vs targets, memory, the raw lines."""
    n = len(runs)
    head = "| | " + " | ".join(f"run {i + 1}" for i in range(n)) + " |"
    rule = "|---|" + "---:|" * n
    out = [f"Machine: {runs[0]['machine']}. Load average (1 / 5 / 15 min) at start → end: "
           + "; ".join(f"run {i + 1} {r['load_start']} → {r['load_end']}" for i, r in enumerate(runs)) + ".", ""]
    out += [head.replace("| |", "| clips/s (CPU ms per clip) |", 1), rule]
    labels = dict(ROWS, d_views="(d) read through the stream's tf.data views (multi-replica strategies)",
                  d_per_epoch="(d) with a dataset built per epoch (no epoch stream)")
    for key in ("a", "b", "c", "d", "d_views", "d_per_epoch"):
        cells = [f"{_cell(r['rates'].get(key))} ({_cell(r['cpu'].get(key))})" for r in runs]
        out.append(f"| {labels[key]} | " + " | ".join(cells) + " |")
    for workers in (1, 2):
        cells = [_cell(r["service"].get(workers)) for r in runs]
        out.append(f"| (b) through a local tf.data service, {workers} in-process worker(s) | " + " | ".join(cells) + " |")
    out += ["", head.replace("| |", "| figure (target) |", 1) + " met |", rule + "---|"]
    for key, target, what in TARGETS:
        values = [r["figures"].get(key) for r in runs]
        met = [v is not None and v >= target for v in values]
        verdict = "yes" if all(met) else ("**no**" if not any(met) else f"in {sum(met)} of {n} runs")
        out.append(f"| `{key}` ≥ {target:g}: {what} | " + " | ".join(_cell(v, "{:.2f}") for v in values)
                   + f" | {verdict} |")
    if any(r["memory"] for r in runs):
        out += ["", head.replace("| |", "| RSS, MB, before the epoch / after / peak (pipeline (c), one epoch) |", 1),
                rule]
        for store in ("live", "on-disk cache"):
            for repeat in (1, 10):
                cells = [(lambda m: "—" if m is None else f"{m[1]} / {m[2]} / {m[0]}")(r["memory"].get((store, repeat)))
                         for r in runs]
                out.append(f"| {repeat}× corpus, {store} | " + " | ".join(cells) + " |")
    out += ["", "```"] + [r["line"] for r in runs] + ["```"]
    return "\n".join(out)


def summary_line(runs: list) -> str:
    """README's one bullet: ranges over the runs, with the targets."""
    def span(key, fmt="{:.2f}"):
        values = sorted(r["figures"][key] for r in runs if key in r["figures"])
        return fmt.format(values[0]) if values[0] == values[-1] else f"{fmt.format(values[0])}–{fmt.format(values[-1])}"

    def rate(key):
        values = sorted(r["rates"][key] for r in runs if key in r["rates"])
        return f"{values[0]:.0f}–{values[-1]:.0f}" if len(values) > 1 else f"{values[0]:.0f}"

    def verdict(key, target):
        met = [r["figures"].get(key, -1) >= target for r in runs]
        return "met" if all(met) else ("**missed**" if not any(met) else f"met in {sum(met)} of {len(met)} runs")

    load = " and ".join(f"{r['load_start'].split()[0]} → {r['load_end'].split()[0]}" for r in runs)
    return (f"- `bench/pipeline` — (load average {load}) tf.data pipeline with seed-001 augmentation "
            f"{rate('b')} clips/s vs the seed-style librosa loop {rate('a')} clips/s: b/a {span('pipeline_vs_librosa')} "
            f"(target ≥ 10: {verdict('pipeline_vs_librosa', 10)}), `cpu_ratio` {span('cpu_ratio')} "
            f"({verdict('cpu_ratio', 10)}), b/c {span('decode_ceiling_ratio')} ({verdict('decode_ceiling_ratio', 0.6)}), "
            f"from the int16 decode cache {rate('d')} clips/s, d/a {span('cached_vs_librosa')} "
            f"(target ≥ 30: {verdict('cached_vs_librosa', 30)}), live vs cached training {span('live_vs_cached')} "
            f"(target ≥ 0.9: {verdict('live_vs_cached', 0.9)}); BUILD.md has the tables.")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("logs", nargs="+", help="bench/pipeline outputs, one per run")
    parser.add_argument("--build", help="BUILD.md to write the figures into (between the markers)")
    parser.add_argument("--readme", help="README.md to write the summary bullet into (between the markers)")
    args = parser.parse_args(argv)
    try:
        runs = [parse(open(path, encoding="utf-8").read()) for path in args.logs]
    except (OSError, ValueError) as e:
        print(f"tools/pipeline_table.py: error: {e}", file=sys.stderr)
        return 2
    block, line = figures_block(runs), summary_line(runs)
    print(block + "\n\n" + line)
    for path, marker, text in ((args.build, "pipeline-figures", block), (args.readme, "pipeline-summary", line)):
        if path:
            with open(path, encoding="utf-8") as f:
                content = f.read()
            with open(path, "w", encoding="utf-8") as f:
                f.write(replace_block(content, marker, text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
