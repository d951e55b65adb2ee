"""Pieces of a Gluon training loop that every workload repeats (data-parallel pieces: :mod:`smgluon.distributed`).

* :func:`create_kvstore`: the job's kvstore from its hosts, GPUs and the ``kvstore`` hyperparameter
  (:func:`is_distributed`: whether it spans hosts);
* :func:`create_trainer`: the ``gluon.Trainer`` for the ``optimizer`` hyperparameters and that kvstore;
* :class:`ClassifierStep`: a batch's forward pass, summed loss and number of
  correct predictions as one cached graph;
* :func:`split`: a batch spread over the devices (``split_and_load``);
* :func:`count_correct`: correct predictions in large batches with one sync;
* :func:`total`: the sum of per-batch device scalars, read once;
* :func:`end_epoch`: the epoch's metric line and checkpoint.
"""

import mxnet as mx
from mxnet import gluon

from smgluon import checkpoints, cpu_speed, distributed, kvstore

__all__ = [
    "create_kvstore",
    "is_distributed",
    "create_trainer",
    "ClassifierStep",
    "split",
    "count_correct",
    "total",
    "end_epoch",
]


def create_kvstore(hosts, num_gpus, override=None):
    """The job's kvstore: created when distributed, else its type name.

    Only a distributed kvstore is created (it ranks the workers: pass it to
    :class:`smgluon.distributed.Workers`); for one host the Trainer gets the type
    name and skips the kvstore on a single device.

    Args:
        hosts (list[str]): the job's hosts.
        num_gpus (int): GPUs per host.
        override (str): the ``kvstore`` hyperparameter (``auto`` chooses, see
            :func:`smgluon.kvstore.choose_kvstore`).

    Returns:
        mxnet.kvstore.KVStore or str

    Raises:
        smgluon.distributed.DistributedError: a distributed kvstore without the parameter server.
    """
    kv_type = kvstore.choose_kvstore(len(hosts), num_gpus, override)
    return distributed.create_kvstore(kv_type) if kv_type.startswith("dist") else kv_type


def is_distributed(kv):
    """Tells whether ``kv`` (from :func:`create_kvstore`) spans several hosts."""
    return not isinstance(kv, str)


def create_trainer(params, hps, ctx, kv, **optimizer_params):
    """The ``gluon.Trainer`` of a workload's ``optimizer``, ``learning_rate``, ``weight_decay`` and ``momentum``.

    ``momentum`` goes to the optimizers that take it (sgd, nag). Over several
    hosts the workers update themselves (:func:`smgluon.distributed.trainer_kwargs`),
    which lets :class:`smgluon.distributed.Workers` sum metrics.

    Args:
        params (mxnet.gluon.ParameterDict): what it trains (``net.collect_params()``).
        hps (dict): the parsed hyperparameters.
        ctx (list[mxnet.Context]): the devices.
        kv: the kvstore from :func:`create_kvstore`.
        **optimizer_params: more optimizer arguments (e.g. ``lr_scheduler``).

    Returns:
        mxnet.gluon.Trainer
    """
    settings = {"learning_rate": hps["learning_rate"], "wd": hps["weight_decay"]}
    if hps["optimizer"] in ("sgd", "nag"):
        settings["momentum"] = hps["momentum"]
    settings.update(optimizer_params)
    kwargs = distributed.trainer_kwargs(kv)
    # The optimizer runs on the servers (pickled there) unless the workers update themselves.
    on_servers = is_distributed(kv) and "update_on_kvstore" not in kwargs
    optimizer = cpu_speed.create_optimizer(hps["optimizer"], settings, ctx, on_servers)
    return gluon.Trainer(params, optimizer, kvstore=kv, **kwargs)


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
        checkpoints.save(checkpoint_dir, epoch, net, trainer, history=log.history)
