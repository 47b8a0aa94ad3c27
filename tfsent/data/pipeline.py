"""The tf.data input pipeline: manifest rows → batches of model inputs (Contract 2 in ARCHITECTURE.md).

Per example: read + decode the audio file, downmix, resample to the model rate (all in TensorFlow;
soundfile only for formats `tf.audio.decode_wav` cannot read), crop (random when training, centre
otherwise) or keep up to `max_seconds`, augment the waveform. Per batch: pad, compute the features
(`AudioFrontend`: log-Mel / MFCC with frame masks), SpecAugment, tokenize the text in-graph, augment the
tokens. Everything that depends on randomness is derived from `(seed, epoch, example index)` with
stateless ops, so a fixed seed gives the same batches in the same order, a resumed run can skip the
batches it already saw, and different seeds differ.

With `cache_audio` (memory) or `snapshot_dir` (disk), reading, decoding and resampling happen once
per split: the split is decoded in manifest order into a store (`tfsent.data.decoded`), and each
epoch looks its rows up by index, then crops, augments and computes features as without a store. The
batches are the same either way (same order, same augmentation).

Unreadable audio met on the way is skipped: its id is logged, and the trainer compares the number of
examples each epoch yielded with the split's size and reports the difference.

Example:

```python
pipeline = InputPipeline(df, sidecar, config, text_preprocessor=pre)
for inputs, targets in pipeline.dataset("train", training=True, epoch=0):
    ...
clips = pipeline.augmented_waveforms("train", count=4)   # [4, S] float32, for TensorBoard
```
"""

from __future__ import annotations

import dataclasses
import os
import sys

import numpy as np
import tensorflow as tf

from tfsent.audio import augment as audio_augment
from tfsent.audio import io as audio_io
from tfsent.audio.augment import example_seed
from tfsent.audio.features import AudioFrontend, FeatureConfig
from tfsent.core import inputs as names
from tfsent.core.errors import UsageError
from tfsent.corpus.manifest import confined_paths
from tfsent.data import speaker_norm
from tfsent.data.decoded import MemoryStore, SnapshotStore, pcm16_grid
from tfsent.data.epoch_stream import EpochStream

# Where time stretch and pitch shift run (`PipelineConfig.augment_domain`).
AUGMENT_DOMAINS = ("auto", "feature", "waveform")
# What `InputPipeline.dataset(..., remove_modality=...)` can remove from a multimodal model's input.
MODALITIES = ("audio", "text")


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
        robust_augment: `tfsent.data.corruptions.RobustAugment` (noise, babble, telephone, reverb,
            transcript errors on training examples), or None.
        augment_domain: where `audio_augment`'s time stretch and pitch shift run: `"feature"` on the
            STFT the feature layer computes (`tfsent.audio.spectral_warp`; no phase vocoder),
            `"waveform"` on the waveform (phase vocoder + resampling), `"auto"` (default): feature
            for spectral features (log-Mel, MFCC), waveform for waveform models. The draws (which
            examples, which rate and shift) are the same in both domains.
        wav_only: decode in pure TensorFlow only (no soundfile `numpy_function` in the graph), as
            tf.data service workers need (`tfsent.data.service`): a split with other formats is
            refused up front unless `snapshot_dir` decodes it first.
        cache_audio: decode and resample each split once and keep the clips (int16) in memory across
            epochs (`tfsent.data.decoded.MemoryStore`).
        snapshot_dir: decode and resample each split once into `snapshot_dir/SPLIT/` on disk (int16), reused
            by later epochs, pipelines and runs (`tfsent.data.decoded.SnapshotStore`); memory stays
            flat in the corpus size. Takes precedence over `cache_audio`.
        balanced_sampling: draw training examples with equal probability per class.
        class_weights: per-class loss weights (multiplied into each example's `weight`), or None.
        bucket: bucket training batches by clip length so padding stays small.
        speaker_norm: standardise each row's spectral features per bin with the statistics of its
            speaker's other rows in the same split, mapped back onto the split's per-bin mean and std
            (`tfsent.data.speaker_norm`; the `speaker` column).

    Example:

    >>> PipelineConfig(FeatureConfig(kind="log_mel"), batch_size=16,
    ...                model_inputs=("audio_features", "audio_mask"), cache_audio=True)  # doctest: +SKIP
    """

    feature: FeatureConfig
    batch_size: int = 32
    max_seconds: float = 4.0
    model_inputs: tuple = ()
    seed: int = 42
    audio_augment: object = None
    text_augment: object = None
    robust_augment: object = None
    augment_domain: str = "auto"
    wav_only: bool = False
    cache_audio: bool = False
    snapshot_dir: str | None = None
    balanced_sampling: bool = False
    class_weights: tuple | None = None
    bucket: bool = True
    speaker_norm: bool = False

    @property
    def max_samples(self) -> int:
        return int(round(self.max_seconds * self.feature.sample_rate))

    @property
    def feature_domain_augment(self) -> bool:
        """Whether time stretch and pitch shift are applied to the spectrogram (see `augment_domain`)."""
        if self.augment_domain not in AUGMENT_DOMAINS:
            raise UsageError(f"augment_domain must be one of {AUGMENT_DOMAINS}, got {self.augment_domain!r}")
        spectral = self.feature.kind != "waveform"
        if self.augment_domain == "feature" and not spectral:
            raise UsageError("augment_domain='feature' needs spectral features (log_mel, log_mel_delta, mfcc); "
                             "this model takes the waveform")
        aug = self.audio_augment
        on = aug is not None and aug.stretch_pitch_enabled
        return bool(on and spectral and self.augment_domain != "waveform")

    @property
    def needs_audio(self) -> bool:
        return names.takes_audio(self.model_inputs)

    @property
    def needs_text(self) -> bool:
        return names.takes_text(self.model_inputs)


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

    Example:

    >>> pipeline = InputPipeline(frame, sidecar, PipelineConfig(FeatureConfig(), model_inputs=(
    ...     "audio_features", "audio_mask")))  # doctest: +SKIP
    >>> for inputs, targets in pipeline.dataset("train", training=True, epoch=3):  # doctest: +SKIP
    ...     logits = model(inputs)
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
        config.feature_domain_augment  # noqa: B018 -- checks augment_domain against the features now
        if config.speaker_norm and config.needs_audio and self._frontend is None:
            raise UsageError("speaker_norm standardises spectral features; this model takes the waveform")
        self._speaker_stats = {}  # split -> per-row (mean, std) of `speaker_norm`
        self._stores = {}  # split -> MemoryStore / SnapshotStore of its decoded clips
        self._epoch_streams = {}  # split -> EpochStream of its training epochs
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
            raise UsageError(
                f"split {split!r} is empty in the manifest (splits present: "
                f"{sorted(self.frame['split'].astype(str).unique())})"
            )
        return rows

    def _tables(self, rows):
        class_index = {c: i for i, c in enumerate(self.classes)}
        unknown = sorted(set(rows["emotion"].astype(str)) - set(class_index))
        if unknown:
            raise UsageError(f"manifest labels {unknown} are not in the sidecar's classes {self.classes}")
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
        paths = [os.path.join(self.data_dir, p) for p in confined_paths(rows, self.data_dir)]
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

    def dataset(self, split: str, *, training: bool, epoch: int = 0, skip_batches: int = 0,
                remove_modality: str | None = None, corruption=None):
        """Batches for one epoch of `split`.

        Training datasets are shuffled with a permutation drawn from `(seed, epoch)`; evaluation
        datasets keep manifest order and are never bucketed, so predictions line up with rows.
        `skip_batches` drops the first batches (a resumed run continues mid-epoch).

        `remove_modality` (`"audio"` or `"text"`, evaluation of a multimodal model only) feeds every
        row without that modality exactly as the exported SavedModel does for a zero-length clip or
        an empty text (`MISSING_MODALITY_NOTE` in `tfsent.export.saved_model`): a one-sample silent
        clip of length 0 with an all-zero `audio_mask` / `waveform_mask`, or the tokens of `""` with
        an all-zero `padding_mask`. The rows (and unreadable ones skipped) are the same as without it.

        `corruption` (a `tfsent.data.corruptions.Corruption`, evaluation) corrupts every example's
        waveform and/or transcript after the crop, seeded per example (robustness conditions).

        With `cache_audio`, the split's clips are decoded into memory while the first epoch runs;
        with `snapshot_dir`, the first call for a split decodes it into the snapshot (or opens the
        one a previous run left) before returning.
        """
        self._check_removal(remove_modality, training)
        tables = self._split_tables(split)
        if training:
            order = self._epoch_order(tables["label"], epoch)
        else:
            order = np.arange(len(tables["index"]))
        return self._build(split, tables, order, training, epoch, skip_batches, remove_modality, corruption)

    def epoch_stream(self, split: str):
        """`split`'s training epochs from one long-lived iterator (`tfsent.data.epoch_stream`).

        `epoch_stream(split).dataset(epoch, skip_batches)` gives the batches of
        `dataset(split, training=True, epoch=epoch, skip_batches=skip_batches)` without building and
        instantiating a pipeline per epoch, and the next epoch is prepared while the caller
        validates. Local pipelines only (it feeds the epoch orders from Python).
        """
        if split not in self._epoch_streams:
            tables = self._split_tables(split)

            def epoch_batches(epoch, order):
                return self._batches(split, tables, order, True, epoch)

            def finish(batch, epoch):
                return self._per_batch_fn(batch, True, epoch, None)

            self._epoch_streams[split] = EpochStream(
                lambda epoch: self._epoch_order(tables["label"], epoch), epoch_batches, finish, _options())
        return self._epoch_streams[split]

    def _split_tables(self, split):
        rows = self.split_frame(split)
        tables = self._tables(rows)
        if self.config.speaker_norm and self._frontend is not None and self.config.needs_audio:
            tables["speaker_scale"], tables["speaker_shift"] = self._speaker_norm_stats(split, rows, tables)
        return tables

    def _batches(self, split, tables, order, training, epoch, corruption=None):
        """Rows `order` of the split, loaded, augmented per example and batched (before `_per_batch`)."""
        ds = self._examples(split, tables, order)
        ds = ds.map(
            lambda ex: self._per_example_fn(ex, training, epoch, corruption),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        return self._batch(ds, training)

    def _build(self, split, tables, order, training, epoch, skip_batches=0, remove_modality=None, corruption=None):
        epoch_t = tf.constant(epoch, tf.int32)
        ds = self._batches(split, tables, order, training, epoch_t, corruption)
        ds = ds.map(
            lambda ex: self._per_batch_fn(ex, training, epoch_t, remove_modality),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        if skip_batches:
            ds = ds.skip(skip_batches)
        return ds.with_options(_options()).prefetch(tf.data.AUTOTUNE)

    def _check_removal(self, remove_modality, training):
        if remove_modality is None:
            return
        if remove_modality not in MODALITIES:
            raise ValueError(f"remove_modality must be one of {MODALITIES} or None; got {remove_modality!r}")
        if training or not (self.config.needs_audio and self.config.needs_text):
            raise ValueError("remove_modality is for evaluating a model that takes audio and text "
                             f"(inputs {self.config.model_inputs}, training={training})")

    def _speaker_norm_stats(self, split, rows, tables):
        """Per-row `(scale, shift)` of `tfsent.data.speaker_norm.speaker_affine`, from one clean pass over
        the split (centre crop, no augmentation), computed once per split."""
        if split not in self._speaker_stats:
            n = len(rows)
            sums = squares = None
            frames = np.zeros(n)
            for inputs, targets in self._build(split, tables, np.arange(n), training=False, epoch=0):
                feats = inputs[names.AUDIO_FEATURES].numpy().astype(np.float64)
                mask = inputs[names.AUDIO_MASK].numpy().astype(np.float64)
                mask = mask.reshape(mask.shape + (1,) * (feats.ndim - 2))
                if sums is None:
                    sums, squares = np.zeros((n,) + feats.shape[2:]), np.zeros((n,) + feats.shape[2:])
                index = targets["index"].numpy()
                sums[index] = (feats * mask).sum(1)
                squares[index] = (np.square(feats) * mask).sum(1)
                frames[index] = mask.reshape(mask.shape[:2]).sum(1)
            speakers = rows["speaker"].tolist() if "speaker" in rows else [None] * n
            self._speaker_stats[split] = speaker_norm.speaker_affine(speakers, sums, squares, frames)
        return self._speaker_stats[split]

    def augmented_waveforms(self, split: str, count: int, epoch: int = 0):
        """The first `count` readable clips of `split` as training would see them, for TensorBoard.

        Cropped and waveform-augmented exactly as in `dataset(split, training=True, epoch=epoch)`
        (same seeds), zero-padded to the longest and peak-normalised to [-1, 1]: float32
        `[k, S]` with `k <= count` (unreadable clips among the first `count` rows are left out), or
        None when the model takes no audio or none of them can be read.
        """
        if not self.config.needs_audio or count <= 0:
            return None
        rows = self.split_frame(split).iloc[:count]
        tables = self._tables(rows)
        ds = tf.data.Dataset.from_tensor_slices(tables).map(self._load_fn).filter(lambda ex: ex["ok"])
        epoch_t = tf.constant(epoch, tf.int32)
        ds = ds.map(lambda ex: self._per_example_fn(ex, True, epoch_t, waveform_domain=True)).padded_batch(count)
        for batch in ds.take(1):
            audio = batch["audio"]
            peak = tf.maximum(tf.reduce_max(tf.abs(audio), axis=1, keepdims=True), 1e-6)
            return audio / peak
        return None

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

    def _examples(self, split, tables, order):
        """Rows `order` of the split with their decoded `audio` (when the model takes audio) and `ok`;
        unreadable rows dropped."""
        if isinstance(order, np.ndarray):
            ds = tf.data.Dataset.from_tensor_slices({k: v[order] for k, v in tables.items()})
        else:  # a tensor (EpochStream)
            ds = tf.data.Dataset.from_tensor_slices({k: tf.gather(v, order) for k, v in tables.items()})
        if not self.config.needs_audio:
            return ds.map(self._load_fn)
        store = self._store(split, tables)
        if store is not None:
            return store.attach(ds)
        if self.config.wav_only:
            _check_wav_only(split, tables["path"])
        ds = ds.map(self._load_fn, num_parallel_calls=tf.data.AUTOTUNE)
        return ds.filter(lambda ex: ex["ok"])

    def _store(self, split, tables):
        """The split's decoded-audio store (built on first use), or None without caching."""
        cfg = self.config
        if not (cfg.cache_audio or cfg.snapshot_dir):
            return None
        if split not in self._stores:
            with tf.init_scope():  # eager, also when first asked for inside a dataset function (EpochStream)
                self._stores[split] = self._new_store(split, tables)
        return self._stores[split]

    def _new_store(self, split, tables):
        cfg = self.config

        def decode(ds):
            return ds.map(self._load_fn, num_parallel_calls=tf.data.AUTOTUNE)

        if cfg.snapshot_dir:
            return SnapshotStore.open_or_build(
                os.path.join(cfg.snapshot_dir, str(split)), tables["path"], tables["utt_id"], decode,
                cfg.feature.sample_rate,
            )
        rows = {k: tables[k] for k in ("index", "path", "utt_id")}
        return MemoryStore(decode(tf.data.Dataset.from_tensor_slices(rows)))

    # --- per example ----------------------------------------------------------------------------

    def _load(self, ex):
        out = dict(ex)
        if self.config.needs_audio:
            audio, ok = audio_io.load_audio_checked(ex["path"], self.config.feature.sample_rate,
                                                    soundfile_fallback=not self.config.wav_only)
            # Too-short and NaN/Inf clips are skipped like unreadable ones (named, and counted by the
            # trainer / evaluation), never fed: one NaN sample makes every gradient non-finite.
            min_samples = int(names.MIN_AUDIO_SECONDS * self.config.feature.sample_rate)
            ok = tf.logical_and(ok, tf.size(audio) >= min_samples)
            ok = tf.logical_and(ok, tf.reduce_all(tf.math.is_finite(audio)))

            def report():
                tf.print("tfsent: skipping unreadable, too short (<", names.MIN_AUDIO_SECONDS, "s) or non-finite "
                         "audio", ex["utt_id"], ex["path"], output_stream=sys.stderr)
                return tf.constant(False)

            ok = tf.cond(ok, lambda: tf.constant(True), report)
            out["audio"] = pcm16_grid(audio)  # what the int16 stores keep: cached == uncached batches
            out["ok"] = ok
        else:
            out["ok"] = tf.constant(True)
        return out

    def _per_example(self, ex, training, epoch, corruption=None, waveform_domain=False):
        cfg = self.config
        out = {k: v for k, v in ex.items() if k not in ("path", "ok", "utt_id")}
        seed = example_seed(cfg.seed, epoch, ex["index"])
        if cfg.needs_audio:
            audio = ex["audio"]
            audio = _crop(audio, cfg.max_samples, training, seed)
            length = tf.shape(audio)[0]
            if training and cfg.audio_augment is not None:
                spectral = cfg.feature_domain_augment and not waveform_domain
                audio, length = audio_augment.augment_waveform(
                    audio, length, seed, cfg.audio_augment, class_id=ex["label"], stretch_pitch=not spectral
                )
                if spectral:  # applied to the batch's spectrogram in `_per_batch`
                    out["stretch"], out["semitones"] = audio_augment.stretch_pitch_draws(
                        seed, cfg.audio_augment, class_id=ex["label"])
                audio = audio[: cfg.max_samples]
                length = tf.minimum(length, cfg.max_samples)
            out["audio"] = audio
            out["audio_length"] = tf.cast(length, tf.int32)
        else:
            out.pop("audio", None)
        transform = corruption if corruption is not None else (cfg.robust_augment if training else None)
        if transform is not None:  # tfsent.data.corruptions: robustness conditions, robust training
            out = transform(out, seed)
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

    def _per_batch(self, batch, training, epoch, remove_modality=None):
        cfg = self.config
        inputs = {}
        if cfg.needs_audio:
            audio = batch["audio"]
            lengths = batch["audio_length"]
            if remove_modality == "audio":  # the exported model's zero-length clip: one silent sample
                lengths = tf.zeros_like(lengths)
                audio = tf.zeros([tf.shape(audio)[0], 1], audio.dtype)
            if self._frontend is not None:
                if "stretch" in batch:  # feature-domain time stretch and pitch shift (training)
                    features, frame_mask = self._frontend.features(
                        audio, lengths, batch["stretch"], batch["semitones"], max_samples=cfg.max_samples)
                else:
                    features, frame_mask = self._frontend(audio, lengths)
                if remove_modality == "audio":  # a zero-length clip still gives one (silent) frame
                    frame_mask = tf.zeros_like(frame_mask)
                if "speaker_scale" in batch:  # speaker_norm
                    features = _speaker_affine(features, frame_mask, batch["speaker_scale"], batch["speaker_shift"])
                aug = cfg.audio_augment
                if training and aug is not None and (aug.freq_mask_prob > 0 or aug.time_mask_prob > 0):
                    seeds = _batch_seeds(cfg.seed + 104729, epoch, batch["index"])
                    features = audio_augment.spec_augment(
                        features, frame_mask, seeds, aug, class_id=batch["label"]
                    )
                inputs[names.AUDIO_FEATURES] = features
                inputs[names.AUDIO_MASK] = tf.cast(frame_mask, tf.int32)
            else:
                inputs[names.WAVEFORM] = audio
                inputs[names.WAVEFORM_MASK] = tf.cast(
                    tf.sequence_mask(lengths, tf.shape(audio)[1]), tf.int32
                )
        if cfg.needs_text:
            text = batch["text"]
            if remove_modality == "text":  # the exported model's empty text: fully masked tokens of ""
                text = tf.fill(tf.shape(text), "")
            tokens = self.text_preprocessor(text)
            token_ids = tf.cast(tokens["token_ids"], tf.int32)
            padding_mask = tf.cast(tokens["padding_mask"], tf.int32)
            if remove_modality == "text":
                padding_mask = tf.zeros_like(padding_mask)
            if training and cfg.text_augment is not None:
                from tfsent.text import augment as text_augment

                # One seed per batch: batches are deterministic given (seed, epoch), and so is this.
                seed = example_seed(cfg.seed + 15485863, epoch, batch["index"][0])
                token_ids, padding_mask = text_augment.augment_tokens(
                    token_ids, padding_mask, seed, cfg.text_augment, class_id=batch["label"]
                )
            inputs[names.TOKEN_IDS] = token_ids
            inputs[names.PADDING_MASK] = padding_mask
        inputs = {k: v for k, v in inputs.items() if k in cfg.model_inputs}
        targets = {k: batch[k] for k in ("label", "target", "valence", "arousal", "weight", "index")}
        return inputs, targets


# === helpers ===


def _options():
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    # Consecutive per-example maps and filters run as one function (the store lookup, the `ok`
    # filter and the crop / augmentation): less per-element overhead, same ops.
    options.experimental_optimization.map_fusion = True
    options.experimental_optimization.map_and_filter_fusion = True
    options.experimental_optimization.filter_fusion = True
    return options


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


def _speaker_affine(features, frame_mask, scale, shift):
    """`features * scale + shift` on real frames (`scale`, `shift`: `[B, ...]` per row), padding left as is."""
    scale, shift = tf.expand_dims(scale, 1), tf.expand_dims(shift, 1)
    mask = tf.cast(frame_mask, tf.bool)
    for _ in range(features.shape.rank - 2):
        mask = tf.expand_dims(mask, -1)
    return tf.where(mask, features * scale + shift, features)


def _check_wav_only(split, paths):
    others = [p for p in paths if not str(p).lower().endswith(".wav")]
    if others:
        raise UsageError(
            f"split {split!r} has {len(others)} audio file(s) that are not WAV (e.g. {others[0]}); pure-TensorFlow "
            "decoding (tf.data service) reads WAV only: convert them, or set --snapshot_dir (decoded once "
            "here, read by the workers)")


def _batch_seeds(base, epoch, index):
    """[B, 2] per-example seeds (an example's augmentation does not depend on its batch)."""
    return tf.map_fn(lambda i: example_seed(base, epoch, i), tf.cast(index, tf.int32),
                     fn_output_signature=tf.TensorSpec([2], tf.int32))
