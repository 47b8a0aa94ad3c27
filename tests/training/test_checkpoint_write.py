"""Issue 17, class 4: a checkpoint that cannot be written (full or read-only disk) is one line naming
the model dir, exit 2, and leaves no `ckpt-N_temp/` behind."""

import os
import types

import pytest
import tensorflow as tf

from tfsent.core.errors import UsageError
from tfsent.training.trainer import Trainer


def test_failed_checkpoint_save_is_a_usage_error_and_leaves_no_temp(tmp_path, monkeypatch):
    variable = tf.Variable(1.0)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=variable), str(tmp_path / "checkpoints"), 3)
    manager.save(checkpoint_number=1)
    real_save = manager.save

    def full_disk(checkpoint_number):
        # What sharded saving leaves when the disk fills mid-save.
        os.makedirs(os.path.join(manager.directory, f"ckpt-{checkpoint_number}_temp"), exist_ok=True)
        raise tf.errors.ResourceExhaustedError(None, None, "No space left on device")

    monkeypatch.setattr(manager, "save", full_disk)
    trainer = types.SimpleNamespace(config=types.SimpleNamespace(model_dir=str(tmp_path)))
    model = types.SimpleNamespace(weights=[])  # the finite-weights check is not under test
    with pytest.raises(UsageError, match=r"--model_dir=.*cannot save the checkpoint of step 5.*No space left"):
        Trainer._save(trainer, manager, model, 5)
    assert not [n for n in os.listdir(tmp_path / "checkpoints") if "_temp" in n]
    monkeypatch.setattr(manager, "save", real_save)
    assert manager.latest_checkpoint.endswith("ckpt-1")
