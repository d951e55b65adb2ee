"""The training loops the baselines share: the plain Gluon way and the fast PyTorch way.

Each baseline module builds its net and data and hands them to one of these
loops, which times each epoch (wall and CPU seconds), measures the validation
accuracy after it, prints one line per epoch and writes the runner's record
(:func:`bench._common.write_record`).
"""

import os
import time

from bench import _common


def gluon_plain(args, net, train_data, val_data, step_size=None):
    """Trains ``net`` as AWS's Gluon MNIST script does, and writes the record.

    Xavier (magnitude 2.24) initialisation, SGD lr 0.1 momentum 0.9, the loss
    and ``mx.metric.Accuracy`` (which reads the outputs back: a sync per batch)
    every batch, not hybridized.

    Args:
        args: the runner's arguments (``epochs``, ``batch_size``, ``json_out``).
        net (mxnet.gluon.Block): the net, not yet initialised.
        train_data, val_data (mxnet.gluon.data.DataLoader): the batches.
        step_size (int): what ``trainer.step`` gets (default: each batch's own size).
    """
    import mxnet as mx
    import numpy as np
    from mxnet import autograd, gluon

    ctx = mx.cpu()
    net.initialize(mx.init.Xavier(magnitude=2.24), ctx=ctx)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1, "momentum": 0.9})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    metric = mx.metric.Accuracy()

    def evaluate():
        acc = mx.metric.Accuracy()
        for data, label in val_data:
            acc.update([label.as_in_context(ctx)], [net(data.as_in_context(ctx))])
        return acc.get()[1]

    epoch_seconds, cpu_epoch_seconds, samples, accuracies, train_accuracies = [], [], 0, [], []
    for _ in range(args.epochs):
        metric.reset()
        samples = 0
        tic, cpu = time.time(), _common.cpu_seconds()
        for data, label in train_data:
            data, label = data.as_in_context(ctx), label.as_in_context(ctx)
            with autograd.record():
                output = net(data)
                loss = loss_fn(output, label)
            loss.backward()
            trainer.step(step_size or data.shape[0])
            metric.update([label], [output])
            samples += data.shape[0]
        epoch_seconds.append(time.time() - tic)
        cpu_epoch_seconds.append(_common.cpu_seconds() - cpu)
        train_accuracies.append(metric.get()[1])
        accuracies.append(evaluate())
        _print_epoch(epoch_seconds, accuracies, train_accuracies[-1])
    _common.write_record(
        args.json_out,
        epoch_seconds,
        samples,
        accuracies[-1],
        cpu_epoch_seconds=cpu_epoch_seconds,
        versions={"mxnet": mx.__version__, "numpy": np.__version__},
        threads={k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MXNET_ENGINE_TYPE")},
        style=getattr(args, "style", None),
        validation_accuracy_per_epoch=accuracies,
        training_accuracy_per_epoch=train_accuracies,
    )


def torch_fast(args, net, x_train, y_train, x_test, y_test):
    """Trains a PyTorch ``net`` on whole-data-set tensors, batches sliced from a shuffled copy, and writes the record.

    ``CrossEntropyLoss``, SGD lr 0.1 momentum 0.9, running loss and accuracy
    kept as tensors (no sync per batch). ``TORCH_FLUSH_DENORMAL=1`` turns on
    ``torch.set_flush_denormal(True)``; the seed is ``args.seed``.

    Args:
        args: the runner's arguments (``epochs``, ``batch_size``, ``seed``, ``json_out``).
        net (callable): builds the ``torch.nn.Module`` (called after seeding).
        x_train, y_train, x_test, y_test (numpy.ndarray): float32 inputs in [0, 1], int64 labels.
    """
    import numpy as np
    import torch
    from torch import nn

    flush = os.environ.get("TORCH_FLUSH_DENORMAL") == "1"
    if flush:
        torch.set_flush_denormal(True)
    torch.manual_seed(args.seed)
    rng = np.random.RandomState(args.seed)
    x_train, y_train, x_test, y_test = (torch.from_numpy(a) for a in (x_train, y_train, x_test, y_test))
    net = net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    bs = args.batch_size
    num_batches = len(x_train) // bs

    epoch_seconds, cpu_epoch_seconds, accuracies = [], [], []
    for _ in range(args.epochs):
        net.train()
        tic, cpu = time.time(), _common.cpu_seconds()
        order = torch.from_numpy(rng.permutation(len(x_train)))
        xs, ys = x_train[order], y_train[order]
        loss_sum = torch.zeros(())
        correct = torch.zeros((), dtype=torch.int64)
        for i in range(num_batches):
            xb, yb = xs[i * bs : (i + 1) * bs], ys[i * bs : (i + 1) * bs]
            out = net(xb)
            loss = loss_fn(out, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                loss_sum += loss.detach() * bs
                correct += (out.argmax(1) == yb).sum()
        _ = float(loss_sum) / (num_batches * bs), int(correct) / (num_batches * bs)
        epoch_seconds.append(time.time() - tic)
        cpu_epoch_seconds.append(_common.cpu_seconds() - cpu)
        net.eval()
        with torch.no_grad():
            hits = sum(
                int((net(x_test[s : s + 1000]).argmax(1) == y_test[s : s + 1000]).sum())
                for s in range(0, len(x_test), 1000)
            )
        accuracies.append(hits / len(x_test))
        _print_epoch(epoch_seconds, accuracies)
    _common.write_record(
        args.json_out,
        epoch_seconds,
        num_batches * bs,
        accuracies[-1],
        cpu_epoch_seconds=cpu_epoch_seconds,
        versions={"torch": torch.__version__, "numpy": np.__version__},
        threads={
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "torch.get_num_threads": torch.get_num_threads(),
            "flush_denormal": flush,
        },
        validation_accuracy_per_epoch=accuracies,
    )


def _print_epoch(epoch_seconds, accuracies, train_accuracy=None):
    print(
        "epoch %d: %.1f s,%s validation accuracy %.4f"
        % (
            len(epoch_seconds),
            epoch_seconds[-1],
            "" if train_accuracy is None else " training accuracy %.4f," % train_accuracy,
            accuracies[-1],
        ),
        flush=True,
    )
