"""Label rules: AI Hub `intensity_sum` and `majority`, KEMDy `total`, tie policies, class sets.

A rule turns one row's annotations into a `LabelOutcome`: one emotion of
`EMOTIONS_7`, or several when the rule ends in a tie that it does not break.
`resolve` then applies the tie policy and the class set and returns the manifest's
`emotion` plus the target distribution. Every failure is a `LabelError` whose
`reason` goes to `rejects.csv`; reasons starting with `excluded_` are policy
exclusions (the row is fine, the chosen task does not use it) rather than data errors.

Example:
    >>> anns = parse_aihub_annotations([("angry", "2"), ("surprise", "2"),
    ...     ("happines:", "2"), ("happiness", "2"), ("happy", "2")])
    >>> intensity_sum(anns).emotions
    ('happy',)
    >>> resolve(LabelOutcome(("happy", "neutral")), ("neutral", "happy", "sad", "angry"), "soft")
    ('happy', {'neutral': 0.5, 'happy': 0.5, 'sad': 0.0, 'angry': 0.0})
"""

import dataclasses
import math

from tfsent.corpus.emotions import BINARY_FROM_EMOTION
from tfsent.corpus.emotions import EMOTIONS_7
from tfsent.corpus.emotions import normalize_emotion

LABEL_RULES = ("intensity_sum", "majority", "total")
TIE_POLICIES = ("drop", "first", "soft")
EXCLUDED_PREFIX = "excluded_"


class LabelError(ValueError):
    """A row that gets no label; `reason` and `value` go to rejects.csv."""

    def __init__(self, reason, value=""):
        super().__init__(f"{reason}: {value}")
        self.reason = reason
        self.value = value

    @property
    def excluded(self):
        return self.reason.startswith(EXCLUDED_PREFIX)


@dataclasses.dataclass(frozen=True)
class LabelOutcome:
    """The result of a label rule.

    Args:
        emotions: one canonical emotion, or several (in tie order) when tied.
    """

    emotions: tuple

    @property
    def tied(self):
        return len(self.emotions) > 1


def vote_counts(emotions):
    """Counts canonical emotion names; returns `{e: n}` over all of `EMOTIONS_7`."""
    counts = dict.fromkeys(EMOTIONS_7, 0)
    for e in emotions:
        counts[e] += 1
    return counts


def parse_aihub_annotations(pairs):
    """Validates AI Hub `(emotion, intensity)` string pairs of the 5 annotators.

    Returns a list of `(canonical emotion, int intensity)`.
    Raises LabelError `missing_emotion`, `unknown_emotion` or `bad_intensity`.
    """
    parsed = []
    for i, (raw_emotion, raw_intensity) in enumerate(pairs, start=1):
        if not str(raw_emotion).strip():
            raise LabelError("missing_emotion", f"annotator {i}")
        emotion = normalize_emotion(raw_emotion)
        if emotion is None:
            raise LabelError("unknown_emotion", repr(raw_emotion))
        text = str(raw_intensity).strip()
        try:
            intensity = float(text)
        except ValueError:
            intensity = math.nan
        if not (intensity in (0, 1, 2)):
            raise LabelError("bad_intensity", f"annotator {i}: {raw_intensity!r}")
        parsed.append((emotion, int(intensity)))
    return parsed


def _first_seen_order(annotations, candidates):
    order = []
    for emotion, _ in annotations:
        if emotion in candidates and emotion not in order:
            order.append(emotion)
    return tuple(order)


def intensity_sum(annotations):
    """The seed-001 rule.

    Per emotion, sums the intensities of the annotators who chose it; the largest
    sum wins; a tie goes to the emotion chosen by more annotators; a tie that
    survives both is returned as a tie (ordered by first annotator), not guessed.
    Only emotions chosen by at least one annotator compete. Since `neutral` always
    has intensity 0, it wins only when no other chosen emotion scores above 0.
    """
    if not annotations:
        raise LabelError("missing_emotion", "no annotations")
    sums, counts = {}, {}
    for emotion, intensity in annotations:
        sums[emotion] = sums.get(emotion, 0) + intensity
        counts[emotion] = counts.get(emotion, 0) + 1
    best = max(sums.values())
    top = [e for e in sums if sums[e] == best]
    most = max(counts[e] for e in top)
    top = [e for e in top if counts[e] == most]
    return LabelOutcome(_first_seen_order(annotations, top))


def majority(annotations, min_agree=3):
    """At least `min_agree` annotators chose the same emotion (several may, if k is small)."""
    counts = {}
    for emotion, _ in annotations:
        counts[emotion] = counts.get(emotion, 0) + 1
    winners = [e for e, n in counts.items() if n >= min_agree]
    if not winners:
        detail = ",".join(f"{e}:{n}" for e, n in sorted(counts.items(), key=lambda x: -x[1]))
        raise LabelError("no_majority", f"fewer than {min_agree} agree ({detail})")
    best = max(counts[e] for e in winners)
    return LabelOutcome(_first_seen_order(annotations, [e for e in winners if counts[e] == best]))


def total_evaluation(value):
    """The KEMDy `Total Evaluation` emotion cell; `;`-joined labels are a tie."""
    text = str(value).strip()
    if not text:
        raise LabelError("missing_emotion", "empty Total Evaluation")
    emotions = []
    for part in text.split(";"):
        emotion = normalize_emotion(part)
        if emotion is None:
            raise LabelError("unknown_emotion", repr(text))
        if emotion not in emotions:
            emotions.append(emotion)
    return LabelOutcome(tuple(emotions))


def binary_from_valence(valence):
    """KEMDy valence (1-5 mean): > 3 positive, < 3 negative, = 3 excluded."""
    if valence is None or math.isnan(valence):
        raise LabelError("missing_valence", "binary task needs valence")
    if valence > 3:
        return "positive"
    if valence < 3:
        return "negative"
    raise LabelError("excluded_valence_3", "valence = 3 (neither positive nor negative)")


def resolve(outcome, class_names, tie_policy="drop", binary=False):
    """Applies the tie policy and the class set to a rule's outcome.

    Args:
        outcome: a `LabelOutcome` over `EMOTIONS_7`.
        class_names: the ordered class set (`CLASS_SETS[...]`).
        tie_policy: `drop` (reject the tie), `first` (first tied label) or
            `soft` (uniform target over the tied labels that are in the class set).
        binary: map emotions to `positive`/`negative` (`BINARY_FROM_EMOTION`) first.

    Returns:
        `(emotion, targets)`: the class name written in the manifest and a dict
        class name -> target probability (one-hot unless soft over a tie).

    Raises:
        LabelError: `label_tie` (drop), `excluded_class` (outside the class set).
    """
    if tie_policy not in TIE_POLICIES:
        raise ValueError(f"unknown tie policy {tie_policy!r}; expected one of {TIE_POLICIES}")
    emotions = outcome.emotions
    if outcome.tied:
        if tie_policy == "drop":
            raise LabelError("label_tie", ";".join(emotions))
        if tie_policy == "first":
            emotions = emotions[:1]

    def to_class(e):
        c = BINARY_FROM_EMOTION.get(e) if binary else e
        return c if c in class_names else None

    mapped = []
    for e in emotions:
        c = to_class(e)
        if c is not None and c not in mapped:
            mapped.append(c)
    if not mapped:
        raise LabelError("excluded_class", ";".join(emotions))
    share = 1.0 / len(mapped)
    targets = {c: (share if c in mapped else 0.0) for c in class_names}
    return mapped[0], targets
