"""Prints README's robustness table from `bin/evaluate --robustness` outputs of several runs side by side,
and optionally writes it into README.

    .venv/bin/python tools/robustness_table.py "demo.flags=demo_out/runs/demo_fusion/eval/robustness.json" \\
        "demo_robust.flags=demo_out/runs/demo_fusion_robust/eval/robustness.json" [--readme=README.md]

One row per condition: each run's headline metric (macro-F1 for classifiers) and its change from that
run's clean score; then per `--by` column each run's clean worst group, best group and gap. With
`--readme`, the table replaces the text between `<!-- robustness-table -->` and
`<!-- /robustness-table -->`, so README shows exactly what the code printed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys

from tfsent.core.files import write_text


def _fmt(v, signed=False):
    return "n/a" if v is None else (f"{v:+.3f}" if signed else f"{v:.3f}")


def table(results: dict) -> str:
    """Markdown for `{label: robustness.json dict}`."""
    labels = list(results)
    metric = results[labels[0]]["metric"]
    names = list(dict.fromkeys(n for r in results.values() for n in r["conditions"]))
    lines = ["| condition | " + " | ".join(f"{label}: {metric} (Δ)" for label in labels) + " |",
             "|---|" + "---|" * len(labels)]
    for name in names:
        cells = []
        for label in labels:
            c = results[label]["conditions"].get(name)
            cells.append("n/a" if c is None else
                         f"{_fmt(c.get(metric))}" + ("" if name == "clean" else f" ({_fmt(c.get('delta_' + metric), True)})"))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    columns = list(dict.fromkeys(col for r in results.values() for col in r.get("by", {})))
    if columns:
        lines += ["", "| clean, by | " + " | ".join(f"{label}: worst / best ({metric}), gap" for label in labels) + " |",
                  "|---|" + "---|" * len(labels)]
        for col in columns:
            cells = []
            for label in labels:
                b = results[label].get("by", {}).get(col)
                if b is None:
                    cells.append("n/a")
                    continue
                c = b["conditions"]["clean"]
                pg = c["per_group"]
                cells.append(f"{c['worst']} {_fmt(pg[c['worst']].get(metric))} / {c['best']} "
                             f"{_fmt(pg[c['best']].get(metric))}, {_fmt(c['gap'])} "
                             f"({len(b['sizes'])} groups, {len(b['small_groups'])} under {b['min_group_size']} rows)")
            lines.append(f"| {col} | " + " | ".join(cells) + " |")
    first = results[labels[0]]
    lines += ["", f"{first['split']} split, {first['num_examples']} rows, corruption seed {first['seed']}; "
              "Δ = condition − the same run's clean score."]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="LABEL=path/to/robustness.json")
    parser.add_argument("--readme", help="README to write the table into (between the markers)")
    args = parser.parse_args(argv)
    results = {}
    for item in args.runs:
        label, _, path = item.partition("=")
        if not path:
            parser.error(f"{item!r}: expected LABEL=path/to/robustness.json")
        with open(path, encoding="utf-8") as f:
            results[label] = json.load(f)
    text = table(results)
    print(text)
    if args.readme:
        with open(args.readme, encoding="utf-8") as f:
            readme = f.read()
        pattern = re.compile(r"(<!-- robustness-table -->\n)(?:.*?\n)?(<!-- /robustness-table -->)", re.S)
        if not pattern.search(readme):
            print(f"{args.readme}: no <!-- robustness-table --> markers", file=sys.stderr)
            return 2
        write_text(args.readme, pattern.sub(lambda m: m.group(1) + text + "\n" + m.group(2), readme))
    return 0


if __name__ == "__main__":
    sys.exit(main())
