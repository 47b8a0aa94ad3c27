"""Sentence / audio embeddings from local Hugging Face encoders as .npz files (the library behind bin/embed)."""

import io
import os

import numpy as np

from tfsent.core import files
from tfsent.core.errors import UsageError


class EmbedError(UsageError):
    """A user error; printed as one line."""


def read_items(path, column):
    """Items to embed: lines of a text file, or a manifest column (+ base folder)."""
    if not os.path.isfile(path):
        raise EmbedError(f"--input {path}: no such file")
    if path.lower().endswith(".csv"):
        import pandas as pd

        from tfsent.corpus.manifest import SIDECAR_NAME, read_manifest

        sidecar_file = os.path.join(os.path.dirname(os.path.abspath(path)), SIDECAR_NAME)
        if os.path.isfile(sidecar_file):
            frame, sidecar = read_manifest(path)
            base = sidecar.get("data_dir", "")
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
            base = os.path.dirname(os.path.abspath(path))
        if column not in frame.columns:
            raise EmbedError(f"--input {path}: no {column!r} column "
                             f"(columns: {', '.join(map(str, frame.columns))})")
        items = [str(x) for x in frame[column].tolist()]
        if column == "audio_path":
            items = [x if os.path.isabs(x) else os.path.join(base, x) for x in items]
        return items
    try:
        with open(path, encoding="utf-8") as f:
            items = f.read().splitlines()
    except UnicodeDecodeError as err:
        raise EmbedError(f"--input {path}: not UTF-8 ({err.reason} at byte {err.start})")
    if column == "audio_path":
        base = os.path.dirname(os.path.abspath(path))
        items = [x.strip() for x in items if x.strip()]
        items = [x if os.path.isabs(x) else os.path.join(base, x) for x in items]
    return items


def _progress(n, enabled):
    import keras

    if enabled and n >= 5:
        return keras.utils.Progbar(n, unit_name="batch", stateful_metrics=None)
    return None


def embed_text(encoder_dir, items, sequence_length, pooling, batch_size, progress):
    import tensorflow as tf

    from tfsent.encoders import load_text_encoder

    enc = load_text_encoder(encoder_dir, sequence_length=sequence_length)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def run(texts):
        feats = enc.preprocessor(texts)
        seq = enc.backbone(feats)["sequence_output"]
        mask = tf.cast(feats["padding_mask"], seq.dtype)[:, :, None]
        if pooling == "cls":
            emb = seq[:, 0]
        elif pooling == "mean":
            emb = tf.reduce_sum(seq * mask, 1) / tf.maximum(tf.reduce_sum(mask, 1), 1.0)
        else:
            emb = seq
        return emb, feats["token_ids"], feats["padding_mask"]

    n_batches = (len(items) + batch_size - 1) // batch_size
    bar = _progress(n_batches, progress)
    outs = []
    for b in range(n_batches):
        outs.append([t.numpy() for t in run(tf.constant(items[b * batch_size:(b + 1) * batch_size]))])
        if bar:
            bar.update(b + 1)
    if not outs:
        H = enc.hidden_size
        shape = (0, H) if pooling != "none" else (0, sequence_length, H)
        empty = np.zeros((0, sequence_length), np.int32)
        return {"embeddings": np.zeros(shape, np.float32), "token_ids": empty, "mask": empty}
    return {"embeddings": np.concatenate([o[0] for o in outs]).astype(np.float32),
            "token_ids": np.concatenate([o[1] for o in outs]).astype(np.int32),
            "mask": np.concatenate([o[2] for o in outs]).astype(np.int32)}


def _decode(path, rate):
    import tensorflow as tf

    from tfsent.audio.io import load_audio

    if not os.path.isfile(path):
        raise EmbedError(f"audio file {path}: not found")
    try:
        return np.asarray(load_audio(tf.constant(path), rate), np.float32)
    except Exception as err:  # decoding errors name the file
        raise EmbedError(f"audio file {path}: cannot decode ({str(err).splitlines()[0]})")


def embed_audio(encoder_dir, items, num_layers, layer, pooling, batch_size, progress):
    import tensorflow as tf

    from tfsent.encoders import load_audio_encoder

    if pooling == "cls":
        raise EmbedError("--pooling=cls is for text encoders; use mean or none for audio")
    enc = load_audio_encoder(encoder_dir, num_layers=num_layers)
    if not -(enc.num_layers + 1) <= layer <= enc.num_layers:
        raise EmbedError(f"--layer={layer} out of range for {enc.num_layers} layers")

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32),
                                  tf.TensorSpec([None, None], tf.int32)])
    def run(wav, wmask):
        out = enc.model({"waveform": wav, "waveform_mask": wmask})
        h = out["hidden_states"][:, layer]
        fmask = out["frame_mask"]
        if pooling == "mean":
            m = tf.cast(fmask, h.dtype)[:, :, None]
            h = tf.reduce_sum(h * m, 1) / tf.maximum(tf.reduce_sum(m, 1), 1.0)
        return h, fmask

    n_batches = (len(items) + batch_size - 1) // batch_size
    bar = _progress(n_batches, progress)
    embs, masks = [], []
    for b in range(n_batches):
        waves = [_decode(p, enc.sample_rate) for p in items[b * batch_size:(b + 1) * batch_size]]
        S = max(len(w) for w in waves)
        wav = np.zeros((len(waves), S), np.float32)
        wmask = np.zeros((len(waves), S), np.int32)
        for i, w in enumerate(waves):
            wav[i, :len(w)], wmask[i, :len(w)] = w, 1
        h, fm = run(wav, wmask)
        embs.append(h.numpy())
        masks.append(fm.numpy())
        if bar:
            bar.update(b + 1)
    H = enc.hidden_size
    if not embs:
        shape = (0, H) if pooling == "mean" else (0, 0, H)
        return {"embeddings": np.zeros(shape, np.float32), "mask": np.zeros((0, 0), np.int32)}
    T = max(m.shape[1] for m in masks)
    mask = np.concatenate([np.pad(m, [[0, 0], [0, T - m.shape[1]]]) for m in masks])
    if pooling == "none":
        emb = np.concatenate([np.pad(e, [[0, 0], [0, T - e.shape[1]], [0, 0]]) for e in embs])
    else:
        emb = np.concatenate(embs)
    return {"embeddings": emb.astype(np.float32), "mask": mask.astype(np.int32)}


def write_npz(path, arrays):
    """Atomic: write next to the target, then rename."""
    out_dir = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(out_dir, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    files.write_bytes(path, buf.getvalue())

