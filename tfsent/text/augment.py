"""In-graph text augmentation on token ids: random swap and random deletion (seed 002, EDA-style).

Operates on packed sequences (`TextPreprocessor` output: `[CLS] tokens [SEP] [PAD]...`, real tokens
first, padding on the right). Only *content* tokens move or disappear: tokens whose id is in
`protected_ids` ([PAD], [CLS], [SEP] by default) and padding positions are never swapped or
deleted. After deletion the remaining tokens are shifted left (order kept, so `[SEP]` still closes
the sequence), the freed tail is filled with `pad_id`, and `padding_mask` is rebuilt to match.

Randomness is stateless (`tf.random.stateless_*`): the same `seed` gives the same output, eagerly,
in a `tf.function` or in `tf.data.Dataset.map`; pass a different seed per example and per epoch
(e.g. `tf.stack([epoch, example_index])`) for fresh augmentations.

Example:

```python
cfg = TextAugmentConfig.seed002(class_ids=(3, 4))  # 30% swap + 30% deletion, minority classes
ids, mask = augment_tokens(out["token_ids"], out["padding_mask"], seed=[7, i], config=cfg,
                           class_id=label)
```
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import tensorflow as tf

from tfsent.text.tokenizer import CLS_ID, PAD_ID, SEP_ID

__all__ = ["TextAugmentConfig", "augment_tokens"]


@dataclasses.dataclass(frozen=True)
class TextAugmentConfig:
    """Settings of `augment_tokens`.

    Args:
        swap_ratio: random swap; an augmented example with `n >= 2` content tokens gets
            `max(1, floor(swap_ratio * n))` swaps of two distinct random content positions.
            0 disables swapping.
        deletion_rate: random deletion; each content token is deleted with this probability,
            but never all of them (one survives). 0 disables deletion.
        apply_prob: probability that an (eligible) example is augmented at all; the others are
            returned unchanged.
        class_ids: when set, only examples whose `class_id` is in this set are augmented (seed
            002 augments minority classes only).
        protected_ids: token ids never moved or deleted.
        pad_id: id written into freed positions after deletion.

    Example:

    ```python
    cfg = TextAugmentConfig(swap_ratio=0.3, deletion_rate=0.3, apply_prob=0.5)
    ```
    """

    swap_ratio: float = 0.0
    deletion_rate: float = 0.0
    apply_prob: float = 1.0
    class_ids: Optional[Sequence[int]] = None
    protected_ids: Sequence[int] = (PAD_ID, CLS_ID, SEP_ID)
    pad_id: int = PAD_ID

    def __post_init__(self):
        for name in ("swap_ratio", "deletion_rate", "apply_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"TextAugmentConfig.{name} must be in [0, 1]; got {value}.")
        if self.class_ids is not None:
            object.__setattr__(self, "class_ids", tuple(int(c) for c in self.class_ids))
        object.__setattr__(self, "protected_ids", tuple(int(c) for c in self.protected_ids))

    @classmethod
    def seed002(cls, class_ids: Optional[Sequence[int]] = None, **kwargs) -> "TextAugmentConfig":
        """Seed 002's setting: random swap and random deletion of 30% of the tokens."""
        return cls(swap_ratio=0.3, deletion_rate=0.3, class_ids=class_ids, **kwargs)

    @property
    def enabled(self) -> bool:
        return self.apply_prob > 0 and (self.swap_ratio > 0 or self.deletion_rate > 0)


def _isin(values, ids: Sequence[int]):
    if not ids:
        return tf.zeros_like(values, dtype=tf.bool)
    ids = tf.constant(list(ids), dtype=values.dtype)
    return tf.reduce_any(tf.equal(values[..., tf.newaxis], ids), axis=-1)


def _random_swap(ids, content, ratio, seed):
    """Swaps `max(1, floor(ratio * n))` pairs of distinct content positions per row."""
    batch, length = tf.shape(ids)[0], ids.shape[1]
    positions = tf.broadcast_to(tf.range(tf.shape(ids)[1])[tf.newaxis], tf.shape(ids))
    n_content = tf.reduce_sum(tf.cast(content, tf.int32), axis=1)
    # Content positions first (in order): order[:, r] is the position of the r-th content token.
    order = tf.argsort(tf.where(content, positions, positions + tf.shape(ids)[1]), axis=1, stable=True)
    n_f = tf.cast(n_content, tf.float32)
    n_swaps = tf.where(
        n_content >= 2, tf.maximum(1, tf.cast(tf.floor(ratio * n_f), tf.int32)), 0
    )
    # Static bound on the number of swaps when the length is known, else a while-loop bound.
    if isinstance(length, int):
        max_swaps = max(1, int(ratio * length))
    else:
        max_swaps = tf.maximum(1, tf.reduce_max(n_swaps))
    seed_i, seed_j = tf.unstack(tf.random.experimental.stateless_split(seed, 2))

    def body(k, perm):
        s_i = tf.random.experimental.stateless_fold_in(seed_i, k)
        s_j = tf.random.experimental.stateless_fold_in(seed_j, k)
        u_i = tf.random.stateless_uniform([batch], s_i)
        u_j = tf.random.stateless_uniform([batch], s_j)
        r_i = tf.minimum(tf.cast(tf.floor(u_i * n_f), tf.int32), tf.maximum(n_content - 1, 0))
        # A second, distinct rank: offset by 1 .. n-1 modulo n.
        off = 1 + tf.minimum(
            tf.cast(tf.floor(u_j * (n_f - 1.0)), tf.int32), tf.maximum(n_content - 2, 0)
        )
        r_j = tf.math.floormod(r_i + off, tf.maximum(n_content, 1))
        p_i = tf.gather(order, r_i[:, tf.newaxis], batch_dims=1)  # [B, 1]
        p_j = tf.gather(order, r_j[:, tf.newaxis], batch_dims=1)
        v_i = tf.gather(perm, p_i, batch_dims=1)
        v_j = tf.gather(perm, p_j, batch_dims=1)
        active = (k < n_swaps)[:, tf.newaxis]
        perm = tf.where(active & tf.equal(positions, p_i), v_j,
                        tf.where(active & tf.equal(positions, p_j), v_i, perm))
        return k + 1, perm

    _, perm = tf.while_loop(
        lambda k, perm: k < max_swaps, body, (tf.constant(0), positions), parallel_iterations=1
    )
    return tf.gather(ids, perm, batch_dims=1)


def _random_delete(ids, mask, content, rate, pad_id, seed):
    """Deletes content tokens with probability `rate` (one always survives), shifts left."""
    length = tf.shape(ids)[1]
    positions = tf.broadcast_to(tf.range(length)[tf.newaxis], tf.shape(ids))
    u = tf.random.stateless_uniform(tf.shape(ids), seed)
    delete = content & (u < rate)
    survivors = tf.reduce_sum(tf.cast(content & ~delete, tf.int32), axis=1)
    has_content = tf.reduce_any(content, axis=1)
    # If every content token was drawn for deletion, keep the one with the largest draw.
    rescue = tf.one_hot(tf.argmax(tf.where(content, u, -1.0), axis=1), length, dtype=tf.int32) > 0
    delete &= ~(rescue & ((survivors == 0) & has_content)[:, tf.newaxis])
    keep = (mask > 0) & ~delete
    order = tf.argsort(tf.where(keep, positions, positions + length), axis=1, stable=True)
    n_keep = tf.reduce_sum(tf.cast(keep, tf.int32), axis=1)
    new_mask = positions < n_keep[:, tf.newaxis]
    new_ids = tf.where(new_mask, tf.gather(ids, order, batch_dims=1), tf.cast(pad_id, ids.dtype))
    return new_ids, tf.cast(new_mask, mask.dtype)


def augment_tokens(token_ids, padding_mask, seed, config: TextAugmentConfig, class_id=None):
    """Random swap and random deletion of content tokens, in-graph and stateless.

    Args:
        token_ids: int tensor `[L]` or `[B, L]` (right-padded, as `TextPreprocessor` packs).
        padding_mask: int tensor of the same shape, 1 for real tokens.
        seed: int tensor of shape `[2]` (stateless RNG seed); same seed, same result.
        config: `TextAugmentConfig`.
        class_id: int class id, scalar or `[B]`; required when `config.class_ids` is set.

    Returns:
        `(token_ids, padding_mask)` with the input shapes and dtypes. Swap runs before deletion;
        examples not selected (by `apply_prob` or `class_ids`) come back unchanged.
    """
    token_ids = tf.convert_to_tensor(token_ids)
    padding_mask = tf.convert_to_tensor(padding_mask)
    if token_ids.shape.rank not in (1, 2):
        raise ValueError(f"token_ids must be [L] or [B, L]; got shape {token_ids.shape}.")
    if token_ids.shape.rank != padding_mask.shape.rank:
        raise ValueError(
            f"token_ids {token_ids.shape} and padding_mask {padding_mask.shape} differ in rank."
        )
    if config.class_ids is not None and class_id is None:
        raise ValueError("config.class_ids is set, so augment_tokens needs class_id.")
    if not config.enabled:
        return token_ids, padding_mask
    unbatched = token_ids.shape.rank == 1
    ids, mask = token_ids, padding_mask
    if unbatched:
        ids, mask = ids[tf.newaxis], mask[tf.newaxis]
    batch = tf.shape(ids)[0]
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    s_apply, s_swap, s_delete = tf.unstack(tf.random.experimental.stateless_split(seed, 3))

    content = (mask > 0) & ~_isin(ids, config.protected_ids)
    apply = tf.random.stateless_uniform([batch], s_apply) < config.apply_prob
    if config.class_ids is not None:
        cid = tf.cast(tf.convert_to_tensor(class_id), tf.int64)
        cid = tf.broadcast_to(tf.reshape(cid, [-1]), [batch]) if cid.shape.rank == 0 else cid
        apply &= _isin(cid, config.class_ids)

    new_ids, new_mask = ids, mask
    if config.swap_ratio > 0:
        new_ids = _random_swap(new_ids, content, config.swap_ratio, s_swap)
        content = (new_mask > 0) & ~_isin(new_ids, config.protected_ids)
    if config.deletion_rate > 0:
        new_ids, new_mask = _random_delete(
            new_ids, new_mask, content, config.deletion_rate, config.pad_id, s_delete
        )
    new_ids = tf.where(apply[:, tf.newaxis], new_ids, ids)
    new_mask = tf.where(apply[:, tf.newaxis], new_mask, mask)
    if unbatched:
        new_ids, new_mask = new_ids[0], new_mask[0]
    return new_ids, new_mask
