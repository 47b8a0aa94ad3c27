"""Fixtures of the pipeline tests: the session's tiny corpus as a manifest, and a WordPiece text
preprocessor trained on its texts (for pipelines of models that take text)."""

import pytest

from tfsent.corpus.manifest import read_manifest
from tfsent.text.tokenizer import make_text_preprocessor
from tfsent.text.vocab import train_wordpiece_vocabulary, write_vocabulary


@pytest.fixture(scope="module")
def manifest(tiny_corpus):
    """`(frame, sidecar)` of the tiny corpus."""
    return read_manifest(tiny_corpus["manifest"])


@pytest.fixture(scope="module")
def preprocessor(manifest, tmp_path_factory):
    """A 400-token WordPiece preprocessor (16 tokens) trained on the corpus texts."""
    vocab = train_wordpiece_vocabulary(manifest[0]["text"].tolist(), 400)
    path = str(tmp_path_factory.mktemp("vocab") / "vocab.txt")
    write_vocabulary(vocab, path)
    return make_text_preprocessor("wordpiece", path, 16)
