"""smgluon.ranking: HR@k/NDCG@k on hand-made rankings with known answers, and the NCF split on real ml-100k."""

import math
import os

import numpy as np
import pytest
from conftest import SHARED_DATA

from smgluon import ranking
from smgluon.movielens import read_items, read_ratings

ML_100K = os.path.join(SHARED_DATA, "ml-100k")


# ---------------------------------------------------------------- HR@k and NDCG@k


@pytest.mark.parametrize(
    "scores, k, hr, ndcg",
    [
        ([0.9, 0.1, 0.2, 0.3], 1, 1.0, 1.0),  # the positive first
        ([0.25, 0.1, 0.5, 0.3], 3, 1.0, 1 / math.log2(4)),  # third: rank 2
        ([0.25, 0.1, 0.5, 0.3], 2, 0.0, 0.0),  # third, cut-off 2
        ([0.0, 0.1, 0.5, 0.3], 3, 0.0, 0.0),  # last of four
        ([-1.0, -2.0, -np.inf, -3.0], 1, 1.0, 1.0),  # negative and infinite scores are fine
        ([1.0, 1.0, 0.0, 0.0], 1, 0.5, 0.5),  # tied with one negative: first or second, equally likely
        ([1.0, 1.0, 0.0, 0.0], 2, 1.0, (1 + 1 / math.log2(3)) / 2),
        ([1.0, 2.0, 1.0, 1.0], 2, 1 / 3, 1 / 3 / math.log2(3)),  # ranks 1, 2 or 3; only rank 1 is in the top 2
    ],
)
def test_hit_ratio_and_ndcg_of_one_case(scores, k, hr, ndcg):
    hits, gains = ranking.hit_ratio_ndcg(np.array([scores]), k)
    assert hits[0] == pytest.approx(hr) and gains[0] == pytest.approx(ndcg)


def test_a_batch_of_cases_and_their_mean():
    scores = np.array([[5, 1, 2, 3], [1, 5, 2, 3], [2.5, 1, 5, 3]])  # ranks 0, 3, 2
    hits, gains = ranking.hit_ratio_ndcg(scores, 3)
    assert hits.tolist() == [1.0, 0.0, 1.0]
    assert gains == pytest.approx([1.0, 0.0, 0.5])
    users = np.array([7, 8, 9])
    candidates = np.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]])
    result = ranking.evaluate(lambda u, c: scores, users, candidates, k=3)
    assert result == {"hr": pytest.approx(2 / 3), "ndcg": pytest.approx(0.5), "cases": 3}


def test_constant_scores_rank_like_random():
    hits, gains = ranking.hit_ratio_ndcg(np.zeros((2, 100)), 10)
    assert hits == pytest.approx([0.1, 0.1])
    assert gains == pytest.approx([sum(1 / math.log2(r + 2) for r in range(10)) / 100] * 2)


def test_bad_scores_are_errors():
    with pytest.raises(ValueError, match="NaN"):
        ranking.hit_ratio_ndcg(np.array([[np.nan, 1.0]]), 1)
    with pytest.raises(ValueError, match="cases, 1 \\+ negatives"):
        ranking.hit_ratio_ndcg(np.array([1.0, 2.0]), 1)
    with pytest.raises(ValueError, match="returned shape"):
        ranking.evaluate(lambda u, c: np.zeros(3), np.array([1]), np.array([[1, 2, 3]]))
    assert ranking.evaluate(None, np.array([]), np.zeros((0, 3)))["cases"] == 0


# ---------------------------------------------------------------- the split


def test_leave_latest_out_holds_out_each_users_latest_positive():
    ratings = np.array(
        [
            [1, 10, 5, 100],
            [1, 11, 4, 200],  # user 1's latest positive
            [1, 12, 2, 300],  # later, but not a positive
            [2, 13, 5, 50],  # user 2: two positives at the same time; the larger item id wins
            [2, 10, 5, 50],
            [3, 10, 1, 10],  # user 3: no positive, nothing held out
        ]
    )
    keep, held_out = ranking.leave_latest_out(ratings, threshold=4)
    assert held_out.tolist() == [[1, 11], [2, 13]]
    assert keep.tolist() == [True, False, True, False, True, True]


def test_cold_items_are_a_seeded_fraction():
    first = ranking.cold_items(np.arange(1, 1683), 0.1, seed=3)
    assert len(first) == 168 and np.array_equal(first, np.sort(first))
    assert np.array_equal(first, ranking.cold_items(np.arange(1, 1683), 0.1, seed=3))
    assert not np.array_equal(first, ranking.cold_items(np.arange(1, 1683), 0.1, seed=4))
    assert len(ranking.cold_items([1, 2, 3], 0.0, seed=0)) == 0
    with pytest.raises(ValueError, match="in \\[0, 1\\)"):
        ranking.cold_items([1, 2], 1.0, seed=0)


def test_negatives_are_distinct_unrated_pool_items():
    rated = {1: {1, 2, 3}, 2: {4}}
    pool = np.arange(1, 21)
    candidates = ranking.sample_negatives(np.array([1, 1, 2]), np.array([2, 3, 4]), rated, pool, 10, seed=0)
    assert candidates[:, 0].tolist() == [2, 3, 4]
    for user, row in zip([1, 1, 2], candidates):
        assert len(set(row[1:].tolist())) == 10
        assert not set(row[1:].tolist()) & rated[user] and set(row[1:].tolist()) <= set(pool.tolist())
    again = ranking.sample_negatives(np.array([1, 1, 2]), np.array([2, 3, 4]), rated, pool, 10, seed=0)
    assert np.array_equal(candidates, again)
    with pytest.raises(ValueError, match="user 1 has rated all but 17 of the 20 items"):
        ranking.sample_negatives(np.array([1]), np.array([2]), rated, pool, 18, seed=0)


@pytest.fixture(scope="module")
def ml_100k():
    return read_ratings(os.path.join(ML_100K, "u.data")), read_items(os.path.join(ML_100K, "u.item")).ids


def test_ncf_split_of_ml_100k(ml_100k):
    ratings, item_ids = ml_100k
    split = ranking.ncf_split(ratings, item_ids, threshold=4, cold_fraction=0.1, num_negatives=99, seed=42)
    summary = split.summary()
    assert summary["cold_items"] == 168 and summary["negatives"] == 99
    assert summary["warm_cases"] == 942  # every user but one has a positive rating of a warm movie
    cold = set(split.cold_items.tolist())
    # training: no cold movie, no held-out pair
    assert not cold & set(split.train[:, 1].tolist())
    train_pairs = set(map(tuple, split.train[:, :2].tolist()))
    assert not train_pairs & set(zip(split.warm_users.tolist(), split.warm_candidates[:, 0].tolist()))
    # every rating is in training, a warm case, a cold movie's rating, or a rating of a cold movie
    warm_rest = ratings[~np.isin(ratings[:, 1], split.cold_items)]
    assert len(split.train) + len(split.warm_users) == len(warm_rest)
    # cold cases: every positive rating of a cold movie
    cold_positive = ratings[np.isin(ratings[:, 1], split.cold_items) & (ratings[:, 2] >= 4)]
    assert summary["cold_cases"] == len(cold_positive)
    assert set(split.cold_candidates[:, 0].tolist()) <= cold
    # negatives: never rated by the user; warm cases draw warm movies only
    rated = set(map(tuple, ratings[:, :2].tolist()))
    for users, candidates in ((split.warm_users, split.warm_candidates), (split.cold_users, split.cold_candidates)):
        assert not any((u, i) in rated for u, row in zip(users.tolist(), candidates[:, 1:].tolist()) for i in row)
    assert not cold & set(split.warm_candidates.ravel().tolist())
    assert cold & set(split.cold_candidates[:, 1:].ravel().tolist())
    again = ranking.ncf_split(ratings, item_ids, threshold=4, cold_fraction=0.1, num_negatives=99, seed=42)
    assert np.array_equal(again.warm_candidates, split.warm_candidates)
    assert np.array_equal(again.cold_candidates, split.cold_candidates)


def test_popularity_baseline(ml_100k):
    train = np.array([[1, 5, 3, 0], [2, 5, 4, 0], [3, 7, 5, 0]])
    scorer = ranking.popularity_scorer(train)
    assert scorer(None, np.array([[5, 7, 9]])).tolist() == [[2.0, 1.0, 0.0]]
    ratings, item_ids = ml_100k
    split = ranking.ncf_split(ratings, item_ids, cold_fraction=0.1, seed=42)
    warm = ranking.evaluate(ranking.popularity_scorer(split.train), split.warm_users, split.warm_candidates)
    cold = ranking.evaluate(ranking.popularity_scorer(split.train), split.cold_users, split.cold_candidates)
    assert 0.3 < warm["hr"] < 0.55  # the published NCF-protocol figure for popularity is about 0.4
    assert cold["hr"] == 0.0  # a cold movie has no training rating: it sits below every rated negative


def test_unknown_items_are_rejected():
    with pytest.raises(ValueError, match=r"rated items \[9\] are not in the catalogue"):
        ranking.ncf_split(np.array([[1, 9, 5, 0]]), [1, 2, 3])
