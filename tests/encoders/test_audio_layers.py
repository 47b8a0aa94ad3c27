"""The wav2vec2 encoder's own layers: frame lengths after the feature encoder, the frame mask."""
import keras
import numpy as np

from tfsent.encoders.audio import FrameMask, SampleLengths, conv_output_lengths


def test_frame_mask_matches_conv_lengths():
    mask = (np.arange(400)[None] < np.array([[400], [123]])).astype("int32")
    lengths = conv_output_lengths(SampleLengths()(mask), [10, 3], [5, 2])
    frames = np.zeros((2, 39, 1), "float32")  # (400-10)//5+1=79 -> (79-3)//2+1=39
    out = keras.ops.convert_to_numpy(FrameMask()(lengths, frames))
    assert out.shape == (2, 39) and out.dtype == np.int32
    assert out[0].sum() == 39 and out[1].sum() == ((123 - 10) // 5 + 1 - 3) // 2 + 1
