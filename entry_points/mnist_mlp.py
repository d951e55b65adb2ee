"""MNIST (or Fashion-MNIST) multilayer perceptron: the workshop's first lab, trained and served.

Net: Dense(128, relu) → Dense(64, relu) → Dense(10), SGD with momentum.

Three ways to run it:

* notebook: ``import mnist_mlp; net = mnist_mlp.train({"training": "data/"},
  hyperparameters={"epochs": 2}, hosts=["local"], num_gpus=0)``;
* script mode: ``MXNet(entry_point="mnist_mlp.py", source_dir="entry_points",
  dependencies=["lib/smgluon"], ...)``, or ``python mnist_mlp.py --epochs 2 --train DIR --test DIR``;
* a hyperparameter tuning job: the ranges are in :data:`HYPERPARAMETERS`, the
  regexes in :data:`METRIC_DEFINITIONS`, the objective in :data:`OBJECTIVE`.

Data: IDX files (``train-images-idx3-ubyte.gz`` ...) in a ``train`` + ``test``
channel or one ``training`` channel holding both.

Serving (``model_fn`` / ``transform_fn``): images are raw pixels on the IDX
scale, **0–255** (0 is background); the net divides by 255 itself, so the
exported model-symbol.json takes the same raw pixels. Requests:

* ``application/json``: one image (784 numbers or 28×28), a batch (N×784 or
  N×28×28), or ``{"instances": [...], "probabilities": true}``;
* ``application/x-npy``: the same shapes as a NumPy array;
* ``text/csv``: one image per line, 784 values.

Answer (``application/json``): ``{"predictions": [7, 2, ...]}``, plus
``"probabilities"`` (N×10) when asked for in the JSON body or with
``Accept: application/json; probabilities=true``.
"""

import json
import logging
import os
import time

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from mxnet.gluon import nn

from smgluon import (
    channels,
    checkpoints,
    context,
    cpu_speed,
    distributed,
    export,
    failure,
    kvstore,
    metrics,
    script,
    serving,
    training,
)
from smgluon.hyperparameters import Hyperparameter as HP
from smgluon.hyperparameters import Hyperparameters

logger = logging.getLogger(__name__)

NUM_CLASSES = 10
IMAGE_SIZE = 28 * 28
MAX_PIXEL = 255.0
EVAL_BATCH = 5000  # evaluation runs in a few large batches: fewer Python calls

HYPERPARAMETERS = Hyperparameters(
    [
        HP("batch_size", int, 100, "mini-batch size per worker", min=1, max=60000, tune=[32, 64, 100, 128, 256]),
        HP("epochs", int, 10, "passes over the training data", min=1, max=1000),
        HP("learning_rate", float, 0.1, "learning rate", min=1e-6, max=10.0, tune=(0.001, 0.5, "Logarithmic")),
        HP("momentum", float, 0.9, "momentum (sgd and nag)", min=0.0, max=0.999, tune=(0.0, 0.99)),
        HP(
            "optimizer", str, "sgd", "optimizer", choices=["sgd", "nag", "adam", "rmsprop"], tune=["sgd", "nag", "adam"]
        ),
        HP("weight_decay", float, 0.0, "L2 weight decay", min=0.0, max=1.0),
        HP("log_interval", int, 100, "log the training loss every N batches (0: once per epoch)", min=0),
        HP("max_train_samples", int, 0, "train on the first N samples only (0: all)", min=0),
        HP("max_eval_samples", int, 0, "evaluate on the first N samples only (0: all)", min=0),
        HP("seed", int, 42, "random seed for initialisation and shuffling", min=0),
        kvstore.HYPERPARAMETER,
    ],
    description="Train the workshop's MLP on MNIST or Fashion-MNIST IDX files.",
)

# Logged every epoch by smgluon.metrics; what a tuning job or metric_definitions reads.
METRIC_NAMES = ["train_loss", "train_accuracy", "validation_accuracy", "samples_per_sec", "epoch_seconds"]
METRIC_DEFINITIONS = metrics.metric_definitions(METRIC_NAMES)
OBJECTIVE = {"metric": "validation_accuracy", "type": "Maximize"}


# ---------------------------------------------------------------- the network


class MLP(gluon.HybridBlock):
    """The workshop MLP; takes raw 0–255 pixels of any dtype and scales them in the graph."""

    def __init__(self, hidden=(128, 64), num_classes=NUM_CLASSES, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.body = nn.HybridSequential()
            for units in hidden:
                self.body.add(nn.Dense(units, activation="relu"))
            self.body.add(nn.Dense(num_classes))

    def hybrid_forward(self, F, x):
        # Scaling inside the graph: uint8 batches train without a float copy of the
        # data set, and the exported symbol takes the same pixels as every client.
        return self.body(F.cast(x, "float32") * (1.0 / MAX_PIXEL))


def build_net(ctx, seed):
    mx.random.seed(seed)
    net = MLP()
    net.initialize(mx.init.Xavier(magnitude=2.24), ctx=ctx)
    net.hybridize(static_alloc=True, static_shape=True)
    return net


# ---------------------------------------------------------------- data


def load_data(channel_dirs, hps):
    """Reads the IDX files and keeps them as uint8 NDArrays (N, 784) on the CPU."""
    (x_train, y_train), test = channels.load_idx_channels(channel_dirs, NUM_CLASSES)
    if hps["max_train_samples"]:
        x_train, y_train = x_train[: hps["max_train_samples"]], y_train[: hps["max_train_samples"]]
    if test is not None and hps["max_eval_samples"]:
        test = (test[0][: hps["max_eval_samples"]], test[1][: hps["max_eval_samples"]])
    if len(x_train) < hps["batch_size"]:
        raise channels.ChannelError(
            "only %d training samples for batch_size %d: lower batch_size or add data"
            % (len(x_train), hps["batch_size"])
        )

    def as_nd(x, y):
        return mx.nd.array(x.reshape(len(x), -1), dtype=np.uint8), mx.nd.array(y, dtype=np.float32)

    return as_nd(x_train, y_train), (as_nd(*test) if test is not None else None)


# ---------------------------------------------------------------- train / evaluate


def evaluate(net, x, y, ctx):
    """Accuracy of ``net`` on (x, y)."""
    return training.count_correct(net, x, y, ctx, EVAL_BATCH) / len(x)


def train(channel_input_dirs, hyperparameters, hosts, num_gpus, **kwargs):
    """Trains the MLP; the signature of the legacy SageMaker ``train`` hook the workshop calls.

    Args:
        channel_input_dirs (dict): channel name → directory (``{"training": "data/"}``).
        hyperparameters (dict): values as Python objects or SageMaker's JSON-encoded strings.
        hosts (list[str]): the job's hosts (``["local"]`` in a notebook).
        num_gpus (int): GPUs to train on (0: CPU).
        **kwargs: ``current_host``, ``output_data_dir`` (for metrics.json),
            ``checkpoint_dir`` (resume and save per epoch).

    Returns:
        MLP: the trained, hybridized net.

    Training runs with denormal floats flushed to zero (:func:`smgluon.cpu_speed.flush_denormals`).
    """
    hps = HYPERPARAMETERS.parse_dict(hyperparameters)
    with cpu_speed.flush_denormals():
        return _train(hps, channel_input_dirs, hosts, num_gpus, **kwargs)


def _train(hps, channel_input_dirs, hosts, num_gpus, **kwargs):
    ctx = context.contexts(num_gpus)
    kv = training.create_kvstore(hosts, num_gpus, hps["kvstore"])
    workers = distributed.Workers(kv)
    (x_train, y_train), test = load_data(channel_input_dirs, hps)
    # Each worker trains on its shard (a new one each epoch) and evaluates its slice of the
    # test set; the metrics are summed over the workers.
    batch_size = hps["batch_size"]
    sampler, num_batches = distributed.training_plan(workers, len(x_train), hps["seed"], batch_size)
    if test is not None:
        test = distributed.evaluation_shard(test, workers)

    net = build_net(ctx, hps["seed"])
    trainer = training.create_trainer(net.collect_params(), hps, ctx, kv)
    step_fn = training.ClassifierStep(net)
    step_fn.hybridize(static_alloc=True, static_shape=True)
    checkpoint_dir = kwargs.get("checkpoint_dir")
    first_epoch = checkpoints.load_latest(checkpoint_dir, net, trainer, ctx) + 1
    net(x_train[:1].as_in_context(ctx[0]))  # the parameters get their shapes
    distributed.init_trainer(trainer)  # every worker starts from rank 0's parameters
    log = metrics.MetricsLogger(
        kwargs.get("output_data_dir"),
        extra={"workload": "mnist_mlp", "hyperparameters": hps},
        history=checkpoints.history(checkpoint_dir, first_epoch - 1),
    )

    for epoch in range(first_epoch, hps["epochs"] + 1):
        tic = time.time()
        order = mx.nd.array(sampler.epoch(epoch), dtype=np.int64)
        xs, ys = x_train.take(order), y_train.take(order)
        # Per-batch sums stay on the device and are added up only at log points and at the
        # end of the epoch: reading them forces a sync.
        loss_terms, correct_terms = [], []
        for i in range(num_batches):
            batch = slice(i * batch_size, (i + 1) * batch_size)
            xparts, yparts = training.split(xs[batch], ctx), training.split(ys[batch], ctx)
            with autograd.record():
                results = [step_fn(x, y) for x, y in zip(xparts, yparts)]
            autograd.backward([batch_loss for batch_loss, _ in results])
            trainer.step(batch_size)
            loss_terms.extend(batch_loss.as_in_context(ctx[0]) for batch_loss, _ in results)
            correct_terms.extend(correct.as_in_context(ctx[0]) for _, correct in results)
            if hps["log_interval"] and (i + 1) % hps["log_interval"] == 0:
                seen = (i + 1) * batch_size
                logger.info(
                    "epoch %d batch %d/%d loss %.4f samples/s %.0f",
                    epoch,
                    i + 1,
                    num_batches,
                    training.total(loss_terms) / seen,
                    seen / (time.time() - tic),
                )
        loss, correct = training.total(loss_terms), training.total(correct_terms)  # waits for the last batch
        seconds = time.time() - tic
        valid = training.count_correct(net, test[0], test[1], ctx, EVAL_BATCH) if test is not None else 0.0
        workers.check_same_parameters(net.collect_params(), "after epoch %d" % epoch)  # a clear error, not drift
        # One sum over the workers: the metrics of the whole training and test sets.
        loss, correct, seen, valid, n_valid = workers.allreduce(
            [loss, correct, num_batches * batch_size, valid, len(test[0]) if test is not None else 0]
        )
        values = {"train_loss": loss / seen, "train_accuracy": correct / seen}
        if test is not None:
            values["validation_accuracy"] = valid / n_valid
        training.end_epoch(log, epoch, values, seen, seconds, checkpoint_dir, net, trainer)
    if log.history:
        log.finish()
    return net


# ---------------------------------------------------------------- save / load


def save(net, model_dir):
    """Writes the model the default MXNet handler, ``MXNetModel`` and :func:`model_fn` load.

    Files: ``model-symbol.json``, ``model-0000.params`` and ``model-shapes.json``,
    moved in only once all are written (:func:`smgluon.export.export_model`).

    Args:
        net (MLP): a trained, hybridized net.
        model_dir (str): destination directory.
    """
    export.export_model(
        net, model_dir, [mx.nd.zeros((1, IMAGE_SIZE), dtype=np.uint8)], [{"name": "data", "shape": [1, IMAGE_SIZE]}]
    )


def model_fn(model_dir):
    """Loads the saved model for serving (the inference toolkit calls this once per worker).

    Args:
        model_dir (str): the directory :func:`save` wrote.

    Returns:
        smgluon.serving.BoundModel: the exported graph bound for CPU inference
        (``model.predict(batch)`` gives the scores).
    """
    serving.skip_request_metric_lines()  # discarded by the container's log configuration anyway
    return serving.BoundModel(
        os.path.join(model_dir, "model-symbol.json"), os.path.join(model_dir, "model-0000.params")
    )


# ---------------------------------------------------------------- serving


def _as_batch(payload):
    """Turns a decoded payload into a float32 batch (N, 784), or raises a RequestError."""
    try:
        array = np.asarray(payload, dtype=np.float32)
    except (TypeError, ValueError):
        raise serving.RequestError("images must be arrays of numbers (pixel values 0-255)") from None
    shape = array.shape
    if shape in ((IMAGE_SIZE,), (28, 28)):
        array = array.reshape(1, IMAGE_SIZE)
    elif (
        (array.ndim == 2 and shape[1] == IMAGE_SIZE)
        or (array.ndim == 3 and shape[1:] == (28, 28))
        or (array.ndim == 4 and shape[1:] == (1, 28, 28))
    ):
        array = array.reshape(shape[0], IMAGE_SIZE)
    else:
        raise serving.RequestError(
            "expected one image (784 values or 28x28) or a batch (Nx784 or Nx28x28); got shape %s" % (shape,)
        )
    if len(array) == 0:
        raise serving.RequestError("the request holds no image")
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > MAX_PIXEL:
        raise serving.RequestError("pixel values must be finite and in 0-255 (multiply 0-1 images by 255)")
    return array


def _parse_request(data, content_type):
    ctype, _ = serving.media_type(content_type)
    decoder = serving.DECODERS.get(ctype)
    if decoder is None:
        raise serving.RequestError(
            "unsupported content type %r: send application/json, application/x-npy or text/csv" % content_type, 415
        )
    payload = decoder(data)
    probabilities = False
    if isinstance(payload, dict):
        unknown = set(payload) - {"instances", "probabilities"}
        if unknown or "instances" not in payload:
            raise serving.RequestError(
                'a JSON object must be {"instances": [...], "probabilities": false}; got keys %s' % sorted(payload)
            )
        probabilities = payload.get("probabilities", False)
        if not isinstance(probabilities, bool):
            raise serving.RequestError('"probabilities" must be true or false')
        payload = payload["instances"]
    return _as_batch(payload), probabilities


@serving.answer_request_errors
def transform_fn(net, data, input_content_type, output_content_type):
    """Classifies the images of one request.

    Args:
        net: the model from :func:`model_fn` (or the trained net in a notebook).
        data (bytes or str): the request body.
        input_content_type (str): application/json, application/x-npy or text/csv.
        output_content_type (str): application/json, optionally ``; probabilities=true``.

    Returns:
        tuple(str, str): the JSON answer and its content type.

    Raises:
        smgluon.serving.RequestError: a client error (4xx) naming the problem; in the
            model server the client gets its status and message (no traceback).
    """
    batch, probabilities = _parse_request(data, input_content_type)
    params = serving.accept_json(output_content_type)
    probabilities = probabilities or params.get("probabilities", "").lower() == "true"
    scores = serving.predict(net, batch)
    answer = {"predictions": scores.argmax(axis=1).tolist()}
    if probabilities:
        answer["probabilities"] = np.round(serving.softmax(scores), 6).tolist()
    return json.dumps(answer), "application/json"


# ---------------------------------------------------------------- script mode


def parse_args(argv=None):
    """Parses script-mode arguments: the hyperparameters plus optional data and model paths.

    Returns:
        tuple(dict, argparse.Namespace): hyperparameters and paths.
    """
    return script.parse_args(HYPERPARAMETERS, argv, prog="mnist_mlp.py")


def main(argv=None):
    """Script-mode entry: parse arguments (before reading any data), train, save on the first host."""
    hps, paths = parse_args(argv)
    return script.train_and_save(train, save, hps, paths)


if __name__ == "__main__":
    failure.run(main)
