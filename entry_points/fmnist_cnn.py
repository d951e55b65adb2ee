"""Fashion-MNIST (or MNIST) convolutional net: the workshop's second lab, trained and served.

Net (the workshop's): Conv2D(20, 5, relu) → MaxPool(2, 2) → Conv2D(50, 5, relu)
→ MaxPool(2, 2) → Flatten → Dense(512, relu) → Dense(10), trained with SGD,
learning_rate 0.1, momentum 0.9, batch_size 100, 10 epochs.

The project's improved defaults keep that net and those settings and add
batch normalisation after each convolution and after Dense(512), dropout
before the last layer, weight decay and a cosine learning-rate decay.
Augmentation is a hyperparameter: random horizontal flips (a mirrored shirt is
still a shirt; vertical flips and rotations are not how garments are
photographed) and small shifts; within 10 epochs flips did not help, so the
default is none. :data:`WORKSHOP` holds the hyperparameters that reproduce the
workshop's net exactly; bench/results/fmnist_cnn.md compares both.

Three ways to run it:

* notebook: ``import fmnist_cnn; net = fmnist_cnn.train({"training": "data/"},
  hyperparameters={"epochs": 2}, hosts=["local"], num_gpus=0)``;
* script mode: ``MXNet(entry_point="fmnist_cnn.py", source_dir="entry_points",
  dependencies=["lib/smgluon"], ...)``, or ``python fmnist_cnn.py --train-dir DIR --test-dir DIR``;
* a hyperparameter tuning job: the ranges are in :data:`HYPERPARAMETERS`, the
  regexes in :data:`METRIC_DEFINITIONS`, the objective in :data:`OBJECTIVE`.

Data: IDX files (``train-images-idx3-ubyte.gz`` ...) in a ``train`` + ``test``
channel or one ``training`` channel holding both (``smgluon data fetch
fashion-mnist`` writes them). MNIST files train the same net (``classes=mnist``
names the classes 0-9).

Devices: ``num_gpus`` GPUs (each batch is split over them with
``split_and_load`` and the step is scaled by the whole batch), else the CPU.
On a CPU host of its own, MXNet computes the convolutions fastest with
``OMP_NUM_THREADS=<cores> MXNET_ENGINE_TYPE=NaiveEngine`` in the job's
environment (the estimator's ``environment=``; MXNet reads them when it is
imported). The script leaves them alone: only the job knows whether the cores
are its own, and more OpenMP threads than free cores make it several times
slower, e.g. two tuning trials side by side (bench/results/fmnist_cnn.md).

Serving (``model_fn`` / ``transform_fn``):

* ``image/png``, ``image/jpeg``: one picture of any size, colour or grey,
  turned into a 28×28 grey image as Zalando made the data set (see
  :mod:`smgluon.images`: grey, trimmed, inverted when the background is light,
  longer side scaled to 28, centred); ``Content-Type: image/png; invert=false``
  overrides the inversion guess;
* ``application/json`` / ``application/x-npy`` / ``text/csv``: raw pixels on the
  IDX scale 0–255 (light object on black), one image (784 values or 28×28) or
  a batch; JSON may be ``{"instances": [...], "top_k": 3, "probabilities": true}``.

The net divides by 255 itself, so the exported model-symbol.json takes the
same raw pixels. Answer (``application/json``): ``{"predictions": [9, ...],
"labels": ["Ankle boot", ...]}``, plus ``"top_k"`` (per image, the k best
``{"class", "label", "probability"}``) and ``"probabilities"`` (N×10) on request,
in the JSON body or as ``Accept: application/json; top_k=3; probabilities=true``.
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
    images,
    kvstore,
    metrics,
    script,
    serving,
    training,
)
from smgluon.hyperparameters import Hyperparameter as HP
from smgluon.hyperparameters import Hyperparameters

logger = logging.getLogger(__name__)

SIZE = 28
NUM_CLASSES = 10
MAX_PIXEL = 255.0
EVAL_BATCH = 1000  # conv activations of 1000 images take ~50 MB
LABEL_FILE = "synset.txt"  # one class name per line: the MXNet model zoo's convention
CLASS_NAMES = {
    "fashion-mnist": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
    "mnist": [str(digit) for digit in range(10)],
}
# How a picture's object is placed for serving (smgluon.images.to_model_image): Fashion-MNIST
# garments fill the 28x28 frame, centred; MNIST digits fill a 20x20 box, centred by mass (LeCun).
PLACEMENT = {"fashion-mnist": {"box": 28, "centre": "box"}, "mnist": {"box": 20, "centre": "mass"}}
AUGMENTATIONS = ("none", "flip", "shift", "flip_shift")
MAX_SHIFT = 2  # pixels, for the shift augmentation

HYPERPARAMETERS = Hyperparameters(
    [
        HP(
            "batch_size",
            int,
            100,
            "mini-batch size per host, split over its devices",
            min=1,
            max=60000,
            tune=[64, 100, 128, 256],
        ),
        HP("epochs", int, 10, "passes over the training data", min=1, max=1000),
        HP("learning_rate", float, 0.1, "peak learning rate", min=1e-6, max=10.0, tune=(0.005, 0.5, "Logarithmic")),
        HP("momentum", float, 0.9, "momentum (sgd and nag)", min=0.0, max=0.999, tune=(0.0, 0.99)),
        HP("optimizer", str, "sgd", "optimizer", choices=["sgd", "nag", "adam"], tune=["sgd", "nag", "adam"]),
        HP("weight_decay", float, 5e-4, "L2 weight decay", min=0.0, max=1.0, tune=(1e-6, 1e-2, "Logarithmic")),
        HP(
            "lr_schedule",
            str,
            "cosine",
            "learning-rate schedule: constant, step (x lr_decay every "
            "lr_decay_epochs) or cosine (to 0 at the last epoch)",
            choices=["constant", "step", "cosine"],
            tune=["constant", "step", "cosine"],
        ),
        HP("lr_decay", float, 0.1, "step schedule: the factor applied every lr_decay_epochs", min=1e-4, max=1.0),
        HP("lr_decay_epochs", int, 4, "step schedule: epochs between decays", min=1),
        HP("warmup_epochs", int, 0, "epochs of linear warm-up from 0 to learning_rate", min=0),
        HP("batch_norm", bool, True, "batch normalisation after each convolution and Dense(512)"),
        HP("dropout", float, 0.3, "dropout before the last layer (0: none)", min=0.0, max=0.9, tune=(0.0, 0.6)),
        HP(
            "augment",
            str,
            "none",
            "training augmentation: none, flip (random horizontal), shift (random up to 2 pixels) or flip_shift",
            choices=list(AUGMENTATIONS),
            tune=list(AUGMENTATIONS),
        ),
        HP("classes", str, "fashion-mnist", "the class names the endpoint answers with", choices=sorted(CLASS_NAMES)),
        HP("log_interval", int, 100, "log the training loss every N batches (0: once per epoch)", min=0),
        HP("max_train_samples", int, 0, "train on the first N samples only (0: all)", min=0),
        HP("max_eval_samples", int, 0, "evaluate on the first N samples only (0: all)", min=0),
        HP("seed", int, 42, "random seed for initialisation, shuffling and augmentation", min=0),
        kvstore.HYPERPARAMETER,
    ],
    description="Train the workshop's CNN on Fashion-MNIST or MNIST IDX files.",
)

# The workshop's lab 2-2, exactly: no batch norm, no dropout, no schedule, no augmentation, no decay.
WORKSHOP = {
    "optimizer": "sgd",
    "learning_rate": 0.1,
    "momentum": 0.9,
    "batch_size": 100,
    "epochs": 10,
    "weight_decay": 0.0,
    "lr_schedule": "constant",
    "batch_norm": False,
    "dropout": 0.0,
    "augment": "none",
}

METRIC_NAMES = ["train_loss", "train_accuracy", "validation_accuracy", "samples_per_sec", "epoch_seconds"]
METRIC_DEFINITIONS = metrics.metric_definitions(METRIC_NAMES)
OBJECTIVE = {"metric": "validation_accuracy", "type": "Maximize"}


# ---------------------------------------------------------------- the network


class CNN(gluon.HybridBlock):
    """The workshop CNN, optionally with batch norm and dropout; takes raw 0–255 pixels of any dtype.

    Input: (N, 1, 28, 28) or (N, 784); both are reshaped and scaled in the graph.
    """

    def __init__(self, batch_norm=False, dropout=0.0, num_classes=NUM_CLASSES, **kwargs):
        super().__init__(**kwargs)
        # Input sizes are given, so initialize() draws every weight at once, right after seeding,
        # whatever random numbers the data pipeline uses later.
        with self.name_scope():
            self.body = nn.HybridSequential()
            for channels_in, channels_out in ((1, 20), (20, 50)):
                conv = nn.Conv2D(channels_out, kernel_size=5, use_bias=not batch_norm, in_channels=channels_in)
                self.body.add(*_layer(conv, channels_out, batch_norm))
                self.body.add(nn.MaxPool2D(pool_size=2, strides=2))
            self.body.add(nn.Flatten())
            self.body.add(*_layer(nn.Dense(512, use_bias=not batch_norm, in_units=50 * 4 * 4), 512, batch_norm))
            if dropout:
                self.body.add(nn.Dropout(dropout))
            self.body.add(nn.Dense(num_classes, in_units=512))

    def hybrid_forward(self, F, x):
        # Scaling inside the graph: uint8 batches train without a float copy of the data
        # set, and the exported symbol takes the same pixels as every client.
        x = F.reshape(F.cast(x, "float32"), shape=(-1, 1, SIZE, SIZE))
        return self.body(x * (1.0 / MAX_PIXEL))


def _layer(linear, units, batch_norm):
    """A convolution or dense layer with its ReLU; with batch norm in between (its bias made redundant)."""
    if batch_norm:
        return [linear, nn.BatchNorm(in_channels=units), nn.Activation("relu")]
    return [linear, nn.Activation("relu")]


def build_net(ctx, hps):
    mx.random.seed(hps["seed"])
    net = CNN(batch_norm=hps["batch_norm"], dropout=hps["dropout"])
    net.initialize(mx.init.Xavier(magnitude=2.24), ctx=ctx)
    net.hybridize(static_alloc=True, static_shape=True)
    net.labels = CLASS_NAMES[hps["classes"]]
    return net


# ---------------------------------------------------------------- data


def load_data(channel_dirs, hps):
    """Reads the IDX files and keeps them as uint8 NDArrays (N, 1, 28, 28) on the CPU."""
    (x_train, y_train), test = channels.load_idx_channels(channel_dirs, NUM_CLASSES)
    limits = {"train": hps["max_train_samples"], "test": hps["max_eval_samples"]}
    data = {"train": (x_train, y_train), "test": test}
    for split, limit in limits.items():
        if data[split] is not None and limit:
            data[split] = (data[split][0][:limit], data[split][1][:limit])
    x_train = data["train"][0]
    if x_train.shape[1:] != (SIZE, SIZE):
        raise channels.ChannelError("the training images are %dx%d; this net takes 28x28" % x_train.shape[1:])
    if len(x_train) < hps["batch_size"]:
        raise channels.ChannelError(
            "only %d training samples for batch_size %d: lower batch_size or add data"
            % (len(x_train), hps["batch_size"])
        )

    def as_nd(pair):
        x, y = pair
        return mx.nd.array(x.reshape(len(x), 1, SIZE, SIZE), dtype=np.uint8), mx.nd.array(y, dtype=np.float32)

    return as_nd(data["train"]), (as_nd(data["test"]) if data["test"] is not None else None)


def augment(x, mode):
    """Random training augmentation of a batch (N, 1, 28, 28), on the batch's device.

    ``flip`` mirrors half the images left-right; ``shift`` moves each image by
    up to :data:`MAX_SHIFT` whole pixels in x and y, filling with black.
    """
    if mode in ("flip", "flip_shift"):
        mirror = mx.nd.random.uniform(shape=(x.shape[0],), ctx=x.context) < 0.5
        x = mx.nd.where(mirror, x.flip(axis=3), x)
    if mode in ("shift", "flip_shift"):
        n = x.shape[0]
        # whole-pixel offsets as an affine grid; bilinear sampling at whole pixels copies values exactly
        offsets = mx.nd.random.randint(-MAX_SHIFT, MAX_SHIFT + 1, shape=(n, 2), ctx=x.context).astype("float32")
        offsets = offsets * (2.0 / (SIZE - 1))
        ones, zeros = mx.nd.ones((n, 1), ctx=x.context), mx.nd.zeros((n, 1), ctx=x.context)
        theta = mx.nd.concat(ones, zeros, offsets[:, :1], zeros, ones, offsets[:, 1:], dim=1)
        grid = mx.nd.GridGenerator(theta, transform_type="affine", target_shape=(SIZE, SIZE))
        x = mx.nd.BilinearSampler(x.astype("float32"), grid)
    return x


# ---------------------------------------------------------------- train / evaluate


def evaluate(net, x, y, ctx):
    """Accuracy of ``net`` on (x, y)."""
    return training.count_correct(net, x, y, ctx, EVAL_BATCH) / len(x)


def lr_scheduler(hps, num_batches):
    """The learning-rate schedule over updates (None: constant), a built-in class a kvstore server can unpickle."""
    base_lr, warmup = hps["learning_rate"], hps["warmup_epochs"] * num_batches
    if hps["lr_schedule"] == "cosine":
        return mx.lr_scheduler.CosineScheduler(
            max_update=max(hps["epochs"] * num_batches, warmup + 1), base_lr=base_lr, final_lr=0.0, warmup_steps=warmup
        )
    if hps["lr_schedule"] == "step":
        return mx.lr_scheduler.FactorScheduler(
            step=hps["lr_decay_epochs"] * num_batches, factor=hps["lr_decay"], base_lr=base_lr, warmup_steps=warmup
        )
    if warmup:
        return mx.lr_scheduler.FactorScheduler(step=warmup, factor=1.0, base_lr=base_lr, warmup_steps=warmup)
    return None


def train(channel_input_dirs, hyperparameters, hosts, num_gpus, **kwargs):
    """Trains the CNN; the signature of the legacy SageMaker ``train`` hook the workshop calls.

    Args:
        channel_input_dirs (dict): channel name → directory (``{"training": "data/"}``).
        hyperparameters (dict): values as Python objects or SageMaker's JSON-encoded strings.
        hosts (list[str]): the job's hosts (``["local"]`` in a notebook).
        num_gpus (int): GPUs to train on (0: CPU).
        **kwargs: ``current_host``, ``output_data_dir`` (for metrics.json),
            ``checkpoint_dir`` (resume and save per epoch), ``ctx`` (a list of
            contexts overriding ``num_gpus``: e.g. ``[mx.cpu(0), mx.cpu(1)]``
            runs the multi-device path on a CPU).

    Returns:
        CNN: the trained, hybridized net, with its class names as ``net.labels``.

    Training runs with denormal floats flushed to zero (:func:`smgluon.cpu_speed.flush_denormals`).
    """
    hps = HYPERPARAMETERS.parse_dict(hyperparameters)
    with cpu_speed.flush_denormals():
        return _train(hps, channel_input_dirs, hosts, num_gpus, **kwargs)


def _train(hps, channel_input_dirs, hosts, num_gpus, **kwargs):
    ctx = list(kwargs.get("ctx") or context.contexts(num_gpus))
    kv = training.create_kvstore(hosts, num_gpus, hps["kvstore"])
    workers = distributed.Workers(kv)
    (x_train, y_train), test = load_data(channel_input_dirs, hps)
    # Each worker trains on its shard (a new one each epoch) and evaluates its slice of the
    # test set; the metrics are summed over the workers.
    batch_size = hps["batch_size"]
    sampler, num_batches = distributed.training_plan(workers, len(x_train), hps["seed"], batch_size)
    if test is not None:
        test = distributed.evaluation_shard(test, workers)

    net = build_net(ctx, hps)
    trainer = training.create_trainer(net.collect_params(), hps, ctx, kv, lr_scheduler=lr_scheduler(hps, num_batches))
    step_fn = training.ClassifierStep(net)
    step_fn.hybridize(static_alloc=True, static_shape=True)
    checkpoint_dir = kwargs.get("checkpoint_dir")
    first_epoch = checkpoints.load_latest(checkpoint_dir, net, trainer, ctx) + 1
    distributed.init_trainer(trainer)  # every worker starts from rank 0's parameters
    log = metrics.MetricsLogger(
        kwargs.get("output_data_dir"),
        extra={"workload": "fmnist_cnn", "hyperparameters": hps},
        history=checkpoints.history(checkpoint_dir, first_epoch - 1),
    )

    for epoch in range(first_epoch, hps["epochs"] + 1):
        tic = time.time()
        # Dropout and augmentation draw from a stream seeded per epoch and worker, so a run resumed
        # from a checkpoint draws what an uninterrupted run draws.
        mx.random.seed(hps["seed"] + 1000 * epoch + workers.rank)
        order = mx.nd.array(sampler.epoch(epoch), dtype=np.int64)
        xs, ys = x_train.take(order), y_train.take(order)
        # Per-batch sums stay on the device and are added up only at log points and at the
        # end of the epoch: reading them forces a sync.
        loss_terms, correct_terms = [], []
        for i in range(num_batches):
            batch = slice(i * batch_size, (i + 1) * batch_size)
            xparts, yparts = training.split(xs[batch], ctx), training.split(ys[batch], ctx)
            with autograd.record():
                results = [step_fn(augment(x, hps["augment"]), y) for x, y in zip(xparts, yparts)]
            autograd.backward([batch_loss for batch_loss, _ in results])
            trainer.step(batch_size)  # the gradient of the whole batch, summed over the devices
            loss_terms.extend(batch_loss.as_in_context(ctx[0]) for batch_loss, _ in results)
            correct_terms.extend(correct.as_in_context(ctx[0]) for _, correct in results)
            if hps["log_interval"] and (i + 1) % hps["log_interval"] == 0:
                seen = (i + 1) * batch_size
                logger.info(
                    "epoch %d batch %d/%d loss %.4f lr %.4g samples/s %.0f",
                    epoch,
                    i + 1,
                    num_batches,
                    training.total(loss_terms) / seen,
                    trainer.learning_rate,
                    seen / (time.time() - tic),
                )
        loss, correct = training.total(loss_terms), training.total(correct_terms)  # waits for the last batch
        seconds = time.time() - tic
        workers.average_aux_states(net.collect_params())  # batch norm's running statistics, over every shard
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

    Files: ``model-symbol.json``, ``model-0000.params``, ``model-shapes.json``
    and ``synset.txt`` (the class names, one per line), moved in only once all
    are written.

    Args:
        net (CNN): a trained net (hybridized).
        model_dir (str): destination directory.
    """
    labels = _labels(net)
    export.export_model(
        net,
        model_dir,
        [mx.nd.zeros((1, 1, SIZE, SIZE), dtype=np.uint8)],
        [{"name": "data", "shape": [1, 1, SIZE, SIZE]}],
        extra_files={LABEL_FILE: "\n".join(labels) + "\n"},
    )


def model_fn(model_dir):
    """Loads the saved net and its class names for serving (the inference toolkit calls this once per worker).

    Args:
        model_dir (str): the directory :func:`save` wrote.

    Returns:
        smgluon.serving.BoundModel: the exported graph bound for CPU inference, with the
        class names as ``model.labels``.
    """
    serving.skip_request_metric_lines()  # discarded by the container's log configuration anyway
    label_path = os.path.join(model_dir, LABEL_FILE)
    labels = CLASS_NAMES["fashion-mnist"]
    if os.path.exists(label_path):  # a model brought from elsewhere may lack it
        with open(label_path, encoding="utf-8") as f:
            labels = [line.strip() for line in f if line.strip()]
    if len(labels) != NUM_CLASSES:
        raise ValueError("%s names %d classes; the net has %d" % (label_path, len(labels), NUM_CLASSES))
    model = serving.BoundModel(
        os.path.join(model_dir, "model-symbol.json"), os.path.join(model_dir, "model-0000.params")
    )
    model.labels = labels
    return model


# ---------------------------------------------------------------- serving


def _flag(params, name, default):
    value = params.get(name, default)
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text not in ("true", "false"):
        raise serving.RequestError("%s must be true or false, got %r" % (name, value))
    return text == "true"


def _top_k(value):
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or not 1 <= int(text) <= NUM_CLASSES:
        raise serving.RequestError("top_k must be an integer from 1 to %d, got %r" % (NUM_CLASSES, value))
    return int(text)


def _labels(net):
    return getattr(net, "labels", None) or CLASS_NAMES["fashion-mnist"]


def _parse_request(data, content_type, placement):
    """The request's images as a float32 batch (N, 1, 28, 28), and the options its body carries."""
    ctype, params = serving.media_type(content_type)
    if ctype in images.IMAGE_TYPES:
        invert = params.get("invert", "auto").lower()
        if invert not in ("auto", "true", "false"):
            raise serving.RequestError("invert must be auto, true or false, got %r" % params["invert"])
        invert = invert if invert == "auto" else invert == "true"
        picture = images.to_model_image(images.decode_image(data), SIZE, invert, **placement)
        return picture.reshape(1, 1, SIZE, SIZE).astype(np.float32), {}
    decoder = serving.DECODERS.get(ctype)
    if decoder is None:
        raise serving.RequestError(
            "unsupported content type %r: send image/png, image/jpeg, application/json, application/x-npy or text/csv"
            % content_type,
            415,
        )
    payload, options = decoder(data), {}
    if isinstance(payload, dict):
        unknown = set(payload) - {"instances", "top_k", "probabilities"}
        if unknown or "instances" not in payload:
            raise serving.RequestError(
                'a JSON object must be {"instances": [...], "top_k": 3, "probabilities": false}; got keys %s'
                % sorted(payload)
            )
        options = {k: payload[k] for k in ("top_k", "probabilities") if k in payload}
        payload = payload["instances"]
    return images.pixel_batch(payload, SIZE), options


@serving.answer_request_errors
def transform_fn(net, data, input_content_type, output_content_type):
    """Classifies the images of one request.

    Args:
        net: the model from :func:`model_fn` (or the trained net in a notebook).
        data (bytes or str): the request body.
        input_content_type (str): image/png, image/jpeg (``; invert=auto|true|false``),
            application/json, application/x-npy or text/csv.
        output_content_type (str): application/json, optionally ``; top_k=3; probabilities=true``.

    Returns:
        tuple(str, str): the JSON answer and its content type.

    Raises:
        smgluon.serving.RequestError: a client error (4xx) naming the problem; in the
            model server the client gets its status and message (no traceback).
    """
    labels = _labels(net)
    placement = PLACEMENT["mnist" if labels == CLASS_NAMES["mnist"] else "fashion-mnist"]
    batch, options = _parse_request(data, input_content_type, placement)
    params = serving.accept_json(output_content_type)
    params.update(options)  # the JSON body's options win over the Accept header's
    top_k = _top_k(params["top_k"]) if "top_k" in params else 0
    probabilities = _flag(params, "probabilities", False)

    probs = serving.softmax(serving.predict(net, batch))
    classes = probs.argmax(axis=1).astype(np.int64).tolist()
    answer = {"predictions": classes, "labels": [labels[c] for c in classes]}
    if top_k:
        best = np.argsort(-probs, axis=1, kind="stable")[:, :top_k]
        answer["top_k"] = [
            [{"class": int(c), "label": labels[c], "probability": round(float(p[c]), 6)} for c in row]
            for row, p in zip(best, probs)
        ]
    if probabilities:
        answer["probabilities"] = np.round(probs, 6).tolist()
    return json.dumps(answer), "application/json"


# ---------------------------------------------------------------- script mode


def parse_args(argv=None):
    """Parses script-mode arguments: the hyperparameters plus optional data and model paths.

    Returns:
        tuple(dict, argparse.Namespace): hyperparameters and paths.
    """
    return script.parse_args(HYPERPARAMETERS, argv, prog="fmnist_cnn.py")


def main(argv=None):
    """Script-mode entry: parse arguments (before reading any data), train, save on the first host."""
    hps, paths = parse_args(argv)
    return script.train_and_save(train, save, hps, paths)


if __name__ == "__main__":
    failure.run(main)
