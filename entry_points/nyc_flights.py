"""NYC flights 2013: predict a flight's departure delay in minutes from what is known before it leaves.

The seed blog's workload, on tabular CSV data. Data: the ``train`` and
``test`` channels that ``smgluon data fetch nyc-flights`` writes (any number
of ``*.csv`` / ``*.csv.gz`` files each, with a header; the columns are
:data:`smgluon.flights.COLUMNS`). Every file's header is checked against that
schema; a column measured after departure (``dep_time``, ``arr_*``,
``air_time``) is refused, and a bad row is reported with its file and line.

Model: one learned embedding per categorical column (carrier, origin, dest,
weekday, scheduled hour; index 0 is the out-of-vocabulary slot, so an airport
never seen in training is still served), the numeric columns standardised
with the training data's statistics and clipped to its range, plus a missing
flag per column that can be empty, then an MLP with dropout. ``month`` and
``day`` are features only with ``date_features``: a forecast meets months it
never trained on, and with them the net learnt the training period's days.
The output is in minutes (the net rescales by the training target's mean and
standard deviation). Loss by hyperparameter:
``l2`` (the RMSE's own), ``huber`` or ``l1`` (the MAE's own). The training
target can be clipped at a quantile (``target_clip``): a few delays of many
hours otherwise dominate the squared error. What preprocessing needs
(vocabularies, means, scales, ranges, column order) is saved with the model in
``model-preprocessing.json``, so serving applies the training transformation.

Metrics per epoch: ``train_rmse`` (running, against the unclipped target),
``validation_rmse`` and ``validation_mae`` on the test channel; the log also
prints the train-mean baseline's RMSE and MAE.

Several hosts (``dist_sync`` over the parameter server): with fully replicated
channels every host holds all the rows and trains on its share of them; with
``ShardedByS3Key`` each host reads its own part files, and the vocabularies and
statistics are combined over the hosts so every host encodes alike.

Serving (``model_fn`` / ``transform_fn``):

* ``application/json``: a record ``{"carrier": "UA", "origin": "EWR", "dest": "IAH",
  "month": 1, "day": 1, "weekday": 1, "hour": 5, "minute": 15, "distance": 1400, ...}``,
  a list of them, or ``{"instances": [...]}``; the plane and weather fields may be
  omitted or null (unknown). Answer: ``{"predictions": [minutes, ...]}``.
* ``text/csv``: one row per flight, the feature columns in the training order
  (the schema without ``dep_delay``), empty cells for unknown values; answers
  JSON, or one number per line with ``Accept: text/csv``.

A missing required field or a wrong type is a 400 naming the field; an unknown
carrier or airport goes through the out-of-vocabulary slot.
"""

import csv
import difflib
import io
import json
import logging
import math
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
    distributed,
    export,
    failure,
    kvstore,
    metrics,
    script,
    serving,
    training,
)
from smgluon import flights as schema
from smgluon.hyperparameters import Hyperparameter as HP
from smgluon.hyperparameters import Hyperparameters
from smgluon.tabular import Preprocessor, TableError, read_csv_channel

logger = logging.getLogger(__name__)

PREPROCESSING_FILE = "model-preprocessing.json"
EVAL_BATCH = 65536  # evaluation in a few large batches: fewer Python calls
LOSSES = ("l2", "huber", "l1")
DATE_FEATURES = ("month", "day")
COLUMNS = [(c.name, c.kind, c.nullable) for c in schema.COLUMNS]

HYPERPARAMETERS = Hyperparameters(
    [
        HP("hidden", int, 256, "units of each hidden layer", min=1, max=4096, tune=[64, 128, 256, 512]),
        HP("layers", int, 2, "hidden layers", min=1, max=8, tune=[1, 2, 3]),
        HP("embedding_dim", int, 8, "size of each category's embedding", min=1, max=256, tune=[4, 8, 16, 32]),
        HP("dropout", float, 0.3, "dropout after each hidden layer", min=0.0, max=0.9, tune=(0.0, 0.5)),
        HP(
            "loss",
            str,
            "l2",
            "l2 (squared error), huber, or l1 (absolute error)",
            choices=list(LOSSES),
            tune=["l2", "huber"],
        ),
        HP(
            "huber_delta",
            float,
            30.0,
            "minutes beyond which huber counts an error linearly",
            min=0.01,
            max=1000.0,
            tune=(5.0, 120.0, "Logarithmic"),
        ),
        HP(
            "date_features",
            bool,
            False,
            "use month and day as features (a forecast meets months it never "
            "trained on: they help only a random split)",
            tune=[False, True],
        ),
        HP(
            "target_clip",
            float,
            0.995,
            "train on the target clipped at this quantile of the training data (1: no clipping)",
            min=0.5,
            max=1.0,
            tune=(0.98, 1.0),
        ),
        HP("batch_size", int, 512, "mini-batch size per worker", min=1, max=1000000, tune=[256, 512, 1024, 2048]),
        HP("epochs", int, 6, "passes over the training data", min=1, max=1000),
        HP("learning_rate", float, 0.001, "learning rate", min=1e-6, max=10.0, tune=(1e-4, 1e-2, "Logarithmic")),
        HP("lr_decay", float, 0.6, "learning rate factor applied after every epoch", min=0.0, max=1.0, tune=(0.5, 1.0)),
        HP("optimizer", str, "adam", "optimizer", choices=["sgd", "nag", "adam", "rmsprop"], tune=["adam", "nag"]),
        HP("momentum", float, 0.9, "momentum (sgd and nag)", min=0.0, max=0.999),
        HP("weight_decay", float, 0.0, "L2 weight decay", min=0.0, max=1.0),
        HP("log_interval", int, 0, "log the training RMSE every N batches (0: once per epoch)", min=0),
        HP("max_train_samples", int, 0, "train on the first N rows only (0: all)", min=0),
        HP("max_eval_samples", int, 0, "evaluate on the first N rows only (0: all)", min=0),
        HP("seed", int, 42, "random seed for initialisation and shuffling", min=0),
        kvstore.HYPERPARAMETER,
    ],
    description="Train a departure-delay regression on NYC flights 2013 CSV channels.",
)

METRIC_NAMES = ["train_rmse", "validation_rmse", "validation_mae", "samples_per_sec", "epoch_seconds"]
METRIC_DEFINITIONS = metrics.metric_definitions(METRIC_NAMES)
OBJECTIVE = {"metric": "validation_rmse", "type": "Minimize"}


# ---------------------------------------------------------------- the network


class DelayNet(gluon.HybridBlock):
    """Delay in minutes from one input row: category indices, then standardised numbers and missing flags.

    Args:
        vocabulary_sizes (list[int]): rows of each categorical column's embedding (OOV slot included).
        embedding_dim (int): embedding size (at most the vocabulary's size).
        hidden (int): units per hidden layer.
        layers (int): hidden layers.
        dropout (float): dropout rate after each hidden layer.
        target (list[float]): the training target's mean and standard deviation.
    """

    def __init__(self, vocabulary_sizes, embedding_dim, hidden, layers, dropout, target, **kwargs):
        super().__init__(**kwargs)
        self.num_categorical = len(vocabulary_sizes)
        with self.name_scope():
            self.embeddings = nn.HybridSequential(prefix="embedding_")
            for size in vocabulary_sizes:
                self.embeddings.add(nn.Embedding(size, min(embedding_dim, size)))
            self.mlp = nn.HybridSequential(prefix="mlp_")
            for _ in range(layers):
                self.mlp.add(nn.Dense(hidden, activation="relu"))
                if dropout:
                    self.mlp.add(nn.Dropout(dropout))
            self.out = nn.Dense(1)
            # constants, exported with the weights: the net answers minutes
            self.target_mean = self.params.get_constant("target_mean", mx.nd.array([target[0]]))
            self.target_std = self.params.get_constant("target_std", mx.nd.array([target[1]]))

    def hybrid_forward(self, F, x, target_mean, target_std):
        parts = [
            embedding(F.reshape(F.slice_axis(x, axis=1, begin=j, end=j + 1), (-1,)))
            for j, embedding in enumerate(self.embeddings)
        ]
        parts.append(F.slice_axis(x, axis=1, begin=self.num_categorical, end=None))
        z = F.reshape(self.out(self.mlp(F.concat(*parts, dim=1))), (-1,))
        return F.broadcast_add(F.broadcast_mul(z, target_std), target_mean)


def build_net(hps, preprocessor, ctx):
    mx.random.seed(hps["seed"])
    net = DelayNet(
        preprocessor.vocabulary_sizes(),
        hps["embedding_dim"],
        hps["hidden"],
        hps["layers"],
        hps["dropout"],
        preprocessor.target,
    )
    net.initialize(mx.init.Xavier(), ctx=ctx)
    net.hybridize(static_alloc=True, static_shape=True)
    return net


# ---------------------------------------------------------------- data


def read_channel(directory, max_rows=0):
    """The schema's columns of every CSV file in a channel (see :func:`smgluon.tabular.read_csv_channel`)."""
    return read_csv_channel(directory, COLUMNS, forbidden=schema.POST_DEPARTURE, max_rows=max_rows)


def load_data(channel_dirs, hps, workers=None):
    """Reads the train and test channels and fits the preprocessing on the training rows.

    Args:
        channel_dirs (dict): channel name → directory; ``train`` and ``test`` (or ``validation``).
        hps (dict): parsed hyperparameters.
        workers (smgluon.distributed.Workers): over several hosts with sharded files, the
            preprocessing combines every worker's rows.

    Returns:
        tuple: ``(train, test, preprocessor)``; train and test are (inputs, delays) float32 arrays.
    """
    train_dir, test_dir = channels.train_test_dirs(channel_dirs, require_test=True)
    if test_dir == train_dir:
        raise channels.ChannelError(
            "nyc_flights reads CSV files from a 'train' and a 'test' channel (smgluon data fetch nyc-flights "
            "writes both); one 'training' channel cannot tell them apart"
        )
    train_table = read_channel(train_dir, hps["max_train_samples"])
    test_table = read_channel(test_dir, hps["max_eval_samples"])
    if len(train_table[schema.TARGET]) == 0:
        raise TableError("no training rows in %s" % train_dir)
    if len(test_table[schema.TARGET]) == 0:
        raise TableError("no test rows in %s" % test_dir)
    y_train = clipped_target(train_table[schema.TARGET], hps["target_clip"])
    sharded = distributed.sharded_channels() & {"train", "training"}
    if sharded and workers is not None and workers.distributed and not workers.combines:
        raise channels.ChannelError(
            "with ShardedByS3Key training files the hosts must agree on the vocabularies and statistics, which "
            "kvstore %s cannot combine: use kvstore dist_sync, or a FullyReplicated train channel" % workers.kv.type
        )
    preprocessor = Preprocessor.fit(
        train_table, schema.CATEGORICAL, numeric_features(hps), y_train, workers=workers if sharded else None
    )
    train = preprocessor.encode(train_table), train_table[schema.TARGET].astype(np.float32)
    test = preprocessor.encode(test_table), test_table[schema.TARGET].astype(np.float32)
    return train, test, preprocessor


def numeric_features(hps):
    """The numeric columns the model reads: without month and day unless ``date_features``."""
    return [n for n in schema.NUMERIC if hps["date_features"] or n not in DATE_FEATURES]


def clipped_target(y, quantile):
    """The training target clipped above at its ``quantile`` (1: unchanged)."""
    if quantile >= 1.0:
        return np.asarray(y, dtype=np.float64)
    return np.minimum(y, np.quantile(y, quantile))


# ---------------------------------------------------------------- train / evaluate


def predict(net, x, ctx):
    """Predicted delays (minutes) of a float32 input matrix, in large batches."""
    parts = [net(mx.nd.array(x[s : s + EVAL_BATCH], ctx=ctx[0])) for s in range(0, len(x), EVAL_BATCH)]
    return mx.nd.concat(*parts, dim=0).asnumpy() if parts else np.zeros(0, dtype=np.float32)


def error_sums(predictions, y):
    """[sum of squared errors, sum of absolute errors, count]: what RMSE and MAE are made of."""
    err = np.asarray(predictions, dtype=np.float64) - np.asarray(y, dtype=np.float64)
    return [float((err * err).sum()), float(np.abs(err).sum()), len(err)]


def rmse_mae(sums):
    sq, ab, n = sums
    return math.sqrt(sq / max(n, 1)), ab / max(n, 1)


def make_loss(hps, target_std):
    """The training loss on standardised delays (``huber_delta`` is in minutes)."""
    if hps["loss"] == "huber":
        return gluon.loss.HuberLoss(rho=hps["huber_delta"] / target_std)
    if hps["loss"] == "l1":
        return gluon.loss.L1Loss()
    return gluon.loss.L2Loss()


def train(channel_input_dirs, hyperparameters, hosts, num_gpus, **kwargs):
    """Trains the delay regression; the signature of the legacy SageMaker ``train`` hook.

    Args:
        channel_input_dirs (dict): channel name → directory (``{"train": ..., "test": ...}``).
        hyperparameters (dict): values as Python objects or SageMaker's JSON-encoded strings.
        hosts (list[str]): the job's hosts (``["local"]`` in a notebook).
        num_gpus (int): GPUs to train on (0: CPU).
        **kwargs: ``current_host``, ``output_data_dir`` (for metrics.json),
            ``checkpoint_dir`` (resume and save per epoch).

    Returns:
        DelayNet: the trained, hybridized net; ``net.preprocessor`` is what :func:`save` writes beside it.
    """
    hps = HYPERPARAMETERS.parse_dict(hyperparameters)
    ctx = context.contexts(num_gpus)
    kv = training.create_kvstore(hosts, num_gpus, hps["kvstore"])
    workers = distributed.Workers(kv)
    (x_train, y_train), (x_test, y_test), preprocessor = load_data(channel_input_dirs, hps, workers)
    y_fit = clipped_target(y_train, hps["target_clip"]).astype(np.float32)
    mean, std = preprocessor.target
    batch_size = hps["batch_size"]
    sampler, num_batches = distributed.training_plan(workers, len(y_train), hps["seed"], batch_size, unit="flights")
    test_sharded = "test" in distributed.sharded_channels()
    x_eval, y_eval = (x_test, y_test) if test_sharded else distributed.evaluation_shard((x_test, y_test), workers)

    net = build_net(hps, preprocessor, ctx)
    net.preprocessor = preprocessor
    trainer = training.create_trainer(net.collect_params(), hps, ctx, kv)
    loss_fn = make_loss(hps, std)
    checkpoint_dir = kwargs.get("checkpoint_dir")
    first_epoch = checkpoints.load_latest(checkpoint_dir, net, trainer, ctx) + 1
    net(mx.nd.array(x_train[:1], ctx=ctx[0]))  # shapes
    distributed.init_trainer(trainer)  # every worker starts from rank 0's parameters
    log = metrics.MetricsLogger(
        kwargs.get("output_data_dir"),
        extra={"workload": "nyc_flights", "hyperparameters": hps},
        history=checkpoints.history(checkpoint_dir, first_epoch - 1),
    )

    # For orientation: the error of always predicting the training mean.
    baseline = rmse_mae(workers.allreduce(error_sums(np.full(len(y_eval), mean), y_eval)))
    logger.info("train-mean baseline (%.2f min): validation_rmse %.4f validation_mae %.4f", mean, *baseline)
    x_all, y_all, y_fit_all = mx.nd.array(x_train), mx.nd.array(y_train), mx.nd.array(y_fit)
    for epoch in range(first_epoch, hps["epochs"] + 1):
        tic = time.time()
        trainer.set_learning_rate(hps["learning_rate"] * hps["lr_decay"] ** (epoch - 1))
        order = mx.nd.array(sampler.epoch(epoch), dtype=np.int64)
        xs, ys, fits = x_all.take(order), y_all.take(order), y_fit_all.take(order)
        sq_sum = mx.nd.zeros((1,), ctx=ctx[0])  # read at log points only: reading forces a sync
        for i in range(num_batches):
            batch = slice(i * batch_size, (i + 1) * batch_size)
            xb, yb, fb = (training.split(a[batch], ctx) for a in (xs, ys, fits))
            with autograd.record():
                outs = [net(x) for x in xb]
                losses = [loss_fn((o - mean) / std, (f - mean) / std) for o, f in zip(outs, fb)]
            autograd.backward(losses)
            trainer.step(batch_size)
            for o, y in zip(outs, yb):
                sq_sum += ((o - y) ** 2).sum().as_in_context(ctx[0])
            if hps["log_interval"] and (i + 1) % hps["log_interval"] == 0:
                logger.info(
                    "epoch %d batch %d/%d rmse %.3f",
                    epoch,
                    i + 1,
                    num_batches,
                    (sq_sum.asscalar() / ((i + 1) * batch_size)) ** 0.5,
                )
        train_sq = float(sq_sum.asscalar())
        seconds = time.time() - tic
        workers.check_same_parameters(net.collect_params(), "after epoch %d" % epoch)
        sums = workers.allreduce([train_sq, num_batches * batch_size] + error_sums(predict(net, x_eval, ctx), y_eval))
        rmse, mae = rmse_mae(sums[2:])
        values = {"train_rmse": math.sqrt(sums[0] / sums[1]), "validation_rmse": rmse, "validation_mae": mae}
        training.end_epoch(log, epoch, values, sums[1], seconds, checkpoint_dir, net, trainer)
    if log.history:
        final = {k: v for k, v in log.history[-1].items() if k != "epoch"}
        log.finish(**final, baseline_rmse=baseline[0], baseline_mae=baseline[1])
    return net


# ---------------------------------------------------------------- save / load


def save(net, model_dir):
    """Writes the model :func:`model_fn` loads.

    Files: ``model-symbol.json``, ``model-0000.params`` and ``model-shapes.json``
    (the exported net; its input ``data`` is the float32 matrix of
    :meth:`Preprocessor.encode`) and ``model-preprocessing.json`` (vocabularies,
    means, scales, column order). Written to a temporary folder first and moved
    in, so a failure leaves no half-written model.

    Args:
        net (DelayNet): a trained, hybridized net with its ``preprocessor``.
        model_dir (str): destination directory.
    """
    width = net.preprocessor.width
    doc = dict(net.preprocessor.to_json(), features=schema.FEATURES, required=required_fields())
    export.export_model(
        net,
        model_dir,
        [mx.nd.zeros((1, width))],
        [{"name": "data", "shape": [1, width]}],
        extra_files={PREPROCESSING_FILE: json.dumps(doc, indent=1)},
    )


def model_fn(model_dir):
    """Loads the saved model for serving (the inference toolkit calls this once per worker).

    Returns:
        smgluon.serving.BoundModel: the exported graph bound for CPU inference, with
        the :class:`Preprocessor` as ``model.preprocessor``.
    """
    serving.skip_request_metric_lines()
    model = serving.BoundModel(
        os.path.join(model_dir, "model-symbol.json"), os.path.join(model_dir, "model-0000.params")
    )
    with open(os.path.join(model_dir, PREPROCESSING_FILE)) as f:
        model.preprocessor = Preprocessor.from_json(json.load(f))
    return model


# ---------------------------------------------------------------- serving


def required_fields():
    """The features a request must give (plane and weather fields may be unknown)."""
    return [name for name in schema.FEATURES if name not in schema.NULLABLE]


KINDS = {c.name: c.kind for c in schema.COLUMNS}


def _field(record, name, where):
    """A record's value of feature ``name``: str for categories, float (NaN when unknown) for numbers."""
    value = record.get(name)
    if value is None:
        if name in schema.NULLABLE:
            return math.nan if KINDS[name] == "number" else ""
        raise serving.RequestError("%s: the required field %r is missing" % (where, name))
    if KINDS[name] == "category":
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise serving.RequestError(
                "%s: %r must be a string or an integer code, got %s" % (where, name, json.dumps(value))
            )
        return str(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise serving.RequestError("%s: %r must be a number, got %s" % (where, name, json.dumps(value)))
    return float(value)


def _records_table(records):
    """JSON records → columns, checking every field."""
    known = set(schema.FEATURES) | {schema.TARGET}
    table = {name: [] for name in schema.FEATURES}
    for n, record in enumerate(records):
        where = "record %d" % n
        if not isinstance(record, dict):
            raise serving.RequestError(
                '%s: expected an object with the feature names, e.g. {"carrier": "UA", "origin": "EWR", ...}; got %s'
                % (where, json.dumps(record)[:200])
            )
        unknown = sorted(set(record) - known)
        if unknown:
            hint = difflib.get_close_matches(unknown[0], schema.FEATURES, n=1)
            raise serving.RequestError(
                "%s: unknown field %r%s; the features are %s"
                % (where, unknown[0], " (did you mean %r?)" % hint[0] if hint else "", ", ".join(schema.FEATURES))
            )
        for name in schema.FEATURES:
            table[name].append(_field(record, name, where))
    return table


def _csv_table(text):
    """CSV rows in the training feature order → columns, checking every cell."""
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    if not rows:
        raise serving.RequestError("empty text/csv payload")
    table = {name: [] for name in schema.FEATURES}
    for n, row in enumerate(rows, 1):
        if len(row) != len(schema.FEATURES):
            raise serving.RequestError(
                "text/csv line %d has %d values; expected %d, in this order: %s"
                % (n, len(row), len(schema.FEATURES), ",".join(schema.FEATURES))
            )
        record = {}
        for name, cell in zip(schema.FEATURES, row):
            cell = cell.strip()
            if cell == "" or KINDS[name] == "category":
                record[name] = cell or None
                continue
            try:
                record[name] = float(cell)
            except ValueError:
                raise serving.RequestError("text/csv line %d: %r must be a number, got %r" % (n, name, cell)) from None
        for name in schema.FEATURES:
            table[name].append(_field(record, name, "text/csv line %d" % n))
    return table


def _parse_request(data, content_type):
    ctype, _ = serving.media_type(content_type)
    if ctype == "application/json":
        payload = serving.decode_json(data)
        if isinstance(payload, dict) and "instances" in payload:
            payload = payload["instances"]
        records = payload if isinstance(payload, list) else [payload]
        if not records:
            raise serving.RequestError("the request holds no flight")
        return _records_table(records)
    if ctype == "text/csv":
        text = data.decode("utf-8", errors="replace") if isinstance(data, (bytes, bytearray)) else data
        return _csv_table(text)
    raise serving.RequestError("unsupported content type %r: send application/json or text/csv" % content_type, 415)


@serving.answer_request_errors
def transform_fn(model, data, input_content_type, output_content_type):
    """Predicts departure delays in minutes.

    Args:
        model: from :func:`model_fn`, or the net :func:`train` returns (both carry ``preprocessor``).
        data (bytes or str): the request body.
        input_content_type (str): application/json or text/csv.
        output_content_type (str): application/json or text/csv.

    Returns:
        tuple(str, str): the answer and its content type.

    Raises:
        smgluon.serving.RequestError: a client error (4xx) naming the problem.
    """
    accept, _ = serving.media_type(output_content_type or "application/json")
    if accept not in ("application/json", "text/csv", "*/*"):
        raise serving.RequestError("unsupported accept type %r: answers are application/json or text/csv" % accept, 406)
    table = _parse_request(data, input_content_type)
    minutes = serving.predict(model, model.preprocessor.encode(table)).reshape(-1).astype(np.float64)
    minutes = np.round(minutes, 3).tolist()
    if accept == "text/csv":
        return "".join("%s\n" % m for m in minutes), "text/csv"
    return json.dumps({"predictions": minutes}), "application/json"


# ---------------------------------------------------------------- script mode


def parse_args(argv=None):
    """Parses script-mode arguments: the hyperparameters plus optional channel and model paths."""
    return script.parse_args(HYPERPARAMETERS, argv, prog="nyc_flights.py", channels=("train", "test"))


def main(argv=None):
    """Script-mode entry: parse arguments (before reading any data), train, save on the first host."""
    hps, paths = parse_args(argv)
    return script.train_and_save(train, save, hps, paths)


if __name__ == "__main__":
    failure.run(main)
