"""bin/train --robust_augment: a bad setting is a one-line usage error before anything is written."""
import os

from tests.conftest import run_cli


def test_unknown_robust_setting_is_refused(tiny_corpus, tmp_path):
    model_dir = tmp_path / "run"
    proc = run_cli("train", "--flagfile=configs/demo_robust.flags", f"--manifest={tiny_corpus['manifest']}",
                   f"--model_dir={model_dir}", "--robust_augment=noise_prob=0.3,echo_prob=0.5", check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "--robust_augment: unknown setting(s) echo_prob" in proc.stderr
    proc = run_cli("train", "--flagfile=configs/demo_robust.flags", f"--manifest={tiny_corpus['manifest']}",
                   f"--model_dir={model_dir}", "--robust_augment=noise_prob=1.5", check=False)
    assert proc.returncode == 2 and "noise_prob must be in [0, 1]" in proc.stderr
    assert not os.path.exists(model_dir)
