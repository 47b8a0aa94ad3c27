"""The package reads as layers: the import-linter contracts in setup.cfg hold on the tree, and they
are not vacuous — an upward import or a cycle injected into a copy of the package breaks them."""

import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINT = os.path.join(os.path.dirname(sys.executable), "lint-imports")


def _lint(root):
    env = dict(os.environ, PYTHONPATH=root)
    return subprocess.run([LINT, "--config", os.path.join(root, "setup.cfg"), "--no-cache"], cwd=root,
                          capture_output=True, text=True, timeout=120, env=env)


def _copy(tmp_path):
    root = tmp_path / "tree"
    shutil.copytree(os.path.join(REPO, "tfsent"), root / "tfsent",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(REPO, "setup.cfg"), root / "setup.cfg")
    return root


def test_the_tree_keeps_every_contract():
    proc = _lint(REPO)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


@pytest.mark.parametrize("module, line, broken", [
    ("tfsent/core/files.py", "import tfsent.tasks", "tfsent reads as layers"),
    ("tfsent/models/classic.py", "from tfsent.evaluation import evaluate", "tfsent reads as layers"),
    ("tfsent/corpus/labels.py", "import tfsent.audio.io", "tfsent reads as layers"),
    ("tfsent/metrics/plots.py", "from tfsent.metrics import definitions\nimport tfsent.metrics.plots",
     "no import cycles"),
])
def test_an_injected_violation_breaks_a_contract(tmp_path, module, line, broken):
    root = _copy(tmp_path)
    target = root / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")
    if broken == "no import cycles":  # definitions -> plots closes the cycle plots -> definitions
        other = root / "tfsent/metrics/definitions.py"
        other.write_text(other.read_text(encoding="utf-8") + "\nfrom tfsent.metrics import plots\n",
                         encoding="utf-8")
    proc = _lint(str(root))
    assert proc.returncode != 0
    assert f"{broken}" in proc.stdout and "BROKEN" in proc.stdout, proc.stdout[-3000:]


MAX_FUNCTION_LINES = 100


def _long_functions(root, limit):
    import ast

    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = node.end_lineno - node.lineno + 1
                    if length > limit:
                        found.append(f"{os.path.relpath(path, REPO)}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_function_is_longer_than_the_limit():
    """Readable pieces: no function in tfsent/ runs over MAX_FUNCTION_LINES lines (docstring included)."""
    assert _long_functions(os.path.join(REPO, "tfsent"), MAX_FUNCTION_LINES) == []
