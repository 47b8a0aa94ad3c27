"""The `timeline` and `timeline_wav` signatures of an exported audio model: one long recording in,
one prediction per window out, with speech / non-speech from the in-graph energy VAD
(`tfsent.audio.vad`).

- `timeline(audio float32 [S])`: one recording at the model rate (the whole tensor is the recording).
- `timeline_wav(wav string [])`: one whole WAV file (any rate, mono or stereo).

Windows are the export's scoring window, every scoring hop, all of full length: starts `0, hop, 2*hop,
...` while a window fits, plus one window ending at the last sample when the grid leaves a tail
(`window_starts`). A recording shorter than one window is rejected (`InvalidArgument`). Multimodal
models are scored on the audio-only path (empty text): a transcript per window is a client's business
(`bin/predict --timeline --transcript=...`). Windows go 16 at a time, as rows of exactly one window,
through serving_default's own function in a `tf.while_loop`: an hour of audio is not one huge batch,
the model is in the graph once, and each window is scored exactly as that clip alone would be.

Outputs: `start`, `end` float32 [W] (seconds), `speech` bool [W] (at least `min_speech_fraction` of
the window is speech), `speech_seconds` float32 [W] (speech time the window owns: each speech
sample belongs to the window whose centre is nearest; they add up to the recording's speech time),
`speech_regions` float32 [R, 2] (the VAD's runs, seconds), `duration` float32 [], and the model's
per-window outputs as in `serving_default` (`probabilities` [W, C], `label` [W], `classes` [C],
`logits` [W, C] raw, for classifiers; `valence` / `arousal` [W] for regressors).

Example:

```python
loaded = tf.saved_model.load("exports/conv1d_mel/1")
out = loaded.signatures["timeline_wav"](wav=tf.io.read_file("call.wav"))
out["start"], out["label"], out["speech"]
```
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfsent.audio import vad

BATCH = 16  # windows per model call (bin/predict --timeline uses the same batches)
_OUTPUT_KEYS = ("probabilities", "logits", "valence", "arousal")


def window_starts(num_samples, window, hop):
    """Start samples (int32 [W]) of the timeline windows of a recording of `num_samples` >= `window`."""
    num_samples = tf.cast(num_samples, tf.int32)
    full = 1 + (num_samples - window) // hop
    starts = tf.range(full) * hop
    tail = (full - 1) * hop + window < num_samples
    return tf.cond(tail, lambda: tf.concat([starts, [num_samples - window]], 0), lambda: starts)


def window_starts_np(num_samples, window, hop):
    """`window_starts` in numpy (for clients that stream a file)."""
    full = 1 + (int(num_samples) - window) // hop
    starts = list(range(0, full * hop, hop))
    if (full - 1) * hop + window < num_samples:
        starts.append(int(num_samples) - window)
    return np.asarray(starts, np.int64)


def _score_windows(module, default, audio, starts):
    """`default`'s outputs (serving_default's function) for each window `audio[s:s+window]`, `BATCH`
    windows (rows) per call; one row of exactly one window is scored as that window alone."""
    window = module.window
    count = tf.size(starts)
    batches = (count + BATCH - 1) // BATCH
    specs = {k: v for k, v in _default_outputs(default).items() if k in _OUTPUT_KEYS}
    arrays = {k: tf.TensorArray(tf.float32, size=batches, infer_shape=False, element_shape=spec.shape)
              for k, spec in specs.items()}

    def body(i, arrays):
        batch_starts = starts[i * BATCH:(i + 1) * BATCH]
        size = tf.size(batch_starts)
        args = [tf.gather(audio, batch_starts[:, None] + tf.range(window)[None, :]), tf.fill([size], window)]
        if module.takes_text:  # audio-only path: an empty, fully masked text
            args.append(tf.fill([size], ""))
        outputs = default(*args)
        return i + 1, {k: arrays[k].write(i, outputs[k]) for k in arrays}

    _, arrays = tf.while_loop(lambda i, _: i < batches, body, (tf.constant(0), arrays))
    return {k: v.concat() for k, v in arrays.items()}


def _default_outputs(default):
    """{output name: TensorSpec} of serving_default's function."""
    return default.get_concrete_function().structured_outputs


def _check_recording(module, audio):
    audio = tf.ensure_shape(audio, [None], name="timeline_audio_must_be_one_recording")
    samples = tf.size(audio)
    checks = [
        tf.debugging.Assert(tf.reduce_all(tf.math.is_finite(audio)), ["audio contains NaN or Inf samples"]),
        tf.debugging.Assert(
            samples >= module.window,
            ["the recording is shorter than the timeline window:", samples, "samples <", module.window,
             f"samples ({module.window / module.sample_rate:g} s at {module.sample_rate} Hz)"]),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(audio)


def timeline_outputs(module, default, audio, config=None):
    """The `timeline` signature's outputs for one recording `audio` [S] at the model rate; `default` is
    the module's serving_default `tf.function` (the windows go through it)."""
    config = config or vad.VadConfig(sample_rate=module.sample_rate)
    audio = _check_recording(module, audio)
    samples = tf.size(audio)
    mask = vad.speech_frames(vad.frame_energies_db(audio, samples, config), config)
    starts = window_starts(samples, module.window, module.hop)
    speech, owned = vad.window_speech(mask, starts, module.window, samples, config)
    result = _score_windows(module, default, audio, starts)
    if "probabilities" in result:
        result["label"] = tf.gather(module.labels, tf.argmax(result["probabilities"], axis=-1, output_type=tf.int32))
        result["classes"] = module.labels
    rate = float(module.sample_rate)
    start = tf.cast(starts, tf.float32) / rate
    result.update({
        "start": start, "end": start + module.window / rate, "speech": speech, "speech_seconds": owned,
        "speech_regions": vad.speech_regions(mask, samples, config),
        "duration": tf.cast(samples, tf.float32) / rate,
    })
    return result


def timeline_signatures(module, default, decode):
    """{"timeline", "timeline_wav"} concrete functions of an audio `ServingModule`.

    `default` is its serving_default `tf.function` (called per batch of windows) and `decode` its
    `decode_wavs` `tf.function` (WAV strings [B] → audio [B, S], lengths [B]): both are called, not
    traced again, so the model and the WAV decoder are in the SavedModel once.
    """
    timeline = tf.function(lambda audio: timeline_outputs(module, default, audio),
                           input_signature=[tf.TensorSpec([None], tf.float32, name="audio")])

    def from_wav(wav):
        audio, length = decode(tf.reshape(wav, [1]))
        return timeline(audio[0, :length[0]])

    timeline_wav = tf.function(from_wav, input_signature=[tf.TensorSpec([], tf.string, name="wav")])
    return {"timeline": timeline.get_concrete_function(), "timeline_wav": timeline_wav.get_concrete_function()}


def timeline_description(module):
    """The model card's entry for the timeline signatures."""
    outputs = {"start": "float32 [windows]: seconds", "end": "float32 [windows]: seconds",
               "speech": "bool [windows]", "speech_seconds": "float32 [windows]: speech time the window owns",
               "speech_regions": "float32 [regions, 2]: VAD speech runs (start, end) in seconds",
               "duration": "float32 []: seconds"}
    if module.classification:
        outputs.update({"probabilities": "float32 [windows, classes]", "label": "string [windows]",
                        "classes": "string [classes]", "logits": "float32 [windows, classes]: raw"})
    return {
        "inputs": {"timeline": {"audio": f"float32 [samples]: one recording at {module.sample_rate} Hz"},
                   "timeline_wav": {"wav": "string []: one whole WAV file (any rate, mono/stereo)"}},
        "outputs": outputs,
        "window_seconds": module.window / module.sample_rate,
        "hop_seconds": module.hop / module.sample_rate,
        "vad": vad.VadConfig(sample_rate=module.sample_rate).to_dict(),
    }
