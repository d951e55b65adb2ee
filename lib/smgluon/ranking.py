"""Top-k evaluation of recommenders: the NCF protocol (He et al. 2017) with a cold-start variant.

The protocol, for ratings ``(user, item, rating, timestamp)`` and a positive threshold:

* **cold items** (:func:`cold_items`): a seeded random fraction of the catalogue
  loses every rating from training; each positive rating of a cold item is a
  cold test case;
* **warm** (:func:`leave_latest_out`): of the other ratings, each user's latest
  positive is held out as the warm test case; the rest is the training set;
* every test case is ranked against ``num_negatives`` items the user never rated
  (:func:`sample_negatives`, seeded): warm cases against warm items only (a
  model trained on the warm ratings can score all of them), cold cases against
  the whole catalogue (can the new item beat the known ones?);
* **HR@k** is the fraction of cases whose positive ranks in the top k of its
  candidates, **NDCG@k** the mean of ``1 / log2(rank + 2)`` over those (rank
  from 0) (:func:`hit_ratio_ndcg`).

Every model is scored the same way: a scorer maps the case users and their
candidate items (ids, not rows) to scores, and :func:`evaluate` does the rest,
so DSSM, matrix factorisation and the popularity baseline share one protocol.
"""

import numpy as np

__all__ = [
    "Split",
    "cold_items",
    "chronological",
    "leave_latest_out",
    "sample_negatives",
    "ncf_split",
    "hit_ratio_ndcg",
    "evaluate",
    "popularity_scorer",
]


def cold_items(item_ids, fraction, seed):
    """A seeded random ``fraction`` of the catalogue, to be kept out of training.

    Args:
        item_ids (array-like): every item id of the catalogue.
        fraction (float): in [0, 1); the count is rounded to the nearest integer.
        seed (int): the random seed.

    Returns:
        numpy.ndarray: the sorted int64 ids of the cold items.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError("the cold-item fraction must be in [0, 1), got %r" % fraction)
    item_ids = np.unique(np.asarray(item_ids, dtype=np.int64))
    count = int(round(len(item_ids) * fraction))
    return np.sort(np.random.RandomState(seed).choice(item_ids, count, replace=False))


def chronological(users, items, timestamps):
    """The order of ratings by user, then time, ties by item id: the order :func:`leave_latest_out` takes
    each user's latest positive in (and a model can train in, to see its history as the protocol does).

    Args:
        users, items, timestamps (numpy.ndarray): (N,) columns of the ratings.

    Returns:
        numpy.ndarray: int64 (N,) indices into the ratings.
    """
    return np.lexsort((items, timestamps, users))


def leave_latest_out(ratings, threshold):
    """Holds out each user's latest positive rating.

    Ties in time go to the largest item id, so the choice is deterministic.

    Args:
        ratings (numpy.ndarray): int (N, 4) of user, item, rating, timestamp.
        threshold (int): ratings >= threshold are positives.

    Returns:
        tuple(numpy.ndarray, numpy.ndarray): a bool (N,) mask of the rows that
        stay in training, and the int64 (U, 2) held-out (user, item) pairs sorted
        by user; users without a positive have none.
    """
    ratings = np.asarray(ratings, dtype=np.int64)
    positive = np.flatnonzero(ratings[:, 2] >= threshold)
    # the last of each user's positives in chronological order is its latest
    order = positive[chronological(ratings[positive, 0], ratings[positive, 1], ratings[positive, 3])]
    users = ratings[order, 0]
    last = order[np.r_[users[1:] != users[:-1], True]] if len(order) else order
    keep = np.ones(len(ratings), dtype=bool)
    keep[last] = False
    return keep, ratings[last][:, :2]


def sample_negatives(users, positives, rated, pool, num_negatives, seed):
    """Draws, for each (user, positive item) case, ``num_negatives`` distinct items the user never rated.

    Args:
        users (numpy.ndarray): the case users (ids).
        positives (numpy.ndarray): the case positive items (ids).
        rated (dict[int, set[int]]): user → every item the user rated (in all the data).
        pool (numpy.ndarray): the items negatives are drawn from.
        num_negatives (int): negatives per case.
        seed (int): the random seed.

    Returns:
        numpy.ndarray: int64 (C, 1 + num_negatives) candidates, the positive in column 0.

    Raises:
        ValueError: when a user has rated nearly the whole pool.
    """
    rng = np.random.RandomState(seed)
    pool = np.unique(np.asarray(pool, dtype=np.int64))
    candidates = np.empty((len(users), 1 + num_negatives), dtype=np.int64)
    allowed_by_user = {}
    for n, (user, item) in enumerate(zip(np.asarray(users).tolist(), np.asarray(positives).tolist())):
        allowed = allowed_by_user.get(user)
        if allowed is None:
            seen = rated.get(user, set())
            allowed = allowed_by_user[user] = pool[[i not in seen for i in pool.tolist()]]
        if len(allowed) < num_negatives:
            raise ValueError(
                "user %d has rated all but %d of the %d items negatives are drawn from: use fewer than %d negatives"
                % (user, len(allowed), len(pool), num_negatives)
            )
        candidates[n, 0] = item
        candidates[n, 1:] = rng.choice(allowed, num_negatives, replace=False)
    return candidates


class Split:
    """Training ratings and test cases of the protocol (see the module docstring).

    Attributes:
        train (numpy.ndarray): int64 (N, 4) training ratings.
        cold_items (numpy.ndarray): ids of the items kept out of training.
        warm_users, warm_candidates: the warm cases: (W,) user ids and (W, 1 + n) item ids.
        cold_users, cold_candidates: the cold cases, likewise.
    """

    def __init__(self, train, cold_items, warm_users, warm_candidates, cold_users, cold_candidates):
        self.train = train
        self.cold_items = cold_items
        self.warm_users, self.warm_candidates = warm_users, warm_candidates
        self.cold_users, self.cold_candidates = cold_users, cold_candidates

    def summary(self):
        """dict: sizes, for logs and result files."""
        return {
            "train_ratings": int(len(self.train)),
            "cold_items": int(len(self.cold_items)),
            "warm_cases": int(len(self.warm_users)),
            "cold_cases": int(len(self.cold_users)),
            "negatives": int(self.warm_candidates.shape[1] - 1),
        }


def ncf_split(ratings, item_ids, threshold=4, cold_fraction=0.1, num_negatives=99, seed=0):
    """Builds the protocol's training set and its warm and cold test cases.

    Args:
        ratings (numpy.ndarray): int (N, 4) of user, item, rating, timestamp: all the data.
        item_ids (array-like): the catalogue (every item a model may be asked to rank).
        threshold (int): ratings >= threshold are positives.
        cold_fraction (float): the fraction of the catalogue kept out of training (0: no cold cases).
        num_negatives (int): negatives per test case.
        seed (int): seeds the cold items and the negatives.

    Returns:
        Split
    """
    ratings = np.asarray(ratings, dtype=np.int64)
    item_ids = np.unique(np.asarray(item_ids, dtype=np.int64))
    unknown = np.setdiff1d(ratings[:, 1], item_ids)
    if len(unknown):
        raise ValueError("rated items %s are not in the catalogue" % unknown[:10].tolist())
    cold = cold_items(item_ids, cold_fraction, seed)
    is_cold = np.isin(ratings[:, 1], cold)
    warm_ratings = ratings[~is_cold]
    keep, held_out = leave_latest_out(warm_ratings, threshold)
    cold_cases = ratings[is_cold & (ratings[:, 2] >= threshold)]
    cold_cases = cold_cases[np.lexsort((cold_cases[:, 1], cold_cases[:, 0]))]

    rated = {}
    for user, item in ratings[:, :2].tolist():
        rated.setdefault(user, set()).add(item)
    warm_pool = np.setdiff1d(item_ids, cold)
    return Split(
        warm_ratings[keep],
        cold,
        held_out[:, 0],
        sample_negatives(held_out[:, 0], held_out[:, 1], rated, warm_pool, num_negatives, seed + 1),
        cold_cases[:, 0],
        sample_negatives(cold_cases[:, 0], cold_cases[:, 1], rated, item_ids, num_negatives, seed + 2),
    )


def hit_ratio_ndcg(scores, k=10):
    """HR@k and NDCG@k of each case, given its candidates' scores.

    A tie between the positive and negatives counts as a uniformly random order
    of the tied items, and the expected hit and gain are returned, so a model
    that scores everything alike gets the random ranking's values (HR@k = k / (1 + n))
    rather than a perfect or a zero score.

    Args:
        scores (numpy.ndarray): (C, 1 + n) scores, higher is better; column 0 is the positive.
        k (int): the cut-off.

    Returns:
        tuple(numpy.ndarray, numpy.ndarray): float64 (C,) hit ratio and NDCG per case.

    Raises:
        ValueError: for NaN scores or fewer than two columns.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError("scores must be (cases, 1 + negatives), got shape %s" % (scores.shape,))
    if np.isnan(scores).any():
        raise ValueError("scores hold NaN: the model diverged or a scorer is broken")
    positive = scores[:, :1]
    greater = (scores[:, 1:] > positive).sum(axis=1)
    tied = (scores[:, 1:] == positive).sum(axis=1)
    # the positive lands on each of the 0-based ranks greater .. greater + tied with equal probability
    ranks = np.arange(scores.shape[1])
    hit = np.r_[0.0, np.cumsum(ranks < k)]
    gain = np.r_[0.0, np.cumsum(np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0))]
    first, end = greater, greater + tied + 1
    return (hit[end] - hit[first]) / (tied + 1), (gain[end] - gain[first]) / (tied + 1)


def evaluate(scorer, users, candidates, k=10):
    """Scores the test cases and averages HR@k and NDCG@k.

    Args:
        scorer (callable): ``scorer(users (C,), candidates (C, 1 + n)) -> scores (C, 1 + n)``, ids in, floats out.
        users (numpy.ndarray): the case users.
        candidates (numpy.ndarray): the case candidates, positive first.
        k (int): the cut-off.

    Returns:
        dict: ``{"hr": ..., "ndcg": ..., "cases": C}`` (hr and ndcg are NaN without cases).
    """
    if len(users) == 0:
        return {"hr": float("nan"), "ndcg": float("nan"), "cases": 0}
    scores = np.asarray(scorer(np.asarray(users), np.asarray(candidates)))
    if scores.shape != np.shape(candidates):
        raise ValueError("the scorer returned shape %s for candidates %s" % (scores.shape, np.shape(candidates)))
    hr, ndcg = hit_ratio_ndcg(scores, k)
    return {"hr": float(hr.mean()), "ndcg": float(ndcg.mean()), "cases": int(len(users))}


def popularity_scorer(train):
    """The popularity baseline: an item's score is its number of training ratings (0 for unseen items).

    Args:
        train (numpy.ndarray): int (N, >= 2) training ratings (user, item, ...).

    Returns:
        callable: a scorer for :func:`evaluate`.
    """
    ids, counts = np.unique(np.asarray(train)[:, 1], return_counts=True)

    def scorer(users, candidates):
        at = np.clip(np.searchsorted(ids, candidates), 0, max(len(ids) - 1, 0))
        return np.where(ids[at] == candidates, counts[at], 0).astype(np.float64)

    return scorer
