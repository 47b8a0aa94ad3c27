"""Audio in the TensorFlow graph.

- `tfsent.audio.io`: `load_audio`, `load_audio_checked`, `decode_wav_bytes`.
- `tfsent.audio.resample`: `resample` (pure TF, run-time input rate), `resample_by_ratio`.
- `tfsent.audio.features`: `FeatureConfig`, `AudioFrontend`, `num_frames`, `masked_mean`.
- `tfsent.audio.litert_features`: `FixedWindowFrontend`, the same features from LiteRT builtin ops.
- `tfsent.audio.augment`: `AudioAugmentConfig`, `augment_waveform`, `spec_augment`,
  `example_seed`.
"""
