"""A training epoch through tf.data service (dispatcher + 2 workers) holds the local epoch's examples.

What `bin/train --data_service` relies on for "the same training as locally": every row of the split
exactly once per epoch (none repeated, none dropped, `distributed_epoch`), each with the local
pipeline's crop and augmentation (per-example seeds from the row index, not from the worker or the
batch). Only the batch composition and order differ.
"""

import collections

import numpy as np
import pytest
import tensorflow as tf

from tfsent.audio.augment import AudioAugmentConfig
from tfsent.audio.features import FeatureConfig
from tfsent.corpus.manifest import read_manifest
from tfsent.data import service
from tfsent.data.pipeline import InputPipeline, PipelineConfig


@pytest.fixture(scope="module")
def pipe(tiny_corpus):
    frame, sidecar = read_manifest(tiny_corpus["manifest"])
    # Seed 001's noise / stretch / pitch (drawn per example), length bucketing as in training.
    config = PipelineConfig(feature=FeatureConfig(kind="log_mel", n_mels=32), batch_size=4, max_seconds=1.5,
                            model_inputs=("audio_features", "audio_mask"), seed=11,
                            audio_augment=AudioAugmentConfig.seed001(), bucket=True,
                            wav_only=True)  # workers run no Python: pure-TF WAV decoding, as bin/train sets
    return InputPipeline(frame, sidecar, config)


def examples(ds):
    """({row index: its real log-Mel frames}, how often each row came)."""
    rows, counts = {}, collections.Counter()
    for inputs, targets in ds:
        feats, mask = inputs["audio_features"].numpy(), inputs["audio_mask"].numpy()
        for i, row in enumerate(targets["index"].numpy()):
            rows[int(row)] = feats[i, : int(mask[i].sum())]
            counts[int(row)] += 1
    return rows, counts


def test_service_epoch_has_every_row_once_with_the_local_augmentation(pipe):
    epoch = 1
    local, local_counts = examples(pipe.dataset("train", training=True, epoch=epoch))
    assert set(local_counts.values()) == {1} and len(local) == pipe.num_examples("train")
    with service.LocalCluster(workers=2) as cluster:
        ds = service.distribute(pipe.dataset("train", training=True, epoch=epoch), cluster.target,
                                job_name="test-service-epoch")
        served, served_counts = examples(ds)
    assert served_counts == local_counts  # each row once: nothing repeated or dropped
    for row, feats in local.items():
        np.testing.assert_allclose(served[row], feats, rtol=1e-4, atol=1e-4, err_msg=f"row {row}")
    # The augmentation is on (not trivially equal): another epoch draws other crops / noise.
    other, _ = examples(pipe.dataset("train", training=True, epoch=epoch + 1))
    assert any(other[r].shape != local[r].shape or not np.allclose(other[r], local[r]) for r in local)
    tf.keras.backend.clear_session()
