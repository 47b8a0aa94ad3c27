"""Local Hugging Face checkpoints -> Keras backbones + in-graph tokenizers.

`tfsent.encoders.porting` holds what the text and audio converters share (activations, checkpoint
checks, weight assignment); `tfsent.encoders.audio.build_audio_encoder` is also the builder of the
randomly initialised wav2vec 2.0 encoder of `tfsent.models`' `w2v2_classifier`.

Public API:
    load_text_encoder(path, sequence_length=64) -> TextEncoder
    load_audio_encoder(path, num_layers=None) -> AudioEncoder
    CheckpointError
"""

from tfsent.encoders.audio import AudioEncoder, load_audio_encoder
from tfsent.encoders.checkpoint import CheckpointError, read_checkpoint
from tfsent.encoders.text import TextEncoder, load_text_encoder
from tfsent.encoders.tokenizers import SentencePiecePreprocessor, WordPiecePreprocessor

__all__ = [
    "AudioEncoder",
    "CheckpointError",
    "SentencePiecePreprocessor",
    "TextEncoder",
    "WordPiecePreprocessor",
    "load_audio_encoder",
    "load_text_encoder",
    "read_checkpoint",
]
