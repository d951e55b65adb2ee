"""dssm on a real slice of ml-100k: features, a one-epoch run, script mode, save → serve for the three
request kinds, client errors, and the docker-free local mode."""

import json
import os
import re
import shutil

import dssm
import mxnet as mx
import numpy as np
import pytest
from conftest import (
    ENTRY_POINTS,
    REPO,
    ask_json,
    readme_hyperparameter_table,
    resumed_and_uninterrupted,
    run_script_mode,
    to_cmd_args,
    write_movielens_slice,
)

from smgluon.channels import ChannelError
from smgluon.hyperparameters import HyperparameterError
from smgluon.serving import RequestError

FAST = {"epochs": 1, "batch_size": 256, "num_factors": 16, "hidden": 32, "learning_rate": 0.005}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_movielens_slice(str(tmp_path_factory.mktemp("ml-100k-slice")), 300)


# ---------------------------------------------------------------- features


def test_title_words_drop_the_year_and_keep_accents():
    assert dssm.title_words("Godfather, The (1972)") == ["godfather", "the"]
    assert dssm.title_words("Cité des enfants perdus, La (1995)") == ["cité", "des", "enfants", "perdus", "la"]
    assert dssm.title_words("Die Hard: With a Vengeance (1995)") == ["die", "hard", "with", "a", "vengeance"]
    assert dssm.title_words("Babe (1995) (1995)") == ["babe", "1995"] and dssm.title_words("Heat, heat") == ["heat"]


def test_buckets():
    years = (0, 1922, 1939, 1940, 1955, 1984, 1985, 1990, 1997, 1998, 2010)
    assert [dssm.year_bucket(y) for y in years] == [0, 1, 1, 2, 3, 6, 7, 8, 15, 16, 16]
    assert dssm.NUM_YEAR_BUCKETS == 17
    assert [dssm.age_bucket(a) for a in (7, 17, 18, 24, 25, 49, 50, 56, 73)] == [0, 0, 1, 1, 2, 4, 5, 6, 6]
    assert [dssm.zip_bucket(z) for z in ("85711", "01002", "T8H1N", "")] == [8, 0, 10, 10]


def test_bags_are_csr_rows_weighted_by_one_over_sqrt_size():
    parts = dssm.bag_rows([[0, 2], [1], [], [3, 1, 0, 2]], 4)
    dense = dssm.take_csr(parts, [3, 0, 2, 0], 4).tostype("default").asnumpy()
    expected = np.array([[0.5, 0.5, 0.5, 0.5], [2**-0.5, 0, 2**-0.5, 0], [0, 0, 0, 0], [2**-0.5, 0, 2**-0.5, 0]])
    assert np.allclose(dense, expected)
    with pytest.raises(ValueError, match="out of range"):
        dssm.bag_rows([[4]], 4)


# ---------------------------------------------------------------- training


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    # the notebook call: one 'training' channel, values as SageMaker's JSON-encoded strings
    out = str(tmp_path_factory.mktemp("output"))
    net = dssm.train(
        {"training": data_dir}, {k: json.dumps(v) for k, v in FAST.items()}, ["local"], 0, output_data_dir=out
    )
    with open(os.path.join(out, "metrics.json")) as f:
        return net, json.load(f)


def test_one_epoch_on_a_real_slice_ranks_better_than_chance(trained):
    net, saved = trained
    (epoch,) = saved["epochs"]
    assert saved["workload"] == "dssm" and saved["hyperparameters"]["loss"] == "full_softmax"
    # chance is HR@10 = 0.1 and NDCG@10 = 0.045 (100 candidates)
    assert epoch["warm_hr10"] > 0.18 and epoch["warm_ndcg10"] > 0.07
    assert epoch["cold_hr10"] > 0.15 and epoch["cold_ndcg10"] > 0.07
    assert saved["final"]["warm_hr10"] == epoch["warm_hr10"]
    summary = net.split.summary()
    assert summary["cold_items"] == 168 and summary["negatives"] == 99
    assert summary["warm_cases"] == 300 and summary["cold_cases"] > 1000
    # the evaluation is the shared protocol, scored through the serving code's vectors
    again = dssm.evaluate(net, net.split)
    assert again["warm_hr10"] == pytest.approx(epoch["warm_hr10"]) and again["cold_hr10"] == pytest.approx(
        epoch["cold_hr10"]
    )


def test_the_catalog_keeps_cold_items_out_of_training(trained, data_dir):
    net, _ = trained
    c = net.catalog
    assert len(c.item_ids) == 1682 and len(c.user_ids) == 943
    cold_rows = {c.item_index[i] for i in c.cold_item_ids}
    assert len(cold_rows) == 168 and not cold_rows & {i for seen in c.seen for i in seen}
    cold_only = set().union(*(dssm.title_words(c.titles[r]) for r in cold_rows)) - set().union(
        *(dssm.title_words(c.titles[r]) for r in range(len(c.item_ids)) if r not in cold_rows)
    )
    assert cold_only and not cold_only & set(c.vocabulary)  # the vocabulary is the training movies' words
    assert c.seen[c.user_index[301]] == []  # users outside the slice rated nothing


def test_the_full_softmax_never_takes_a_cold_movie_as_a_negative(data_dir):
    hps = dssm.HYPERPARAMETERS.parse_dict(dict(FAST, loss="full_softmax", exclude_rated=False))
    data = dssm.load_data({"training": data_dir}, hps)
    cold_rows = [data.catalog.item_index[i] for i in data.catalog.cold_item_ids]
    adjust = data.catalog_adjust[0]
    assert adjust.shape == (1682,) and (adjust[cold_rows] == -1e4).all() and (adjust[data.negative_pool] == 0).all()
    users, adjust_nd, labels = dssm._loss_inputs(data, data.positives[:4], None, hps, mx.cpu())
    assert labels.asnumpy().tolist() == data.positives[:4, 1].tolist() and adjust_nd.shape == (1, 1682)
    # exclude_rated: the user's other rated movies are no negatives either, the positive itself stays
    hps["exclude_rated"] = True
    batch = data.positives[:4]
    _, adjust_nd, _ = dssm._loss_inputs(data, batch, None, hps, mx.cpu())
    adjust = adjust_nd.asnumpy()
    for row, (user, item) in enumerate(batch.tolist()):
        others = np.flatnonzero(data.rated[user])
        assert adjust[row, item] == 0 and (adjust[row, [i for i in others if i != item]] == -1e4).all()
        assert (adjust[row, cold_rows] == -1e4).all() and adjust[row].max() == 0


def test_histories_as_latest_hold_what_a_held_out_latest_positive_is_predicted_from():
    # user 0 by time, ties by item: 7 (t10), 5 (t30, +), 8 (t30, +), 2 (t35), 4 (t40, +), 3 (t50); user 1: 6 (+), 9
    users = np.array([0, 1, 0, 0, 1, 0, 0, 0])
    items = np.array([8, 9, 5, 7, 6, 4, 3, 2])
    times = np.array([30, 20, 30, 10, 10, 40, 50, 35])
    positive = np.array([True, False, True, False, True, True, False, False])
    parts = dssm.histories_as_latest(users, items, times, positive)
    bags = dssm.take_csr(parts, np.arange(4), 10).tostype("default").asnumpy()
    # rows in input order of the positives: 8, 5, 6, 4. A bag holds every earlier rating and the ratings
    # below the threshold after the positive up to the next positive; never the positive itself.
    expected = [[7, 5, 2], [7], [9], [7, 5, 8, 2, 3]]
    for bag, rows in zip(bags, expected):
        assert sorted(np.flatnonzero(bag).tolist()) == sorted(rows)
        assert np.allclose(bag[rows], len(rows) ** -0.5)
    # a bag for every rating: one below the threshold gets the bag it would have were it the latest positive
    parts = dssm.histories_as_latest(users, items, times, positive, rows=np.ones(8, dtype=bool))
    bags = dssm.take_csr(parts, np.arange(8), 10).tostype("default").asnumpy()
    expected = [[7, 5, 2], [6], [7], [], [9], [7, 5, 8, 2, 3], [7, 5, 8, 2, 4], [7, 5, 8]]
    for bag, rows in zip(bags, expected):
        assert sorted(np.flatnonzero(bag).tolist()) == sorted(rows)


@pytest.mark.parametrize("weight", [0.0, 0.25])
def test_other_ratings_are_trained_as_weighted_positives(data_dir, weight):
    hps = dssm.HYPERPARAMETERS.parse_dict(dict(FAST, other_ratings_weight=weight))
    data = dssm.load_data({"training": data_dir}, hps)
    train = data.split.train
    liked = train[:, 2] >= hps["positive_threshold"]
    c = data.catalog
    rows = [(c.user_index[u], c.item_index[i]) for u, i in train[:, :2].tolist()]
    if weight == 0:
        assert data.weights is None and data.positives.tolist() == [list(r) for r, k in zip(rows, liked) if k]
    else:
        assert data.positives.tolist() == [list(r) for r in rows]
        assert data.weights.tolist() == np.where(liked, 1.0, weight).tolist()
    # one bag per trained rating, then one per user
    assert len(data.history_bags[0]) - 1 == len(data.positives) + len(c.user_ids)


def test_the_other_ratings_weight_is_applied_to_their_loss(data_dir, tmp_path):
    # the same rows trained with two weights (no dropout, the same shuffles): only the loss weights differ
    losses = []
    for weight in (0.25, 1.0):
        out = tmp_path / str(weight)
        hps = dict(FAST, dropout=0.0, max_train_samples=5000, other_ratings_weight=weight)
        dssm.train({"training": data_dir}, hps, ["local"], 0, output_data_dir=str(out))
        losses.append(json.load(open(str(out / "metrics.json")))["final"]["train_loss"])
    # the lower ratings' smaller weight lowers the summed loss
    assert losses[0] < losses[1]


def test_a_latest_positives_training_bag_is_the_bag_it_is_evaluated_with(data_dir):
    hps = dssm.HYPERPARAMETERS.parse_dict(dict(FAST, sequential_history=1.0))
    data = dssm.load_data({"training": data_dir}, hps)
    ratings = dssm.read_ratings(os.path.join(data_dir, "u.data"))
    # put each user's held-out positive back: as a training positive, its bag is the user's whole training bag
    split = data.split
    held_out = np.c_[split.warm_users, split.warm_candidates[:, 0]]
    full = ratings[np.isin(ratings[:, 1], split.cold_items, invert=True)]
    user_row, item_row = data.catalog.user_index, data.catalog.item_index
    rows = {(u, i): n for n, (u, i) in enumerate(full[:, :2].tolist())}
    at = [rows[(u, i)] for u, i in held_out.tolist()]
    positive = full[:, 2] >= hps["positive_threshold"]
    users = np.array([user_row[u] for u in full[:, 0].tolist()])
    items = np.array([item_row[i] for i in full[:, 1].tolist()])
    parts = dssm.histories_as_latest(users, items, full[:, 3], positive)
    nth = np.cumsum(positive) - 1  # the row of each positive in parts
    bags = dssm.take_csr(parts, nth[at], len(data.catalog.item_ids)).tostype("default").asnumpy()
    whole = dssm.take_csr(data.catalog.user_items, users[at], len(data.catalog.item_ids)).tostype("default")
    assert np.allclose(bags, whole.asnumpy())


@pytest.mark.parametrize(
    "extra",
    [
        {"loss": "cosine"},
        {"loss": "softmax", "logq_correction": False, "temperature": 0.2},
        {"loss": "cosine", "user_history": False, "negatives": 2, "optimizer": "sgd", "learning_rate": 0.1},
        {"split": "none"},
        {"loss": "full_softmax", "temperature": 0.2},
        {"loss": "full_softmax", "user_history": False, "split": "none"},
        {"sequential_history": 0.25},
        {"sequential_history": 0.0},
        {"sequential_history": 1.0, "loss": "softmax"},
        {"sequential_history": 0.5, "loss": "cosine", "split": "none"},
        {"ensemble": 1},
        {"ensemble": 2, "loss": "softmax"},
        {"ensemble": 2, "loss": "cosine", "split": "none"},
        {"other_ratings_weight": 0.0},
        {"other_ratings_weight": 1.0, "loss": "softmax", "ensemble": 1},
        {"other_ratings_weight": 0.5, "sequential_history": 0.0, "loss": "cosine", "ensemble": 1},
    ],
)
def test_variants_train_and_round_trip(data_dir, tmp_path, extra):
    hps = dict(FAST, **extra)
    net = dssm.train({"train": data_dir}, hps, ["local"], 0, output_data_dir=str(tmp_path / "out"))
    saved = json.load(open(str(tmp_path / "out" / "metrics.json")))
    assert np.isfinite(saved["final"]["train_loss"])
    if extra.get("split") == "none":
        assert net.split is None and "warm_hr10" not in saved["final"] and net.catalog.cold_item_ids == []
    else:
        assert saved["final"]["warm_hr10"] > 0.12
    dssm.save(net, str(tmp_path / "model"))
    served = dssm.model_fn(str(tmp_path / "model"))
    expected = dssm.recommender(net)
    assert np.allclose(served.user_vectors, expected.user_vectors, atol=1e-5)
    assert np.allclose(served.item_vectors, expected.item_vectors, atol=1e-5)
    assert len(ask(served, {"user_id": 7, "top_k": 3})["recommendations"]) == 3


def _loss_inputs(loss, rng):
    """A loss's inputs after the vectors, for 10 users and 12 items: three users' rows, then its own."""
    users = mx.nd.array([1, 3, 5])
    if loss == "cosine":
        return [users, mx.nd.array([[2, 3], [4, 5], [11, 0]]), mx.nd.array([[1, 0]] * 3)]
    if loss == "full_softmax":
        return [users, mx.nd.array(np.where(np.arange(12) == 7, -1e4, 0.0)[None, :]), mx.nd.array([2, 4, 11])]
    return [users, mx.nd.array([2, 4, 11]), mx.nd.array(rng.randn(3, 3)), mx.nd.arange(3)]


@pytest.mark.parametrize("loss", ["cosine", "softmax", "full_softmax"])
def test_hybridized_losses_have_the_imperative_gradients(loss):
    rng = np.random.RandomState(0)
    user_vectors, item_vectors = mx.nd.array(rng.randn(10, 4)), mx.nd.array(rng.randn(12, 4))
    inputs = _loss_inputs(loss, rng)
    grads = []
    for hybridize in (False, True):
        loss_fn = dssm.build_loss(dssm.HYPERPARAMETERS.parse_dict({"loss": loss, "ensemble": 1}), hybridize)
        u, v = user_vectors.copy(), item_vectors.copy()
        u.attach_grad()
        v.attach_grad()
        with mx.autograd.record():
            out = loss_fn(u, v, *inputs)
        out.backward()
        grads.append((out.asnumpy(), u.grad.asnumpy(), v.grad.asnumpy()))
    for imperative, hybrid in zip(*grads):
        assert np.allclose(imperative, hybrid, atol=1e-5)


@pytest.mark.parametrize("loss", ["cosine", "softmax", "full_softmax"])
def test_each_ensemble_member_trains_on_its_own_loss(loss):
    # three members of 4 factors: the ensemble's loss and gradients are the members' own, each member's
    # vectors taken back to unit length from the concatenated ones
    rng = np.random.RandomState(0)
    members_u = [rng.randn(10, 4) for _ in range(3)]
    members_v = [rng.randn(12, 4) for _ in range(3)]
    members_u, members_v = ([m / np.linalg.norm(m, axis=1, keepdims=True) for m in ms] for ms in (members_u, members_v))
    inputs = _loss_inputs(loss, rng)
    single = dssm.build_loss(dssm.HYPERPARAMETERS.parse_dict({"loss": loss, "ensemble": 1}))
    expected, expected_grads = 0, []
    for mu, mv in zip(members_u, members_v):
        u, v = mx.nd.array(mu), mx.nd.array(mv)
        u.attach_grad()
        with mx.autograd.record():
            out = single(u, v, *inputs)
        out.backward()
        expected = expected + out.asnumpy()
        expected_grads.append(u.grad.asnumpy())
    hps = dssm.HYPERPARAMETERS.parse_dict({"loss": loss, "ensemble": 3, "num_factors": 4})
    u = mx.nd.array(np.concatenate(members_u, axis=1) / 3**0.5)
    v = mx.nd.array(np.concatenate(members_v, axis=1) / 3**0.5)
    u.attach_grad()
    with mx.autograd.record():
        out = dssm.build_loss(hps)(u, v, *inputs)
    out.backward()
    assert np.allclose(out.asnumpy(), expected, atol=1e-5)
    # d/du of member m's loss through the 1/sqrt(3) scaling: its own gradient times sqrt(3)
    assert np.allclose(u.grad.asnumpy(), np.concatenate(expected_grads, axis=1) * 3**0.5, atol=1e-4)


def test_an_ensembles_score_is_the_mean_of_its_members_cosines(data_dir):
    hps = dict(FAST, ensemble=3, split="none")
    net = dssm.train({"training": data_dir}, hps, ["local"], 0)
    ctx = mx.cpu()
    c = net.catalog
    users, items = np.arange(5), np.arange(7)
    rec = dssm.recommender(net)
    assert rec.user_vectors.shape == (943, 3 * 16) and rec.item_vectors.shape == (1682, 3 * 16)
    assert np.allclose(np.linalg.norm(rec.user_vectors, axis=1), 1, atol=1e-5)
    assert np.allclose(np.linalg.norm(rec.item_vectors, axis=1), 1, atol=1e-5)
    cosines = [
        getattr(net.user_tower, "member%d" % m)(*c.user_inputs(users, ctx)).asnumpy()
        @ getattr(net.item_tower, "member%d" % m)(*c.item_inputs(items, ctx)).asnumpy().T
        for m in range(3)
    ]
    assert np.allclose(rec.user_vectors[users] @ rec.item_vectors[items].T, np.mean(cosines, axis=0), atol=1e-5)
    # the members started apart, so they are three models rather than one copied three times
    assert not np.allclose(cosines[0], cosines[1], atol=1e-3)


def test_checkpoints_resume(data_dir, tmp_path):
    ckpt = str(tmp_path / "ckpt")
    dssm.train({"training": data_dir}, FAST, ["local"], 0, checkpoint_dir=ckpt)
    dssm.train(
        {"training": data_dir}, dict(FAST, epochs=2), ["local"], 0, checkpoint_dir=ckpt, output_data_dir=str(tmp_path)
    )
    saved = json.load(open(str(tmp_path / "metrics.json")))
    assert [e["epoch"] for e in saved["epochs"]] == [1, 2]  # the resumed run keeps the first epoch's metrics


@pytest.mark.parametrize("share", [0.0, 0.5])
def test_a_resumed_run_trains_as_an_uninterrupted_one(data_dir, tmp_path, share):
    # without dropout, whose random draws a checkpoint does not hold, the shuffles (and which positives see
    # their bag as of being the latest) alone decide the batches
    hps = dict(FAST, dropout=0.0, max_train_samples=5000, sequential_history=share)
    resumed, uninterrupted = resumed_and_uninterrupted(dssm.train, {"training": data_dir}, hps, tmp_path)
    assert resumed == pytest.approx(uninterrupted, rel=1e-6)


def test_a_channel_sharded_by_key_is_this_workers_own_shard(data_dir, monkeypatch, caplog):
    """Over two workers, a ShardedByS3Key channel is trained on whole, not cut in half again by rank."""
    from smgluon import distributed

    class TwoWorkers(distributed.Workers):
        # rank 0 of two, whose partner holds the same numbers
        def __init__(self, kv=None):
            super().__init__(None)
            self.num_workers = 2

        def _sum(self, local):
            return local * 2

        def min(self, value):
            return float(value)

    monkeypatch.setattr(distributed, "Workers", TwoWorkers)
    hps = dict(FAST, log_interval=1, split="none")
    batches = {}
    for distribution in ("FullyReplicated", "ShardedByS3Key"):
        config = {"training": {"S3DistributionType": distribution}}
        monkeypatch.setenv("SM_INPUT_DATA_CONFIG", json.dumps(config))
        caplog.clear()
        with caplog.at_level("INFO", logger="dssm"):
            dssm.train({"training": data_dir}, hps, ["local"], 0)
        counts = {int(m.group(1)) for m in re.finditer(r"batch \d+/(\d+)", caplog.text)}
        assert len(counts) == 1, caplog.text[-2000:]
        batches[distribution] = counts.pop()
    assert batches["ShardedByS3Key"] in (2 * batches["FullyReplicated"], 2 * batches["FullyReplicated"] + 1)


# ---------------------------------------------------------------- bad data and hyperparameters


def test_missing_or_inconsistent_files_are_clear_errors(data_dir, tmp_path):
    broken = str(tmp_path / "ml")
    shutil.copytree(data_dir, broken)
    os.remove(os.path.join(broken, "u.user"))
    with pytest.raises(ChannelError, match=r"user file .*u\.user does not exist"):
        dssm.train({"training": broken}, FAST, ["local"], 0)
    with open(os.path.join(broken, "u.user"), "w") as f:
        f.write("1|24|M|technician|85711\n")
    with pytest.raises(ChannelError, match=r"user ids \[2, 3, .*\] are rated in u\.data but missing from u\.user"):
        dssm.train({"training": broken}, FAST, ["local"], 0)
    with pytest.raises(ChannelError, match="only .* training ratings >= 4 for batch_size 100000"):
        dssm.train({"training": data_dir}, dict(FAST, batch_size=100000), ["local"], 0)


def test_script_mode_bad_hyperparameter_fails_before_reading_data(tmp_path):
    proc = run_script_mode("dssm.py", str(tmp_path), {"training": str(tmp_path / "nowhere")}, {"loss": "hinge"})
    assert proc.returncode == 1
    reason = (tmp_path / "output" / "failure").read_text()
    assert reason.startswith('HyperparameterError: hyperparameter loss="hinge" is not allowed: expected one of')
    with pytest.raises(HyperparameterError, match="Did you mean 'negatives'"):
        dssm.parse_args(["--negative", "3"])


# ---------------------------------------------------------------- script mode


@pytest.mark.slow
def test_script_mode_trains_and_saves(data_dir, tmp_path):
    proc = run_script_mode("dssm.py", str(tmp_path), {"training": data_dir}, dict(FAST, epochs=2))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(os.listdir(str(tmp_path / "model"))) == sorted(dssm.MODEL_FILES)
    saved = json.load(open(str(tmp_path / "output" / "data" / "metrics.json")))
    assert [e["epoch"] for e in saved["epochs"]] == [1, 2]
    for definition in dssm.METRIC_DEFINITIONS:
        values = [float(m.group(1)) for m in re.finditer(definition["Regex"], proc.stdout)]
        assert len(values) == 2, definition  # one per epoch: the final_ line and JSON records don't match
    assert dssm.OBJECTIVE == {"metric": "warm_hr10", "type": "Maximize"}


def test_main_in_process(data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SM_OUTPUT_DIR", str(tmp_path / "output"))
    monkeypatch.setenv("SM_OUTPUT_DATA_DIR", str(tmp_path / "output" / "data"))
    monkeypatch.delenv("SM_CHANNELS", raising=False)
    argv = ["--training-dir", data_dir, "--model-dir", str(tmp_path / "model"), "--max-train-samples", "8000"]
    dssm.main(argv + to_cmd_args(dict(FAST, user_history=False)))
    assert "warm_hr10=" in capsys.readouterr().out
    assert sorted(os.listdir(str(tmp_path / "model"))) == sorted(dssm.MODEL_FILES)


# ---------------------------------------------------------------- serving


@pytest.fixture(scope="module")
def served(trained, tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("model"))
    dssm.save(trained[0], model_dir)
    assert sorted(os.listdir(model_dir)) == sorted(dssm.MODEL_FILES)  # no temporary files left behind
    return dssm.model_fn(model_dir)


def ask(model, payload, content_type="application/json"):
    return ask_json(dssm.transform_fn, model, payload, content_type)


def _sorted_desc(scores):
    return scores == sorted(scores, reverse=True)


def test_served_vectors_match_the_trained_net(trained, served):
    expected = dssm.recommender(trained[0])
    assert served.item_vectors.shape == (1682, 3 * 16) and served.user_vectors.shape == (943, 3 * 16)
    assert np.allclose(served.item_vectors, expected.item_vectors, atol=1e-5)
    assert np.allclose(served.user_vectors, expected.user_vectors, atol=1e-5)
    assert np.allclose(np.linalg.norm(served.item_vectors, axis=1), 1.0, atol=1e-4)  # scores are cosines


def test_user_request_recommends_unrated_movies(served, data_dir):
    answer = ask(served, {"user_id": 196, "top_k": 10})
    recs = answer["recommendations"]
    assert answer["user_id"] == 196 and len(recs) == 10
    c = served.catalog
    rated = {c.item_ids[i] for i in c.seen[c.user_index[196]]}
    assert rated and not rated & {r["item_id"] for r in recs}
    assert _sorted_desc([r["score"] for r in recs]) and all(-1 <= r["score"] <= 1 for r in recs)
    assert all(c.titles[c.item_index[r["item_id"]]] == r["title"] for r in recs)
    user = served.user_vectors[c.user_index[196]]
    top = recs[0]
    assert top["score"] == pytest.approx(float(served.item_vectors[c.item_index[top["item_id"]]] @ user), abs=1e-4)


def test_item_request_finds_similar_movies(served):
    answer = ask(served, {"item_id": 50, "top_k": 5})
    assert answer["item_id"] == 50 and answer["title"] == "Star Wars (1977)"
    similar = answer["similar_items"]
    assert len(similar) == 5 and 50 not in [s["item_id"] for s in similar]
    assert _sorted_desc([s["score"] for s in similar])


def test_title_request_ranks_users_for_a_new_movie(served):
    payload = {"title": "Star Trek: The Lost Voyage (1999)", "genres": ["Sci-Fi", "action"], "year": 1999, "top_k": 5}
    answer = ask(served, payload)
    assert answer["genres"] == ["Action", "Sci-Fi"] and answer["year"] == 1999
    assert {"star", "trek", "the"} <= set(answer["known_title_words"])
    assert "lost" not in served.catalog.vocabulary or "lost" in answer["known_title_words"]
    assert not set(answer["unknown_title_words"]) & set(served.catalog.vocabulary)
    users = answer["users"]
    assert len(users) == 5 and _sorted_desc([u["score"] for u in users])
    c = served.catalog
    first = users[0]
    row = c.user_index[first["user_id"]]
    assert (first["age"], first["gender"], first["occupation"]) == (c.ages[row], c.genders[row], c.occupations[row])
    vector, _, _ = served.new_item_vector(payload["title"], [1, 15], 1999)
    assert first["score"] == pytest.approx(float(served.user_vectors[row] @ vector), abs=1e-4)
    # genres and year are optional
    assert len(ask(served, {"title": "Completely Unheard Of", "top_k": 3})["users"]) == 3


def test_a_cold_movie_described_by_its_content_gets_its_catalog_vector(served):
    # the item tower reads content only, so a movie held out of training is placed by the same path
    c = served.catalog
    row = c.item_index[c.cold_item_ids[0]]
    vector, _, _ = served.new_item_vector(c.titles[row], c.genres[row], c.years[row])
    assert np.allclose(vector, served.item_vectors[row], atol=1e-5)


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"user_id": 99999, "top_k": 5}, "unknown user_id 99999"),
        ({"user_id": "196", "top_k": 5}, "'user_id' must be an integer user id"),
        ({"user_id": True, "top_k": 5}, "'user_id' must be an integer"),
        ({"item_id": 5000, "top_k": 5}, "unknown item_id 5000"),
        ({"item_id": 1.5, "top_k": 5}, "'item_id' must be an integer item id"),
        ({"user_id": 196, "top_k": 0}, "'top_k' must be an integer in 1..100"),
        ({"user_id": 196, "top_k": 101}, "'top_k' must be an integer in 1..100"),
        ({"item_id": 50, "top_k": "10"}, "'top_k' must be an integer in 1..100"),
        ({"user_id": 196}, "unrecognised request with keys ['user_id']"),
        ({"user_id": 196, "item_id": 50, "top_k": 5}, "unrecognised request"),
        ({"title": "X", "top_k": 5, "director": "Y"}, "unrecognised request"),
        ({"title": "", "top_k": 5}, '"title" must be a non-empty string'),
        ({"title": 42, "top_k": 5}, '"title" must be a non-empty string'),
        ({"title": "x" * 501, "top_k": 5}, "at most 500 characters"),
        ({"title": "X", "genres": "Comedy", "top_k": 5}, '"genres" must be a list of genre names'),
        ({"title": "X", "genres": ["Comdy"], "top_k": 5}, "unknown genre 'Comdy'. Did you mean 'Comedy'?"),
        ({"title": "X", "year": "1997", "top_k": 5}, "'year' must be a release year in 1800..2100"),
        ({"title": "X", "year": 3000, "top_k": 5}, "'year' must be a release year"),
        ([{"user_id": 196, "top_k": 5}], "expected a JSON object"),
        ("{not json", "invalid JSON payload"),
    ],
)
def test_bad_requests_are_client_errors(served, payload, message):
    with pytest.raises(RequestError, match=re.escape(message)) as info:
        ask(served, payload)
    assert info.value.status_code == 400


def test_unsupported_content_types(served):
    with pytest.raises(RequestError) as info:
        ask(served, "196,10", "text/csv")
    assert info.value.status_code == 415
    with pytest.raises(RequestError) as info:
        dssm.transform_fn(served, '{"user_id": 196, "top_k": 5}', "application/json", "text/csv")
    assert info.value.status_code == 406
    # after bad requests the model still answers
    assert len(ask(served, {"item_id": 1, "top_k": 2})["similar_items"]) == 2


def test_trained_net_serves_in_a_notebook(trained):
    net = trained[0]
    assert len(ask(net, {"user_id": 5, "top_k": 3})["recommendations"]) == 3
    assert dssm.recommender(net) is dssm.recommender(net)  # vectors computed once


def test_readme_documents_the_hyperparameters():
    assert readme_hyperparameter_table("dssm") == dssm.HYPERPARAMETERS.markdown_table()


# ---------------------------------------------------------------- local mode


@pytest.mark.slow
def test_local_mode_fit_deploy_and_the_three_requests(data_dir, tmp_path):
    from local_helpers import NoInternet, live_processes_under, mxnet_estimator

    from smgluon_local import ProcessSession

    with NoInternet() as guard:
        session = ProcessSession(root_dir=str(tmp_path / "root"))
        est = mxnet_estimator(
            session,
            "dssm.py",
            source_dir=ENTRY_POINTS,
            dependencies=[os.path.join(REPO, "lib", "smgluon")],
            output_path="file://" + str(tmp_path / "out"),
            hyperparameters=dict(FAST, split="none"),
        )
        est.fit({"training": "file://" + data_dir})
        predictor = est.deploy(initial_instance_count=1, instance_type="local")
        try:
            recs = predictor.predict({"user_id": 196, "top_k": 4})["recommendations"]
            assert len(recs) == 4 and all(r["title"] for r in recs)
            assert len(predictor.predict({"item_id": 50, "top_k": 3})["similar_items"]) == 3
            new = {"title": "Toy Story 3 (2010)", "genres": ["Animation", "Comedy"], "year": 2010, "top_k": 2}
            assert len(predictor.predict(new)["users"]) == 2
            from botocore.exceptions import ClientError

            with pytest.raises(ClientError, match="unknown user_id 99999"):
                predictor.predict({"user_id": 99999, "top_k": 4})
            assert len(predictor.predict({"user_id": 1, "top_k": 1})["recommendations"]) == 1  # still up
        finally:
            predictor.delete_endpoint()
    assert guard.attempts == []
    assert live_processes_under(session.root_dir) == []


@pytest.mark.slow
@pytest.mark.parametrize("extra", [{}, {"sequential_history": 0.0}], ids=["latest-bags", "whole-bags"])
def test_two_hosts_train_with_the_same_metrics_on_both(data_dir, tmp_path, extra):
    from local_helpers import live_processes_under, mxnet_estimator

    from smgluon_local import ProcessSession

    session = ProcessSession(root_dir=str(tmp_path / "root"), log_stream=False)
    est = mxnet_estimator(
        session,
        "dssm.py",
        source_dir=ENTRY_POINTS,
        dependencies=[os.path.join(REPO, "lib", "smgluon")],
        instance_count=2,
        distribution={"parameter_server": {"enabled": True}},
        hyperparameters=dict(FAST, epochs=2, **extra),
        metric_definitions=dssm.METRIC_DEFINITIONS,
    )
    est.fit({"training": "file://" + data_dir})
    job = est.latest_training_job.name
    assert session.describe_training_job(job)["TrainingJobStatus"] == "Completed"
    with open(os.path.join(session.root_dir, "jobs", job, "job.log")) as f:
        log = f.read()
    last = {}
    for host in ("algo-1", "algo-2"):
        lines = [line for line in log.splitlines() if line.startswith(host + " | metrics: epoch=2 ")]
        last[host] = dict(kv.split("=") for kv in lines[-1].split("metrics: ")[1].split())
    # dense gradients over the parameter server, from rank 0's parameters: the same net on both hosts (so the
    # same ranking metrics, each host evaluating the whole split), the loss summed over both
    for key in ("train_loss", "warm_hr10", "warm_ndcg10", "cold_hr10", "cold_ndcg10"):
        assert last["algo-1"][key] == last["algo-2"][key], key
    assert float(last["algo-1"]["warm_hr10"]) > 0.15
    assert live_processes_under(session.root_dir) == []
