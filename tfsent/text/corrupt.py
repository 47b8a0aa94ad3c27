"""Hangul transcript corruption at a target character error rate, as pure TensorFlow ops.

An ASR transcript of Korean speech errs inside syllables: a wrong initial consonant, vowel or final
consonant, or a jamo lost. `corrupt_hangul` decodes the text to code points
(`tf.strings.unicode_decode`), splits each precomposed syllable (U+AC00-U+D7A3) arithmetically into its
initial / vowel / final jamo indices, corrupts some syllables and recomposes. Each corrupted syllable
gets exactly one jamo edit, chosen uniformly:

- a different initial consonant (one of the other 18), vowel (other 20) or final (other 27, incl. none);
- a jamo deleted: the final if there is one, else the initial (the syllable starts with silent ㅇ),
  else (ㅇ + vowel only) the syllable itself.

So each corrupted syllable is one character substitution or deletion. Only Hangul syllables are
corrupted; they are hit with probability `cer * len(text) / syllables` so that the expected character
error rate over the whole text (spaces and punctuation included, as `jiwer.cer` counts) is `cer`
(capped at 1 per syllable when the text has few). Stateless: the same seed gives the same text, in
eager mode, `tf.function`, `Dataset.map` and a tf.data service worker.

Example:

```python
noisy = corrupt_hangul(tf.constant("오늘 정말 기분이 좋아요"), seed=[3, 1], cer=0.3)
character_error_rate(["오늘 정말 기분이 좋아요"], [noisy.numpy().decode()])   # ~0.3 on average
```
"""

from __future__ import annotations

import tensorflow as tf

SYLLABLE_FIRST, SYLLABLE_LAST = 0xAC00, 0xD7A3
NUM_INITIALS, NUM_VOWELS, NUM_FINALS = 19, 21, 28
IEUNG = 11  # ㅇ among the initials: silent at the start of a syllable


def _other(value, u, size):
    """A value in [0, size) other than `value`, uniform given u ~ U[0, 1)."""
    step = 1 + tf.cast(tf.floor(u * (size - 1)), tf.int32)
    return (value + tf.minimum(step, size - 1)) % size


def corrupt_hangul(text, seed, cer):
    """`text` (scalar string, UTF-8) with jamo-level errors at an expected character error rate `cer`
    (float or scalar tensor in [0, 1]); `seed` `[2]` int32."""
    chars = tf.strings.unicode_decode(text, "UTF-8", errors="replace")
    n = tf.size(chars)
    syllable = tf.logical_and(chars >= SYLLABLE_FIRST, chars <= SYLLABLE_LAST)
    num_syllables = tf.reduce_sum(tf.cast(syllable, tf.float32))
    rate = tf.minimum(tf.cast(cer, tf.float32) * tf.cast(n, tf.float32) / tf.maximum(num_syllables, 1.0), 1.0)
    u = tf.random.stateless_uniform([n, 3], tf.cast(seed, tf.int32))
    hit = tf.logical_and(syllable, u[:, 0] < rate)
    op = tf.minimum(tf.cast(tf.floor(u[:, 1] * 4.0), tf.int32), 3)  # 0 initial, 1 vowel, 2 final, 3 delete
    index = chars - SYLLABLE_FIRST
    initial = index // (NUM_VOWELS * NUM_FINALS)
    vowel = (index // NUM_FINALS) % NUM_VOWELS
    final = index % NUM_FINALS
    has_final = final > 0
    delete = tf.equal(op, 3)
    new_initial = tf.where(tf.equal(op, 0), _other(initial, u[:, 2], NUM_INITIALS),
                           tf.where(delete & ~has_final, IEUNG, initial))
    new_vowel = tf.where(tf.equal(op, 1), _other(vowel, u[:, 2], NUM_VOWELS), vowel)
    new_final = tf.where(tf.equal(op, 2), _other(final, u[:, 2], NUM_FINALS), tf.where(delete, 0, final))
    recomposed = SYLLABLE_FIRST + (new_initial * NUM_VOWELS + new_vowel) * NUM_FINALS + new_final
    chars_out = tf.where(hit, recomposed, chars)
    dropped = hit & delete & ~has_final & tf.equal(initial, IEUNG)
    return tf.strings.unicode_encode(tf.boolean_mask(chars_out, ~dropped), "UTF-8")


def character_error_rate(references, hypotheses) -> float:
    """Corpus CER (`jiwer.cer`: character edits / reference characters) of two lists of strings;
    empty references are left out (their CER is undefined)."""
    import jiwer

    pairs = [(r, h) for r, h in zip(references, hypotheses) if r]
    if not pairs:
        return float("nan")
    return float(jiwer.cer([r for r, _ in pairs], [h for _, h in pairs]))
