"""A loopback stand-in for TF Serving (a test double; not part of the tfsent package).

TF Serving itself is not installable here (no Debian or PyPI package), so the client tests talk to this
small server instead. It implements the parts of TF Serving's APIs the client uses, with TF Serving's
request and answer formats, over `tf.saved_model.load` of a real exported version dir:

- REST (`--rest_api_port`): `POST /v1/models/<name>[/versions/<v>]:predict` with `signature_name` and
  either columnar `inputs` (answer `{"outputs": ...}`) or row `instances` (answer
  `{"predictions": [...]}`), `{"b64": ...}` for binary strings; `GET /v1/models/<name>` (status).
  Errors answer `{"error": message}` with 400 (invalid argument) or 404 (unknown model / signature).
- gRPC (`--port`): `tensorflow.serving.PredictionService/Predict` and `ModelService/GetModelStatus`.

As in TF Serving, JSON values are parsed with the signature's dtypes, and a request the model rejects
answers INVALID_ARGUMENT with the graph's message; the server itself keeps running.

Example:

```python
with StandInServer({"demo_fusion": "exports/demo_fusion"}) as server:
    ServingClient(f"127.0.0.1:{server.rest_port}", "demo_fusion").predict(...)
```
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops, as TF Serving links them)

_URL = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?(?P<verb>:predict)?$")


class ServingFailure(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code  # "INVALID_ARGUMENT" or "NOT_FOUND"
        self.message = message


class StandInServer:
    """Serves every model base dir given (`{name: EXPORT_DIR/<name>}`) over REST and gRPC on loopback.

    Args:
        models: served name → model base dir (holding integer version dirs).
        delay_seconds: sleep before answering each predict call (to test client timeouts).
    """

    def __init__(self, models, delay_seconds=0.0):
        self.delay_seconds = delay_seconds
        self._models = {}
        for name, base in models.items():
            versions = sorted(int(v) for v in os.listdir(base) if v.isdigit())
            if not versions:
                raise ValueError(f"{base}: no version dirs")
            self._models[name] = {v: tf.saved_model.load(os.path.join(base, str(v))) for v in versions}
        self._lock = threading.Lock()  # TF Serving runs requests concurrently; one at a time is enough here
        self.rest_port = None
        self.grpc_port = None

    # --- shared -------------------------------------------------------------------------------

    def _signature(self, name, version, signature_name):
        if name not in self._models:
            raise ServingFailure("NOT_FOUND", f"Servable not found for request: Latest({name})")
        versions = self._models[name]
        if version is None:
            version = max(versions)
        if version not in versions:
            raise ServingFailure("NOT_FOUND", f"Servable not found for request: Specific({name}, {version})")
        signatures = versions[version].signatures
        signature_name = signature_name or "serving_default"
        if signature_name not in signatures:
            raise ServingFailure("NOT_FOUND", f"Serving signature name: \"{signature_name}\" not found in "
                                              f"signature def")
        return version, signatures[signature_name]

    def run(self, name, version, signature_name, arrays):
        """Validates like TF Serving (names, dtypes), runs the signature, maps errors."""
        _, fn = self._signature(name, version, signature_name)
        specs = fn.structured_input_signature[1]
        missing = sorted(set(specs) - set(arrays))
        extra = sorted(set(arrays) - set(specs))
        if missing or extra:
            raise ServingFailure("INVALID_ARGUMENT", f"input names do not match the signature: missing {missing}, "
                                                     f"unexpected {extra}; expected {sorted(specs)}")
        tensors = {}
        for key, spec in specs.items():
            array = arrays[key]
            if isinstance(array, tf.Tensor):
                if array.dtype != spec.dtype:
                    raise ServingFailure("INVALID_ARGUMENT", f"Expects arg '{key}' to be {spec.dtype.name} but "
                                                             f"{array.dtype.name} is provided")
                tensors[key] = array
            else:
                tensors[key] = array
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        try:
            with self._lock:
                out = fn(**tensors)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as e:
            message = getattr(e, "message", None) or str(e)
            raise ServingFailure("INVALID_ARGUMENT", message) from None
        return {k: v.numpy() for k, v in out.items()}

    # --- REST ---------------------------------------------------------------------------------

    def _rest_predict(self, name, version, body):
        if not isinstance(body, dict):
            raise ServingFailure("INVALID_ARGUMENT", "JSON body must be an object")
        _, fn = self._signature(name, version, body.get("signature_name"))
        specs = fn.structured_input_signature[1]
        if "instances" in body:
            rows = body["instances"]
            if not isinstance(rows, list) or not rows:
                raise ServingFailure("INVALID_ARGUMENT", "'instances' must be a non-empty list")
            if isinstance(rows[0], dict):
                columns = {k: [r.get(k) for r in rows] for k in rows[0]}
            elif len(specs) == 1:
                columns = {next(iter(specs)): rows}
            else:
                raise ServingFailure("INVALID_ARGUMENT", "instances must be objects for a multi-input signature")
            row_format = True
        elif "inputs" in body:
            columns = body["inputs"]
            if not isinstance(columns, dict):
                if len(specs) != 1:
                    raise ServingFailure("INVALID_ARGUMENT", "'inputs' must be an object for a multi-input signature")
                columns = {next(iter(specs)): columns}
            row_format = False
        else:
            raise ServingFailure("INVALID_ARGUMENT", "Missing 'inputs' or 'instances' key")
        arrays = {}
        for key, value in columns.items():
            if key not in specs:
                arrays[key] = value
                continue
            arrays[key] = _parse_json_tensor(key, value, specs[key].dtype)
        outputs = self.run(name, version, body.get("signature_name"), arrays)
        jsonable = {k: _json_output(v) for k, v in outputs.items()}
        if row_format:
            batch = len(next(iter(jsonable.values())))
            return {"predictions": [{k: v[i] for k, v in jsonable.items()} for i in range(batch)]}
        return {"outputs": jsonable}

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def _answer(self, code, payload):
                data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self):
                match = _URL.match(self.path)
                if not match:
                    raise ServingFailure("NOT_FOUND", f"Malformed request: {self.command} {self.path}")
                version = int(match["version"]) if match["version"] else None
                return match["name"], version, match["verb"]

            def do_GET(self):
                try:
                    name, version, verb = self._route()
                    if verb:
                        raise ServingFailure("NOT_FOUND", "predict needs POST")
                    version, _ = server._signature(name, version, None)
                    self._answer(200, {"model_version_status": [
                        {"version": str(version), "state": "AVAILABLE",
                         "status": {"error_code": "OK", "error_message": ""}}]})
                except ServingFailure as e:
                    self._answer(404 if e.code == "NOT_FOUND" else 400, {"error": e.message})

            def do_POST(self):
                try:
                    name, version, verb = self._route()
                    if not verb:
                        raise ServingFailure("NOT_FOUND", f"Malformed request: POST {self.path}")
                    length = int(self.headers.get("Content-Length", 0))
                    try:
                        body = json.loads(self.rfile.read(length) or b"null")
                    except ValueError as e:
                        raise ServingFailure("INVALID_ARGUMENT", f"JSON Parse error: {e}") from None
                    self._answer(200, server._rest_predict(name, version, body))
                except ServingFailure as e:
                    self._answer(404 if e.code == "NOT_FOUND" else 400, {"error": e.message})

        return Handler

    # --- gRPC ---------------------------------------------------------------------------------

    def _grpc_servicers(self):
        import grpc
        from tensorflow_serving.apis import (get_model_status_pb2, model_service_pb2_grpc, predict_pb2,
                                             prediction_service_pb2_grpc)

        server = self

        def abort(context, failure):
            context.abort(getattr(grpc.StatusCode, failure.code), failure.message)

        class Prediction(prediction_service_pb2_grpc.PredictionServiceServicer):
            def Predict(self, request, context):
                spec = request.model_spec
                version = spec.version.value if spec.HasField("version") else None
                try:
                    version, fn = server._signature(spec.name, version, spec.signature_name)
                    arrays = {k: tf.constant(tf.make_ndarray(v), dtype=tf.as_dtype(v.dtype))
                              for k, v in request.inputs.items()}
                    outputs = server.run(spec.name, version, spec.signature_name, arrays)
                except ServingFailure as e:
                    abort(context, e)
                response = predict_pb2.PredictResponse()
                response.model_spec.name = spec.name
                response.model_spec.version.value = version
                response.model_spec.signature_name = spec.signature_name or "serving_default"
                for key, value in outputs.items():
                    response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
                return response

        class Models(model_service_pb2_grpc.ModelServiceServicer):
            def GetModelStatus(self, request, context):
                spec = request.model_spec
                try:
                    version, _ = server._signature(spec.name, spec.version.value or None, None)
                except ServingFailure as e:
                    abort(context, e)
                response = get_model_status_pb2.GetModelStatusResponse()
                status = response.model_version_status.add()
                status.version = version
                status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
                return response

        return Prediction(), Models(), prediction_service_pb2_grpc, model_service_pb2_grpc

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self):
        import grpc

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.rest_port = self._http.server_address[1]
        self._http_thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._http_thread.start()
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        prediction, models, prediction_grpc, model_grpc = self._grpc_servicers()
        prediction_grpc.add_PredictionServiceServicer_to_server(prediction, self._grpc)
        model_grpc.add_ModelServiceServicer_to_server(models, self._grpc)
        self.grpc_port = self._grpc.add_insecure_port("127.0.0.1:0")
        self._grpc.start()
        return self

    def stop(self):
        self._http.shutdown()
        self._http.server_close()
        self._grpc.stop(grace=None)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _decode_b64(value):
    if isinstance(value, dict):
        if set(value) != {"b64"}:
            raise ServingFailure("INVALID_ARGUMENT", f"JSON object {value} is not a {{\"b64\": ...}} value")
        try:
            return base64.b64decode(value["b64"], validate=True)
        except ValueError:
            raise ServingFailure("INVALID_ARGUMENT", "Unable to base64 decode") from None
    if isinstance(value, list):
        return [_decode_b64(v) for v in value]
    if isinstance(value, str):
        return value.encode("utf-8")
    raise ServingFailure("INVALID_ARGUMENT", f"JSON Value: {json.dumps(value)} Type: {type(value).__name__} "
                                             "is not of expected type: string")


def _parse_json_tensor(key, value, dtype):
    """JSON value → tf.Tensor of the signature's dtype, with TF Serving-like type errors."""
    if dtype == tf.string:
        return tf.constant(np.array(_decode_b64(value), dtype=object))
    np_dtype = dtype.as_numpy_dtype

    def check(v):
        if isinstance(v, list):
            for item in v:
                check(item)
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or (
                dtype.is_integer and isinstance(v, float)):
            raise ServingFailure("INVALID_ARGUMENT", f"JSON Value: {json.dumps(v, ensure_ascii=False)} is not "
                                                     f"of expected type: {dtype.name} (input '{key}')")

    check(value)
    try:
        return tf.constant(np.array(value, dtype=np_dtype))
    except ValueError as e:  # ragged nested lists
        raise ServingFailure("INVALID_ARGUMENT", f"input '{key}': {e}") from None


def _json_output(array):
    if array.dtype == object:
        return np.vectorize(lambda b: b.decode("utf-8", "replace"), otypes=[object])(array).tolist() \
            if array.size else array.tolist()
    return array.tolist()
