"""tf.data service: the training pipeline's preprocessing on other machines.

TensorFlow's own servers (`tf.data.experimental.service`): one dispatcher hands out the work, any number
of workers run the registered pipeline (decode, resample, crop, augmentation, features, tokenisation)
and stream batches to the trainer. The trainer registers its per-epoch dataset with `distribute`
(`processing_mode="distributed_epoch"`: the split's rows are spread over the workers, every row once
per epoch, each with the per-example seeds of the local pipeline, so it gets the same augmentation;
the batches are formed per worker, so their composition and order differ from a local run).

What is registered is serialized and run by the workers' C++ runtime, which cannot run Python:
`distribute` refuses a dataset with `py_function` / `numpy_function` / generator ops, naming them. The
pipeline's WAV decoding is pure TensorFlow; other formats (FLAC, OGG, MP3 through soundfile) must be
decoded before: `--snapshot_dir` on a filesystem every worker reads (the trainer decodes once, the
workers read int16 tensors), or converted to WAV.

With `work_dir`, the dispatcher runs in fault-tolerant mode: it journals its state there, so a
restarted dispatcher resumes, and a worker that dies mid-epoch does not end the job (its unfinished
rows of that epoch are lost, the others carry on; the trainer's "used N of M examples" warning counts
them).

Example:

```python
dispatcher = start_dispatcher(5050, work_dir="/shared/dispatcher")   # machine A
worker = start_worker("hostA:5050", 5051)                              # machines B, C, ...
ds = distribute(pipeline.dataset("train", training=True, epoch=0), "grpc://hostA:5050",
                job_name="run1-epoch0")                                # the trainer
```
"""

from __future__ import annotations

import socket

import tensorflow as tf

from tfsent.core.errors import UsageError

# Ops that call back into the Python interpreter (py_function, numpy_function, from_generator).
PYTHON_OPS = ("PyFunc", "PyFuncStateless", "EagerPyFunc")
PROCESSING_MODES = ("distributed_epoch", "parallel_epochs")


def python_ops(dataset) -> list[str]:
    """Names of the ops in `dataset`'s graph (functions included) that run Python."""
    graph = tf.compat.v1.GraphDef.FromString(dataset._as_serialized_graph().numpy())  # noqa: SLF001
    nodes = list(graph.node)
    for function in graph.library.function:
        nodes.extend(function.node_def)
    return sorted({f"{n.op} ({n.name})" for n in nodes if n.op in PYTHON_OPS})


def check_servable(dataset):
    """Raises `UsageError` when `dataset` cannot run on tf.data service workers (it runs Python)."""
    bad = python_ops(dataset)
    if bad:
        raise UsageError(
            "the training pipeline runs Python (" + ", ".join(bad[:3]) + (", ..." if len(bad) > 3 else "")
            + "), which tf.data service workers cannot: audio that needs soundfile (FLAC, OGG, MP3) "
            "must be decoded first (--snapshot_dir on a filesystem the workers read, or convert to WAV)")


def distribute(dataset, service, job_name, processing_mode="distributed_epoch"):
    """`dataset` registered with the dispatcher at `service` (`grpc://HOST:PORT`), read from the workers.

    Args:
        dataset: a pure-TensorFlow dataset (`check_servable`).
        service: the dispatcher's address, `grpc://HOST:PORT` (or `HOST:PORT`).
        job_name: consumers with the same job name share one job (one pass over the data); use a new
            name per epoch.
        processing_mode: `"distributed_epoch"` (each element once, spread over the workers) or
            `"parallel_epochs"` (every worker produces the whole dataset).
    """
    if processing_mode not in PROCESSING_MODES:
        raise ValueError(f"processing_mode must be one of {PROCESSING_MODES}, got {processing_mode!r}")
    check_servable(dataset)
    service = service if "://" in service else f"grpc://{service}"
    out = dataset.apply(tf.data.experimental.service.distribute(
        processing_mode=processing_mode, service=service, job_name=job_name))
    options = tf.data.Options()
    # The workers already split the data: a multi-worker strategy must not shard it again.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return out.with_options(options).prefetch(tf.data.AUTOTUNE)


# Workers heartbeat every second; one silent for WORKER_TIMEOUT_MS is dropped and its tasks end, so
# the trainer stops waiting for it (TensorFlow's default waits much longer).
HEARTBEAT_MS = 1000
WORKER_TIMEOUT_MS = 5000


def start_dispatcher(port, work_dir=None, worker_timeout_ms=WORKER_TIMEOUT_MS):
    """A started `DispatchServer` on `port` (0: any free port); fault-tolerant when `work_dir` is set."""
    config = tf.data.experimental.service.DispatcherConfig(
        port=int(port), work_dir=work_dir, fault_tolerant_mode=bool(work_dir),
        worker_timeout_ms=int(worker_timeout_ms),
        # The dispatcher looks for missing workers in its maintenance pass (default: every 10 minutes).
        job_gc_check_interval_ms=1000)
    return tf.data.experimental.service.DispatchServer(config)


def start_worker(dispatcher, port, worker_address=None):
    """A started `WorkerServer` on `port` registered with `dispatcher` (`HOST:PORT`, no scheme).

    `worker_address`: how the trainer reaches this worker (`HOST:%port%` by default: this machine's
    name; set it when the trainer knows the machine by another name)."""
    dispatcher = dispatcher.split("://", 1)[-1]
    config = tf.data.experimental.service.WorkerConfig(
        dispatcher_address=dispatcher, port=int(port), heartbeat_interval_ms=HEARTBEAT_MS,
        worker_address=worker_address or f"{socket.gethostname()}:%port%")
    return tf.data.experimental.service.WorkerServer(config)


class LocalCluster:
    """A dispatcher and `workers` workers in this process, on free localhost ports (benchmarks, tests).

    Args:
        workers: number of workers.
        work_dir: the dispatcher's journal (fault-tolerant mode), or None.

    Example:

    >>> with LocalCluster(workers=2) as cluster:  # doctest: +SKIP
    ...     for batch in distribute(ds, cluster.target, job_name="x"):
    ...         ...
    """

    def __init__(self, workers=1, work_dir=None):
        self.dispatcher = start_dispatcher(0, work_dir)
        address = self.dispatcher.target.split("://", 1)[-1]
        self.workers = [start_worker(address, 0, "localhost:%port%") for _ in range(workers)]
        self.target = self.dispatcher.target

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for worker in self.workers:
            worker.stop()
        self.dispatcher.stop()
        return False
