"""Helpers for the conformance suite: AWS's own MXNet test resources run through ProcessSession.

The scripts and models are read from ``../shared/conformance`` (never copied into the
project). Every ``train`` channel is a slice of the 10,000 MNIST test images in
``sdk-mxnet-mnist/test``, written under the names the scripts look for
(``images.gz``, ``labels.gz``).
"""

import gzip
import os
import struct

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFORMANCE = os.environ.get("SMGLUON_CONFORMANCE",
                             os.path.join(os.path.dirname(REPO), "shared", "conformance"))
SDK_MNIST = os.path.join(CONFORMANCE, "sdk-mxnet-mnist")
INFERENCE = os.path.join(CONFORMANCE, "inference-toolkit")
TRAINING = os.path.join(CONFORMANCE, "training-toolkit")
ROLE = "arn:aws:iam::111111111111:role/SageMakerRole"
FRAMEWORK = {"framework_version": "1.9.0", "py_version": "py38"}
# Enough images for the scripts' default batch size of 100 and a few batches per epoch.
N_TRAIN, N_TEST = 1000, 200


def require_fixtures():
    if not os.path.isdir(SDK_MNIST):
        raise RuntimeError("conformance fixtures not found at %s: set SMGLUON_CONFORMANCE to the folder "
                           "holding sdk-mxnet-mnist/, inference-toolkit/ and training-toolkit/" % CONFORMANCE)


def write_mnist_channel(directory, start, stop):
    """Writes images ``[start, stop)`` of sdk-mxnet-mnist/test as ``images.gz``/``labels.gz`` in ``directory``."""
    require_fixtures()
    with gzip.open(os.path.join(SDK_MNIST, "test", "labels.gz")) as f:
        struct.unpack(">II", f.read(8))
        labels = f.read()
    with gzip.open(os.path.join(SDK_MNIST, "test", "images.gz")) as f:
        _, _, rows, cols = struct.unpack(">IIII", f.read(16))
        images = f.read()
    n = stop - start
    os.makedirs(directory, exist_ok=True)
    with gzip.open(os.path.join(directory, "labels.gz"), "wb") as f:
        f.write(struct.pack(">II", 2049, n) + labels[start:stop])
    with gzip.open(os.path.join(directory, "images.gz"), "wb") as f:
        f.write(struct.pack(">IIII", 2051, n, rows, cols) + images[start * rows * cols:stop * rows * cols])
    return directory


def module_forward(model_dir, batch):
    """Scores of the Module checkpoint ``model_dir/model-*`` for ``batch``, computed in this process.

    What the toolkit's default handler does (``load_checkpoint``, a Module bound for
    inference with no label), so an endpoint's answer can be checked against it.
    """
    import mxnet as mx
    import numpy as np

    sym, args, aux = mx.model.load_checkpoint(os.path.join(model_dir, "model"), 0)
    batch = np.asarray(batch, dtype="float32")
    module = mx.mod.Module(sym, data_names=["data"], label_names=None, context=mx.cpu())
    module.bind(data_shapes=[("data", batch.shape)], for_training=False)
    module.set_params(args, aux, allow_missing=True)
    module.forward(mx.io.DataBatch([mx.nd.array(batch)]), is_train=False)
    return module.get_outputs()[0].asnumpy()
