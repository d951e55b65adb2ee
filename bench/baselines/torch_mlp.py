"""Baseline: PyTorch (CPU) on the same MLP, batch, optimizer and data, written the fast way.

Whole data set as tensors, batches sliced from a shuffled copy each epoch (no
DataLoader), ``nn.Sequential`` of Linear/ReLU, ``CrossEntropyLoss``, SGD lr 0.1
momentum 0.9, running loss/accuracy sums kept as tensors. Threads: PyTorch's
default (``torch.get_num_threads()``, the number of cores) unless
``OMP_NUM_THREADS`` is set. ``TORCH_FLUSH_DENORMAL=1`` turns on
``torch.set_flush_denormal(True)`` (flush-to-zero: SGD momentum of dead units
decays into denormal floats, which are slow on x86).
"""

import os
import time


def main():
    from bench import _common

    args = _common.runner_args(__doc__.splitlines()[0])
    import numpy as np
    import torch
    from torch import nn

    flush = os.environ.get("TORCH_FLUSH_DENORMAL") == "1"
    if flush:
        torch.set_flush_denormal(True)
    torch.manual_seed(42)
    rng = np.random.RandomState(42)
    (x_train, y_train), (x_test, y_test) = (_common.load_split(args.data, s) for s in ("train", "test"))
    x_train = torch.from_numpy(x_train.astype(np.float32) / 255.0)
    y_train = torch.from_numpy(y_train)
    x_test = torch.from_numpy(x_test.astype(np.float32) / 255.0)
    y_test = torch.from_numpy(y_test)

    net = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
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
            accuracies.append(float((net(x_test).argmax(1) == y_test).float().mean()))
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


if __name__ == "__main__":
    main()
