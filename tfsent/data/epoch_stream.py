"""Training epochs read from one long-lived tf.data iterator.

A fresh dataset per epoch costs more than building it: every new iterator instantiates the
pipeline's functions again, and TensorFlow runs its graph optimizer over each (the decode,
augmentation and feature functions: ~100 ms of CPU per epoch on `bench/pipeline`'s pipeline), and
the pipeline starts empty, so each epoch opens with a stall the model waits through. `EpochStream`
chains the epochs of one split into one dataset (`flat_map` over the epoch numbers; the per-batch
function, the heaviest, outside it, so it is instantiated once) and keeps one iterator on it.
`batches(epoch)` reads that epoch's batches from the iterator in Python and stops at the epoch's
end marker; `dataset(epoch)` gives the same batches as a small `tf.data` view (for
`tf.distribute`, which splits datasets across replicas). The Python reader is what one device uses:
building and starting a view costs ~100-150 ms of CPU per epoch on the calling thread (on
`bench/pipeline`'s 320-clip epochs a third of the cached pipeline's work), the reader ~10 ms. The
stream runs ahead into the next epoch (prefetch) while the caller validates.

The batches are those a per-epoch dataset gives: the epoch's order comes from the same Python
function, fed in by a generator, and every random draw from the epoch number and the rows. So the
stream needs Python in the process (not for tf.data service or a multi-worker strategy's
auto-sharding: those build per-epoch datasets).

An epoch is read once: reading a reader or view again after the stream has moved on raises (it
would otherwise take the next epoch's batches). Asking for an epoch out of sequence, or with
`skip_batches` (resuming mid-epoch), restarts the stream there; an epoch left unfinished (`take(n)`,
a `break`) is finished by the next reader or view, which drops the earlier epoch's remaining batches.

Example:

```python
stream = EpochStream(order_of, epoch_batches, finish)
for epoch in range(3):
    for inputs, targets in stream.batches(epoch):   # or stream.dataset(epoch), a tf.data view
        ...
```
"""

from __future__ import annotations

import gc
import itertools

import numpy as np
import tensorflow as tf

from tfsent.core.control_flow import lazy_cond


class EpochStream:
    """The epochs of one split as views on one iterator.

    Args:
        order_of: `epoch (int) -> int64 [n]` numpy array: the rows of that epoch, in order.
        epoch_batches: `(epoch int32 scalar tensor, order int64 [n] tensor) -> tf.data.Dataset` of
            that epoch's batches (dicts of tensors; the batch dimension first), before `finish`.
        finish: `(batch, epoch int32 scalar tensor) -> element` applied to every batch (the
            per-batch work: it runs outside the per-epoch datasets, instantiated once).
        options: `tf.data.Options` for the stream.

    Example:

    >>> stream = EpochStream(lambda e: np.arange(10), batches_of, lambda b, e: b)  # doctest: +SKIP
    >>> [len(b["index"]) for b in stream.batches(0)]                               # doctest: +SKIP
    """

    def __init__(self, order_of, epoch_batches, finish, options=None):
        self._order_of = order_of
        self._epoch_batches = epoch_batches
        self._finish = finish
        self._options = options
        self._iterator = None
        self._last = None  # the epoch of the last reader or view handed out (None while stopped)

    def batches(self, epoch: int, skip_batches: int = 0):
        """The batches of `epoch` (the first `skip_batches` left out) as a Python iterator, read once."""
        epoch = self._advance(epoch, skip_batches)
        return self._read(epoch, self._iterator)

    def dataset(self, epoch: int, skip_batches: int = 0) -> tf.data.Dataset:
        """The batches of `epoch` (the first `skip_batches` left out) as a `tf.data` view, read once."""
        epoch = self._advance(epoch, skip_batches)
        return self._view(epoch)

    def _advance(self, epoch, skip_batches):
        epoch = int(epoch)
        if skip_batches or self._last is None or epoch != self._last + 1:
            if self._iterator is not None:
                self.close()
            self._start(epoch, int(skip_batches))
        self._last = epoch
        return epoch

    def close(self):
        """Stops the stream (it runs ahead into the next epoch until then); a later `batches` or
        `dataset` restarts it.

        The iterator lives as long as any view's functions, which sit in reference cycles: a garbage
        collection here frees it now (until then its threads keep working ahead and tuning).
        """
        self._iterator = None
        self._last = None
        gc.collect()

    def _start(self, first_epoch, skip_batches):
        order_of = self._order_of

        def orders():
            for e in itertools.count(first_epoch):
                yield np.int32(e), np.asarray(order_of(e), np.int64)

        source = tf.data.Dataset.from_generator(
            orders, output_signature=(tf.TensorSpec([], tf.int32), tf.TensorSpec([None], tf.int64)))

        def one_epoch(epoch, order):
            ds = self._epoch_batches(epoch, order)
            ds = ds.skip(tf.where(tf.equal(epoch, first_epoch), tf.constant(skip_batches, tf.int64), 0))
            ds = ds.map(lambda batch: (batch, epoch, tf.constant(False)))
            marker = (_empty(ds.element_spec[0]), epoch, tf.constant(True))
            return ds.concatenate(tf.data.Dataset.from_tensors(marker))

        chained = source.flat_map(one_epoch)
        probe = tf.function(self._finish, autograph=False).get_concrete_function(
            chained.element_spec[0], tf.TensorSpec([], tf.int32))
        out_spec = tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype), probe.structured_outputs)

        def finish_or_marker(batch, epoch, end):
            out = tf.cond(end, lambda: _empty(out_spec), lambda: self._finish(batch, epoch))
            return out, epoch, end

        stream = chained.map(finish_or_marker, num_parallel_calls=tf.data.AUTOTUNE)
        if self._options is not None:
            stream = stream.with_options(self._options)
        self._iterator = iter(stream.prefetch(tf.data.AUTOTUNE))

    def _read(self, epoch, iterator):
        """`batches`' generator: checks before each read that the stream is still at `epoch`."""

        def stale():
            return RuntimeError(f"the batches of epoch {epoch} were already read (the stream has moved on); "
                                "ask EpochStream.batches for the epoch again")

        while True:
            if self._iterator is not iterator or self._last != epoch:
                raise stale()
            element, e, end = next(iterator)
            e = int(e)
            if e < epoch:  # what an unfinished earlier epoch left
                continue
            if e != epoch:
                raise stale()
            if bool(end):
                return
            yield element

    def _view(self, epoch):
        iterator = self._iterator

        def read(_):
            return iterator.get_next()

        def check(element, e, end):
            ok = tf.debugging.assert_equal(e, epoch, message=(
                f"this view of epoch {epoch} was already read (the stream has moved on); ask "
                "EpochStream.dataset for the epoch again"))
            with tf.control_dependencies([ok]):
                return element, tf.identity(end)

        ds = tf.data.Dataset.from_tensors(0).repeat().map(read)
        ds = ds.filter(lambda element, e, end: e >= epoch)  # what an unfinished earlier view left
        ds = ds.map(check).take_while(lambda element, end: tf.logical_not(end))
        # No read-ahead: a prefetch or a parallel map here would take the next epoch's batches.
        options = tf.data.Options()
        options.experimental_optimization.apply_default_optimizations = False
        options.experimental_optimization.inject_prefetch = False
        options.autotune.enabled = False
        return ds.map(lambda element, end: element).with_options(options)


def _empty(spec):
    """Zero-size tensors of `spec`'s structure (unknown dimensions 0)."""
    return tf.nest.map_structure(
        lambda s: tf.zeros([0 if d is None else d for d in s.shape], s.dtype), spec)
