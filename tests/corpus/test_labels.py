"""Label rules, tie policies, class sets and the emotion vocabulary."""

import pytest

from tfsent.corpus import labels
from tfsent.corpus.emotions import CLASS_SETS
from tfsent.corpus.emotions import EMOTIONS_7
from tfsent.corpus.emotions import normalize_emotion


@pytest.mark.parametrize("raw, name", [
    ("happines:", "happy"), ("Happy", "happy"), (" happiness ", "happy"), ("sad", "sad"),
    ("SADNESS", "sad"), ("anger", "angry"), ("angry", "angry"), ("disqust", "disgust"),
    ("Disgust", "disgust"), ("neutral\t", "neutral"), ("surprise", "surprise"), ("fear", "fear"),
])
def test_vocabulary_normalisation(raw, name):
    assert normalize_emotion(raw) == name


@pytest.mark.parametrize("raw", ["joy", "", "happy sad", "fearful", None])
def test_unknown_emotions_are_none(raw):
    assert normalize_emotion(raw) is None


def test_class_sets_are_ordered_prefixes():
    assert EMOTIONS_7 == ("neutral", "happy", "sad", "angry", "surprise", "fear", "disgust")
    assert CLASS_SETS["4"] == EMOTIONS_7[:4] and CLASS_SETS["5"] == EMOTIONS_7[:5]
    assert CLASS_SETS["binary"] == ("negative", "positive")


def _anns(*pairs):
    return labels.parse_aihub_annotations(pairs)


def test_intensity_sum_neutral_wins_only_when_nothing_else_scores():
    all_neutral = _anns(*[("neutral", "0")] * 5)
    assert labels.intensity_sum(all_neutral).emotions == ("neutral",)
    # Four annotators say neutral, one says happy at intensity 1: happy wins.
    assert labels.intensity_sum(_anns(("happy", "1"), *[("neutral", "0")] * 4)).emotions == ("happy",)
    # Another emotion at intensity 0 does not score either: more annotators chose neutral.
    assert labels.intensity_sum(_anns(("angry", "0"), *[("neutral", "0")] * 4)).emotions == ("neutral",)


def test_intensity_sum_tie_goes_to_more_annotators_then_is_reported():
    # happy 2 vs sad 1+1: equal sums, sad chosen by more annotators.
    anns = _anns(("happy", "2"), ("sad", "1"), ("sad", "1"), ("neutral", "0"), ("neutral", "0"))
    assert labels.intensity_sum(anns).emotions == ("sad",)
    tie = labels.intensity_sum(_anns(("happy", "2"), ("sad", "2"), ("neutral", "0"), ("fear", "0"),
                                     ("neutral", "0")))
    assert tie.tied and tie.emotions == ("happy", "sad")


def test_aihub_annotation_errors_quote_the_value():
    with pytest.raises(labels.LabelError) as err:
        _anns(("joy", "1"), *[("neutral", "0")] * 4)
    assert (err.value.reason, err.value.value) == ("unknown_emotion", "'joy'")
    with pytest.raises(labels.LabelError) as err:
        _anns(("happy", "3"), *[("neutral", "0")] * 4)
    assert err.value.reason == "bad_intensity" and "'3'" in err.value.value
    with pytest.raises(labels.LabelError, match="missing_emotion"):
        _anns(("", "1"), *[("neutral", "0")] * 4)


def test_majority_rule():
    anns = _anns(("happy", "2"), ("happy", "1"), ("sad", "1"), ("sad", "1"), ("neutral", "0"))
    with pytest.raises(labels.LabelError) as err:
        labels.majority(anns, 3)
    assert err.value.reason == "no_majority"
    assert labels.majority(anns, 2).emotions == ("happy", "sad")  # a tie at k=2
    assert labels.majority(_anns(*[("sad", "1")] * 3, ("happy", "2"), ("happy", "2")), 3).emotions == ("sad",)


def test_total_evaluation_and_tie_policies():
    four = CLASS_SETS["4"]
    tie = labels.total_evaluation("angry;neutral;disqust")
    assert tie.emotions == ("angry", "neutral", "disgust")
    with pytest.raises(labels.LabelError) as err:
        labels.resolve(tie, four, "drop")
    assert (err.value.reason, err.value.value) == ("label_tie", "angry;neutral;disgust")
    assert labels.resolve(tie, four, "first") == ("angry", {"neutral": 0, "happy": 0, "sad": 0, "angry": 1})
    # soft: uniform over the tied labels that are in the class set (disgust is not).
    emotion, targets = labels.resolve(tie, four, "soft")
    assert emotion == "angry" and targets == {"neutral": 0.5, "happy": 0.0, "sad": 0.0, "angry": 0.5}
    with pytest.raises(labels.LabelError) as err:
        labels.total_evaluation("happy;joy")
    assert (err.value.reason, err.value.value) == ("unknown_emotion", "'happy;joy'")


def test_class_subset_and_binary_exclusions():
    with pytest.raises(labels.LabelError) as err:
        labels.resolve(labels.LabelOutcome(("fear",)), CLASS_SETS["4"])
    assert err.value.excluded and err.value.value == "fear"
    binary = CLASS_SETS["binary"]
    assert labels.resolve(labels.LabelOutcome(("happy",)), binary, binary=True)[0] == "positive"
    for e in ("sad", "angry", "fear", "disgust"):
        assert labels.resolve(labels.LabelOutcome((e,)), binary, binary=True)[0] == "negative"
    for e in ("neutral", "surprise"):
        with pytest.raises(labels.LabelError, match="excluded_class"):
            labels.resolve(labels.LabelOutcome((e,)), binary, binary=True)
    assert labels.binary_from_valence(3.1) == "positive"
    assert labels.binary_from_valence(2.9) == "negative"
    with pytest.raises(labels.LabelError) as err:
        labels.binary_from_valence(3.0)
    assert err.value.excluded
