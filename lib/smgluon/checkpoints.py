"""Checkpoints in SageMaker's checkpoint directory, to resume a stopped job (e.g. a Spot interruption).

SageMaker syncs ``/opt/ml/checkpoints`` with ``checkpoint_s3_uri``. A
checkpoint is the net's parameters and the trainer's state for one epoch,
written atomically; :func:`load_latest` resumes from the newest one.
"""

import os
import re

__all__ = ["save", "latest", "load_latest"]

_NAME = re.compile(r"^epoch-(\d+)\.params$")


def _replace_atomically(write, path):
    tmp = path + ".tmp"
    write(tmp)
    os.replace(tmp, path)


def save(directory, epoch, net, trainer=None, keep=2):
    """Saves the state after ``epoch`` and prunes all but the newest ``keep`` checkpoints.

    Args:
        directory (str): the checkpoint directory.
        epoch (int): epochs completed.
        net (mxnet.gluon.Block): the network.
        trainer (mxnet.gluon.Trainer): its trainer, for optimizer state; optional.
        keep (int): checkpoints to keep.
    """
    os.makedirs(directory, exist_ok=True)
    base = os.path.join(directory, "epoch-%04d" % epoch)
    if trainer is not None:
        _replace_atomically(trainer.save_states, base + ".states")
    # the .params file is written last: its presence marks a complete checkpoint
    _replace_atomically(net.save_parameters, base + ".params")
    for old_epoch in sorted(_epochs(directory))[:-keep]:
        for ext in (".params", ".states"):
            path = os.path.join(directory, "epoch-%04d%s" % (old_epoch, ext))
            if os.path.exists(path):
                os.remove(path)


def _epochs(directory):
    if not directory or not os.path.isdir(directory):
        return []
    return [int(m.group(1)) for m in map(_NAME.match, os.listdir(directory)) if m]


def latest(directory):
    """The newest complete checkpoint's epoch, or 0 when there is none.

    Args:
        directory (str): the checkpoint directory (may be None or missing).

    Returns:
        int
    """
    return max(_epochs(directory), default=0)


def load_latest(directory, net, trainer=None, ctx=None):
    """Loads the newest checkpoint into ``net`` (and ``trainer``) if there is one.

    Args:
        directory (str): the checkpoint directory.
        net (mxnet.gluon.Block): the network, already initialised.
        trainer (mxnet.gluon.Trainer): its trainer; optional.
        ctx (list[mxnet.Context]): where the parameters live.

    Returns:
        int: the epoch to resume after (0 when starting fresh).
    """
    epoch = latest(directory)
    if epoch:
        base = os.path.join(directory, "epoch-%04d" % epoch)
        net.load_parameters(base + ".params", ctx=ctx)
        if trainer is not None and os.path.exists(base + ".states"):
            trainer.load_states(base + ".states")
    return epoch
