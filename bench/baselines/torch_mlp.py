"""Baseline: PyTorch (CPU) on the same MLP, batch, optimizer and data, written the fast way.

Whole data set as tensors, batches sliced from a shuffled copy each epoch (no
DataLoader), ``nn.Sequential`` of Linear/ReLU, ``CrossEntropyLoss``, SGD lr 0.1
momentum 0.9, running loss/accuracy sums kept as tensors. Threads: PyTorch's
default (``torch.get_num_threads()``, the number of cores) unless
``OMP_NUM_THREADS`` is set. ``TORCH_FLUSH_DENORMAL=1`` turns on
``torch.set_flush_denormal(True)`` (flush-to-zero: SGD momentum of dead units
decays into denormal floats, which are slow on x86).
"""


def main():
    from bench import _common
    from bench.baselines import _loops

    args = _common.runner_args(__doc__.splitlines()[0])
    import numpy as np
    from torch import nn

    (x_train, y_train), (x_test, y_test) = (_common.load_split(args.data, s) for s in ("train", "test"))

    def images(x):
        return (x.astype(np.float32) / 255.0).reshape(-1, 784)

    def net():
        return nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))

    _loops.torch_fast(args, net, images(x_train), y_train, images(x_test), y_test)


if __name__ == "__main__":
    main()
