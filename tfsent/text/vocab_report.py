"""Train a corpus WordPiece vocabulary on a manifest's training split and report token lengths
(the library behind bin/train_tokenizer)."""

from __future__ import annotations

import io
import json
import os

from tfsent.core import files

PERCENTILES = (50, 75, 90, 95, 99)
REPORT_LENGTHS = (32, 64, 128)

def read_texts(manifest_path: str, split: str) -> list[str]:
    """The `text` column of the rows whose `split` equals `split` (as strings)."""
    from tfsent.corpus import manifest as manifest_lib

    path = manifest_path
    if os.path.isdir(path):
        path = os.path.join(path, "manifest.csv")
    if not os.path.isfile(path):
        raise manifest_lib.ManifestNotFound(f"no manifest at {path} (run bin/prepare first)")
    sidecar = os.path.join(os.path.dirname(os.path.abspath(path)), "manifest.json")
    if os.path.exists(sidecar):
        df, _ = manifest_lib.read_manifest(path)
    else:  # a plain CSV with `text` and `split` columns
        import pandas as pd

        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    for column in ("text", "split"):
        if column not in df.columns:
            raise manifest_lib.ManifestError(f"{path}: no '{column}' column (columns: {list(df.columns)})")
    splits = df["split"].astype(str)
    texts = df.loc[splits == str(split), "text"].astype(str).tolist()
    if not texts:
        raise manifest_lib.ManifestError(
            f"{path}: no rows with split == {split!r} (splits present: {sorted(set(splits))})"
        )
    return texts


def token_length_report(preprocessor, texts, batch_size: int = 512) -> tuple[dict, "object"]:
    """Token lengths (with [CLS]/[SEP], untruncated) and their statistics."""
    import numpy as np
    import tensorflow as tf

    tokenize = tf.function(preprocessor.tokenize)
    lengths, unk, total = [], 0, 0
    for start in range(0, len(texts), batch_size):
        ids = tokenize(tf.constant(texts[start : start + batch_size], dtype=tf.string))
        lengths.append(ids.row_lengths().numpy() + 2)
        flat = ids.flat_values.numpy()
        unk += int(np.sum(flat == preprocessor.unk_id))
        total += int(flat.size)
    lengths = np.concatenate(lengths)
    stats = {
        "count": int(lengths.size),
        "mean": float(np.mean(lengths)),
        "std": float(np.std(lengths)),
        "min": int(np.min(lengths)),
        "max": int(np.max(lengths)),
        **{f"p{q}": float(np.percentile(lengths, q)) for q in PERCENTILES},
        "unk_rate": float(unk / total) if total else 0.0,
        "fraction_longer_than": {str(n): float(np.mean(lengths > n)) for n in REPORT_LENGTHS},
        "includes_special_tokens": True,
    }
    return stats, lengths


def plot_histogram(lengths, stats: dict, path: str) -> None:
    """Histogram of token lengths with mean and p75 marked, written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    bins = min(100, max(10, int(stats["max"]) - int(stats["min"]) + 1))
    ax.hist(lengths, bins=bins, color="tab:blue", alpha=0.8)
    ax.axvline(stats["mean"], color="tab:red", label=f"mean {stats['mean']:.1f}")
    ax.axvline(stats["p75"], color="tab:orange", linestyle="--", label=f"p75 {stats['p75']:.0f}")
    ax.set_xlabel("tokens per sentence (with [CLS]/[SEP])")
    ax.set_ylabel("sentences")
    ax.set_title(
        f"{stats['count']} sentences: mean {stats['mean']:.1f}, std {stats['std']:.1f}, "
        f"max {stats['max']}"
    )
    ax.legend()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    files.write_bytes(path, buf.getvalue())


def train_tokenizer(manifest: str, vocab_size: int = 4096, out: str | None = None,
                    train_split: str = "train", lowercase: bool = False, min_frequency: int = 2,
                    max_unique_chars: int = 1000) -> dict:
    """Trains, writes `vocab.txt`, `token_lengths.json`, `token_lengths.png`; returns the report."""
    texts = read_texts(manifest, train_split)  # before importing TensorFlow: fail fast

    from tfsent.text.tokenizer import TextPreprocessor
    from tfsent.text.vocab import train_wordpiece_vocabulary, write_vocabulary

    if out is None:
        out = manifest if os.path.isdir(manifest) else os.path.dirname(os.path.abspath(manifest))
    os.makedirs(out, exist_ok=True)
    tokens = train_wordpiece_vocabulary(
        texts, vocab_size, lowercase=lowercase, min_frequency=min_frequency,
        max_unique_chars=max_unique_chars,
    )
    vocab_path = write_vocabulary(tokens, os.path.join(out, "vocab.txt"))
    preprocessor = TextPreprocessor(tokens, sequence_length=2, lowercase=lowercase)
    stats, lengths = token_length_report(preprocessor, texts)
    report = {
        "manifest": os.path.abspath(manifest),
        "split": train_split,
        "vocab_size": len(tokens),
        "vocab_size_requested": vocab_size,
        "lowercase": lowercase,
        "token_lengths": stats,
    }
    files.write_bytes(os.path.join(out, "token_lengths.json"),
                  (json.dumps(report, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    plot_histogram(lengths, stats, os.path.join(out, "token_lengths.png"))
    report["vocab_path"] = vocab_path
    return report

