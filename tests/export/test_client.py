"""tfsent.serving against the loopback TF Serving stand-in (REST + gRPC), and bin/predict."""

import io
import json
import os
import socket

import numpy as np
import pytest
import tensorflow as tf

from tfsent.corpus.manifest import write_manifest
from tfsent.export import predict as predict_cli
from tfsent.export.saved_model import wav_bytes
from tfsent.serving import (ServingClient, ServingConnectionError, ServingRequestError,
                            ServingTimeoutError)


@pytest.fixture(scope="module")
def server(exports, standin_module):
    bases = {f: os.path.dirname(exports[f]) for f in ("demo_fusion", "conv1d_mel", "text_cnn")}
    with standin_module.StandInServer(bases) as s:
        yield s


def _clients(server, name, **kwargs):
    return {
        "rest": ServingClient(f"127.0.0.1:{server.rest_port}", name, **kwargs),
        "rest_row": ServingClient(f"127.0.0.1:{server.rest_port}", name, rest_format="row", **kwargs),
        "grpc": ServingClient(f"127.0.0.1:{server.grpc_port}", name, protocol="grpc", **kwargs),
    }


def test_rest_and_grpc_match_the_saved_model(server, loaded, kit):
    audio = np.zeros([2, 12000], np.float32)
    audio[0] = kit.noise(0.75, seed=1)
    audio[1, :5000] = kit.noise(5000 / 16000, seed=2)
    lengths = np.array([12000, 5000], np.int32)
    texts = ["오늘 정말 행복해요!", "화가 나요"]
    local = loaded["demo_fusion"].signatures["serving_default"](
        audio=tf.constant(audio), audio_length=tf.constant(lengths), text=tf.constant(texts))
    wavs = [wav_bytes(audio[0], 16000), wav_bytes(audio[1, :5000], 16000)]
    local_wav = loaded["demo_fusion"].signatures["predict_wav"](wav=tf.constant(wavs), text=tf.constant(texts))
    for kind, client in _clients(server, "demo_fusion").items():
        out = client.predict_audio(audio, lengths, texts)
        np.testing.assert_allclose(out["probabilities"], local["probabilities"].numpy(), atol=1e-6, err_msg=kind)
        assert list(out["label"]) == [s.decode() for s in local["label"].numpy()], kind
        assert list(out["classes"][0]) == kit.CLASSES
        by_wav = client.predict_wav(wavs, texts)  # REST sends the bytes as {"b64": ...}
        np.testing.assert_allclose(by_wav["probabilities"], local_wav["probabilities"].numpy(), atol=1e-6,
                                   err_msg=kind)
    status = ServingClient(f"127.0.0.1:{server.grpc_port}", "text_cnn", protocol="grpc").status()
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    assert ServingClient(f"127.0.0.1:{server.rest_port}", "text_cnn").status()["model_version_status"]


def test_bad_request_is_invalid_argument_and_server_survives(server, kit):
    audio = kit.noise(0.5)[None]
    for kind, client in _clients(server, "conv1d_mel").items():
        with pytest.raises(ServingRequestError, match="larger than the audio row") as info:
            client.predict({"audio": audio, "audio_length": np.array([9000], np.int32)})
        assert info.value.status in (400, "INVALID_ARGUMENT"), kind
        with pytest.raises(ServingRequestError, match="not a decodable WAV") as info:
            client.predict_wav([b"definitely not a wav"])
        assert info.value.status in (400, "INVALID_ARGUMENT"), kind
        if kind != "rest_row":  # (row format needs a batch dimension to split rows on)
            with pytest.raises(ServingRequestError, match="Shape of tensor audio") as info:
                client.predict({"audio": audio[0], "audio_length": np.array([8000], np.int32)})
            assert info.value.status in (400, "INVALID_ARGUMENT"), kind
        # ...and the next good request is answered.
        assert client.predict_audio(audio)["probabilities"].shape == (1, 4)
    with pytest.raises(ServingRequestError, match="float") as info:  # wrong dtype over gRPC
        _clients(server, "conv1d_mel")["grpc"].predict(
            {"audio": audio.astype(np.float64), "audio_length": np.array([8000], np.int32)})
    with pytest.raises(ServingRequestError, match="not of expected type"):  # and over REST
        _clients(server, "conv1d_mel")["rest"].predict({"audio": [["x"]], "audio_length": [1]})
    with pytest.raises(ValueError, match="NaN"):  # JSON cannot carry NaN: the client says so up front
        _clients(server, "conv1d_mel")["rest"].predict_audio(np.full([1, 100], np.nan))
    for kind, client in _clients(server, "no_such_model").items():
        with pytest.raises(ServingRequestError, match="not found") as info:
            client.predict({"text": ["네"]})
        assert info.value.status in (404, "NOT_FOUND"), kind


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_errors_and_timeouts(exports, standin_module):
    port = _free_port()  # nothing listens there any more
    with pytest.raises(ServingConnectionError, match=f"127.0.0.1:{port}"):
        ServingClient(f"127.0.0.1:{port}", "m", timeout=2).predict({"text": ["네"]})
    with pytest.raises(ServingConnectionError, match="gRPC"):
        ServingClient(f"127.0.0.1:{port}", "m", protocol="grpc", timeout=2).predict({"text": ["네"]})
    with pytest.raises(ValueError, match="HOST:PORT"):
        ServingClient("localhost", "m")
    slow = standin_module.StandInServer({"text_cnn": os.path.dirname(exports["text_cnn"])}, delay_seconds=1.5)
    with slow:
        for protocol, port in (("rest", slow.rest_port), ("grpc", slow.grpc_port)):
            client = ServingClient(f"127.0.0.1:{port}", "text_cnn", protocol=protocol, timeout=0.3)
            with pytest.raises(ServingTimeoutError, match="0.3 s"):
                client.predict({"text": ["네"]})


def test_bin_predict_local_and_server(exports, server, tmp_path, kit):
    folder = tmp_path / "wavs"
    folder.mkdir()
    (folder / "a.wav").write_bytes(wav_bytes(kit.noise(0.6, seed=3), 16000))
    (folder / "b.wav").write_bytes(wav_bytes(kit.noise(1.7, seed=4), 16000))
    (folder / "b.txt").write_text("화가 나요", encoding="utf-8")
    items = predict_cli.collect_inputs(str(folder), text="오늘 정말 행복해요")
    assert [(i[0], i[2]) for i in items] == [("a.wav", "오늘 정말 행복해요"), ("b.wav", "화가 나요")]
    local_out = io.StringIO()
    local = predict_cli.predict(predict_cli.LocalRunner(exports["demo_fusion"]), items, 1, out=local_out)
    lines = [json.loads(line) for line in local_out.getvalue().splitlines()]
    assert lines == local and len(lines) == 2
    assert set(lines[0]["probabilities"]) == set(kit.CLASSES) and lines[0]["label"] in kit.CLASSES
    for protocol, port in (("rest", server.rest_port), ("grpc", server.grpc_port)):
        runner = predict_cli.ServerRunner(f"127.0.0.1:{port}", "demo_fusion", protocol, None, 10)
        remote = predict_cli.predict(runner, items, 2, out=io.StringIO())
        for a, b in zip(local, remote):
            assert a["label"] == b["label"]
            for c in kit.CLASSES:
                assert abs(a["probabilities"][c] - b["probabilities"][c]) < 1e-5
    regressor = predict_cli.predict(predict_cli.LocalRunner(exports["arousal_regressor"]), items, 2,
                                    out=io.StringIO())
    assert all(isinstance(r["arousal"], float) and "label" not in r for r in regressor)
    text_only = predict_cli.predict(predict_cli.LocalRunner(exports["text_cnn"]),
                                    predict_cli.collect_inputs(text="너무 슬퍼요"), 1, out=io.StringIO())
    assert text_only[0]["label"] in kit.CLASSES
    with pytest.raises(predict_cli.UsageError, match="no such file"):
        predict_cli.collect_inputs(str(folder / "missing.wav"))
    with pytest.raises(predict_cli.UsageError, match="not a SavedModel"):
        predict_cli.LocalRunner(str(tmp_path))


def test_bin_predict_manifest(exports, tmp_path, kit):
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "u1.wav").write_bytes(wav_bytes(kit.noise(0.5, seed=5), 16000))
    records = [{"utt_id": "u1", "audio_path": "audio/u1.wav", "text": "오늘 정말 행복해요", "emotion": "happy",
                "split": "test"},
               {"utt_id": "u2", "audio_path": "audio/u1.wav", "text": "화가 나요", "emotion": "angry",
                "split": "train"}]
    path = write_manifest(str(tmp_path), records, {"classes": kit.CLASSES, "data_dir": str(tmp_path)})
    items = predict_cli.collect_inputs(manifest=path, split="test")
    rows = predict_cli.predict(predict_cli.LocalRunner(exports["demo_fusion"]), items, 4, out=io.StringIO())
    assert [(r["id"], r["emotion"]) for r in rows] == [("u1", "happy")]
    with pytest.raises(predict_cli.UsageError, match="no rows in split 'valid'"):
        predict_cli.collect_inputs(manifest=path, split="valid")
    # The manifest is read by tfsent.corpus.manifest.read_manifest: a CSV that its sidecar does not
    # describe is the user's mistake, named as such.
    (tmp_path / "manifest.csv").write_text("utt_id,audio_path,text\nu1,audio/u1.wav,네\n", encoding="utf-8")
    with pytest.raises(predict_cli.UsageError, match="not a bin/prepare manifest"):
        predict_cli.collect_inputs(manifest=path)
    with pytest.raises(predict_cli.UsageError, match="no such file"):
        predict_cli.collect_inputs(manifest=str(tmp_path / "nope.csv"))
