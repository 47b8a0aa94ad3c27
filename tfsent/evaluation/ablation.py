"""Modality ablation: how much a multimodal model relies on each modality.

The model is scored three times on the same rows: as is (`full`), with the audio removed and with the
text removed. A modality is removed exactly as the exported SavedModel treats a missing one (a
zero-length clip, an empty text: the branch is fully masked; `InputPipeline.dataset(remove_modality=)`),
so these numbers are what a serving client sending no audio or no text gets. A lazy fusion shows at
once: when removing the audio changes no prediction (`agreement_with_full` 1.0), the model ignores
the voice.

`metrics.json["modality_ablation"]` (bin/evaluate) and TensorBoard's `modality_ablation/...` scalars at
each validation (bin/train) come from here.

Example:

```python
loaded = load_run("runs/demo_fusion")
predict_fn = loaded.predict_fn()
full = loaded.task.predict(predict_fn, "test")
ablated = predict_without_each_modality(loaded.task, predict_fn, "test")
result = ablation_metrics(loaded.task, full, ablated)
result["audio_removed"]["macro_f1"], result["text_removed"]["agreement_with_full"]
```
"""

from __future__ import annotations

import numpy as np

from tfsent.core import inputs as inputs_lib

# metrics.json key of each ablation condition → the modality it removes.
ABLATIONS = {"audio_removed": "audio", "text_removed": "text"}
HEADLINE = ("accuracy", "unweighted_accuracy", "macro_f1", "weighted_f1", "rmse", "mae", "pearson_r", "ccc", "loss")
HOW = ("audio_removed: every clip replaced by a zero-length one (audio mask all zero); text_removed: every "
       "text replaced by an empty one (padding mask all zero); as the exported SavedModel treats a missing "
       "modality. agreement_with_full: share of rows whose predicted class is the full model's.")


def takes_both_modalities(task) -> bool:
    """True for a Keras model that takes audio and text (the ones an ablation applies to)."""
    if getattr(task, "kind", None) != "keras":
        return False
    names = task.model_inputs
    return inputs_lib.takes_audio(names) and inputs_lib.takes_text(names)


def predict_without_each_modality(task, predict_fn, split, log=None) -> dict:
    """`{"audio_removed": predictions, "text_removed": predictions}`, each `task.predict`'s dict for
    `split` with that modality removed from every row. One pass over the split per modality."""
    return {name: task.predict(predict_fn, split, log=log, remove_modality=modality)
            for name, modality in ABLATIONS.items()}


def ablation_metrics(task, full_predictions, ablated_predictions) -> dict:
    """The `modality_ablation` dict: the full model's headline metrics, every metric of each ablation
    condition (plus `agreement_with_full` and `delta_<metric>` = condition − full for
    classification), chance levels, and how a modality was removed."""
    full = task.compute_metrics(full_predictions)
    result = {"how": HOW, "full": {k: full[k] for k in HEADLINE if k in full}}
    for name, predictions in ablated_predictions.items():
        if not np.array_equal(predictions["index"], full_predictions["index"]):
            raise RuntimeError(f"{name}: scored other rows than the full model ({len(predictions['index'])} vs "
                               f"{len(full_predictions['index'])})")
        metrics = task.compute_metrics(predictions)
        for key in HEADLINE:
            if key in metrics and key in full:
                metrics[f"delta_{key}"] = float(metrics[key]) - float(full[key])
        if task.is_classification and len(predictions["index"]):
            same = predictions["outputs"].argmax(-1) == full_predictions["outputs"].argmax(-1)
            metrics["agreement_with_full"] = float(same.mean())
        result[name] = metrics
    if task.is_classification:
        result["chance"] = chance_levels(full_predictions["labels"], len(task.config.classes))
    return result


def chance_levels(labels, num_classes) -> dict:
    """What guessing scores on these labels: `unweighted_accuracy` 1/C (any guesser, in expectation),
    `majority_accuracy` (always the most frequent class; also what any constant prediction reaches at
    most) and that constant guess's `majority_macro_f1`."""
    labels = np.asarray(labels, dtype=int)
    counts = np.bincount(labels, minlength=num_classes)
    share = float(counts.max() / counts.sum()) if counts.sum() else float("nan")
    # A constant prediction of the majority class: F1 of that class 2p/(1+p), 0 for the others.
    majority_f1 = 2 * share / (1 + share) / num_classes if counts.sum() else float("nan")
    return {"unweighted_accuracy": 1.0 / num_classes, "majority_accuracy": share, "majority_macro_f1": majority_f1}


def modality_ablation(task, predict_fn, split, full_predictions=None, log=None):
    """`ablation_metrics` for `split` in one call (the full pass is run unless given); None when the
    model does not take both modalities. Returns `(metrics dict, {condition: predictions})`."""
    if not takes_both_modalities(task):
        return None, {}
    if full_predictions is None:
        full_predictions = task.predict(predict_fn, split, log=log)
    ablated = predict_without_each_modality(task, predict_fn, split, log=log)
    return ablation_metrics(task, full_predictions, ablated), ablated


def markdown_section(ablation) -> list:
    """report.md lines for a `modality_ablation` dict."""
    keys = [k for k in ("accuracy", "unweighted_accuracy", "macro_f1", "weighted_f1", "ccc", "rmse")
            if k in ablation["full"]]
    lines = ["## Modality ablation", "",
             "| condition | " + " | ".join(keys) + " | agreement with full |",
             "|---|" + "---|" * (len(keys) + 1)]
    lines.append("| full | " + " | ".join(f"{ablation['full'][k]:.4f}" for k in keys) + " | 1.000 |")
    for name in ABLATIONS:
        m = ablation[name]
        agree = f"{m['agreement_with_full']:.3f}" if "agreement_with_full" in m else "n/a"
        lines.append(f"| {name.replace('_', ' ')} | " + " | ".join(f"{m[k]:.4f}" for k in keys) + f" | {agree} |")
    if "chance" in ablation:
        c = ablation["chance"]
        lines += ["", f"Chance: unweighted accuracy {c['unweighted_accuracy']:.3f}; a constant guess reaches at most "
                  f"accuracy {c['majority_accuracy']:.3f}, macro-F1 {c['majority_macro_f1']:.3f}."]
    lines += ["", ablation["how"], ""]
    return lines
