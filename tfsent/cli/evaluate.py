"""bin/evaluate: score a trained model on a whole manifest split (default: test).

    bin/evaluate --model_dir=DIR [--split=test] [--manifest=M] [--plot_embeddings]

Writes DIR/eval/metrics.json, confusion_matrix.png, report.md and predictions.csv. This is the only
command that reads the test split; bin/train selects models on the validation split.
"""

from __future__ import annotations

import sys

from absl import app, flags

flags.DEFINE_string("model_dir", None, "Model dir written by bin/train.")
flags.DEFINE_string("split", "test", "Manifest split to evaluate.")
flags.DEFINE_string("manifest", None, "Manifest (default: the one the model was trained on).")
flags.DEFINE_integer("batch_size", 32, "Evaluation batch size (no example is dropped).")
flags.DEFINE_boolean("plot_embeddings", False, "Also write PCA and t-SNE plots of penultimate-layer embeddings.")
flags.DEFINE_string("out_dir", None, "Where to write (default MODEL_DIR/eval, or eval_<split>).")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        print(f"bin/evaluate: error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    if not FLAGS.model_dir:
        print("bin/evaluate: error: --model_dir is required", file=sys.stderr)
        return 2
    from tfsent.evaluation.evaluate import evaluate_model_dir

    try:
        result = evaluate_model_dir(FLAGS.model_dir, split=FLAGS.split, manifest=FLAGS.manifest,
                                    batch_size=FLAGS.batch_size, plot_embeddings=FLAGS.plot_embeddings,
                                    out_dir=FLAGS.out_dir)
    except (FileNotFoundError, ValueError) as e:
        print(f"bin/evaluate: error: {e}", file=sys.stderr)
        return 2
    m = result["metrics"]
    shown = [k for k in ("accuracy", "unweighted_accuracy", "macro_f1", "weighted_f1", "rmse", "ccc") if k in m]
    print(f"{m['context']['model']} on the {FLAGS.split} split ({m.get('num_examples')} examples, "
          f"split strategy {m['context']['split_strategy']}):")
    for k in shown:
        print(f"  {k:20s} {m[k]:.4f}")
    print(f"wrote {result['out_dir']}/metrics.json, report.md, predictions.csv")
    return 0


if __name__ == "__main__":
    app.run(main)
