"""In-graph tokenizers that reproduce Hugging Face's BERT-family tokenizers.

Both preprocessors are Keras layers mapping strings `[B]` to
`{"token_ids", "padding_mask"}` int32 `[B, L]` with TF core + tensorflow-text ops
only, so they run inside `tf.data` and inside an exported SavedModel.

- `WordPiecePreprocessor`: `BertTokenizer` / `ElectraTokenizer` /
  `DistilBertTokenizer` semantics (klue/roberta-base, KoELECTRA, BERT): clean
  text, split CJK ideographs, optional accent stripping (NFD, which splits Hangul
  into jamo -- done only when the checkpoint asks for it, as Hugging Face does),
  optional lower-casing, split on whitespace and punctuation, greedy WordPiece
  with `max_input_chars_per_word=100`.
- `SentencePiecePreprocessor`: KoBERT (`KoBERTTokenizer`, an `XLNetTokenizer`
  subclass) and ALBERT semantics: collapse whitespace, ```` / `''` -> `"`,
  NFKD + drop combining marks unless `keep_accents`, optional lower-casing, then
  the SentencePiece model with its own normaliser (which recomposes Hangul).

Sequences are packed BERT-style: `[CLS] pieces[:L-2] [SEP]`, right-padded with
the pad id.
"""

import base64

import keras
import tensorflow as tf
import tensorflow_text as tf_text

# Hugging Face's `_is_chinese_char` ranges (Hangul is not among them).
_CJK = (
    r"\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}"
    r"\x{2B740}-\x{2B81F}\x{2B920}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}"
)
# ASCII punctuation and symbols + Unicode punctuation (`_is_punctuation`).
_PUNCT = r"[!-/:-@\[-`{-~\p{P}]"
# `_is_control` minus tab/newline/carriage return, which become spaces first.
_CONTROL = r"[\x{0}\x{FFFD}\p{Cc}\p{Cf}\p{Co}]"
_WHITESPACE = r"[\s\p{Z}]+"


def _pack(ids, sequence_length, cls_id, sep_id, pad_id):
    """Ragged ids [B, None] -> (token_ids, padding_mask) int32 [B, L]."""
    ids = tf.cast(ids, tf.int32)[:, : sequence_length - 2]
    batch = ids.nrows()
    cls = tf.fill([batch, 1], tf.constant(cls_id, tf.int32))
    sep = tf.fill([batch, 1], tf.constant(sep_id, tf.int32))
    packed = tf.concat([cls, ids, sep], axis=1)
    shape = tf.stack([batch, tf.constant(sequence_length, tf.int64)])
    token_ids = packed.to_tensor(default_value=pad_id, shape=shape)
    padding_mask = tf.ones_like(packed).to_tensor(default_value=0, shape=shape)
    return {"token_ids": token_ids, "padding_mask": padding_mask}


def _as_string_batch(inputs):
    inputs = tf.convert_to_tensor(inputs)
    if inputs.dtype != tf.string:
        raise TypeError(f"Expected a batch of strings, got dtype {inputs.dtype}.")
    if inputs.shape.rank == 0:
        inputs = inputs[None]
    elif inputs.shape.rank == 2:
        inputs = tf.squeeze(inputs, axis=-1)
    return inputs


@keras.saving.register_keras_serializable(package="tfsent")
class WordPiecePreprocessor(keras.layers.Layer):
    """Strings -> WordPiece ids, as Hugging Face's `BertTokenizer` does.

    Args:
        vocabulary: list of tokens (the lines of `vocab.txt`; index = id).
        sequence_length: int, length L of the packed output (with [CLS]/[SEP]).
        lowercase: bool, Hugging Face's `do_lower_case`.
        strip_accents: bool or None; None follows `lowercase` (Hugging Face's
            rule). Stripping accents NFD-splits Hangul into jamo.
        tokenize_chinese_chars: bool, split CJK ideographs into single tokens.
        cls_token, sep_token, pad_token, unk_token: special token strings.
        max_input_chars_per_word: longer words become the unknown token.

    Example:
    >>> pre = WordPiecePreprocessor(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "안녕",
    ...                              "##하세요"], sequence_length=6)
    >>> pre(tf.constant(["안녕하세요"]))["token_ids"].numpy().tolist()
    [[2, 4, 5, 3, 0, 0]]
    """

    def __init__(
        self,
        vocabulary,
        sequence_length=64,
        lowercase=False,
        strip_accents=None,
        tokenize_chinese_chars=True,
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        unk_token="[UNK]",
        max_input_chars_per_word=100,
        **kwargs,
    ):
        kwargs.setdefault("trainable", False)
        kwargs.setdefault("dtype", "int32")
        super().__init__(**kwargs)
        self.vocabulary = list(vocabulary)
        index = {}
        for i, token in enumerate(self.vocabulary):
            index.setdefault(token, i)
        for name, token in [("cls_token", cls_token), ("sep_token", sep_token),
                            ("pad_token", pad_token), ("unk_token", unk_token)]:
            if token not in index:
                raise ValueError(
                    f"{name} {token!r} is not in the vocabulary "
                    f"({len(self.vocabulary)} tokens); check tokenizer_config.json."
                )
        if sequence_length < 2:
            raise ValueError(f"sequence_length must be >= 2, got {sequence_length}.")
        self.sequence_length = int(sequence_length)
        self.lowercase = bool(lowercase)
        self.strip_accents = strip_accents
        self.tokenize_chinese_chars = bool(tokenize_chinese_chars)
        self.cls_token, self.sep_token = cls_token, sep_token
        self.pad_token, self.unk_token = pad_token, unk_token
        self.max_input_chars_per_word = int(max_input_chars_per_word)
        self.cls_id, self.sep_id = index[cls_token], index[sep_token]
        self.pad_id, self.unk_id = index[pad_token], index[unk_token]
        # FastWordpiece keeps its model in a constant tensor: no resource to track.
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=self.vocabulary,
            suffix_indicator="##",
            max_bytes_per_word=4 * self.max_input_chars_per_word + 4,
            token_out_type=tf.int32,
            unknown_token=unk_token,
            no_pretokenization=True,
            support_detokenization=False,
        )

    def words(self, inputs):
        """Basic tokenization: strings [B] -> ragged words [B, None]."""
        x = _as_string_batch(inputs)
        x = tf.strings.regex_replace(x, r"[\t\n\r]", " ")
        x = tf.strings.regex_replace(x, _CONTROL, "")
        if self.tokenize_chinese_chars:
            x = tf.strings.regex_replace(x, f"([{_CJK}])", r" \1 ")
        strip = self.lowercase if self.strip_accents is None else self.strip_accents
        if strip:
            x = tf_text.normalize_utf8(x, "NFD")
            x = tf.strings.regex_replace(x, r"\p{Mn}", "")
        if self.lowercase:
            x = tf.strings.lower(x, encoding="utf-8")
        words = tf_text.regex_split(
            x, delim_regex_pattern=f"{_WHITESPACE}|{_PUNCT}",
            keep_delim_regex_pattern=_PUNCT,
        )
        too_long = tf.strings.length(words.flat_values, unit="UTF8_CHAR") > (
            self.max_input_chars_per_word
        )
        return words.with_flat_values(
            tf.where(too_long, self.unk_token, words.flat_values)
        )

    def tokenize(self, inputs):
        """Strings [B] -> ragged ids [B, None] without special tokens."""
        words = self.words(inputs)
        pieces = self._wordpiece.tokenize(words.flat_values)
        return words.with_flat_values(pieces).merge_dims(1, 2)

    def call(self, inputs):
        return _pack(self.tokenize(inputs), self.sequence_length,
                     self.cls_id, self.sep_id, self.pad_id)

    def compute_output_spec(self, inputs):
        spec = keras.KerasTensor((inputs.shape[0], self.sequence_length), "int32")
        return {"token_ids": spec, "padding_mask": spec}

    def get_config(self):
        config = super().get_config()
        config.update({
            "vocabulary": self.vocabulary,
            "sequence_length": self.sequence_length,
            "lowercase": self.lowercase,
            "strip_accents": self.strip_accents,
            "tokenize_chinese_chars": self.tokenize_chinese_chars,
            "cls_token": self.cls_token,
            "sep_token": self.sep_token,
            "pad_token": self.pad_token,
            "unk_token": self.unk_token,
            "max_input_chars_per_word": self.max_input_chars_per_word,
        })
        return config


@keras.saving.register_keras_serializable(package="tfsent")
class SentencePiecePreprocessor(keras.layers.Layer):
    """Strings -> SentencePiece ids, as KoBERT's / ALBERT's tokenizers do.

    Args:
        proto: bytes of the SentencePiece model (`spiece.model`).
        sequence_length: int, length L of the packed output.
        keep_accents: bool; when False, NFKD + drop combining marks first (the
            model's own normaliser recomposes Hangul afterwards).
        lowercase: bool, `do_lower_case`.
        cls_token, sep_token, pad_token: special pieces (must be in the model).

    Example:
    >>> pre = SentencePiecePreprocessor(open("spiece.model", "rb").read(),
    ...                                 sequence_length=32)  # doctest: +SKIP
    >>> pre(tf.constant(["오늘 정말 행복해요!"]))  # doctest: +SKIP
    """

    def __init__(
        self,
        proto,
        sequence_length=64,
        keep_accents=False,
        lowercase=False,
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        **kwargs,
    ):
        kwargs.setdefault("trainable", False)
        kwargs.setdefault("dtype", "int32")
        super().__init__(**kwargs)
        if isinstance(proto, str):
            proto = base64.b64decode(proto)
        self.proto = bytes(proto)
        if sequence_length < 2:
            raise ValueError(f"sequence_length must be >= 2, got {sequence_length}.")
        self.sequence_length = int(sequence_length)
        self.keep_accents = bool(keep_accents)
        self.lowercase = bool(lowercase)
        self.cls_token, self.sep_token, self.pad_token = cls_token, sep_token, pad_token
        self._sp = tf_text.SentencepieceTokenizer(model=self.proto, out_type=tf.int32)
        ids = self._sp.string_to_id(tf.constant([cls_token, sep_token, pad_token])).numpy()
        unk = int(self._sp.string_to_id(tf.constant("<definitely-not-a-piece>")).numpy())
        for token, i in zip((cls_token, sep_token, pad_token), ids):
            if int(i) == unk and token != self._sp.id_to_string(unk).numpy().decode():
                raise ValueError(
                    f"Special token {token!r} is not a piece of the SentencePiece "
                    "model; check tokenizer_config.json / special_tokens_map.json."
                )
        self.cls_id, self.sep_id, self.pad_id = (int(i) for i in ids)

    def normalize(self, inputs):
        x = _as_string_batch(inputs)
        x = tf.strings.regex_replace(x, r"\s+", " ")
        x = tf.strings.strip(x)
        x = tf.strings.regex_replace(x, "``|''", '"')
        if not self.keep_accents:
            x = tf_text.normalize_utf8(x, "NFKD")
            x = tf.strings.regex_replace(x, r"\p{M}", "")
        if self.lowercase:
            x = tf.strings.lower(x, encoding="utf-8")
        return x

    def tokenize(self, inputs):
        """Strings [B] -> ragged ids [B, None] without special tokens."""
        return self._sp.tokenize(self.normalize(inputs))

    def call(self, inputs):
        return _pack(self.tokenize(inputs), self.sequence_length,
                     self.cls_id, self.sep_id, self.pad_id)

    def compute_output_spec(self, inputs):
        spec = keras.KerasTensor((inputs.shape[0], self.sequence_length), "int32")
        return {"token_ids": spec, "padding_mask": spec}

    def get_config(self):
        config = super().get_config()
        config.update({
            "proto": base64.b64encode(self.proto).decode("ascii"),
            "sequence_length": self.sequence_length,
            "keep_accents": self.keep_accents,
            "lowercase": self.lowercase,
            "cls_token": self.cls_token,
            "sep_token": self.sep_token,
            "pad_token": self.pad_token,
        })
        return config
