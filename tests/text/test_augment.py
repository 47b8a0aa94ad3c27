"""Tests for tfsent.text.augment: random swap / deletion on packed token ids."""

import numpy as np
import pytest
import tensorflow as tf

from tfsent.text.augment import TextAugmentConfig, augment_tokens

# [CLS]=2 content [SEP]=3 [PAD]=1, right padded like TextPreprocessor packs.
IDS = np.array(
    [
        [2, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 3, 1, 1, 1, 1],
        [2, 20, 21, 22, 23, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
        [2, 30, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
        [2, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
    ],
    dtype=np.int32,
)
MASK = (IDS != 1).astype(np.int32)


def check_structure(ids, mask, src_ids, src_mask, deletion):
    """[CLS] first, [SEP] right after the content, pads after, mask consistent, content kept."""
    for row, m, src, sm in zip(ids, mask, src_ids, src_mask):
        n = int(m.sum())
        assert m.tolist() == [1] * n + [0] * (len(m) - n)
        assert row[0] == 2 and row[n - 1] == 3 and (row[n:] == 1).all()
        content, src_content = row[1 : n - 1], src[1 : int(sm.sum()) - 1]
        if deletion:
            # Order-preserving subsequence after a swap is hard to check; check the multiset.
            assert set(content.tolist()) <= set(src_content.tolist())
            assert len(content) >= min(1, len(src_content))
        else:
            assert sorted(content.tolist()) == sorted(src_content.tolist())


def test_swap_only_permutes_content():
    cfg = TextAugmentConfig(swap_ratio=0.3)
    ids, mask = augment_tokens(IDS, MASK, [1, 2], cfg)
    ids, mask = ids.numpy(), mask.numpy()
    check_structure(ids, mask, IDS, MASK, deletion=False)
    np.testing.assert_array_equal(mask, MASK)
    # Row 0 has 10 content tokens -> 3 swaps of distinct positions: it must change.
    assert ids[0].tolist() != IDS[0].tolist()
    # One content token: nothing to swap.
    assert ids[2].tolist() == IDS[2].tolist() and ids[3].tolist() == IDS[3].tolist()
    assert ids.dtype == np.int32 and mask.dtype == np.int32


def test_deletion_rate_and_never_empty():
    cfg = TextAugmentConfig(deletion_rate=0.3)
    long_ids = np.array([[2] + list(range(10, 110)) + [3]], dtype=np.int32)
    long_mask = np.ones_like(long_ids)
    deleted = []
    for s in range(20):
        ids, mask = augment_tokens(long_ids, long_mask, [s, 0], cfg)
        ids, mask = ids.numpy(), mask.numpy()
        check_structure(ids, mask, long_ids, long_mask, deletion=True)
        n = int(mask.sum()) - 2
        assert ids[0, 1 : n + 1].tolist() == sorted(ids[0, 1 : n + 1].tolist())  # order kept
        deleted.append(1 - n / 100)
    assert 0.25 < np.mean(deleted) < 0.35  # ~30% of the tokens go
    # Rate 1.0: every token drawn for deletion, yet one content token survives.
    ids, mask = augment_tokens(IDS, MASK, [3, 3], TextAugmentConfig(deletion_rate=1.0))
    assert mask.numpy().sum(axis=1).tolist() == [3, 3, 3, 2]
    check_structure(ids.numpy(), mask.numpy(), IDS, MASK, deletion=True)


def test_determinism_and_seed_difference():
    cfg = TextAugmentConfig.seed002()
    a = augment_tokens(IDS, MASK, [5, 6], cfg)
    b = augment_tokens(IDS, MASK, [5, 6], cfg)
    c = augment_tokens(IDS, MASK, [5, 7], cfg)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0].numpy(), c[0].numpy())
    # Same result inside a tf.function.
    f = tf.function(lambda i, m, s: augment_tokens(i, m, s, cfg))
    g = f(tf.constant(IDS), tf.constant(MASK), tf.constant([5, 6]))
    np.testing.assert_array_equal(a[0], g[0])
    check_structure(a[0].numpy(), a[1].numpy(), IDS, MASK, deletion=True)


def test_apply_prob_and_class_filter():
    cfg = TextAugmentConfig.seed002(class_ids=[1, 3])
    labels = tf.constant([0, 1, 2, 3])
    ids, mask = augment_tokens(IDS, MASK, [1, 1], cfg, class_id=labels)
    ids = ids.numpy()
    assert ids[0].tolist() == IDS[0].tolist()  # class 0 is not augmented
    np.testing.assert_array_equal(ids[2], IDS[2])
    assert ids[1].tolist() != IDS[1].tolist()
    unchanged = 0
    for s in range(40):
        ids, _ = augment_tokens(IDS[:1], MASK[:1], [s, 9], TextAugmentConfig(swap_ratio=0.3, apply_prob=0.5))
        unchanged += ids.numpy()[0].tolist() == IDS[0].tolist()
    assert 8 <= unchanged <= 32
    with pytest.raises(ValueError, match="class_id"):
        augment_tokens(IDS, MASK, [1, 1], cfg)
    with pytest.raises(ValueError, match="deletion_rate"):
        TextAugmentConfig(deletion_rate=1.5)


def test_in_dataset_map_per_example():
    cfg = TextAugmentConfig.seed002()
    ds = tf.data.Dataset.from_tensor_slices({"token_ids": IDS, "padding_mask": MASK})

    def aug(i, x):
        ids, mask = augment_tokens(x["token_ids"], x["padding_mask"], tf.stack([tf.constant(7, tf.int64), i]), cfg)
        return {"token_ids": ids, "padding_mask": mask}

    run1 = list(ds.enumerate().map(aug).batch(4).as_numpy_iterator())[0]
    run2 = list(ds.enumerate().map(aug).batch(4).as_numpy_iterator())[0]
    assert run1["token_ids"].shape == (4, 16) and run1["token_ids"].dtype == np.int32
    np.testing.assert_array_equal(run1["token_ids"], run2["token_ids"])
    check_structure(run1["token_ids"], run1["padding_mask"], IDS, MASK, deletion=True)
    # Per-example (unbatched) call gives what the eager call with the same seed gives.
    eager = augment_tokens(IDS[0], MASK[0], [7, 0], cfg)
    np.testing.assert_array_equal(run1["token_ids"][0], eager[0])
