"""Model registry: every model tfsent can train, selectable by name (`--model=NAME`).

A builder is a function taking keyword arguments only and returning a `keras.Model` (or, for
`kind="sklearn"`, an unfitted scikit-learn estimator). The trainer passes the common arguments it
knows (`num_classes`, `feature_dim`, `feature_channels`, `max_frames`, `vocab_size`,
`sequence_length`) only when the builder's signature names them; model-specific arguments come from
`--model_kwargs` and are checked against the signature.

Example:

```python
from tfsent.models import registry

@registry.register("my_model", modality="audio", seed="design card", description="...")
def my_model(*, num_classes, feature_dim, width=64):
    ...

model = registry.build("my_model", num_classes=4, feature_dim=64, width=32)
```
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from typing import Any, Callable


# Modules whose import registers models. Imported lazily by `_ensure_loaded` so that
# `import tfsent.models.registry` stays cheap and free of import cycles.
_MODEL_MODULES = (
    "tfsent.models.audio",
    "tfsent.models.text",
    "tfsent.models.fusion",
    "tfsent.models.classic",
    "tfsent.models.stacking",
)

COMMON_ARGS = (
    "num_classes",
    "feature_dim",
    "feature_channels",
    "max_frames",
    "vocab_size",
    "sequence_length",
)


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """What the registry knows about one model.

    Args:
        name: the registered name (`--model=NAME`).
        builder: the keyword-only function that builds it.
        modality: `audio`, `text` or `multimodal`.
        task: `classification` or `regression`.
        kind: `keras` (trained by the tfsent trainer) or `sklearn` (fitted by scikit-learn).
        seed: which seed system or design document it comes from.
        description: one line for `bin/train --list_models` and README.
    """

    name: str
    builder: Callable[..., Any]
    modality: str
    task: str = "classification"
    kind: str = "keras"
    seed: str = ""
    description: str = ""

    @property
    def parameters(self) -> dict[str, inspect.Parameter]:
        return dict(inspect.signature(self.builder).parameters)


_REGISTRY: dict[str, ModelEntry] = {}
_loaded = False


def register(
    name: str,
    *,
    modality: str,
    task: str = "classification",
    kind: str = "keras",
    seed: str = "",
    description: str = "",
):
    """Decorator registering a model builder under `name`."""
    if modality not in ("audio", "text", "multimodal"):
        raise ValueError(f"modality must be audio, text or multimodal, got {modality!r}")
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be classification or regression, got {task!r}")
    if kind not in ("keras", "sklearn"):
        raise ValueError(f"kind must be keras or sklearn, got {kind!r}")

    def decorator(builder):
        if name in _REGISTRY and _REGISTRY[name].builder is not builder:
            raise ValueError(f"model name {name!r} is registered twice")
        _REGISTRY[name] = ModelEntry(
            name=name,
            builder=builder,
            modality=modality,
            task=task,
            kind=kind,
            seed=seed,
            description=description,
        )
        return builder

    return decorator


def _ensure_loaded():
    global _loaded
    if _loaded:
        return
    for module in _MODEL_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            # Only tolerate the module itself being absent, never a missing dependency inside it.
            if e.name != module:
                raise
    _loaded = True


def names() -> list[str]:
    """All registered model names, sorted."""
    _ensure_loaded()
    return sorted(_REGISTRY)


def get(name: str) -> ModelEntry:
    """The entry for `name`; a clear error listing the known names otherwise."""
    _ensure_loaded()
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def split_kwargs(name: str, common: dict[str, Any], model_kwargs: dict[str, Any]):
    """Keeps the common arguments the builder accepts and validates the model-specific ones.

    Returns the keyword arguments to call the builder with. Raises `ValueError` naming the model
    and the offending keys when `model_kwargs` holds a key the builder does not take.
    """
    entry = get(name)
    params = entry.parameters
    accepts_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    unknown = [k for k in model_kwargs if k not in params and not accepts_var_kw]
    if unknown:
        allowed = sorted(k for k in params if k not in COMMON_ARGS)
        raise ValueError(
            f"--model_kwargs: model {name!r} does not take {', '.join(sorted(unknown))}; "
            f"it takes: {', '.join(allowed) or '(nothing)'}"
        )
    kwargs = {k: v for k, v in common.items() if k in params}
    kwargs.update(model_kwargs)
    return kwargs


def build(name: str, **kwargs):
    """Builds model `name`, passing only the arguments its builder accepts from COMMON_ARGS."""
    common = {k: v for k, v in kwargs.items() if k in COMMON_ARGS}
    specific = {k: v for k, v in kwargs.items() if k not in COMMON_ARGS}
    return get(name).builder(**split_kwargs(name, common, specific))


def arguments_for(function, values: dict[str, Any], **overrides) -> dict[str, Any]:
    """The entries of `values` that `function`'s signature names, updated by `overrides`.

    A builder hands its own arguments (`locals()`, first thing in its body) to the backbone it wraps
    without listing each one again:

        encoder = macaron_encoder(**registry.arguments_for(macaron_encoder, locals()))
    """
    params = inspect.signature(function).parameters
    return {**{k: v for k, v in values.items() if k in params}, **overrides}
