"""bin/data_service + bin/train --data_service: a dispatcher and two workers on 127.0.0.1 (subprocesses).

One worker is killed mid-epoch and restarted on its port (what a supervisor does for a preempted worker):
training goes on reading from the other worker and finishes; the rows the killed worker was
processing are lost from that epoch only.
"""

import os
import socket
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = pytest.mark.slow

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(*args):
    return subprocess.Popen([sys.executable, "-m", "tfsent.cli.data_service", *args], cwd=REPO, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(proc, text, timeout=120):
    deadline = time.time() + timeout
    lines = []
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"no {text!r} within {timeout} s:\n" + "".join(lines[-40:]))


def worker(dispatcher_port, port):
    return start("worker", f"--dispatcher=127.0.0.1:{dispatcher_port}", f"--port={port}",
                 f"--worker_address=127.0.0.1:{port}")


def test_training_survives_a_worker_killed_mid_epoch(tiny_corpus, tmp_path):
    port = free_port()
    procs = [start("dispatcher", f"--port={port}", f"--work_dir={tmp_path / 'dispatcher'}")]
    try:
        wait_for(procs[0], "dispatcher on")
        ports = [free_port(), free_port()]
        procs += [worker(port, q) for q in ports]
        for p in procs[1:]:
            wait_for(p, "registered with")
        train = subprocess.Popen(
            [sys.executable, "-m", "tfsent.cli.train", "--flagfile=configs/demo.flags", "--model=conv1d_mel",
             f"--manifest={tiny_corpus['manifest']}", f"--model_dir={tmp_path / 'run'}", "--epochs=3",
             "--batch_size=2", "--log_every_steps=1", "--early_stopping_patience=0",
             f"--data_service=grpc://127.0.0.1:{port}"],
            cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(train)
        out = wait_for(train, "epoch 1/3 step 2/", timeout=240)
        procs[2].kill()  # mid-epoch 1
        procs[2].wait()
        time.sleep(1.0)
        procs[2] = worker(port, ports[1])  # the supervisor's restart, same address
        rest, _ = train.communicate(timeout=300)
        log = "".join(out) + rest
        assert train.returncode == 0, log[-4000:]
        assert "epoch 3/3" in log
        assert os.path.exists(tmp_path / "run" / "model.keras")
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_data_service_usage_errors():
    proc = subprocess.run([sys.executable, "-m", "tfsent.cli.data_service", "worker", "--port=5"], cwd=REPO,
                          env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--dispatcher" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "tfsent.cli.data_service", "both"], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "usage" in proc.stderr
