"""bin/evaluate: score a trained model on a whole manifest split (default: test).

    bin/evaluate --model_dir=DIR [--split=test] [--manifest=M] [--plot_embeddings] [--calibrate]
                 [--robustness] [--by=gender,speaker,age]

Writes DIR/eval/metrics.json, confusion_matrix.png, report.md and predictions.csv. This is the only
command that reads the test split; bin/train selects models on the validation split. A model taking
audio and text is also scored with each modality removed (`modality_ablation`); on the demo corpus,
accuracy per condition (`per_condition`: emotion in the voice only, the words only, or both).
Classifiers: ECE / Brier before and after the run's temperature scaling (`calibration.json`, fitted on
the validation split by bin/train; `--calibrate` (re)fits it on an existing run), coverage vs accuracy
for abstention thresholds, and `reliability_diagram.png`.
`--robustness` also scores the split under noise, babble, telephone, reverberation, level, packet-loss
and transcript corruptions, `--by` per group of a manifest column (`tfsent.evaluation.robustness`:
robustness.json, robustness.png, a report.md section).
"""

from __future__ import annotations

from absl import flags

from tfsent.cli import common

flags.DEFINE_string("model_dir", None, "Model dir written by bin/train.")
flags.DEFINE_string("split", "test", "Manifest split to evaluate.")
flags.DEFINE_string("manifest", None, "Manifest (default: the one the model was trained on).")
flags.DEFINE_integer("batch_size", 32, "Evaluation batch size (no example is dropped).")
flags.DEFINE_boolean("plot_embeddings", False, "Also write PCA and t-SNE plots of penultimate-layer embeddings.")
flags.DEFINE_string("out_dir", None, "Where to write (default MODEL_DIR/eval, or eval_<split>).")
flags.DEFINE_boolean("calibrate", False, "First (re)fit temperature scaling on --calibration_split and store it "
                     "in MODEL_DIR/calibration.json (runs trained before calibration have none: T = 1).")
flags.DEFINE_string("calibration_split", "valid", "The split --calibrate fits the temperature on.")
flags.DEFINE_boolean("robustness", False, "Also score under controlled corruptions (robustness.json).")
flags.DEFINE_list("by", [], "Manifest columns to break metrics down by (e.g. gender,speaker,age).")
flags.DEFINE_integer("robustness_seed", 0, "Seed of the corruptions (same seed, same numbers).")
flags.DEFINE_integer("min_group_size", 10, "--by: groups with fewer rows are flagged small.")
FLAGS = flags.FLAGS


def main(argv):
    common.no_arguments(argv)
    common.require("model_dir")
    run = common.trained_run_dir(FLAGS.model_dir)
    if FLAGS.manifest:
        manifest = common.manifest_path(FLAGS.manifest)
    else:
        manifest = common.manifest_path(run.read_config().get("manifest"), recorded_in=run.config_path)
    common.check_split(manifest, FLAGS.split)
    if FLAGS.by:
        from tfsent.evaluation.robustness import check_columns

        check_columns(manifest, FLAGS.by)
    if FLAGS.calibrate:
        common.check_split(manifest, FLAGS.calibration_split, flag="calibration_split")
    common.writable_dir(FLAGS.out_dir or run.eval_dir(FLAGS.split), "out_dir")
    from tfsent.evaluation.evaluate import evaluate_model_dir

    result = evaluate_model_dir(FLAGS.model_dir, split=FLAGS.split, manifest=manifest,
                                batch_size=FLAGS.batch_size, plot_embeddings=FLAGS.plot_embeddings,
                                out_dir=FLAGS.out_dir, calibrate=FLAGS.calibrate,
                                calibration_split=FLAGS.calibration_split)
    m = result["metrics"]
    shown = [k for k in ("accuracy", "unweighted_accuracy", "macro_f1", "weighted_f1", "rmse", "ccc") if k in m]
    print(f"{m['context']['model']} on the {FLAGS.split} split ({m.get('num_examples')} examples, "
          f"split strategy {m['context']['split_strategy']}):")
    for k in shown:
        print(f"  {k:20s} {m[k]:.4f}")
    ablation = m.get("modality_ablation", {})
    for name in ("audio_removed", "text_removed"):
        if name in ablation:
            a = ablation[name]
            print(f"  {name.replace('_', ' ') + ':':20s} " + " ".join(f"{k} {a[k]:.4f}" for k in shown if k in a)
                  + (f" (same prediction as the full model on {a['agreement_with_full']:.0%} of rows)"
                     if "agreement_with_full" in a else ""))
    if "calibration" in m:
        from tfsent.evaluation.calibration import summary_line

        print(summary_line(m["calibration"]))
    if "per_condition" in m:
        pc = m["per_condition"]
        print("  accuracy where the emotion is only in the voice / only in the words / in both: " + " / ".join(
            "n/a" if pc["accuracy"][c] is None else f"{pc['accuracy'][c]:.3f} ({pc['counts'][c]})"
            for c in ("audio_only", "text_only", "both")))
    trained_on = m["context"].get("trained_on")
    if trained_on and trained_on != m["context"].get("corpus"):
        print(f"cross-corpus: trained on {trained_on}, scored on {m['context'].get('corpus')}")
    if "unmapped_rows" in m:
        print(f"classes mapped by emotion name: {m['unmapped_rows']} rows with an emotion the model does not "
              f"know were not scored (counted in metrics.json class_mapping)")
    print(f"wrote {result['out_dir']}/metrics.json, report.md, predictions.csv")
    if FLAGS.robustness or FLAGS.by:
        _robustness(manifest, result["out_dir"])
    return 0


def _robustness(manifest, out_dir):
    from tfsent.evaluation import robustness

    robust = robustness.evaluate_robustness(
        FLAGS.model_dir, split=FLAGS.split, manifest=manifest, batch_size=FLAGS.batch_size, out_dir=out_dir,
        by=tuple(FLAGS.by), seed=FLAGS.robustness_seed, min_group_size=FLAGS.min_group_size,
        robustness=FLAGS.robustness)
    print("\n".join(robustness.summary_lines(robust)))
    print(f"wrote {out_dir}/{robustness.JSON_NAME}" + (f", {robustness.PNG_NAME}" if FLAGS.robustness else ""))


def run():
    common.run_main(main, "evaluate")


if __name__ == "__main__":
    run()
