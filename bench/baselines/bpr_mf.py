"""BPR matrix factorisation (Rendle et al. 2009) in MXNet Gluon: the implicit-feedback baseline DSSM is compared with.

A user vector, an item vector and an item bias; the score of (user, item) is
their dot product plus the bias. Each training step takes a batch of positives
(user, item), draws ``negatives`` items per positive uniformly from the movies of
training that the user never rated, and minimises the BPR loss
``-log sigmoid(score(u, i) - score(u, j))`` plus an L2 penalty on the vectors and
biases of the batch (Rendle's per-sample regularisation, not weight decay on the
whole table). It reads the same positives as DSSM (ratings >= the threshold of the
split's training ratings) and is scored by :func:`smgluon.ranking.evaluate` like
every other model of ``bench/dssm.py``.

Usage (from the repository root)::

    .venv/bin/python -m bench.baselines.bpr_mf   # trains on the NCF split of ml-100k, prints HR@10
"""

import argparse
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [os.path.join(REPO, "lib")]

import mxnet as mx  # noqa: E402
from mxnet import autograd, gluon  # noqa: E402

from smgluon import ranking, recommend  # noqa: E402

DEFAULTS = {
    "num_factors": 64,
    "epochs": 30,
    "batch_size": 1024,
    "learning_rate": 0.005,
    "l2": 1e-4,
    "negatives": 4,
    "seed": 42,
}


class BPRMF(gluon.HybridBlock):
    """score(u, i) = <p_u, q_i> + b_i."""

    def __init__(self, num_users, num_items, num_factors, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.users = gluon.nn.Embedding(num_users, num_factors, weight_initializer=mx.init.Normal(0.01))
            self.items = gluon.nn.Embedding(num_items, num_factors, weight_initializer=mx.init.Normal(0.01))
            self.bias = gluon.nn.Embedding(num_items, 1, weight_initializer=mx.init.Zero())

    def hybrid_forward(self, F, users, positives, negatives):
        # users (B,), positives (B,), negatives (B, n) → BPR loss per positive (B,) and the L2 penalty (B,)
        p = self.users(users)
        q_pos, q_neg = self.items(positives), self.items(negatives)
        b_pos, b_neg = F.reshape(self.bias(positives), (-1,)), F.reshape(self.bias(negatives), (0, -1))
        pos = F.sum(p * q_pos, axis=1) + b_pos
        neg = F.sum(F.broadcast_mul(F.expand_dims(p, axis=1), q_neg), axis=2) + b_neg
        loss = F.mean(F.log(1 + F.exp(-F.broadcast_sub(F.expand_dims(pos, axis=1), neg))), axis=1)
        penalty = F.sum(p * p, axis=1) + F.sum(q_pos * q_pos, axis=1) + b_pos * b_pos
        penalty = penalty + F.mean(F.sum(q_neg * q_neg, axis=2) + b_neg * b_neg, axis=1)
        return loss, penalty


def positives_of(train_ratings, threshold, user_row, item_row):
    """int64 (P, 2) user row, item row of the training ratings >= threshold."""
    rows = train_ratings[train_ratings[:, 2] >= threshold]
    users = np.array([user_row[u] for u in rows[:, 0].tolist()], dtype=np.int64)
    items = np.array([item_row[i] for i in rows[:, 1].tolist()], dtype=np.int64)
    return np.stack([users, items], axis=1)


def train(split, user_ids, item_ids, threshold=4, hps=None, log=print, after_epoch=None):
    """Trains BPR-MF on the split's training positives.

    Args:
        split (smgluon.ranking.Split): the protocol's split (its ``train`` ratings are read).
        user_ids, item_ids (array-like): the catalogue's users and items.
        threshold (int): ratings >= threshold are positives.
        hps (dict): overrides of :data:`DEFAULTS`.
        log (callable): gets one line per epoch.
        after_epoch (callable): if given, called with (epoch, scorer) after each epoch.

    Returns:
        dict: ``scorer`` (for :func:`smgluon.ranking.evaluate`), ``hyperparameters``, ``epochs``
        (per epoch: ``train_loss``, ``epoch_seconds``, ``samples_per_sec``).
    """
    hps = dict(DEFAULTS, **(hps or {}))
    user_ids, item_ids = [int(u) for u in user_ids], [int(i) for i in item_ids]
    user_row = {u: n for n, u in enumerate(user_ids)}
    item_row = {i: n for n, i in enumerate(item_ids)}
    positives = positives_of(split.train, threshold, user_row, item_row)
    # never a negative: what the user rated in training, at any rating; drawn from the movies of training only
    rated = np.zeros((len(user_ids), len(item_ids)), dtype=bool)
    rated[[user_row[u] for u in split.train[:, 0].tolist()], [item_row[i] for i in split.train[:, 1].tolist()]] = True
    pool = np.unique([item_row[i] for i in split.train[:, 1].tolist()])

    mx.random.seed(hps["seed"])
    rng = np.random.RandomState(hps["seed"])
    net = BPRMF(len(user_ids), len(item_ids), hps["num_factors"])
    net.initialize()
    net.hybridize(static_alloc=True)
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": hps["learning_rate"]})
    batch_size, epochs = hps["batch_size"], []
    for epoch in range(1, hps["epochs"] + 1):
        tic, total = time.time(), 0.0
        order = rng.permutation(len(positives))
        for start in range(0, len(order), batch_size):
            batch = positives[order[start : start + batch_size]]
            negatives = recommend.sample_negatives(rng, batch[:, 0], hps["negatives"], pool, rated)
            args = [mx.nd.array(a) for a in (batch[:, 0], batch[:, 1], negatives)]
            with autograd.record():
                loss, penalty = net(*args)
                objective = loss + hps["l2"] * penalty
            objective.backward()
            trainer.step(len(batch))
            total += float(loss.sum().asscalar())
        seconds = time.time() - tic
        epochs.append(
            {
                "epoch": epoch,
                "train_loss": total / len(positives),
                "epoch_seconds": seconds,
                "samples_per_sec": len(positives) / seconds,
            }
        )
        log("bpr epoch %d loss %.4f %.1f s" % (epoch, total / len(positives), seconds))
        if after_epoch is not None:
            after_epoch(epoch, _scorer(net, user_row, item_row))
    return {"scorer": _scorer(net, user_row, item_row), "hyperparameters": hps, "epochs": epochs}


def _scorer(net, user_row, item_row):
    """A :func:`smgluon.ranking.evaluate` scorer of the net's current weights, by ids."""
    user_vectors = net.users.weight.data().asnumpy()
    item_vectors = net.items.weight.data().asnumpy()
    item_bias = net.bias.weight.data().asnumpy()[:, 0]
    to_user = np.vectorize(user_row.__getitem__, otypes=[np.int64])
    to_item = np.vectorize(item_row.__getitem__, otypes=[np.int64])

    def scorer(users, candidates):
        rows = to_item(candidates)
        return np.einsum("ck,cnk->cn", user_vectors[to_user(users)], item_vectors[rows]) + item_bias[rows]

    return scorer


def main(argv=None):
    from smgluon.movielens import read_items, read_ratings, read_users

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.path.join(os.path.dirname(REPO), "shared", "data", "ml-100k"))
    for key, value in DEFAULTS.items():
        parser.add_argument("--" + key.replace("_", "-"), type=type(value), default=value)
    args = parser.parse_args(argv)
    ratings = read_ratings(os.path.join(args.data_dir, "u.data"))
    items = read_items(os.path.join(args.data_dir, "u.item"))
    users = read_users(os.path.join(args.data_dir, "u.user"))
    split = ranking.ncf_split(ratings, items.ids, 4, 0.1, 99, 42)
    hps = {key: getattr(args, key) for key in DEFAULTS}
    model = train(split, users.ids, items.ids, 4, hps)
    result = ranking.evaluate(model["scorer"], split.warm_users, split.warm_candidates)
    print("bpr warm HR@10 %.4f NDCG@10 %.4f" % (result["hr"], result["ndcg"]))


if __name__ == "__main__":
    main(sys.argv[1:])
