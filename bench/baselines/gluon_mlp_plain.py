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

import os
import time


def main():
    from bench import _common

    args = _common.runner_args(__doc__.splitlines()[0], style=True)
    import mxnet as mx
    import numpy as np
    from mxnet import autograd, gluon
    from mxnet.gluon import nn

    mx.random.seed(42)
    np.random.seed(42)
    ctx = mx.cpu()
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
    net.initialize(mx.init.Xavier(magnitude=2.24), ctx=ctx)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1, "momentum": 0.9})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    metric = mx.metric.Accuracy()

    def evaluate():
        acc = mx.metric.Accuracy()
        for data, label in val_data:
            acc.update([label.as_in_context(ctx)], [net(data.as_in_context(ctx))])
        return acc.get()[1]

    epoch_seconds, cpu_epoch_seconds, samples, accuracies = [], [], 0, []
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
            trainer.step(args.batch_size)
            metric.update([label], [output])
            samples += data.shape[0]
        epoch_seconds.append(time.time() - tic)
        cpu_epoch_seconds.append(_common.cpu_seconds() - cpu)
        accuracies.append(evaluate())
    _common.write_record(
        args.json_out,
        epoch_seconds,
        samples,
        accuracies[-1],
        cpu_epoch_seconds=cpu_epoch_seconds,
        versions={"mxnet": mx.__version__, "numpy": np.__version__},
        threads={k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MXNET_ENGINE_TYPE")},
        style=args.style,
        validation_accuracy_per_epoch=accuracies,
    )


if __name__ == "__main__":
    main()
