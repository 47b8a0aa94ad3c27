"""Corpus WordPiece vocabulary training (seed 000: 4096 tokens re-trained on the corpus).

Words are produced by `tfsent.text.tokenizer.pretokenize` (NFC, no accent stripping, split on
whitespace and punctuation) -- the same pre-tokenizer `TextPreprocessor` uses at inference, so a
trained vocabulary always matches what the model sees -- and counted; the WordPiece vocabulary is
then learned with TensorFlow Text's learner (`tensorflow_text.tools.wordpiece_vocab`, the
algorithm behind `bert_vocab_from_dataset`), fully offline.

Reserved tokens come first, in order: `[UNK]=0, [PAD]=1, [CLS]=2, [SEP]=3, [MASK]=4`; then every
allowed single character and its `##` continuation (so any word made of allowed characters can be
tokenized), then the learned pieces by decreasing frequency.
"""

from __future__ import annotations

import collections
import os

import warnings
from typing import Iterable, Sequence

import tensorflow as tf
from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

from tfsent.core import files
from tfsent.text.tokenizer import SPECIAL_TOKENS, pretokenize

__all__ = ["count_words", "train_wordpiece_vocabulary", "write_vocabulary"]


def count_words(
    texts: Iterable[str], lowercase: bool = False, batch_size: int = 1024
) -> collections.Counter:
    """Counts the words `pretokenize` produces over `texts` (batched, in TensorFlow)."""
    counts: collections.Counter = collections.Counter()
    fn = tf.function(lambda t: pretokenize(t, lowercase=lowercase).flat_values)
    batch: list[str] = []

    def flush():
        words = fn(tf.constant(batch, dtype=tf.string)).numpy()
        counts.update(w.decode("utf-8") for w in words)
        batch.clear()

    for text in texts:
        if not isinstance(text, str):
            raise ValueError(f"Texts must be strings; got {type(text).__name__}: {text!r}.")
        batch.append(text)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return counts


def train_wordpiece_vocabulary(
    texts: Iterable[str],
    vocab_size: int = 4096,
    *,
    reserved_tokens: Sequence[str] = SPECIAL_TOKENS,
    lowercase: bool = False,
    min_frequency: int = 2,
    max_unique_chars: int = 1000,
    max_token_length: int = 50,
    num_iterations: int = 4,
    suffix_indicator: str = "##",
) -> list[str]:
    """Learns a WordPiece vocabulary of at most `vocab_size` tokens from `texts`.

    Args:
        texts: training sentences (pass the training split only).
        vocab_size: maximum vocabulary size including reserved tokens. The learner searches a
            frequency threshold that lands within 5% below it; a small corpus may give fewer.
        reserved_tokens: placed first, in order (default `[UNK] [PAD] [CLS] [SEP] [MASK]`).
        lowercase: case-fold before counting (must match `TextPreprocessor(lowercase=...)`).
        min_frequency: lower bound of the searched count threshold for a piece.
        max_unique_chars: keep the most frequent characters only; words with other characters
            are not learned from and become `[UNK]` at inference.
        max_token_length: longer words are ignored during learning.
        num_iterations: learner refinement passes.
        suffix_indicator: prefix of continuation pieces.

    Returns:
        The vocabulary, a list of tokens (index = id).

    Example:

    ```python
    tokens = train_wordpiece_vocabulary(df.loc[df.split == "train", "text"], vocab_size=4096)
    write_vocabulary(tokens, "runs/vocab/vocab.txt")
    ```
    """
    reserved_tokens = list(reserved_tokens)
    if vocab_size <= len(reserved_tokens):
        raise ValueError(
            f"vocab_size={vocab_size} leaves no room beyond the {len(reserved_tokens)} reserved tokens."
        )
    counts = count_words(texts, lowercase=lowercase)
    if not counts:
        raise ValueError("No words to learn from: the texts are empty.")
    vocab = learner.learn(
        sorted(counts.items()),  # sorted: the result must not depend on input order
        vocab_size,
        reserved_tokens,
        upper_thresh=int(1e7),
        lower_thresh=min_frequency,
        num_iterations=num_iterations,
        max_input_tokens=-1,
        max_token_length=max_token_length,
        max_unique_chars=max_unique_chars,
        include_joiner_token=True,
        joiner=suffix_indicator,
    )
    vocab = [t for t in vocab if t]
    if len(vocab) > vocab_size:
        vocab = _trim(vocab, vocab_size, reserved_tokens, suffix_indicator)
    return vocab


def _trim(vocab, vocab_size, reserved_tokens, suffix_indicator):
    """Drops the least frequent multi-character pieces; characters (and `##` forms) stay."""
    reserved = set(reserved_tokens)

    def protected(token):
        if token in reserved:
            return True
        if token.startswith(suffix_indicator):
            token = token[len(suffix_indicator) :]
        return len(token) == 1

    keep = [t for t in vocab if protected(t)]
    if len(keep) > vocab_size:
        raise ValueError(
            f"vocab_size={vocab_size} is smaller than the {len(keep)} reserved and single-character "
            "tokens; raise vocab_size or lower max_unique_chars."
        )
    budget = vocab_size - len(keep)
    # The learner lists pieces by decreasing count, so the first `budget` are the most frequent.
    extra = [t for t in vocab if not protected(t)][:budget]
    chosen = set(keep) | set(extra)
    warnings.warn(f"Learned {len(vocab)} tokens; trimmed to vocab_size={vocab_size}.")
    return [t for t in vocab if t in chosen]


def write_vocabulary(tokens: Sequence[str], path: str) -> str:
    """Writes tokens one per line (UTF-8, line number = id), atomically (temp file + rename)."""
    path = os.fspath(path)
    tokens = list(tokens)
    for i, token in enumerate(tokens):
        if not token or "\n" in token or "\r" in token:
            raise ValueError(f"Cannot write token {i} ({token!r}) to {path}: empty or multi-line.")
    if len(set(tokens)) != len(tokens):
        dup = [t for t, c in collections.Counter(tokens).items() if c > 1][0]
        raise ValueError(f"Cannot write {path}: token {dup!r} appears twice.")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    files.write_text(path, "\n".join(tokens) + "\n")
    return path

