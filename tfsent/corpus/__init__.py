"""Corpus readers (AI Hub, KEMDy19, KEMDy20), label rules, splits and `prepare`.

Public entry points:
  * `tfsent.corpus.manifest.read_manifest(path) -> (DataFrame, sidecar)` (Contract 1).
  * `tfsent.corpus.emotions`: `EMOTIONS_7`, `CLASS_SETS`, `normalize_emotion`.
  * `tfsent.corpus.prepare`: `PrepareOptions`, `prepare`, `run_prepare` (`bin/prepare`).
  * `tfsent.corpus.splits.fold_roles` for `kfold_session` manifests.
"""
