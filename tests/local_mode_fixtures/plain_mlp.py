"""A plain script-mode MXNet Gluon entry point that does not import smgluon.

Trains a small MLP on IDX files from the ``train`` channel and serves it with
``model_fn`` (the default Gluon handler does the JSON in and out).
"""

import argparse
import gzip
import json
import os
import struct

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from mxnet.gluon import nn


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def build():
    net = nn.HybridSequential()
    net.add(nn.Dense(64, activation="relu"), nn.Dense(10))
    return net


def train(args):
    x = read_idx(os.path.join(args.train, "train-images-idx3-ubyte.gz")).reshape(-1, 784).astype("float32") / 255
    y = read_idx(os.path.join(args.train, "train-labels-idx1-ubyte.gz")).astype("float32")
    net = build()
    net.initialize(mx.init.Xavier())
    net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": args.learning_rate, "momentum": 0.9})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    data, label = mx.nd.array(x), mx.nd.array(y)
    for epoch in range(args.epochs):
        for i in range(0, len(x), args.batch_size):
            xb, yb = data[i:i + args.batch_size], label[i:i + args.batch_size]
            with autograd.record():
                loss = loss_fn(net(xb), yb)
            loss.backward()
            trainer.step(xb.shape[0])
        acc = (net(data).argmax(axis=1) == label).mean().asscalar()
        print("epoch=%d train_accuracy=%.4f" % (epoch, acc))
    net.export(os.path.join(args.model_dir, "model"))
    with open(os.path.join(args.model_dir, "accuracy.json"), "w") as f:
        json.dump({"train_accuracy": float(acc)}, f)


def model_fn(model_dir):
    return gluon.SymbolBlock.imports(os.path.join(model_dir, "model-symbol.json"), ["data"],
                                     os.path.join(model_dir, "model-0000.params"))


def parse_args(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", "--batch_size", type=int, default=100)
    p.add_argument("--learning-rate", "--learning_rate", type=float, default=0.1)
    p.add_argument("--model-dir", "--model_dir", default=os.environ.get("SM_MODEL_DIR"))
    p.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    return p.parse_args(argv)


def main(argv=None):
    train(parse_args(argv))


if __name__ == "__main__":
    main()
