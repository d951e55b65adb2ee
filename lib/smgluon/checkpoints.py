"""Checkpoints in SageMaker's checkpoint directory, to resume a stopped job (e.g. a Spot interruption).

SageMaker syncs ``/opt/ml/checkpoints`` with ``checkpoint_s3_uri``. A
checkpoint is the net's parameters, the trainer's state and the metric history
up to one epoch, written atomically; :func:`load_latest` resumes from the
newest one and :func:`history` gives its metrics back, so a resumed run's
``metrics.json`` lists every epoch, as an uninterrupted run's does.
"""

import json
import os
import re

from smgluon import files

__all__ = ["save", "latest", "load_latest", "history"]

_NAME = re.compile(r"^epoch-(\d+)\.params$")


_EXTENSIONS = (".params", ".states", ".metrics.json")


def save(directory, epoch, net, trainer=None, keep=2, history=None):
    """Saves the state after ``epoch`` and prunes all but the newest ``keep`` checkpoints.

    Args:
        directory (str): the checkpoint directory.
        epoch (int): epochs completed.
        net (mxnet.gluon.Block): the network.
        trainer (mxnet.gluon.Trainer): its trainer, for optimizer state; optional.
        keep (int): checkpoints to keep.
        history (list[dict]): the metrics of every epoch so far (``MetricsLogger.history``); optional.
    """
    os.makedirs(directory, exist_ok=True)
    base = os.path.join(directory, "epoch-%04d" % epoch)
    if trainer is not None:
        with files.replacing(base + ".states") as tmp:
            trainer.save_states(tmp)
    if history is not None:
        files.write_json(base + ".metrics.json", list(history))
    # the .params file is written last: its presence marks a complete checkpoint
    with files.replacing(base + ".params") as tmp:
        net.save_parameters(tmp)
    for old_epoch in sorted(_epochs(directory))[:-keep]:
        for ext in _EXTENSIONS:
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


def history(directory, epoch):
    """The metric history saved with the checkpoint of ``epoch``: a list of per-epoch dicts.

    Args:
        directory (str): the checkpoint directory (may be None or missing).
        epoch (int): the checkpoint's epoch, as :func:`load_latest` returned it; 0 means none.

    Returns:
        list[dict]: empty when there is no checkpoint or it was saved without history.
    """
    if not directory or not epoch:
        return []
    path = os.path.join(directory, "epoch-%04d.metrics.json" % epoch)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)
