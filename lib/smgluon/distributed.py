"""Data-parallel training over hosts: workers, shards, equal batch counts, combined metrics.

With the parameter server (``distribution={"parameter_server": {"enabled": True}}``)
each host runs one worker of a ``dist_sync`` kvstore. This module holds what
every workload needs on top of that:

* :func:`create_kvstore` creates a distributed kvstore, or says why it cannot;
* :class:`Workers` knows this worker's rank and sums numbers over all workers
  (:meth:`Workers.allreduce`), so validation and training metrics are those of
  the whole data set, identical on every host;
* :class:`EpochSampler` gives each worker its shard of the training data for
  an epoch. Fully replicated data (every host has all of it) is split by rank,
  with a new global shuffle each epoch: the shards of an epoch are disjoint,
  cover the data (up to ``n mod workers`` samples left out, a different few each
  epoch) and are all the same size. A channel sharded by the service
  (``ShardedByS3Key``: each host got its own files) is used as it is, cut to the
  smallest worker's size. Either way every worker runs the same number of
  batches, which ``dist_sync`` needs: a worker that runs one batch more waits
  forever for the others at the last epoch (apache/mxnet#7888).
* :func:`shard_bounds` splits evaluation data by rank (sizes may differ by one);
  :func:`training_plan` and :func:`evaluation_shard` are what a workload calls.

Batch size and learning rate: ``batch_size`` is per worker, and ``dist_sync``
adds the workers' gradients, so one update uses ``workers × batch_size``
samples and is ``workers`` times the single-host update on their mean: the
linear scaling rule (the effective learning rate grows with the workers). Each
epoch makes ``workers`` times fewer updates. To keep a single host's dynamics,
divide ``learning_rate`` by the number of hosts.

Summing metrics goes through the kvstore, so the optimizer must not run on the
servers (it would update the metric keys too): give ``gluon.Trainer``
``update_on_kvstore=False`` (:func:`trainer_kwargs`). Workers then pull the
summed gradients and all apply the same update. :func:`init_trainer` must then
set the kvstore up before the first batch (MXNet 1.9.1 races otherwise).
"""

import json
import os

import mxnet as mx
import numpy as np

from smgluon.channels import ChannelError

__all__ = [
    "DistributedError",
    "create_kvstore",
    "Workers",
    "EpochSampler",
    "shard_bounds",
    "training_plan",
    "evaluation_shard",
    "sharded_channels",
    "trainer_kwargs",
    "init_trainer",
    "METRIC_KEY_BASE",
    "SYNC_TYPES",
]

# kvstore keys for allreduce: gluon.Trainer uses 0..(number of parameters - 1), and one kvstore
# cannot mix integer and string keys. MXNet 1.9 picks a key's server as int32 `key * 9973 %
# servers`, which overflows (and crashes) above 215,326, so the keys stay below that.
METRIC_KEY_BASE = 200000
SYNC_TYPES = ("dist_sync", "dist_device_sync")


class DistributedError(RuntimeError):
    """A distributed kvstore was asked for where there is no parameter server."""


def create_kvstore(kv_type):
    """Creates a distributed kvstore (``dist_sync``, ``dist_device_sync``, ``dist_async``).

    Args:
        kv_type (str): the kvstore type.

    Returns:
        mxnet.kvstore.KVStore

    Raises:
        DistributedError: when the parameter-server roles were not started (``DMLC_ROLE``
            unset), naming the setting that starts them.
    """
    if not kv_type.startswith("dist"):
        raise ValueError("create_kvstore makes distributed kvstores; %r is not one" % kv_type)
    if not os.environ.get("DMLC_ROLE"):
        raise DistributedError(
            "kvstore %s needs the parameter server, which is not running: train with "
            "distribution={'parameter_server': {'enabled': True}} (SageMaker starts it on every host), "
            "or set the kvstore hyperparameter to local on one host" % kv_type
        )
    return mx.kv.create(kv_type)


def trainer_kwargs(kv):
    """Extra ``gluon.Trainer`` arguments for a kvstore: ``update_on_kvstore=False`` when distributed.

    Args:
        kv: the kvstore, or its type name for a single host.

    Returns:
        dict
    """
    if isinstance(kv, str) or kv is None or kv.type not in SYNC_TYPES:
        return {}
    return {"update_on_kvstore": False}


def init_trainer(trainer):
    """Creates a Trainer's kvstore and gives every worker rank 0's parameters, before the first batch.

    MXNet 1.9.1 does this lazily, inside the first ``trainer.step()``, while that
    batch's backward pass may still be running; with ``dist_sync`` and
    ``update_on_kvstore=False`` that races, and the workers' weights diverge or
    blow up (how often: bench/results/findings.md). The race is
    inside the step, not only with backward: in dssm the broadcast's pull of a
    parameter could come back after that step's gradient allreduce, so a worker
    took the summed gradient as its weight, even with every operation finished
    (``mx.nd.waitall()``) before the step. Call it after
    the parameters have their shapes (one forward pass) and after loading a
    checkpoint. Does nothing without a distributed kvstore.

    Args:
        trainer (mxnet.gluon.Trainer): the trainer.

    Raises:
        ValueError: if a parameter's shape is still unknown (deferred initialisation).
    """
    kv = trainer._kvstore_params.get("kvstore")
    if isinstance(kv, str) or kv is None or not kv.type.startswith("dist"):
        return
    deferred = [p.name for p in trainer._params if p._deferred_init]
    if deferred:
        raise ValueError("parameters %s have no shape yet: run one forward pass before init_trainer" % deferred[:3])
    if not trainer._kv_initialized:
        trainer._init_kvstore()
    if trainer._params_to_init:
        trainer._init_params()
    mx.nd.waitall()


class Workers:
    """This worker among the job's workers, and sums over all of them.

    Sums need servers that only add (a Trainer with :func:`trainer_kwargs`). With
    ``dist_async`` every push is applied as it comes and the optimizer runs on the
    servers, so nothing can be summed: :meth:`allreduce` then returns this worker's
    own values (``combines`` is False).

    Args:
        kv: a distributed kvstore; None or a type name (one host) means one worker.

    Attributes:
        rank (int): this worker, 0 … num_workers - 1.
        num_workers (int): workers in the job.
        combines (bool): whether :meth:`allreduce` sums over the workers.
    """

    def __init__(self, kv=None):
        self.kv = kv if kv is not None and not isinstance(kv, str) and kv.type.startswith("dist") else None
        self.rank = self.kv.rank if self.kv else 0
        self.num_workers = self.kv.num_workers if self.kv else 1
        self.combines = self.kv is None or self.kv.type in SYNC_TYPES
        self._keys = {}

    @property
    def distributed(self):
        """bool: whether there is more than this worker."""
        return self.num_workers > 1

    def allreduce(self, values):
        """The element-wise sum of ``values`` over all workers (every worker must call it, in the same order).

        Args:
            values (sequence of float): this worker's numbers.

        Returns:
            numpy.ndarray: float64 sums, the same on every worker (this worker's values when
            nothing is combined). Over several workers they travel as float32 (MXNet 1.9's
            servers add in float32 whatever the dtype), so integer counts are exact up to
            2**24 and other sums to about 7 digits.
        """
        local = np.asarray(values, dtype=np.float64).reshape(-1)
        if not self.distributed or not self.combines:
            return local
        return self._sum(local)

    def _sum(self, local):
        key = self._keys.get(local.size)
        if key is None:
            key = METRIC_KEY_BASE + len(self._keys)
            self.kv.init(key, mx.nd.zeros(local.size, dtype=np.float32))
            self._keys[local.size] = key
        out = mx.nd.zeros(local.size, dtype=np.float32)
        self.kv.push(key, mx.nd.array(local, dtype=np.float32))
        self.kv.pull(key, out=out)
        return out.asnumpy().astype(np.float64)

    def average_aux_states(self, params):
        """Gives every worker the mean over the workers of the states no optimizer updates (call on every worker).

        BatchNorm's running mean and variance follow each worker's own batches, so
        over several hosts every worker ends an epoch with its own; averaged, every
        worker evaluates the same model and the saved model's statistics cover
        every shard. Do it before evaluating (and before
        :meth:`check_same_parameters`). Nothing happens with one worker,
        ``dist_async``, or a net without such states.

        Args:
            params (mxnet.gluon.ParameterDict): the net's parameters (``net.collect_params()``).
        """
        if not self.distributed or not self.combines:
            return
        aux = [params[name] for name in sorted(params.keys()) if params[name].grad_req == "null"]
        if not aux:
            return
        local = np.concatenate([p.list_data()[0].asnumpy().astype(np.float64).reshape(-1) for p in aux])
        mean = self._sum(local) / self.num_workers
        offset = 0
        for p in aux:
            size = int(np.prod(p.shape))
            p.set_data(mx.nd.array(mean[offset : offset + size].reshape(p.shape), dtype=p.dtype))
            offset += size

    def check_same_parameters(self, params, when=""):
        """Raises :class:`DistributedError` if the workers' parameters have drifted apart (call on every worker).

        With ``dist_sync`` every worker pulls the same weights after each step, so
        they agree bit for bit; a worker that does not (the start-up broadcast race
        :func:`init_trainer` prevents, a server restarted, a worker that skipped a
        step) would otherwise go on training its own model and log metrics that
        the sums over the workers blend silently. The check allreduces two
        numbers per parameter (the mean and the mean square of its values, on its
        first device) and their squares: the spread of each over the workers is
        zero, up to float32 rounding, exactly when they agree. Every worker reaches
        the same verdict. Nothing happens with one worker or ``dist_async``
        (whose workers are not in step).

        Args:
            params (mxnet.gluon.ParameterDict): the net's parameters (``net.collect_params()``).
            when (str): where in training, for the message (e.g. ``"after epoch 3"``).
        """
        if not self.distributed or not self.combines:
            return
        names = sorted(params.keys())
        values = [params[name].list_data()[0] for name in names]
        prints = mx.nd.concat(*[mx.nd.stack(v.mean(), (v * v).mean()).reshape(-1) for v in values], dim=0)
        local = prints.asnumpy().astype(np.float64)
        total = self._sum(np.concatenate([local, local * local])) / self.num_workers
        mean, mean_sq = total[: local.size], total[local.size :]
        spread = mean_sq - mean * mean
        scale = np.maximum(mean_sq, 1e-20)
        drifted = sorted({names[i // 2] for i in np.flatnonzero(spread > 1e-5 * scale)})
        if drifted:
            raise DistributedError(
                "the %d workers' parameters differ%s: %s%s. The job's workers no longer train one model; "
                "call smgluon.distributed.init_trainer(trainer) before the first batch, and check that every "
                "worker runs the same number of steps (EpochSampler.num_batches)"
                % (
                    self.num_workers,
                    " " + when if when else "",
                    ", ".join(drifted[:5]),
                    " and %d more" % (len(drifted) - 5) if len(drifted) > 5 else "",
                )
            )

    def min(self, value):
        """The smallest ``value`` over the workers (an allreduce of one-hot vectors).

        Call it before the first training step: until a Trainer sends the servers an
        optimizer (``dist_async``), they only add.
        """
        if not self.distributed or self.kv.type not in SYNC_TYPES:
            return float(value)
        vector = np.zeros(self.num_workers)
        vector[self.rank] = value
        return float(self._sum(vector).min())


def shard_bounds(n, rank, num_workers):
    """This worker's ``[start, stop)`` of ``n`` items for evaluation: every item in exactly one shard.

    Sizes differ by at most one (as ``numpy.array_split``).
    """
    base, extra = divmod(n, num_workers)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def sharded_channels(environ=None):
    """The channels the service sharded by key (``ShardedByS3Key``): each host holds only its own files.

    Read from ``SM_INPUT_DATA_CONFIG`` (the toolkit's copy of inputdataconfig.json).

    Args:
        environ (dict): variables to read; None means ``os.environ``.

    Returns:
        set of str
    """
    environ = os.environ if environ is None else environ
    try:
        config = json.loads(environ.get("SM_INPUT_DATA_CONFIG") or "{}")
    except ValueError:
        return set()
    return {name for name, entry in config.items() if (entry or {}).get("S3DistributionType") == "ShardedByS3Key"}


def training_plan(workers, n, seed, batch_size, unit="training samples"):
    """This worker's :class:`EpochSampler` over its ``n`` training samples, and the batches per epoch.

    A ``train`` or ``training`` channel sharded by the service (``ShardedByS3Key``)
    is this host's own shard; otherwise every host holds all of it.

    Args:
        workers (Workers): the job's workers.
        n (int): training samples on this host.
        seed (int): the shuffling seed.
        batch_size (int): samples per batch on each worker.
        unit (str): what a sample is, for the message (``"training ratings"``).

    Returns:
        tuple: (EpochSampler, batches per epoch, the same on every worker).

    Raises:
        smgluon.channels.ChannelError: when a worker's share is smaller than one batch.
    """
    presharded = bool(sharded_channels() & {"train", "training"})
    sampler = EpochSampler(n, workers, seed, presharded=presharded)
    num_batches = sampler.num_batches(batch_size)  # the same on every worker: dist_sync needs it
    if num_batches == 0:
        raise ChannelError(
            "%d %s per worker (%d workers) for batch_size %d: lower batch_size or add data"
            % (sampler.per_worker, unit, workers.num_workers, batch_size)
        )
    return sampler, num_batches


def evaluation_shard(arrays, workers):
    """This worker's slice (:func:`shard_bounds`) of each evaluation array; the arrays themselves on one worker.

    Args:
        arrays (tuple): arrays of equal length (e.g. images and labels).
        workers (Workers): the job's workers.

    Returns:
        tuple: the slices, in the same order.
    """
    if not workers.distributed:
        return tuple(arrays)
    start, stop = shard_bounds(len(arrays[0]), workers.rank, workers.num_workers)
    return tuple(a[start:stop] for a in arrays)


class EpochSampler:
    """Which of its ``n`` training samples a worker uses in each epoch, in which order.

    Args:
        n (int): samples this worker holds (all of them, or its own files' when ``presharded``).
        workers (Workers): the job's workers.
        seed (int): the shuffling seed (the same on every worker).
        presharded (bool): the data on this host is already its own shard (ShardedByS3Key).

    Attributes:
        per_worker (int): samples each worker uses per epoch (the same on every worker).
    """

    def __init__(self, n, workers, seed, presharded=False):
        self.n = int(n)
        self.workers = workers
        self.presharded = bool(presharded) or not workers.distributed
        if self.presharded:
            # One host, or each host its own files: shuffle locally, every worker as many as the smallest has.
            self.per_worker = int(workers.min(self.n)) if workers.distributed else self.n
            self._rng = np.random.RandomState(seed + workers.rank)
        else:
            # The same global permutation on every worker, cut into equal blocks by rank.
            self.per_worker = self.n // workers.num_workers
            self._rng = np.random.RandomState(seed)
        self._next = 1  # the epoch the next call to epoch() draws by default

    def num_batches(self, batch_size):
        """Batches per epoch: the same on every worker (the ragged tail is dropped)."""
        return self.per_worker // batch_size

    def epoch(self, number=None):
        """This worker's sample indices for epoch ``number`` (call on every worker).

        Epoch ``number``'s order is the same whether or not the epochs before it
        ran in this process: a run resumed from a checkpoint after epoch 3 asks
        for epoch 4, and the shuffles of epochs 1 to 3 are drawn and dropped
        first, so it trains on the batches the uninterrupted run would have.

        Args:
            number (int): the epoch, from 1; None means the one after the last asked for.

        Returns:
            numpy.ndarray: int64 indices into this worker's data, ``per_worker`` of them.

        Raises:
            ValueError: for an epoch before one already drawn (the shuffles cannot go back).
        """
        number = self._next if number is None else int(number)
        if number < self._next:
            raise ValueError(
                "epoch %d was asked for after epoch %d: a sampler only goes forward" % (number, self._next - 1)
            )
        for _ in range(self._next, number):
            self._rng.permutation(self.n)
        self._next = number + 1
        order = self._rng.permutation(self.n)
        if self.presharded:
            return order[: self.per_worker]
        start = self.workers.rank * self.per_worker
        return order[start : start + self.per_worker]
