"""Evaluate a trained model on a whole manifest split and write `MODEL_DIR/eval/`.

Outputs (`eval/` for the test split, `eval_<split>/` for others):
- `metrics.json` — see `tfsent.metrics.definitions` for the definitions (accuracy = WA, UA = macro
  recall, macro/weighted F1, per-class scores, confusion matrix; RMSE/MAE/Pearson/CCC for regressors),
  plus the split strategy, label rule and class set the numbers belong to;
- `confusion_matrix.png`, `report.md`, `predictions.csv` (one row per utterance);
- with `plot_embeddings`, `embeddings_pca.png` and `embeddings_tsne.png` of the penultimate layer.

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
from tfsent.metrics.plots import confusion_matrix_png
from tfsent.tasks import load_run


def evaluate_model_dir(model_dir, split="test", manifest=None, batch_size=32, plot_embeddings=False,
                       out_dir=None):
    """Scores the run in `model_dir` (Keras or scikit-learn) on the whole `split`; writes `out_dir`
    (default `MODEL_DIR/eval/` for test, `eval_<split>/` otherwise). Returns `{"metrics", "out_dir"}`."""
    loaded = load_run(model_dir, manifest, batch_size=batch_size)
    task = loaded.task
    rows = task.split_frame(split)
    predictions = task.predict(loaded.predict_fn(), split)
    metrics = task.compute_metrics(predictions)
    metrics["num_examples_in_split"] = len(rows)
    metrics["num_unreadable_skipped"] = int(len(rows) - len(predictions["index"]))
    metrics["split"] = split
    metrics["context"] = _context(task)
    out_dir = out_dir or loaded.run.eval_dir(split)
    os.makedirs(out_dir, exist_ok=True)
    files.write_json(os.path.join(out_dir, "metrics.json"), metrics)
    _write_predictions(out_dir, task, rows, predictions)
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
    }


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
    return "\n".join(lines) + "\n"


def _write_predictions(out_dir, task, rows, predictions):
    picked = rows.iloc[predictions["index"]].reset_index(drop=True)
    out = pd.DataFrame({"utt_id": picked["utt_id"].astype(str)})
    if task.is_classification:
        probs = _softmax(predictions["outputs"])
        out["true"] = picked["emotion"].astype(str)
        out["predicted"] = [task.config.classes[i] for i in probs.argmax(-1)]
        for i, c in enumerate(task.config.classes):
            out[f"p_{c}"] = np.round(probs[:, i], 6)
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
