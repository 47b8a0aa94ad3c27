"""Conditionals whose untaken branches cost nothing at run time.

Inside `tf.function` and `Dataset.map`, TensorFlow lowers `tf.cond` / `tf.switch_case` to
Switch/Merge nodes in the enclosing graph: every node of every branch is then visited on each call,
the untaken ones as dead nodes, at about the cost of a small live op (~0.2 us each on the 2-core
benchmark machine). A rarely taken branch of a few hundred ops (a general resampler, six WAV
codecs) so costs a per-clip overhead comparable to the work itself. `lazy_cond` and
`lazy_switch_case` keep the `If` / `Case` op functional instead (`_lower_using_switch_merge=False`):
only the taken branch runs, as one function call (~20 us). Use them where a branch is large and
usually not taken; keep plain `tf.cond` for small branches.

Example:

>>> y = lazy_cond(rate == 16000, lambda: x, lambda: general_resample(x, rate))  # doctest: +SKIP
"""

import tensorflow as tf
from tensorflow.core.framework import attr_value_pb2

_FUNCTIONAL_OPS = ("If", "StatelessIf", "Case", "StatelessCase")


def _keep_functional(build):
    graph = tf.compat.v1.get_default_graph()
    if tf.executing_eagerly():
        return build()
    before = len(graph.get_operations())
    out = build()
    for op in graph.get_operations()[before:]:
        # Only the ops this call created; nested conditionals inside the branches live in the branch
        # function graphs and keep their own setting.
        if op.type in _FUNCTIONAL_OPS:
            op._set_attr("_lower_using_switch_merge", attr_value_pb2.AttrValue(b=False))  # noqa: SLF001
    return out


def lazy_cond(pred, true_fn, false_fn):
    """`tf.cond(pred, true_fn, false_fn)` that runs only the taken branch (not lowered)."""
    return _keep_functional(lambda: tf.cond(pred, true_fn, false_fn))


def lazy_switch_case(branch_index, branch_fns):
    """`tf.switch_case(branch_index, branch_fns)` that runs only the taken branch (not lowered)."""
    return _keep_functional(lambda: tf.switch_case(branch_index, branch_fns))
