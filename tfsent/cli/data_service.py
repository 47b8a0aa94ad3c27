"""bin/data_service: a tf.data service dispatcher or worker for `bin/train --data_service`.

    bin/data_service dispatcher --port=P [--work_dir=DIR]
    bin/data_service worker --dispatcher=HOST:P --port=Q [--worker_address=HOST:Q]

The dispatcher hands out the training pipeline that `bin/train --data_service=grpc://HOST:P` registers;
workers run it (decode, resample, augmentation, features, tokenisation) and stream batches to the
trainer. `--work_dir` (a folder the dispatcher keeps) turns on fault-tolerant mode: a worker killed
mid-epoch does not stop training, and a restarted dispatcher resumes from its journal. Both run until
interrupted (Ctrl-C / SIGTERM). Workers need this checkout's environment (`bin/setup`: TensorFlow and
tensorflow-text, whose ops the tokeniser uses) and read the audio at the paths the trainer's manifest
gives, so the corpus (or the --snapshot_dir) must be on a filesystem every worker mounts at the same path.
"""

from __future__ import annotations

import signal
import threading

from absl import flags

from tfsent.cli import common
from tfsent.core.errors import UsageError

flags.DEFINE_integer("port", None, "Port to listen on (dispatcher and worker).")
flags.DEFINE_string("work_dir", None, "Dispatcher only: journal folder; enables fault-tolerant mode.")
flags.DEFINE_string("dispatcher", None, "Worker only: the dispatcher's HOST:PORT.")
flags.DEFINE_string("worker_address", None, "Worker only: HOST:PORT the trainer uses to reach this worker "
                    "(default: this machine's hostname and --port).")
FLAGS = flags.FLAGS
ROLES = ("dispatcher", "worker")


def main(argv):
    if len(argv) != 2 or argv[1] not in ROLES:
        raise UsageError("usage: bin/data_service dispatcher --port=P [--work_dir=DIR] | "
                         "bin/data_service worker --dispatcher=HOST:P --port=Q")
    role = argv[1]
    if FLAGS.port is None or not 0 < FLAGS.port < 65536:
        raise UsageError("--port=P is required (1-65535)")
    import tensorflow_text  # noqa: F401 -- registers the tokeniser's ops the registered pipelines use

    from tfsent.data import service

    if role == "dispatcher":
        if FLAGS.dispatcher:
            raise UsageError("--dispatcher is for workers")
        server = service.start_dispatcher(FLAGS.port, FLAGS.work_dir)
        mode = f"fault-tolerant, journal in {FLAGS.work_dir}" if FLAGS.work_dir else "not fault-tolerant (no --work_dir)"
        print(f"dispatcher on grpc://0.0.0.0:{FLAGS.port} ({mode}); bin/train --data_service=grpc://HOST:{FLAGS.port}",
              flush=True)
    else:
        if not FLAGS.dispatcher:
            raise UsageError("--dispatcher=HOST:PORT is required for a worker")
        if FLAGS.work_dir:
            raise UsageError("--work_dir is for the dispatcher")
        server = service.start_worker(FLAGS.dispatcher, FLAGS.port, FLAGS.worker_address)
        print(f"worker on port {FLAGS.port}, registered with {FLAGS.dispatcher}", flush=True)
    _serve_until_stopped(server)
    return 0


def _serve_until_stopped(server):
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    server.stop()
    print("stopped", flush=True)


def run():
    common.run_main(main, "data_service")


if __name__ == "__main__":
    run()
