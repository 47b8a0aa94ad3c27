"""Encoder + classifier exported as a SavedModel with tokenization inside the graph:
same probabilities for raw strings after reloading in a fresh process that imports
only tensorflow and tensorflow_text."""
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfsent.encoders import load_text_encoder

DATA = os.path.join(os.path.dirname(__file__), "data")
TEXTS = ["오늘 정말 행복해요!", "왜 이렇게 화가 나는지 모르겠어.", "Hello, 세상아 😀", ""]

RELOAD = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401 -- registers the tokenizer ops
texts = json.loads(sys.argv[1])
models = [tf.saved_model.load(d) for d in sys.argv[2:]]  # keep them alive while serving
outs = [m.serve(tf.constant(texts)).numpy().tolist() for m in models]
print(json.dumps(outs))
assert "tfsent" not in sys.modules and "keras_hub" not in sys.modules
"""


def _export(name, out_dir):
    enc = load_text_encoder(os.path.join(DATA, name), sequence_length=16)
    feats = {k: keras.Input((16,), dtype="int32", name=k) for k in ("token_ids", "padding_mask")}
    pooled = enc.backbone(feats)["pooled_output"]
    probs = keras.layers.Dense(3, activation="softmax", name="head")(pooled)
    classifier = keras.Model(feats, probs)

    def serve(texts):
        return classifier(enc.preprocessor(texts))

    before = serve(tf.constant(TEXTS)).numpy()
    archive = keras.export.ExportArchive()
    archive.track(classifier)
    archive.track(enc.preprocessor)
    archive.add_endpoint("serve", serve, input_signature=[tf.TensorSpec([None], tf.string)])
    archive.write_out(out_dir, verbose=False)
    return before


@pytest.mark.slow
def test_export_with_tokenizer_inside(tmp_path):
    # WordPiece (klue/roberta style) and SentencePiece (KoBERT style, a TF resource).
    names = ["roberta_klue", "kobert_spm"]
    dirs = [str(tmp_path / n) for n in names]
    before = [_export(n, d) for n, d in zip(names, dirs)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    res = subprocess.run([sys.executable, "-c", RELOAD, json.dumps(TEXTS), *dirs],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    after = json.loads(res.stdout.strip().splitlines()[-1])
    for name, b, a in zip(names, before, after):
        a = np.array(a)
        assert a.shape == (len(TEXTS), 3), name
        np.testing.assert_allclose(a, b, atol=1e-6, err_msg=name)
