"""Baseline: a straightforward Gluon MLP in the style of AWS's public Gluon MNIST script.

Same net (Dense(128, relu) → Dense(64, relu) → Dense(10)), SGD lr 0.1 momentum
0.9, batch 100. ``gluon.data.DataLoader`` over an ``ArrayDataset`` (shuffled,
per-sample batching in Python), an ``nn.Sequential`` that is not hybridized, and
``mx.metric.Accuracy`` updated every batch (which reads the outputs back, a sync
per batch).

``--style aws`` (default) feeds the data as AWS's script does: uint8 images as an
NDArray dataset with its ``input_transformer`` (reshape, astype float32, / 255)
applied per sample — what ``gluon.data.vision.MNIST(..., transform=...)`` does,
without its download step. ``--style prescaled`` scales the whole array to
float32 once up front (a kinder baseline: the DataLoader still batches per
sample). Both initialise with Xavier like our entry point (AWS's script uses
Normal(1)), so the accuracies compare.
"""


def main():
    from bench import _common
    from bench.baselines import _loops

    args = _common.runner_args(__doc__.splitlines()[0], style=True)
    import mxnet as mx
    import numpy as np
    from mxnet import gluon
    from mxnet.gluon import nn

    mx.random.seed(args.seed)
    np.random.seed(args.seed)
    (x_train, y_train), (x_test, y_test) = (_common.load_split(args.data, s) for s in ("train", "test"))

    def input_transformer(data, label):  # AWS's script, verbatim
        data = data.reshape((-1,)).astype(np.float32) / 255
        return data, label

    def dataset(x, y):
        if args.style == "aws":
            images = mx.nd.array(x.reshape(-1, 28, 28, 1), dtype=np.uint8)
            return gluon.data.ArrayDataset(images, y.astype(np.int32)).transform(input_transformer)
        return gluon.data.ArrayDataset((x / 255.0).astype(np.float32), y.astype(np.float32))

    train_data = gluon.data.DataLoader(
        dataset(x_train, y_train), batch_size=args.batch_size, shuffle=True, last_batch="rollover"
    )
    val_data = gluon.data.DataLoader(dataset(x_test, y_test), batch_size=args.batch_size, shuffle=False)

    net = nn.Sequential()
    with net.name_scope():
        net.add(nn.Dense(128, activation="relu"))
        net.add(nn.Dense(64, activation="relu"))
        net.add(nn.Dense(10))
    _loops.gluon_plain(args, net, train_data, val_data, step_size=args.batch_size)


if __name__ == "__main__":
    main()
