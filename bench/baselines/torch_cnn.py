"""Baseline: PyTorch (CPU) on the workshop CNN, same batch, optimizer and data, written the fast way.

Conv2d(1, 20, 5) → ReLU → MaxPool2d(2) → Conv2d(20, 50, 5) → ReLU → MaxPool2d(2)
→ Flatten → Linear(800, 512) → ReLU → Linear(512, 10); PyTorch's default
initialisation; ``CrossEntropyLoss``, SGD lr 0.1 momentum 0.9, batch 100. The
whole data set as one float tensor scaled to [0, 1], batches sliced from a
shuffled copy each epoch (no DataLoader), running loss/accuracy kept as tensors.
Threads: PyTorch's default (the number of cores) unless ``OMP_NUM_THREADS`` is
set; ``TORCH_FLUSH_DENORMAL=1`` turns on ``torch.set_flush_denormal(True)``.
"""


def main():
    from bench import _common
    from bench.baselines import _loops

    args = _common.runner_args(__doc__.splitlines()[0])
    import numpy as np
    from torch import nn

    (x_train, y_train), (x_test, y_test) = (_common.load_split(args.data, s) for s in ("train", "test"))

    def images(x):
        return (x.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)

    def net():
        return nn.Sequential(
            nn.Conv2d(1, 20, 5),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(20, 50, 5),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Flatten(),
            nn.Linear(800, 512),
            nn.ReLU(),
            nn.Linear(512, 10),
        )

    _loops.torch_fast(args, net, images(x_train), y_train, images(x_test), y_test)


if __name__ == "__main__":
    main()
