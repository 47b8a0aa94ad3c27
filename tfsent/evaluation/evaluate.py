"""Evaluate a trained model on a whole manifest split and write `MODEL_DIR/eval/`.

Outputs (`eval/` for the test split, `eval_<split>/` for others):
- `metrics.json` — see `tfsent.metrics.definitions` for the definitions (accuracy = WA, UA = macro
  recall, macro/weighted F1, per-class scores, confusion matrix; RMSE/MAE/Pearson/CCC for regressors),
  plus the split strategy, label rule and class set the numbers belong to;
- `confusion_matrix.png`, `report.md`, `predictions.csv` (one row per utterance);
- for a model that takes audio and text, `modality_ablation` in `metrics.json` and `report.md`: the same
  metrics with the audio removed and with the text removed (`tfsent.evaluation.ablation`), and each
  row's prediction without either in `predictions.csv`;
- on the demo corpus (its `demo_truth.jsonl`), `per_condition`: accuracy where only the voice, only the
  words or both carry the emotion (`tfsent.evaluation.conditions`), and each row's `condition`;
- with `plot_embeddings`, `embeddings_pca.png` and `embeddings_tsne.png` of the penultimate layer;
- for classifiers, `calibration` (`tfsent.evaluation.calibration`): the run's temperature, ECE / Brier /
  NLL before and after it (top-level `ece`, `brier` calibrated; `ece_uncalibrated`, `brier_uncalibrated`),
  coverage vs accuracy for abstention thresholds, and `reliability_diagram.png`; `predictions.csv`
  holds the calibrated probabilities.

Keras and scikit-learn runs alike (the run is loaded by `tfsent.tasks.load_run`).

Example:

```python
result = evaluate_model_dir("runs/demo", split="test")
result["metrics"]["macro_f1"]
```
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from tfsent.core import files
from tfsent.core.errors import UsageError
from tfsent.evaluation import ablation as ablation_lib
from tfsent.evaluation import calibration as calibration_lib
from tfsent.evaluation import conditions as conditions_lib
from tfsent.metrics.plots import confusion_matrix_png
from tfsent.tasks import load_run


def evaluate_model_dir(model_dir, split="test", manifest=None, batch_size=32, plot_embeddings=False,
                       out_dir=None, calibrate=False, calibration_split="valid"):
    """Scores the run in `model_dir` (Keras or scikit-learn) on the whole `split`; writes `out_dir`
    (default `MODEL_DIR/eval/` for test, `eval_<split>/` otherwise). Returns `{"metrics", "out_dir"}`.
    With `calibrate`, (re)fits the run's temperature on `calibration_split` first
    (`tfsent.evaluation.calibration`); classifiers' probabilities are always the calibrated ones."""
    loaded = load_run(model_dir, manifest, batch_size=batch_size)
    task = loaded.task
    rows = task.split_frame(split)
    predict_fn = loaded.predict_fn()
    if calibrate:
        calibration_lib.calibrate_split(loaded, predict_fn, calibration_split)
    predictions = task.predict(predict_fn, split)
    metrics = task.compute_metrics(predictions)
    ablated = _modality_reliance(task, predict_fn, split, predictions, metrics)
    metrics["num_examples_in_split"] = len(rows)
    metrics["num_unreadable_skipped"] = int(len(rows) - len(predictions["index"]))
    metrics["split"] = split
    metrics["context"] = _context(task)
    if loaded.class_mapping is not None:  # another corpus / class set, mapped by emotion name
        metrics["class_mapping"] = loaded.class_mapping
        metrics["unmapped_rows"] = sum(loaded.class_mapping["unmapped_by_split"].get(str(split), {}).values())
    out_dir = out_dir or loaded.run.eval_dir(split)
    os.makedirs(out_dir, exist_ok=True)
    temperature = 1.0
    if task.is_classification and len(predictions["labels"]):
        metrics["calibration"] = calibration_lib.calibration_section(loaded.run, predictions, task.config.classes,
                                                                     out_dir, split)
        metrics.update(calibration_lib.headline(metrics["calibration"]))
        temperature = metrics["calibration"]["temperature"]
    files.write_json(os.path.join(out_dir, "metrics.json"), metrics)
    _write_predictions(out_dir, task, rows, predictions, ablated, temperature)
    if task.is_classification:
        png = confusion_matrix_png(np.asarray(metrics["confusion_matrix"]), list(task.config.classes),
                                   title=f"{task.config.model} — {split} split")
        files.write_bytes(os.path.join(out_dir, "confusion_matrix.png"), png)
    if plot_embeddings:
        if loaded.kind != "keras":
            raise UsageError(f"--plot_embeddings needs a Keras model; {task.config.model!r} is scikit-learn")
        _plot_embeddings(task, loaded.model, split, out_dir)
    files.write_text(os.path.join(out_dir, "report.md"), markdown_report(metrics))
    return {"metrics": metrics, "out_dir": out_dir}


def _modality_reliance(task, predict_fn, split, predictions, metrics):
    """Adds `modality_ablation` (models taking audio and text) and `per_condition` (demo corpus) to
    `metrics`; returns the ablation conditions' predictions."""
    ablated = {}
    if ablation_lib.takes_both_modalities(task):
        metrics["modality_ablation"], ablated = ablation_lib.modality_ablation(task, predict_fn, split, predictions)
    elif task.entry.modality == "multimodal":
        metrics["modality_ablation"] = {"skipped": f"{task.config.model} is a scikit-learn model over other runs' "
                                                   "outputs; ablate the Keras runs it stacks"}
    truth = conditions_lib.condition_truth(task.sidecar)
    per_condition = conditions_lib.per_condition_scores(task, split, {"full": predictions, **ablated}, truth)
    if per_condition is not None:
        metrics["per_condition"] = per_condition
    return ablated


def _context(task):
    sidecar = task.sidecar
    return {
        "corpus": sidecar.get("corpus"),
        "split_strategy": sidecar.get("split"),
        "label_rule": sidecar.get("label_rule"),
        "tie_policy": sidecar.get("tie_policy"),
        "classes": list(task.config.classes),
        "model": task.config.model,
        "manifest": task.config.manifest,
        "trained_on": _training_corpus(task.config.manifest),
    }


def _training_corpus(training_manifest):
    """The corpus the model was trained on (its training manifest's sidecar), or None when gone."""
    from tfsent.corpus.manifest import SIDECAR_NAME

    path = os.path.join(os.path.dirname(os.path.abspath(training_manifest or "")), SIDECAR_NAME)
    return (files.read_json(path, {}) or {}).get("corpus") if training_manifest and os.path.isfile(path) else None


def markdown_report(metrics) -> str:
    ctx = metrics["context"]
    lines = [
        f"# Evaluation of `{ctx['model']}` on the {metrics['split']} split",
        "",
        f"- corpus: {ctx.get('corpus')}; split strategy: **{ctx.get('split_strategy')}**; "
        f"label rule: {ctx.get('label_rule')} (ties: {ctx.get('tie_policy')}); "
        f"classes ({len(ctx['classes'])}): {', '.join(ctx['classes'])}",
        f"- examples: {metrics.get('num_examples')} of {metrics['num_examples_in_split']} in the split "
        f"({metrics['num_unreadable_skipped']} unreadable, skipped)",
        *_cross_corpus_lines(metrics),
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for key in ("accuracy", "unweighted_accuracy", "macro_f1", "weighted_f1", "rmse", "mae", "pearson_r", "ccc"):
        if key in metrics:
            lines.append(f"| {key} | {metrics[key]:.4f} |")
    lines += ["", "accuracy = WA (overall accuracy); unweighted_accuracy = UA (mean per-class recall). "
              "Definitions: tfsent/metrics/definitions.py.", ""]
    if "per_class" in metrics:
        lines += ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        per_class = metrics["per_class"]
        items = per_class.items() if isinstance(per_class, dict) else [(p["label"], p) for p in per_class]
        for label, p in items:
            lines.append(f"| {label} | {p['precision']:.3f} | {p['recall']:.3f} | {p['f1']:.3f} | {p['support']} |")
    if "full" in metrics.get("modality_ablation", {}):
        lines += [""] + ablation_lib.markdown_section(metrics["modality_ablation"])
    if "per_condition" in metrics:
        lines += [""] + conditions_lib.markdown_section(metrics["per_condition"])
    if "calibration" in metrics:
        lines += [""] + calibration_lib.markdown_section(metrics["calibration"])
    return "\n".join(lines) + "\n"


def _cross_corpus_lines(metrics):
    ctx, mapping = metrics["context"], metrics.get("class_mapping")
    lines = []
    if ctx.get("trained_on") and ctx.get("trained_on") != ctx.get("corpus"):
        lines.append(f"- cross-corpus: trained on **{ctx['trained_on']}**, scored on **{ctx.get('corpus')}**")
    if mapping is not None:
        unknown = mapping["unmapped_by_split"].get(str(metrics["split"]), {})
        lines.append(f"- classes mapped by emotion name from {', '.join(mapping['manifest_classes'])}: "
                     f"{metrics['unmapped_rows']} rows of the split have an emotion the model does not know, "
                     f"not scored ({', '.join(f'{e} {n}' for e, n in unknown.items()) or 'none'})")
    return lines


def _write_predictions(out_dir, task, rows, predictions, ablated=None, temperature=1.0):
    picked = rows.iloc[predictions["index"]].reset_index(drop=True)
    out = pd.DataFrame({"utt_id": picked["utt_id"].astype(str)})
    if task.is_classification:
        probs = _softmax(predictions["outputs"] / temperature)  # calibrated, as the exported model's
        out["true"] = picked["emotion"].astype(str)
        out["predicted"] = [task.config.classes[i] for i in probs.argmax(-1)]
        for i, c in enumerate(task.config.classes):
            out[f"p_{c}"] = np.round(probs[:, i], 6)
        for name, removed in (ablated or {}).items():
            out[f"predicted_{name}"] = [task.config.classes[i] for i in removed["outputs"].argmax(-1)]
        truth = conditions_lib.condition_truth(task.sidecar)
        if truth is not None:
            out["condition"] = conditions_lib.row_conditions(picked, truth)
    else:
        out["true"] = predictions["values"]
        out["predicted"] = predictions["outputs"].reshape(-1)
    files.write_text(os.path.join(out_dir, "predictions.csv"), out.to_csv(index=False))


def _plot_embeddings(task, model, split, out_dir):
    import keras
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    head = model.get_layer(task.output_key())
    embedder = keras.Model(model.inputs, head.input)
    feats, labels = [], []
    for inputs, targets in task.build_inputs(split, training=False):
        feats.append(np.asarray(embedder(inputs, training=False)))
        labels.append(targets["label"].numpy())
    x = np.concatenate(feats)
    y = np.concatenate(labels)
    names = list(task.config.classes)
    projections = {"pca": PCA(n_components=2, random_state=0).fit_transform(x)}
    if len(x) > 5:
        projections["tsne"] = TSNE(n_components=2, random_state=0, init="pca",
                                   perplexity=min(30.0, (len(x) - 1) / 3)).fit_transform(x)
    for kind, xy in projections.items():
        fig, ax = plt.subplots(figsize=(6, 5), dpi=100)
        for i, name in enumerate(names):
            sel = y == i
            if sel.any():
                ax.scatter(xy[sel, 0], xy[sel, 1], s=12, label=name)
        ax.legend()
        ax.set_title(f"{task.config.model}: penultimate-layer embeddings ({kind.upper()}, {split})")
        fig.tight_layout()
        with files.atomic_path(os.path.join(out_dir, f"embeddings_{kind}.png")) as tmp:
            fig.savefig(tmp)
        plt.close(fig)


def _softmax(logits):
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)
