"""bin/evaluate --robustness --by: every condition, per-group tables, the same JSON twice (the done-means
of the robustness issue), on a tiny demo_fusion run fitted a few epochs (so its outputs depend on its
inputs)."""
import json
import os

import pytest

from tests.conftest import run_cli

AUDIO = {"noise_snr20", "noise_snr10", "noise_snr0", "babble_snr20", "babble_snr10", "babble_snr0", "telephone",
         "reverb_rt0.3", "reverb_rt0.8", "gain_-20db", "clipping_-12db", "packet_loss_10pct"}
TEXT = {"text_cer10", "text_cer30", "text_mismatch", "text_empty"}


@pytest.fixture(scope="module")
def fusion_run(tiny_corpus, make_fusion_run, tmp_path_factory):
    return make_fusion_run(str(tmp_path_factory.mktemp("robust") / "run"), tiny_corpus["manifest"],
                           cut_text=False, fit_epochs=3)


@pytest.fixture(scope="module")
def two_runs(fusion_run, tmp_path_factory):
    outs = []
    for k in range(2):
        out = str(tmp_path_factory.mktemp(f"robust_eval{k}"))
        proc = run_cli("evaluate", f"--model_dir={fusion_run}", "--robustness", "--by=gender,speaker",
                       f"--out_dir={out}")
        outs.append((out, proc.stdout))
    return outs


@pytest.mark.slow
def test_every_condition_and_identical_json(two_runs):
    (first, stdout), (second, _) = two_runs
    with open(os.path.join(first, "robustness.json"), "rb") as f:
        raw = f.read()
    with open(os.path.join(second, "robustness.json"), "rb") as f:
        assert f.read() == raw  # same seed, same corrupted inputs, same numbers
    result = json.loads(raw)
    conditions = result["conditions"]
    assert set(conditions) == {"clean", "audio_only", "text_only"} | AUDIO | TEXT and not result["skipped"]
    assert len(conditions) - 1 >= 12
    clean = conditions["clean"]
    for name, c in conditions.items():
        assert set(clean) - {"family", "severity", "unit", "description"} <= set(c), name
        if name != "clean":
            assert c["delta_macro_f1"] == pytest.approx(c["macro_f1"] - clean["macro_f1"])
    # The corruptions reach the model: some audio and some text conditions change predictions.
    assert min(conditions[n]["agreement_with_clean"] for n in AUDIO) < 1.0
    assert min(conditions[n]["agreement_with_clean"] for n in TEXT) < 1.0
    assert 0.0 < conditions["text_cer30"]["measured_cer"] and "robustness (macro_f1, seed 0)" in stdout
    with open(os.path.join(first, "robustness.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_group_tables(two_runs):
    out, _ = two_runs[0]
    with open(os.path.join(out, "robustness.json"), encoding="utf-8") as f:
        result = json.load(f)
    n = result["num_examples"]
    for column in ("gender", "speaker"):
        b = result["by"][column]
        assert sum(b["sizes"].values()) == n and len(b["sizes"]) >= 2
        assert b["small_groups"] == sorted(g for g, k in b["sizes"].items() if k < b["min_group_size"])
        assert set(b["conditions"]) == set(result["conditions"])
        for name, c in b["conditions"].items():
            per_group = c["per_group"]
            assert {g: m["n"] for g, m in per_group.items()} == b["sizes"]
            scores = {g: m["macro_f1"] for g, m in per_group.items()}
            assert scores[c["worst"]] == min(scores.values()) and scores[c["best"]] == max(scores.values())
            assert c["gap"] == pytest.approx(scores[c["best"]] - scores[c["worst"]])
            assert c["judged_on_small_groups"]  # the tiny corpus has only small groups: flagged, not hidden
    with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
        report = f.read()
    assert report.startswith("# Evaluation of") and report.count("## Robustness and fairness") == 1
    assert "### By gender (clean)" in report and "### By speaker (clean)" in report and "(small)" in report


@pytest.mark.slow
def test_unknown_column_is_a_usage_error(fusion_run, tmp_path):
    proc = run_cli("evaluate", f"--model_dir={fusion_run}", "--by=accent", f"--out_dir={tmp_path}", check=False)
    assert proc.returncode == 2 and "--by: no column accent" in proc.stderr
    assert not os.listdir(tmp_path)
