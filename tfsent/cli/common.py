"""What every `bin/` command shares: the runner, its error contract, and the checks of common flags.

`run_main(main, "NAME")` runs `main(argv)` under `absl.app.run` as `bin/NAME`:

- flags are parsed by absl; a bad flag (unknown, mistyped, failing a validator or a required-flag
  check) is one line `bin/NAME: error: <message>` on stderr, exit status 2;
- logging is quiet (`tfsent.core.logs.quiet`) unless absl's `--verbosity=N` was given;
- `tfsent.core.errors.UsageError` (and `absl.app.UsageError`) raised by `main` is one line
  `bin/NAME: error: <message>`, exit status 2;
- Ctrl-C is one line `bin/NAME: interrupted`, exit status 130, no traceback;
- anything else is a bug or an environment failure: the full traceback, exit status 1.

`main` returns the exit status (None for 0). Checks of flags the user controls raise `UsageError`
naming the flag; library errors are never turned into usage errors wholesale.

Example (`tfsent/cli/NAME.py`; `bin/NAME` runs `python -m tfsent.cli.NAME`):

```python
from absl import flags

from tfsent.cli import common
from tfsent.core.errors import UsageError

flags.DEFINE_string("input", None, "A text file.")
FLAGS = flags.FLAGS


def main(argv):
    common.no_arguments(argv)
    common.require("input")
    if not os.path.isfile(FLAGS.input):
        raise UsageError(f"--input={FLAGS.input}: no such file")
    ...                                    # a bug here: traceback, exit 1


def run():
    common.run_main(main, "NAME")


if __name__ == "__main__":
    run()
```
"""

from __future__ import annotations

import os
import signal
import sys

from absl import app, flags

from tfsent.core import logs
from tfsent.core.errors import UsageError

FLAGS = flags.FLAGS
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


# === The runner ===


def one_line(message) -> str:
    """`message` as one line (line breaks become spaces)."""
    return " ".join(str(message).split("\n")).strip()


def print_error(prog, message) -> None:
    """`PROG: error: MESSAGE` on stderr, one line."""
    print(f"{prog}: error: {one_line(message)}", file=sys.stderr, flush=True)


def verbosity_explicit() -> bool:
    """Whether absl's `--verbosity` (`-v`) was given (on the command line or in a flagfile)."""
    try:
        return bool(FLAGS["verbosity"].present)
    except KeyError:  # absl.logging not imported: no such flag
        return False


def _apply_logger_levels() -> None:
    """Re-applies absl's `--logger_levels=name:LEVEL,...` after `quiet` (the user's word wins)."""
    try:
        flag = FLAGS["logger_levels"]
    except KeyError:
        return
    if flag.present and flag.value:
        import logging

        for name, level in flag.value.items():
            logging.getLogger(name).setLevel(level)


_INTERRUPTED = []


def _on_sigint(signum, frame):
    _INTERRUPTED.append(signum)
    raise KeyboardInterrupt


def _interrupted(prog) -> int:
    # Exiting now: more Ctrl-C (or one TF threads still deliver) must not print tracebacks from
    # destructors on the way out.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    print(f"{prog}: interrupted", file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED


HELP_ARGS = ("--help", "-help", "-h", "--helpshort", "-?")


def print_help(groups) -> None:
    """The command's docstring, then its flags by group with their defaults, on stdout."""
    import textwrap

    print((sys.modules["__main__"].__doc__ or "").strip())
    for group, names in groups.items():
        print(f"\n{group} flags:" if group else "\nflags:")
        for flag_name in names:
            flag = FLAGS[flag_name]
            default = flag.default_as_str if flag.default is not None else "unset"
            print(f"  --{flag_name} (default: {default.strip(chr(39))})")
            print(textwrap.indent(textwrap.fill(" ".join(str(flag.help).split()), 92), "      "))
    print("\nabsl's own flags (--flagfile, --verbosity, ...): --helpfull")


def _main_module_flags() -> dict:
    names = sorted(f.name for f in FLAGS.get_key_flags_for_module(sys.argv[0]))
    return {"": names}


def run_main(main, name, *, prog=None, help_groups=None):
    """Runs `main(argv)` as `bin/<name>` with the error contract of this module; never returns.

    Args:
        main: `main(argv) -> exit status or None`; `argv[0]` is the program, the rest are the
            arguments absl left (not flags).
        name: the command's name (`evaluate`, `train`, ...): messages start with `bin/<name>:`.
        prog: another prefix for the messages (only for commands whose tests pin an older one).
        help_groups: `() -> {group: [flag names]}` for `--help` (default: the flags the command's
            module defines, in one group). `--help` prints them with their defaults and exits 0.
    """
    prog = prog or f"bin/{name}"
    if any(arg in HELP_ARGS for arg in sys.argv[1:]):
        try:
            print_help(help_groups() if help_groups else _main_module_flags())
            sys.stdout.flush()
        except BrokenPipeError:  # `bin/train --help | head`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)

    def parse(argv):
        try:
            rest = FLAGS(argv)
        except flags.Error as err:
            print_error(prog, err)
            sys.exit(EXIT_USAGE)
        return rest

    def guarded(argv):
        # Here, not in `parse`: after parsing, absl raises an unset --verbosity to 0 (INFO).
        logs.quiet(verbosity_explicit=verbosity_explicit())
        _apply_logger_levels()
        try:
            return main(argv)
        except (UsageError, app.UsageError) as err:
            print_error(prog, err)
            return EXIT_USAGE
        except KeyboardInterrupt:
            return _interrupted(prog)
        except Exception:
            # Ctrl-C inside a TensorFlow py_function / numpy_function surfaces as a TF error that
            # wraps the KeyboardInterrupt; after a SIGINT, any error is the interrupt.
            if _INTERRUPTED:
                return _interrupted(prog)
            raise

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)
    try:
        app.run(guarded, flags_parser=parse)
    except KeyboardInterrupt:  # during flag parsing or absl's start-up
        print(f"{prog}: interrupted", file=sys.stderr, flush=True)
        sys.exit(EXIT_INTERRUPTED)


# === Checks of what the user controls ===


def no_arguments(argv) -> None:
    """Commands take flags only: anything else on the command line is a usage error."""
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments: {' '.join(argv[1:])}")


def require(*names) -> None:
    """Each flag in `names` must be set (not None or empty)."""
    for name in names:
        if FLAGS[name].value in (None, "", []):
            raise UsageError(f"--{name} is required")


def writable_dir(path, flag) -> str:
    """`path` (given as `--<flag>`), created when missing, once a file could be created in it; else a
    `UsageError` naming the path and why (an existing file, read-only, no such parent, ...). Checked
    before the work, so a mistyped or read-only output costs no minutes of scoring first."""
    import tempfile

    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"--{flag}={path}: exists and is not a directory")
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise UsageError(f"--{flag}={path}: cannot write there ({e.strerror})") from None
    return path


def trained_run_dir(path, flag="model_dir"):
    """The `RunDir` of a finished `bin/train` run at `path` (given as `--<flag>`), else a `UsageError`."""
    from tfsent.core.run_dir import RunDir

    if not os.path.isdir(path):
        raise UsageError(f"--{flag}={path}: not found (bin/train --model_dir=DIR writes a model dir)")
    run = RunDir(path)
    try:
        run.require_trained()
    except UsageError as e:  # RunDirError: not a run dir, or training unfinished; names the file
        raise UsageError(f"--{flag}={path}: {e}") from None
    return run


def manifest_path(path, flag="manifest", recorded_in=None) -> str:
    """`path` (a `manifest.csv` or its folder) when it and its `manifest.json` sidecar exist.

    Args:
        path: the manifest.
        flag: the flag that gave it (named in the message).
        recorded_in: the file that recorded `path` when no flag gave it (a run's config).
    """
    from tfsent.corpus.manifest import MANIFEST_NAME, SIDECAR_NAME

    where = f"manifest {path!r} (recorded in {recorded_in})" if recorded_in else f"--{flag}={path}"
    hint = f"pass --{flag}=OUT/manifest.csv (bin/prepare --out=OUT writes it)"
    if not path:
        raise UsageError(f"no manifest recorded in {recorded_in}; {hint}" if recorded_in else f"--{flag} is required")
    if os.path.isdir(path):
        path = os.path.join(path, MANIFEST_NAME)
    if not os.path.isfile(path):
        raise UsageError(f"{where}: not found; {hint}")
    sidecar = os.path.join(os.path.dirname(os.path.abspath(path)), SIDECAR_NAME)
    if not os.path.isfile(sidecar):
        raise UsageError(f"{where}: no {SIDECAR_NAME} beside it (bin/prepare writes both)")
    return path


def check_split(manifest, split, flag="split") -> None:
    """`split` (given as `--<flag>`) must have rows in `manifest` (a path `manifest_path` accepted)."""
    import pandas as pd

    present = set(pd.read_csv(manifest, usecols=["split"], dtype=str, keep_default_na=False)["split"])
    if str(split) not in present:
        raise UsageError(f"--{flag}={split}: no such split in {manifest} (splits: {', '.join(sorted(present))})")
