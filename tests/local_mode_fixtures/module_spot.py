"""A Module API training script written the way AWS's managed spot MXNet example is.

It saves a checkpoint every epoch with ``mx.callback.module_checkpoint`` into
/opt/ml/checkpoints (symbol, parameters and optimizer states) and, when it
starts, resumes from the newest one with ``Module.load(...,
load_optimizer_states=True)`` and ``fit(begin_epoch=...)``. The callback writes
under the final names, so a reclaim during a save can leave a truncated file:
unlike the example, this script falls back to the previous epoch when the
newest checkpoint does not load.
"""

import argparse
import gzip
import logging
import os
import re
import time

import mxnet as mx
import numpy as np

CHECKPOINTS_DIR = "/opt/ml/checkpoints"
PREFIX = os.path.join(CHECKPOINTS_DIR, "mnist")


def read_idx(path):
    with gzip.open(path) as f:
        data = f.read()
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load(directory, kind):
    images = read_idx(os.path.join(directory, "%s-images-idx3-ubyte.gz" % kind)).reshape(-1, 784) / 255.0
    labels = read_idx(os.path.join(directory, "%s-labels-idx1-ubyte.gz" % kind))
    return images.astype(np.float32), labels.astype(np.float32)


def network():
    data = mx.sym.var("data")
    hidden = mx.sym.Activation(mx.sym.FullyConnected(data, num_hidden=64), act_type="relu")
    return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(hidden, num_hidden=10), name="softmax")


def resume():
    epochs = sorted(
        (int(m.group(1)) for m in map(re.compile(r"^mnist-(\d+)\.params$").match, os.listdir(CHECKPOINTS_DIR)) if m),
        reverse=True,
    )
    for epoch in epochs:
        try:
            module = mx.mod.Module.load(PREFIX, epoch, load_optimizer_states=True, context=mx.cpu())
        except Exception as e:  # a save cut short by the reclaim
            logging.warning("checkpoint %d does not load (%s); trying the one before", epoch, e)
            continue
        logging.info("Resuming from epoch %d", epoch)
        return module, epoch
    return mx.mod.Module(network(), context=mx.cpu()), 0


def main():
    logging.basicConfig(level=logging.INFO)
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--test", default=os.environ.get("SM_CHANNEL_TEST"))
    parser.add_argument("--epoch-pause", type=float, default=0.0, help="seconds to wait after each epoch")
    args = parser.parse_args()
    mx.random.seed(7)
    np.random.seed(7)
    train = mx.io.NDArrayIter(*load(args.train, "train"), batch_size=100, shuffle=True)
    test = mx.io.NDArrayIter(*load(args.test, "t10k"), batch_size=100)
    module, begin = resume()
    module.fit(
        train,
        eval_data=test,
        num_epoch=args.epochs,
        begin_epoch=begin,
        optimizer="sgd",
        optimizer_params={"learning_rate": 0.1, "momentum": 0.9},
        eval_metric="acc",
        epoch_end_callback=[
            mx.callback.module_checkpoint(module, PREFIX, save_optimizer_states=True),
            lambda *_: time.sleep(args.epoch_pause),  # stands in for a longer epoch
        ],
    )
    print("validation accuracy %.4f" % module.score(test, "acc")[0][1], flush=True)
    module.save_checkpoint(os.path.join(os.environ["SM_MODEL_DIR"], "model"), 0)


if __name__ == "__main__":
    main()
