"""Canonical emotion names, class sets and the emotion-vocabulary normaliser.

Every tfsent module spells emotions the way this module does. The class sets are
ordered; a class id is the index of its name in the tuple. The 4- and 5-class sets
are prefixes of `EMOTIONS_7`, so a 4-class id means the same emotion in the 5- and
7-class sets.

Example:
    >>> from tfsent.corpus import emotions
    >>> emotions.normalize_emotion(" Happines: ")
    'happy'
    >>> emotions.CLASS_SETS["4"]
    ('neutral', 'happy', 'sad', 'angry')
"""

import functools

EMOTIONS_7 = ("neutral", "happy", "sad", "angry", "surprise", "fear", "disgust")

CLASS_SETS = {
    # seed 001 (BOAZ, AI Hub): sadness, happiness, neutral, angry.
    "4": ("neutral", "happy", "sad", "angry"),
    # seed 002 (KEMDy20): neutral, happy, surprise, angry, sad.
    "5": ("neutral", "happy", "sad", "angry", "surprise"),
    "7": EMOTIONS_7,
    # seed 003: binary sentiment.
    "binary": ("negative", "positive"),
}

# AI Hub emotion -> binary sentiment; emotions absent here (neutral, surprise) are
# excluded from the binary task and counted.
BINARY_FROM_EMOTION = {
    "happy": "positive",
    "sad": "negative",
    "angry": "negative",
    "fear": "negative",
    "disgust": "negative",
}

# Spellings found in the corpora (lower-cased, whitespace and trailing ':' removed).
_ALIASES = {
    "neutral": "neutral",
    "happy": "happy",
    "happiness": "happy",
    "happines": "happy",  # AI Hub writes `happines:`
    "sad": "sad",
    "sadness": "sad",
    "angry": "angry",
    "anger": "angry",
    "surprise": "surprise",
    "fear": "fear",
    "disgust": "disgust",
    "disqust": "disgust",  # KEMDy20 writes `disqust`
}


def normalize_emotion(value):
    """Returns the canonical name of an emotion string, or None when it is unknown.

    Case, surrounding whitespace, inner spaces and trailing colons are ignored;
    the known misspellings (`happines:`, `disqust`) and synonyms (`happiness`,
    `sadness`, `anger`) map to the canonical names of `EMOTIONS_7`.
    """
    if value is None:
        return None
    return _normalize(value if isinstance(value, str) else str(value))


@functools.lru_cache(maxsize=4096)  # the corpora repeat a handful of spellings
def _normalize(value):
    key = "".join(value.split()).lower().rstrip(":")
    return _ALIASES.get(key)


def class_names(classes):
    """Returns the ordered class names of a `--classes` value (`4`, `5`, `7`, `binary`)."""
    key = str(classes)
    if key not in CLASS_SETS:
        raise ValueError(
            f"unknown class set {classes!r}; expected one of {sorted(CLASS_SETS)}"
        )
    return CLASS_SETS[key]
