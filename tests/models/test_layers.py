"""Shared layers: masks honoured, serialization round-trips."""

import os

import keras
import numpy as np
import pytest

from tfsent.models import layers as L
from tfsent.models import transformer

RNG = np.random.default_rng(0)


def _batch(lengths, dim, t=None):
    t = t or max(lengths)
    x = RNG.normal(size=(len(lengths), t, dim)).astype("float32")
    mask = (np.arange(t)[None] < np.array(lengths)[:, None]).astype("int32")
    return x, mask


def test_masked_average_and_max_pooling_ignore_padding():
    x, mask = _batch([3, 5], 4)
    avg = keras.ops.convert_to_numpy(L.MaskedGlobalAveragePooling1D()(x, mask))
    peak = keras.ops.convert_to_numpy(L.MaskedGlobalMaxPooling1D()(x, mask))
    np.testing.assert_allclose(avg[0], x[0, :3].mean(0), rtol=1e-5)
    np.testing.assert_allclose(avg[1], x[1].mean(0), rtol=1e-5)
    np.testing.assert_allclose(peak[0], x[0, :3].max(0), rtol=1e-6)
    empty = np.zeros((1, 5), "int32")
    assert np.all(keras.ops.convert_to_numpy(L.MaskedGlobalMaxPooling1D()(x[:1], empty)) == 0)
    assert np.all(keras.ops.convert_to_numpy(L.MaskedGlobalAveragePooling1D()(x[:1], empty)) == 0)


def test_statistics_pooling_and_last_valid_step():
    x, mask = _batch([2, 6], 3)
    stats = keras.ops.convert_to_numpy(L.MaskedStatisticsPooling1D(epsilon=0.0)(x, mask))
    np.testing.assert_allclose(stats[0], np.concatenate([x[0, :2].mean(0), x[0, :2].std(0)]), rtol=1e-4)
    last = keras.ops.convert_to_numpy(L.LastValidStep()(x, mask))
    np.testing.assert_allclose(last[0], x[0, 1])
    np.testing.assert_allclose(last[1], x[1, 5])


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_block_is_padding_invariant(norm_first):
    block = transformer.TransformerEncoderBlock(num_heads=2, intermediate_dim=16, norm_first=norm_first)
    x, mask = _batch([4, 7], 8)
    batched = keras.ops.convert_to_numpy(block(x, mask))
    alone = keras.ops.convert_to_numpy(block(x[:1, :4], mask[:1, :4]))
    np.testing.assert_allclose(batched[0, :4], alone[0], atol=1e-5)
    # Without the mask the padded steps leak in: the test can fail.
    unmasked = keras.ops.convert_to_numpy(block(x, None))
    assert np.abs(unmasked[0, :4] - alone[0]).max() > 1e-3


def test_masked_rnn_returns_state_at_last_real_step():
    rnn = L.MaskedRNN(keras.layers.GRU(5))
    x, mask = _batch([3, 6], 4)
    batched = keras.ops.convert_to_numpy(rnn(x, mask))
    alone = keras.ops.convert_to_numpy(rnn(x[:1, :3], mask[:1, :3]))
    np.testing.assert_allclose(batched[0], alone[0], atol=1e-5)


def test_layers_save_and_load(tmp_path):
    x_in = keras.Input((None, 8))
    m_in = keras.Input((None,), dtype="int32")
    h = L.SinusoidalPositionEncoding()(x_in)
    h = L.LearnedPositionEmbedding(16)(h)
    h = transformer.TransformerEncoderBlock(2, 16, dropout=0.1)(h, m_in)
    h = L.ApplyTimeMask()(h, m_in)
    seq = L.MaskedRNN(keras.layers.GRU(4, return_sequences=True))(h, m_in)
    out = keras.layers.Concatenate()(
        [
            L.MaskedStatisticsPooling1D()(seq, m_in),
            L.LastValidStep()(seq, m_in),
            L.MaskedGlobalMaxPooling1D()(h, m_in),
        ]
    )
    model = keras.Model([x_in, m_in], out)
    x, mask = _batch([5, 9], 8)
    expected = keras.ops.convert_to_numpy(model([x, mask]))
    path = os.path.join(tmp_path, "m.keras")
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(restored([x, mask])), expected, atol=1e-5)
