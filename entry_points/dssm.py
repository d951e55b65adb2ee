"""DSSM two-tower recommender on MovieLens-100k: the workshop's DSSM graph, trained, evaluated and served.

Two towers map a user and a movie to unit vectors; the score is their cosine.

* Item (content) tower: the title's bag of words through a sparse projection
  (a CSR batch × a dense weight with row_sparse gradients: the workshop's
  ``SparseBagOfWordProjection``), the genre flags and a release-year bucket →
  Dense(hidden, relu) → Dropout → Dense(k) → L2-normalised. It sees no item
  id, so it places movies never rated in training (cold start) as well.
* User tower: a user-id embedding, age bucket, gender, occupation and zip
  prefix, and (``user_history``) the bag of items the user rated in training
  through a second sparse projection → Dense(hidden, relu) → Dropout → Dense(k)
  → L2-normalised. In training, a share (``sequential_history``) of the
  positives see the bag a held-out latest positive is predicted from: the
  user's ratings before it and the lower ratings after it up to the next
  positive (:func:`histories_as_latest`); the others see the whole bag.

Losses (``loss``): ``cosine``, the workshop's ``CosineLoss``, the mean absolute
error between the cosine and a 1/0 label, with ``negatives`` uniformly sampled
unrated items per positive; or ``softmax``, a softmax over the batch's items
(the other users' positives are the negatives) with ``temperature``.
Positives are the training ratings >= ``positive_threshold``; with
``other_ratings_weight`` (0.25 by default) the other training ratings are
trained as positives too, with that weight in the loss: the evaluation ranks a
held-out movie among movies the user never rated, and a movie rated at all,
liked or not, is one the user chose to watch.

Evaluation (``split="leave_latest"``, the NCF protocol of He et al. 2017,
:mod:`smgluon.ranking`): a seeded ``cold_fraction`` of the movies loses every
rating from training; of the rest, each user's latest positive is held out.
Each held-out positive is ranked among ``eval_negatives`` movies the user never
rated: warm cases among warm movies, cold cases (every positive rating of a
cold movie) among all movies. HR@10 and NDCG@10 of both are logged per epoch.
``split="none"`` trains on every rating (the model to serve).

Several hosts (the parameter server): each worker trains on its share of the
positives (:mod:`smgluon.distributed`), with dense gradients and dense bags,
from rank 0's parameters, and every worker evaluates the whole split: the nets,
and so the metrics every host logs, are identical.

Three ways to run it:

* notebook: ``import dssm; net = dssm.train({"training": "ml-100k/"},
  hyperparameters={"epochs": 5}, hosts=["local"], num_gpus=0)``;
* script mode: ``MXNet(entry_point="dssm.py", source_dir="entry_points",
  dependencies=["lib/smgluon"], ...)``, or ``python dssm.py --training-dir ml-100k/``;
* a hyperparameter tuning job: :data:`HYPERPARAMETERS`, :data:`METRIC_DEFINITIONS`, :data:`OBJECTIVE`.

Data: the GroupLens files of ml-100k in a ``training`` (or ``train``) channel:
``u.data``, ``u.item`` (titles, release dates, genres; latin-1) and ``u.user``.

Serving (``model_fn`` / ``transform_fn``, ``application/json``; item and user
vectors are computed once when the model loads), ids are the GroupLens ids:

* ``{"user_id": 196, "top_k": 10}`` → ``{"user_id": 196, "recommendations":
  [{"item_id", "title", "score"}, ...]}``, movies the user did not rate in training;
* ``{"item_id": 50, "top_k": 10}`` → ``{"item_id": 50, "title": ..., "similar_items": [...]}``;
* ``{"title": "Men in Black (1997)", "genres": ["Comedy", "Sci-Fi"], "year": 1997, "top_k": 10}``
  (genres and year optional) → ``{"users": [{"user_id", "score", "age", "gender",
  "occupation"}, ...], "known_title_words": [...], "unknown_title_words": [...]}``:
  the users most likely to like a movie the model never saw.
"""

import difflib
import json
import logging
import os
import re
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
    cpu_speed,
    distributed,
    export,
    failure,
    kvstore,
    metrics,
    ranking,
    recommend,
    script,
    serving,
    training,
)
from smgluon.hyperparameters import Hyperparameter as HP
from smgluon.hyperparameters import Hyperparameters
from smgluon.movielens import GENRES, read_items, read_ratings, read_users

logger = logging.getLogger(__name__)

# release-year buckets: unknown, before 1940, the 1940s..1970s, 1980-84, 1985-89, then one per year to 1998+
YEAR_EDGES = np.array([1940, 1950, 1960, 1970, 1980, 1985] + list(range(1990, 1999)))
NUM_YEAR_BUCKETS = len(YEAR_EDGES) + 2
AGE_EDGES = np.array([18, 25, 35, 45, 50, 56])  # the MovieLens-1M age groups
NUM_ZIP_BUCKETS = 11  # first digit of a US zip code, or 10 for anything else (Canadian postal codes)
NUM_ITEM_DENSE = len(GENRES) + 1  # genre flags, then the year bucket
TOP_K_METRIC = 10
EVAL_BATCH = 4096
MAX_TOP_K = 100
MAX_TITLE_LENGTH = 500
CATALOG_FILE = "model-catalog.json"
TOWERS = ("user_tower", "item_tower")
MODEL_FILES = tuple("%s-%s" % (t, f) for t in TOWERS for f in ("symbol.json", "0000.params")) + (CATALOG_FILE,)

HYPERPARAMETERS = Hyperparameters(
    [
        HP("num_factors", int, 64, "size k of the user and item vectors", min=2, max=1024, tune=[32, 64, 128]),
        HP("hidden", int, 128, "units of each tower's hidden Dense layer", min=1, max=4096, tune=[64, 128, 256]),
        HP(
            "ensemble",
            int,
            3,
            "tower pairs trained side by side, each on its own loss from its own initialisation; a user's (a "
            "movie's) vector is theirs concatenated and scaled by 1/sqrt(n): still a unit vector, and the score, "
            "still a cosine, is the mean of the pairs' cosines",
            min=1,
            max=16,
        ),
        HP("dropout", float, 0.2, "dropout after each tower's hidden layer", min=0.0, max=0.9, tune=(0.0, 0.6)),
        HP(
            "loss",
            str,
            "full_softmax",
            "full_softmax: softmax over every movie of training; softmax: over the batch's movies; "
            "cosine: |cos - label| with sampled negatives (the workshop's CosineLoss)",
            choices=["cosine", "softmax", "full_softmax"],
            tune=["cosine", "softmax", "full_softmax"],
        ),
        HP("negatives", int, 4, "sampled unrated items per positive (cosine loss)", min=1, max=100, tune=[1, 2, 4, 8]),
        HP(
            "temperature", float, 0.1, "softmax temperature (both softmax losses)", min=0.01, max=10.0, tune=(0.02, 0.5)
        ),
        HP(
            "logq_correction",
            bool,
            True,
            "subtract log(item frequency) from in-batch logits (softmax loss): popular items are not over-penalised",
            tune=[True, False],
        ),
        HP(
            "exclude_rated",
            bool,
            True,
            "full_softmax: the user's other movies rated in training are not negatives (as in the evaluation)",
            tune=[True, False],
        ),
        HP("positive_threshold", int, 4, "ratings >= this are positives (training and evaluation)", min=1, max=5),
        HP(
            "other_ratings_weight",
            float,
            0.25,
            "the ratings below positive_threshold are trained as positives too, with this weight in the loss (a "
            "movie rated at all is one the user chose to watch; 0: only the positives are trained)",
            min=0.0,
            max=1.0,
            tune=(0.0, 1.0),
        ),
        HP(
            "user_history",
            bool,
            True,
            "feed the user tower the bag of items the user rated in training",
            tune=[True, False],
        ),
        HP(
            "sequential_history",
            float,
            1.0,
            "user_history in training: the share of positives (drawn per batch) whose user bag is the one a held-out "
            "latest positive is predicted from (the ratings before it, and the ratings below positive_threshold after "
            "it up to the next positive; by time, ties by movie id); the others: the whole bag",
            min=0.0,
            max=1.0,
            tune=(0.0, 1.0),
        ),
        HP("batch_size", int, 512, "positives per mini-batch per worker", min=2, max=100000, tune=[256, 512, 1024]),
        HP("epochs", int, 12, "passes over the training positives", min=1, max=1000),
        HP("learning_rate", float, 0.003, "learning rate", min=1e-6, max=10.0, tune=(1e-4, 1e-2, "Logarithmic")),
        HP("optimizer", str, "adam", "optimizer", choices=["adam", "sgd", "nag", "rmsprop"], tune=["adam", "rmsprop"]),
        HP("momentum", float, 0.9, "momentum (sgd and nag)", min=0.0, max=0.999),
        HP("weight_decay", float, 0.0, "L2 weight decay", min=0.0, max=1.0, tune=(1e-7, 1e-3, "Logarithmic")),
        HP(
            "split",
            str,
            "leave_latest",
            "leave_latest: hold out cold items and each user's latest positive and evaluate on them; "
            "none: train on every rating",
            choices=["leave_latest", "none"],
        ),
        HP("cold_fraction", float, 0.1, "fraction of the movies held out as cold items (leave_latest)", min=0, max=0.9),
        HP("eval_negatives", int, 99, "unrated items each held-out positive is ranked against", min=1, max=1000),
        HP("log_interval", int, 0, "log the training loss every N batches (0: once per epoch)", min=0),
        HP("max_train_samples", int, 0, "train on the first N training ratings only (0: all)", min=0),
        HP("seed", int, 42, "random seed for the split, initialisation, shuffling and negatives", min=0),
        kvstore.HYPERPARAMETER,
    ],
    description="Train a DSSM two-tower recommender (content item tower, user tower) on MovieLens-100k.",
)

# Logged every epoch by smgluon.metrics; what a tuning job or metric_definitions reads.
METRIC_NAMES = [
    "train_loss",
    "warm_hr10",
    "warm_ndcg10",
    "cold_hr10",
    "cold_ndcg10",
    "samples_per_sec",
    "epoch_seconds",
]
METRIC_DEFINITIONS = metrics.metric_definitions(METRIC_NAMES)
OBJECTIVE = {"metric": "warm_hr10", "type": "Maximize"}


# ---------------------------------------------------------------- the network


class SparseProjection(gluon.HybridBlock):
    """A bag of words (CSR, batch × vocabulary) times a dense (vocabulary × k) weight.

    With ``sparse_grad`` the weight's gradient is row_sparse: only the rows of
    the words in the batch are computed and (lazily) updated.
    """

    def __init__(self, vocabulary_size, units, sparse_grad=True, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.weight = self.params.get(
                "weight",
                shape=(vocabulary_size, units),
                init=mx.init.Normal(0.1),
                grad_stype="row_sparse" if sparse_grad else "default",
            )

    def hybrid_forward(self, F, bag, weight):
        return F.sparse.dot(bag, weight)


class ItemTower(gluon.HybridBlock):
    """Content tower: (title bag of words CSR (B, V), dense features (B, 19 genre flags + year bucket)) → (B, k)."""

    def __init__(self, vocabulary_size, num_factors, hidden, dropout, sparse_grad=True, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.words = SparseProjection(max(vocabulary_size, 1), num_factors, sparse_grad)
            self.year = nn.Embedding(NUM_YEAR_BUCKETS, 8)
            self.hidden = nn.Dense(hidden, activation="relu")
            self.dropout = nn.Dropout(dropout)
            self.out = nn.Dense(num_factors)

    def hybrid_forward(self, F, title, features):
        genres = F.slice_axis(features, axis=1, begin=0, end=len(GENRES))
        year = F.reshape(F.slice_axis(features, axis=1, begin=len(GENRES), end=NUM_ITEM_DENSE), (-1,))
        x = F.concat(self.words(title), genres, self.year(year), dim=1)
        return F.L2Normalization(self.out(self.dropout(self.hidden(x))), mode="instance")


class UserTower(gluon.HybridBlock):
    """User tower: (features (B, 5): user row, age, gender, occupation, zip bucket[, history CSR]) → (B, k)."""

    def __init__(
        self, num_users, num_occupations, num_items, num_factors, hidden, dropout, history, sparse_grad=True, **kwargs
    ):
        super().__init__(**kwargs)
        self.history = history
        with self.name_scope():
            self.user = nn.Embedding(num_users, num_factors, sparse_grad=sparse_grad)
            self.age = nn.Embedding(len(AGE_EDGES) + 1, 4)
            self.gender = nn.Embedding(2, 2)
            self.occupation = nn.Embedding(num_occupations, 8)
            self.zip = nn.Embedding(NUM_ZIP_BUCKETS, 4)
            if history:
                self.items = SparseProjection(num_items, num_factors, sparse_grad)
            self.hidden = nn.Dense(hidden, activation="relu")
            self.dropout = nn.Dropout(dropout)
            self.out = nn.Dense(num_factors)

    def hybrid_forward(self, F, features, *history):
        user, age, gender, occupation, zip_bucket = F.split(features, num_outputs=5, axis=1, squeeze_axis=True)
        parts = [self.user(user), self.age(age), self.gender(gender), self.occupation(occupation), self.zip(zip_bucket)]
        if self.history:
            parts.append(self.items(history[0]))
        x = F.concat(*parts, dim=1)
        return F.L2Normalization(self.out(self.dropout(self.hidden(x))), mode="instance")


class Ensemble(gluon.HybridBlock):
    """``count`` towers made by ``make`` on the same inputs: their unit vectors concatenated and scaled by
    1/sqrt(count), a unit vector whose dot product with another such vector is the mean of the members' cosines."""

    def __init__(self, make, count, **kwargs):
        super().__init__(**kwargs)
        self.count = count
        with self.name_scope():
            for m in range(count):
                setattr(self, "member%d" % m, make())

    def hybrid_forward(self, F, *inputs):
        vectors = [getattr(self, "member%d" % m)(*inputs) for m in range(self.count)]
        return F.concat(*vectors, dim=1) * (1.0 / self.count**0.5)


class EnsembleLoss(gluon.HybridBlock):
    """Each ensemble member's loss on its own slice of the vectors (rescaled to unit length), summed: every
    member trains as it would alone."""

    def __init__(self, loss, count, num_factors, **kwargs):
        super().__init__(**kwargs)
        self.count, self.num_factors = count, num_factors
        with self.name_scope():
            self.loss = loss

    def hybrid_forward(self, F, user_vectors, item_vectors, *rest):
        scale, k = self.count**0.5, self.num_factors
        total = 0
        for m in range(self.count):
            u = F.slice_axis(user_vectors, axis=1, begin=m * k, end=(m + 1) * k) * scale
            v = F.slice_axis(item_vectors, axis=1, begin=m * k, end=(m + 1) * k) * scale
            total = total + self.loss(u, v, *rest)
        return total


class DSSM(gluon.Block):
    """The two towers; :func:`train` attaches the :class:`Catalog` as ``net.catalog``.

    ``sparse_grad``: row_sparse gradients for the id embedding and the bag-of-words projections (one host).
    """

    def __init__(self, catalog, hps, sparse_grad=True, **kwargs):
        super().__init__(**kwargs)

        def user_tower():
            return UserTower(
                len(catalog.user_ids),
                len(catalog.occupation_names),
                len(catalog.item_ids),
                hps["num_factors"],
                hps["hidden"],
                hps["dropout"],
                hps["user_history"],
                sparse_grad,
            )

        def item_tower():
            return ItemTower(len(catalog.vocabulary), hps["num_factors"], hps["hidden"], hps["dropout"], sparse_grad)

        with self.name_scope():
            if hps["ensemble"] == 1:
                self.user_tower, self.item_tower = user_tower(), item_tower()
            else:
                self.user_tower = Ensemble(user_tower, hps["ensemble"])
                self.item_tower = Ensemble(item_tower, hps["ensemble"])


def build_net(catalog, hps, ctx, several_hosts=False):
    """The initialised, hybridized (static_alloc) towers; over several hosts with dense gradients.

    Over several hosts MXNet 1.9.1's parameter servers abort on row_sparse pushes (as for movielens_mf).
    static_alloc is used there too: the hosts' weights drifting apart, once blamed on it, came from
    MXNet's lazy broadcast in the first step (:func:`_train` calls :func:`smgluon.distributed.init_trainer`);
    it happened without static_alloc too, and not with init_trainer (bench/results/findings.md).
    """
    mx.random.seed(hps["seed"])
    net = DSSM(catalog, hps, sparse_grad=not several_hosts)
    net.initialize(mx.init.Xavier(), ctx=ctx)
    net.user_tower.hybridize(static_alloc=True)
    net.item_tower.hybridize(static_alloc=True)
    net.catalog = catalog
    return net


# ---------------------------------------------------------------- features


_YEAR_SUFFIX = re.compile(r"\s*\(\d{4}\)\s*$")
_WORD = re.compile(r"[^\W_]+")


def title_words(title):
    """The distinct lower-case words of a title, without its "(1995)" year: "Godfather, The (1972)" → godfather, the."""
    return list(dict.fromkeys(_WORD.findall(_YEAR_SUFFIX.sub("", title).lower())))


def year_bucket(year):
    """Release-year bucket of :data:`YEAR_EDGES` (0: unknown year)."""
    return 0 if not year else int(np.searchsorted(YEAR_EDGES, year, side="right")) + 1


def age_bucket(age):
    return int(np.searchsorted(AGE_EDGES, age, side="right"))


def zip_bucket(zip_code):
    return int(zip_code[0]) if zip_code[:1].isdigit() else NUM_ZIP_BUCKETS - 1


def bag_rows(rows, num_columns):
    """CSR parts (indptr, indices, values) of bags of column indices, each row weighted 1/sqrt(its size)."""
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    indices = np.array([c for r in rows for c in r], dtype=np.int64)
    if len(indices) and (indices.min() < 0 or indices.max() >= num_columns):
        raise ValueError("bag index out of range 0..%d" % (num_columns - 1))
    return _csr_rows(np.zeros_like(lengths), lengths)[0], indices, _bag_weights(lengths)


def histories_as_latest(users, items, timestamps, positive, rows=None):
    """CSR parts (as :func:`bag_rows`) of, per positive (or per rating of ``rows``), its user's bag as if it were
    the user's latest positive.

    That is the bag a held-out latest positive is predicted from (:func:`smgluon.ranking.leave_latest_out`):
    every rating of the user before it, and the user's ratings below the threshold after it, up to the
    user's next positive (the held-out case's are every rating after it). Ratings are in the evaluation's
    order (:func:`smgluon.ranking.chronological`). The rows follow the input order of ``rows``.

    Args:
        users, items, timestamps: (N,) columns of the ratings.
        positive (numpy.ndarray): bool (N,), the positives.
        rows (numpy.ndarray): bool (N,), the ratings to give a bag (default: the positives); a rating below
            the threshold gets the bag it would be predicted from were it a positive, the user's latest.
    """
    users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
    positive = np.asarray(positive, dtype=bool)
    order = ranking.chronological(users, items, timestamps)
    sorted_users = users[order]
    first = np.searchsorted(sorted_users, sorted_users)  # where each rating's user begins in ``order``
    end = np.searchsorted(sorted_users, sorted_users, side="right")
    later_positives = np.r_[np.flatnonzero(positive[order]), len(order)]
    following = later_positives[np.searchsorted(later_positives, np.arange(len(order)), side="right")]
    where = np.empty(len(order), dtype=np.int64)
    where[order] = np.arange(len(order))
    at = where[positive if rows is None else np.asarray(rows, dtype=bool)]
    # the user's ratings from its first up to the next positive (or the user's end), then without this one
    lengths = np.minimum(following[at], end[at]) - first[at]
    _, source = _csr_rows(first[at], lengths)
    keep = source != np.repeat(at, lengths)
    lengths = lengths - 1
    return np.r_[0, np.cumsum(lengths)].astype(np.int64), items[order][source[keep]], _bag_weights(lengths)


def _csr_rows(starts, lengths):
    """The indptr of rows of ``lengths`` entries, and where their entries are in a source (row i at ``starts[i]``)."""
    indptr = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    return indptr, np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1], dtype=np.int64)


def _bag_weights(lengths):
    return np.repeat(1.0 / np.sqrt(np.maximum(lengths, 1)), lengths).astype(np.float32)


def take_csr(parts, rows, num_columns, ctx=None):
    """Rows ``rows`` of a CSR matrix given as (indptr, indices, values), as an MXNet CSR NDArray."""
    indptr, indices, values = parts
    rows = np.asarray(rows, dtype=np.int64)
    new_indptr, at = _csr_rows(indptr[rows], indptr[rows + 1] - indptr[rows])
    return mx.nd.sparse.csr_matrix(
        (values[at], indices[at], new_indptr), shape=(len(rows), num_columns), ctx=ctx or mx.cpu()
    )


class Catalog(recommend.Catalog):
    """The movies, the users and what the towers read about them; saved beside the model for serving.

    Args:
        items (dict): ``ids``, ``titles``, ``years``, ``genres`` (genre indices per movie).
        users (dict): ``ids``, ``ages``, ``genders``, ``occupations``, ``zip_codes``.
        vocabulary (list[str]): the title words the item tower knows (those of the movies in training).
        seen (list[list[int]]): per user row, the item rows rated in training.
        user_history (bool): whether the user tower reads the bag of rated items.
        cold_item_ids (list[int]): the movies held out of training (empty for ``split="none"``).
    """

    def __init__(self, items, users, vocabulary, seen, user_history, cold_item_ids=()):
        super().__init__(users["ids"], items["ids"], items["titles"], seen)
        self.years = [int(y) for y in items["years"]]
        self.genres = [sorted(int(g) for g in gs) for gs in items["genres"]]
        self.ages = [int(a) for a in users["ages"]]
        self.genders = list(users["genders"])
        self.occupations = list(users["occupations"])
        self.zip_codes = list(users["zip_codes"])
        self.vocabulary = list(vocabulary)
        self.user_history = bool(user_history)
        self.cold_item_ids = [int(i) for i in cold_item_ids]

        self.word_index = {w: n for n, w in enumerate(self.vocabulary)}
        self.occupation_names = sorted(set(self.occupations))
        self.genre_index = {g.lower(): n for n, g in enumerate(GENRES)}
        # the towers' inputs for every movie and user, built once
        self.item_titles = bag_rows([self.known_words(t)[0] for t in self.titles], max(len(self.vocabulary), 1))
        self.item_dense = np.array(
            [self.item_features(g, y) for g, y in zip(self.genres, self.years)], dtype=np.float32
        ).reshape(-1, NUM_ITEM_DENSE)
        occupation_row = {o: n for n, o in enumerate(self.occupation_names)}
        self.user_dense = np.array(
            [
                (row, age_bucket(a), self.genders[row] == "F", occupation_row[o], zip_bucket(z))
                for row, (a, o, z) in enumerate(zip(self.ages, self.occupations, self.zip_codes))
            ],
            dtype=np.float32,
        ).reshape(-1, 5)
        self.user_items = bag_rows(self.seen, len(self.item_ids))

    def known_words(self, title):
        """(word indices, known words, unknown words) of a title."""
        words = title_words(title)
        known = [w for w in words if w in self.word_index]
        return [self.word_index[w] for w in known], known, [w for w in words if w not in self.word_index]

    @staticmethod
    def item_features(genre_indices, year):
        features = np.zeros(NUM_ITEM_DENSE, dtype=np.float32)
        features[list(genre_indices)] = 1.0
        features[-1] = year_bucket(year)
        return features

    def item_inputs(self, rows, ctx=None):
        """The item tower's inputs for item rows."""
        rows = np.asarray(rows, dtype=np.int64)
        title = take_csr(self.item_titles, rows, max(len(self.vocabulary), 1), ctx)
        return title, mx.nd.array(self.item_dense[rows], ctx=ctx)

    def user_inputs(self, rows, ctx=None, bags=None):
        """The user tower's inputs for user rows; ``bags`` (CSR parts, their rows): those bags, not the users'."""
        rows = np.asarray(rows, dtype=np.int64)
        inputs = [mx.nd.array(self.user_dense[rows], ctx=ctx)]
        if self.user_history:
            parts, at = bags if bags is not None else (self.user_items, rows)
            inputs.append(take_csr(parts, at, len(self.item_ids), ctx))
        return inputs

    def to_json(self):
        return {
            "items": {"ids": self.item_ids, "titles": self.titles, "years": self.years, "genres": self.genres},
            "users": {
                "ids": self.user_ids,
                "ages": self.ages,
                "genders": self.genders,
                "occupations": self.occupations,
                "zip_codes": self.zip_codes,
            },
            "vocabulary": self.vocabulary,
            "seen": self.seen,
            "user_history": self.user_history,
            "cold_item_ids": self.cold_item_ids,
        }

    @classmethod
    def from_json(cls, doc):
        return cls(
            doc["items"], doc["users"], doc["vocabulary"], doc["seen"], doc["user_history"], doc["cold_item_ids"]
        )


# ---------------------------------------------------------------- data


class Data:
    """What :func:`train` reads: the catalog, the training positives and the evaluation split.

    Attributes:
        catalog (Catalog): movies, users, vocabulary and items seen in training.
        positives (numpy.ndarray): int64 (P, 2) user row, item row of the ratings trained as positives: the
            positives, and with ``other_ratings_weight`` every other training rating too.
        weights (numpy.ndarray): float32 (P,) each one's weight in the loss (1 for a positive,
            ``other_ratings_weight`` for another rating), or None when all are 1.
        rated (numpy.ndarray): bool (users, items): rated in training (never sampled as a negative).
        negative_pool (numpy.ndarray): item rows negatives are drawn from (movies with training ratings).
        split (smgluon.ranking.Split): the evaluation split; None for ``split="none"``.
        log_frequency (numpy.ndarray): per item row, log of its share of the positives (for logQ correction).
        catalog_adjust (numpy.ndarray): float32 (1, items): 0 for the movies of training, -1e4 for the others,
            added to the full softmax's logits so that a cold movie is never a negative (nor ever trained).
        history_bags (tuple): with ``sequential_history``, CSR parts whose row i < P (the number of positives)
            is positive i's bag as if it were its user's latest (:func:`histories_as_latest`) and row P + u
            user u's whole bag; else None (every positive: its user's whole bag).
    """

    def __init__(self, catalog, positives, rated, negative_pool, split, positive_history=None, weights=None):
        self.catalog, self.positives, self.rated, self.weights = catalog, positives, rated, weights
        self.negative_pool, self.split = negative_pool, split
        self.history_bags = None
        if positive_history is not None:
            (hi, hx, hv), (ui, ux, uv) = positive_history, catalog.user_items
            self.history_bags = (np.r_[hi, hi[-1] + ui[1:]], np.r_[hx, ux], np.r_[hv, uv])
        counts = np.bincount(positives[:, 1], minlength=len(catalog.item_ids))
        self.log_frequency = np.log(np.maximum(counts, 1) / max(len(positives), 1))
        self.catalog_adjust = np.full((1, len(catalog.item_ids)), -1e4, dtype=np.float32)
        self.catalog_adjust[0, negative_pool] = 0.0


def load_data(channel_dirs, hps):
    """Reads u.data, u.item and u.user, splits the ratings and builds the catalog.

    Raises:
        ChannelError: naming a missing or malformed file, or ids missing from u.item / u.user.
    """
    directory, _ = channels.train_test_dirs(channel_dirs)
    ratings = read_ratings(os.path.join(directory, "u.data"))
    items = read_items(os.path.join(directory, "u.item"))
    users = read_users(os.path.join(directory, "u.user"))
    for column, known, name in ((1, items.ids, "u.item"), (0, users.ids, "u.user")):
        unknown = np.setdiff1d(ratings[:, column], known)
        if len(unknown):
            what = "item" if column else "user"
            raise channels.ChannelError(
                "%s ids %s are rated in u.data but missing from %s" % (what, unknown[:10].tolist(), name)
            )

    split = None
    train_ratings = ratings
    if hps["split"] == "leave_latest":
        split = ranking.ncf_split(
            ratings, items.ids, hps["positive_threshold"], hps["cold_fraction"], hps["eval_negatives"], hps["seed"]
        )
        train_ratings = split.train
    if hps["max_train_samples"]:
        train_ratings = train_ratings[: hps["max_train_samples"]]

    item_row = {i: n for n, i in enumerate(items.ids.tolist())}
    user_row = {u: n for n, u in enumerate(users.ids.tolist())}
    t_users = np.array([user_row[u] for u in train_ratings[:, 0].tolist()], dtype=np.int64)
    t_items = np.array([item_row[i] for i in train_ratings[:, 1].tolist()], dtype=np.int64)
    positive = train_ratings[:, 2] >= hps["positive_threshold"]
    if positive.sum() < hps["batch_size"]:
        raise channels.ChannelError(
            "only %d training ratings >= %d for batch_size %d: lower batch_size or positive_threshold, or add data"
            % (positive.sum(), hps["positive_threshold"], hps["batch_size"])
        )
    seen = [[] for _ in range(len(users))]
    for u, i in zip(t_users.tolist(), t_items.tolist()):
        seen[u].append(i)
    in_training = np.unique(t_items)
    vocabulary = sorted({w for row in in_training.tolist() for w in title_words(items.titles[row])})
    catalog = Catalog(
        {
            "ids": items.ids,
            "titles": items.titles,
            "years": items.years,
            "genres": [np.flatnonzero(g).tolist() for g in items.genres],
        },
        {
            "ids": users.ids,
            "ages": users.ages,
            "genders": users.genders,
            "occupations": users.occupations,
            "zip_codes": users.zip_codes,
        },
        vocabulary,
        seen,
        hps["user_history"],
        split.cold_items.tolist() if split is not None else (),
    )
    rated = np.zeros((len(users), len(items)), dtype=bool)
    rated[t_users, t_items] = True
    # the ratings trained as positives: the positives, and with other_ratings_weight the others, weighted
    trained = positive | (hps["other_ratings_weight"] > 0)
    positives = np.stack([t_users[trained], t_items[trained]], axis=1)
    weights = None
    if not positive[trained].all():
        weights = np.where(positive[trained], 1.0, hps["other_ratings_weight"]).astype(np.float32)
    history = None
    if hps["user_history"] and hps["sequential_history"] > 0:
        history = histories_as_latest(t_users, t_items, train_ratings[:, 3], positive, trained)
    return Data(catalog, positives, rated, in_training, split, history, weights)


# ---------------------------------------------------------------- train / evaluate


class Recommender:
    """The towers with every user's and movie's vector computed once: what serving and evaluation use.

    Args:
        user_tower, item_tower: the towers (trained blocks or imported SymbolBlocks).
        catalog (Catalog): movies and users.
        ctx (mxnet.Context): where the towers run.
    """

    def __init__(self, user_tower, item_tower, catalog, ctx=None):
        self.user_tower, self.item_tower, self.catalog = user_tower, item_tower, catalog
        self.ctx = ctx or mx.cpu()
        self.item_vectors = self._vectors(item_tower, catalog.item_inputs, len(catalog.item_ids))
        self.user_vectors = self._vectors(user_tower, catalog.user_inputs, len(catalog.user_ids))

    def _vectors(self, tower, inputs, count):
        parts = [
            tower(*inputs(np.arange(s, min(s + EVAL_BATCH, count)), self.ctx)).asnumpy()
            for s in range(0, count, EVAL_BATCH)
        ]
        return np.concatenate(parts).astype(np.float32)

    def new_item_vector(self, title, genre_indices, year):
        """The item tower's vector for a movie described by its title, genres and year; and the known words."""
        word_rows, known, unknown = self.catalog.known_words(title)
        width = max(len(self.catalog.vocabulary), 1)
        title_bag = take_csr(bag_rows([word_rows], width), [0], width)
        features = mx.nd.array(self.catalog.item_features(genre_indices, year)[None, :])
        vector = self.item_tower(title_bag.as_in_context(self.ctx), features.as_in_context(self.ctx))
        return vector.asnumpy()[0], known, unknown

    def scorer(self):
        """A :func:`smgluon.ranking.evaluate` scorer: the cosine of user and item vectors, by GroupLens ids."""
        user_row = np.vectorize(self.catalog.user_index.__getitem__, otypes=[np.int64])
        item_row = np.vectorize(self.catalog.item_index.__getitem__, otypes=[np.int64])

        def score(users, candidates):
            u = self.user_vectors[user_row(users)]
            return np.einsum("ck,cnk->cn", u, self.item_vectors[item_row(candidates)])

        return score


def recommender(net):
    """The :class:`Recommender` of a trained net or a loaded model, built once and kept on it."""
    if isinstance(net, Recommender):
        return net
    if getattr(net, "_recommender", None) is None:
        net._recommender = Recommender(net.user_tower, net.item_tower, net.catalog, _context(net))
    return net._recommender


def _context(net):
    """Where a trained net's parameters live."""
    return next(iter(net.item_tower.collect_params().values())).list_ctx()[0]


def evaluate(net, split):
    """HR@10 and NDCG@10 of the warm and the cold cases of ``split``.

    Returns:
        dict: ``warm_hr10``, ``warm_ndcg10``, ``cold_hr10``, ``cold_ndcg10`` (NaN without cold cases).
    """
    scorer = Recommender(net.user_tower, net.item_tower, net.catalog, _context(net)).scorer()
    values = {}
    for name, users, candidates in (
        ("warm", split.warm_users, split.warm_candidates),
        ("cold", split.cold_users, split.cold_candidates),
    ):
        result = ranking.evaluate(scorer, users, candidates, TOP_K_METRIC)
        values["%s_hr%d" % (name, TOP_K_METRIC)] = result["hr"]
        values["%s_ndcg%d" % (name, TOP_K_METRIC)] = result["ndcg"]
    return values


class CosineLoss(gluon.HybridBlock):
    """The workshop's CosineLoss: mean |cos(u, v) - label| with label 1 for a positive and 0 for a negative."""

    def hybrid_forward(self, F, user_vectors, item_vectors, users, items, labels):
        # every user's and item's vector (unit length); users (B,) rows; items (B, 1 + n) rows, the positive first
        u = F.expand_dims(F.take(user_vectors, users), axis=1)
        cosine = F.sum(F.broadcast_mul(u, F.take(item_vectors, items)), axis=2)
        return F.mean(F.abs(cosine - labels), axis=1)


class InBatchSoftmaxLoss(gluon.HybridBlock):
    """Softmax over the batch's items: user i's positive is item i, the other users' positives its negatives.

    A popular item is drawn as a negative in many batches. With ``logq_correction`` the log of each item's
    sampling probability (its share of the positives) is subtracted from its logits (Yi et al. 2019, the
    "sampling-bias-corrected" in-batch softmax), so the loss estimates a softmax over the catalogue rather
    than one that punishes popular items for being drawn often.
    """

    def __init__(self, temperature, **kwargs):
        super().__init__(**kwargs)
        self.temperature = temperature
        self.xent = gluon.loss.SoftmaxCrossEntropyLoss()

    def hybrid_forward(self, F, user_vectors, item_vectors, users, items, adjust, labels):
        # adjust: -log(frequency of item j) (or 0), and -1e4 where item j is user i's positive too (a duplicate)
        logits = F.dot(F.take(user_vectors, users), F.take(item_vectors, items), transpose_b=True)
        return self.xent(logits / self.temperature + adjust, labels)


class FullSoftmaxLoss(gluon.HybridBlock):
    """Softmax over every movie of the catalogue (cheap here: both towers already run over all of them).

    ``adjust`` (1, items): 0 for the movies of training, -1e4 for the others (cold movies are never a negative).
    """

    def __init__(self, temperature, **kwargs):
        super().__init__(**kwargs)
        self.temperature = temperature
        self.xent = gluon.loss.SoftmaxCrossEntropyLoss()

    def hybrid_forward(self, F, user_vectors, item_vectors, users, adjust, labels):
        logits = F.dot(F.take(user_vectors, users), item_vectors, transpose_b=True)
        return self.xent(F.broadcast_add(logits / self.temperature, adjust), labels)


def build_loss(hps, hybridize=True):
    """The loss block of ``hps["loss"]``, hybridized, but not with static_alloc: MXNet 1.9 then computes
    wrong gradients for the softmax loss (a test compares both losses with their imperative gradients)."""
    if hps["loss"] == "cosine":
        loss_fn = CosineLoss()
    elif hps["loss"] == "full_softmax":
        loss_fn = FullSoftmaxLoss(hps["temperature"])
    else:
        loss_fn = InBatchSoftmaxLoss(hps["temperature"])
    if hps["ensemble"] > 1:
        loss_fn = EnsembleLoss(loss_fn, hps["ensemble"], hps["num_factors"])
    if hybridize:
        loss_fn.hybridize()
    return loss_fn


def _loss_inputs(data, positives, rng, hps, ctx, per_positive=False):
    """One batch's loss inputs (rows into the user and item vectors, labels or mask), on ``ctx``.

    ``per_positive``: the user vectors are the batch's own (row i for positive i), not every user's.
    """
    users, items = positives[:, 0], positives[:, 1]
    user_rows = np.arange(len(users)) if per_positive else users
    if hps["loss"] == "cosine":
        negatives = recommend.sample_negatives(rng, users, hps["negatives"], data.negative_pool, data.rated)
        items = np.concatenate([items[:, None], negatives], axis=1)
        extra = [np.zeros(items.shape, dtype=np.float32)]
        extra[0][:, 0] = 1.0
    elif hps["loss"] == "full_softmax":
        adjust = data.catalog_adjust
        if hps["exclude_rated"]:
            adjust = adjust + np.where(data.rated[users], np.float32(-1e4), np.float32(0))
            adjust[np.arange(len(items)), items] = 0.0
        return [mx.nd.array(a, ctx=ctx) for a in (user_rows, adjust, items)]
    else:
        duplicate = (items[:, None] == items[None, :]) & ~np.eye(len(items), dtype=bool)
        adjust = np.where(duplicate, -1e4, 0.0)
        if hps["logq_correction"]:
            adjust -= data.log_frequency[items][None, :]
        extra = [adjust, np.arange(len(items))]
    return [mx.nd.array(a, ctx=ctx) for a in [user_rows, items] + extra]


def train(channel_input_dirs, hyperparameters, hosts, num_gpus, **kwargs):
    """Trains the DSSM; the signature of the legacy SageMaker ``train`` hook the workshop calls.

    Args:
        channel_input_dirs (dict): channel name → directory (``{"training": "ml-100k/"}``).
        hyperparameters (dict): values as Python objects or SageMaker's JSON-encoded strings.
        hosts (list[str]): the job's hosts (``["local"]`` in a notebook).
        num_gpus (int): GPUs to train on (0: CPU; the towers run on the first context).
        **kwargs: ``current_host``, ``output_data_dir`` (for metrics.json),
            ``checkpoint_dir`` (resume and save per epoch).

    Returns:
        DSSM: the trained net; ``net.catalog`` holds what :func:`save` writes
        beside the towers, ``net.split`` the evaluation split (None for ``split="none"``).
    """
    hps = HYPERPARAMETERS.parse_dict(hyperparameters)
    with cpu_speed.flush_denormals():
        return _train(hps, channel_input_dirs, hosts, num_gpus, **kwargs)


def _train(hps, channel_input_dirs, hosts, num_gpus, **kwargs):
    ctx = context.contexts(num_gpus)[0]
    kv = training.create_kvstore(hosts, num_gpus, hps["kvstore"])
    several_hosts = training.is_distributed(kv)
    workers = distributed.Workers(kv)
    data = load_data(channel_input_dirs, hps)
    # Each worker trains on its share of the positives (a new one each epoch), the same number of batches everywhere.
    batch_size = hps["batch_size"]
    sampler, num_batches = distributed.training_plan(
        workers, len(data.positives), hps["seed"], batch_size, unit="training positives"
    )

    net = build_net(data.catalog, hps, ctx, several_hosts)
    net.split = data.split
    trainer = training.create_trainer(net.collect_params(), hps, [ctx], kv)
    loss_fn = build_loss(hps)
    checkpoint_dir = kwargs.get("checkpoint_dir")
    first_epoch = checkpoints.load_latest(checkpoint_dir, net, trainer, [ctx]) + 1
    log = metrics.MetricsLogger(
        kwargs.get("output_data_dir"),
        extra={"workload": "dssm", "hyperparameters": hps},
        history=checkpoints.history(checkpoint_dir, first_epoch - 1),
    )
    if data.split is not None:
        logger.info("split: %s", json.dumps(data.split.summary()))

    rng = np.random.RandomState(hps["seed"] + 1 + workers.rank)  # negatives (cosine loss)
    user_inputs = data.catalog.user_inputs(np.arange(len(data.catalog.user_ids)), ctx)
    item_inputs = data.catalog.item_inputs(np.arange(len(data.catalog.item_ids)), ctx)
    if several_hosts:
        # dense bags (a few MB here): a CSR bag with a dense gradient takes MXNet's dense storage fallback
        user_inputs, item_inputs = ([a.tostype("default") for a in inputs] for inputs in (user_inputs, item_inputs))
        # Every worker takes rank 0's parameters before the first batch. Left to MXNet, that broadcast runs
        # inside the first trainer.step() beside the step's gradient allreduce, and its pull can come back
        # with the summed gradient: that worker's weight then is the gradient, and the hosts' nets (and
        # ranking metrics) differ for the rest of the job (bench/results/findings.md). One forward pass gives
        # the parameters their shapes first. Not on one host: there is nothing to broadcast, and this
        # dropout-free pass would initialise the item tower before the first batch's user-tower dropout
        # draws instead of after them, changing the seeded single-host results.
        net.user_tower(*user_inputs)
        net.item_tower(*item_inputs)
        distributed.init_trainer(trainer)
    per_positive = data.history_bags is not None
    for epoch in range(first_epoch, hps["epochs"] + 1):
        tic = time.time()
        order = sampler.epoch(epoch)
        # which positives see their bag as if they were the latest: seeded per epoch and worker, so a resumed
        # job draws the same
        bag_rng = np.random.RandomState([hps["seed"], epoch, workers.rank])
        loss_sum = mx.nd.zeros((1,), ctx=ctx)
        for b in range(num_batches):
            rows = order[b * batch_size : (b + 1) * batch_size]
            batch = data.positives[rows]
            loss_inputs = _loss_inputs(data, batch, rng, hps, ctx, per_positive)
            users = user_inputs
            if per_positive:
                # a share of the positives see their user's bag as if that rating were the latest, the others
                # the whole bag (row len(positives) + user of history_bags)
                as_latest = bag_rng.rand(len(rows)) < hps["sequential_history"]
                at = np.where(as_latest, rows, len(data.positives) + batch[:, 0])
                users = data.catalog.user_inputs(batch[:, 0], ctx, (data.history_bags, at))
                if several_hosts:
                    users = [a.tostype("default") for a in users]
            with autograd.record():
                # the towers run over every movie and every user (or the batch's positives): on this catalogue
                # that costs less than running them over the batch's rows (1 + negatives per positive)
                loss = loss_fn(net.user_tower(*users), net.item_tower(*item_inputs), *loss_inputs)
                if data.weights is not None:
                    loss = loss * mx.nd.array(data.weights[rows], ctx=ctx)
            loss.backward()
            trainer.step(batch_size)
            loss_sum += loss.sum()
            if hps["log_interval"] and (b + 1) % hps["log_interval"] == 0:
                logger.info(
                    "epoch %d batch %d/%d loss %.4f samples/s %.0f",
                    epoch,
                    b + 1,
                    num_batches,
                    loss_sum.asscalar() / ((b + 1) * batch_size * hps["ensemble"]),
                    (b + 1) * batch_size / (time.time() - tic),
                )
        loss_total = float(loss_sum.asscalar())
        seconds = time.time() - tic  # training only; the evaluation below is not counted
        workers.check_same_parameters(net.collect_params(), "after epoch %d" % epoch)  # a clear error, not drift
        # the loss over every worker's batches; each worker evaluates the whole (small) split itself
        loss_total, seen = workers.allreduce([loss_total, num_batches * batch_size])
        # an ensemble's loss is its members' sum: logged per member, comparable across ensemble sizes
        values = {"train_loss": loss_total / seen / hps["ensemble"]}
        if data.split is not None:
            values.update(evaluate(net, data.split))
        training.end_epoch(log, epoch, values, seen, seconds, checkpoint_dir, net, trainer)
    if log.history:
        log.finish()
    return net


# ---------------------------------------------------------------- save / load


def save(net, model_dir):
    """Writes the model :func:`model_fn` loads.

    Files: ``user_tower-symbol.json`` / ``-0000.params`` (inputs ``data0``: user
    features (B, 5) float32; ``data1``: the CSR bag of rated items; a lone ``data``
    without ``user_history``), ``item_tower-symbol.json`` / ``-0000.params`` (``data0``:
    the title's CSR bag of words, ``data1``: genre flags and year bucket (B, 20)),
    and ``model-catalog.json`` (movies, users, vocabulary, items seen in training),
    moved in only once all are written (:func:`smgluon.export.export_model`).

    Args:
        net (DSSM): a trained net with its ``catalog``.
        model_dir (str): destination directory.
    """
    catalog, ctx = net.catalog, _context(net)
    towers = {
        "user_tower": (net.user_tower, catalog.user_inputs([0], ctx)),
        "item_tower": (net.item_tower, catalog.item_inputs([0], ctx)),
    }
    export.export_model(towers, model_dir, extra_files={CATALOG_FILE: catalog.to_json()})


def model_fn(model_dir):
    """Loads the towers and the catalog, and computes every user's and movie's vector once.

    Args:
        model_dir (str): the directory :func:`save` wrote.

    Returns:
        Recommender
    """
    with open(os.path.join(model_dir, CATALOG_FILE)) as f:
        catalog = Catalog.from_json(json.load(f))
    towers = []
    for name in TOWERS:
        symbol_file = os.path.join(model_dir, name + "-symbol.json")
        # Gluon names a lone input "data", several "data0", "data1", ...
        inputs = sorted(n for n in mx.sym.load(symbol_file).list_inputs() if re.fullmatch(r"data\d*", n))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Cannot decide type")
            tower = gluon.SymbolBlock.imports(
                symbol_file, inputs, os.path.join(model_dir, name + "-0000.params"), ctx=mx.cpu()
            )
        tower.hybridize(static_alloc=True)
        towers.append(tower)
    return Recommender(towers[0], towers[1], catalog)


# ---------------------------------------------------------------- serving

_REQUEST_KINDS = (
    ({"user_id", "top_k"}, set()),
    ({"item_id", "top_k"}, set()),
    ({"title", "top_k"}, {"genres", "year"}),
)
_EXAMPLES = (
    '{"user_id": 196, "top_k": 10}, {"item_id": 50, "top_k": 10}, or '
    '{"title": "Men in Black (1997)", "genres": ["Comedy", "Sci-Fi"], "year": 1997, "top_k": 10}'
)


def _integer(payload, key, low, high, what):
    value = payload[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise serving.RequestError("%r must be %s, got %s" % (key, what, json.dumps(value)[:100]))
    return value


def _genres(value, catalog):
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(g, str) for g in value):
        raise serving.RequestError('"genres" must be a list of genre names, e.g. ["Comedy", "Sci-Fi"]')
    indices = []
    for genre in value:
        if genre.lower() not in catalog.genre_index:
            close = difflib.get_close_matches(genre, GENRES, n=1)
            hint = " Did you mean %r?" % close[0] if close else ""
            raise serving.RequestError("unknown genre %r.%s Genres: %s" % (genre, hint, ", ".join(GENRES)))
        indices.append(catalog.genre_index[genre.lower()])
    return sorted(set(indices))


def _parse_request(data, content_type, catalog):
    """Decodes a request into (kind, payload): kind is "user_id", "item_id" or "title"."""
    ctype, _ = serving.media_type(content_type)
    if ctype != "application/json":
        raise serving.RequestError("unsupported content type %r: send application/json" % content_type, 415)
    payload = serving.decode_json(data)
    if not isinstance(payload, dict):
        raise serving.RequestError("expected a JSON object: %s" % _EXAMPLES)
    keys = set(payload)
    for required, optional in _REQUEST_KINDS:
        if required <= keys and keys <= required | optional:
            kind = sorted(required - {"top_k"})[0]
            break
    else:
        raise serving.RequestError("unrecognised request with keys %s: send %s" % (sorted(keys), _EXAMPLES))
    _integer(payload, "top_k", 1, MAX_TOP_K, "an integer in 1..%d" % MAX_TOP_K)
    if kind == "title":
        title = payload["title"]
        if not isinstance(title, str) or not title.strip() or len(title) > MAX_TITLE_LENGTH:
            raise serving.RequestError(
                '"title" must be a non-empty string of at most %d characters, e.g. "Men in Black (1997)"'
                % MAX_TITLE_LENGTH
            )
        payload["genres"] = _genres(payload.get("genres"), catalog)
        if payload.get("year") is not None:
            _integer(payload, "year", 1800, 2100, "a release year in 1800..2100 (or null)")
    return kind, payload


@serving.answer_request_errors
def transform_fn(model, data, input_content_type, output_content_type):
    """Recommends movies for a user, movies like a movie, or users for a movie never seen in training.

    Args:
        model: the :class:`Recommender` from :func:`model_fn`, or a trained :class:`DSSM` (notebook).
        data (bytes or str): the request body.
        input_content_type (str): application/json.
        output_content_type (str): application/json.

    Returns:
        tuple(str, str): the JSON answer and its content type.

    Raises:
        smgluon.serving.RequestError: a client error (4xx) naming the problem.
    """
    model = recommender(model)
    catalog = model.catalog
    serving.accept_json(output_content_type)
    kind, payload = _parse_request(data, input_content_type, catalog)
    k = payload["top_k"]
    if kind == "user_id":
        user = recommend.request_row(payload, "user_id", catalog.user_index, "user")
        best, scores = recommend.top_k(model.item_vectors @ model.user_vectors[user], k, catalog.seen[user])
        answer = {"user_id": catalog.user_ids[user], "recommendations": recommend.items_answer(catalog, best, scores)}
    elif kind == "item_id":
        item = recommend.request_row(payload, "item_id", catalog.item_index, "item")
        best, scores = recommend.top_k(model.item_vectors @ model.item_vectors[item], k, [item])
        answer = {
            "item_id": catalog.item_ids[item],
            "title": catalog.titles[item],
            "similar_items": recommend.items_answer(catalog, best, scores),
        }
    else:
        vector, known, unknown = model.new_item_vector(payload["title"], payload["genres"], payload.get("year"))
        best, scores = recommend.top_k(model.user_vectors @ vector, k)
        answer = {
            "title": payload["title"],
            "genres": [GENRES[g] for g in payload["genres"]],
            "year": payload.get("year"),
            "known_title_words": known,
            "unknown_title_words": unknown,
            "users": [
                {
                    "user_id": catalog.user_ids[u],
                    "score": round(float(scores[u]), 4),
                    "age": catalog.ages[u],
                    "gender": catalog.genders[u],
                    "occupation": catalog.occupations[u],
                }
                for u in best
            ],
        }
    return json.dumps(answer), "application/json"


# ---------------------------------------------------------------- script mode


def parse_args(argv=None):
    """Parses script-mode arguments: the hyperparameters plus optional data and model paths.

    Returns:
        tuple(dict, argparse.Namespace): hyperparameters and paths.
    """
    return script.parse_args(HYPERPARAMETERS, argv, prog="dssm.py", channels=("train", "training"))


def main(argv=None):
    """Script-mode entry: parse arguments (before reading any data), train, save on the first host."""
    hps, paths = parse_args(argv)
    return script.train_and_save(train, save, hps, paths)


if __name__ == "__main__":
    failure.run(main)
