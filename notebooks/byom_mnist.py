"""The BYOM document's ``mnist.py``: a symbolic MLP trained with the Module API, and no ``model_fn``.

Deployed with ``MXNetModel(model_data=..., entry_point="byom_mnist.py")``, the serving
container finds no ``model_fn`` or ``transform_fn`` here and serves the checkpoint in
model.tar.gz with its default Module handler. ``train`` takes the dictionary
``mx.test_utils.get_mnist()`` returns (``train_data`` N x 1 x 28 x 28 on the 0-1 scale,
``train_label``, ``test_data``, ``test_label``). One change from the document: ``fit`` starts
from Xavier initialisation instead of its default ``Uniform(0.01)``, from which this
three-layer net stays at chance level for the few epochs a notebook or test can afford.
"""

import logging

import mxnet as mx


def build_graph():
    data = mx.sym.var("data")
    data = mx.sym.flatten(data=data)
    fc1 = mx.sym.FullyConnected(data=data, num_hidden=128)
    act1 = mx.sym.Activation(data=fc1, act_type="relu")
    fc2 = mx.sym.FullyConnected(data=act1, num_hidden=64)
    act2 = mx.sym.Activation(data=fc2, act_type="relu")
    fc3 = mx.sym.FullyConnected(data=act2, num_hidden=10)
    return mx.sym.SoftmaxOutput(data=fc3, name="softmax")


def get_train_context(num_cpus, num_gpus):
    if num_gpus > 0:
        return mx.gpu()
    return mx.cpu()


def train(
    data,
    hyperparameters={"learning_rate": 0.11},  # noqa: B006 (the document's signature; never mutated)
    num_cpus=0,
    num_gpus=1,
    num_epoch=10,
    **kwargs,
):
    train_labels = data["train_label"]
    train_images = data["train_data"]
    test_labels = data["test_label"]
    test_images = data["test_data"]
    batch_size = 100
    train_iter = mx.io.NDArrayIter(train_images, train_labels, batch_size, shuffle=True)
    val_iter = mx.io.NDArrayIter(test_images, test_labels, batch_size)
    logging.getLogger().setLevel(logging.DEBUG)
    mlp_model = mx.mod.Module(symbol=build_graph(), context=get_train_context(num_cpus, num_gpus))
    mlp_model.fit(
        train_iter,
        eval_data=val_iter,
        optimizer="sgd",
        optimizer_params={"learning_rate": float(hyperparameters.get("learning_rate", 0.1))},
        eval_metric="acc",
        initializer=mx.init.Xavier(magnitude=2.24),
        batch_end_callback=mx.callback.Speedometer(batch_size, 100),
        num_epoch=num_epoch,
    )
    return mlp_model
