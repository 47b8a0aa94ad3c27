"""`tfsent.cli.common.run_main`, the runner of every bin/ command, with a tiny fake `main` in a
subprocess (no TensorFlow): a usage error is one line and exit 2, anything else a traceback and exit 1,
Ctrl-C exit 130; logging is quiet unless `--verbosity` is given."""

import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FAKE = textwrap.dedent('''
    import logging
    import sys

    from absl import app, flags
    from absl import logging as absl_logging

    from tfsent.cli import common
    from tfsent.core.errors import UsageError

    flags.DEFINE_string("what", "ok", "What main does.")
    flags.DEFINE_integer("count", 1, "A bounded flag.", lower_bound=1)
    FLAGS = flags.FLAGS


    def main(argv):
        common.no_arguments(argv)
        what = FLAGS.what
        if what == "usage":
            raise UsageError("--what=usage: pick another\\nsecond line")
        if what == "absl_usage":
            raise app.UsageError("absl's own usage error")
        if what == "value":
            raise ValueError("deep inside a library")
        if what == "missing":
            open("/nonexistent/file")
        if what == "interrupt":
            raise KeyboardInterrupt
        if what == "code":
            return 3
        if what == "logs":
            # What tf.saved_model.save does around attribute scans: save, silence, restore absl's
            # verbosity. Quiet must survive it (a bare root-logger level would not).
            saved = absl_logging.get_verbosity()
            absl_logging.set_verbosity(absl_logging.FATAL)
            absl_logging.set_verbosity(saved)
            absl_logging.info("absl-info-line")
            absl_logging.warning("absl-warning-line")
            logging.getLogger("tensorflow").warning("tf-warning-line")
            logging.getLogger("tensorflow").error("tf-error-line")
            logging.getLogger("matplotlib.font_manager").info("mpl-info-line")
        print("main ran")


    common.run_main(main, "fake")
''')


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    path = tmp_path_factory.mktemp("runner") / "fake.py"
    path.write_text(FAKE, encoding="utf-8")

    def run(*args):
        env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
        return subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True,
                              timeout=60, cwd=REPO, env=env)

    return run


def test_success_and_exit_status_of_main(fake):
    proc = fake()
    assert proc.returncode == 0 and proc.stdout == "main ran\n" and proc.stderr == ""
    assert fake("--what=code").returncode == 3


@pytest.mark.parametrize("args, message", [
    (["--what=usage"], "bin/fake: error: --what=usage: pick another second line"),
    (["--what=absl_usage"], "bin/fake: error: absl's own usage error"),
    (["extra", "args"], "bin/fake: error: unexpected arguments: extra args"),
])
def test_usage_error_is_one_line_and_exit_2(fake, args, message):
    proc = fake(*args)
    assert proc.returncode == 2
    assert proc.stderr == message + "\n"


@pytest.mark.parametrize("args, named", [
    (["--no_such_flag=1"], "no_such_flag"),
    (["--count=0"], "--count"),
    (["--count=many"], "--count"),
])
def test_flag_errors_are_one_line_and_exit_2(fake, args, named):
    proc = fake(*args)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("bin/fake: error: ") and named in lines[0], proc.stderr


@pytest.mark.parametrize("args, last", [
    (["--what=value"], "ValueError: deep inside a library"),
    (["--what=missing"], "FileNotFoundError: [Errno 2] No such file or directory: '/nonexistent/file'"),
])
def test_unexpected_errors_keep_their_traceback_and_exit_1(fake, args, last):
    proc = fake(*args)
    assert proc.returncode == 1
    assert "Traceback (most recent call last)" in proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1] == last
    assert "error:" not in proc.stderr.replace(last, "")  # never dressed up as a usage error


def test_keyboard_interrupt_is_one_line_and_exit_130(fake):
    proc = fake("--what=interrupt")
    assert proc.returncode == 130
    assert proc.stderr == "bin/fake: interrupted\n"


def test_logging_is_quiet_unless_verbosity_is_given(fake):
    quiet = fake("--what=logs")
    assert quiet.returncode == 0, quiet.stderr
    assert "absl-warning-line" in quiet.stderr and "tf-error-line" in quiet.stderr
    for hidden in ("absl-info-line", "tf-warning-line", "mpl-info-line"):
        assert hidden not in quiet.stderr
    loud = fake("--what=logs", "--verbosity=0")
    for shown in ("absl-info-line", "absl-warning-line", "tf-warning-line", "tf-error-line", "mpl-info-line"):
        assert shown in loud.stderr, loud.stderr


def test_checks_of_common_flags_name_the_flag(tmp_path):
    from tfsent.cli import common
    from tfsent.core.errors import UsageError
    from tfsent.corpus.manifest import write_manifest

    with pytest.raises(UsageError, match=r"^--model_dir=/nonexistent: not found"):
        common.trained_run_dir("/nonexistent")
    with pytest.raises(UsageError, match=rf"^--model_dir={tmp_path}: .*tfsent_config.json not found"):
        common.trained_run_dir(str(tmp_path))
    with pytest.raises(UsageError, match=r"^--manifest=/nope.csv: not found"):
        common.manifest_path("/nope.csv")
    (tmp_path / "plain.csv").write_text("utt_id,split\nu1,train\n", encoding="utf-8")
    with pytest.raises(UsageError, match="no manifest.json beside it"):
        common.manifest_path(str(tmp_path / "plain.csv"))
    path = write_manifest(str(tmp_path / "m"), [{"utt_id": "u1", "emotion": "happy", "split": "train"}],
                          {"classes": ["neutral", "happy"]})
    assert common.manifest_path(str(tmp_path / "m")) == path
    common.check_split(path, "train")
    with pytest.raises(UsageError, match=r"^--split=test: no such split .*\(splits: train\)"):
        common.check_split(path, "test")
