"""MovieLens-100k matrix factorization: the workshop's recommender challenge, trained and served.

Six models (hyperparameter ``model``):

* ``linear``: user and item embeddings, prediction = their dot product (the
  workshop's and MXNet's ``plain_net``);
* ``mlp``: each embedding goes through ReLU and a Dense layer before the dot
  product (MXNet's ``get_one_layer_mlp``);
* ``biased``: global mean + user bias + item bias + dot product (biased MF,
  "SVD" in Surprise);
* ``svdpp``: ``biased`` whose user vector also sums factors of the items the
  user rated in training (SVD++ with the training ratings as implicit
  feedback);
* ``autorec``: I-AutoRec, an autoencoder of each item's vector of training
  ratings (one entry per user, sigmoid hidden layer of ``autorec_hidden``
  units, loss on the rated entries only, L2 ``autorec_reg``), trained by
  full-batch L-BFGS (scipy): an epoch is ``lbfgs_iterations`` iterations;
* ``blend``: ``svdpp`` and ``autorec`` trained side by side in one job, each
  on its own loss; the prediction is their average weighted by
  ``blend_weight``. The default, and the best on u1.test (see
  bench/results/movielens_mf.md).

``autorec`` and ``blend`` train on one host only (L-BFGS takes full-batch
steps); with several hosts they stop with an error before training.

Regularisation: ``weight_decay`` on the factors (the biases are decayed by
``bias_wd_mult`` times that, default 0). With ``sparse_grad`` (default) the
embedding gradients are row_sparse and Adam updates lazily: a row is updated,
and decayed, only when it occurs in a batch, so the decay acts per occurrence,
as in Funk's SGD. ``factor_reg``/``bias_reg`` add that penalty to the loss
instead (slower: the lookups run twice).

Three ways to run it:

* notebook: ``import movielens_mf; net = movielens_mf.train({"training": "ml-100k/"},
  hyperparameters={"epochs": 5}, hosts=["local"], num_gpus=0)``;
* script mode: ``MXNet(entry_point="movielens_mf.py", source_dir="entry_points",
  dependencies=["lib/smgluon"], ...)``, or ``python movielens_mf.py --training-dir ml-100k/``;
* a hyperparameter tuning job: the ranges are in :data:`HYPERPARAMETERS`, the
  regexes in :data:`METRIC_DEFINITIONS`, the objective in :data:`OBJECTIVE`.

Data: the GroupLens layout as unzipped from ml-100k.zip, in a ``training`` (or
``train``) channel: ``u.item`` (titles, latin-1), and the split chosen by
``split``: ``u1`` (``u1.base``/``u1.test``, the split published results quote),
``ua`` (``ua.base``/``ua.test``) or ``random`` (a seeded 80/20 split of ``u.data``).

Metric: true RMSE, sqrt(mean((clip(prediction, 1, 5) - rating)^2)). (MXNet's
example prints the mean L2Loss, half the squared error, and calls it RMSE.)
``train_rmse`` is the running RMSE over the epoch's batches, as they were predicted
(``blend``: of its svdpp part); for ``autorec``, the RMSE on the training ratings after the epoch.

Serving (``model_fn`` / ``transform_fn``, ``application/json``), ids are the
GroupLens ids:

* ``{"user_id": 196, "item_id": 242}`` or a list of such pairs →
  ``{"predictions": [3.9, ...]}`` (ratings clipped to 1–5);
* ``{"user_id": 196, "top_k": 10}`` → ``{"user_id": 196, "recommendations":
  [{"item_id": 1, "title": "Toy Story (1995)", "score": 4.6}, ...]}``, the k
  best items the user did not rate in the training data.
"""

import json
import logging
import os
import time
import warnings

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
    recommend,
    script,
    serving,
    training,
)
from smgluon.hyperparameters import Hyperparameter as HP
from smgluon.hyperparameters import HyperparameterError, Hyperparameters
from smgluon.movielens import read_ratings, read_titles

logger = logging.getLogger(__name__)

MIN_RATING, MAX_RATING = 1.0, 5.0
BIASED = ("biased", "svdpp", "blend")  # the models with global mean and biases
SVDPP = ("svdpp", "blend")  # the models with SVD++'s implicit feedback
AUTOREC = ("autorec", "blend")  # the models with an I-AutoRec part, trained by full-batch L-BFGS
SPLITS = {"u1": ("u1.base", "u1.test"), "ua": ("ua.base", "ua.test"), "random": ("u.data", None)}
RANDOM_TEST_FRACTION = 0.2
EVAL_BATCH = 50000  # evaluation runs in a few large batches: fewer Python calls
MAX_TOP_K = 100
CATALOG_FILE = "model-catalog.json"
MODEL_FILES = ("model-symbol.json", "model-0000.params", "model-shapes.json", CATALOG_FILE)

HYPERPARAMETERS = Hyperparameters(
    [
        HP(
            "model",
            str,
            "blend",
            "linear, mlp, biased MF, svdpp (biased MF + the items the user rated, as in SVD++), autorec "
            "(item-based AutoRec) or blend (svdpp and autorec trained together, predictions averaged)",
            choices=["linear", "mlp", "biased", "svdpp", "autorec", "blend"],
        ),
        HP("split", str, "u1", "u1, ua (GroupLens files) or random (seeded 80/20 of u.data)", choices=list(SPLITS)),
        HP("num_factors", int, 64, "embedding size k", min=1, max=1024, tune=[16, 32, 64, 128]),
        HP("hidden", int, 64, "units of the Dense layer after each embedding (mlp)", min=1, max=4096),
        HP("autorec_hidden", int, 500, "sigmoid units of the AutoRec encoder (autorec, blend)", min=1, max=4096),
        HP(
            "autorec_reg",
            float,
            110.0,
            "L2 penalty on the AutoRec weights, against half the summed squared error (autorec, blend)",
            min=0.0,
            max=100000.0,
            tune=(10.0, 1000.0, "Logarithmic"),
        ),
        HP(
            "lbfgs_iterations",
            int,
            10,
            "L-BFGS iterations on AutoRec per epoch, each epoch from a fresh memory (autorec, blend)",
            min=1,
            max=1000,
        ),
        HP(
            "blend_weight",
            float,
            0.5,
            "share of AutoRec in blend's prediction; svdpp has the rest (blend)",
            min=0.0,
            max=1.0,
            tune=(0.2, 0.8),
        ),
        HP("batch_size", int, 256, "mini-batch size per worker", min=1, max=100000, tune=[64, 128, 256, 512, 1024]),
        HP(
            "epochs",
            int,
            25,
            "passes over the training ratings (autorec: lbfgs_iterations L-BFGS steps each)",
            min=1,
            max=1000,
        ),
        HP("learning_rate", float, 0.003, "learning rate", min=0.0, max=10.0, tune=(0.0001, 0.1, "Logarithmic")),
        HP("lr_decay", float, 0.9, "learning rate factor applied after every epoch", min=0.0, max=1.0, tune=(0.5, 1.0)),
        HP("momentum", float, 0.9, "momentum (sgd and nag)", min=0.0, max=0.999),
        HP(
            "optimizer",
            str,
            "adam",
            "optimizer",
            choices=["sgd", "nag", "adam", "rmsprop"],
            tune=["sgd", "adam"],
        ),
        HP(
            "weight_decay",
            float,
            5e-4,
            "the optimizer's L2 weight decay of the factors (biases: times bias_wd_mult)",
            min=0.0,
            max=10.0,
            tune=(1e-5, 1e-2, "Logarithmic"),
        ),
        HP(
            "factor_reg",
            float,
            0.0,
            "L2 penalty on a rating's user and item factors, added to its loss (Funk-SVD style regularisation)",
            min=0.0,
            max=10.0,
            tune=(0.01, 0.5, "Logarithmic"),
        ),
        HP(
            "bias_wd_mult",
            float,
            0.0,
            "weight_decay multiplier for the user and item biases (biased; 0: biases are not decayed)",
            min=0.0,
            max=10.0,
            tune=(0.0, 1.0),
        ),
        HP("bias_reg", float, 0.0, "L2 penalty on a rating's user and item biases (biased)", min=0.0, max=10.0),
        HP(
            "sparse_grad",
            bool,
            True,
            "row_sparse embedding gradients: only the batch's rows are updated and decayed (not autorec's L-BFGS)",
            tune=[True, False],
        ),
        HP("init_scale", float, 0.05, "standard deviation of the initial factors", min=0.0, max=1.0),
        HP("log_interval", int, 0, "log the training RMSE every N batches (0: once per epoch)", min=0),
        HP("max_train_samples", int, 0, "train on the first N ratings only (0: all)", min=0),
        HP("seed", int, 42, "random seed for the random split, initialisation and shuffling", min=0),
        kvstore.HYPERPARAMETER,
    ],
    description="Train matrix factorization (linear, MLP, biased, SVD++), AutoRec or their blend on MovieLens-100k.",
)

# Logged every epoch by smgluon.metrics; what a tuning job or metric_definitions reads.
METRIC_NAMES = ["train_rmse", "validation_rmse", "samples_per_sec", "epoch_seconds"]
METRIC_DEFINITIONS = metrics.metric_definitions(METRIC_NAMES)
OBJECTIVE = {"metric": "validation_rmse", "type": "Minimize"}


# ---------------------------------------------------------------- the network


class MatrixFactorization(gluon.HybridBlock):
    """Rating = f(user index, item index) for all models but blend; indices are float32 as Embedding takes them."""

    def __init__(
        self,
        model,
        num_users,
        num_items,
        num_factors,
        hidden=64,
        global_mean=0.0,
        sparse_grad=True,
        init_scale=0.05,
        autorec_hidden=500,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.model = model
        init = mx.init.Normal(init_scale)
        with self.name_scope():
            if model != "autorec":
                self.user = nn.Embedding(num_users, num_factors, weight_initializer=init, sparse_grad=sparse_grad)
                self.item = nn.Embedding(num_items, num_factors, weight_initializer=init, sparse_grad=sparse_grad)
            if model == "mlp":
                self.user_dense = nn.Dense(hidden, flatten=False)
                self.item_dense = nn.Dense(hidden, flatten=False)
            if model in BIASED:
                zeros = mx.init.Zero()
                self.user_bias = nn.Embedding(num_users, 1, weight_initializer=zeros, sparse_grad=sparse_grad)
                self.item_bias = nn.Embedding(num_items, 1, weight_initializer=zeros, sparse_grad=sparse_grad)
                # the mean rating is learnt too, but never shrunk towards 0
                self.global_mean = self.params.get(
                    "global_mean", shape=(1,), init=mx.init.Constant(global_mean), wd_mult=0.0
                )
            if model in SVDPP:
                # SVD++: a user is p_u + |N(u)|^-1/2 * sum of y_j over the items j the user rated in training;
                # `rated` holds those weights (a constant, set by build_net) so the exported model carries them
                self.implicit = self.params.get("implicit", shape=(num_items, num_factors), init=init)
                self.rated = self.params.get(
                    "rated", shape=(num_users, num_items), init=mx.init.Zero(), grad_req="null", differentiable=False
                )
            if model == "autorec":
                self.autorec = AutoRec(num_users, num_items, autorec_hidden)

    def hybrid_forward(self, F, user, item, global_mean=None, implicit=None, rated=None):
        if self.model == "autorec":
            return self.autorec(user, item)
        u, i = self.user(user), self.item(item)
        if self.model in SVDPP:
            u = u + F.dot(F.take(rated, user), implicit)
        if self.model == "mlp":
            u = self.user_dense(F.relu(u))
            i = self.item_dense(F.relu(i))
        score = F.sum(u * i, axis=1)
        if self.model in BIASED:
            score = F.broadcast_add(
                score + F.reshape(self.user_bias(user), (-1,)) + F.reshape(self.item_bias(item), (-1,)), global_mean
            )
        return score

    def penalty(self, user, item, factor_reg, bias_reg):
        """Per-rating L2 penalty: 0.5 * (factor_reg * (|p_u|² + |q_i|²) + bias_reg * (b_u² + b_i²))."""
        total = 0.5 * factor_reg * ((self.user(user) ** 2).sum(axis=1) + (self.item(item) ** 2).sum(axis=1))
        if self.model in BIASED and bias_reg:
            total = total + 0.5 * bias_reg * (self.user_bias(user) ** 2 + self.item_bias(item) ** 2).reshape((-1,))
        return total


class AutoRec(gluon.HybridBlock):
    """I-AutoRec (Sedhain et al., 2015): an item's vector of training ratings, one entry per user, is
    encoded by a sigmoid layer and decoded back; the rating of (u, i) is entry u of item i's reconstruction.

    ``ratings`` (items x users, 0 where unrated) is a constant set from the training data. The forward
    pass reads ``codes``, the encoded items, which :meth:`refresh_codes` recomputes after every
    change of the encoder: a pair's prediction is then a dot product, as cheap as MF's, and the
    exported model carries only the codes and the decoder. The weights are trained by
    :func:`lbfgs_epoch`, not by the Trainer (``grad_req="null"``).
    """

    def __init__(self, num_users, num_items, hidden, **kwargs):
        super().__init__(**kwargs)
        init = mx.init.Normal(0.03)
        with self.name_scope():
            const = {"grad_req": "null", "differentiable": False}
            self.ratings = self.params.get("ratings", shape=(num_items, num_users), init=mx.init.Zero(), **const)
            self.encoder = self.params.get("encoder", shape=(num_users, hidden), init=init, **const)
            self.encoder_bias = self.params.get("encoder_bias", shape=(hidden,), init=mx.init.Zero(), **const)
            self.decoder = self.params.get("decoder", shape=(num_users, hidden), init=init, **const)
            self.decoder_bias = self.params.get("decoder_bias", shape=(num_users,), init=mx.init.Zero(), **const)
            self.codes = self.params.get("codes", shape=(num_items, hidden), init=mx.init.Zero(), **const)

    def forward(self, *args):
        with warnings.catch_warnings():
            # the graph reads the codes, not the encoder they come from: MXNet warns about the encoder
            warnings.filterwarnings("ignore", "Parameter .* is not used by any computation")
            return super().forward(*args)

    def hybrid_forward(self, F, user, item, codes, decoder, decoder_bias, **unused):
        return F.sum(F.take(codes, item) * F.take(decoder, user), axis=1) + F.take(decoder_bias, user)

    def weights(self):
        """The trained parameters, in the order :func:`autorec_loss` takes them."""
        return [self.encoder, self.encoder_bias, self.decoder, self.decoder_bias]

    def refresh_codes(self):
        ratings, encoder, encoder_bias = (p.data() for p in (self.ratings, self.encoder, self.encoder_bias))
        self.codes.set_data(mx.nd.sigmoid(mx.nd.broadcast_add(mx.nd.dot(ratings, encoder), encoder_bias)))


class Blend(gluon.HybridBlock):
    """``blend``: svdpp (``mf``) and AutoRec (``autorec``) trained side by side on the same ratings, each on
    its own loss; the prediction is ``(1 - weight) * svdpp + weight * autorec``, each part clipped to 1-5
    first so that one part's overshoot does not pull the other out of range."""

    def __init__(self, num_users, num_items, num_factors, weight, autorec_hidden, **kwargs):
        mf_kwargs = {k: kwargs.pop(k) for k in ("global_mean", "sparse_grad", "init_scale") if k in kwargs}
        super().__init__(**kwargs)
        self.model = "blend"
        self.weight = weight
        with self.name_scope():
            self.mf = MatrixFactorization("svdpp", num_users, num_items, num_factors, **mf_kwargs)
            self.autorec = AutoRec(num_users, num_items, autorec_hidden)

    def hybrid_forward(self, F, user, item):
        mf = F.clip(self.mf(user, item), MIN_RATING, MAX_RATING)
        autorec = F.clip(self.autorec(user, item), MIN_RATING, MAX_RATING)
        return (1.0 - self.weight) * mf + self.weight * autorec


def autorec_loss(ratings, mask, reg, encoder, encoder_bias, decoder, decoder_bias):
    """Half the squared error of the reconstruction on the rated entries, plus reg/2 times the squared weights."""
    codes = mx.nd.sigmoid(mx.nd.broadcast_add(mx.nd.dot(ratings, encoder), encoder_bias))
    err = (mx.nd.broadcast_add(mx.nd.dot(codes, decoder, transpose_b=True), decoder_bias) - ratings) * mask
    squared = (err * err).sum()
    return 0.5 * squared + 0.5 * reg * ((encoder * encoder).sum() + (decoder * decoder).sum()), squared


def lbfgs_epoch(autorec, mask, reg, iterations):
    """Full-batch L-BFGS on AutoRec's weights for ``iterations`` steps, from a fresh memory.

    A fresh memory per epoch means the state between epochs is the parameters
    alone, so a run resumed from a checkpoint trains as an uninterrupted one.

    Returns:
        float: the squared error on the training ratings after the epoch.
    """
    try:
        from scipy.optimize import minimize  # only AutoRec needs scipy
    except ImportError as e:
        raise ImportError("model autorec and blend train with scipy's L-BFGS: pip install scipy (%s)" % e) from e

    params = autorec.weights()
    shapes = [p.shape for p in params]
    sizes = [int(np.prod(shape)) for shape in shapes]
    ctx = params[0].list_ctx()[0]
    ratings = autorec.ratings.data(ctx)

    def unpack(flat):
        parts = np.split(flat.astype(np.float32), np.cumsum(sizes)[:-1])
        return [mx.nd.array(part.reshape(shape), ctx=ctx) for part, shape in zip(parts, shapes)]

    def loss_and_grad(flat):
        arrays = unpack(flat)
        for a in arrays:
            a.attach_grad()
        with autograd.record():
            loss, _ = autorec_loss(ratings, mask, reg, *arrays)
        loss.backward()
        grad = np.concatenate([a.grad.asnumpy().ravel() for a in arrays])
        return float(loss.asscalar()), grad.astype(np.float64)

    start = np.concatenate([p.data(ctx).asnumpy().ravel() for p in params]).astype(np.float64)
    result = minimize(loss_and_grad, start, jac=True, method="L-BFGS-B", options={"maxiter": iterations})
    for param, value in zip(params, unpack(result.x)):
        param.set_data(value)
    autorec.refresh_codes()
    _, squared = autorec_loss(ratings, mask, reg, *(p.data(ctx) for p in params))
    return float(squared.asscalar())


def rated_matrix(users, items, num_users, num_items):
    """SVD++'s implicit-feedback weights: row u is |N(u)|^-1/2 on the items u rated in training, else 0."""
    rated = np.zeros((num_users, num_items), dtype=np.float32)
    rated[users.astype(np.int64), items.astype(np.int64)] = 1.0
    counts = rated.sum(axis=1, keepdims=True)
    return rated / np.sqrt(np.maximum(counts, 1.0))


def build_net(hps, num_users, num_items, global_mean, ctx, rated=None, ratings=None):
    mx.random.seed(hps["seed"])
    common = {"global_mean": global_mean, "sparse_grad": hps["sparse_grad"], "init_scale": hps["init_scale"]}
    if hps["model"] == "blend":
        net = Blend(num_users, num_items, hps["num_factors"], hps["blend_weight"], hps["autorec_hidden"], **common)
    else:
        net = MatrixFactorization(
            hps["model"],
            num_users,
            num_items,
            hps["num_factors"],
            hidden=hps["hidden"],
            autorec_hidden=hps["autorec_hidden"],
            **common,
        )
    net.initialize(mx.init.Xavier(), ctx=ctx)
    mf = net.mf if hps["model"] == "blend" else net
    if hps["model"] in SVDPP:
        mf.rated.set_data(mx.nd.array(rated))
    if hps["model"] in AUTOREC:
        net.autorec.ratings.set_data(mx.nd.array(ratings))
        # A user without training ratings gets no gradient: the mean rating is its prediction. The others
        # start from 0, which ended lower on the validation slice than starting from the mean.
        unrated = (ratings > 0).sum(axis=0) == 0
        net.autorec.decoder_bias.set_data(mx.nd.array(np.where(unrated, global_mean, 0.0)))
        net.autorec.refresh_codes()
    if hps["model"] in BIASED:
        for block in (mf.user_bias, mf.item_bias):
            block.weight.wd_mult = hps["bias_wd_mult"]
    net.hybridize(static_alloc=True, static_shape=True)
    return net


# ---------------------------------------------------------------- data


def split_ratings(directory, split, seed):
    """The (train, test) ratings of ``split``: int64 (N, 4) arrays of user id, item id, rating, timestamp."""
    base, test = SPLITS[split]
    if test is not None:
        return read_ratings(os.path.join(directory, base)), read_ratings(os.path.join(directory, test))
    ratings = read_ratings(os.path.join(directory, base))
    order = np.random.RandomState(seed).permutation(len(ratings))
    n_test = int(round(len(ratings) * RANDOM_TEST_FRACTION))
    return ratings[order[n_test:]], ratings[order[:n_test]]


def load_data(channel_dirs, hps):
    """Reads the split and u.item; maps ids to embedding rows.

    Returns:
        tuple: ``(train, test, catalog)``; train and test are (users, items,
        ratings) float32 NDArrays on the CPU (Embedding takes float indices).
    """
    directory, _ = channels.train_test_dirs(channel_dirs)
    train, test = split_ratings(directory, hps["split"], hps["seed"])
    titles = read_titles(os.path.join(directory, "u.item"))
    unknown = sorted(set(np.concatenate([train[:, 1], test[:, 1]]).tolist()) - set(titles))
    if unknown:
        raise channels.ChannelError("item ids %s are rated but missing from u.item" % unknown[:10])
    if hps["max_train_samples"]:
        train = train[: hps["max_train_samples"]]
    if len(train) < hps["batch_size"]:
        raise channels.ChannelError(
            "only %d training ratings for batch_size %d: lower batch_size or add data" % (len(train), hps["batch_size"])
        )
    # every user of the split gets a row (a test-only user keeps its initial factors); every item of u.item too
    user_ids = np.unique(np.concatenate([train[:, 0], test[:, 0]]))
    item_ids = np.asarray(sorted(titles), dtype=np.int64)
    user_row = np.searchsorted(user_ids, train[:, 0]), np.searchsorted(user_ids, test[:, 0])
    item_row = np.searchsorted(item_ids, train[:, 1]), np.searchsorted(item_ids, test[:, 1])
    seen = [[] for _ in user_ids]
    for u, i in zip(user_row[0].tolist(), item_row[0].tolist()):
        seen[u].append(i)
    catalog = recommend.Catalog(user_ids, item_ids, [titles[i] for i in item_ids.tolist()], seen)

    def as_nd(users, items, ratings):
        return tuple(mx.nd.array(a, dtype=np.float32) for a in (users, items, ratings))

    return (
        as_nd(user_row[0], item_row[0], train[:, 2]),
        as_nd(user_row[1], item_row[1], test[:, 2]),
        catalog,
    )


# ---------------------------------------------------------------- train / evaluate


def predict(net, users, items, ctx):
    """Clipped predicted ratings for float32 NDArrays of user and item rows, in large batches."""
    parts = [
        net(users[s : s + EVAL_BATCH].as_in_context(ctx[0]), items[s : s + EVAL_BATCH].as_in_context(ctx[0]))
        for s in range(0, len(users), EVAL_BATCH)
    ]
    return mx.nd.concat(*parts, dim=0).clip(MIN_RATING, MAX_RATING)


def rmse(net, data, ctx):
    """True RMSE of ``net`` on (users, items, ratings): sqrt of the mean squared error of clipped predictions."""
    users, items, ratings = data
    err = predict(net, users, items, ctx) - ratings.as_in_context(ctx[0])
    return float(mx.nd.sqrt(mx.nd.mean(err * err)).asscalar())


def squared_error(net, data, ctx):
    """The sum of squared errors of clipped predictions on (users, items, ratings); 0 for no ratings."""
    users, items, ratings = data
    if len(users) == 0:
        return 0.0
    err = predict(net, users, items, ctx) - ratings.as_in_context(ctx[0])
    return float((err * err).sum().asscalar())


def sgd_epoch(fit, trainer, loss_fn, train_data, batches, hps, ctx, epoch, tic):
    """One epoch of mini-batch training of ``fit`` (the net, or blend's svdpp part) on its own loss.

    Args:
        batches (tuple): the epoch's order of the training ratings, the number of batches and their size.
        tic (float): when the epoch began (for the logged samples/s).

    Returns:
        float: the sum of the squared errors of the clipped predictions, as the batches were predicted.
    """
    order, num_batches, batch_size = batches
    order = mx.nd.array(order, dtype=np.int64)
    users, items, ratings = (a.take(order) for a in train_data)
    # The running sum stays on the device; reading it forces a sync, so only at log points.
    sq_sum = mx.nd.zeros((1,), ctx=ctx[0])
    for i in range(num_batches):
        batch = slice(i * batch_size, (i + 1) * batch_size)
        parts = [training.split(a, ctx) for a in (users[batch], items[batch], ratings[batch])]
        with autograd.record():
            outs = [fit(u, it) for u, it in zip(parts[0], parts[1])]
            losses = [loss_fn(o, r) for o, r in zip(outs, parts[2])]
            if hps["factor_reg"] or hps["bias_reg"]:
                losses = [
                    loss + fit.penalty(u, it, hps["factor_reg"], hps["bias_reg"])
                    for loss, u, it in zip(losses, parts[0], parts[1])
                ]
        autograd.backward(losses)
        trainer.step(batch_size)
        for o, r in zip(outs, parts[2]):
            err = o.clip(MIN_RATING, MAX_RATING) - r
            sq_sum += (err * err).sum().as_in_context(ctx[0])
        if hps["log_interval"] and (i + 1) % hps["log_interval"] == 0:
            seen = (i + 1) * batch_size
            logger.info(
                "epoch %d batch %d/%d rmse %.4f samples/s %.0f",
                epoch,
                i + 1,
                num_batches,
                (sq_sum.asscalar() / seen) ** 0.5,
                seen / (time.time() - tic),
            )
    return float(sq_sum.asscalar())


def train(channel_input_dirs, hyperparameters, hosts, num_gpus, **kwargs):
    """Trains matrix factorization; the signature of the legacy SageMaker ``train`` hook the workshop calls.

    Args:
        channel_input_dirs (dict): channel name → directory (``{"training": "ml-100k/"}``).
        hyperparameters (dict): values as Python objects or SageMaker's JSON-encoded strings.
        hosts (list[str]): the job's hosts (``["local"]`` in a notebook).
        num_gpus (int): GPUs to train on (0: CPU).
        **kwargs: ``current_host``, ``output_data_dir`` (for metrics.json),
            ``checkpoint_dir`` (resume and save per epoch).

    Returns:
        MatrixFactorization or Blend: the trained, hybridized net; ``net.catalog`` holds
        the id maps, titles and seen items that :func:`save` writes.
    """
    hps = HYPERPARAMETERS.parse_dict(hyperparameters)
    if hps["model"] == "autorec" and (hps["factor_reg"] or hps["bias_reg"]):
        raise HyperparameterError(
            "factor_reg and bias_reg regularise the factors and biases, which autorec has none of: "
            "set them to 0 and regularise with autorec_reg"
        )
    ctx = context.contexts(num_gpus)
    kv = training.create_kvstore(hosts, num_gpus, hps["kvstore"])
    if hps["model"] in AUTOREC and training.is_distributed(kv):
        # L-BFGS takes full-batch steps on one copy of the weights; it has no per-worker shard to sum
        raise HyperparameterError(
            "model %s trains AutoRec by full-batch L-BFGS on one host, and this job has %d: run it with "
            "instance_count=1, or train svdpp on several hosts" % (hps["model"], len(hosts))
        )
    if hps["sparse_grad"] and training.is_distributed(kv):
        # MXNet 1.9.1's parameter servers abort on these row_sparse pushes ("copying size
        # mismatch"), and they would also have to run the optimizer, so metrics could not be summed.
        logger.warning(
            "sparse_grad is not supported over several hosts (MXNet 1.9.1's parameter server "
            "aborts on row_sparse gradients): training with dense gradients"
        )
        hps = dict(hps, sparse_grad=False)
    workers = distributed.Workers(kv)
    train_data, test_data, catalog = load_data(channel_input_dirs, hps)
    global_mean = float(train_data[2].mean().asscalar())
    rated = ratings = None
    num_users, num_items = len(catalog.user_ids), len(catalog.item_ids)
    rows = train_data[0].asnumpy().astype(np.int64), train_data[1].asnumpy().astype(np.int64)
    if hps["model"] in SVDPP:
        rated = rated_matrix(rows[0], rows[1], num_users, num_items)
    if hps["model"] in AUTOREC:
        ratings = np.zeros((num_items, num_users), dtype=np.float32)
        ratings[rows[1], rows[0]] = train_data[2].asnumpy()
        mask = mx.nd.array(ratings > 0, ctx=ctx[0])
    # Each worker trains on its shard (a new one each epoch), the same number of batches everywhere.
    batch_size = hps["batch_size"]
    sampler, num_batches = distributed.training_plan(
        workers, len(train_data[0]), hps["seed"], batch_size, unit="training ratings"
    )
    eval_data = distributed.evaluation_shard(test_data, workers)

    net = build_net(hps, num_users, num_items, global_mean, ctx, rated, ratings)
    net.catalog = catalog
    # AutoRec's weights are L-BFGS's (grad_req null); the Trainer takes the rest, and autorec has no rest
    trainer = None
    if hps["model"] != "autorec":
        trainer = training.create_trainer(net.collect_params(), hps, ctx, kv)
    loss_fn = gluon.loss.L2Loss()
    checkpoint_dir = kwargs.get("checkpoint_dir")
    first_epoch = checkpoints.load_latest(checkpoint_dir, net, trainer, ctx) + 1
    if hps["model"] in AUTOREC:
        net.autorec.refresh_codes()  # the codes of the loaded weights
    with warnings.catch_warnings():
        # AutoRec's encoder is trained outside the graph, which reads only the codes
        warnings.filterwarnings("ignore", "Parameter .* is not used by any computation")
        net(train_data[0][:1].as_in_context(ctx[0]), train_data[1][:1].as_in_context(ctx[0]))  # shapes
    if trainer is not None:
        distributed.init_trainer(trainer)  # every worker starts from rank 0's parameters
    log = metrics.MetricsLogger(
        kwargs.get("output_data_dir"),
        extra={"workload": "movielens_mf", "hyperparameters": hps},
        history=checkpoints.history(checkpoint_dir, first_epoch - 1),
    )

    for epoch in range(first_epoch, hps["epochs"] + 1):
        tic = time.time()
        if hps["model"] in AUTOREC:
            train_sq = lbfgs_epoch(net.autorec, mask, hps["autorec_reg"], hps["lbfgs_iterations"])
            seen = len(train_data[0])
        if hps["model"] != "autorec":
            # blend: svdpp trains on its own loss, not the blend's (whose clipping would stop gradients); its
            # running RMSE is the one logged
            fit = net.mf if hps["model"] == "blend" else net
            trainer.set_learning_rate(hps["learning_rate"] * hps["lr_decay"] ** (epoch - 1))
            batches = (sampler.epoch(epoch), num_batches, batch_size)
            train_sq = sgd_epoch(fit, trainer, loss_fn, train_data, batches, hps, ctx, epoch, tic)
            seen = num_batches * batch_size
        seconds = time.time() - tic
        workers.check_same_parameters(net.collect_params(), "after epoch %d" % epoch)  # a clear error, not drift
        # One sum over the workers: the RMSEs of the whole training and test sets.
        train_sq, seen, test_sq, n_test = workers.allreduce(
            [train_sq, seen, squared_error(net, eval_data, ctx), len(eval_data[0])]
        )
        values = {"train_rmse": (train_sq / seen) ** 0.5, "validation_rmse": (test_sq / max(n_test, 1)) ** 0.5}
        training.end_epoch(log, epoch, values, seen, seconds, checkpoint_dir, net, trainer)
    if log.history:
        log.finish()
    return net


# ---------------------------------------------------------------- save / load


def save(net, model_dir):
    """Writes the model :func:`model_fn` loads.

    Files: ``model-symbol.json`` and ``model-0000.params`` (the exported net; its
    inputs ``data0``/``data1`` are float32 user and item rows), ``model-shapes.json``
    and ``model-catalog.json`` (id maps, titles, items seen per user), moved in
    only once all are written (:func:`smgluon.export.export_model`).

    Args:
        net (MatrixFactorization or Blend): a trained, hybridized net with its ``catalog``.
        model_dir (str): destination directory.
    """
    export.export_model(
        net,
        model_dir,
        [mx.nd.zeros((1,)), mx.nd.zeros((1,))],
        [{"name": "data0", "shape": [1]}, {"name": "data1", "shape": [1]}],
        extra_files={CATALOG_FILE: net.catalog.to_json()},
    )


def model_fn(model_dir):
    """Loads the saved net and its catalog for serving (the inference toolkit calls this once per worker).

    Args:
        model_dir (str): the directory :func:`save` wrote.

    Returns:
        mxnet.gluon.SymbolBlock: with the :class:`smgluon.recommend.Catalog` as ``net.catalog``.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Cannot decide type")
        net = gluon.SymbolBlock.imports(
            os.path.join(model_dir, "model-symbol.json"),
            ["data0", "data1"],
            os.path.join(model_dir, "model-0000.params"),
            ctx=mx.cpu(),
        )
    net.hybridize(static_alloc=True)
    with open(os.path.join(model_dir, CATALOG_FILE)) as f:
        net.catalog = recommend.Catalog.from_json(json.load(f))
    return net


# ---------------------------------------------------------------- serving


def _parse_request(data, content_type, catalog):
    """Decodes a request into ("pairs", user rows, item rows) or ("top_k", user row, k)."""
    ctype, _ = serving.media_type(content_type)
    if ctype != "application/json":
        raise serving.RequestError("unsupported content type %r: send application/json" % content_type, 415)
    payload = serving.decode_json(data)
    if isinstance(payload, dict) and "top_k" in payload:
        unknown = set(payload) - {"user_id", "top_k"}
        if unknown:
            raise serving.RequestError(
                'a top-k request is {"user_id": 196, "top_k": 10}; got keys %s' % sorted(payload)
            )
        k = payload["top_k"]
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_TOP_K:
            raise serving.RequestError("top_k must be an integer in 1..%d, got %s" % (MAX_TOP_K, json.dumps(k)))
        return "top_k", recommend.request_row(payload, "user_id", catalog.user_index, "user"), k
    pairs = payload if isinstance(payload, list) else [payload]
    if not pairs:
        raise serving.RequestError("the request holds no (user_id, item_id) pair")
    users, items = [], []
    for pair in pairs:
        if not isinstance(pair, dict) or set(pair) != {"user_id", "item_id"}:
            raise serving.RequestError(
                'expected {"user_id": 196, "item_id": 242}, a list of such pairs, or {"user_id": 196, "top_k": 10}; '
                "got %s" % json.dumps(pair)[:200]
            )
        users.append(recommend.request_row(pair, "user_id", catalog.user_index, "user"))
        items.append(recommend.request_row(pair, "item_id", catalog.item_index, "item"))
    return "pairs", users, items


@serving.answer_request_errors
def transform_fn(net, data, input_content_type, output_content_type):
    """Predicts ratings of (user, item) pairs, or recommends a user's top-k unrated items.

    Args:
        net: the net from :func:`model_fn` (or the trained net in a notebook), with ``net.catalog``.
        data (bytes or str): the request body.
        input_content_type (str): application/json.
        output_content_type (str): application/json.

    Returns:
        tuple(str, str): the JSON answer and its content type.

    Raises:
        smgluon.serving.RequestError: a client error (4xx) naming the problem.
    """
    catalog = net.catalog
    serving.accept_json(output_content_type)
    kind, first, second = _parse_request(data, input_content_type, catalog)
    if kind == "pairs":
        scores = predict(net, mx.nd.array(first), mx.nd.array(second), [mx.cpu()]).asnumpy()
        return json.dumps({"predictions": np.round(scores.astype(np.float64), 4).tolist()}), "application/json"
    user, k = first, second
    num_items = len(catalog.item_ids)
    scores = predict(net, mx.nd.full((num_items,), user), mx.nd.arange(num_items), [mx.cpu()]).asnumpy()
    best, scores = recommend.top_k(scores, k, catalog.seen[user])
    answer = {"user_id": catalog.user_ids[user], "recommendations": recommend.items_answer(catalog, best, scores)}
    return json.dumps(answer), "application/json"


# ---------------------------------------------------------------- script mode


def parse_args(argv=None):
    """Parses script-mode arguments: the hyperparameters plus optional data and model paths.

    Returns:
        tuple(dict, argparse.Namespace): hyperparameters and paths.
    """
    return script.parse_args(HYPERPARAMETERS, argv, prog="movielens_mf.py", channels=("train", "training"))


def main(argv=None):
    """Script-mode entry: parse arguments (before reading any data), train, save on the first host."""
    hps, paths = parse_args(argv)
    return script.train_and_save(train, save, hps, paths)


if __name__ == "__main__":
    failure.run(main)
