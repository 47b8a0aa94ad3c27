"""Reading local Hugging Face checkpoint folders (config + safetensors) without torch.

`read_checkpoint(path)` returns a `Checkpoint` whose `weights` are float32 numpy
arrays keyed by Hugging Face names with the task prefix (`bert.`, `electra.`,
`wav2vec2.` ...) removed, and whose `get(name, shape)` raises a `CheckpointError`
naming the file when a weight is missing or has the wrong shape.
"""

import json
import os

import numpy as np

from tfsent.core.errors import UsageError

CONVERT_HINT = (
    "Convert it to safetensors once, in any environment that has torch and "
    "transformers:\n"
    "  python -c \"from transformers import AutoModel; "
    "AutoModel.from_pretrained('{d}').save_pretrained('{d}', "
    "safe_serialization=True)\"\n"
    "or, with torch + safetensors only:\n"
    "  python -c \"import torch; from safetensors.torch import save_file; "
    "sd = torch.load('{d}/pytorch_model.bin', map_location='cpu'); "
    "save_file({{k: v.contiguous().clone() for k, v in sd.items()}}, "
    "'{d}/model.safetensors')\""
)


class CheckpointError(UsageError, ValueError):
    """A checkpoint folder that tfsent cannot load; the message says what to do."""


class Checkpoint:
    """A Hugging Face checkpoint folder read into numpy.

    Args:
        path: the folder.
        config: dict from `config.json`.
        weights: dict name -> float32 array, task prefix removed.
        weights_file: the file(s) the weights came from (for messages).

    Example:
    >>> ckpt = read_checkpoint("/models/klue-roberta-base")  # doctest: +SKIP
    >>> ckpt.get("embeddings.word_embeddings.weight").shape  # doctest: +SKIP
    (32000, 768)
    """

    def __init__(self, path, config, weights, weights_file):
        self.path = path
        self.config = config
        self.weights = weights
        self.weights_file = weights_file
        self.used = set()

    @property
    def model_type(self):
        return self.config.get("model_type")

    def has(self, name):
        return name in self.weights

    def get(self, name, shape=None):
        if name not in self.weights:
            raise CheckpointError(
                f"{self.weights_file}: weight {name!r} is missing (model_type "
                f"{self.model_type!r}). Is this the right checkpoint for config.json?"
            )
        value = self.weights[name]
        if shape is not None and tuple(value.shape) != tuple(shape):
            raise CheckpointError(
                f"{self.weights_file}: weight {name!r} has shape {tuple(value.shape)}, "
                f"but {os.path.join(self.path, 'config.json')} implies {tuple(shape)}. "
                "config.json and the weights do not belong together."
            )
        self.used.add(name)
        return value

    def file(self, *names):
        """The first of `names` that exists in the folder, or None."""
        for name in names:
            candidate = os.path.join(self.path, name)
            if os.path.isfile(candidate):
                return candidate
        return None

    def read_json(self, name):
        file = os.path.join(self.path, name)
        if not os.path.isfile(file):
            return {}
        try:
            with open(file, encoding="utf-8") as f:
                return json.load(f)
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{file}: not valid JSON ({e}).") from e


def _strip_prefix(weights, anchors, model_type):
    """Removes the task-model prefix (`bert.`, `electra.`, ...) from every name."""
    for anchor in anchors:
        for key in weights:
            if key == anchor or key.endswith("." + anchor):
                prefix = key[: len(key) - len(anchor)]
                if not prefix:
                    return weights
                return {k[len(prefix):]: v for k, v in weights.items()
                        if k.startswith(prefix)}
    return weights


def read_checkpoint(path, anchors=()):
    """Reads `config.json` + `model.safetensors` (or shards) from a folder.

    Args:
        path: folder of a Hugging Face checkpoint.
        anchors: weight names (without prefix) used to detect the prefix.

    Returns:
        A `Checkpoint`.
    """
    from safetensors.numpy import load_file

    path = os.path.abspath(os.path.expanduser(str(path)))
    if not os.path.isdir(path):
        raise CheckpointError(
            f"{path}: not a folder. Download the checkpoint once (config.json, "
            "model.safetensors, tokenizer files), e.g. `huggingface-cli download "
            "klue/roberta-base --local-dir DIR`, and point the flag at DIR."
        )
    config_file = os.path.join(path, "config.json")
    if not os.path.isfile(config_file):
        raise CheckpointError(
            f"{config_file}: missing. A Hugging Face checkpoint folder holds "
            "config.json, model.safetensors and the tokenizer files; download the "
            "whole folder (e.g. `huggingface-cli download NAME --local-dir DIR`)."
        )
    try:
        with open(config_file, encoding="utf-8") as f:
            config = json.load(f)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{config_file}: not valid JSON ({e}).") from e

    single = os.path.join(path, "model.safetensors")
    index = os.path.join(path, "model.safetensors.index.json")
    if os.path.isfile(single):
        files = [single]
    elif os.path.isfile(index):
        with open(index, encoding="utf-8") as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        files = [os.path.join(path, s) for s in shards]
        for file in files:
            if not os.path.isfile(file):
                raise CheckpointError(f"{file}: shard named in {index} is missing.")
    else:
        torch_files = [n for n in ("pytorch_model.bin", "tf_model.h5", "flax_model.msgpack")
                       if os.path.isfile(os.path.join(path, n))]
        if "pytorch_model.bin" in torch_files:
            raise CheckpointError(
                f"{path}: only pytorch_model.bin, no model.safetensors. tfsent reads "
                "safetensors only (loading .bin needs torch and runs pickled code). "
                + CONVERT_HINT.format(d=path)
            )
        raise CheckpointError(
            f"{path}: no model.safetensors (found {torch_files or 'no weights'}). "
            "Download the safetensors weights of the checkpoint."
        )
    weights = {}
    for file in files:
        try:
            loaded = load_file(file)
        except Exception as e:  # safetensors raises its own error types
            raise CheckpointError(f"{file}: cannot read safetensors ({e}).") from e
        for k, v in loaded.items():
            weights[k] = np.asarray(v, dtype=np.float32)
    # Old TF-converted checkpoints name LayerNorm parameters gamma/beta.
    weights = {
        (k[:-6] + ".weight" if k.endswith(".gamma") else
         k[:-5] + ".bias" if k.endswith(".beta") else k): v
        for k, v in weights.items()
    }
    weights = _strip_prefix(weights, anchors, config.get("model_type"))
    return Checkpoint(path, config, weights,
                      files[0] if len(files) == 1 else index)
