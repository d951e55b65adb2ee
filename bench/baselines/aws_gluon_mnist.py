"""Baseline for bench/serving.py: the hosting half of AWS's public Gluon MNIST example.

Source: the ``mxnet_gluon_mnist`` example's entry point ``mnist.py`` in
https://github.com/aws/amazon-sagemaker-examples (sagemaker-python-sdk/mxnet_gluon_mnist/mnist.py),
also shipped with the SageMaker Python SDK's examples.
Copyright Amazon.com, Inc. or its affiliates. Licensed under the Apache License,
Version 2.0 (http://www.apache.org/licenses/LICENSE-2.0).

There is no internet on the machines this benchmark runs on, so this file was
written from what that example does rather than copied: the same network
(``define_network``: Dense(128, relu) → Dense(64, relu) → Dense(10) in an
``nn.Sequential``), a ``save`` that writes ``model.params``, a ``model_fn`` that
builds the same MLP and loads ``model.params`` into it (not hybridized), and a
``transform_fn`` that does ``json.loads`` → ``mx.nd.array`` → ``net(...)`` →
``argmax`` → ``json.dumps`` with no input validation. The per-request path,
which is what the benchmark measures, follows the example line by line. The
training half (``train``, ``gluon.data.vision.MNIST`` loaders) is left out:
bench/serving.py fits the net itself and saves it with :func:`save`, and
bench/baselines/gluon_mlp_plain.py covers the example's training loop.

Changes for MXNet 1.9: none on the request path. ``save_params``/``load_params``
(the example's calls, deprecated aliases in 1.9) still work and are used as-is.
"""

import json
import warnings

import mxnet as mx
from mxnet import gluon, nd  # noqa: F401 - as in the example
from mxnet.gluon import nn

# ------------------------------------------------------------ #
# Training methods                                             #
# ------------------------------------------------------------ #


def define_network():
    net = nn.Sequential()
    with net.name_scope():
        net.add(nn.Dense(128, activation="relu"))
        net.add(nn.Dense(64, activation="relu"))
        net.add(nn.Dense(10))
    return net


def save(net, model_dir):
    # save the model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "save_params is deprecated" (MXNet >= 1.3)
        net.save_params("%s/model.params" % model_dir)


# ------------------------------------------------------------ #
# Hosting methods                                              #
# ------------------------------------------------------------ #


def model_fn(model_dir):
    """
    Load the gluon model. Called once when hosting service starts.

    :param: model_dir The directory where model files are stored.
    :return: a model (in this case a Gluon network)
    """
    net = define_network()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "load_params is deprecated" (MXNet >= 1.3)
        net.load_params("%s/model.params" % model_dir, ctx=mx.cpu())
    return net


def transform_fn(net, data, input_content_type, output_content_type):
    """
    Transform a request using the Gluon model. Called once per request.

    :param net: The Gluon model.
    :param data: The request payload.
    :param input_content_type: The request content type.
    :param output_content_type: The (desired) response content type.
    :return: response payload and content type.
    """
    # we can use content types to vary input/output handling, but
    # here we just assume json for both
    parsed = json.loads(data)
    nda = mx.nd.array(parsed)
    output = net(nda)
    prediction = mx.nd.argmax(output, axis=1)
    response_body = json.dumps(prediction.asnumpy().tolist()[0])
    return response_body, output_content_type
