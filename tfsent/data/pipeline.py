"""The tf.data input pipeline: manifest rows → batches of model inputs (Contract 2 in ARCHITECTURE.md).

Per example: read + decode the audio file, downmix, resample to the model rate (all in TensorFlow;
soundfile only for formats `tf.audio.decode_wav` cannot read), crop (random when training, centre
otherwise) or keep up to `max_seconds`, augment the waveform. Per batch: pad, compute the features
(`AudioFrontend`: log-Mel / MFCC with frame masks), SpecAugment, tokenize the text in-graph, augment the
tokens. Everything that depends on randomness is derived from `(seed, epoch, example index)` with
stateless ops, so a fixed seed gives the same batches in the same order, a resumed run can skip the
batches it already saw, and different seeds differ.

Unreadable audio met on the way is skipped: its id is logged, and the trainer compares the number of
examples each epoch yielded with the split's size and reports the difference.

Example:

```python
pipeline = InputPipeline(df, sidecar, config, text_preprocessor=pre)
for inputs, targets in pipeline.dataset("train", training=True, epoch=0):
    ...
```
"""

from __future__ import annotations

import dataclasses
import os
import sys

import numpy as np
import tensorflow as tf

from tfsent.audio import io as audio_io
from tfsent.audio.features import AudioFrontend, FeatureConfig

AUDIO_INPUTS = ("audio_features", "audio_mask", "waveform", "waveform_mask")
TEXT_INPUTS = ("token_ids", "padding_mask")


@dataclasses.dataclass
class PipelineConfig:
    """How the pipeline turns manifest rows into batches.

    Args:
        feature: the in-graph audio features.
        batch_size: global batch size.
        max_seconds: crop length (random crop in training, centre crop otherwise).
        model_inputs: the input names the model takes (Contract 2); only these are built.
        seed: base seed for order and augmentation.
        audio_augment: `tfsent.audio.augment.AudioAugmentConfig` (waveform augmentation and
            SpecAugment; its `classes` limits it to some classes), or None.
        text_augment: `tfsent.text.augment.TextAugmentConfig` (its `class_ids` likewise), or None.
        cache_audio: keep decoded, resampled waveforms in memory across epochs.
        snapshot_dir: `tf.data` snapshot of decoded waveforms on disk.
        balanced_sampling: draw training examples with equal probability per class.
        class_weights: per-class loss weights (multiplied into each example's `weight`), or None.
        bucket: bucket training batches by clip length so padding stays small.
    """

    feature: FeatureConfig
    batch_size: int = 32
    max_seconds: float = 4.0
    model_inputs: tuple = ()
    seed: int = 42
    audio_augment: object = None
    text_augment: object = None
    cache_audio: bool = False
    snapshot_dir: str | None = None
    balanced_sampling: bool = False
    class_weights: tuple | None = None
    bucket: bool = True

    @property
    def max_samples(self) -> int:
        return int(round(self.max_seconds * self.feature.sample_rate))

    @property
    def needs_audio(self) -> bool:
        return any(name in AUDIO_INPUTS for name in self.model_inputs)

    @property
    def needs_text(self) -> bool:
        return any(name in TEXT_INPUTS for name in self.model_inputs)


class InputPipeline:
    """Builds `tf.data.Dataset`s of `(inputs, targets)` from a prepared manifest.

    Args:
        frame: the manifest as a DataFrame (`tfsent.corpus.manifest.read_manifest`).
        sidecar: the manifest's sidecar dict (gives `data_dir` and `classes`).
        config: a `PipelineConfig`.
        text_preprocessor: a layer mapping strings [B] to `token_ids`/`padding_mask` (needed when the
            model takes text).

    `targets` holds `label` int32 [B] (class index), `target` float32 [B, C] (soft label
    distribution), `valence`, `arousal` float32 [B] (NaN when unknown), `weight` float32 [B] and
    `index` int32 [B] (row position within the split, for aligning predictions with utterance ids).
    """

    def __init__(self, frame, sidecar, config: PipelineConfig, text_preprocessor=None):
        self.frame = frame.reset_index(drop=True)
        self.sidecar = sidecar
        self.config = config
        self.classes = list(sidecar["classes"])
        self.data_dir = sidecar.get("data_dir", "")
        self.text_preprocessor = text_preprocessor
        if config.needs_text and text_preprocessor is None:
            raise ValueError("the model takes text, but no text preprocessor was given")
        self._frontend = AudioFrontend(config.feature) if config.feature.kind != "waveform" else None
        self._cached = {}
        # Traced once per pipeline, reused by every epoch's dataset: tracing the decode, augmentation
        # and feature graphs costs seconds of CPU, which a per-epoch `Dataset.map` of fresh lambdas
        # paid again every epoch. The epoch enters as a tensor; `training` (a Python bool) keys the
        # trace cache.
        self._load_fn = tf.function(self._load)
        self._per_example_fn = tf.function(self._per_example)
        self._per_batch_fn = tf.function(self._per_batch)

    # --- index tables ---------------------------------------------------------------------------

    def split_frame(self, split: str):
        """The manifest rows of `split`, in manifest order (the order evaluation reports)."""
        rows = self.frame[self.frame["split"].astype(str) == str(split)].reset_index(drop=True)
        if len(rows) == 0:
            raise ValueError(
                f"split {split!r} is empty in the manifest (splits present: "
                f"{sorted(self.frame['split'].astype(str).unique())})"
            )
        return rows

    def _tables(self, rows):
        class_index = {c: i for i, c in enumerate(self.classes)}
        unknown = sorted(set(rows["emotion"].astype(str)) - set(class_index))
        if unknown:
            raise ValueError(f"manifest labels {unknown} are not in the sidecar's classes {self.classes}")
        labels = rows["emotion"].astype(str).map(class_index).to_numpy(np.int32)
        target_cols = [f"target_{c}" for c in self.classes]
        if all(col in rows for col in target_cols):
            target = rows[target_cols].to_numpy(np.float32)
        else:
            target = np.eye(len(self.classes), dtype=np.float32)[labels]
        weight = rows["weight"].to_numpy(np.float32) if "weight" in rows else np.ones(len(rows), np.float32)
        weight = np.nan_to_num(weight, nan=1.0)
        if self.config.class_weights is not None:
            weight = weight * np.asarray(self.config.class_weights, np.float32)[labels]
        paths = [os.path.join(self.data_dir, p) for p in rows["audio_path"].astype(str)]
        return {
            "index": np.arange(len(rows), dtype=np.int32),
            "path": np.asarray(paths, dtype=object),
            "utt_id": rows["utt_id"].astype(str).to_numpy(dtype=object),
            "text": rows["text"].fillna("").astype(str).to_numpy(dtype=object),
            "label": labels,
            "target": target,
            "valence": pd_float(rows, "valence"),
            "arousal": pd_float(rows, "arousal"),
            "weight": weight,
        }

    # --- datasets -------------------------------------------------------------------------------

    def dataset(self, split: str, *, training: bool, epoch: int = 0, skip_batches: int = 0):
        """Batches for one epoch of `split`.

        Training datasets are shuffled with a permutation drawn from `(seed, epoch)`; evaluation
        datasets keep manifest order and are never bucketed, so predictions line up with rows.
        `skip_batches` drops the first batches (a resumed run continues mid-epoch).
        """
        cfg = self.config
        rows = self.split_frame(split)
        tables = self._tables(rows)
        n = len(rows)
        if training:
            order = self._epoch_order(tables["label"], epoch)
        else:
            order = np.arange(n)

        if cfg.cache_audio or cfg.snapshot_dir:
            ds = self._decoded_dataset(split, tables)  # manifest order, decoded once
            if training:
                # Re-order the cached elements by this epoch's permutation without re-decoding.
                ds = _reorder(ds, order)
        else:
            ds = tf.data.Dataset.from_tensor_slices({k: v[order] for k, v in tables.items()})
            ds = ds.map(self._load_fn, num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.filter(lambda ex: ex["ok"])

        ds = ds.map(
            lambda ex: self._per_example_fn(ex, training, tf.constant(epoch, tf.int32)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        ds = self._batch(ds, training)
        ds = ds.map(
            lambda ex: self._per_batch_fn(ex, training, tf.constant(epoch, tf.int32)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        if skip_batches:
            ds = ds.skip(skip_batches)
        options = tf.data.Options()
        options.deterministic = True
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return ds.with_options(options).prefetch(tf.data.AUTOTUNE)

    def num_examples(self, split: str) -> int:
        return len(self.split_frame(split))

    def max_batches(self, split: str, training: bool = True) -> int:
        """The most batches one epoch of `split` can have.

        `ceil(n / batch_size)`; bucketed training batches (by clip length) can flush one partial
        batch per bucket, so up to `len(buckets) - 1` more. The trainer plans its learning-rate
        schedule with this, so the schedule never ends before training does.
        """
        n = self.num_examples(split)
        batches = -(-n // self.config.batch_size)
        if self._bucketed(training):
            batches += len(self._bucket_boundaries())
        return batches

    def _epoch_order(self, labels, epoch):
        rng = np.random.default_rng([self.config.seed, epoch])
        n = len(labels)
        if not self.config.balanced_sampling:
            return rng.permutation(n)
        # Equal probability per class, same epoch size.
        classes = np.unique(labels)
        per_class = {c: np.flatnonzero(labels == c) for c in classes}
        picks = rng.choice(classes, size=n)
        return np.array([rng.choice(per_class[c]) for c in picks], dtype=np.int64)

    def _decoded_dataset(self, split, tables):
        if split not in self._cached:
            ds = tf.data.Dataset.from_tensor_slices(tables)
            ds = ds.map(self._load_fn, num_parallel_calls=tf.data.AUTOTUNE)
            if self.config.snapshot_dir:
                ds = ds.snapshot(os.path.join(self.config.snapshot_dir, split))
            else:
                ds = ds.cache()
            self._cached[split] = ds
        return self._cached[split]

    # --- per example ----------------------------------------------------------------------------

    def _load(self, ex):
        out = dict(ex)
        if self.config.needs_audio:
            audio, ok = audio_io.load_audio_checked(ex["path"], self.config.feature.sample_rate)
            ok = tf.logical_and(ok, tf.size(audio) > 0)

            def report():
                tf.print("tfsent: skipping unreadable audio", ex["utt_id"], ex["path"],
                         output_stream=sys.stderr)
                return tf.constant(False)

            ok = tf.cond(ok, lambda: tf.constant(True), report)
            out["audio"] = audio
            out["ok"] = ok
        else:
            out["ok"] = tf.constant(True)
        return out

    def _per_example(self, ex, training, epoch):
        cfg = self.config
        out = {k: v for k, v in ex.items() if k not in ("path", "ok", "utt_id")}
        seed = _example_seed(cfg.seed, epoch, ex["index"])
        if cfg.needs_audio:
            audio = ex["audio"]
            audio = _crop(audio, cfg.max_samples, training, seed)
            length = tf.shape(audio)[0]
            if training and cfg.audio_augment is not None:
                from tfsent.audio import augment as audio_augment

                audio, length = audio_augment.augment_waveform(
                    audio, length, seed, cfg.audio_augment, class_id=ex["label"]
                )
                audio = audio[: cfg.max_samples]
                length = tf.minimum(length, cfg.max_samples)
            out["audio"] = audio
            out["audio_length"] = tf.cast(length, tf.int32)
        else:
            out.pop("audio", None)
        return out

    # --- batching -------------------------------------------------------------------------------

    def _bucketed(self, training):
        return bool(training and self.config.bucket and self.config.needs_audio)

    def _bucket_boundaries(self):
        """Clip-length boundaries (samples) of the 4 training buckets."""
        step = max(self.config.max_samples // 4, 1)
        return [step, 2 * step, 3 * step]

    def _batch(self, ds, training):
        cfg = self.config
        if self._bucketed(training):
            boundaries = self._bucket_boundaries()
            return ds.bucket_by_sequence_length(
                element_length_func=lambda ex: ex["audio_length"],
                bucket_boundaries=boundaries,
                bucket_batch_sizes=[cfg.batch_size] * (len(boundaries) + 1),
                no_padding=False,
            )
        return ds.padded_batch(cfg.batch_size)

    # --- per batch ------------------------------------------------------------------------------

    def _per_batch(self, batch, training, epoch):
        cfg = self.config
        inputs = {}
        if cfg.needs_audio:
            audio = batch["audio"]
            lengths = batch["audio_length"]
            if self._frontend is not None:
                features, frame_mask = self._frontend(audio, lengths)
                aug = cfg.audio_augment
                if training and aug is not None and (aug.freq_mask_prob > 0 or aug.time_mask_prob > 0):
                    from tfsent.audio import augment as audio_augment

                    seeds = _batch_seeds(cfg.seed + 104729, epoch, batch["index"])
                    features = audio_augment.spec_augment(
                        features, frame_mask, seeds, aug, class_id=batch["label"]
                    )
                inputs["audio_features"] = features
                inputs["audio_mask"] = tf.cast(frame_mask, tf.int32)
            else:
                inputs["waveform"] = audio
                inputs["waveform_mask"] = tf.cast(
                    tf.sequence_mask(lengths, tf.shape(audio)[1]), tf.int32
                )
        if cfg.needs_text:
            tokens = self.text_preprocessor(batch["text"])
            token_ids = tf.cast(tokens["token_ids"], tf.int32)
            padding_mask = tf.cast(tokens["padding_mask"], tf.int32)
            if training and cfg.text_augment is not None:
                from tfsent.text import augment as text_augment

                # One seed per batch: batches are deterministic given (seed, epoch), and so is this.
                seed = _example_seed(cfg.seed + 15485863, epoch, batch["index"][0])
                token_ids, padding_mask = text_augment.augment_tokens(
                    token_ids, padding_mask, seed, cfg.text_augment, class_id=batch["label"]
                )
            inputs["token_ids"] = token_ids
            inputs["padding_mask"] = padding_mask
        inputs = {k: v for k, v in inputs.items() if k in cfg.model_inputs}
        targets = {k: batch[k] for k in ("label", "target", "valence", "arousal", "weight", "index")}
        return inputs, targets


# === helpers ===


def pd_float(rows, column):
    if column not in rows:
        return np.full(len(rows), np.nan, np.float32)
    import pandas as pd

    return pd.to_numeric(rows[column], errors="coerce").to_numpy(np.float32)


def _crop(audio, max_samples, training, seed):
    """Random (training) or centre crop to `max_samples`; shorter clips are kept whole."""
    n = tf.shape(audio)[0]
    excess = tf.maximum(n - max_samples, 0)
    if training:
        start = tf.random.stateless_uniform([], seed=seed, minval=0, maxval=excess + 1, dtype=tf.int32)
    else:
        start = excess // 2
    return audio[start : start + max_samples]


def _example_seed(base, epoch, index):
    """Stateless int32 [2] seed of one example in one epoch."""
    pair = tf.stack([tf.cast(base, tf.int32), tf.cast(epoch, tf.int32)])
    return tf.random.experimental.stateless_fold_in(pair, tf.cast(index, tf.int32))


def _batch_seeds(base, epoch, index):
    """[B, 2] per-example seeds (an example's augmentation does not depend on its batch)."""
    return tf.map_fn(lambda i: _example_seed(base, epoch, i), tf.cast(index, tf.int32),
                     fn_output_signature=tf.TensorSpec([2], tf.int32))


def _reorder(ds, order):
    """Yields the elements of a (cached) dataset in `order` without re-decoding them.

    The cached dataset is materialised as a tensor list once per epoch; this is the in-memory
    path only (`--cache_audio`), meant for corpora that fit in memory.
    """
    elements = list(ds.as_numpy_iterator())
    picked = [elements[i] for i in order]
    keys = picked[0].keys() if picked else []
    signature = ds.element_spec

    def gen():
        yield from picked

    return tf.data.Dataset.from_generator(gen, output_signature=signature) if keys else ds
