"""bin/predict: run an exported model on a recording and its transcript; prints JSON.

    bin/predict --model=EXPORTS/<name>/<version> --wav=FILE.wav --text="문장"

One JSON object per input on stdout: the label, the per-class probabilities and, for models that
predict them, valence / arousal. Only `tensorflow` and `tensorflow_text` are needed to run it.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags

flags.DEFINE_string("model", None, "Exported version dir (EXPORTS/<name>/<version>).")
flags.DEFINE_string("wav", None, "WAV file (any sample rate, mono or stereo).")
flags.DEFINE_string("text", None, "Transcript (Korean text).")
FLAGS = flags.FLAGS


def predict_one(model_path, wav=None, text=None):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops the graph uses)

    loaded = tf.saved_model.load(model_path)
    signature_names = list(loaded.signatures.keys())
    kwargs = {}
    if "predict_wav" in signature_names:
        fn = loaded.signatures["predict_wav"]
        if wav is None:
            raise ValueError("this model takes audio: pass --wav=FILE")
        with open(wav, "rb") as f:
            kwargs["wav"] = tf.constant([f.read()])
    else:
        fn = loaded.signatures["serving_default"]
    accepted = set(fn.structured_input_signature[1].keys())
    if "text" in accepted:
        if text is None:
            raise ValueError("this model takes text: pass --text=...")
        kwargs["text"] = tf.constant([text])
    out = fn(**kwargs)
    result = {}
    if "probabilities" in out:
        labels = _labels(model_path)
        probs = out["probabilities"].numpy()[0]
        result["label"] = out["label"].numpy()[0].decode("utf-8")
        result["probabilities"] = {l: round(float(p), 6) for l, p in zip(labels, probs)}
    for key in ("valence", "arousal"):
        if key in out:
            result[key] = float(out[key].numpy()[0])
    return result


def _labels(model_path):
    card = os.path.join(model_path, "assets.extra", "model_card.json")
    with open(card, encoding="utf-8") as f:
        return json.load(f)["labels"]


def main(argv):
    if len(argv) > 1:
        print(f"bin/predict: error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    if not FLAGS.model:
        print("bin/predict: error: --model is required (an exported version dir)", file=sys.stderr)
        return 2
    if not os.path.isfile(os.path.join(FLAGS.model, "saved_model.pb")):
        print(f"bin/predict: error: {FLAGS.model} is not a SavedModel version dir (no saved_model.pb)", file=sys.stderr)
        return 2
    if FLAGS.wav and not os.path.isfile(FLAGS.wav):
        print(f"bin/predict: error: --wav={FLAGS.wav}: no such file", file=sys.stderr)
        return 2
    try:
        result = predict_one(FLAGS.model, FLAGS.wav, FLAGS.text)
    except ValueError as e:
        print(f"bin/predict: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    app.run(main)
