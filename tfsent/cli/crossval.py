"""bin/crossval: k-fold session cross-validation of one `bin/train` recipe, folds × seeds.

    bin/crossval --flagfile=configs/demo.flags --manifest=KFOLD/manifest.csv --out=DIR
                 [--folds=all|0,2] [--seeds=0,1,2] [--eval_manifest=OTHER/manifest.csv] [any bin/train flag]

The manifest comes from `bin/prepare --split=kfold_session` (or a `--protocol` preset). For fold k,
`DIR/fold_<k>[_seed<s>]/` is a normal run dir: `bin/train` (a subprocess) trains on the other folds
and selects on fold (k+1) % K; then the run is scored on fold k like `bin/evaluate` does. `DIR/results.json`
/ `results.md` hold per-run metrics and mean ± sd, `oof_predictions.csv` one row per manifest row
(see `tfsent.evaluation.crossval`). Flags on the command line override the flagfile, as in `bin/train`.

Re-running the same command reuses finished folds and resumes a killed one (bin/train's own resume);
a fold counts only once its evaluation is written. Changing a training flag for an existing DIR is
refused: use a new --out. `bin/train --help` lists the training flags.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

from absl import flags

from tfsent.cli import common, train_flags
from tfsent.core.errors import UsageError

train_flags.define_train_flags()
flags.DEFINE_string("out", None, "Cross-validation directory (fold run dirs, results.json, oof_predictions.csv).")
flags.DEFINE_string("folds", "all", "Folds to run: all, or a comma list of fold numbers (0-based).")
flags.DEFINE_string("seeds", None, "Comma list of training seeds (run dirs fold_<k>_seed<s>); "
                    "default: --seed only (run dirs fold_<k>).")
flags.DEFINE_string("eval_manifest", None, "Also score every fold model on this manifest (another corpus; "
                    "classes are mapped by emotion name).")
flags.DEFINE_string("eval_split", "test", "Split of --eval_manifest to score.")
FLAGS = flags.FLAGS

TRAIN_FLAGS_FILE = "train.flags"
_PER_FOLD = ("manifest", "model_dir", "seed")  # set by bin/crossval for each fold run
_CPP_LOG = re.compile(r"^([IWEF]\d{4} \d\d:\d\d:\d+\.\d+ |WARNING: All log messages before absl::InitializeLog)")


def main(argv):
    common.no_arguments(argv)
    common.require("manifest", "out", "model")
    manifest = os.path.abspath(common.manifest_path(FLAGS.manifest))
    other = _eval_manifest()
    from tfsent.corpus.manifest import read_manifest
    from tfsent.evaluation import crossval

    frame, sidecar = read_manifest(manifest)
    try:
        folds = crossval.fold_count(frame, sidecar)
    except UsageError as e:
        raise UsageError(f"--manifest={FLAGS.manifest}: {e}") from None
    chosen = _parse_folds(FLAGS.folds, folds)
    seeds = _parse_seeds()
    out = FLAGS.out
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out={out} is a file, not a directory")
    os.makedirs(out, exist_ok=True)
    flag_file = _check_protocol(out, sidecar)
    jobs = [(k, s) for s in seeds for k in chosen]
    runs, timings = [], []
    for i, (fold, seed) in enumerate(jobs, start=1):
        name = f"fold_{fold}" if FLAGS.seeds is None else f"fold_{fold}_seed{seed}"
        print(f"fold {i}/{len(jobs)} ({name}): {_eta(timings, len(jobs) - i + 1)}", flush=True)
        fold_manifest = crossval.write_fold_manifest(
            frame, sidecar, fold=fold, folds=folds, out_dir=os.path.join(out, "manifests", f"fold_{fold}"))
        started = time.time()
        trained = _train_fold(flag_file, fold_manifest, os.path.join(out, name), seed)
        runs.append(_evaluate_fold(crossval.CrossvalRun(fold, seed, name, ""), out, other))
        if trained:
            timings.append(time.time() - started)
    protocol = _protocol(sidecar, manifest, folds, chosen, seeds, runs, other)
    results = crossval.write_results(out, runs, protocol, frame)
    _print_summary(out, results)
    return 0


def _eval_manifest():
    if not FLAGS.eval_manifest:
        return None
    path = os.path.abspath(common.manifest_path(FLAGS.eval_manifest, flag="eval_manifest"))
    common.check_split(path, FLAGS.eval_split, flag="eval_split")
    return path


def _parse_folds(value, folds):
    if value in (None, "", "all"):
        return list(range(folds))
    try:
        chosen = sorted({int(v) for v in str(value).split(",") if v.strip()})
    except ValueError:
        raise UsageError(f"--folds={value}: expected 'all' or fold numbers like 0,2") from None
    bad = [k for k in chosen if not 0 <= k < folds]
    if bad or not chosen:
        raise UsageError(f"--folds={value}: the manifest has folds 0..{folds - 1}")
    return chosen


def _parse_seeds():
    if FLAGS.seeds is None:
        return [FLAGS.seed]
    try:
        seeds = [int(v) for v in FLAGS.seeds.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--seeds={FLAGS.seeds}: expected integers like 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds={FLAGS.seeds}: give distinct integers like 0,1,2")
    return seeds


def _check_protocol(out, sidecar):
    """Writes (or checks) DIR/train.flags and DIR/crossval.json: one DIR, one training recipe."""
    from tfsent.core import files
    from tfsent.evaluation.crossval import PROTOCOL_FILE

    text = "".join(line + "\n" for line in train_flags.flagfile_text(changed_only=True).splitlines()
                   if not any(line.startswith(f"--{name}=") for name in _PER_FOLD))
    fingerprint = {"train_flags": text, "manifest_sha256": sidecar.get("manifest_sha256"),
                   "seed": FLAGS.seed if FLAGS.seeds is None else "in the run dir names"}
    path = os.path.join(out, PROTOCOL_FILE)
    old = files.read_json(path) if os.path.isfile(path) else None
    if old is not None and old != fingerprint:
        what = next(k for k in ("train_flags", "manifest_sha256", "seed") if old.get(k) != fingerprint[k])
        raise UsageError(f"--out={out} holds a cross-validation with different {what} "
                         f"(see {path}); use a new --out (or delete it) to start over")
    flag_file = os.path.join(out, TRAIN_FLAGS_FILE)
    files.write_text(flag_file, text)
    if old is None:
        files.write_json(path, fingerprint)
    return flag_file


def _train_fold(flag_file, fold_manifest, model_dir, seed):
    """Runs bin/train for one fold unless its model exists; returns whether it trained."""
    from tfsent.core.run_dir import RunDir

    if RunDir(model_dir).model_kind() is not None:
        return False
    cmd = [sys.executable, "-m", "tfsent.cli.train", f"--flagfile={flag_file}",
           f"--manifest={fold_manifest}", f"--model_dir={model_dir}", f"--seed={seed}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                            preexec_fn=_die_with_parent)
    tail = []
    for line in proc.stdout:
        if not _CPP_LOG.match(line):  # TensorFlow's C++ start-up lines, once per fold: noise here
            print(f"  {line}", end="", flush=True)
        tail = (tail + [line.rstrip()])[-20:]
    proc.wait()
    if proc.returncode == 2:  # bin/train's usage error (a bad flag): the same for every fold
        message = next((t for t in reversed(tail) if "error:" in t), tail[-1] if tail else "")
        raise UsageError(message.split("error: ", 1)[-1])
    if proc.returncode != 0:
        raise RuntimeError(f"bin/train for {model_dir} exited {proc.returncode}:\n" + "\n".join(tail))
    return True


def _die_with_parent():
    """A bin/train child dies with bin/crossval (even on SIGKILL), so a re-run never races an orphan
    over the same fold dir (Linux prctl PR_SET_PDEATHSIG)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass


def _evaluate_fold(run, out, other):
    """Scores the fold model on its test fold (and on --eval_manifest) unless already scored."""
    import dataclasses

    from tfsent.core.run_dir import METRICS_FILE, PREDICTIONS_FILE, RunDir

    rundir = RunDir(os.path.join(out, run.name))
    eval_dir = rundir.eval_dir("test")
    # bin/evaluate writes metrics.json, then predictions.csv: both there means a finished evaluation.
    if not all(os.path.isfile(os.path.join(eval_dir, f)) for f in (METRICS_FILE, PREDICTIONS_FILE)):
        _evaluate(rundir.path, "test", None, None)
    other_dir = None
    if other:
        from tfsent.corpus.manifest import read_manifest

        sidecar = read_manifest(other)[1]
        # The manifest's hash in the name: another --eval_manifest of the same corpus is scored afresh.
        tag = f"{sidecar.get('corpus') or 'other'}_{str(sidecar.get('manifest_sha256'))[:8]}"
        other_dir = rundir.other_corpus_eval_dir(tag, FLAGS.eval_split)
        if not all(os.path.isfile(os.path.join(other_dir, f)) for f in (METRICS_FILE, PREDICTIONS_FILE)):
            _evaluate(rundir.path, FLAGS.eval_split, other, other_dir)
    return dataclasses.replace(run, eval_dir=eval_dir, other_eval_dir=other_dir)


def _evaluate(model_dir, split, manifest, out_dir):
    from tfsent.evaluation.evaluate import evaluate_model_dir

    result = evaluate_model_dir(model_dir, split=split, manifest=manifest, batch_size=FLAGS.batch_size,
                                out_dir=out_dir)
    m = result["metrics"]
    shown = [k for k in ("accuracy", "unweighted_accuracy", "macro_f1", "ccc", "rmse") if k in m]
    print(f"  scored {os.path.basename(model_dir)} on {'the held-out fold' if manifest is None else manifest}: "
          + " ".join(f"{k} {m[k]:.4f}" for k in shown), flush=True)


def _eta(timings, remaining):
    if not timings:
        return "starting"
    per = sum(timings) / len(timings)
    return f"~{per:.0f} s per trained fold, ETA {per * remaining / 60:.1f} min (at most)"


def _protocol(sidecar, manifest, folds, chosen, seeds, runs, other):
    import tfsent
    from tfsent.core.run_dir import RUN_INFO_FILE, RunDir

    info = RunDir(os.path.join(FLAGS.out, runs[0].name)).read_json(RUN_INFO_FILE, {}) or {}
    protocol = {
        "model": FLAGS.model, "task": FLAGS.task, "corpus": sidecar.get("corpus"), "split": sidecar.get("split"),
        "folds": folds, "folds_run": chosen, "seeds": seeds, "label_rule": sidecar.get("label_rule"),
        "tie_policy": sidecar.get("tie_policy"), "classes": list(sidecar["classes"]),
        "validation": "fold (k+1) % K (whole sessions or groups), never the test fold",
        "fold_groups": _fold_groups(sidecar), "protocol_preset": sidecar.get("protocol"),
        "manifest": manifest, "manifest_sha256": sidecar.get("manifest_sha256"),
        "tfsent_version": (info.get("versions") or {}).get("tfsent", tfsent.__version__),
        "git_commit": info.get("git_commit"),
    }
    if other:
        from tfsent.corpus.manifest import read_manifest

        other_sidecar = read_manifest(other)[1]
        protocol["eval_manifest"] = {"path": other, "corpus": other_sidecar.get("corpus"),
                                     "split": FLAGS.eval_split, "classes": other_sidecar.get("classes")}
    return protocol


def _fold_groups(sidecar):
    info = sidecar.get("split_info") or {}
    return info.get("fold_sessions") or info.get("fold_groups")


def _print_summary(out, results):
    print(f"{len(results['runs'])} fold runs of {results['protocol']['model']} "
          f"({results['protocol']['corpus']}, {results['protocol']['folds']}-fold {results['protocol']['split']}):")
    for key, value in results["summary"].items():
        print(f"  {key:20s} {value['mean']:.4f} ± {value['sd']:.4f}")
    if "eval_manifest" in results:
        print(f"on {results['protocol']['eval_manifest']['corpus']}:")
        for key, value in results["eval_manifest"]["summary"].items():
            print(f"  {key:20s} {value['mean']:.4f} ± {value['sd']:.4f}")
    print(f"wrote {out}/results.json, results.md, oof_predictions.csv")


def run():
    common.run_main(main, "crossval")


if __name__ == "__main__":
    run()
