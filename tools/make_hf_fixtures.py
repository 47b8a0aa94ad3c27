"""Builds the tiny Hugging Face checkpoints + reference outputs used by tests/encoders.

Maintainer script: it needs `torch` (CPU wheel), `transformers`, `safetensors`,
`sentencepiece` and `protobuf`, which are NEVER tfsent dependencies. Run it in a
scratch environment outside the repository:

    python3.11 -m venv /tmp/hfvenv
    /tmp/hfvenv/bin/pip install torch==2.13.0 transformers safetensors \
        sentencepiece protobuf
    /tmp/hfvenv/bin/python tools/make_hf_fixtures.py --out tests/encoders/data

For every family it writes `OUT/<name>/` with `config.json`, `model.safetensors`,
the tokenizer files, and `reference.npz` (token ids, masks and hidden states of a
fixed batch computed by `transformers` in float32). Weights are stored in float16
to keep the fixtures small (hidden size 16, 2 layers, vocabularies of ~300); the
reference runs in float32 from the same rounded weights.

For a published text checkpoint (e.g. klue/roberta-base downloaded to DIR):

    /tmp/hfvenv/bin/python tools/make_hf_fixtures.py --real DIR --real_out ref.npz
    TFSENT_KLUE_ROBERTA_DIR=DIR TFSENT_KLUE_ROBERTA_DIR_REFERENCE=ref.npz \
        .venv/bin/python -m pytest tests/encoders -k real

Reference conventions (what the tests compare against):
- Text: `tokenizer(texts, padding="max_length", truncation=True, max_length=L)`,
  except for the KoBERT-style checkpoint whose `tokenizer_config.json` names
  `XLNetTokenizer` (as skt/kobert-base-v1 does): there the pieces come from the
  `sentencepiece` library (see `kobert_preprocess` for why not transformers 5),
  and the ids are `[CLS] + pieces + [SEP]`, right-padded with [PAD] -- what KoBERT's own
  `KoBERTTokenizer` (an XLNetTokenizer subclass) builds, since the XLNet layout
  (`pieces <sep> <cls>`, left padding) is not what a BERT encoder was trained on.
  The model runs with `token_type_ids` = 0 everywhere.
- Audio: each waveform is run ALONE (no padding) through the checkpoint's
  feature extractor and model. For group-norm checkpoints Hugging Face feeds
  padded batches without an attention mask, so its outputs for a padded example
  depend on the padding; tfsent masks instead (group norm statistics and
  attention over real frames only), which equals Hugging Face's output for the
  unpadded example. `hidden_states` is [embeddings, layer 1, ...,
  encoder output] (the transformers 4 convention).
"""

import argparse
import json
import os
import shutil
import tempfile
import unicodedata

import numpy as np
import sentencepiece as spm
import torch
import transformers

TEXTS = [
    "오늘 정말 행복해요!",
    "왜 이렇게 화가 나는지 모르겠어.",
    "Hello, 세상아. 나는 BERT를 좋아해 :)",
    "café 커피는 맛있다 123원",
    "슬퍼.. 정말",
    "이 문장은 꽤 길어서 시퀀스 길이를 넘어가면 잘려야 합니다 그렇지 않나요 정말로 그렇습니다",
    "놀랐어?! ㅋㅋ 😀",
]
CORPUS = TEXTS + [
    "기분이 좋아요", "정말 슬퍼요", "너무 화가 나요", "놀라운 소식이에요",
    "평범한 하루였어요", "hello world", "good morning everyone", "행복한 하루 되세요",
    "나는 학교에 갑니다", "우리는 친구입니다", "이것은 테스트 문장입니다",
]
SEQ_LEN = 24
SPECIALS_BERT = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# klue/roberta-base order: [CLS]=0, [PAD]=1, [SEP]=2, [UNK]=3, [MASK]=4.
SPECIALS_KLUE = ["[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]"]


def _basic_words(text, lower):
    if lower:
        text = unicodedata.normalize("NFD", text.lower())
        text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    words = []
    for w in text.split():
        cur = ""
        for c in w:
            if unicodedata.category(c).startswith("P") or c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~":
                if cur:
                    words.append(cur)
                words.append(c)
                cur = ""
            else:
                cur += c
        if cur:
            words.append(cur)
    return words


def write_wordpiece_vocab(path, specials, lower):
    """A small WordPiece vocabulary: characters, ## characters, a few words."""
    chars, words = [], []
    for text in CORPUS:
        for w in _basic_words(text, lower):
            words.append(w)
            for c in w:
                if c not in chars:
                    chars.append(c)
    vocab = list(specials)
    # Leave "😀" out on purpose so [UNK] appears; leave some words whole.
    for c in chars:
        if c != "😀" and c not in vocab:
            vocab.append(c)
    for c in chars:
        if c != "😀" and "##" + c not in vocab:
            vocab.append("##" + c)
    for w in sorted(set(words)):
        if len(w) > 1 and w not in vocab and len(vocab) < 320:
            vocab.append(w)
    for piece in ["##요", "##어요", "##니다", "##습니다"]:
        if piece not in vocab:
            vocab.append(piece)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    return len(vocab)


def write_spm(prefix, lowercase=False):
    """Trains a tiny unigram SentencePiece model (KoBERT-style special ids)."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write("\n".join(CORPUS * 3))
        corpus = f.name
    # A real KoBERT model normalises with nmt_nfkc (a ~200 KB table) which, among
    # other things, recomposes jamo into syllables; these few rules do just that
    # for the corpus characters, keeping the fixture small.
    rules = prefix + ".rules.tsv"
    with open(rules, "w", encoding="utf-8") as f:
        for c in sorted(set("".join(CORPUS))):
            d = unicodedata.normalize("NFKD", c)
            if d != c and not any(unicodedata.combining(x) for x in d):
                f.write(" ".join(f"{ord(x):X}" for x in d) + "\t" + f"{ord(c):X}" + "\n")
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=prefix, vocab_size=200, model_type="unigram",
        character_coverage=1.0, unk_id=0, pad_id=1, bos_id=-1, eos_id=-1,
        user_defined_symbols=["[CLS]", "[SEP]", "[MASK]"], unk_piece="[UNK]",
        pad_piece="[PAD]", hard_vocab_limit=False, minloglevel=2,
        normalization_rule_tsv=rules,
    )
    os.unlink(corpus)


def randomize(model, std=0.2):
    """Non-trivial weights so porting mistakes (and GELU variants) show up."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name.lower() and name.endswith(("weight", "gamma")):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            elif "weight_g" in name or "original0" in name:
                p.copy_(1.0 + 0.1 * torch.rand(p.shape, generator=gen))
            else:
                p.copy_(std * torch.randn(p.shape, generator=gen))


def save(model, out_dir, tokenizer_files=None, tokenizer_config=None):
    # float16 on disk halves the fixtures; the reference runs in float32 from the
    # same rounded weights, and the loader's float16 -> float32 cast is exercised.
    os.makedirs(out_dir, exist_ok=True)
    model.half().save_pretrained(out_dir, safe_serialization=True)
    for src, name in (tokenizer_files or {}).items():
        shutil.copy(src, os.path.join(out_dir, name))
    if tokenizer_config is not None:
        with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
            json.dump(tokenizer_config, f, indent=1, ensure_ascii=False)


def kobert_preprocess(text, keep_accents=False, lower=False):
    """KoBERTTokenizer (= transformers 4 slow XLNetTokenizer) text preprocessing.

    transformers 5's XLNetTokenizer is a `tokenizers` pipeline that always applies
    NFKD + StripAccents and never recomposes, so Hangul reaches the Unigram model
    as jamo and comes out as [UNK]. The `sentencepiece` library composes the jamo
    back (NFKC in the model's normalizer), which is what KoBERT was trained and
    used with; the reference follows it.
    """
    text = " ".join(text.strip().split()).replace("``", '"').replace("''", '"')
    if not keep_accents:
        text = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in text if not unicodedata.combining(c))
    return text.lower() if lower else text


def text_reference(out_dir, model_cls, kobert_style=False, ref_file=None, seq_len=SEQ_LEN):
    SEQ_LEN = seq_len  # noqa: N806 -- shadows the module default for --real
    tok = transformers.AutoTokenizer.from_pretrained(out_dir)
    if kobert_style:
        sp = spm.SentencePieceProcessor(model_file=os.path.join(out_dir, "spiece.model"))
        ids, mask = [], []
        for t in TEXTS:
            pieces = sp.encode(kobert_preprocess(t))[: SEQ_LEN - 2]
            row = [tok.cls_token_id] + pieces + [tok.sep_token_id]
            mask.append([1] * len(row) + [0] * (SEQ_LEN - len(row)))
            ids.append(row + [tok.pad_token_id] * (SEQ_LEN - len(row)))
        ids, mask = np.array(ids, np.int64), np.array(mask, np.int64)
    else:
        enc = tok(TEXTS, padding="max_length", truncation=True, max_length=SEQ_LEN, return_tensors="np")
        ids, mask = enc["input_ids"], enc["attention_mask"]
    model = model_cls.from_pretrained(out_dir, dtype=torch.float32).eval()
    kwargs = {}
    if "token_type" in str(model.forward.__doc__) or hasattr(model.config, "type_vocab_size"):
        kwargs["token_type_ids"] = torch.zeros(ids.shape, dtype=torch.long)
    with torch.no_grad():
        out = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask),
                    output_hidden_states=True, **kwargs)
    ref = {"texts": np.array(TEXTS), "token_ids": ids.astype(np.int32),
           "padding_mask": mask.astype(np.int32),
           "sequence_output": out.hidden_states[-1].numpy()}
    # A pooler missing from the checkpoint (ForMaskedLM) is random in HF: skip it.
    from safetensors import safe_open
    with safe_open(os.path.join(out_dir, "model.safetensors"), "np") as f:
        saved_pooler = any("pooler" in k for k in f.keys())
    pooler = getattr(out, "pooler_output", None)
    if pooler is not None and saved_pooler:
        ref["pooled_output"] = pooler.numpy()
    np.savez_compressed(ref_file or os.path.join(out_dir, "reference.npz"), **ref)
    print(out_dir, "tokens", ids[2][: mask[2].sum()].tolist(), "->", tok.convert_ids_to_tokens(ids[2][: mask[2].sum()].tolist()))


def make_text(out):
    cfg_common = dict(vocab_size=0, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=32, max_position_embeddings=64, initializer_range=0.2)
    tmp = tempfile.mkdtemp()

    # 1. KoBERT style: BertModel + SentencePiece (spiece.model), XLNetTokenizer config.
    d = os.path.join(out, "kobert_spm")
    write_spm(os.path.join(tmp, "sp"))
    sp = spm.SentencePieceProcessor(model_file=os.path.join(tmp, "sp.model"))
    cfg = transformers.BertConfig(**{**cfg_common, "vocab_size": sp.get_piece_size()}, pad_token_id=1)
    m = transformers.BertModel(cfg)
    randomize(m)
    save(m, d, {os.path.join(tmp, "sp.model"): "spiece.model"}, {
        "tokenizer_class": "XLNetTokenizer", "do_lower_case": False, "remove_space": True,
        "keep_accents": False, "bos_token": "[CLS]", "eos_token": "[SEP]", "unk_token": "[UNK]",
        "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"})
    text_reference(d, transformers.BertModel, kobert_style=True)

    # 2. Uncased English-style BERT saved as BertForMaskedLM (prefix "bert.", no pooler).
    d = os.path.join(out, "bert_uncased_mlm")
    os.makedirs(d, exist_ok=True)
    n = write_wordpiece_vocab(os.path.join(tmp, "vocab_uncased.txt"), SPECIALS_BERT, lower=True)
    cfg = transformers.BertConfig(**{**cfg_common, "vocab_size": n}, pad_token_id=0)
    m = transformers.BertForMaskedLM(cfg)
    randomize(m)
    save(m, d, {os.path.join(tmp, "vocab_uncased.txt"): "vocab.txt"},
         {"tokenizer_class": "BertTokenizer", "do_lower_case": True})
    text_reference(d, transformers.BertModel)

    # 3. klue/roberta-base style: RoBERTa weights + WordPiece vocab, cased.
    d = os.path.join(out, "roberta_klue")
    n = write_wordpiece_vocab(os.path.join(tmp, "vocab_klue.txt"), SPECIALS_KLUE, lower=False)
    cfg = transformers.RobertaConfig(**{**cfg_common, "vocab_size": n, "max_position_embeddings": 66},
                                     type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                                     layer_norm_eps=1e-5)
    m = transformers.RobertaModel(cfg)
    randomize(m)
    save(m, d, {os.path.join(tmp, "vocab_klue.txt"): "vocab.txt"},
         {"tokenizer_class": "BertTokenizer", "do_lower_case": False, "do_basic_tokenize": True,
          "strip_accents": None, "tokenize_chinese_chars": True, "model_max_length": 512,
          "bos_token": "[CLS]", "eos_token": "[SEP]", "cls_token": "[CLS]", "sep_token": "[SEP]",
          "pad_token": "[PAD]", "unk_token": "[UNK]", "mask_token": "[MASK]"})
    text_reference(d, transformers.RobertaModel)
    # The `tokenizers` form too, for checkpoints that ship tokenizer.json only.
    transformers.AutoTokenizer.from_pretrained(d).backend_tokenizer.save(
        os.path.join(d, "tokenizer.json"))

    # 4. KoELECTRA style discriminator: embedding_size != hidden_size, cased WordPiece.
    d = os.path.join(out, "electra_disc")
    n = write_wordpiece_vocab(os.path.join(tmp, "vocab_cased.txt"), SPECIALS_BERT, lower=False)
    cfg = transformers.ElectraConfig(**{**cfg_common, "vocab_size": n}, embedding_size=8)
    m = transformers.ElectraForPreTraining(cfg)
    randomize(m)
    save(m, d, {os.path.join(tmp, "vocab_cased.txt"): "vocab.txt"},
         {"tokenizer_class": "ElectraTokenizer", "do_lower_case": False, "strip_accents": False})
    text_reference(d, transformers.ElectraModel)

    # 5. DistilBERT, cased WordPiece.
    d = os.path.join(out, "distilbert")
    cfg = transformers.DistilBertConfig(vocab_size=n, dim=16, n_layers=2, n_heads=2, hidden_dim=32,
                                        max_position_embeddings=64, initializer_range=0.2)
    m = transformers.DistilBertModel(cfg)
    randomize(m)
    save(m, d, {os.path.join(tmp, "vocab_cased.txt"): "vocab.txt"},
         {"tokenizer_class": "DistilBertTokenizer", "do_lower_case": False})
    text_reference(d, transformers.DistilBertModel)

    # 6. ALBERT + SentencePiece (AlbertTokenizer, keep_accents so Hangul survives).
    d = os.path.join(out, "albert_spm")
    cfg = transformers.AlbertConfig(vocab_size=sp.get_piece_size(), embedding_size=8, hidden_size=16,
                                    num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                                    max_position_embeddings=64, initializer_range=0.2, pad_token_id=1,
                                    hidden_act="gelu_new")
    m = transformers.AlbertModel(cfg)
    randomize(m)
    save(m, d, {os.path.join(tmp, "sp.model"): "spiece.model"}, {
        "tokenizer_class": "AlbertTokenizer", "do_lower_case": False, "remove_space": True,
        "keep_accents": True, "bos_token": "[CLS]", "eos_token": "[SEP]", "unk_token": "[UNK]",
        "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"})
    text_reference(d, transformers.AlbertModel)
    shutil.rmtree(tmp)


def waveforms():
    rng = np.random.default_rng(0)
    lengths = [1000, 700, 400]
    waves = []
    for n in lengths:
        t = np.arange(n) / 16000.0
        w = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(n) + 0.1
        waves.append(w.astype(np.float32))
    return waves


def audio_reference(out_dir, model_cls, truncated_layers=None, ref_file=None):
    fe = transformers.Wav2Vec2FeatureExtractor.from_pretrained(out_dir)
    model = model_cls.from_pretrained(out_dir, dtype=torch.float32).eval()
    waves = waveforms()
    S = max(len(w) for w in waves)
    wav = np.zeros((len(waves), S), np.float32)
    mask = np.zeros((len(waves), S), np.int32)
    for i, w in enumerate(waves):
        wav[i, : len(w)] = w
        mask[i, : len(w)] = 1
    ref = {"waveform": wav, "waveform_mask": mask}

    def run(m, tag):
        per = []
        for w in waves:
            x = fe(w, sampling_rate=16000, return_tensors="pt")["input_values"]
            with torch.no_grad():
                o = m(x, output_hidden_states=True)
            # transformers 4 convention (the seeds'): the last entry is the
            # encoder output, after the final layer norm of pre-norm models
            # (transformers 5 records the last layer's output before it).
            hs = list(o.hidden_states[:-1]) + [o.last_hidden_state]
            per.append(np.stack([h[0].numpy() for h in hs]))  # [N+1, T_i, H]
        T = max(p.shape[1] for p in per)
        full = np.zeros((len(per), per[0].shape[0], T, per[0].shape[2]), np.float32)
        fm = np.zeros((len(per), T), np.int32)
        for i, p in enumerate(per):
            full[i, :, : p.shape[1]] = p
            fm[i, : p.shape[1]] = 1
        ref[f"{tag}hidden_states"] = full
        ref[f"{tag}frame_mask"] = fm

    run(model, "")
    if truncated_layers:
        m2 = model_cls.from_pretrained(out_dir, num_hidden_layers=truncated_layers, dtype=torch.float32).eval()
        run(m2, f"layers{truncated_layers}_")
    np.savez_compressed(ref_file or os.path.join(out_dir, "reference.npz"), **ref)
    print(out_dir, {k: v.shape for k, v in ref.items()})


def make_audio(out):
    common = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                  conv_dim=(8, 8, 8), conv_kernel=(10, 3, 3), conv_stride=(5, 2, 2),
                  num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, vocab_size=12,
                  initializer_range=0.2)
    for name, cls, cfg_cls, extra, fe_kwargs, trunc in [
        ("wav2vec2_group", transformers.Wav2Vec2ForCTC, transformers.Wav2Vec2Config,
         dict(feat_extract_norm="group", do_stable_layer_norm=False, conv_bias=False),
         dict(do_normalize=True, return_attention_mask=False), None),
        ("wav2vec2_layer", transformers.Wav2Vec2Model, transformers.Wav2Vec2Config,
         dict(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True),
         dict(do_normalize=True, return_attention_mask=True), 1),
        ("hubert", transformers.HubertModel, transformers.HubertConfig,
         dict(feat_extract_norm="group", do_stable_layer_norm=False, conv_bias=False,
              feat_proj_layer_norm=True),
         dict(do_normalize=False, return_attention_mask=False), None),
    ]:
        d = os.path.join(out, name)
        m = cls(cfg_cls(**common, **extra))
        randomize(m)
        m.half().save_pretrained(d, safe_serialization=True)
        transformers.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                                              **fe_kwargs).save_pretrained(d)
        base = transformers.HubertModel if name == "hubert" else transformers.Wav2Vec2Model
        audio_reference(d, base, truncated_layers=trunc)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="tests/encoders/data")
    parser.add_argument("--only", choices=["text", "audio"], default=None)
    parser.add_argument("--real", default=None,
                        help="a published checkpoint folder: write the reference of TEXTS "
                             "(length 64) or of the test waveforms to --real_out (for "
                             "tests/encoders' test_real_* via TFSENT_*_DIR)")
    parser.add_argument("--real_out", default=None)
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.real:
        cfg = json.load(open(os.path.join(args.real, "config.json")))
        out_file = args.real_out or os.path.join(args.real, "tfsent_reference.npz")
        if cfg.get("model_type") in ("wav2vec2", "hubert"):
            cls = transformers.HubertModel if cfg["model_type"] == "hubert" else transformers.Wav2Vec2Model
            audio_reference(args.real, cls, ref_file=out_file)
            return
        tcfg = os.path.join(args.real, "tokenizer_config.json")
        tcfg = json.load(open(tcfg)) if os.path.exists(tcfg) else {}
        text_reference(args.real, transformers.AutoModel,
                       kobert_style=tcfg.get("tokenizer_class") == "XLNetTokenizer",
                       ref_file=out_file,
                       seq_len=64)
        return
    if args.only in (None, "text"):
        make_text(args.out)
    if args.only in (None, "audio"):
        make_audio(args.out)


if __name__ == "__main__":
    main()
