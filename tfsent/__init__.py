"""tfsent: Korean emotion recognition from speech and text with Keras 3 / TensorFlow."""

__version__ = "0.1.0"
