"""`bin/embed`: embeddings of sentences or audio files from a local pretrained encoder.

Examples:
    bin/embed --text_encoder=/models/klue-roberta-base --input=sentences.txt \\
        --out=emb.npz --sequence_length=64 --pooling=mean
    bin/embed --text_encoder=/models/kobert --input=runs/kemdy20/manifest.csv --out=emb.npz
    bin/embed --audio_encoder=/models/wav2vec2-xlsr-ko --num_layers=3 \\
        --input=runs/kemdy20/manifest.csv --out=audio_emb.npz --pooling=mean

Input: a UTF-8 text file with one sentence (or, for audio, one file path) per
line, or a manifest CSV (its `text` column; for audio its `audio_path` column,
relative to the sidecar's `data_dir`). Output `.npz` (written atomically):
- text: `embeddings` [N, H] (`cls`: the [CLS] hidden state, `mean`: mean over
  real tokens) or [N, L, H] (`none`), `token_ids` and `mask` int32 [N, L];
- audio: `embeddings` [N, H] (`mean` over real frames of the chosen layer) or
  [N, T, H] (`none`, zero-padded), `mask` int32 [N, T] (real frames).
"""


from absl import flags

from tfsent.cli import common
from tfsent.core.errors import UsageError
from tfsent.encoders.embed import (  # the library code lives in the package
    read_items,
    embed_text,
    embed_audio,
    write_npz,
)

FLAGS = flags.FLAGS
flags.DEFINE_string("text_encoder", None, "Hugging Face text checkpoint folder.")
flags.DEFINE_string("audio_encoder", None, "Hugging Face wav2vec2/HuBERT checkpoint folder.")
flags.DEFINE_string("input", None, "Text file (one item per line) or manifest.csv.")
flags.DEFINE_string("out", None, "Output .npz file.")
flags.DEFINE_integer("sequence_length", 64, "Text: packed length with [CLS]/[SEP].")
flags.DEFINE_enum("pooling", None, ["cls", "mean", "none"],
                  "cls (text only), mean, or none (per token / frame). Default: cls for "
                  "text, mean for audio.")
flags.DEFINE_integer("batch_size", 32, "Batch size.", lower_bound=1)
flags.DEFINE_integer("num_layers", None, "Audio: keep only the first N transformer layers.")
flags.DEFINE_integer("layer", -1, "Audio: which hidden state to output (0 = embeddings, "
                     "-1 = encoder output).")
flags.DEFINE_boolean("progress", True, "Show a progress bar on long inputs.")


def main(argv):
    common.no_arguments(argv)
    if bool(FLAGS.text_encoder) == bool(FLAGS.audio_encoder):
        raise UsageError("give exactly one of --text_encoder or --audio_encoder")
    if not FLAGS.input or not FLAGS.out:
        raise UsageError("--input and --out are required")
    # EmbedError and tfsent.encoders.CheckpointError are UsageErrors: the library's own messages
    # about --input, the items and the checkpoint folder; the runner prints them as one line.
    if FLAGS.text_encoder:
        items = read_items(FLAGS.input, "text")
        arrays = embed_text(FLAGS.text_encoder, items, FLAGS.sequence_length,
                            FLAGS.pooling or "cls", FLAGS.batch_size, FLAGS.progress)
    else:
        items = read_items(FLAGS.input, "audio_path")
        arrays = embed_audio(FLAGS.audio_encoder, items, FLAGS.num_layers, FLAGS.layer,
                             FLAGS.pooling or "mean", FLAGS.batch_size, FLAGS.progress)
    write_npz(FLAGS.out, arrays)
    print(f"embed: wrote {FLAGS.out}: " + ", ".join(
        f"{k} {tuple(v.shape)}" for k, v in arrays.items()))
    return 0


def run():
    common.run_main(main, "embed")


if __name__ == "__main__":
    run()
