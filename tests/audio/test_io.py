"""Decoding: pure-TF WAV path, soundfile fallback, corrupt-file handling, export safety."""
import os

import librosa
import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from tfsent.audio.io import decode_wav_bytes, load_audio, load_audio_checked, parse_wav_header

FORMATS = [
    ("WAV", "PCM_16", "wav", True),
    ("WAV", "PCM_U8", "wav", True),
    ("WAV", "PCM_24", "wav", True),
    ("WAV", "PCM_32", "wav", True),
    ("WAV", "FLOAT", "wav", True),
    ("WAV", "DOUBLE", "wav", True),
    ("WAVEX", "PCM_16", "wav", True),
    ("FLAC", "PCM_16", "flac", False),
    ("OGG", "VORBIS", "ogg", False),
]


def _stereo(n=1200, seed=0):
    rng = np.random.default_rng(seed)
    return (0.6 * rng.uniform(-1, 1, (n, 2))).astype(np.float32)


def _write(path, data, sr, fmt="WAV", subtype="PCM_16"):
    sf.write(path, data, sr, format=fmt, subtype=subtype)
    return os.fspath(path)


def _sf_mono(path):
    data, _ = sf.read(path, dtype="float32", always_2d=True)
    return data.mean(axis=1)


@pytest.mark.parametrize("fmt,subtype,ext,pure_tf", FORMATS, ids=[f"{f}-{s}" for f, s, _, _ in FORMATS])
def test_load_audio_formats_match_soundfile(tmp_path, fmt, subtype, ext, pure_tf):
    path = _write(tmp_path / f"clip.{ext}", _stereo(), 16000, fmt, subtype)
    expected = _sf_mono(path)
    out = load_audio(tf.constant(path), 16000).numpy()
    assert out.dtype == np.float32 and out.shape == expected.shape
    np.testing.assert_allclose(out, expected, atol=1e-6)
    samples, ok = load_audio_checked(tf.constant(path), 16000)
    assert bool(ok) and samples.shape == expected.shape
    assert bool(parse_wav_header(tf.io.read_file(path))["valid"]) == pure_tf
    if pure_tf:
        np.testing.assert_allclose(decode_wav_bytes(tf.io.read_file(path), 16000).numpy(), expected, atol=1e-6)


def test_decode_wav_bytes_any_rate_stereo_resamples(tmp_path, signals):
    left = signals("sine", 44100, 0.5)
    stereo = np.stack([left, 0.5 * left], axis=1)
    path = _write(tmp_path / "s.wav", stereo, 44100, "WAV", "PCM_24")
    out = decode_wav_bytes(tf.io.read_file(path), 16000).numpy()
    ref = librosa.resample(_sf_mono(path), orig_sr=44100, target_sr=16000, res_type="soxr_hq")
    assert out.shape == ref.shape
    err = out[1600:-1600] - ref[1600:-1600]
    assert 10 * np.log10(np.sum(ref[1600:-1600] ** 2) / np.sum(err**2)) > 80.0


@pytest.mark.slow
def test_decode_wav_bytes_is_pure_tf_and_exportable(tmp_path):
    class Decoder(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
        def decode(self, wav_bytes):
            return decode_wav_bytes(wav_bytes, 16000)

    path = _write(tmp_path / "c.wav", _stereo(4800), 48000, "WAV", "FLOAT")
    module = Decoder()
    export_dir = os.fspath(tmp_path / "dec")
    tf.saved_model.save(module, export_dir)
    loaded = tf.saved_model.load(export_dir)
    wav = tf.io.read_file(path)
    np.testing.assert_allclose(loaded.decode(wav).numpy(), module.decode(wav).numpy(), atol=1e-7)
    assert loaded.decode(wav).shape == (1600,)
    graph_def = module.decode.get_concrete_function().graph.as_graph_def()
    ops = {n.op for n in graph_def.node} | {
        n.op for f in graph_def.library.function for n in f.node_def
    }
    assert "DecodeWav" in ops
    assert not ops & {"PyFunc", "EagerPyFunc", "PyFuncStateless"}


def test_decode_wav_bytes_rejects_non_wav(tmp_path):
    path = _write(tmp_path / "c.flac", _stereo(), 16000, "FLAC", "PCM_16")
    with pytest.raises(tf.errors.InvalidArgumentError, match="not a decodable WAV"):
        decode_wav_bytes(tf.io.read_file(path), 16000)
    with pytest.raises(tf.errors.InvalidArgumentError, match="not a decodable WAV"):
        decode_wav_bytes(tf.constant(b"RIFF"), 16000)


def _corrupt_files(tmp_path):
    good = _write(tmp_path / "good.wav", _stereo(800), 16000)
    raw = open(good, "rb").read()
    files = {
        "good": good,
        "garbage": tmp_path / "garbage.wav",
        "truncated_header": tmp_path / "trunc.wav",
        "empty_file": tmp_path / "empty.wav",
        "no_samples": tmp_path / "nosamples.wav",
        "missing": tmp_path / "missing.wav",
        "glob[chars]?": tmp_path / "glob[1]*.wav",
    }
    files["garbage"].write_bytes(b"this is not audio at all" * 10)
    files["truncated_header"].write_bytes(raw[:30])
    files["empty_file"].write_bytes(b"")
    _write(files["no_samples"], np.zeros([0, 1], np.float32), 16000)
    files["glob[chars]?"].write_bytes(raw)
    return {k: os.fspath(v) for k, v in files.items()}


def test_decode_wav_bytes_odd_headers_fail_cleanly_or_give_no_samples():
    # issue 17 sweep: a 1 Hz header decoded to 12 s of audio; a data chunk shorter than one frame
    # crashed the resampler (a Reshape error naming no row).
    one_hz = (b"RIFF$\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x02\x00\x01\x00\x00\x00\xe6\xc54Z"
              b"\x03\x00 \x00datad\x00\x00\x00" + bytes(100))
    with pytest.raises(tf.errors.InvalidArgumentError, match="not a decodable WAV.*1000-768000 Hz"):
        decode_wav_bytes(tf.constant(one_hz), 16000)
    part_frame = (b"RIFF'\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x06\x00D\xac\x00\x00\x95q\xa5x"
                  b"\x02\x00 \x00data\x00\x00\x00\x80" + bytes(3))
    assert decode_wav_bytes(tf.constant(part_frame), 16000).shape == (0,)


def test_load_audio_checked_flags_bad_files(tmp_path):
    files = _corrupt_files(tmp_path)
    for name, path in files.items():
        samples, ok = load_audio_checked(tf.constant(path), 16000)
        assert bool(ok) == (name in ("good", "glob[chars]?")), name
        assert samples.dtype == tf.float32
        assert (samples.shape[0] > 0) == bool(ok), name


def test_pipeline_can_filter_and_count_bad_files(tmp_path):
    files = _corrupt_files(tmp_path)
    ids = list(files)
    paths = [files[k] for k in ids]
    ds = tf.data.Dataset.from_tensor_slices((ids, paths)).map(
        lambda i, p: (i,) + tuple(load_audio_checked(p, 8000))
    )
    bad = [i.numpy().decode() for i, _, ok in ds if not ok]
    assert sorted(bad) == sorted(set(ids) - {"good", "glob[chars]?"})
    kept = list(ds.filter(lambda i, s, ok: ok))
    assert len(kept) == 2 and all(s.shape == (400,) for _, s, _ in kept)


def test_load_audio_raises_naming_the_file(tmp_path):
    files = _corrupt_files(tmp_path)
    with pytest.raises(tf.errors.InvalidArgumentError, match="garbage.wav"):
        load_audio(tf.constant(files["garbage"]), 16000)
    with pytest.raises(tf.errors.NotFoundError):
        load_audio(tf.constant(files["missing"]), 16000)


def test_load_audio_in_dataset_map_resamples(tmp_path, signals):
    paths = [
        _write(tmp_path / "a.wav", signals("sine", 48000, 0.3), 48000),
        _write(tmp_path / "b.flac", signals("sine", 22050, 0.2), 22050, "FLAC", "PCM_16"),
    ]
    ds = tf.data.Dataset.from_tensor_slices(paths).map(lambda p: load_audio(p, 16000))
    shapes = [x.shape[0] for x in ds]
    assert shapes == [4800, 3200]
