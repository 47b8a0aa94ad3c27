"""Pretrained text encoders (BERT, KoBERT, RoBERTa/KLUE, ELECTRA/KoELECTRA,
DistilBERT, ALBERT) from local Hugging Face checkpoint folders.

    enc = load_text_encoder("/models/klue-roberta-base", sequence_length=64)
    feats = enc.preprocessor(tf.constant(["오늘 정말 행복해요!"]))
    out = enc.backbone(feats)  # {"sequence_output": [B,L,H], "pooled_output": [B,H]}

The backbone is one Keras functional model for all families, built from
keras-hub layers (`TransformerEncoder`, `PositionEmbedding`) and configured from
`config.json` (activation, layer-norm epsilon, embedding projection, ALBERT
layer sharing). The keras-hub backbone classes are not used as such because they
hard-code the tanh GELU (`BertBackbone`, `ElectraBackbone`, `AlbertBackbone`) and
the layer-norm epsilon, which breaks parity with Hugging Face's exact GELU
(BERT, ELECTRA) and per-checkpoint epsilons; keras-hub's RoBERTa converter also
drops `token_type_embeddings`. Here the single-segment token-type row 0 is folded
into the position embeddings for every family that has one, so the backbone
takes only `token_ids` + `padding_mask` (sentence pairs are not supported).

`pooled_output` is the checkpoint's pooler (tanh dense on [CLS]) where it has
one (`BertModel`, `RobertaModel`, `AlbertModel`); otherwise (ELECTRA,
DistilBERT, `*ForMaskedLM` checkpoints) the [CLS] position's hidden state.
"""

import dataclasses
import os

import keras
import keras_hub

from tfsent.core import inputs
from tfsent.encoders.checkpoint import CheckpointError
from tfsent.encoders import porting
from tfsent.encoders.tokenizers import SentencePiecePreprocessor, WordPiecePreprocessor

FAMILIES = ("bert", "roberta", "electra", "distilbert", "albert")


@dataclasses.dataclass
class TextEncoder:
    """A loaded text encoder.

    Attributes:
        backbone: keras.Model, inputs `token_ids`, `padding_mask` (int32 [B, L]),
            outputs dict `sequence_output` [B, L, H], `pooled_output` [B, H].
        preprocessor: keras layer, strings [B] -> {"token_ids", "padding_mask"}.
        hidden_size: int H.
        family: one of `FAMILIES`.
        sequence_length: int L.
        path: the checkpoint folder.
        has_pooler: whether `pooled_output` is a trained pooler (else [CLS]).
    """

    backbone: keras.Model
    preprocessor: keras.layers.Layer
    hidden_size: int
    family: str
    sequence_length: int
    path: str
    has_pooler: bool


@dataclasses.dataclass
class _Spec:
    vocab_size: int
    hidden_size: int
    embedding_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_positions: int  # usable positions (after RoBERTa's offset)
    position_offset: int
    layer_norm_eps: float
    activation: str
    dropout: float
    num_groups: int = 1


def _spec(config, family, config_file):
    c = config
    if family == "distilbert":
        return _Spec(
            vocab_size=c["vocab_size"], hidden_size=c["dim"], embedding_size=c["dim"],
            num_layers=c["n_layers"], num_heads=c["n_heads"],
            intermediate_size=c["hidden_dim"], max_positions=c["max_position_embeddings"],
            position_offset=0, layer_norm_eps=1e-12,
            activation=porting.activation(c.get("activation", "gelu"), config_file),
            dropout=c.get("dropout", 0.1),
        )
    hidden = c["hidden_size"]
    offset = c.get("pad_token_id", 1) + 1 if family == "roberta" else 0
    default_eps = 1e-5 if family == "roberta" else 1e-12
    act = c.get("hidden_act", "gelu_new" if family == "albert" else "gelu")
    if family == "albert" and c.get("inner_group_num", 1) != 1:
        raise CheckpointError(f"{config_file}: ALBERT with inner_group_num != 1 is not supported.")
    return _Spec(
        vocab_size=c["vocab_size"], hidden_size=hidden,
        embedding_size=c.get("embedding_size", hidden) if family in ("electra", "albert") else hidden,
        num_layers=c["num_hidden_layers"], num_heads=c["num_attention_heads"],
        intermediate_size=c["intermediate_size"],
        max_positions=c["max_position_embeddings"] - offset, position_offset=offset,
        layer_norm_eps=c.get("layer_norm_eps", default_eps),
        activation=porting.activation(act, config_file),
        dropout=c.get("hidden_dropout_prob", 0.1),
        num_groups=c.get("num_hidden_groups", 1) if family == "albert" else 1,
    )


def build_text_backbone(spec, family, with_pooler, name=None):
    """The functional text backbone for a `_Spec` (random weights)."""
    # === Layers ===
    token_embedding = keras.layers.Embedding(
        spec.vocab_size, spec.embedding_size, name="token_embedding")
    position_embedding = keras_hub.layers.PositionEmbedding(
        sequence_length=spec.max_positions, name="position_embedding")
    embeddings_norm = keras.layers.LayerNormalization(
        epsilon=spec.layer_norm_eps, name="embeddings_layer_norm")
    embeddings_dropout = keras.layers.Dropout(spec.dropout, name="embeddings_dropout")
    projection = None
    if family == "albert" or (family == "electra" and spec.embedding_size != spec.hidden_size):
        projection = keras.layers.Dense(spec.hidden_size, name="embeddings_projection")
    n_blocks = spec.num_groups if family == "albert" else spec.num_layers
    blocks = porting.transformer_layers(
        n_blocks, intermediate_dim=spec.intermediate_size, num_heads=spec.num_heads,
        dropout=spec.dropout, activation=spec.activation, layer_norm_epsilon=spec.layer_norm_eps)

    # === Functional Model ===
    feed = inputs.text_inputs()
    token_ids, padding_mask = feed[inputs.TOKEN_IDS], feed[inputs.PADDING_MASK]
    tokens = token_embedding(token_ids)
    x = embeddings_norm(tokens + position_embedding(tokens))
    x = embeddings_dropout(x)
    if projection is not None:
        x = projection(x)
    for i in range(spec.num_layers):
        # ALBERT shares one block per group across consecutive layers.
        block = blocks[i * n_blocks // spec.num_layers]
        x = block(x, padding_mask=padding_mask)
    cls = x[:, 0, :]
    if with_pooler:
        cls = keras.layers.Dense(spec.hidden_size, activation="tanh", name="pooled_dense")(cls)
    return keras.Model(
        inputs=feed,
        outputs={"sequence_output": x, "pooled_output": cls},
        name=name or f"{family}_backbone",
    )


# === Weight porting ===

def _layer_names(family, i):
    if family == "distilbert":
        p = f"transformer.layer.{i}."
        return dict(q=p + "attention.q_lin", k=p + "attention.k_lin", v=p + "attention.v_lin",
                    o=p + "attention.out_lin", ln1=p + "sa_layer_norm", ff1=p + "ffn.lin1",
                    ff2=p + "ffn.lin2", ln2=p + "output_layer_norm")
    if family == "albert":
        p = f"encoder.albert_layer_groups.{i}.albert_layers.0."
        return dict(q=p + "attention.query", k=p + "attention.key", v=p + "attention.value",
                    o=p + "attention.dense", ln1=p + "attention.LayerNorm", ff1=p + "ffn",
                    ff2=p + "ffn_output", ln2=p + "full_layer_layer_norm")
    p = f"encoder.layer.{i}."
    return dict(q=p + "attention.self.query", k=p + "attention.self.key",
                v=p + "attention.self.value", o=p + "attention.output.dense",
                ln1=p + "attention.output.LayerNorm", ff1=p + "intermediate.dense",
                ff2=p + "output.dense", ln2=p + "output.LayerNorm")


def port_text_weights(backbone, ckpt, spec, family):
    """Copies Hugging Face weights from `ckpt` into `build_text_backbone`'s model."""
    E, H = spec.embedding_size, spec.hidden_size
    porting.assign(backbone.get_layer("token_embedding").embeddings,
                   ckpt.get("embeddings.word_embeddings.weight", (spec.vocab_size, E)),
                   "embeddings.word_embeddings.weight")
    positions = ckpt.get("embeddings.position_embeddings.weight",
                         (spec.max_positions + spec.position_offset, E))
    positions = positions[spec.position_offset:]
    if ckpt.has("embeddings.token_type_embeddings.weight"):
        # Single-segment input: token type 0 everywhere, so its row is a constant
        # added to every position.
        positions = positions + ckpt.get("embeddings.token_type_embeddings.weight")[0]
    porting.assign(backbone.get_layer("position_embedding").position_embeddings, positions,
                   "embeddings.position_embeddings.weight")
    porting.port_norm(ckpt, backbone.get_layer("embeddings_layer_norm"), "embeddings.LayerNorm", E)
    if family == "albert":
        porting.port_dense(ckpt, backbone.get_layer("embeddings_projection"),
                           "encoder.embedding_hidden_mapping_in", E, H)
    elif family == "electra" and E != H:
        porting.port_dense(ckpt, backbone.get_layer("embeddings_projection"), "embeddings_project",
                           E, H)
    n_blocks = spec.num_groups if family == "albert" else spec.num_layers
    for i in range(n_blocks):
        porting.port_transformer_layer(ckpt, backbone.get_layer(f"transformer_layer_{i}"),
                                       _layer_names(family, i), H, spec.num_heads,
                                       spec.intermediate_size)
    if any(layer.name == "pooled_dense" for layer in backbone.layers):
        porting.port_dense(ckpt, backbone.get_layer("pooled_dense"),
                           "pooler" if family == "albert" else "pooler.dense", H, H)


def _pooler_name(family):
    return "pooler.weight" if family == "albert" else "pooler.dense.weight"


# === Tokenizer ===

def _special(tok_config, special_map, key, default):
    value = tok_config.get(key, special_map.get(key, default))
    if isinstance(value, dict):  # AddedToken serialised as a dict
        value = value.get("content", default)
    return value or default


def _wordpiece_from_tokenizer_json(path, tok_config, specials, sequence_length):
    """A `WordPiecePreprocessor` from a `tokenizers` file (no vocab.txt), or None
    when the file holds another model type."""
    import json

    try:
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: cannot read ({e}).") from e
    model = spec.get("model") or {}
    if model.get("type") != "WordPiece":
        return None
    if model.get("continuing_subword_prefix", "##") != "##":
        raise CheckpointError(f"{path}: WordPiece prefix other than '##' is not supported.")
    vocab = model.get("vocab") or {}
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        raise CheckpointError(f"{path}: WordPiece ids are not 0..{len(by_id) - 1}.")
    norm = spec.get("normalizer") or {}
    if norm.get("type") not in (None, "BertNormalizer"):
        raise CheckpointError(f"{path}: normalizer {norm.get('type')!r} is not supported "
                              "(BertNormalizer only).")
    lowercase = norm.get("lowercase", tok_config.get("do_lower_case", True))
    try:
        return WordPiecePreprocessor(
            [t for t, _ in by_id], sequence_length=sequence_length, lowercase=lowercase,
            strip_accents=norm.get("strip_accents", tok_config.get("strip_accents")),
            tokenize_chinese_chars=norm.get("handle_chinese_chars", True),
            max_input_chars_per_word=model.get("max_input_chars_per_word", 100),
            name="preprocessor", **{**specials, "unk_token": model.get("unk_token", "[UNK]")})
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}") from e


def build_preprocessor(ckpt, family, sequence_length):
    """The in-graph tokenizer for a checkpoint folder, per its tokenizer files."""
    tok_config = ckpt.read_json("tokenizer_config.json")
    special_map = ckpt.read_json("special_tokens_map.json")
    specials = {k: _special(tok_config, special_map, k, d) for k, d in [
        ("cls_token", "[CLS]"), ("sep_token", "[SEP]"), ("pad_token", "[PAD]"),
        ("unk_token", "[UNK]")]}
    vocab_file = ckpt.file("vocab.txt")
    sp_file = ckpt.file("spiece.model", "tokenizer.model", "sentencepiece.model")
    if vocab_file:
        with open(vocab_file, encoding="utf-8") as f:
            vocabulary = [line.rstrip("\n").rstrip("\r") for line in f]
        while vocabulary and vocabulary[-1] == "":
            vocabulary.pop()
        lowercase = tok_config.get("do_lower_case", True)  # BertTokenizer's default
        try:
            return WordPiecePreprocessor(
                vocabulary, sequence_length=sequence_length, lowercase=lowercase,
                strip_accents=tok_config.get("strip_accents"),
                tokenize_chinese_chars=tok_config.get("tokenize_chinese_chars", True),
                name="preprocessor", **specials)
        except ValueError as e:
            raise CheckpointError(f"{vocab_file}: {e}") from e
    if sp_file:
        with open(sp_file, "rb") as f:
            proto = f.read()
        try:
            return SentencePiecePreprocessor(
                proto, sequence_length=sequence_length,
                keep_accents=tok_config.get("keep_accents", False),
                lowercase=tok_config.get("do_lower_case", family == "albert"),
                cls_token=specials["cls_token"], sep_token=specials["sep_token"],
                pad_token=specials["pad_token"], name="preprocessor")
        except Exception as e:
            raise CheckpointError(f"{sp_file}: {e}") from e
    tokenizer_json = ckpt.file("tokenizer.json")
    if tokenizer_json:
        wordpiece = _wordpiece_from_tokenizer_json(tokenizer_json, tok_config, specials,
                                                   sequence_length)
        if wordpiece is not None:
            return wordpiece
    bpe = ckpt.file("vocab.json", "merges.txt", "tokenizer.json")
    hint = (f" Found {os.path.basename(bpe)}: byte-level BPE / tokenizer.json-only "
            "tokenizers are not supported.") if bpe else ""
    raise CheckpointError(
        f"{ckpt.path}: no tokenizer file. Expected vocab.txt or a WordPiece "
        "tokenizer.json (BERT, klue/roberta-base, KoELECTRA, DistilBERT) or "
        "spiece.model / tokenizer.model "
        f"(SentencePiece: KoBERT, ALBERT).{hint} Download the tokenizer files of "
        "the checkpoint into the same folder."
    )


def load_text_encoder(path, sequence_length=64, dropout=None):
    """Loads a text encoder from a local Hugging Face checkpoint folder.

    Args:
        path: folder with config.json, model.safetensors and tokenizer files.
        sequence_length: int, packed length L including [CLS] and [SEP].
        dropout: optional float overriding the checkpoint's hidden dropout.

    Returns:
        A `TextEncoder`.

    Example:
    >>> enc = load_text_encoder("/models/klue-roberta-base", 64)  # doctest: +SKIP
    >>> enc.backbone(enc.preprocessor(tf.constant(["안녕하세요"])))  # doctest: +SKIP
    """
    ckpt, config_file = porting.read_supported_checkpoint(
        path, anchors=("embeddings.word_embeddings.weight",), families=FAMILIES,
        what="text encoder", hint="; audio: wav2vec2, hubert via --audio_encoder")
    family = ckpt.model_type
    try:
        spec = _spec(ckpt.config, family, config_file)
    except KeyError as e:
        raise CheckpointError(f"{config_file}: missing key {e} for model_type {family!r}.") from e
    if dropout is not None:
        spec.dropout = float(dropout)
    if sequence_length > spec.max_positions:
        raise ValueError(
            f"sequence_length={sequence_length} exceeds the {spec.max_positions} "
            f"positions of {config_file}."
        )
    has_pooler = ckpt.has(_pooler_name(family)) and family not in ("electra", "distilbert")
    preprocessor = build_preprocessor(ckpt, family, sequence_length)
    backbone = build_text_backbone(spec, family, has_pooler)
    port_text_weights(backbone, ckpt, spec, family)
    return TextEncoder(backbone=backbone, preprocessor=preprocessor,
                       hidden_size=spec.hidden_size, family=family,
                       sequence_length=sequence_length, path=ckpt.path,
                       has_pooler=has_pooler)
