"""Models brought from elsewhere, built from real data for the BYOM tests (no downloads).

* the BYOM document's Module MLP (``local_mode_fixtures/byom_mnist.py``) trained on MNIST test images;
* a model-zoo architecture initialised with a fixed seed and saved the model zoo's way
  (``Name-symbol.json``, ``Name-0126.params``, a 1,000-line ``synset.txt``);
* fmnist_cnn trained briefly on MNIST, exported the same way with its 10 labels;
* pictures (JPEG/PNG of several sizes and colour modes) made from MNIST digits, and the
  lab's in-process classification of them (decode, resize, crop, reorder, one Module forward).
"""

import collections
import importlib.util
import io
import os

import mxnet as mx
import numpy as np
from conftest import REPO, mnist_arrays
from PIL import Image

BYOM_SCRIPT = os.path.join(REPO, "notebooks", "byom_mnist.py")  # the notebook's script
ZOO_EPOCH = 126
ZOO_SHAPE = (1, 3, 224, 224)
# how Gluon's model-zoo nets take pictures: RGB on the 0-1 scale, ImageNet's statistics, 256 then a 224 crop
ZOO_OPTIONS = {"scale": 1 / 255.0, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "resize": 256}


def load_byom_script():
    spec = importlib.util.spec_from_file_location("byom_mnist", BYOM_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mnist_dict(n_train=3000, n_test=1000):
    """What ``mx.test_utils.get_mnist()`` returns, from slices of the real MNIST test set."""
    x, y = mnist_arrays()
    x = x.reshape(-1, 1, 28, 28).astype(np.float32) / 255
    return {
        "train_data": x[:n_train],
        "train_label": y[:n_train].astype(np.float32),
        "test_data": x[n_train : n_train + n_test],
        "test_label": y[n_train : n_train + n_test].astype(np.float32),
    }


def train_byom_module(epochs=2, seed=0):
    """The document's Module MLP, trained on the CPU."""
    mx.random.seed(seed)
    np.random.seed(seed)
    return load_byom_script().train(mnist_dict(), num_gpus=0, num_epoch=epochs)


def zoo_checkpoint(directory, name="resnet18_v1", file_name=None, seed=0):
    """A Gluon model-zoo architecture with seeded random weights, saved as ``<Name>-symbol.json``/``-0126.params``.

    He (MSRA) initialisation keeps resnet18_v1's logits apart for different pictures; with
    Xavier, or in MobileNets, they shrink towards zero and the top classes are rounding noise.

    Returns:
        tuple(str, str): the checkpoint prefix and the path of a 1,000-line synset.
    """
    from mxnet.gluon.model_zoo import vision

    mx.random.seed(seed)
    net = vision.get_model(name)
    net.initialize(mx.init.MSRAPrelu())
    net.hybridize()
    net(mx.nd.zeros((1, 3, 224, 224)))
    prefix = os.path.join(directory, file_name or name)
    net.export(prefix, epoch=ZOO_EPOCH)
    synset = os.path.join(directory, "synset.txt")
    with open(synset, "w") as f:
        f.writelines("n%08d class %d, label %d\n" % (4000000 + i, i, i) for i in range(1000))
    return prefix, synset


def fmnist_checkpoint(directory, mnist_dirs):
    """fmnist_cnn trained on 2,000 MNIST images for one epoch, saved as ``fmnist_cnn-*`` with its 10 labels."""
    import fmnist_cnn

    hps = {"epochs": 1, "max_train_samples": 2000, "classes": "mnist", "log_interval": 0}
    net = fmnist_cnn.train({"training": mnist_dirs["training"]}, hps, ["local"], 0)
    prefix = os.path.join(directory, "fmnist_cnn")
    net(mx.nd.zeros((1, 1, 28, 28)))
    net.export(prefix, epoch=ZOO_EPOCH)
    synset = os.path.join(directory, "synset.txt")
    with open(synset, "w") as f:
        f.write("\n".join(fmnist_cnn.CLASS_NAMES["mnist"]) + "\n")
    return prefix, synset


def encode(array, fmt, **kwargs):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt, **kwargs)
    return buf.getvalue()


def digit_picture(index, width, height, mode="RGB"):
    """An MNIST test digit scaled onto a ``width`` x ``height`` picture, coloured, in a PIL ``mode`` (or "I;16")."""
    x, _ = mnist_arrays()
    digit = Image.fromarray(x[index]).resize((min(width, height),) * 2, Image.BILINEAR)
    canvas = Image.new("L", (width, height))
    canvas.paste(digit, ((width - digit.width) // 2, (height - digit.height) // 2))
    grey = np.asarray(canvas)
    ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :].repeat(height, 0)
    rgb = np.stack([grey, (255 - grey) * (ramp / 255), ramp], axis=2).astype(np.uint8)
    if mode == "I;16":  # 16-bit grey (PNG)
        return Image.fromarray(np.asarray(Image.fromarray(rgb).convert("L")).astype(np.uint16) * 257)
    return Image.fromarray(rgb).convert(mode)


def picture_bytes(picture, fmt, **kwargs):
    buf = io.BytesIO()
    picture.save(buf, fmt, **kwargs)
    return buf.getvalue()


def lab_scores(prefix, epoch, data, input_shape, scale=1.0, mean=0.0, std=1.0, resize=None, bgr=False):
    """The lab's in-process classification: decode, resize the shorter side, crop the centre, reorder, forward.

    Returns:
        numpy.ndarray: the Module's output for the one picture, (classes,).
    """
    channels, height, width = input_shape[1:]
    image = mx.image.imdecode(data, flag=1 if channels == 3 else 0, to_rgb=True)
    image = mx.image.resize_short(image, resize or max(height, width), interp=1)
    image, _ = mx.image.center_crop(image, (width, height), interp=1)
    array = image.asnumpy().astype(np.float32)
    if bgr:
        array = array[:, :, ::-1]
    array = (array * scale - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    array = np.swapaxes(np.swapaxes(array, 0, 2), 1, 2)[np.newaxis, :]  # as the lab: HWC -> CHW, batch of one
    sym, arg_params, aux_params = mx.model.load_checkpoint(prefix, epoch)
    mod = mx.mod.Module(symbol=sym, label_names=None)
    mod.bind(for_training=False, data_shapes=[("data", tuple(input_shape))])
    mod.set_params(arg_params, aux_params)
    mod.forward(collections.namedtuple("Batch", ["data"])([mx.nd.array(array)]))
    return np.squeeze(mod.get_outputs()[0].asnumpy())
