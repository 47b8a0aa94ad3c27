"""Training epochs from one long-lived iterator (`InputPipeline.epoch_stream`) equal the per-epoch datasets."""

import numpy as np
import pytest
import tensorflow as tf

from tfsent.audio.augment import AudioAugmentConfig
from tfsent.audio.features import FeatureConfig
from tfsent.data.epoch_stream import EpochStream
from tfsent.data.pipeline import InputPipeline, PipelineConfig
from tfsent.text.augment import TextAugmentConfig

INPUTS = ("audio_features", "audio_mask", "token_ids", "padding_mask")


def make_pipeline(manifest, preprocessor, **overrides):
    frame, sidecar = manifest
    # Per-example waveform noise, feature-domain stretch / pitch, SpecAugment and token augmentation:
    # every seeded draw the pipeline makes; bucketing flushes partial batches at each epoch's end.
    settings = dict(feature=FeatureConfig(kind="log_mel", n_mels=32), batch_size=4, max_seconds=2.0,
                    model_inputs=INPUTS, seed=5, bucket=True,
                    audio_augment=AudioAugmentConfig.seed001(freq_mask_prob=0.5),
                    text_augment=TextAugmentConfig(swap_ratio=0.3))
    settings.update(overrides)
    return InputPipeline(frame, sidecar, PipelineConfig(**settings), text_preprocessor=preprocessor)


def batches(ds):
    return [({k: v.numpy() for k, v in i.items()}, {k: v.numpy() for k, v in t.items()}) for i, t in ds]


def assert_same(expected, got):
    assert len(expected) == len(got)
    for (ie, te), (ig, tg) in zip(expected, got):
        assert set(ie) == set(ig) and set(te) == set(tg)
        for key in ie:
            np.testing.assert_array_equal(ie[key], ig[key], err_msg=key)
        for key in te:
            np.testing.assert_array_equal(te[key], tg[key], err_msg=key)


@pytest.mark.parametrize("options", [{}, {"cache_audio": True}, {"balanced_sampling": True}])
def test_stream_epochs_equal_the_per_epoch_datasets(manifest, preprocessor, options):
    pipe = make_pipeline(manifest, preprocessor, **options)
    stream = pipe.epoch_stream("train")
    for epoch in range(3):  # read from Python (one device), then through a tf.data view (replicas)
        read = stream.batches(epoch) if epoch < 2 else stream.dataset(epoch)
        assert_same(batches(pipe.dataset("train", training=True, epoch=epoch)), batches(read))
    tf.keras.backend.clear_session()


def test_resume_out_of_order_and_unfinished_views(manifest, preprocessor):
    pipe = make_pipeline(manifest, preprocessor)
    expected = {e: batches(pipe.dataset("train", training=True, epoch=e)) for e in (1, 2, 4, 5)}
    stream = pipe.epoch_stream("train")
    # A resumed run: epoch 1 from its third batch, then epoch 2 from the start.
    assert_same(expected[1][2:], batches(stream.dataset(1, skip_batches=2)))
    assert_same(expected[2], batches(stream.dataset(2)))
    # Out of sequence: the stream restarts at epoch 4; a view read only in part (take) leaves the
    # rest of its epoch, which the next view drops.
    assert_same(expected[4][:1], batches(stream.dataset(4).take(1)))
    view = stream.dataset(5)
    assert_same(expected[5], batches(view))
    # Reading a view again after the stream moved on would steal the next epoch's batches: it raises.
    with pytest.raises(tf.errors.InvalidArgumentError, match="already read"):
        batches(view)


def test_python_readers_resume_restart_and_refuse_stale_reads(manifest, preprocessor):
    pipe = make_pipeline(manifest, preprocessor)
    expected = {e: batches(pipe.dataset("train", training=True, epoch=e)) for e in (1, 2, 3)}
    stream = pipe.epoch_stream("train")
    assert_same(expected[1][2:], batches(stream.batches(1, skip_batches=2)))
    # An epoch left after one batch: the next reader drops the rest.
    first = []
    for element in stream.batches(2):
        first.append(element)
        break
    assert_same(expected[2][:1], batches(first))
    assert_same(expected[3], batches(stream.batches(3)))
    # Out of sequence: a restart. The old reader, read after it, raises before taking anything from the
    # stream, so the new epoch is whole.
    stale = stream.batches(4)
    new = stream.batches(1)
    with pytest.raises(RuntimeError, match="epoch 4 were already read"):
        next(stale)
    assert_same(expected[1], batches(new))


def test_epoch_stream_on_plain_datasets():
    """The stream itself, on a toy epoch: uneven last batch, skip, and the end marker with strings."""

    def epoch_batches(epoch, order):
        rows = tf.data.Dataset.from_tensor_slices(order).map(
            lambda i: {"i": i, "e": epoch, "name": tf.strings.as_string(i)})
        return rows.batch(3)

    def finish(batch, epoch):
        return {"i": batch["i"] * 10, "name": batch["name"]}, {"e": batch["e"] + epoch}

    stream = EpochStream(lambda e: np.roll(np.arange(7), e), epoch_batches, finish)
    for epoch in (0, 1, 2):
        got = batches(stream.dataset(epoch))
        assert [len(i["i"]) for i, _ in got] == [3, 3, 1]
        assert np.concatenate([i["i"] for i, _ in got]).tolist() == [10 * v for v in np.roll(np.arange(7), epoch)]
        assert all((t["e"] == 2 * epoch).all() for _, t in got)
    got = batches(stream.dataset(7, skip_batches=1))
    assert np.concatenate([i["i"] for i, _ in got]).tolist() == [10 * v for v in np.roll(np.arange(7), 7)[3:]]
    for epoch in (8, 9):
        got = batches(stream.batches(epoch))
        assert [len(i["i"]) for i, _ in got] == [3, 3, 1]
        assert np.concatenate([i["i"] for i, _ in got]).tolist() == [10 * v for v in np.roll(np.arange(7), epoch)]
        assert [n.decode() for n in got[0][0]["name"]] == [str(v) for v in np.roll(np.arange(7), epoch)[:3]]
