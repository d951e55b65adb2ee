"""What recommender workloads share (movielens_mf, dssm): the catalog, top-k answers, negative sampling.

* :class:`Catalog`: the GroupLens ids of the embedding rows, the titles and
  the items each user rated in training; saved beside the model for serving;
* :func:`request_row`: a request's user or item id as an embedding row, or a
  client error naming the bad id;
* :func:`top_k` and :func:`items_answer`: the k best items, leaving out some
  (those the user already rated), as a JSON answer;
* :func:`sample_negatives`: training negatives, items a user never rated.
"""

import json

import numpy as np

from smgluon.serving import RequestError

__all__ = ["Catalog", "request_row", "top_k", "items_answer", "sample_negatives"]


class Catalog:
    """What serving needs besides the weights: id maps, titles and what each user already rated.

    Args:
        user_ids (list[int]): GroupLens user id of each user row.
        item_ids (list[int]): GroupLens item id of each item row.
        titles (list[str]): title of each item row.
        seen (list[list[int]]): per user row, the item rows rated in the training data.
    """

    def __init__(self, user_ids, item_ids, titles, seen):
        self.user_ids = [int(u) for u in user_ids]
        self.item_ids = [int(i) for i in item_ids]
        self.titles = list(titles)
        self.seen = [sorted(int(i) for i in s) for s in seen]
        self.user_index = {u: n for n, u in enumerate(self.user_ids)}
        self.item_index = {i: n for n, i in enumerate(self.item_ids)}

    def to_json(self):
        return {"user_ids": self.user_ids, "item_ids": self.item_ids, "titles": self.titles, "seen": self.seen}

    @classmethod
    def from_json(cls, doc):
        return cls(doc["user_ids"], doc["item_ids"], doc["titles"], doc["seen"])


def request_row(payload, key, index, what):
    """The row of the id ``payload[key]``.

    Args:
        payload (dict): the decoded request.
        key (str): ``"user_id"`` or ``"item_id"``.
        index (dict): id → row (:attr:`Catalog.user_index` or :attr:`Catalog.item_index`).
        what (str): ``"user"`` or ``"item"``, for the message.

    Returns:
        int

    Raises:
        smgluon.serving.RequestError: for a value that is not an integer, or an unknown id.
    """
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError("%r must be an integer %s id, got %s" % (key, what, json.dumps(value)[:100]))
    if value not in index:
        raise RequestError("unknown %s %d: the model knows %d %ss" % (key, value, len(index), what))
    return index[value]


def top_k(scores, k, exclude=()):
    """The rows of the ``k`` highest scores, best first, leaving out ``exclude`` (ties: the lower row first).

    Args:
        scores (numpy.ndarray): one score per row.
        k (int): how many.
        exclude (iterable of int): rows never returned (the items a user rated).

    Returns:
        tuple(list[int], numpy.ndarray): the rows (fewer than k when too many are excluded) and the
        scores as float64, excluded rows at -inf.
    """
    scores = np.asarray(scores).astype(np.float64)
    scores[list(exclude)] = -np.inf
    best = np.argsort(-scores, kind="stable")[:k]
    return [int(i) for i in best if np.isfinite(scores[i])], scores


def items_answer(catalog, rows, scores):
    """``[{"item_id", "title", "score"}, ...]`` of item rows, scores rounded to 4 places."""
    return [
        {"item_id": catalog.item_ids[i], "title": catalog.titles[i], "score": round(float(scores[i]), 4)} for i in rows
    ]


def sample_negatives(rng, users, count, pool, rated, max_tries=20):
    """``count`` item rows per user row drawn uniformly from ``pool``, redrawn while the user rated them.

    Args:
        rng (numpy.random.RandomState): the random numbers.
        users (numpy.ndarray): int user rows.
        count (int): negatives per user.
        pool (numpy.ndarray): item rows to draw from.
        rated (numpy.ndarray): bool (users, items): what each user rated.
        max_tries (int): redraws at most; a user who rated nearly the whole pool may keep a few.

    Returns:
        numpy.ndarray: int (len(users), count) item rows.
    """
    negatives = pool[rng.randint(len(pool), size=(len(users), count))]
    for _ in range(max_tries):
        clash = rated[users[:, None], negatives]
        if not clash.any():
            break
        negatives[clash] = pool[rng.randint(len(pool), size=int(clash.sum()))]
    return negatives
