"""Per-example corruptions the input pipeline applies: fixed conditions for robustness evaluation
(`Corruption`) and random ones for robust training (`RobustAugment`).

Both are callables `(example, seed) -> example` over one decoded example of `InputPipeline` (its
`audio` `[S]`, `audio_length`, `text` scalar string, `index`), built from the pure-TF ops of
`tfsent.audio.corrupt` and `tfsent.text.corrupt`, so they run inside `Dataset.map` and on a tf.data
service worker; banks (babble clips, impulse responses, other transcripts) are NumPy arrays captured
as constants. `InputPipeline.dataset(..., corruption=c)` applies `c` after the crop; a
`PipelineConfig.robust_augment` is applied to training examples.

Example:

```python
noisy = Corruption("noise_10db", audio=lambda x, s: corrupt.white_noise(x, s, 10.0), seed=0)
ds = pipeline.dataset("test", training=False, corruption=noisy)
```
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf

from tfsent.audio import corrupt as audio_corrupt
from tfsent.audio import io as audio_io
from tfsent.corpus.manifest import confined_paths
from tfsent.text import corrupt as text_corrupt


def _fold(seed, slot):
    return tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int32), slot)


def _with_audio(example, audio):
    out = dict(example)
    out["audio"] = audio
    out["audio_length"] = tf.shape(audio)[0]
    return out


class Corruption:
    """One named, seeded corruption of an example's waveform and/or transcript.

    Args:
        name: the condition's name (reports).
        audio: `fn(waveform [S], seed [2]) -> waveform [S]` in TF ops, or None.
        text: `fn(text scalar string, seed [2], index scalar int32) -> text`, or None (`index`: the
            row's position in the split, e.g. for another row's transcript).
        seed: folded into the pipeline's per-example seed, so each condition draws its own noise.

    Example:

    ```python
    Corruption("gain_-20db", audio=lambda x, s: corrupt.gain(x, -20.0))
    ```
    """

    def __init__(self, name, audio=None, text=None, seed=0):
        self.name, self.audio, self.text, self.seed = name, audio, text, int(seed)

    def __repr__(self):
        return f"Corruption({self.name!r}, seed={self.seed})"

    def __call__(self, example, seed):
        seed = _fold(seed, self.seed)
        out = dict(example)
        if self.audio is not None and "audio" in out:
            out = _with_audio(out, self.audio(out["audio"], _fold(seed, 1)))
        if self.text is not None:
            out["text"] = self.text(out["text"], _fold(seed, 2), out["index"])
        return out


def mismatched_text(texts, seed):
    """`fn(text, seed, index)` giving row `index` the transcript of another row of `texts` (the split's
    transcripts in order): a random cyclic derangement, drawn once from `seed`."""
    texts = np.asarray([str(t) for t in texts], dtype=object)
    order = np.random.default_rng(seed).permutation(len(texts))
    other = np.empty(len(texts), dtype=object)
    other[order] = texts[np.roll(order, -1)]
    table = tf.constant(list(other) if len(other) else [""], tf.string)
    return lambda text, seed, index: tf.gather(table, index)


def corpus_clips(frame, sidecar, split, count, seed, sample_rate, max_samples=None):
    """Up to `count` decoded clips (NumPy `[S]` float32 at `sample_rate`) of rows of `split` drawn
    from `seed` (unreadable ones skipped): material for `tfsent.audio.corrupt.babble_bank`."""
    rows = frame[frame["split"].astype(str) == str(split)].reset_index(drop=True)
    data_dir = sidecar.get("data_dir", "")
    paths = [os.path.join(data_dir, p) for p in confined_paths(rows, data_dir)]
    clips = []
    for i in np.random.default_rng(seed).permutation(len(paths)):
        audio, ok = audio_io.load_audio_checked(tf.constant(paths[i]), sample_rate)
        if bool(ok) and int(tf.size(audio)) > 0:
            clips.append(audio.numpy()[:max_samples])
        if len(clips) >= count:
            break
    return clips


@dataclasses.dataclass
class RobustAugmentConfig:
    """Training-time corruptions (`bin/train --robust_*`), each applied with its own probability.

    Args:
        noise_prob, noise_snr_db: white noise at an SNR drawn from `(lo, hi)` dB.
        babble_prob, babble_snr_db: babble (other training utterances) at an SNR from `(lo, hi)`.
        telephone_prob: the telephone channel (`tfsent.audio.corrupt.telephone`).
        reverb_prob, reverb_rt60: convolution with an impulse response from a bank simulated once
            (`reverb_rt60` RT60s, `reverb_irs` responses each).
        text_cer_prob, text_cer: Hangul jamo errors at a CER drawn from `(lo, hi)`.
        sample_rate: waveform rate.

    Example:

    ```python
    RobustAugmentConfig(noise_prob=0.3, telephone_prob=0.2, text_cer_prob=0.3)
    ```
    """

    noise_prob: float = 0.0
    noise_snr_db: tuple = (0.0, 20.0)
    babble_prob: float = 0.0
    babble_snr_db: tuple = (0.0, 20.0)
    telephone_prob: float = 0.0
    reverb_prob: float = 0.0
    reverb_rt60: tuple = (0.3, 0.8)
    reverb_irs: int = 4
    text_cer_prob: float = 0.0
    text_cer: tuple = (0.0, 0.3)
    sample_rate: int = 16000

    def __post_init__(self):
        for f in dataclasses.fields(self):
            if f.name.endswith("_prob") and not 0.0 <= getattr(self, f.name) <= 1.0:
                raise ValueError(f"RobustAugmentConfig.{f.name} must be in [0, 1], got {getattr(self, f.name)}")
        for name in ("noise_snr_db", "babble_snr_db", "text_cer"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"RobustAugmentConfig.{name} needs lo <= hi, got {(lo, hi)}")

    @property
    def enabled(self):
        return any(getattr(self, f.name) > 0 for f in dataclasses.fields(self) if f.name.endswith("_prob"))


class RobustAugment:
    """The training-time corruption of `RobustAugmentConfig`, with its banks built once.

    Args:
        config: the `RobustAugmentConfig`.
        babble: `[N, L]` babble bank (`tfsent.audio.corrupt.babble_bank`), needed when `babble_prob > 0`.
        irs: `[K, L]` impulse responses, needed when `reverb_prob > 0`.

    Example:

    ```python
    augment = RobustAugment.build(config, frame, sidecar, seed=42)
    PipelineConfig(..., robust_augment=augment)
    ```
    """

    def __init__(self, config, babble=None, irs=None):
        if config.babble_prob > 0 and babble is None:
            raise ValueError("babble_prob > 0 needs a babble bank")
        if config.reverb_prob > 0 and irs is None:
            raise ValueError("reverb_prob > 0 needs impulse responses")
        self.config, self.babble, self.irs = config, babble, irs

    @classmethod
    def build(cls, config, frame, sidecar, seed, split="train", max_samples=64000):
        """Builds the banks the config needs: babble from the `split`'s utterances, impulse
        responses of `config.reverb_rt60`."""
        babble = irs = None
        if config.babble_prob > 0:
            clips = corpus_clips(frame, sidecar, split, 32, seed, config.sample_rate, max_samples)
            babble = audio_corrupt.babble_bank(clips, seed, count=16, length=max_samples)
        if config.reverb_prob > 0:
            irs = np.concatenate(_pad_banks([audio_corrupt.room_impulse_responses(
                rt60, config.reverb_irs, seed, config.sample_rate) for rt60 in config.reverb_rt60]))
        return cls(config, babble, irs)

    def __call__(self, example, seed):
        cfg = self.config
        out = dict(example)
        coins = tf.random.stateless_uniform([8], _fold(seed, 7001))
        draws = tf.random.stateless_uniform([8], _fold(seed, 7002))

        def between(k, lo_hi):
            return lo_hi[0] + draws[k] * (lo_hi[1] - lo_hi[0])

        if "audio" in out:
            x = out["audio"]
            steps = [
                (cfg.reverb_prob, lambda v: audio_corrupt.reverb(v, _fold(seed, 7010), self.irs)),
                (cfg.telephone_prob, lambda v: audio_corrupt.telephone(v, cfg.sample_rate)),
                (cfg.babble_prob, lambda v: audio_corrupt.babble(
                    v, _fold(seed, 7011), self.babble, between(2, cfg.babble_snr_db))),
                (cfg.noise_prob, lambda v: audio_corrupt.white_noise(
                    v, _fold(seed, 7012), between(3, cfg.noise_snr_db))),
            ]
            for k, (prob, fn) in enumerate(steps):
                if prob > 0:
                    x = tf.cond(coins[k] < prob, lambda fn=fn, x=x: fn(x), lambda x=x: tf.identity(x))
            out = _with_audio(out, x)
        if cfg.text_cer_prob > 0:
            out["text"] = tf.cond(
                coins[5] < cfg.text_cer_prob,
                lambda: text_corrupt.corrupt_hangul(out["text"], _fold(seed, 7013), between(5, cfg.text_cer)),
                lambda: tf.identity(out["text"]))
        return out


def _pad_banks(banks):
    length = max(b.shape[1] for b in banks)
    return [np.pad(b, [(0, 0), (0, length - b.shape[1])]) for b in banks]
