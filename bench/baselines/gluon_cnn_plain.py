"""Baseline: a straightforward Gluon version of the workshop CNN, as the workshop's lab 2-2 script trains it.

Conv2D(20, 5, relu) → MaxPool(2, 2) → Conv2D(50, 5, relu) → MaxPool(2, 2) →
Flatten → Dense(512, relu) → Dense(10) in an ``nn.Sequential`` that is not
hybridized; Xavier (magnitude 2.24) initialisation, SGD lr 0.1 momentum 0.9,
batch 100; ``gluon.data.DataLoader`` over the uint8 images with the per-sample
transform of AWS's Gluon MNIST script, shaped for a CNN (HWC uint8 → CHW float32
/ 255), shuffled; ``mx.metric.Accuracy`` updated every batch (a sync per batch),
and the validation accuracy measured on the 10,000 test images after each epoch.

This is the code a workshop attendee runs; it also checks that our entry point
with the workshop's settings (``fmnist_cnn.WORKSHOP``) learns as the workshop's
script does.
"""


def main():
    from bench import _common
    from bench.baselines import _loops

    args = _common.runner_args(__doc__.splitlines()[0])
    import mxnet as mx
    import numpy as np
    from mxnet import gluon
    from mxnet.gluon import nn

    mx.random.seed(args.seed)
    np.random.seed(args.seed)
    (x_train, y_train), (x_test, y_test) = (_common.load_split(args.data, s) for s in ("train", "test"))

    def input_transformer(data, label):  # HWC uint8 → CHW float32 in [0, 1]
        data = mx.nd.transpose(data.astype(np.float32), (2, 0, 1)) / 255
        return data, label

    def dataset(x, y):
        images = mx.nd.array(x.reshape(-1, 28, 28, 1), dtype=np.uint8)
        return gluon.data.ArrayDataset(images, y.astype(np.int32)).transform(input_transformer)

    train_data = gluon.data.DataLoader(
        dataset(x_train, y_train), batch_size=args.batch_size, shuffle=True, last_batch="discard"
    )
    val_data = gluon.data.DataLoader(dataset(x_test, y_test), batch_size=args.batch_size, shuffle=False)

    net = nn.Sequential()
    with net.name_scope():
        net.add(nn.Conv2D(channels=20, kernel_size=5, activation="relu"))
        net.add(nn.MaxPool2D(pool_size=2, strides=2))
        net.add(nn.Conv2D(channels=50, kernel_size=5, activation="relu"))
        net.add(nn.MaxPool2D(pool_size=2, strides=2))
        net.add(nn.Flatten())
        net.add(nn.Dense(512, activation="relu"))
        net.add(nn.Dense(10))
    _loops.gluon_plain(args, net, train_data, val_data)


if __name__ == "__main__":
    main()
