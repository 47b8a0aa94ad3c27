"""One training loop, three strategies: `mirrored` on two logical CPU devices and `multi_worker` with two
worker processes on 127.0.0.1 must train the demo model to the same weights as one device (the loss is
scaled by the global batch and the optimizer sums the replicas' gradients)."""

import json
import os
import re
import socket

import pytest

# SGD (not Adam) so a wrong gradient scale (e.g. averaging instead of summing the replicas' gradients)
# changes the result; a few float32 all-reduce reorderings stay well below this.
TOLERANCE = 2e-4


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.timeout(400)
def test_mirrored_on_two_logical_cpus_matches_one_device(mirrored_run, tt, tmp_path):
    out = mirrored_run["stdout"]
    assert "MirroredStrategy: 2 replica(s)" in out  # --cpu_devices=2 took effect before TF started
    _, single = tt.in_process_run(mirrored_run["model_dir"], str(tmp_path / "single"))
    with open(os.path.join(mirrored_run["model_dir"], "train_summary.json"), encoding="utf-8") as f:
        mirrored = json.load(f)

    assert single["global_step"] == mirrored["global_step"] > 0
    for hs, hm in zip(single["history"], mirrored["history"]):
        assert hm["train_loss"] == pytest.approx(hs["train_loss"], rel=1e-4)
        assert hm["loss"] == pytest.approx(hs["loss"], rel=1e-4)
    diff = tt.max_abs_diff(tt.model_weights(mirrored_run["model_dir"]), tt.model_weights(str(tmp_path / "single")))
    assert diff < TOLERANCE
    # Training moved the weights by far more than the tolerance (the comparison means something).
    assert mirrored["history"][0]["train_loss"] != pytest.approx(mirrored["history"][-1]["train_loss"], rel=1e-3)


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_multi_worker_two_processes_agree_with_each_other_and_with_mirrored(mirrored_run, tt, tmp_path):
    model_dir = str(tmp_path / "run")
    flags = [f for f in mirrored_run["flags"] if not f.startswith(("--strategy", "--cpu_devices", "--model_dir"))]
    flags += ["--strategy=multi_worker", f"--model_dir={model_dir}"]
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    try:
        for index in range(2):
            tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            procs.append(tt.start_train(*flags, env={"TF_CONFIG": tf_config},
                                        log_path=str(tmp_path / f"worker_{index}.log")))
        outputs = [tt.finish(p, timeout=380) for p in procs]
    finally:
        for p in procs:  # never leave a worker hanging in a collective
            if p.poll() is None:
                p.kill()
                p.wait()
    for index, (p, out) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0, f"worker {index}:\n{out[-6000:]}"
    assert "MultiWorkerMirroredStrategy: 2 replica(s)" in outputs[0]
    prints = [re.search(r"worker (\d+): final weights fingerprint (\w+)", out) for out in outputs]
    assert [m.group(1) for m in prints] == ["0", "1"]
    assert prints[0].group(2) == prints[1].group(2)  # both workers hold identical weights

    # The chief wrote the model dir; the other worker's scratch copy is gone.
    assert os.path.exists(os.path.join(model_dir, "model.keras"))
    assert not os.path.exists(os.path.join(model_dir, ".workers"))
    assert "TensorBoard logs" not in outputs[1]  # non-chief workers stay quiet
    diff = tt.max_abs_diff(tt.model_weights(model_dir), tt.model_weights(mirrored_run["model_dir"]))
    assert diff < TOLERANCE
