"""tf.distribute set-up: one code path for one device, local replicas and several machines.

Example:

```python
configure_devices(cpu_devices=2)          # before anything touches the devices
strategy = make_strategy("mirrored")      # 2 logical CPUs (or every GPU)
```
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from tfsent.core.errors import UsageError


def configure_devices(cpu_devices: int = 0):
    """Splits the CPU into `cpu_devices` logical devices (must run before TF initialises devices)."""
    try:
        if cpu_devices and cpu_devices > 1:
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(cpu_devices)]
            )
        for gpu in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError as e:  # "... cannot be modified after being initialized"
        raise RuntimeError(
            f"--cpu_devices={cpu_devices}: TensorFlow's devices were already initialised; "
            f"configure_devices() must run before any TensorFlow op ({e})"
        ) from e


def make_strategy(name: str) -> tf.distribute.Strategy:
    """`default` (one device), `mirrored` (every local GPU, else every logical CPU) or `multi_worker`."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        cross_device_ops = None if gpus else tf.distribute.ReductionToOneDevice()
        return tf.distribute.MirroredStrategy(devices=devices, cross_device_ops=cross_device_ops)
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise UsageError("--strategy=multi_worker needs TF_CONFIG (see BUILD.md: several machines)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise UsageError(f"unknown --strategy {name!r}")


def worker_info(strategy) -> tuple[bool, int]:
    """(is_chief, task_id): the chief (or worker 0 when there is no chief) writes the model dir."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True, 0
    config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    task = config.get("task", {})
    task_type, task_id = task.get("type", "worker"), int(task.get("index", 0))
    has_chief = "chief" in config.get("cluster", {})
    is_chief = task_type == "chief" or (not has_chief and task_type == "worker" and task_id == 0)
    return is_chief, task_id


def worker_dir(strategy, model_dir) -> str:
    """Where this worker writes: the model dir on the chief, `MODEL_DIR/.workers/worker_N` elsewhere.

    Every worker must take part in saving checkpoints (saving may run collectives), but only the
    chief's copy is kept.
    """
    is_chief, task_id = worker_info(strategy)
    return model_dir if is_chief else os.path.join(model_dir, ".workers", f"worker_{task_id}")


def strategy_name(strategy) -> str:
    """The public name of a strategy (`MultiWorkerMirroredStrategy`'s class is called otherwise)."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "MultiWorkerMirroredStrategy"
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return "MirroredStrategy"
    return "default" if not tf.distribute.has_strategy() and strategy is tf.distribute.get_strategy() \
        else type(strategy).__name__
