"""A run trained with --speaker_norm is refused by the exporter (the SavedModel has no speaker statistics)."""

import importlib.util
import json
import os

import pytest

from tfsent.core.errors import UsageError
from tfsent.export.saved_model import load_for_export

HERE = os.path.dirname(os.path.abspath(__file__))


def _conftest():
    spec = importlib.util.spec_from_file_location("tfsent_export_tests_conftest_spk", os.path.join(HERE, "conftest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_speaker_norm_run_is_not_exported(tmp_path):
    path, _, _ = _conftest().make_model_dir(str(tmp_path / "run"), "conv1d_mel")
    load_for_export(path)  # the same run without speaker_norm loads for export
    config_path = os.path.join(path, "tfsent_config.json")
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    config["speaker_norm"] = True
    with open(config_path, "w", encoding="utf-8") as f:
        json.dump(config, f)
    with pytest.raises(UsageError, match="--speaker_norm"):
        load_for_export(path)
