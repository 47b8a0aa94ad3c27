"""bin/export's SavedModels: layout, model card, warm-up, outputs vs the in-memory model, long audio,
missing modalities, bad and random (hypothesis) requests, atomic export, and (slow) a fresh TF +
tensorflow_text-only process."""

import collections
import json
import os
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tfsent.audio.features import AudioFrontend
from tfsent.audio.io import decode_wav_bytes
from tfsent.core.inputs import input_names
from tfsent.export import saved_model as sm

TOL = 1e-5


def _reference(family, model_dirs, audio_rows=(), texts=None, truncate_window=None):
    """In-memory model → probabilities (classifier) or values (regressor), one row at a time."""
    config, model, text_preprocessor, _ = sm.load_for_export(model_dirs[family])
    names = input_names(model)
    frontend = AudioFrontend(config.feature_config)
    n = len(audio_rows) or len(texts)
    results = []
    for i in range(n):
        inputs = {}
        if "audio_features" in names:
            row = np.asarray(audio_rows[i], np.float32)[None]
            feats, mask = frontend(tf.constant(row), tf.constant([row.shape[1]], tf.int32))
            inputs.update(audio_features=feats, audio_mask=tf.cast(mask, tf.int32))
        if "token_ids" in names:
            tokens = text_preprocessor(tf.constant([texts[i]]))
            inputs.update(token_ids=tokens["token_ids"], padding_mask=tokens["padding_mask"])
        out = model({k: inputs[k] for k in names}, training=False)
        if "logits" in out:
            results.append(tf.nn.softmax(out["logits"])[0].numpy())
        else:
            results.append(np.reshape(out[next(iter(out))].numpy(), [-1])[0])
    return np.stack(results)


def _served(fn, family):
    return "probabilities" if family != "arousal_regressor" else "arousal"


def _call(loaded, family, audio_rows=None, texts=None, signature="serving_default"):
    fn = loaded[family].signatures[signature]
    kwargs = {}
    if audio_rows is not None:
        longest = max(len(r) for r in audio_rows)
        batch = np.zeros([len(audio_rows), longest], np.float32)
        for i, r in enumerate(audio_rows):
            batch[i, : len(r)] = r
        kwargs.update(audio=tf.constant(batch), audio_length=tf.constant([len(r) for r in audio_rows], tf.int32))
    if texts is not None:
        kwargs["text"] = tf.constant(texts)
    return fn(**kwargs)


TEXTS = ["오늘 정말 행복해요!", "화가 나요", "너무 슬퍼요..."]


def test_layout_model_card_and_warmup(exports, loaded, kit):
    path = exports["demo_fusion"]
    assert os.path.basename(path) == "1" and os.path.isfile(os.path.join(path, "saved_model.pb"))
    assert os.path.isdir(os.path.join(path, "variables"))
    assert not [d for d in os.listdir(os.path.dirname(path)) if d.startswith(".tmp-")]
    with open(os.path.join(path, "assets.extra", "model_card.json"), encoding="utf-8") as f:
        card = json.load(f)
    assert card["labels"] == kit.CLASSES and card["model"] == "demo_fusion"
    assert card["inputs"]["scoring_window_seconds"] == 1.0 and card["inputs"]["scoring_hop_seconds"] == 0.5
    assert "--model=demo_fusion" in card["flags"]
    assert card["validation_metrics"]["macro_f1"] == 0.5
    assert card["versions"]["tensorflow"] == tf.__version__ and card["versions"]["tfsent"]
    assert "masked" in card["missing_modality"] and "truncated" in card["text_truncation"]
    audio_signatures = {"serving_default", "predict_wav", "timeline", "timeline_wav"}
    assert set(loaded["demo_fusion"].signatures) == audio_signatures
    assert set(loaded["conv1d_mel"].signatures) == audio_signatures
    assert set(loaded["text_cnn"].signatures) == {"serving_default"}
    # The fusion model's auxiliary per-modality outputs (training only) are not served.
    served = set(loaded["demo_fusion"].signatures["serving_default"].structured_outputs)
    assert {"probabilities", "label", "classes"} <= served and not {"audio_logits", "text_logits"} & served
    # Every warm-up request is a valid request for the signature it names (TF Serving replays them).
    requests = sm.read_warmup_requests(os.path.join(path, "assets.extra", "tf_serving_warmup_requests"))
    assert [r.model_spec.signature_name for r in requests] == ["serving_default", "predict_wav"]
    for request in requests:
        fn = loaded["demo_fusion"].signatures[request.model_spec.signature_name]
        out = fn(**{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})
        np.testing.assert_allclose(out["probabilities"].numpy().sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("family", ["demo_fusion", "conv1d_mel", "text_cnn", "arousal_regressor"])
def test_outputs_match_in_memory_model_and_padding(family, model_dirs, loaded, kit):
    takes_audio = family != "text_cnn"
    takes_text = family in ("demo_fusion", "text_cnn")
    # Rows no longer than the 1 s window, so the reference is one plain model call per row.
    rows = [kit.noise(0.8, seed=1), kit.noise(0.3, seed=2), kit.noise(1.0, seed=3)] if takes_audio else []
    texts = TEXTS if takes_text else None
    expected = _reference(family, model_dirs, rows, texts)
    key = _served(None, family)
    batch = _call(loaded, family, rows if takes_audio else None, texts)
    np.testing.assert_allclose(batch[key].numpy(), expected, atol=TOL)
    for i in range(3):  # padded batch == the same rows sent alone
        alone = _call(loaded, family, [rows[i]] if takes_audio else None, [texts[i]] if takes_text else None)
        np.testing.assert_allclose(alone[key].numpy()[0], batch[key].numpy()[i], atol=TOL)
    if key == "probabilities":
        labels = [s.decode() for s in batch["label"].numpy()]
        assert labels == [kit.CLASSES[i] for i in expected.argmax(-1)]
        assert batch["classes"].numpy().shape == (3, 4)


def test_long_audio_is_scored_in_windows(model_dirs, loaded, kit):
    config, model, _, _ = sm.load_for_export(model_dirs["conv1d_mel"])
    clip = kit.noise(2.3, seed=4)  # window 1 s, hop 0.5 s: windows at 0, 0.5, 1.0, 1.5 s (1.5 s reaches 2.3)
    frontend = AudioFrontend(config.feature_config)
    logits = []
    for start in (0, 8000, 16000, 24000):
        piece = clip[start: start + 16000][None]
        feats, mask = frontend(tf.constant(piece), tf.constant([piece.shape[1]]))
        logits.append(model({"audio_features": feats, "audio_mask": tf.cast(mask, tf.int32)})["logits"][0])
    expected = tf.nn.softmax(tf.reduce_mean(tf.stack(logits), 0)).numpy()
    served = _call(loaded, "conv1d_mel", [clip])["probabilities"].numpy()[0]
    np.testing.assert_allclose(served, expected, atol=TOL)
    first_window_only = tf.nn.softmax(logits[0]).numpy()
    assert np.abs(served - first_window_only).max() > 1e-4  # the tail was not cut off
    # A 60 s recording neither fails nor costs a window per padding second in a padded batch.
    long = _call(loaded, "conv1d_mel", [kit.noise(60, seed=5), kit.noise(0.5, seed=6)])
    assert np.all(np.isfinite(long["probabilities"].numpy()))
    short_alone = _call(loaded, "conv1d_mel", [kit.noise(0.5, seed=6)])["probabilities"].numpy()[0]
    np.testing.assert_allclose(long["probabilities"].numpy()[1], short_alone, atol=TOL)


def test_predict_wav_any_rate_and_channels(loaded, kit):
    clip = kit.noise(0.9, seed=7, rate=8000)
    stereo = np.stack([clip, 0.5 * clip], axis=1)
    import io

    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, stereo, 8000, format="WAV", subtype="PCM_16")
    wav = buffer.getvalue()
    mono16k = decode_wav_bytes(tf.constant(wav), 16000).numpy()
    assert abs(len(mono16k) - 14400) <= 1
    by_wav = loaded["demo_fusion"].signatures["predict_wav"](wav=tf.constant([wav, sm.wav_bytes(kit.noise(0.4), 16000)]),
                                                            text=tf.constant(TEXTS[:2]))
    by_audio = _call(loaded, "demo_fusion", [mono16k], TEXTS[:1])
    np.testing.assert_allclose(by_wav["probabilities"].numpy()[0], by_audio["probabilities"].numpy()[0], atol=TOL)
    audio_only = loaded["conv1d_mel"].signatures["predict_wav"](wav=tf.constant([wav]))
    np.testing.assert_allclose(audio_only["probabilities"].numpy()[0],
                               _call(loaded, "conv1d_mel", [mono16k])["probabilities"].numpy()[0], atol=TOL)


def test_missing_modality_and_truncation(model_dirs, loaded, kit):
    config, model, text_preprocessor, _ = sm.load_for_export(model_dirs["demo_fusion"])
    clip = kit.noise(0.7, seed=8)
    frontend = AudioFrontend(config.feature_config)
    feats, mask = frontend(tf.constant(clip[None]), tf.constant([len(clip)]))
    tokens = text_preprocessor(tf.constant([""]))
    masked_text = model({"audio_features": feats, "audio_mask": tf.cast(mask, tf.int32),
                         "token_ids": tokens["token_ids"], "padding_mask": tf.zeros_like(tokens["padding_mask"])})
    out = _call(loaded, "demo_fusion", [clip, np.zeros([0], np.float32)], ["  ", "화가 나요"])
    np.testing.assert_allclose(out["probabilities"].numpy()[0], tf.nn.softmax(masked_text["logits"])[0], atol=TOL)
    assert np.all(np.isfinite(out["probabilities"].numpy()[1]))
    # Texts longer than the sequence length are truncated: only the first L-2 word pieces count.
    long_text = " ".join(["오늘"] * 5 + ["화가"] * 40)
    cut_text = " ".join(["오늘"] * 5 + ["화가"] * (kit.SEQUENCE_LENGTH - 2 - 5))
    a = loaded["text_cnn"].signatures["serving_default"](text=tf.constant([long_text, cut_text]))
    np.testing.assert_allclose(a["probabilities"].numpy()[0], a["probabilities"].numpy()[1], atol=TOL)


def _bad(kit):
    ok = kit.noise(0.5)
    nan = ok.copy()
    nan[100] = np.nan
    inf = ok.copy()
    inf[7] = np.inf
    two = np.stack([ok, ok])
    return {
        "nan": ("demo_fusion", dict(audio=np.stack([ok, nan]), audio_length=[8000, 8000], text=TEXTS[:2]),
                "NaN or Inf samples in rows] [1]"),
        "inf": ("conv1d_mel", dict(audio=inf[None], audio_length=[8000]), "NaN or Inf"),
        "length_too_long": ("demo_fusion", dict(audio=two, audio_length=[8000, 9000], text=TEXTS[:2]),
                            "larger than the audio row it describes in rows] [1]"),
        "negative_length": ("conv1d_mel", dict(audio=two, audio_length=[-1, 8000]), ">= 0"),
        "length_batch": ("conv1d_mel", dict(audio=two, audio_length=[8000]), "same batch size"),
        "text_batch": ("demo_fusion", dict(audio=two, audio_length=[8000, 8000], text=TEXTS[:1]),
                       "one string per audio row"),
        "nothing": ("demo_fusion", dict(audio=two, audio_length=[8000, 0], text=["네", ""]),
                    "neither audio nor text:] [1]"),
        "no_audio": ("conv1d_mel", dict(audio=two, audio_length=[0, 8000]), "needs audio"),
        "no_text": ("text_cnn", dict(text=["네", " "]), "needs text"),
        # issue 17, class 1: a 1 ms clip used to get a confident label.
        "too_short": ("conv1d_mel", dict(audio=two, audio_length=[8000, 16]), "shorter than the minimum"),
        "too_short_fusion": ("demo_fusion", dict(audio=two, audio_length=[16, 8000], text=TEXTS[:2]),
                             "shorter than the minimum"),
    }


@pytest.mark.parametrize("case", ["nan", "inf", "length_too_long", "negative_length", "length_batch",
                                  "text_batch", "nothing", "no_audio", "no_text", "too_short",
                                  "too_short_fusion"])
def test_bad_requests_are_invalid_argument(case, loaded, kit):
    family, kwargs, message = _bad(kit)[case]
    fn = loaded[family].signatures["serving_default"]
    tensors = {k: tf.constant(np.asarray(v, np.float32) if k == "audio" else
                              (np.asarray(v, np.int32) if k == "audio_length" else v)) for k, v in kwargs.items()}
    with pytest.raises(tf.errors.InvalidArgumentError, match=message.replace("[", r"\[").replace("]", r"\]")):
        fn(**tensors)


def test_empty_and_tiny_wavs_are_refused_and_one_modality_is_said(loaded, kit):
    # issue 17, class 1: a WAV with a 0-byte data chunk and a 16-sample clip were labelled confidently;
    # a fusion model given audio alone scored the empty string without saying so.
    wav = loaded["conv1d_mel"].signatures["predict_wav"]
    for bad in (sm.wav_bytes(np.zeros([0], np.float32), 16000), sm.wav_bytes(kit.noise(0.001), 16000)):
        with pytest.raises(tf.errors.InvalidArgumentError, match="needs audio|shorter than the minimum"):
            wav(wav=tf.constant([bad]))
    clip = sm.wav_bytes(kit.noise(0.5), 16000)
    out = loaded["demo_fusion"].signatures["predict_wav"](wav=tf.constant([clip, clip, b""]),
                                                          text=tf.constant(["", "네", "네"]))
    assert [m.decode() for m in out["modalities"].numpy()] == ["audio", "audio+text", "text"]
    assert "modalities" not in loaded["conv1d_mel"].signatures["predict_wav"](wav=tf.constant([clip]))


def test_undecodable_wav_names_the_row(loaded, kit):
    good = sm.wav_bytes(kit.noise(0.3), 16000)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"not a decodable WAV.*wav row 1"):
        loaded["conv1d_mel"].signatures["predict_wav"](wav=tf.constant([good, b"RIFF\x00\x00garbage"]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="not a decodable WAV"):
        loaded["demo_fusion"].signatures["predict_wav"](wav=tf.constant([b"ID3 an mp3"]), text=tf.constant(["네"]))


def test_wrong_rank_and_dtype_are_rejected(loaded):
    fn = loaded["conv1d_mel"].signatures["serving_default"]
    # The graph itself checks the rank (EnsureShape), so TF Serving's C++ path gets the same message.
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Shape of tensor audio \[8000\] is not compatible"):
        fn(audio=tf.zeros([8000]), audio_length=tf.constant([8000]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="Shape of tensor text"):
        loaded["text_cnn"].signatures["serving_default"](text=tf.constant([["a", "b"]]))
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError), match="float|string"):
        fn(audio=tf.constant([["a"]]), audio_length=tf.constant([1]))


def test_export_is_atomic_and_versioned(model_dirs, tmp_path, monkeypatch):
    out = tmp_path / "exports"
    base = out / "text_cnn"
    base.mkdir(parents=True)
    stale = base / ".tmp-7-999999999"  # left by a killed export (no such pid)
    stale.mkdir()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt("interrupted while writing the warm-up file")

    monkeypatch.setattr(sm, "write_warmup_requests", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sm.export_model_dir(model_dirs["text_cnn"], str(out))
    assert os.listdir(base) == []  # no version dir, no temporary, stale one removed
    monkeypatch.undo()
    (base / "3").mkdir()
    assert sm.export_model_dir(model_dirs["text_cnn"], str(out)) == str(base / "4")
    with pytest.raises(FileExistsError, match="already exists"):
        sm.export_model_dir(model_dirs["text_cnn"], str(out), version=4)
    with pytest.raises(ValueError, match="hop"):
        sm.export_model_dir(model_dirs["conv1d_mel"], str(out), window_seconds=1.0, hop_seconds=2.0)


# --- a fresh process with only tensorflow + tensorflow_text ---------------------------------------------

_FRESH = textwrap.dedent(r"""
    import json, sys
    import numpy as np
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.framework import op_def_registry
    core = set(dir(tf.raw_ops))
    reports = {}
    for path, expected_path in zip(sys.argv[1::2], sys.argv[2::2]):
        sm = saved_model_pb2.SavedModel()
        with open(path + "/saved_model.pb", "rb") as f:
            sm.ParseFromString(f.read())
        graph = sm.meta_graphs[0].graph_def
        functions = {f.signature.name for f in graph.library.function}
        ops = {n.op for n in graph.node}
        for f in graph.library.function:
            ops |= {n.op for n in f.node_def}
        reports[path] = {"ops": ops - functions}
    before = {op for r in reports.values() for op in r["ops"] if op_def_registry.get(op) is not None}
    import tensorflow_text  # noqa: F401  (the only other op library TF Serving links)
    for path, expected_path in zip(sys.argv[1::2], sys.argv[2::2]):
        ops = reports[path].pop("ops")
        text_ops = {op for op in ops - before if op_def_registry.get(op) is not None}
        loaded = tf.saved_model.load(path)
        data = np.load(expected_path, allow_pickle=True)
        kwargs = {k[3:]: tf.constant(data[k]) for k in data.files if k.startswith("in_")}
        out = loaded.signatures["serving_default"](**kwargs)
        worst = max(float(np.abs(out[k[4:]].numpy() - data[k]).max()) for k in data.files if k.startswith("out_"))
        reports[path] = {"ops": len(ops), "text_ops": sorted(text_ops), "unknown": sorted(ops - core - text_ops),
                         "python": sorted(ops & {"PyFunc", "PyFuncStateless", "EagerPyFunc", "NumpyFunction"}),
                         "worst": worst}
    reports["modules"] = sorted(m for m in sys.modules if m.startswith("tfsent"))
    print(json.dumps(reports))
""")


@pytest.mark.slow
def test_fresh_process_ops_and_outputs(exports, model_dirs, tmp_path, kit):
    """Each family's export loads where only TF + tensorflow_text are imported, uses only their ops,
    and reproduces the in-memory model on a padded batch within 1e-5."""
    script = tmp_path / "fresh.py"
    script.write_text(_FRESH)
    rows = [kit.noise(0.9, seed=11), kit.noise(0.4, seed=12)]
    args = []
    for family, path in exports.items():
        takes_audio = family != "text_cnn"
        takes_text = family in ("demo_fusion", "text_cnn")
        texts = TEXTS[:2] if takes_text else None
        expected = _reference(family, model_dirs, rows if takes_audio else (), texts)
        arrays = {}
        if takes_audio:
            batch = np.zeros([2, len(rows[0])], np.float32)
            batch[0] = rows[0]
            batch[1, : len(rows[1])] = rows[1]
            arrays.update(in_audio=batch, in_audio_length=np.array([len(r) for r in rows], np.int32))
        if takes_text:
            arrays["in_text"] = np.array(texts, dtype=object)
        arrays["out_" + _served(None, family)] = expected
        npz = tmp_path / f"{family}.npz"
        np.savez(npz, **arrays)
        args += [path, str(npz)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = json.loads(proc.stdout.strip().splitlines()[-1])
    assert reports.pop("modules") == [], "tfsent must not be imported to serve"
    for family, path in exports.items():
        report = reports[path]
        assert report["unknown"] == [] and report["python"] == [], (family, report)
        assert report["worst"] <= TOL, (family, report)
        if family in ("demo_fusion", "text_cnn"):
            assert "FastWordpieceTokenizeWithOffsets" in report["text_ops"], report


def _fmt(format_tag, channels, rate, byte_rate, block_align, bits):
    return struct.pack("<HHIIHH", format_tag, channels, rate, byte_rate, block_align, bits)


# Header fields: random (mostly refused), or coherent so that the random samples get decoded.
_random_fmts = st.builds(_fmt, st.sampled_from([1, 3, 0]), st.sampled_from([0, 1, 2, 9]),
                         st.sampled_from([0, 8000, 16000, 2**31]), st.integers(0, 2**32 - 1),
                         st.sampled_from([0, 2, 4]), st.sampled_from([0, 8, 16, 32]))
_coherent_fmts = st.sampled_from([_fmt(1, 1, 16000, 32000, 2, 16), _fmt(1, 1, 8000, 16000, 2, 16),
                                  _fmt(3, 1, 16000, 64000, 4, 32)])


def _wav(fmt, body, size=None):
    """A 44-byte-header WAV: `fmt`, then a data chunk of `body` that declares `size` (else its true size)."""
    size = len(body) if size is None else size
    return b"RIFFxxxxWAVEfmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", size) + body


def _wavs(fmts, sizes=st.none(), lengths=(0, 2, 64, 4000)):
    bodies = st.sampled_from(lengths).flatmap(lambda n: st.binary(min_size=n, max_size=n))
    return st.builds(_wav, fmts, bodies, sizes)


_wav_requests = st.one_of(
    st.sampled_from([1, 44, 300]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    _wavs(_random_fmts, sizes=st.sampled_from([0, 2**31]) | st.none()),
    _wavs(_coherent_fmts, lengths=(64, 4000)),
)
_texts = st.sampled_from(["", "네", "😀" * 30, "\x00\x1b", "화가 " * 300]) | st.text(max_size=40)


def test_random_requests_are_answered_or_refused(loaded, kit):
    # issue 17's property layer for serving: random bytes and random WAV headers as `wav`, random
    # texts. Invariant: answered with finite probabilities, or refused with InvalidArgument; never
    # another error, never an answer built on "audio" from nothing.
    fn = loaded["demo_fusion"].signatures["predict_wav"]
    good = sm.wav_bytes(kit.noise(0.3), 16000)
    outcomes = collections.Counter()

    # `given` on an inner function: the outcomes are counted over all examples.
    @settings(max_examples=20)
    @given(wav=_wav_requests, text=_texts)
    @example(wav=_wav(_fmt(1, 1, 16000, 32000, 2, 16), bytes(range(250)) * 16), text="")  # 0.125 s: audio only
    @example(wav=_wav(_fmt(1, 1, 16000, 32000, 2, 16), b""), text="네")  # no samples: text only
    def check(wav, text):
        try:
            out = fn(wav=tf.constant([good, wav]), text=tf.constant(["네", text]))
        except tf.errors.InvalidArgumentError:
            outcomes["refused"] += 1
            return
        assert np.isfinite(out["probabilities"].numpy()).all()
        modalities = out["modalities"].numpy()[1].decode()
        outcomes[modalities] += 1
        assert modalities in ("text", "audio", "audio+text")
        if not text.strip(" \t\n\v\f\r"):  # tf.strings.strip: ASCII whitespace
            assert "audio" in modalities, modalities
        if wav[36:40] == b"data" and (len(wav) == 44 or wav[40:44] == bytes(4)):  # a WAV of no samples
            assert "audio" not in modalities, modalities

    check()
    assert outcomes["refused"] and outcomes["audio"] and outcomes["text"], outcomes
