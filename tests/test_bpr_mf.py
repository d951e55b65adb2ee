"""bench/baselines/bpr_mf.py, the implicit-feedback baseline of bench/dssm.py, on a real slice of ml-100k."""

import os
import sys

import numpy as np
import pytest
from conftest import REPO, write_movielens_slice

from smgluon import ranking
from smgluon.movielens import read_items, read_ratings, read_users

if REPO not in sys.path:
    sys.path.insert(0, REPO)
from bench.baselines import bpr_mf  # noqa: E402


@pytest.fixture(scope="module")
def split_and_catalog(tmp_path_factory):
    data_dir = write_movielens_slice(str(tmp_path_factory.mktemp("ml-100k-slice")), 300)
    ratings = read_ratings(os.path.join(data_dir, "u.data"))
    items = read_items(os.path.join(data_dir, "u.item"))
    users = read_users(os.path.join(data_dir, "u.user"))
    return ranking.ncf_split(ratings, items.ids, 4, 0.1, 99, 42), users.ids, items.ids


def test_bpr_ranks_the_held_out_positives_far_better_than_chance(split_and_catalog):
    split, user_ids, item_ids = split_and_catalog
    seen = []
    model = bpr_mf.train(
        split, user_ids, item_ids, 4, {"epochs": 3}, log=seen.append, after_epoch=lambda e, s: seen.append(e)
    )
    assert seen[-1] == 3 and len(model["epochs"]) == 3 and model["hyperparameters"]["l2"] == 1e-4
    result = ranking.evaluate(model["scorer"], split.warm_users, split.warm_candidates)
    assert result["hr"] > 0.3  # chance: 0.1; popularity on this slice: about 0.4


def test_it_trains_on_the_positives_of_warm_movies_only(split_and_catalog):
    split, user_ids, item_ids = split_and_catalog
    user_row = {u: n for n, u in enumerate(user_ids.tolist())}
    item_row = {i: n for n, i in enumerate(item_ids.tolist())}
    positives = bpr_mf.positives_of(split.train, 4, user_row, item_row)
    assert len(positives) == int((split.train[:, 2] >= 4).sum())
    train_items = {item_row[i] for i in split.train[:, 1].tolist()}
    assert not {item_row[i] for i in split.cold_items.tolist()} & train_items
    assert np.isin(positives[:, 1], sorted(train_items)).all()
