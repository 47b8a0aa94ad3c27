"""Text models: every registered Keras model that takes text only.

- `text_cnn`: the design card's text branch + Dense head.
- `macaron_text`: Macaron transformer encoder over a corpus WordPiece vocabulary, the [CLS] position
  projected to `output_dim` (default `vocab_size`, as in the seed) and classified by the
  `NN_Classifier` head. Unlike the seed, the padding mask is honoured.
- `text_finetune_classifier`: a pretrained transformer backbone ([CLS], pooled or mean output) →
  Dropout → Dense, fine-tuned end to end.
- `valence_regressor`: a frozen text backbone's hidden states → post-norm blocks → GRU → Dense(1).
- `rnn_text`: Embedding → (Bi)LSTM / GRU / SimpleRNN layers (padding masked) → Dense.
- `transformer_text`: Embedding + sinusoidal positions → post-norm transformer blocks → masked mean
  pooling → Dense.

Which seed each comes from is the registry's `seed` field (README's model table).

Example:

```python
model = registry.build("macaron_text", num_classes=7, vocab_size=4096, sequence_length=32)
model({"token_ids": ids, "padding_mask": mask})["logits"]  # [B, 7]
```
"""

from __future__ import annotations

from keras import layers

from tfsent.core import inputs
from tfsent.models import registry
from tfsent.models.heads import (
    branch_classifier,
    classifier,
    dropout_head,
    logits_layer,
    nn_classifier_head,
    recurrent_regressor,
)
from tfsent.models.layers import (
    MaskedGlobalAveragePooling1D,
    MaskedRNN,
    SelectPosition,
    SinusoidalPositionEncoding,
)
from tfsent.models.text_backbones import (
    macaron_encoder,
    sentence_embedding,
    text_branch,
    valence_backbone,
)
from tfsent.models.transformer import encoder_blocks

_CELLS = {"lstm": layers.LSTM, "gru": layers.GRU, "simple_rnn": layers.SimpleRNN}


def _require_vocabulary(model, vocab_size):
    if not vocab_size:
        raise ValueError(f"{model} needs vocab_size (a --vocabulary)")


@registry.register("text_cnn", modality="text", seed="design card",
                   description="Token embedding + Conv1D + masked mean+max pooling, Dense (the demo's "
                   "text branch alone)")
def text_cnn(*, num_classes, vocab_size, embedding_dim=96, filters=96, hidden=64, dropout=0.2,
             branch_dropout=0.1):
    """The design card's text baseline: `text_branch` (the text half of `demo_fusion`) → Dense head."""
    branch = text_branch(vocab_size=vocab_size, embedding_dim=embedding_dim, filters=filters,
                         dropout=branch_dropout)
    return branch_classifier(branch, inputs.text_inputs(), num_classes=num_classes, hidden=hidden,
                             dropout=dropout, name="text_cnn")


@registry.register("macaron_text", modality="text", seed="S0 (seed 000)",
                   description="Macaron transformer encoder (6 FF-attention-FF blocks, gated values, 16 "
                   "memory key/values) on a 4096-token corpus WordPiece, [CLS]→4096 projection, "
                   "NN_Classifier head")
def macaron_text(*, num_classes, vocab_size=4096, sequence_length=64, hidden_dim=512, num_layers=6,
                 num_heads=8, head_dim=64, intermediate_dim=2048, num_memory_kv=16, gate_values=True,
                 dropout=0.0, output_dim=None, head_filters=128, head_dropout=0.1):
    """The Macaron text classifier. `output_dim` (the [CLS] projection fed to the head) defaults to
    `vocab_size`, as in the seed (its encoder's language-model output layer, 512→4096)."""
    encoder = macaron_encoder(**registry.arguments_for(macaron_encoder, locals()))
    feed = inputs.text_inputs()
    cls = SelectPosition(0, name="cls_token")(encoder(feed))
    cls = layers.Dense(output_dim or vocab_size, name="encoder_output_projection")(cls)
    logits = nn_classifier_head(cls, num_classes=num_classes, filters=head_filters, dropout=head_dropout)
    return classifier(feed, logits, "macaron_text")


@registry.register("text_finetune_classifier", modality="text", seed="S1 (seed 001), S3 (seed 003)",
                   description="pretrained transformer text backbone (--text_encoder) [CLS]/pooled "
                   "output → Dropout → Dense, fine-tuned end to end (AdamW, warmup + cosine)")
def text_finetune_classifier(*, num_classes, text_encoder=None, vocab_size=None, pooling="cls",
                             hidden_dim=64, dropout=0.1):
    """A backbone from `tfsent.encoders` + a classification head; `pooling` is `cls` (sequence
    position 0), `pooled` (the backbone's pooler output) or `mean` (masked mean of the tokens)."""
    feed = inputs.text_inputs()
    x = sentence_embedding(feed, pooling=pooling, text_encoder=text_encoder, vocab_size=vocab_size,
                           hidden_dim=hidden_dim, model="text_finetune_classifier")
    return classifier(feed, dropout_head(x, num_classes, dropout), "text_finetune_classifier")


@registry.register("valence_regressor", modality="text", task="regression", seed="S2 (seed 002)",
                   description="frozen text backbone hidden states → 5 post-norm transformer blocks → "
                   "2-layer GRU(64) → Dense(1); stage 2 of the S2 recipe")
def valence_regressor(*, text_encoder=None, vocab_size=None, sequence_length=64, hidden_dim=768,
                      num_layers=5, num_heads=6, intermediate_dim=1024, dropout=0.1, gru_units=64,
                      gru_layers=2, gru_dropout=0.1, target="valence"):
    """Stage 2 of the valence/arousal recipe: tokens → `valence_backbone` (the nested model stage 3 loads) → GRU head;
    output key `target` (`valence`), `[B, 1]` float32."""
    backbone = valence_backbone(**registry.arguments_for(valence_backbone, locals()))
    feed = inputs.text_inputs()
    return recurrent_regressor(backbone, feed, feed[inputs.PADDING_MASK], gru_units=gru_units,
                               gru_layers=gru_layers, gru_dropout=gru_dropout, target=target,
                               name="valence_regressor")


@registry.register("rnn_text", modality="text", seed="S3 (seed 003), S4 (seed 004)",
                   description="Embedding → (Bi)LSTM / GRU / SimpleRNN layers (cell=, bidirectional=) "
                   "with the padding mask → Dense: the recurrent text baselines")
def rnn_text(*, num_classes, vocab_size, embedding_dim=128, cell="lstm", units=128, num_layers=1,
             bidirectional=False, dropout=0.2):
    """Recurrent baseline; the last layer returns the state after each sentence's last real token."""
    if cell not in _CELLS:
        raise ValueError(f"cell must be one of {sorted(_CELLS)}, got {cell!r}")
    _require_vocabulary("rnn_text", vocab_size)
    feed = inputs.text_inputs()
    x = layers.Embedding(vocab_size, embedding_dim, name="token_embedding")(feed[inputs.TOKEN_IDS])
    for i in range(num_layers):
        last = i == num_layers - 1
        rnn = _CELLS[cell](units, return_sequences=not last, name=f"{cell}_{i}")
        if bidirectional:
            rnn = layers.Bidirectional(rnn, name=f"bi{cell}_{i}")
        x = MaskedRNN(rnn, name=f"masked_{cell}_{i}")(x, feed[inputs.PADDING_MASK])
        x = layers.Dropout(dropout, name=f"dropout_{i}")(x)
    return classifier(feed, logits_layer(x, num_classes), "rnn_text")


@registry.register("transformer_text", modality="text", seed="S4 (seed 004)",
                   description="Embedding + sinusoidal positions → transformer encoder blocks with "
                   "padding masks → masked mean pooling → Dense")
def transformer_text(*, num_classes, vocab_size, hidden_dim=128, num_layers=2, num_heads=4,
                     intermediate_dim=256, dropout=0.1):
    """Small transformer-encoder text classifier (seed 004's Keras tutorial model)."""
    _require_vocabulary("transformer_text", vocab_size)
    feed = inputs.text_inputs()
    mask = feed[inputs.PADDING_MASK]
    x = layers.Embedding(vocab_size, hidden_dim, name="token_embedding")(feed[inputs.TOKEN_IDS])
    x = SinusoidalPositionEncoding(name="positions")(x)
    x = layers.Dropout(dropout, name="embedding_dropout")(x)
    x = encoder_blocks(x, mask, num_layers=num_layers, num_heads=num_heads,
                       intermediate_dim=intermediate_dim, dropout=dropout, prefix="block_")
    x = MaskedGlobalAveragePooling1D(name="mean_pool")(x, mask)
    return classifier(feed, dropout_head(x, num_classes, dropout), "transformer_text")
