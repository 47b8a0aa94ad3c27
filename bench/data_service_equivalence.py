"""Local training vs training through tf.data service (issue 15's "same validation metrics").

Builds a small demo corpus (`bin/make_demo_corpus --layout=kemdy20 --seed=7 --per_class=40`, then
`bin/prepare --classes=4 --tie_policy=drop --valid_fraction=0.2`), starts a dispatcher and `--workers`
workers on 127.0.0.1 with `bin/data_service` (separate processes, as on real machines), and trains
`conv1d_mel` with `configs/demo.flags --epochs=E --seed=S` twice per seed: locally and with
`--data_service=grpc://127.0.0.1:P`. One training at a time, the two modes interleaved per seed so they
share the machine's load. Per run it prints the best validation loss (the selection metric), the
validation macro-F1 of that kept model, the best macro-F1 of any epoch, how many classes the kept model
predicts on the validation split, the training steps and any "used N of M examples" warning; then
mean ± sd per mode. The last line is machine-readable:

    service_minus_local_loss=<..> loss_sd_local=<..> loss_sd_service=<..> service_minus_local_f1=<..> runs=<n>

Usage: bench/data_service_equivalence [--work=DIR] [--seeds=1,2,3] [--epochs=6] [--workers=2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(*args):
    print(*args, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, log_path):
    with open(log_path, "w") as out:
        subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=True, cwd=ROOT)


def prepare_corpus(work, per_class):
    manifest = os.path.join(work, "prepared", "manifest.csv")
    if not os.path.exists(manifest):
        run([os.path.join(ROOT, "bin", "make_demo_corpus"), f"--out={work}/corpus", "--layout=kemdy20",
             "--seed=7", f"--per_class={per_class}"], os.path.join(work, "corpus.log"))
        run([os.path.join(ROOT, "bin", "prepare"), "--format=kemdy20", f"--data_dir={work}/corpus",
             f"--out={work}/prepared", "--classes=4", "--tie_policy=drop", "--valid_fraction=0.2"],
            os.path.join(work, "prepare.log"))
    return manifest


def wait_for(path, text, proc, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{path}: process exited ({proc.returncode})")
        if os.path.exists(path) and text in open(path).read():
            return
        time.sleep(0.5)
    raise RuntimeError(f"{path}: no {text!r} after {timeout} s")


def start_service(work, workers):
    """A dispatcher and `workers` workers (bin/data_service subprocesses); returns (target, procs)."""
    procs = []
    port = free_port()
    tool = os.path.join(ROOT, "bin", "data_service")
    path = os.path.join(work, "dispatcher.log")
    procs.append(subprocess.Popen([tool, "dispatcher", f"--port={port}"], stdout=open(path, "w"),
                                  stderr=subprocess.STDOUT, cwd=ROOT))
    wait_for(path, "dispatcher on", procs[-1])
    for i in range(workers):
        wport = free_port()
        path = os.path.join(work, f"worker{i}.log")
        procs.append(subprocess.Popen(
            [tool, "worker", f"--dispatcher=127.0.0.1:{port}", f"--port={wport}",
             f"--worker_address=127.0.0.1:{wport}"], stdout=open(path, "w"), stderr=subprocess.STDOUT, cwd=ROOT))
        wait_for(path, "worker on port", procs[-1])
    return f"grpc://127.0.0.1:{port}", procs


def train(work, manifest, mode, seed, epochs, target):
    model_dir = os.path.join(work, "runs", f"{mode}_seed{seed}")
    shutil.rmtree(model_dir, ignore_errors=True)
    cmd = [os.path.join(ROOT, "bin", "train"), "--flagfile=configs/demo.flags", "--model=conv1d_mel",
           f"--epochs={epochs}", f"--seed={seed}", f"--manifest={manifest}", f"--model_dir={model_dir}"]
    if mode == "service":
        cmd.append(f"--data_service={target}")
    log_path = model_dir + ".log"
    os.makedirs(os.path.dirname(model_dir), exist_ok=True)
    t0 = time.time()
    run(cmd, log_path)
    seconds = time.time() - t0
    summary = json.load(open(os.path.join(model_dir, "train_summary.json")))
    kept = summary["valid_metrics"]
    predicted = sum(1 for col in zip(*kept["confusion_matrix"]) if sum(col) > 0)
    skipped = [line.strip() for line in open(log_path) if "training examples;" in line]
    return dict(mode=mode, seed=seed, loss=summary["best_value"], f1=kept["macro_f1"],
                best_f1=max(h["macro_f1"] for h in summary["history"]), predicted=predicted,
                steps=summary["global_step"], skipped=len(skipped), seconds=seconds,
                valid=kept["num_examples"])


def mean_sd(values):
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def report(results):
    log("")
    log("| mode | seed | best valid loss | macro-F1 (kept model) | best macro-F1 (any epoch) | classes predicted "
        "| steps | 'used N of M' warnings | s |")
    log("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        log(f"| {r['mode']} | {r['seed']} | {r['loss']:.4f} | {r['f1']:.3f} | {r['best_f1']:.3f} | "
            f"{r['predicted']}/4 | {r['steps']} | {r['skipped']} | {r['seconds']:.0f} |")
    log("")
    log("| mode | runs | best valid loss, mean ± sd | macro-F1 (kept), mean ± sd | best macro-F1, mean ± sd |")
    log("|---|---:|---:|---:|---:|")
    stats = {}
    for mode in ("local", "service"):
        rows = [r for r in results if r["mode"] == mode]
        stats[mode] = {k: mean_sd([r[k] for r in rows]) for k in ("loss", "f1", "best_f1")}
        s = stats[mode]
        log(f"| {mode} | {len(rows)} | {s['loss'][0]:.4f} ± {s['loss'][1]:.4f} | {s['f1'][0]:.3f} ± {s['f1'][1]:.3f} "
            f"| {s['best_f1'][0]:.3f} ± {s['best_f1'][1]:.3f} |")
    return stats


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="/tmp/tfsent-ds-equivalence")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--per_class", type=int, default=40)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    os.makedirs(args.work, exist_ok=True)
    log(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    manifest = prepare_corpus(args.work, args.per_class)
    target, procs = start_service(args.work, args.workers)
    log(f"dispatcher {target}, {args.workers} workers (bin/data_service, logs in {args.work})")
    results = []
    try:
        for seed in seeds:
            for mode in ("local", "service"):
                results.append(train(args.work, manifest, mode, seed, args.epochs, target))
                r = results[-1]
                log(f"{mode} seed {seed}: best valid loss {r['loss']:.4f}, macro-F1 {r['f1']:.3f} "
                    f"({r['valid']} valid clips), {r['seconds']:.0f} s")
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
    stats = report(results)
    log(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    log(f"service_minus_local_loss={stats['service']['loss'][0] - stats['local']['loss'][0]:.4f} "
        f"loss_sd_local={stats['local']['loss'][1]:.4f} loss_sd_service={stats['service']['loss'][1]:.4f} "
        f"service_minus_local_f1={stats['service']['f1'][0] - stats['local']['f1'][0]:.3f} runs={len(results)}")


if __name__ == "__main__":
    sys.exit(main())
