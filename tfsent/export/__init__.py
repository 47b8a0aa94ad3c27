"""SavedModel export in TF Serving's layout and a TF Serving client.

- `tfsent.export.saved_model`: `export_model_dir`, `export_model`, `ServingModule`.
- `tfsent.export.client`: `ServingClient` (REST and gRPC), also importable as `tfsent.serving`.
"""
