"""Robustness and fairness: a run scored under controlled corruptions, per group of speakers.

`bin/evaluate --robustness [--by=gender,speaker,age]` scores the evaluation split once clean and once
per condition, each at a fixed seed (the same seed gives the same corrupted inputs, and the same JSON):

| family | conditions |
|---|---|
| white noise, babble | SNR 20 / 10 / 0 dB (babble: sums of 4 utterances of another split) |
| telephone | 8 kHz, 300-3400 Hz, μ-law 8-bit, back to 16 kHz |
| reverberation | simulated rooms (pyroomacoustics), RT60 0.3 / 0.8 s |
| level | gain −20 dB; hard clipping at −12 dB of the peak |
| packet loss | 10 % of the 20 ms packets dropped |
| transcript | Hangul jamo errors at CER 10 / 30 % (measured with jiwer), another row's transcript, empty |
| modality | audio only / text only: the other modality removed as the exported model treats a missing one |

Each condition has the clean run's metrics, `delta_<metric>` (condition − clean) and the share of rows
whose predicted class stays the clean one. A condition that does not apply (text conditions for an
audio model, ...) is listed under `skipped` with the reason. The corruptions are TF ops in the input
pipeline (`tfsent.data.corruptions`), on the waveform after the centre crop and before the features.

`--by=COLUMNS` breaks every condition's metrics down per value of each manifest column (`age` in
decades), with group sizes, the worst and best group by the headline metric (macro-F1; CCC for
regressors) among groups of at least `min_group_size` rows, and the best−worst gap. Smaller groups are
kept and flagged `small`.

Writes `robustness.json`, `robustness.png` (metric vs severity) and a section of `report.md`.

Example:

```python
result = evaluate_robustness("runs/demo", split="test", by=("gender", "speaker"))
result["conditions"]["noise_snr0"]["delta_macro_f1"], result["by"]["gender"]["conditions"]["clean"]["gap"]
```
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os

import numpy as np
import tensorflow as tf

from tfsent.audio import corrupt as audio_corrupt
from tfsent.audio.augment import example_seed
from tfsent.core import files
from tfsent.core.errors import UsageError
from tfsent.data.corruptions import Corruption, corpus_clips, mismatched_text
from tfsent.evaluation import ablation as ablation_lib
from tfsent.metrics.plots import figure_png
from tfsent.tasks import load_run
from tfsent.text import corrupt as text_corrupt

JSON_NAME, PNG_NAME = "robustness.json", "robustness.png"
REPORT_MARKER = "<!-- robustness -->"
CLASSIFICATION_KEYS = ("accuracy", "unweighted_accuracy", "macro_f1", "weighted_f1")
REGRESSION_KEYS = ("ccc", "pearson_r", "rmse", "mae")
MIN_GROUP_SIZE = 10
BABBLE_CLIPS, BABBLE_BANK, BABBLE_VOICES, IRS_PER_RT60 = 16, 8, 4, 2


@dataclasses.dataclass
class Condition:
    """One robustness condition.

    Args:
        name: key in `robustness.json`.
        family: what it varies (`white noise`, `babble`, `reverberation`, ...); the PNG draws each
            family with several severities as a line.
        needs: `"audio"`, `"text"` or `"both"` (ablations).
        severity: the number on the PNG's x axis (SNR dB, RT60 s, CER %), or None.
        unit: the severity's unit.
        description: one line for the report.
        corruption: `fn(banks) -> tfsent.data.corruptions.Corruption`, or None for an ablation.
        remove_modality: the modality an ablation removes.

    Example:

    ```python
    Condition("gain_-20db", "level", "audio", description="gain -20 dB",
              corruption=lambda banks: Corruption("gain", audio=lambda x, s: corrupt.gain(x, -20.0)))
    ```
    """

    name: str
    family: str
    needs: str
    severity: float | None = None
    unit: str = ""
    description: str = ""
    corruption: object = None
    remove_modality: str | None = None


def conditions(sample_rate=16000) -> list:
    """Every condition, in report order."""
    out = []
    for snr in (20, 10, 0):
        out.append(Condition(f"noise_snr{snr}", "white noise", "audio", snr, "dB SNR", f"white noise at {snr} dB SNR",
                             _audio(f"noise_snr{snr}", lambda x, s, snr=snr: audio_corrupt.white_noise(x, s, snr))))
    for snr in (20, 10, 0):
        out.append(Condition(f"babble_snr{snr}", "babble", "audio", snr, "dB SNR", f"babble (4 voices) at {snr} dB SNR",
                             lambda banks, snr=snr: Corruption(f"babble_snr{snr}", seed=snr + 2, audio=lambda x, s: (
                                 audio_corrupt.babble(x, s, banks["babble"], snr)))))
    out.append(Condition("telephone", "telephone", "audio", None, "", "8 kHz, 300-3400 Hz band, mu-law 8-bit",
                         _audio("telephone", lambda x, s: audio_corrupt.telephone(x, sample_rate))))
    for rt60 in (0.3, 0.8):
        out.append(Condition(f"reverb_rt{rt60}", "reverberation", "audio", rt60, "s RT60",
                             f"room reverberation, RT60 {rt60} s",
                             lambda banks, rt60=rt60: Corruption(f"reverb_rt{rt60}", seed=int(rt60 * 10) + 3, audio=(
                                 lambda x, s: audio_corrupt.reverb(x, s, banks["irs"][rt60])))))
    out += [
        Condition("gain_-20db", "level", "audio", None, "", "gain -20 dB",
                  _audio("gain_-20db", lambda x, s: audio_corrupt.gain(x, -20.0))),
        Condition("clipping_-12db", "level", "audio", None, "", "hard clipping at -12 dB of the peak",
                  _audio("clipping_-12db", lambda x, s: audio_corrupt.clipping(x, -12.0))),
        Condition("packet_loss_10pct", "packet loss", "audio", None, "", "10 % of 20 ms packets dropped",
                  _audio("packet_loss_10pct", lambda x, s: audio_corrupt.packet_loss(x, s, 0.1, sample_rate))),
    ]
    for cer in (10, 30):
        out.append(Condition(f"text_cer{cer}", "transcript errors", "text", cer, "% CER",
                             f"Hangul jamo errors at {cer} % CER",
                             lambda banks, cer=cer: Corruption(f"text_cer{cer}", seed=cer + 5, text=(
                                 lambda t, s, i: text_corrupt.corrupt_hangul(t, s, cer / 100.0)))))
    out += [
        Condition("text_mismatch", "transcript", "text", None, "", "the transcript of another row",
                  lambda banks: Corruption("text_mismatch", text=banks["mismatch"])),
        Condition("text_empty", "transcript", "text", None, "", "empty transcript (tokens of \"\")",
                  lambda banks: Corruption("text_empty", text=lambda t, s, i: tf.constant(""))),
        Condition("audio_only", "modality", "both", None, "", "text removed (as a missing modality)",
                  remove_modality="text"),
        Condition("text_only", "modality", "both", None, "", "audio removed (as a missing modality)",
                  remove_modality="audio"),
    ]
    return out


def _audio(name, fn):
    seed = sum(map(ord, name))
    return lambda banks: Corruption(name, audio=fn, seed=seed)


def _skip_reason(condition, task) -> str | None:
    takes_audio, takes_text = task.pipeline().config.needs_audio, task.pipeline().config.needs_text
    if condition.needs == "audio" and not takes_audio:
        return "the model takes no audio"
    if condition.needs == "text" and not takes_text:
        return "the model takes no text"
    if condition.needs == "both" and not ablation_lib.takes_both_modalities(task):
        return "the model does not take both audio and text"
    return None


@functools.lru_cache(maxsize=8)
def _impulse_responses(rt60, count, seed, sample_rate):
    return audio_corrupt.room_impulse_responses(rt60, count, seed, sample_rate)


def _banks(task, split, seed, wanted, log):
    """What the applicable conditions need: babble (another split's utterances), impulse responses,
    the split's transcripts for the mismatch."""
    banks = {}
    cfg = task.pipeline().config
    rate = cfg.feature.sample_rate
    if any(c.name.startswith("babble") for c in wanted):
        splits = [s for s in task.frame["split"].astype(str).unique() if s != str(split)]
        source = "train" if "train" in splits else (sorted(splits) or [str(split)])[0]
        clips = corpus_clips(task.frame, task.sidecar, source, BABBLE_CLIPS, seed, rate, cfg.max_samples)
        if len(clips) >= BABBLE_VOICES:
            banks["babble"] = audio_corrupt.babble_bank(clips, seed, count=BABBLE_BANK, voices=BABBLE_VOICES,
                                                        length=cfg.max_samples)
        banks["babble_source"] = source
    if any(c.family == "reverberation" for c in wanted):
        if log:
            log("simulating room impulse responses (pyroomacoustics)")
        banks["irs"] = {c.severity: _impulse_responses(c.severity, IRS_PER_RT60, seed, rate)
                        for c in wanted if c.family == "reverberation"}
    banks["mismatch"] = mismatched_text(task.split_frame(split)["text"].fillna("").astype(str), seed)
    return banks


def evaluate_robustness(model_dir, split="test", manifest=None, batch_size=32, out_dir=None, by=(), seed=0,
                        min_group_size=MIN_GROUP_SIZE, robustness=True, log=None) -> dict:
    """Scores the run clean and under every applicable condition (only clean with
    `robustness=False`: the `by` breakdown alone); writes `out_dir` (default the split's eval dir).
    Returns the `robustness.json` dict."""
    # Decoded once into memory: every condition reads the same clips.
    loaded = load_run(model_dir, manifest, batch_size=batch_size, cache_audio=True)
    task = loaded.task
    if loaded.kind != "keras":
        raise UsageError(f"--robustness / --by need a Keras run; {task.config.model!r} is scikit-learn")
    rows = task.split_frame(split)
    check_columns(rows, by)
    predict_fn = loaded.predict_fn()
    wanted = [c for c in conditions(task.config.feature.sample_rate) if robustness]
    skipped = {c.name: _skip_reason(c, task) for c in wanted if _skip_reason(c, task)}
    wanted = [c for c in wanted if c.name not in skipped]
    banks = _banks(task, split, seed, wanted, log)
    if "babble" not in banks:
        skipped.update({c.name: f"fewer than {BABBLE_VOICES} readable utterances in the {banks.get('babble_source')} "
                                "split to mix babble from" for c in wanted if c.family == "babble"})
        wanted = [c for c in wanted if c.name not in skipped]
    clean = task.predict(predict_fn, split)
    predictions = {"clean": clean}
    for condition in wanted:
        if log:
            log(f"robustness: {condition.name}")
        corruption = condition.corruption(banks) if condition.corruption else None
        if corruption is not None:  # --robustness_seed draws other noise, not only other banks
            corruption.seed = (corruption.seed * 1000003 + int(seed)) % (2**31 - 1)
        predictions[condition.name] = task.predict(predict_fn, split, corruption=corruption,
                                                   remove_modality=condition.remove_modality)
        if corruption is not None and corruption.text is not None and condition.severity is not None:
            banks.setdefault("measured_cer", {})[condition.name] = _measured_cer(task, rows, corruption)
    result = _result(task, split, seed, wanted, skipped, predictions, banks)
    result["by"] = {column: group_breakdown(task, rows, predictions, column, min_group_size) for column in by}
    out_dir = out_dir or loaded.run.eval_dir(split)
    os.makedirs(out_dir, exist_ok=True)
    files.write_json(os.path.join(out_dir, JSON_NAME), result)
    if robustness:
        files.write_bytes(os.path.join(out_dir, PNG_NAME), severity_png(result))
    _append_report(os.path.join(out_dir, "report.md"), markdown_section(result))
    return result


def check_columns(manifest_or_rows, by):
    """UsageError unless every `by` column is in the manifest (a path or a DataFrame)."""
    columns = getattr(manifest_or_rows, "columns", None)
    if columns is None:
        import pandas as pd

        columns = pd.read_csv(manifest_or_rows, nrows=0).columns
    missing = [c for c in by if c not in columns]
    if missing:
        raise UsageError(f"--by: no column {', '.join(missing)} in the manifest (columns: {', '.join(columns)})")


def _measured_cer(task, rows, corruption):
    """The jiwer CER of the transcripts exactly as the pipeline corrupted them (same per-row seeds)."""
    seed0 = task.pipeline().config.seed
    texts = rows["text"].fillna("").astype(str).tolist()
    hyps = [corruption({"text": tf.constant(t), "index": tf.constant(i, tf.int32)},
                       example_seed(seed0, 0, i))["text"].numpy().decode("utf-8") for i, t in enumerate(texts)]
    return text_corrupt.character_error_rate(texts, hyps)


def _keys(task):
    return CLASSIFICATION_KEYS if task.is_classification else REGRESSION_KEYS


def headline_metric(task):
    return "macro_f1" if task.is_classification else "ccc"


def _clean_number(v):
    v = float(v)
    return None if math.isnan(v) or math.isinf(v) else v


def _scores(task, predictions):
    metrics = task.compute_metrics(predictions) if len(predictions["index"]) else {}
    return {k: _clean_number(metrics[k]) for k in _keys(task) if k in metrics}


def _result(task, split, seed, wanted, skipped, predictions, banks):
    clean = _scores(task, predictions["clean"])
    out = {"model": task.config.model, "split": split, "seed": seed, "metric": headline_metric(task),
           "num_examples": int(len(predictions["clean"]["index"])), "babble_source_split": banks.get("babble_source"),
           "conditions": {"clean": {"family": "clean", "severity": None, "unit": "", "description": "as recorded",
                                    **clean}},
           "skipped": skipped}
    for c in wanted:
        p = predictions[c.name]
        if not np.array_equal(p["index"], predictions["clean"]["index"]):
            raise RuntimeError(f"{c.name}: scored other rows than the clean run")
        scores = _scores(task, p)
        entry = {"family": c.family, "severity": c.severity, "unit": c.unit, "description": c.description, **scores}
        for k, v in scores.items():
            if v is not None and clean.get(k) is not None:
                entry[f"delta_{k}"] = v - clean[k]
        if task.is_classification and len(p["index"]):
            entry["agreement_with_clean"] = float(np.mean(
                p["outputs"].argmax(-1) == predictions["clean"]["outputs"].argmax(-1)))
        if c.name in banks.get("measured_cer", {}):
            entry["measured_cer"] = banks["measured_cer"][c.name]
        out["conditions"][c.name] = entry
    return out


# === Groups ===


def _group_values(rows, column):
    """Each row's group: the column's value as text, `(unknown)` when empty; numeric ages by decade."""
    out = []
    for v in rows[column]:
        n = _number(v) if column == "age" else None
        if n is not None:
            out.append(f"{int(n // 10 * 10)}-{int(n // 10 * 10) + 9}")
        elif v is None or (isinstance(v, float) and math.isnan(v)) or str(v).strip() == "":
            out.append("(unknown)")
        else:
            out.append(str(v).strip())
    return out


def _number(v):
    try:
        n = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(n) else n


def group_breakdown(task, rows, predictions, column, min_group_size=MIN_GROUP_SIZE) -> dict:
    """Per value of `column`: every condition's metrics per group, the worst and best group (among
    groups of at least `min_group_size` scored rows; among all when none is that big) and the gap."""
    values = np.asarray(_group_values(rows, column), dtype=object)
    metric = headline_metric(task)
    index = predictions["clean"]["index"]
    sizes = {str(g): int(n) for g, n in zip(*np.unique(values[index], return_counts=True))}
    out = {"column": column, "min_group_size": min_group_size, "metric": metric, "sizes": sizes,
           "small_groups": sorted(g for g, n in sizes.items() if n < min_group_size), "conditions": {}}
    for name, p in predictions.items():
        groups = values[p["index"]]
        per_group = {}
        for g in sorted(sizes):
            sel = groups == g
            part = {k: (v[sel] if isinstance(v, np.ndarray) and len(v) == len(sel) else v) for k, v in p.items()}
            per_group[g] = {"n": int(sel.sum()), "small": bool(sel.sum() < min_group_size), **_scores(task, part)}
        out["conditions"][name] = {"per_group": per_group, **_extremes(per_group, metric)}
    return out


def _extremes(per_group, metric):
    judged = {g: m for g, m in per_group.items() if not m["small"] and m.get(metric) is not None}
    pool = judged or {g: m for g, m in per_group.items() if m.get(metric) is not None}
    if not pool:
        return {"worst": None, "best": None, "gap": None, "judged_on_small_groups": not judged}
    worst = min(pool, key=lambda g: (pool[g][metric], g))
    best = max(pool, key=lambda g: (pool[g][metric], g))
    return {"worst": worst, "best": best, "gap": pool[best][metric] - pool[worst][metric],
            "judged_on_small_groups": not judged}


# === Report and plot ===


def _fmt(v, signed=False):
    return "n/a" if v is None else (f"{v:+.3f}" if signed else f"{v:.3f}")


def markdown_section(result) -> list:
    """report.md lines: the conditions table, then per `--by` column the clean groups and the worst
    group per condition."""
    lines = [REPORT_MARKER, "## Robustness and fairness", ""]
    conds = result["conditions"]
    if len(conds) > 1:
        keys = [k for k in CLASSIFICATION_KEYS + REGRESSION_KEYS if k in conds["clean"]]
        lines += [f"Seed {result['seed']}; {result['num_examples']} rows of the {result['split']} split; "
                  "Δ = condition − clean.", "",
                  "| condition | " + " | ".join(f"{k} | Δ" for k in keys) + " | same as clean |",
                  "|---|" + "---|---|" * len(keys) + "---|"]
        for name, c in conds.items():
            cells = " | ".join(f"{_fmt(c.get(k))} | {_fmt(c.get('delta_' + k), True)}" for k in keys)
            extra = f" (CER {c['measured_cer']:.3f})" if c.get("measured_cer") is not None else ""
            agree = _fmt(c.get("agreement_with_clean")) if name != "clean" else "1.000"
            lines.append(f"| {name}{extra} | {cells} | {agree} |")
        for name, reason in result["skipped"].items():
            lines.append(f"| {name} | skipped: {reason} |")
        lines.append("")
    for column, b in result["by"].items():
        lines += _group_lines(column, b)
    return lines


def _group_lines(column, b):
    metric = b["metric"]
    clean = b["conditions"]["clean"]["per_group"]
    keys = [k for k in CLASSIFICATION_KEYS + REGRESSION_KEYS if any(k in g for g in clean.values())]
    lines = [f"### By {column} (clean)", "", "| group | n | " + " | ".join(keys) + " |",
             "|---|---|" + "---|" * len(keys)]
    for g, m in clean.items():
        flag = " (small)" if m["small"] else ""
        lines.append(f"| {g}{flag} | {m['n']} | " + " | ".join(_fmt(m.get(k)) for k in keys) + " |")
    lines += ["", f"Groups under {b['min_group_size']} rows are flagged (small) and not judged worst or best "
              f"unless all are small. Worst / best by {metric}:", "",
              f"| condition | worst group | {metric} | best group | {metric} | gap |", "|---|---|---|---|---|---|"]
    for name, c in b["conditions"].items():
        pg = c["per_group"]
        worst = f"{c['worst']} | {_fmt(pg[c['worst']].get(metric))}" if c["worst"] else "n/a | n/a"
        best = f"{c['best']} | {_fmt(pg[c['best']].get(metric))}" if c["best"] else "n/a | n/a"
        lines.append(f"| {name} | {worst} | {best} | {_fmt(c['gap'])} |")
    return lines + [""]


def _append_report(path, section):
    """Replaces the robustness section of `report.md` (or starts one)."""
    text = ""
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            text = f.read().split(REPORT_MARKER)[0].rstrip("\n") + "\n\n"
    files.write_text(path, text + "\n".join(section) + "\n")


def severity_png(result) -> bytes:
    """The headline metric against severity, one panel per family with severities, plus a panel of
    the single conditions; the clean score as a dashed line in each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric, conds = result["metric"], result["conditions"]
    clean = conds["clean"].get(metric)
    families = {}
    for name, c in conds.items():
        if name != "clean" and c.get(metric) is not None:
            families.setdefault(c["family"] if c["severity"] is not None else "single", []).append((name, c))
    panels = [f for f in families if f != "single"] + (["single"] if "single" in families else [])
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(3.2 * max(len(panels), 1), 3.2), dpi=100,
                             squeeze=False)
    for ax, family in zip(axes[0], panels):
        items = families[family]
        if family == "single":
            ax.bar(range(len(items)), [c[metric] for _, c in items])
            ax.set_xticks(range(len(items)), [n for n, _ in items], rotation=60, ha="right", fontsize=7)
        else:
            ax.plot([c["severity"] for _, c in items], [c[metric] for _, c in items], "o-")
            ax.set_xlabel(items[0][1]["unit"])
            if items[0][1]["unit"] == "dB SNR":
                ax.invert_xaxis()  # more severe to the right, as for RT60 and CER
        if clean is not None:
            ax.axhline(clean, color="grey", linestyle="--", label="clean")
        ax.set_title(family, fontsize=9)
        ax.set_ylabel(metric)
        if metric in CLASSIFICATION_KEYS:
            ax.set_ylim(0, 1.05)
    fig.suptitle(f"{result['model']} — {result['split']} split, seed {result['seed']}", fontsize=9)
    return figure_png(fig)


def summary_lines(result) -> list:
    """bin/evaluate's printout."""
    metric = result["metric"]
    lines = [f"robustness ({metric}, seed {result['seed']}):"] if len(result["conditions"]) > 1 else []
    for name, c in result["conditions"].items() if len(result["conditions"]) > 1 else ():
        delta = c.get(f"delta_{metric}")
        lines.append(f"  {name:20s} {_fmt(c.get(metric))}" + (f" ({delta:+.3f})" if delta is not None else ""))
    for column, b in result["by"].items():
        c = b["conditions"]["clean"]
        lines.append(f"by {column}: {len(b['sizes'])} groups ({len(b['small_groups'])} under {b['min_group_size']} "
                     f"rows); clean worst {c['worst']}, best {c['best']}, gap {_fmt(c['gap'])}")
    return lines
