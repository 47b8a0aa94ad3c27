"""The tf.data pipeline on a real (tiny, synthetic) prepared corpus."""

import os
import shutil
import socket

import numpy as np
import pytest
import tensorflow as tf

from tfsent.audio.augment import AudioAugmentConfig
from tfsent.audio.features import FeatureConfig
from tfsent.data.pipeline import InputPipeline, PipelineConfig
from tfsent.text.augment import TextAugmentConfig

INPUTS = ("audio_features", "audio_mask", "token_ids", "padding_mask")


def make_pipeline(manifest, preprocessor, **overrides):
    frame, sidecar = manifest
    settings = dict(feature=FeatureConfig(kind="log_mel", n_mels=32), batch_size=4, max_seconds=2.0,
                    model_inputs=INPUTS)
    settings.update(overrides)
    config = PipelineConfig(**settings)
    return InputPipeline(frame, sidecar, config, text_preprocessor=preprocessor)


def batches(ds):
    return [(as_numpy(i), as_numpy(t)) for i, t in ds]


def as_numpy(d):
    return {k: v.numpy() for k, v in d.items()}


def test_batches_have_contract_shapes_dtypes_and_masks(manifest, preprocessor):
    pipe = make_pipeline(manifest, preprocessor)
    n = pipe.num_examples("train")
    seen = 0
    for inputs, targets in pipe.dataset("train", training=True, epoch=0):
        assert set(inputs) == set(INPUTS)
        b = inputs["audio_features"].shape[0]
        assert inputs["audio_features"].dtype == tf.float32 and inputs["audio_features"].shape[2] == 32
        for key in ("audio_mask", "token_ids", "padding_mask"):
            assert inputs[key].dtype == tf.int32  # never bool (distributed datasets)
        mask = inputs["audio_mask"].numpy()
        assert set(np.unique(mask)) <= {0, 1}
        # Every clip has real frames, padding only at the end, and padded frames are zero.
        assert (mask.sum(1) > 0).all()
        assert (np.diff(mask, axis=1) <= 0).all()
        feats = inputs["audio_features"].numpy()
        assert np.all(feats[mask == 0] == 0)
        # 2 s at 16 kHz, hop 160 → at most 201 frames.
        assert feats.shape[1] <= 201
        assert targets["target"].shape == (b, 4)
        np.testing.assert_allclose(targets["target"].numpy().sum(1), 1.0, rtol=1e-6)
        seen += b
    assert seen == n


def test_same_seed_same_batches_different_seed_differs(manifest, preprocessor):
    aug = AudioAugmentConfig(noise_prob=1.0, gain_prob=1.0, freq_mask_prob=1.0)
    a = batches(make_pipeline(manifest, preprocessor, seed=1, audio_augment=aug).dataset("train", training=True))
    b = batches(make_pipeline(manifest, preprocessor, seed=1, audio_augment=aug).dataset("train", training=True))
    c = batches(make_pipeline(manifest, preprocessor, seed=2, audio_augment=aug).dataset("train", training=True))
    assert len(a) == len(b)
    for (ia, ta), (ib, tb) in zip(a, b):
        np.testing.assert_array_equal(ta["index"], tb["index"])
        np.testing.assert_array_equal(ia["audio_features"], ib["audio_features"])
    order_a = np.concatenate([t["index"] for _, t in a])
    order_c = np.concatenate([t["index"] for _, t in c])
    assert sorted(order_a) == sorted(order_c)
    assert not np.array_equal(order_a, order_c)


def test_epochs_shuffle_differently_and_eval_keeps_manifest_order(manifest, preprocessor):
    pipe = make_pipeline(manifest, preprocessor)
    e0 = np.concatenate([t["index"] for _, t in batches(pipe.dataset("train", training=True, epoch=0))])
    e1 = np.concatenate([t["index"] for _, t in batches(pipe.dataset("train", training=True, epoch=1))])
    assert not np.array_equal(e0, e1)
    ev = np.concatenate([t["index"] for _, t in batches(pipe.dataset("train", training=False))])
    np.testing.assert_array_equal(ev, np.arange(pipe.num_examples("train")))


def test_skip_batches_resumes_mid_epoch(manifest, preprocessor):
    pipe = make_pipeline(manifest, preprocessor, seed=5)
    full = batches(pipe.dataset("train", training=True, epoch=3))
    rest = batches(pipe.dataset("train", training=True, epoch=3, skip_batches=2))
    assert len(rest) == len(full) - 2
    for (i_full, t_full), (i_rest, t_rest) in zip(full[2:], rest):
        np.testing.assert_array_equal(t_full["index"], t_rest["index"])
        np.testing.assert_array_equal(i_full["audio_features"], i_rest["audio_features"])


def test_augmentation_only_for_chosen_classes(manifest, preprocessor):
    frame, sidecar = manifest
    happy = sidecar["classes"].index("happy")
    aug = AudioAugmentConfig(noise_prob=1.0, noise_snr_db=(0.0, 0.0), classes=(happy,))
    plain = batches(make_pipeline(manifest, preprocessor).dataset("train", training=True))
    augmented = batches(make_pipeline(manifest, preprocessor, audio_augment=aug).dataset("train", training=True))
    changed = {}
    for (ip, tp), (ia, ta) in zip(plain, augmented):
        np.testing.assert_array_equal(tp["index"], ta["index"])
        for row, label in enumerate(tp["label"]):
            same = np.allclose(ip["audio_features"][row], ia["audio_features"][row])
            changed.setdefault(int(label), []).append(not same)
    assert all(changed[happy]) and changed[happy]
    assert not any(v for label, flags in changed.items() if label != happy for v in flags)


def test_text_augmentation_keeps_masks_consistent(manifest, preprocessor):
    aug = TextAugmentConfig(swap_ratio=0.3, deletion_rate=0.3)
    for inputs, _ in make_pipeline(manifest, preprocessor, text_augment=aug).dataset("train", training=True):
        ids = inputs["token_ids"].numpy()
        mask = inputs["padding_mask"].numpy()
        assert (mask.sum(1) >= 2).all()  # [CLS] and [SEP] survive
        assert np.all(ids[mask == 0] == 1)  # [PAD] id is 1


def test_unreadable_audio_is_skipped_and_logged(manifest, preprocessor, tmp_path, capfd):
    frame, sidecar = manifest
    corpus = tmp_path / "corpus"
    shutil.copytree(sidecar["data_dir"], corpus)
    train = frame[frame["split"] == "train"]
    victim = train.iloc[1]
    with open(corpus / victim["audio_path"], "wb") as f:
        f.write(b"RIFF\x00\x00\x00\x00WAVEjunk")  # a header with no audio behind it
    pipe = InputPipeline(
        frame, dict(sidecar, data_dir=str(corpus)),
        PipelineConfig(feature=FeatureConfig(kind="log_mel", n_mels=32), batch_size=4, model_inputs=INPUTS),
        text_preprocessor=preprocessor,
    )
    got = np.concatenate([t["index"] for _, t in batches(pipe.dataset("train", training=False))])
    assert len(got) == len(train) - 1
    assert 1 not in got
    assert victim["utt_id"] in capfd.readouterr().err


def test_non_finite_and_too_short_audio_are_skipped_and_named(manifest, preprocessor, tmp_path, capfd):
    # issue 17, class 2: a float WAV full of NaN was fed (training then stopped on non-finite gradients
    # without naming the file; evaluation scored it), and a 1 ms clip was scored like a sentence.
    import soundfile

    frame, sidecar = manifest
    corpus = tmp_path / "corpus"
    shutil.copytree(sidecar["data_dir"], corpus)
    train = frame[frame["split"] == "train"]
    nan, short = train.iloc[0], train.iloc[2]
    soundfile.write(str(corpus / nan["audio_path"]), np.full(8000, np.nan, np.float32), 16000, subtype="FLOAT")
    soundfile.write(str(corpus / short["audio_path"]), np.full(16, 0.1, np.float32), 16000)
    pipe = InputPipeline(
        frame, dict(sidecar, data_dir=str(corpus)),
        PipelineConfig(feature=FeatureConfig(kind="log_mel", n_mels=32), batch_size=4, model_inputs=INPUTS),
        text_preprocessor=preprocessor,
    )
    got = np.concatenate([t["index"] for _, t in batches(pipe.dataset("train", training=False))])
    assert len(got) == len(train) - 2 and 0 not in got and 2 not in got
    err = capfd.readouterr().err
    assert nan["utt_id"] in err and short["utt_id"] in err


def test_audio_paths_outside_the_corpus_are_refused(manifest, preprocessor):
    # issue 17, class 7: a hand-edited audio_path climbing out of data_dir was read silently.
    from tfsent.core.errors import UsageError

    frame, sidecar = manifest
    edited = frame.copy()
    edited.loc[edited.index[0], "audio_path"] = "../outside/x.wav"
    pipe = make_pipeline((edited, sidecar), preprocessor)
    with pytest.raises(UsageError, match=r"audio_path '\.\./outside/x\.wav' leaves the corpus root"):
        pipe.dataset(str(edited["split"].iloc[0]), training=False)


def test_padded_batch_gives_each_clip_its_unpadded_features(manifest, preprocessor):
    """Frames of a clip do not depend on its neighbours (what lets models ignore batch composition)."""
    pipe = make_pipeline(manifest, preprocessor, batch_size=64)
    (inputs, targets), = batches(pipe.dataset("valid", training=False))
    single = make_pipeline(manifest, preprocessor, batch_size=1)
    for row, (i1, _) in enumerate(batches(single.dataset("valid", training=False))):
        t = int(i1["audio_mask"].sum())
        np.testing.assert_allclose(inputs["audio_features"][row, :t], i1["audio_features"][0, :t], atol=1e-4)
        assert inputs["audio_mask"][row].sum() == t


# --- decoded-audio stores (cache_audio, snapshot_dir) ---

STORE_AUG = dict(audio_augment=AudioAugmentConfig(noise_prob=1.0, gain_prob=1.0, freq_mask_prob=1.0,
                                                  time_mask_prob=1.0),
                 text_augment=TextAugmentConfig(swap_ratio=0.3))


@pytest.fixture
def moved_corpus(manifest, tmp_path):
    """A private copy of the corpus (tests rename it away) and the sidecar that points to it."""
    frame, sidecar = manifest
    corpus = tmp_path / "corpus"
    shutil.copytree(sidecar["data_dir"], corpus)
    return frame, dict(sidecar, data_dir=str(corpus)), corpus


def store_pipeline(manifest, preprocessor, sidecar=None, **store):
    frame, default_sidecar = manifest
    config = PipelineConfig(feature=FeatureConfig(kind="log_mel", n_mels=32), batch_size=4, max_seconds=2.0,
                            model_inputs=INPUTS, seed=7, **STORE_AUG, **store)
    return InputPipeline(frame, sidecar or default_sidecar, config, text_preprocessor=preprocessor)


@pytest.fixture(scope="module")
def uncached(manifest, preprocessor):
    """Batches of the uncached pipeline: {(epoch, training): batches}."""
    pipe = store_pipeline(manifest, preprocessor)
    return {(e, t): batches(pipe.dataset("train", training=t, epoch=e)) for e in (0, 1) for t in (True, False)}


def assert_same_batches(expected, got):
    assert len(expected) == len(got)
    for (ie, te), (ig, tg) in zip(expected, got):
        np.testing.assert_array_equal(te["index"], tg["index"])
        assert set(ie) == set(ig)
        for key in ie:
            np.testing.assert_allclose(ie[key], ig[key], atol=1e-6, rtol=0)


@pytest.mark.parametrize("store", ["cache_audio", "snapshot_dir"])
def test_store_gives_the_uncached_batches_and_decodes_once(manifest, preprocessor, uncached, moved_corpus,
                                                           tmp_path, store):
    """Two epochs, training (augmentation on) and eval, equal the uncached pipeline's; after the first
    pass the clips come from the store (the corpus is gone and nothing changes)."""
    frame, sidecar, corpus = moved_corpus
    options = {"cache_audio": True} if store == "cache_audio" else {"snapshot_dir": str(tmp_path / "snap")}
    pipe = store_pipeline(manifest, preprocessor, sidecar, **options)
    assert_same_batches(uncached[0, True], batches(pipe.dataset("train", training=True, epoch=0)))
    os.rename(corpus, str(corpus) + ".moved")
    for epoch, training in ((1, True), (0, False), (1, False)):
        assert_same_batches(uncached[epoch, training],
                            batches(pipe.dataset("train", training=training, epoch=epoch)))


def test_snapshot_is_reused_by_a_new_pipeline(manifest, preprocessor, uncached, moved_corpus, tmp_path):
    frame, sidecar, corpus = moved_corpus
    snap = tmp_path / "snap"
    first = store_pipeline(manifest, preprocessor, sidecar, snapshot_dir=str(snap))
    first.dataset("train", training=False)  # builds the snapshot of the train split
    (built,) = os.listdir(snap / "train")
    assert os.path.exists(snap / "train" / built / "index.json")
    os.rename(corpus, str(corpus) + ".moved")
    again = store_pipeline(manifest, preprocessor, sidecar, snapshot_dir=str(snap))
    assert_same_batches(uncached[1, True], batches(again.dataset("train", training=True, epoch=1)))
    assert os.listdir(snap / "train") == [built]


def test_half_written_snapshot_is_not_used_and_gets_rebuilt(manifest, preprocessor, uncached, moved_corpus,
                                                            tmp_path, monkeypatch):
    from tfsent.data import decoded

    frame, sidecar, _ = moved_corpus
    snap = tmp_path / "snap"

    def crash(*args):
        raise KeyboardInterrupt("killed mid-way")

    monkeypatch.setattr(decoded, "_write_clips", crash)
    with pytest.raises(KeyboardInterrupt):
        store_pipeline(manifest, preprocessor, sidecar, snapshot_dir=str(snap)).dataset("train", training=False)
    monkeypatch.undo()
    assert os.listdir(snap / "train") == []  # the temporary directory went with the failure
    # A crashed process's leftovers (a dead pid on this host) are removed by the next build.
    pipe = store_pipeline(manifest, preprocessor, sidecar, snapshot_dir=str(snap))
    name = "audio-v%d-%s" % (decoded.FORMAT_VERSION,
                             decoded.fingerprint(pipe._tables(pipe.split_frame("train"))["path"], 16000))
    stale = snap / "train" / f".{name}.tmp-{socket.gethostname()}-999999999-abc"
    stale.mkdir()
    assert_same_batches(uncached[0, False], batches(pipe.dataset("train", training=False)))
    assert os.listdir(snap / "train") == [name]


@pytest.mark.parametrize("store", ["cache_audio", "snapshot_dir"])
def test_store_skips_and_logs_unreadable_audio(manifest, preprocessor, moved_corpus, tmp_path, capfd, store):
    frame, sidecar, corpus = moved_corpus
    victim = frame[frame["split"] == "train"].iloc[2]
    with open(corpus / victim["audio_path"], "wb") as f:
        f.write(b"RIFF\x00\x00\x00\x00WAVEjunk")
    options = {"cache_audio": True} if store == "cache_audio" else {"snapshot_dir": str(tmp_path / "snap")}
    pipe = store_pipeline(manifest, preprocessor, sidecar, **options)
    for training in (True, False):
        got = np.concatenate([t["index"] for _, t in batches(pipe.dataset("train", training=training))])
        assert len(got) == len(frame[frame["split"] == "train"]) - 1 and 2 not in got
    assert victim["utt_id"] in capfd.readouterr().err
    if store == "snapshot_dir":  # a reused snapshot names the clips it left out again
        store_pipeline(manifest, preprocessor, sidecar, **options).dataset("train", training=False)
        assert victim["utt_id"] in capfd.readouterr().err


def test_augmented_waveforms_are_the_training_clips_peak_normalised(manifest, preprocessor):
    pipe = store_pipeline(manifest, preprocessor)
    clips = pipe.augmented_waveforms("train", count=3, epoch=1)
    assert clips.dtype == tf.float32 and clips.shape[0] == 3
    assert clips.shape[1] <= pipe.config.max_samples
    np.testing.assert_allclose(np.abs(clips.numpy()).max(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(clips.numpy(), pipe.augmented_waveforms("train", count=3, epoch=1).numpy())
    assert not np.allclose(clips.numpy(), pipe.augmented_waveforms("train", count=3, epoch=2).numpy())
    text_only = make_pipeline(manifest, preprocessor, model_inputs=("token_ids", "padding_mask"))
    assert text_only.augmented_waveforms("train", count=3) is None
