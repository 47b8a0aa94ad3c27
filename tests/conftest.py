"""Shared pytest fixtures for tfsent tests.

`tiny_corpus` builds one small synthetic KEMDy20-layout corpus per test session (espeak-ng voices) and
prepares it with the real `bin/prepare`; tests that need data read `tiny_corpus["manifest"]`.

The `hypothesis` profile "tfsent" (loaded here) keeps property tests deterministic and cheap in CI:
derandomized (the same examples on every run of the same tests on the same tree; hypothesis also
draws constants from the project modules already imported), no example database, no per-example
deadline (a shared 2-core machine), 100 examples unless a test asks for fewer. A failure prints its
shrunk example and a `@reproduce_failure` blob.
"""
import os
import subprocess
import sys

import pytest
from hypothesis import settings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

settings.register_profile("tfsent", derandomize=True, database=None, deadline=None, max_examples=100,
                          print_blob=True)
settings.load_profile("tfsent")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable


def run_cli(module, *args, check=True, timeout=600, env=None):
    """Runs `python -m tfsent.cli.<module> args...` like the bin/ script does; returns CompletedProcess."""
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    proc = subprocess.run(
        [PYTHON, "-m", f"tfsent.cli.{module}", *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, env=full_env,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"tfsent.cli.{module} {' '.join(args)} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-6000:]}"
        )
    return proc


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """A 4-class synthetic KEMDy20 corpus (6 utterances per class) and its prepared manifest."""
    root = tmp_path_factory.mktemp("tiny_corpus")
    corpus = root / "corpus"
    prepared = root / "prepared"
    run_cli("make_demo_corpus", f"--out={corpus}", "--layout=kemdy20", "--seed=3", "--per_class=6")
    run_cli("prepare", "--format=kemdy20", f"--data_dir={corpus}", f"--out={prepared}",
            "--classes=4", "--tie_policy=first")
    return {"corpus": str(corpus), "prepared": str(prepared), "manifest": str(prepared / "manifest.csv")}


@pytest.fixture(scope="session")
def load_tool():
    """`load_tool(name)`: the script `tools/<name>.py` as a module (tools/ is not a package)."""
    import importlib.util

    def load(name):
        spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "tools", f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
