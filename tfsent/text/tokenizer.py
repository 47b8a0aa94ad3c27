"""In-graph text preprocessing: raw strings -> `{"token_ids", "padding_mask"}` (Contract 4).

All tokenization runs as TensorFlow / TensorFlow Text ops, so the same layer works eagerly, inside
`tf.data.Dataset.map`, and inside an exported SavedModel that is loaded in a process importing
only `tensorflow` and `tensorflow_text`.

Korean: the WordPiece path normalises to **NFC** and never applies NFD / accent stripping (NFD
splits Hangul syllables into jamo, so a Korean vocabulary would stop matching). Lowercasing is
off by default (Hangul has no case). Words are split on whitespace and punctuation; punctuation
marks are kept as tokens. `tfsent.text.vocab` trains vocabularies with the very same
pre-tokenizer (`pretokenize`), so training and inference see the same words.

Sequences are packed as `[CLS] tokens... [SEP] [PAD]...` to `sequence_length`. Longer texts are
truncated: the first `sequence_length - 2` word pieces are kept and `[SEP]` still closes the
sequence.
"""

from __future__ import annotations

import os
import unicodedata
import warnings
from typing import Sequence

import keras
import tensorflow as tf
import tensorflow_text as tf_text

__all__ = [
    "SPECIAL_TOKENS",
    "UNK_ID",
    "PAD_ID",
    "CLS_ID",
    "SEP_ID",
    "MASK_ID",
    "pretokenize",
    "load_vocabulary",
    "pack_sequences",
    "TextPreprocessor",
    "SubwordTextPreprocessor",
    "make_text_preprocessor",
]

# tfsent's reserved tokens, in id order (seed 000: [UNK]=0 [PAD]=1 [CLS]=2 [SEP]=3 [MASK]=4).
SPECIAL_TOKENS = ("[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]")
UNK_ID, PAD_ID, CLS_ID, SEP_ID, MASK_ID = range(5)

# RE2 patterns. Whitespace: `\s` is ASCII-only in RE2, so add Unicode separators and invisible
# control/format characters. Punctuation follows BERT: every non-alphanumeric printable ASCII
# character plus the Unicode punctuation classes. Hangul syllables/jamo are letters (\p{L}), so
# they are never split here.
_WHITESPACE_REGEX = r"\s|\p{Z}|\p{Cc}|\p{Cf}"
_PUNCTUATION_REGEX = r"[!-/]|[:-@]|[\[-`]|[{-~]|\p{P}"
_SPLIT_REGEX = _WHITESPACE_REGEX + "|" + _PUNCTUATION_REGEX


def pretokenize(text, lowercase: bool = False) -> tf.RaggedTensor:
    """Splits strings into words, in-graph: NFC, optional case folding, whitespace/punctuation.

    Args:
        text: string tensor `[B]`.
        lowercase: apply Unicode case folding (`tf_text.case_fold_utf8`, NFKC_Casefold). Off by
            default; no accent stripping is ever applied.

    Returns:
        `tf.RaggedTensor` of strings `[B, None]` (punctuation marks are kept as words).
    """
    text = tf.convert_to_tensor(text, dtype=tf.string)
    text = tf_text.normalize_utf8(text, "NFC")
    if lowercase:
        text = tf_text.case_fold_utf8(text)
    return tf_text.regex_split(
        text,
        delim_regex_pattern=_SPLIT_REGEX,
        keep_delim_regex_pattern=_PUNCTUATION_REGEX,
    )


def load_vocabulary(path: str) -> list[str]:
    """Reads a WordPiece vocabulary: UTF-8, one token per line, line number = id.

    Raises:
        ValueError: the file is missing, empty, has an empty line or a duplicate token (the
            message names the file and line). A token that is not NFC-normalised (e.g. Hangul
            split into jamo by NFD) gives a warning: it can never match.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"Vocabulary file not found: {path}")
    with open(path, encoding="utf-8") as f:
        tokens = f.read().splitlines()
    return _check_vocabulary(tokens, source=path)


def _check_vocabulary(tokens: Sequence[str], source: str = "vocabulary") -> list[str]:
    tokens = [str(t) for t in tokens]
    if not tokens:
        raise ValueError(f"{source}: the vocabulary is empty.")
    seen = {}
    nfd_warned = False
    for i, token in enumerate(tokens):
        if not token or token != token.strip():
            raise ValueError(
                f"{source}: line {i + 1} holds an empty or whitespace-padded token {token!r}."
            )
        if token in seen:
            raise ValueError(
                f"{source}: token {token!r} appears twice (lines {seen[token] + 1} and {i + 1})."
            )
        seen[token] = i
        if unicodedata.normalize("NFC", token) != token and not nfd_warned:
            nfd_warned = True
            warnings.warn(
                f"{source}: line {i + 1} token {token!r} is not NFC-normalised; inputs are "
                "NFC-normalised, so it can never match (was the vocabulary trained with accent "
                "stripping, which splits Hangul into jamo?)."
            )
    return tokens


def pack_sequences(token_ids, sequence_length: int, start_id: int, end_id: int, pad_id: int):
    """`[start] ids[:L-2] [end] [pad]...` -> `(token_ids, padding_mask)`, int32 `[B, L]`.

    Args:
        token_ids: int `tf.RaggedTensor` `[B, None]` without special tokens.
        sequence_length: L, the output length (>= 2).
        start_id, end_id, pad_id: ids of the start ([CLS]), end ([SEP]) and padding tokens.
    """
    token_ids = tf.cast(token_ids, tf.int32)
    batch = token_ids.nrows(out_type=tf.int32)
    body = token_ids[:, : sequence_length - 2]
    start = tf.RaggedTensor.from_tensor(tf.fill(tf.stack([batch, 1]), tf.constant(start_id, tf.int32)))
    end = tf.RaggedTensor.from_tensor(tf.fill(tf.stack([batch, 1]), tf.constant(end_id, tf.int32)))
    packed = tf.concat([start, body, end], axis=1)
    ids = packed.to_tensor(default_value=pad_id, shape=[None, sequence_length])
    mask = tf.ones_like(packed).to_tensor(default_value=0, shape=[None, sequence_length])
    return ids, mask


class _PreprocessorBase(keras.layers.Layer):
    """Shared plumbing: string inputs (never converted to floats), packing, output spec."""

    def __init__(self, sequence_length: int, **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        if int(sequence_length) < 2:
            raise ValueError(
                f"sequence_length must be >= 2 (room for [CLS] and [SEP]); got {sequence_length}."
            )
        self.sequence_length = int(sequence_length)
        # Keep tf.string inputs as they are (Keras would otherwise try to convert them).
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

    def tokenize(self, inputs) -> tf.RaggedTensor:
        """Strings `[B]` -> int32 ragged ids `[B, None]`, no special tokens, no truncation."""
        raise NotImplementedError

    def call(self, inputs):
        inputs = tf.convert_to_tensor(inputs, dtype=tf.string)
        scalar = inputs.shape.rank == 0
        if scalar:
            inputs = inputs[tf.newaxis]
        elif inputs.shape.rank == 2 and inputs.shape[-1] == 1:
            inputs = tf.squeeze(inputs, -1)  # Keras Input(shape=(1,), dtype="string")
        elif inputs.shape.rank != 1:
            raise ValueError(f"{self.name}: expected strings of shape [B]; got {inputs.shape}.")
        ids, mask = pack_sequences(
            self.tokenize(inputs), self.sequence_length, self.start_id, self.end_id, self.pad_id
        )
        if scalar:
            ids, mask = ids[0], mask[0]
        return {"token_ids": ids, "padding_mask": mask}

    def compute_output_spec(self, inputs):
        shape = tuple(inputs.shape)
        if len(shape) == 2 and shape[-1] == 1:
            shape = shape[:1]
        out_shape = shape + (self.sequence_length,)
        return {
            "token_ids": keras.KerasTensor(out_shape, dtype="int32"),
            "padding_mask": keras.KerasTensor(out_shape, dtype="int32"),
        }


@keras.saving.register_keras_serializable(package="tfsent")
class TextPreprocessor(_PreprocessorBase):
    """WordPiece text preprocessor: strings `[B]` -> `{"token_ids", "padding_mask"}` int32 `[B, L]`.

    Pipeline (all in-graph): NFC normalisation -> optional case folding -> split on whitespace and
    punctuation (`pretokenize`) -> `tf_text.FastWordpieceTokenizer` (greedy longest match, `##`
    continuation pieces, a word that cannot be covered becomes `[UNK]`) -> `[CLS] ... [SEP]`,
    truncated to `sequence_length - 2` pieces and padded with `[PAD]`. `padding_mask` is 1 for
    real tokens (including `[CLS]`/`[SEP]`). No NFD and no accent stripping: Hangul stays whole.

    The vocabulary is stored in the layer config, and the tokenizer model lives in the graph as a
    constant, so the layer survives `tf.saved_model.save` inside a model or `tf.Module` and the
    result loads with only `tensorflow` + `tensorflow_text` imported.

    Args:
        vocabulary: path of a vocabulary file (one token per line, line number = id) or a list
            of tokens.
        sequence_length: L, output length including `[CLS]` and `[SEP]`.
        lowercase: case-fold the input (off by default; Hangul has no case).
        unk_token, pad_token, cls_token, sep_token: special tokens; each must be in the
            vocabulary (tfsent's trained vocabularies put them at ids 0, 1, 2, 3).
        suffix_indicator: prefix of word-continuation pieces.
        max_bytes_per_word: longer words become `[UNK]`.

    Example:

    ```python
    pre = TextPreprocessor("runs/vocab/vocab.txt", sequence_length=32)
    out = pre(tf.constant(["오늘 정말 행복해요!"]))
    out["token_ids"].shape  # (1, 32)
    ```
    """

    def __init__(
        self,
        vocabulary,
        sequence_length: int = 64,
        lowercase: bool = False,
        unk_token: str = "[UNK]",
        pad_token: str = "[PAD]",
        cls_token: str = "[CLS]",
        sep_token: str = "[SEP]",
        suffix_indicator: str = "##",
        max_bytes_per_word: int = 100,
        **kwargs,
    ):
        super().__init__(sequence_length, **kwargs)
        if isinstance(vocabulary, (str, os.PathLike)):
            source = os.fspath(vocabulary)
            vocabulary = load_vocabulary(source)
        else:
            source = "vocabulary"
            vocabulary = _check_vocabulary(list(vocabulary), source)
        self.vocabulary = vocabulary
        self.lowercase = bool(lowercase)
        self.unk_token, self.pad_token = unk_token, pad_token
        self.cls_token, self.sep_token = cls_token, sep_token
        self.suffix_indicator = suffix_indicator
        self.max_bytes_per_word = int(max_bytes_per_word)
        index = {token: i for i, token in enumerate(vocabulary)}
        for role, token in (
            ("unk_token", unk_token),
            ("pad_token", pad_token),
            ("cls_token", cls_token),
            ("sep_token", sep_token),
        ):
            if token not in index:
                raise ValueError(f"{source}: {role} {token!r} is not in the vocabulary.")
        self.unk_id, self.pad_id = index[unk_token], index[pad_token]
        self.start_id, self.end_id = index[cls_token], index[sep_token]
        self._token_index = index
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=vocabulary,
            suffix_indicator=suffix_indicator,
            max_bytes_per_word=self.max_bytes_per_word,
            token_out_type=tf.int32,
            unknown_token=unk_token,
            no_pretokenization=True,
            support_detokenization=False,
        )

    # === Tokenization ===

    def tokenize(self, inputs) -> tf.RaggedTensor:
        words = pretokenize(inputs, lowercase=self.lowercase)
        return self._wordpiece.tokenize(words).merge_dims(-2, -1)

    def vocabulary_size(self) -> int:
        return len(self.vocabulary)

    def token_to_id(self, token: str) -> int:
        if token not in self._token_index:
            raise KeyError(f"Token {token!r} is not in the vocabulary.")
        return self._token_index[token]

    def id_to_token(self, token_id: int) -> str:
        return self.vocabulary[int(token_id)]

    # === Config ===

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary": list(self.vocabulary),
                "sequence_length": self.sequence_length,
                "lowercase": self.lowercase,
                "unk_token": self.unk_token,
                "pad_token": self.pad_token,
                "cls_token": self.cls_token,
                "sep_token": self.sep_token,
                "suffix_indicator": self.suffix_indicator,
                "max_bytes_per_word": self.max_bytes_per_word,
            }
        )
        return config


# Special-token names tried, in order, for SentencePiece / BPE models (BERT-style first, then
# RoBERTa / XLM-R style).
_SUBWORD_SPECIALS = {
    "start": ("[CLS]", "<s>", "<cls>"),
    "end": ("[SEP]", "</s>", "<sep>"),
    "pad": ("[PAD]", "<pad>"),
}


@keras.saving.register_keras_serializable(package="tfsent")
class SubwordTextPreprocessor(_PreprocessorBase):
    """SentencePiece or byte-level BPE preprocessor through keras-hub tokenizers, same contract.

    Output: `{"token_ids", "padding_mask"}` int32 `[B, L]` packed as `start ... end pad...`,
    truncated to `L - 2` pieces. The start/end/pad tokens default to the first of
    `[CLS]/<s>/<cls>`, `[SEP]/</s>/<sep>`, `[PAD]/<pad>` found in the model's vocabulary.

    Args:
        kind: `"sentencepiece"` (path = a `.model` file, e.g. KoBERT's) or `"bpe"` (path = a
            folder holding `vocab.json` and `merges.txt`, the Hugging Face byte-level BPE layout).
        path: the model file or folder.
        sequence_length: L.
        start_token, end_token, pad_token: override the special tokens.
        add_prefix_space: BPE only; prepend a space like RoBERTa tokenizers do.

    Example:

    ```python
    pre = SubwordTextPreprocessor("sentencepiece", "kobert/tokenizer.model", sequence_length=64)
    pre(tf.constant(["안녕하세요"]))["token_ids"]
    ```
    """

    def __init__(
        self,
        kind: str,
        path: str,
        sequence_length: int = 64,
        start_token: str | None = None,
        end_token: str | None = None,
        pad_token: str | None = None,
        add_prefix_space: bool = False,
        **kwargs,
    ):
        super().__init__(sequence_length, **kwargs)
        import keras_hub  # imported lazily: only this class needs it

        self.kind, self.model_path = kind, os.fspath(path)
        self.add_prefix_space = bool(add_prefix_space)
        if kind == "sentencepiece":
            if not os.path.isfile(self.model_path):
                raise ValueError(f"SentencePiece model file not found: {self.model_path}")
            self._tokenizer = keras_hub.tokenizers.SentencePieceTokenizer(
                proto=self.model_path, dtype="int32", _allow_python_workflow=False
            )
        elif kind == "bpe":
            vocab_file = os.path.join(self.model_path, "vocab.json")
            merges_file = os.path.join(self.model_path, "merges.txt")
            for f in (vocab_file, merges_file):
                if not os.path.isfile(f):
                    raise ValueError(f"Byte-level BPE needs {f} (vocab.json + merges.txt).")
            self._tokenizer = keras_hub.tokenizers.BytePairTokenizer(
                vocabulary=vocab_file,
                merges=merges_file,
                add_prefix_space=self.add_prefix_space,
                dtype="int32",
                _allow_python_workflow=False,
            )
        else:
            raise ValueError(f"Unknown subword kind {kind!r}; expected 'sentencepiece' or 'bpe'.")
        vocab = self._tokenizer.get_vocabulary()
        index = {token: i for i, token in enumerate(vocab)}
        chosen = {}
        for role, override in (("start", start_token), ("end", end_token), ("pad", pad_token)):
            candidates = (override,) if override is not None else _SUBWORD_SPECIALS[role]
            found = [t for t in candidates if t in index]
            if not found:
                raise ValueError(
                    f"{self.model_path}: no {role} token among {list(candidates)} in the vocabulary; "
                    f"pass {role}_token=..."
                )
            chosen[role] = found[0]
        self.start_token, self.end_token, self.pad_token = (
            chosen["start"],
            chosen["end"],
            chosen["pad"],
        )
        self.start_id = index[self.start_token]
        self.end_id = index[self.end_token]
        self.pad_id = index[self.pad_token]
        self._vocab_size = len(vocab)

    def tokenize(self, inputs) -> tf.RaggedTensor:
        inputs = tf.convert_to_tensor(inputs, tf.string)
        if tf.executing_eagerly():
            # keras-hub turns eager ragged outputs into Python lists; tracing keeps the TF path.
            # Cached in __dict__ so that Keras/TF tracking (and SavedModels) ignore it.
            fn = self.__dict__.get("_eager_tokenize")
            if fn is None:
                fn = tf.function(
                    self._tokenize_graph,
                    input_signature=[tf.TensorSpec([None], tf.string)],
                    autograph=False,
                )
                self.__dict__["_eager_tokenize"] = fn
            return fn(inputs)
        return self._tokenize_graph(inputs)

    def _tokenize_graph(self, inputs) -> tf.RaggedTensor:
        inputs = tf_text.normalize_utf8(inputs, "NFC")
        ids = self._tokenizer.tokenize(inputs)
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(ids)
        return tf.cast(ids, tf.int32)

    def vocabulary_size(self) -> int:
        return self._vocab_size

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kind": self.kind,
                "path": self.model_path,
                "sequence_length": self.sequence_length,
                "start_token": self.start_token,
                "end_token": self.end_token,
                "pad_token": self.pad_token,
                "add_prefix_space": self.add_prefix_space,
            }
        )
        return config


def make_text_preprocessor(kind: str, path: str, sequence_length: int, **kwargs):
    """Builds the text preprocessor for a tokenizer kind; all kinds share the output contract.

    Args:
        kind: `"wordpiece"` (path = vocabulary file, or a folder holding `vocab.txt`),
            `"sentencepiece"` (path = `.model` file) or `"bpe"` (folder with `vocab.json` +
            `merges.txt`).
        path: see `kind`.
        sequence_length: L.
        **kwargs: passed to `TextPreprocessor` / `SubwordTextPreprocessor`.
    """
    if kind == "wordpiece":
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, "vocab.txt")
        return TextPreprocessor(path, sequence_length=sequence_length, **kwargs)
    if kind in ("sentencepiece", "bpe"):
        return SubwordTextPreprocessor(kind, path, sequence_length=sequence_length, **kwargs)
    raise ValueError(
        f"Unknown tokenizer kind {kind!r}; expected one of 'wordpiece', 'sentencepiece', 'bpe'."
    )
