"""bin/evaluate: score a trained model on a whole manifest split (default: test).

    bin/evaluate --model_dir=DIR [--split=test] [--manifest=M] [--plot_embeddings]

Writes DIR/eval/metrics.json, confusion_matrix.png, report.md and predictions.csv. This is the only
command that reads the test split; bin/train selects models on the validation split. A model taking
audio and text is also scored with each modality removed (`modality_ablation`); on the demo corpus,
accuracy per condition (`per_condition`: emotion in the voice only, the words only, or both).
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
    common.writable_dir(FLAGS.out_dir or run.eval_dir(FLAGS.split), "out_dir")
    from tfsent.evaluation.evaluate import evaluate_model_dir

    result = evaluate_model_dir(FLAGS.model_dir, split=FLAGS.split, manifest=manifest,
                                batch_size=FLAGS.batch_size, plot_embeddings=FLAGS.plot_embeddings,
                                out_dir=FLAGS.out_dir)
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
    return 0


def run():
    common.run_main(main, "evaluate")


if __name__ == "__main__":
    run()
