"""A NaN/Inf loss stops training with a message naming the step and leaves only finite checkpoints;
mixed precision (bfloat16 on CPU) and XLA (`jit_compile`) train with float32 outputs."""

import os
import re

import numpy as np
import pytest
import tensorflow as tf

from tfsent.training.trainer import TrainingError


@pytest.mark.timeout(300)
def test_nan_loss_stops_naming_the_step_and_saves_nothing_corrupt(mirrored_run, tt, tmp_path):
    model_dir = str(tmp_path / "nan")
    # Adam moves every weight by ~learning_rate per step: 1e30 overflows float32 in the next step.
    with pytest.raises(TrainingError) as err:
        tt.in_process_run(mirrored_run["model_dir"], model_dir, optimizer="adam", learning_rate=1e30,
                          checkpoint_every_steps=1, epochs=2)
    message = str(err.value)
    match = re.search(r"at step (\d+) \(epoch 1\)", message)
    assert match and ("non-finite" in message or "loss became" in message), message
    bad_step = int(match.group(1))
    assert bad_step >= 2  # step 1 is finite: the check did not fire at random

    saved = tf.train.get_checkpoint_state(os.path.join(model_dir, "checkpoints"))
    assert saved is not None and saved.all_model_checkpoint_paths  # the good steps were saved...
    for path in saved.all_model_checkpoint_paths:
        assert int(path.rsplit("-", 1)[1]) < bad_step  # ...and nothing from the bad step on
        reader = tf.train.load_checkpoint(path)
        for name, dtype in reader.get_variable_to_dtype_map().items():
            if dtype.is_floating and name.startswith(("model/", "optimizer/")):
                assert np.all(np.isfinite(reader.get_tensor(name))), (path, name)
    assert not os.path.exists(os.path.join(model_dir, "model.keras"))
    assert not os.path.exists(os.path.join(model_dir, "train_summary.json"))


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("policy, jit", [("mixed_bfloat16", True), ("mixed_float16", False)])
def test_mixed_precision_and_jit_compile_train_on_cpu(policy, jit, mirrored_run, tt, tmp_path):
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)  # what bin/train does for --mixed_precision
    try:
        trainer, summary = tt.in_process_run(mirrored_run["model_dir"], str(tmp_path / "run"),
                                             mixed_precision=policy, jit_compile=jit, epochs=1)
    finally:
        keras.config.set_dtype_policy(previous)
    model = trainer.model
    assert summary["global_step"] > 0 and np.isfinite(summary["history"][0]["train_loss"])
    compute = policy.split("_")[1]
    assert any(layer.compute_dtype == compute for layer in model.layers)  # it really ran in 16 bits
    assert all(w.dtype == "float32" for w in model.trainable_weights)  # master weights stay float32
    assert model.get_layer("logits").compute_dtype == "float32"
    loaded = tt.model_weights(str(tmp_path / "run"))
    assert all(np.all(np.isfinite(w)) for w in loaded)
    if policy == "mixed_float16":  # dynamic loss scaling, its scale saved with the optimizer
        assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
