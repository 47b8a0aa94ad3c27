"""What the Hugging Face → Keras converters share: activations, checkpoint checks, weight assignment.

`tfsent.encoders.text` and `tfsent.encoders.audio` build Keras models from a `config.json` and copy
the safetensors weights into them with these helpers; every shape mismatch is a `CheckpointError`
naming the checkpoint weight.

Example:

```python
ckpt, config_file = read_supported_checkpoint(path, anchors=("embeddings.word_embeddings.weight",),
                                              families=("bert",), what="text encoder")
port_dense(ckpt, model.get_layer("pooled_dense"), "pooler.dense", 768, 768)
```
"""

import os

import keras_hub
import numpy as np

from tfsent.encoders.checkpoint import CheckpointError, read_checkpoint

# Hugging Face `hidden_act` names -> Keras activations.
ACTIVATIONS = {
    "gelu": "gelu",  # keras' gelu is the exact (erf) one, as Hugging Face's "gelu"
    "gelu_python": "gelu",
    "gelu_new": keras_hub.src.utils.keras_utils.gelu_approximate,
    "gelu_pytorch_tanh": keras_hub.src.utils.keras_utils.gelu_approximate,
    "gelu_fast": keras_hub.src.utils.keras_utils.gelu_approximate,
    "relu": "relu",
    "silu": "silu",
    "swish": "silu",
    "tanh": "tanh",
}


def activation(name, config_file):
    """The Keras activation for Hugging Face's `name`; a `CheckpointError` naming the file otherwise."""
    if name not in ACTIVATIONS:
        raise CheckpointError(
            f"{config_file}: activation {name!r} is not supported "
            f"(supported: {sorted(ACTIVATIONS)})."
        )
    return ACTIVATIONS[name]


def read_supported_checkpoint(path, *, anchors, families, what, hint=""):
    """`(checkpoint, config_file)` for a folder whose `model_type` is one of `families`.

    `what` names the kind of encoder in the error ("text encoder"); `hint` is appended to the list of
    supported families.
    """
    ckpt = read_checkpoint(path, anchors=anchors)
    config_file = os.path.join(ckpt.path, "config.json")
    if ckpt.model_type not in families:
        raise CheckpointError(
            f"{config_file}: model_type {ckpt.model_type!r} is not a supported {what} "
            f"(supported: {', '.join(families)}{hint})."
        )
    return ckpt, config_file


def transformer_layers(count, *, intermediate_dim, num_heads, dropout, activation, layer_norm_epsilon,
                       normalize_first=False):
    """`count` keras-hub `TransformerEncoder`s named `transformer_layer_<i>` (the ported layout)."""
    return [
        keras_hub.layers.TransformerEncoder(
            intermediate_dim=intermediate_dim, num_heads=num_heads, dropout=dropout,
            activation=activation, layer_norm_epsilon=layer_norm_epsilon,
            normalize_first=normalize_first, name=f"transformer_layer_{i}")
        for i in range(count)
    ]


# === Weight assignment ===

def assign(variable, value, ckpt_name):
    """Assigns `value` to `variable`; a shape mismatch names the checkpoint weight and the variable."""
    value = np.asarray(value, np.float32)
    if tuple(variable.shape) != tuple(value.shape):
        raise CheckpointError(
            f"{ckpt_name}: cannot assign shape {value.shape} to {variable.path} "
            f"{tuple(variable.shape)}; config.json and the weights disagree."
        )
    variable.assign(value)


def port_dense(ckpt, layer, name, in_dim, out_dim):
    """A torch `Linear` (`name.weight` `[out, in]`, `name.bias`) into a Keras `Dense`."""
    assign(layer.kernel, ckpt.get(f"{name}.weight", (out_dim, in_dim)).T, name)
    assign(layer.bias, ckpt.get(f"{name}.bias", (out_dim,)), name)


def port_norm(ckpt, layer, name, dim):
    """A torch `LayerNorm` / `GroupNorm` (`weight`, `bias`) into a Keras `LayerNormalization`."""
    assign(layer.gamma, ckpt.get(f"{name}.weight", (dim,)), name)
    assign(layer.beta, ckpt.get(f"{name}.bias", (dim,)), name)


def port_attention(ckpt, attn, names, hidden, num_heads):
    """Ports q/k/v/out Linear weights (`names`: 4 HF prefixes) into keras MHA."""
    head_dim = hidden // num_heads
    for dense, name in zip((attn.query_dense, attn.key_dense, attn.value_dense), names[:3]):
        w = ckpt.get(f"{name}.weight", (hidden, hidden))
        assign(dense.kernel, w.T.reshape(hidden, num_heads, head_dim), name)
        assign(dense.bias, ckpt.get(f"{name}.bias", (hidden,)).reshape(num_heads, head_dim), name)
    w = ckpt.get(f"{names[3]}.weight", (hidden, hidden))
    assign(attn.output_dense.kernel, w.T.reshape(num_heads, head_dim, hidden), names[3])
    assign(attn.output_dense.bias, ckpt.get(f"{names[3]}.bias", (hidden,)), names[3])


def port_transformer_layer(ckpt, block, names, hidden, num_heads, intermediate):
    """One Hugging Face encoder layer into a keras-hub `TransformerEncoder`.

    `names` maps `q k v o` (attention projections), `ln1` (after attention), `ff1 ff2` (feed-forward)
    and `ln2` (after the feed-forward) to checkpoint prefixes.
    """
    port_attention(ckpt, block._self_attention_layer, [names[k] for k in "qkvo"], hidden, num_heads)
    port_norm(ckpt, block._self_attention_layer_norm, names["ln1"], hidden)
    port_dense(ckpt, block._feedforward_intermediate_dense, names["ff1"], hidden, intermediate)
    port_dense(ckpt, block._feedforward_output_dense, names["ff2"], intermediate, hidden)
    port_norm(ckpt, block._feedforward_layer_norm, names["ln2"], hidden)
