"""Pieces of a Gluon training loop that every classifier repeats (data-parallel pieces: :mod:`smgluon.distributed`).

* :class:`ClassifierStep`: a batch's forward pass, summed loss and number of
  correct predictions as one cached graph;
* :func:`split`: a batch spread over the devices (``split_and_load``);
* :func:`count_correct`: correct predictions in large batches with one sync;
* :func:`total`: the sum of per-batch device scalars, read once;
* :func:`end_epoch`: the epoch's metric line and checkpoint.
"""

import mxnet as mx
from mxnet import gluon

from smgluon import checkpoints

__all__ = ["ClassifierStep", "split", "count_correct", "total", "end_epoch"]


class ClassifierStep(gluon.HybridBlock):
    """One batch's forward pass, summed softmax cross-entropy and number of correct predictions.

    With the loss and the accuracy inside the hybridized graph, a batch costs three
    engine calls from Python (graph, backward, update) instead of about a dozen.

    Args:
        net (mxnet.gluon.HybridBlock): the classifier, returning class scores.
    """

    def __init__(self, net, **kwargs):
        super().__init__(**kwargs)
        self.net = net
        self.loss = gluon.loss.SoftmaxCrossEntropyLoss()

    def hybrid_forward(self, F, x, y):
        out = self.net(x)
        return F.sum(self.loss(out, y)), F.sum(F.argmax(out, axis=1) == y)


def split(batch, ctx):
    """Spreads a batch over the contexts along its first axis (uneven parts allowed).

    Args:
        batch (mxnet.nd.NDArray): the batch.
        ctx (list[mxnet.Context]): the devices.

    Returns:
        list[mxnet.nd.NDArray]: one part per context (fewer if the batch is smaller than the list).
    """
    if len(ctx) == 1:
        return [batch.as_in_context(ctx[0])]
    return gluon.utils.split_and_load(batch, ctx, even_split=False)


def total(terms):
    """The sum of a list of one-element NDArrays, as a float (one engine call, one sync)."""
    return float(mx.nd.add_n(*terms).asscalar()) if terms else 0.0


def count_correct(net, x, y, ctx, batch_size):
    """Correct predictions of ``net`` on (x, y), in batches of ``batch_size`` on ``ctx[0]``, one sync at the end.

    Args:
        net: the classifier.
        x (mxnet.nd.NDArray): inputs, first axis the samples.
        y (mxnet.nd.NDArray): labels.
        ctx (list[mxnet.Context]): the devices; the first one evaluates.
        batch_size (int): samples per forward pass.

    Returns:
        float: a count (summed over workers by :meth:`smgluon.distributed.Workers.allreduce`).
    """
    correct = []
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size].as_in_context(ctx[0])
        yb = y[start : start + batch_size].as_in_context(ctx[0])
        correct.append((net(xb).argmax(axis=1) == yb).sum())
    return total(correct)


def end_epoch(log, epoch, values, samples, seconds, checkpoint_dir=None, net=None, trainer=None):
    """Logs an epoch's metrics (with ``samples_per_sec`` and ``epoch_seconds``) and saves its checkpoint.

    Args:
        log (smgluon.metrics.MetricsLogger): the run's logger.
        epoch (int): the epoch just completed.
        values (dict): the epoch's metrics, in the order to print.
        samples (int): training samples this epoch.
        seconds (float): the epoch's wall time.
        checkpoint_dir (str): where checkpoints go; None saves none.
        net, trainer: what a checkpoint holds.
    """
    values = dict(values, samples_per_sec=samples / seconds, epoch_seconds=seconds)
    log.log(epoch, **values)
    if checkpoint_dir:
        checkpoints.save(checkpoint_dir, epoch, net, trainer)
