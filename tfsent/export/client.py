"""A small TF Serving client: REST (`/v1/models/<name>:predict`) and gRPC (`PredictionService`).

REST needs only the standard library and numpy; gRPC needs `tensorflow-serving-api` (and imports
TensorFlow for the tensor protos). Both return a dict of numpy arrays, decode string outputs to
`str`, apply a timeout to every call and turn transport failures into clear exceptions:

- `ServingConnectionError`: nothing answers at HOST:PORT (refused, unknown host, ...).
- `ServingTimeoutError`: the server did not answer within `timeout` seconds.
- `ServingRequestError`: the server answered with an error (bad request, unknown model...); it
  carries the server's `status` (HTTP code or gRPC status name) and message.

Example:

```python
client = ServingClient("localhost:8501", "demo_fusion")                 # REST
out = client.predict_wav([open("a.wav", "rb").read()], text=["오늘 정말 행복해요"])
out["label"][0], out["probabilities"][0]
grpc_client = ServingClient("localhost:8500", "demo_fusion", protocol="grpc")
grpc_client.predict({"audio": audio, "audio_length": lengths, "text": texts})
```
"""

from __future__ import annotations

import base64
import json
import socket
import urllib.error
import urllib.request

import numpy as np

PROTOCOLS = ("rest", "grpc")


class ServingError(RuntimeError):
    """Base class of the client's errors."""


class ServingConnectionError(ServingError, ConnectionError):
    """The server cannot be reached."""


class ServingTimeoutError(ServingError, TimeoutError):
    """The server did not answer in time."""


class ServingRequestError(ServingError):
    """The server answered with an error.

    Attributes:
        status: HTTP status code (REST) or gRPC status code name (`INVALID_ARGUMENT`, ...).
        message: the server's error message.
    """

    def __init__(self, status, message, url=""):
        self.status = status
        self.message = message
        super().__init__(f"{url}: {status}: {message}" if url else f"{status}: {message}")


def _split_server(server):
    server = server.strip()
    for prefix in ("http://", "https://", "grpc://"):
        if server.startswith(prefix):
            server = server[len(prefix):]
    server = server.rstrip("/")
    host, sep, port = server.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"server must be HOST:PORT (e.g. localhost:8501); got {server!r}")
    return host, int(port)


def _to_json_value(value):
    """numpy / list input → JSON-able nested lists; bytes become TF Serving's `{"b64": ...}`."""
    array = np.asarray(value, dtype=object if _is_text(value) else None)
    if array.dtype == object or array.dtype.kind in "SU":
        def convert(v):
            if isinstance(v, (bytes, bytearray)):
                return {"b64": base64.b64encode(bytes(v)).decode("ascii")}
            return str(v)
        return np.vectorize(convert, otypes=[object])(array).tolist() if array.size else array.tolist()
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise ValueError("inputs contain NaN or Inf, which JSON cannot carry; the server would reject them")
    return array.tolist()


def _is_text(value):
    flat = value
    while isinstance(flat, (list, tuple)) and flat:
        flat = flat[0]
    if isinstance(flat, np.ndarray):
        return flat.dtype == object or flat.dtype.kind in "SU"
    return isinstance(flat, (str, bytes, bytearray))


def _from_json_value(value):
    array = np.asarray(value)
    if array.dtype == object and array.size and isinstance(array.flat[0], dict):
        return np.vectorize(lambda v: base64.b64decode(v["b64"]), otypes=[object])(array)
    return array


class ServingClient:
    """Calls a model served by TF Serving (or anything speaking its REST / gRPC API).

    Args:
        server: `HOST:PORT` (REST: TF Serving's `--rest_api_port`, 8501 by default; gRPC: `--port`,
            8500).
        model_name: the served model name (`MODEL_NAME` of the TF Serving container).
        protocol: `rest` or `grpc`.
        version: a model version to pin (default: the latest one the server has loaded).
        timeout: seconds to wait for each answer.
        rest_format: `columnar` (`"inputs"` → `"outputs"`) or `row` (`"instances"` → `"predictions"`).

    Example:

    ```python
    client = ServingClient("localhost:8501", "demo_fusion", timeout=5)
    client.predict({"audio": [[0.0] * 16000], "audio_length": [16000], "text": ["네"]})
    ```
    """

    def __init__(self, server, model_name, *, protocol="rest", version=None, timeout=10.0,
                 rest_format="columnar"):
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}; got {protocol!r}")
        if rest_format not in ("columnar", "row"):
            raise ValueError(f"rest_format must be 'columnar' or 'row'; got {rest_format!r}")
        if not model_name:
            raise ValueError("model_name is required (the name TF Serving serves the model under)")
        self.host, self.port = _split_server(server)
        self.model_name = model_name
        self.protocol = protocol
        self.version = None if version is None else int(version)
        self.timeout = float(timeout)
        self.rest_format = rest_format
        self._stub = None
        self._channel = None

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    # --- high level -----------------------------------------------------------------------------

    def predict_wav(self, wavs, text=None):
        """Whole WAV files (bytes) and their transcripts → outputs (signature `predict_wav`)."""
        inputs = {"wav": [bytes(w) for w in wavs]}
        if text is not None:
            inputs["text"] = list(text)
        return self.predict(inputs, signature_name="predict_wav")

    def predict_audio(self, audio, audio_length=None, text=None):
        """float32 `[B, S]` samples at the model rate (+ real lengths) → outputs (`serving_default`)."""
        audio = np.asarray(audio, np.float32)
        if audio.ndim != 2:
            raise ValueError(f"audio must be [batch, samples]; got shape {audio.shape}")
        if audio_length is None:
            audio_length = np.full([audio.shape[0]], audio.shape[1], np.int32)
        inputs = {"audio": audio, "audio_length": np.asarray(audio_length, np.int32)}
        if text is not None:
            inputs["text"] = list(text)
        return self.predict(inputs)

    def predict(self, inputs, signature_name="serving_default"):
        """Named input arrays → dict of output arrays (string outputs as `str`)."""
        if self.protocol == "grpc":
            return self._predict_grpc(inputs, signature_name)
        return self._predict_rest(inputs, signature_name)

    def status(self):
        """The server's model status (REST `GET /v1/models/<name>`; gRPC `GetModelStatus`)."""
        if self.protocol == "rest":
            return self._http("GET", self._model_url())
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

        request = get_model_status_pb2.GetModelStatusRequest()
        self._fill_spec(request.model_spec)
        stub = model_service_pb2_grpc.ModelServiceStub(self._grpc_channel())
        response = self._grpc_call(stub.GetModelStatus, request)
        return json_format.MessageToDict(response)

    def close(self):
        if self._channel is not None:
            self._channel.close()
            self._channel = self._stub = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- REST -----------------------------------------------------------------------------------

    def _model_url(self):
        url = f"http://{self.host}:{self.port}/v1/models/{self.model_name}"
        if self.version is not None:
            url += f"/versions/{self.version}"
        return url

    def _predict_rest(self, inputs, signature_name):
        if self.rest_format == "row":
            names = list(inputs)
            columns = [_to_json_value(inputs[n]) for n in names]
            rows = len(columns[0]) if columns else 0
            if any(len(c) != rows for c in columns):
                raise ValueError("row format needs every input to have the same batch size")
            body = {"signature_name": signature_name,
                    "instances": [{n: c[i] for n, c in zip(names, columns)} for i in range(rows)]}
        else:
            body = {"signature_name": signature_name,
                    "inputs": {name: _to_json_value(value) for name, value in inputs.items()}}
        answer = self._http("POST", self._model_url() + ":predict", body)
        if "outputs" in answer:
            outputs = answer["outputs"]
            if not isinstance(outputs, dict):  # a signature with one output answers its bare value
                outputs = {"output": outputs}
            return {name: _from_json_value(value) for name, value in outputs.items()}
        if "predictions" in answer:
            rows = answer["predictions"]
            if rows and not isinstance(rows[0], dict):
                return {"output": _from_json_value(rows)}
            names = rows[0].keys() if rows else []
            return {n: _from_json_value([r[n] for r in rows]) for n in names}
        raise ServingRequestError("bad answer", f"neither 'outputs' nor 'predictions' in {list(answer)}",
                                  self._model_url())

    def _http(self, method, url, body=None):
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(url, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as e:
            text = e.read().decode("utf-8", "replace")
            try:
                message = json.loads(text).get("error", text)
            except (ValueError, AttributeError):
                message = text
            raise ServingRequestError(e.code, message, url) from None
        except (socket.timeout, TimeoutError) as e:
            raise ServingTimeoutError(f"{url}: no answer within {self.timeout:g} s ({e})") from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, (socket.timeout, TimeoutError)):
                raise ServingTimeoutError(f"{url}: no answer within {self.timeout:g} s") from None
            raise ServingConnectionError(
                f"cannot reach TF Serving's REST API at {self.address} ({e.reason}); is the server running "
                f"and is {self.port} its --rest_api_port (8501 by default)?") from None
        except (ConnectionError, OSError) as e:
            raise ServingConnectionError(f"connection to {self.address} failed: {e}") from None
        try:
            return json.loads(payload)
        except ValueError:
            raise ServingRequestError("bad answer", f"not JSON: {payload[:200]!r}", url) from None

    # --- gRPC -----------------------------------------------------------------------------------

    def _grpc_channel(self):
        if self._channel is None:
            import grpc

            self._channel = grpc.insecure_channel(self.address, options=[
                ("grpc.max_send_message_length", 256 << 20), ("grpc.max_receive_message_length", 256 << 20)])
        return self._channel

    def _fill_spec(self, spec, signature_name=None):
        spec.name = self.model_name
        if self.version is not None:
            spec.version.value = self.version
        if signature_name:
            spec.signature_name = signature_name

    def _grpc_call(self, method, request):
        import grpc

        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as e:
            code = e.code()
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise ServingTimeoutError(
                    f"grpc://{self.address}: no answer within {self.timeout:g} s") from None
            if code == grpc.StatusCode.UNAVAILABLE:
                raise ServingConnectionError(
                    f"cannot reach TF Serving's gRPC API at {self.address} ({e.details()}); is the server "
                    f"running and is {self.port} its --port (8500 by default)?") from None
            raise ServingRequestError(code.name, e.details(), f"grpc://{self.address}") from None

    def _predict_grpc(self, inputs, signature_name):
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

        request = predict_pb2.PredictRequest()
        self._fill_spec(request.model_spec, signature_name)
        for name, value in inputs.items():
            if _is_text(value):
                value = np.array([v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in
                                  np.asarray(value, object).reshape(-1)], object).reshape(np.shape(value))
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
        if self._stub is None:
            self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._grpc_channel())
        response = self._grpc_call(self._stub.Predict, request)
        outputs = {}
        for name, proto in response.outputs.items():
            array = tf.make_ndarray(proto)
            if array.dtype == object:
                array = np.vectorize(lambda b: b.decode("utf-8", "replace"), otypes=[object])(array) \
                    if array.size else array
            outputs[name] = array
        return outputs
