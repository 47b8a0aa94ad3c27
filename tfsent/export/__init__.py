"""SavedModel export in TF Serving's layout and a TF Serving client.

- `tfsent.export.saved_model`: `export_model_dir`, `export_model`, `ServingModule`.
- `tfsent.export.client`: `ServingClient` (REST and gRPC), also importable as `tfsent.serving`.
- `tfsent.export.timeline`: emotion timelines of long recordings (`bin/predict --timeline`); the
  SavedModel's `timeline` signatures are in `tfsent.export.timeline_signature`.
- `tfsent.export.litert`: on-device `.tflite` models of audio-only runs (`bin/export --format=litert`);
  `tfsent.export.onnx_model`: the same graph as ONNX (`--format=onnx`).
"""
