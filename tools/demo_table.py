"""Prints README's demo tables from what `bin/demo` wrote, and optionally writes them into README.

One demo output folder (`bin/demo`'s `demo_out/`: `corpus/demo_truth.jsonl`, `runs/<model>/eval/`):

    .venv/bin/python tools/demo_table.py demo_out [--readme=README.md]

Several, one per corpus seed (`bench/demo_seeds` makes them): mean ± sd over the seeds:

    .venv/bin/python tools/demo_table.py --seeds demo_seeds/seed_7 demo_seeds/seed_8 demo_seeds/seed_9

Besides WA / UA / macro-F1, each model's accuracy split by the demo corpus's condition of the test
utterances (`demo_truth.jsonl`: the emotion is carried by the voice only, the words only, or both),
all read from `eval/metrics.json` (`per_condition`, written by `bin/evaluate`). With `--readme`, the
table replaces the text between `<!-- demo-table -->` / `<!-- demo-seeds -->` and their
`<!-- /... -->` markers, so README shows exactly what the code printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys

from tfsent.core.files import write_text

MODELS = (("demo_fusion", "audio + text"), ("conv1d_mel", "audio"), ("text_cnn", "text"))
CONDITIONS = (("audio_only", "voice only"), ("text_only", "words only"), ("both", "both"))


def read_demo(out_dir, runs):
    """`{run: figures}` for the runs of one demo folder (each `runs/<run>/eval/` must exist)."""
    result = {}
    for run in runs:
        run_dir = os.path.join(out_dir, "runs", run)
        with open(os.path.join(run_dir, "eval", "metrics.json"), encoding="utf-8") as f:
            metrics = json.load(f)
        if not metrics.get("per_condition"):
            raise SystemExit(f"tools/demo_table.py: error: {run_dir}/eval/metrics.json has no per_condition "
                             "(a demo corpus run evaluated by an older bin/evaluate?): re-run bin/evaluate")
        figures = {k: metrics[k] for k in ("accuracy", "unweighted_accuracy", "macro_f1")}
        figures["num_examples"] = metrics["num_examples"]
        for cond, _ in CONDITIONS:
            accuracy = metrics["per_condition"]["accuracy"][cond]
            figures[cond] = float("nan") if accuracy is None else accuracy
            figures[f"{cond}_n"] = metrics["per_condition"]["counts"][cond]
        result[run] = figures
    return result


def _header(first):
    names = " | ".join(f"acc. {label}" for _, label in CONDITIONS)
    return [f"| {first} | modality | WA | UA | macro-F1 | {names} |",
            "|---|---|---|---|---|---|---|---|"]


def single_table(figures, runs):
    """Markdown: one row per model, the figures of one demo run."""
    lines = _header("model")
    for run, modality in runs:
        f = figures[run]
        conds = " | ".join(f"{f[c]:.2f} ({f[f'{c}_n']})" for c, _ in CONDITIONS)
        lines.append(f"| `{run}` | {modality} | {f['accuracy']:.3f} | {f['unweighted_accuracy']:.3f} | "
                     f"{f['macro_f1']:.3f} | {conds} |")
    return "\n".join(lines)


def _mean_sd(values):
    if any(math.isnan(v) for v in values):  # a condition with no test utterance in some seed
        return "n/a"
    if len(values) < 2:
        return f"{values[0]:.3f}"
    return f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}"


def seeds_table(per_seed, runs):
    """Markdown: mean ± sd (sample sd over the seeds) per model, then macro-F1 seed by seed."""
    lines = _header("model (mean ± sd)")
    for run, modality in runs:
        cells = [_mean_sd([fig[run][k] for fig in per_seed.values()])
                 for k in ("accuracy", "unweighted_accuracy", "macro_f1", *(c for c, _ in CONDITIONS))]
        lines.append(f"| `{run}` | {modality} | " + " | ".join(cells) + " |")
    lines += ["", "| corpus seed | test utterances (voice only / words only / both) | "
              + " | ".join(f"`{run}` macro-F1" for run, _ in runs)
              + " | fusion − best single | fusion acc. voice only / words only |",
              "|---|---|" + "---|" * (len(runs) + 2)]
    for seed, fig in per_seed.items():
        first = fig[runs[0][0]]
        sizes = " / ".join(str(first[f"{c}_n"]) for c, _ in CONDITIONS)
        f1 = [fig[run]["macro_f1"] for run, _ in runs]
        lines.append(f"| {seed} | {first['num_examples']} ({sizes}) | "
                     + " | ".join(f"{v:.3f}" for v in f1) + f" | {f1[0] - max(f1[1:]):+.3f} | "
                     f"{fig[runs[0][0]]['audio_only']:.2f} / {fig[runs[0][0]]['text_only']:.2f} |")
    return "\n".join(lines)


def meets_bar(fig, fusion_run, singles):
    """Issue 12's bar on one seed: fusion macro-F1 ≥ the better single model's + 0.05, accuracy ≥ 0.5
    where only the voice and ≥ 0.8 where only the words carry the emotion."""
    f = fig[fusion_run]
    margin = f["macro_f1"] - max(fig[run]["macro_f1"] for run in singles)
    return margin >= 0.05 - 1e-9 and f["audio_only"] >= 0.5 and f["text_only"] >= 0.8, margin


def variants_table(per_seed, variants, singles):
    """Markdown: one row per fusion variant (`{label: (run, flags)}`), mean ± sd over the seeds, the
    smallest margin over the better single-modality model and the seeds that meet issue 12's bar."""
    lines = ["| fusion variant | flags on top of `configs/demo.flags` | macro-F1 | acc. voice only | "
             "acc. words only | min fusion − best single | seeds meeting the bar |",
             "|---|---|---|---|---|---|---|"]
    for label, (run, flags) in variants.items():
        cells = [_mean_sd([fig[run][k] for fig in per_seed.values()])
                 for k in ("macro_f1", "audio_only", "text_only")]
        checks = {seed: meets_bar(fig, run, singles) for seed, fig in per_seed.items()}
        passed = [seed for seed, (ok, _) in checks.items() if ok]
        lines.append(f"| {label} | {flags or '(none)'} | " + " | ".join(cells)
                     + f" | {min(m for _, m in checks.values()):+.3f} | {len(passed)} of {len(checks)}"
                     + (f" ({', '.join(passed)})" if passed and len(passed) < len(checks) else "") + " |")
    return "\n".join(lines)


def replace_block(text, marker, table):
    """`text` with the lines between `<!-- marker -->` and `<!-- /marker -->` replaced by `table`."""
    pattern = re.compile(rf"(<!-- {marker} -->\n).*?(<!-- /{marker} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"tools/demo_table.py: error: no <!-- {marker} --> ... <!-- /{marker} --> block")
    return pattern.sub(lambda m: m.group(1) + table + "\n" + m.group(2), text, count=1)


def _seed_name(path):
    match = re.search(r"(\d+)/*$", path)
    return match.group(1) if match else os.path.basename(path.rstrip("/"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dirs", nargs="+", help="bin/demo output folder(s)")
    parser.add_argument("--seeds", action="store_true", help="the folders are one per corpus seed: mean ± sd")
    parser.add_argument("--fusion_run", default="demo_fusion",
                        help="run folder (under runs/) of the fusion model, for comparing variants")
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL=RUN:FLAGS",
                        help="with --seeds: compare fusion variants (run folder under runs/, the flags it "
                        "was trained with on top of configs/demo.flags); repeatable")
    parser.add_argument("--readme", help="write the table into this README's marked block")
    args = parser.parse_args(argv)
    runs = ((args.fusion_run, MODELS[0][1]),) + MODELS[1:]
    names = [run for run, _ in runs]
    if args.variant:
        if not args.seeds:
            parser.error("--variant needs --seeds")
        variants = {}
        for item in args.variant:
            label, _, rest = item.partition("=")
            run, _, flags = rest.partition(":")
            if not label or not run:
                parser.error(f"--variant {item!r}: expected LABEL=RUN:FLAGS")
            variants[label] = (run, flags)
        singles = [run for run, _ in MODELS[1:]]
        per_seed = {_seed_name(d): read_demo(d, singles + [run for run, _ in variants.values()])
                    for d in args.out_dirs}
        table = variants_table(per_seed, variants, singles)
        marker = "fusion-variants"
    elif args.seeds:
        table = seeds_table({_seed_name(d): read_demo(d, names) for d in args.out_dirs}, runs)
        marker = "demo-seeds"
    else:
        if len(args.out_dirs) != 1:
            parser.error("one folder, or --seeds")
        table = single_table(read_demo(args.out_dirs[0], names), runs)
        marker = "demo-table"
    print(table)
    if args.readme:
        with open(args.readme, encoding="utf-8") as f:
            text = f.read()
        new = replace_block(text, marker, table)
        if new != text:
            write_text(args.readme, new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
