"""Benchmark of entry_points/dssm.py on ml-100k with the NCF protocol, beside popularity, random and MF.

One split (:func:`smgluon.ranking.ncf_split`: positives are ratings >= 4, a
seeded 10% of the movies held out as cold items, each user's latest positive
held out, 99 sampled unrated negatives per case) is scored for:

* a random ranking and the popularity baseline (number of training ratings);
* BPR matrix factorisation (``bench/baselines/bpr_mf.py``), the implicit-feedback
  baseline: trained on the same positives as DSSM, with the configuration its
  tuning on a validation split chose (:data:`BPR_HPS`);
* movielens_mf, the real workload (svdpp, its best single model on ratings),
  trained on the same training ratings; it ranks by predicted rating and has
  no vector for a movie without ratings, so it has no cold figure;
* each DSSM configuration of :data:`CONFIGS`, trained by the entry point's own
  ``train`` (which builds the same split from the same seed; checked here).

Figures are those after the last epoch (no early stopping on the test cases).
Writes a markdown table to ``bench/results/dssm.md``. Run from the repository root::

    nohup .venv/bin/python bench/dssm.py > /tmp/dssm-bench.log 2>&1 &
    .venv/bin/python bench/dssm.py --only popularity mf cosine
"""

import argparse
import contextlib
import datetime
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(REPO, "entry_points"), os.path.join(REPO, "lib"), REPO]

import dssm  # noqa: E402
import movielens_mf  # noqa: E402
import mxnet as mx  # noqa: E402

from bench.movielens_mf import machine  # noqa: E402
from smgluon import files, ranking  # noqa: E402
from smgluon.movielens import read_items, read_ratings, read_users  # noqa: E402

SHARED_DATA = os.environ.get("SMGLUON_SHARED_DATA", os.path.join(os.path.dirname(REPO), "shared", "data"))
RESULTS = os.path.join(REPO, "bench", "results", "dssm.md")
THRESHOLD, COLD_FRACTION, NEGATIVES, SEED = 4, 0.1, 99, 42
# movielens_mf's svdpp as in the rating benchmark's svdpp row (25 epochs), the figures of earlier runs; the rating
# model's default (the svdpp + AutoRec blend) is not run here
MF_HPS = {"model": "svdpp", "num_factors": 32}

# BPR's configuration, chosen on the validation split (each user's second-latest positive; bench/results/dssm.md)
BPR_HPS = {"num_factors": 64, "epochs": 25, "l2": 1e-3, "learning_rate": 0.005, "negatives": 4}

# one tower pair trained on the positives only: the defaults of the older rows
SINGLE = {"ensemble": 1, "other_ratings_weight": 0.0}
# name → DSSM hyperparameters beyond the entry point's defaults
CONFIGS = [
    ("dssm-full-softmax", {}),  # the entry point's defaults
    # only the positives trained: the defaults until other_ratings_weight (bench/results/dssm_tuning.md)
    ("dssm-positives-only", {"other_ratings_weight": 0.0}),
    # one tower pair on the positives: the defaults until the ensemble; the rows below are single pairs on the
    # positives too, so their figures stay those of earlier runs and show nothing else changed
    ("dssm-single", SINGLE),
    # every positive with its user's whole bag: the defaults until 2026-12-07
    ("dssm-whole-bags", dict(SINGLE, sequential_history=0.0)),
    ("dssm-full-softmax-no-history", dict(SINGLE, user_history=False)),
    # the in-batch softmax with whole bags, the defaults until 2026-12-06
    ("dssm-softmax", dict(SINGLE, loss="softmax", dropout=0.3, sequential_history=0.0)),
    ("dssm-softmax-no-logq", dict(SINGLE, loss="softmax", dropout=0.3, logq_correction=False, sequential_history=0.0)),
    # the workshop's loss
    ("dssm-cosine", dict(SINGLE, loss="cosine", dropout=0.3, batch_size=256, epochs=20, sequential_history=0.0)),
]
BASELINES = ["random", "popularity", "mf", "bpr", "bpr-all-ratings"]
# how the trained baselines' rows describe their configuration: a template and the hyperparameters it shows
BASELINE_CONFIGS = {
    "mf": (
        "movielens_mf model=svdpp, num_factors=%d, %d epochs, Adam lr=%g decaying %g/epoch, wd=%g",
        ["num_factors", "epochs", "learning_rate", "lr_decay", "weight_decay"],
    ),
    "bpr": (
        "BPR-MF, num_factors=%d, %d epochs, Adam lr=%g, l2=%g, %d sampled negatives per positive",
        ["num_factors", "epochs", "learning_rate", "l2", "negatives"],
    ),
    "bpr-all-ratings": (
        "BPR-MF on every training rating (as DSSM's other_ratings_weight, unweighted), num_factors=%d, %d epochs,"
        " Adam lr=%g, l2=%g, %d sampled negatives per positive",
        ["num_factors", "epochs", "learning_rate", "l2", "negatives"],
    ),
}


def evaluate_both(scorer, split, cold=True):
    warm = ranking.evaluate(scorer, split.warm_users, split.warm_candidates)
    return {"warm": warm, "cold": ranking.evaluate(scorer, split.cold_users, split.cold_candidates) if cold else None}


def random_scorer(seed):
    rng = np.random.RandomState(seed)
    return lambda users, candidates: rng.rand(*candidates.shape)


def write_ratings(path, rows):
    with open(path, "w") as f:
        f.writelines("%d\t%d\t%d\t%d\n" % tuple(r) for r in rows.tolist())


def run_mf(data_dir, ratings, split):
    """Trains movielens_mf on the split's training ratings (u1.base) and scores the warm cases by predicted rating."""
    held_out = set(zip(split.warm_users.tolist(), split.warm_candidates[:, 0].tolist()))
    test = np.array([r for r in ratings.tolist() if (r[0], r[1]) in held_out])
    with tempfile.TemporaryDirectory() as work, contextlib.redirect_stdout(io.StringIO()):
        shutil.copy(os.path.join(data_dir, "u.item"), work)
        write_ratings(os.path.join(work, "u1.base"), split.train)
        write_ratings(os.path.join(work, "u1.test"), test)  # MF's validation RMSE: the held-out positives
        net = movielens_mf.train(
            {"training": work}, dict(MF_HPS, split="u1", seed=SEED), ["local"], 0, output_data_dir=work
        )
        with open(os.path.join(work, "metrics.json")) as f:
            doc = json.load(f)
    catalog = net.catalog
    user_row = np.vectorize(catalog.user_index.__getitem__, otypes=[np.float32])
    item_row = np.vectorize(catalog.item_index.__getitem__, otypes=[np.float32])

    def scorer(users, candidates):
        # the raw predicted rating: clipping to 1-5 would tie the best candidates
        u = np.repeat(user_row(users), candidates.shape[1])
        scores = net(mx.nd.array(u), mx.nd.array(item_row(candidates).ravel())).asnumpy()
        return scores.reshape(candidates.shape)

    result = evaluate_both(scorer, split, cold=False)
    result.update(epochs=doc["epochs"], hyperparameters=doc["hyperparameters"])
    return result


def run_bpr(data_dir, split, threshold=THRESHOLD):
    """Trains BPR-MF on the split's training ratings >= ``threshold`` and scores the warm cases."""
    from bench.baselines import bpr_mf

    users = read_users(os.path.join(data_dir, "u.user"))
    items = read_items(os.path.join(data_dir, "u.item"))
    model = bpr_mf.train(split, users.ids, items.ids, threshold, dict(BPR_HPS, seed=SEED), log=lambda line: None)
    result = evaluate_both(model["scorer"], split, cold=False)
    result.update(epochs=model["epochs"], hyperparameters=model["hyperparameters"])
    return result


def run_dssm(name, overrides, data_dir, split):
    hps = dict(
        overrides,
        split="leave_latest",
        positive_threshold=THRESHOLD,
        cold_fraction=COLD_FRACTION,
        eval_negatives=NEGATIVES,
        seed=SEED,
    )
    with tempfile.TemporaryDirectory() as out, contextlib.redirect_stdout(io.StringIO()):
        net = dssm.train({"training": data_dir}, hps, ["local"], 0, output_data_dir=out)
        with open(os.path.join(out, "metrics.json")) as f:
            doc = json.load(f)
    for field in ("train", "warm_candidates", "cold_candidates"):
        if not np.array_equal(getattr(net.split, field), getattr(split, field)):
            raise RuntimeError("%s: the entry point's split differs from the benchmark's (%s)" % (name, field))
    result = evaluate_both(dssm.recommender(net).scorer(), split)
    last = doc["epochs"][-1]
    if abs(last["warm_hr10"] - result["warm"]["hr"]) > 1e-9:
        raise RuntimeError("%s: the logged warm HR@10 differs from the benchmark's evaluation" % name)
    result.update(epochs=doc["epochs"], hyperparameters=doc["hyperparameters"])
    return result


def describe_dssm(hps):
    keys = ["loss", "ensemble", "other_ratings_weight", "num_factors", "hidden", "dropout", "user_history"]
    keys += ["sequential_history", "batch_size"]
    keys += ["learning_rate"]
    keys += {"cosine": ["negatives"], "softmax": ["temperature", "logq_correction"]}.get(
        hps["loss"], ["temperature", "exclude_rated"]
    )
    return ", ".join("%s=%s" % (k, json.dumps(hps[k])) for k in keys)


def _cell(value):
    return "%.4f" % value


def write_markdown(rows, split, command, path=RESULTS):
    info = machine()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    summary = split.summary()
    lines = [
        "# dssm on ml-100k: top-10 ranking (NCF protocol), warm and cold-start movies",
        "",
        "- date: %s" % datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "- machine: %d CPUs (nproc), %s; Python %s; mxnet %s (CPU); load average when it ended: %.2f %.2f %.2f"
        " (this run's own training counts in it)."
        % ((info["nproc"], info["cpu"], info["python"], mx.__version__) + os.getloadavg()),
        "- commit: %s (results of the working tree at that commit)" % (commit.stdout.strip() or "unknown"),
        "- command: `%s`" % command,
        "- split (`smgluon.ranking.ncf_split`, seed %d): positives are ratings >= %d; %d of the 1,682 movies"
        " (10%%, seeded) lose every rating from training; of the rest, each user's latest positive is held out."
        " Training: %s ratings. Warm cases: %d (one per user), each ranked against %d movies the user never rated,"
        " drawn from the warm movies. Cold cases: %d (every positive rating of a cold movie), each ranked against"
        " %d movies the user never rated, drawn from all movies."
        % (
            SEED,
            THRESHOLD,
            summary["cold_items"],
            "{:,}".format(summary["train_ratings"]),
            summary["warm_cases"],
            NEGATIVES,
            summary["cold_cases"],
            NEGATIVES,
        ),
        "- HR@10: the share of cases whose held-out movie is in the top 10 of its 100 candidates; NDCG@10:"
        " 1/log2(rank+2) when it is. Ties count as a random order (`smgluon.ranking.hit_ratio_ndcg`)."
        " After the last epoch, no early stopping on the test cases.",
        "- s/epoch: DSSM's training time per epoch (its per-epoch evaluation excluded); MF's includes its"
        " per-epoch RMSE on the held-out ratings.",
        "",
        "| model | configuration | epochs | s/epoch | warm HR@10 | warm NDCG@10 | cold HR@10 | cold NDCG@10 |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        name, r = row["name"], row["result"]
        epochs = r.get("epochs") or []
        seconds = sum(e["epoch_seconds"] for e in epochs) / len(epochs) if epochs else None
        if name in BASELINE_CONFIGS:
            template, keys = BASELINE_CONFIGS[name]
            config = template % tuple(r["hyperparameters"][k] for k in keys)
        elif name.startswith("dssm"):
            config = describe_dssm(r["hyperparameters"])
        else:
            config = {"random": "uniform random scores", "popularity": "number of training ratings"}[name]
        cold = r["cold"]
        lines.append(
            "| %s | %s | %s | %s | **%s** | %s | %s | %s |"
            % (
                name,
                config,
                len(epochs) or "–",
                "%.2f" % seconds if seconds is not None else "–",
                _cell(r["warm"]["hr"]),
                _cell(r["warm"]["ndcg"]),
                "**%s**" % _cell(cold["hr"]) if cold else "n/a: no vector for a movie without ratings",
                _cell(cold["ndcg"]) if cold else "n/a",
            )
        )
    lines += [
        "",
        "Notes:",
        "",
        "- The item tower reads only content (title words, genres, release-year bucket), never an item id, so a"
        " cold movie gets its vector the same way as a known one; the title vocabulary is that of the training"
        " movies, so a cold movie's words that no training title has are ignored.",
        "- `sequential_history=1` (the defaults): each training positive is scored from the bag it would be"
        " predicted from were it its user's latest positive, as a held-out case is; `dssm-whole-bags` (the"
        " defaults until 2026-12-07) scores every positive from its user's whole bag.",
        "- `ensemble=3` (the defaults): three tower pairs from their own initialisations, each on its own loss;"
        " the vectors are theirs concatenated (unit vectors again), so the score is the mean of their cosines."
        " Its s/epoch is that of all three; `dssm-single` is one pair (the defaults until 2026-12-07), and so are"
        " the rows below it.",
        "- `other_ratings_weight=0.25` (the defaults): the training ratings below the threshold are trained as"
        " positives too, with weight 0.25 in the loss (a movie rated at all is one the user chose to watch; the"
        " negatives here are movies the user never rated); `dssm-positives-only` and the rows below it train the"
        " positives only. `bpr-all-ratings` gives BPR every training rating as a positive likewise.",
        "- Popularity scores every cold movie 0 (no training rating), below almost every negative: its cold"
        " HR@10 is 0. The random ranking (HR@10 = 0.1 in expectation) is the bar a cold-start model has to clear.",
        "- One split, one seed. With 942 warm cases a warm HR@10 difference under about 0.03 (two standard"
        " errors) is noise; the cold cases are the ratings of 168 movies, so they are not independent either.",
        "- MF is trained on ratings (squared error), not on positives, and ranks by predicted rating: it learns"
        " how much a user would like a movie, not which movies a user watches, which is what this protocol rewards.",
        "- BPR-MF (`bench/baselines/bpr_mf.py`) is the fair implicit-feedback baseline: a dot product plus an item"
        " bias trained on the same positives as DSSM with sampled unrated negatives. Its configuration and DSSM's"
        " defaults were chosen on validation splits that leave these test cases out"
        " (`bench/results/dssm_tuning.md`, with everything tried).",
        "",
    ]
    files.write_text(path, "\n".join(lines))
    return path


def write_dssm_summary(rows, command):
    """The rows for bench/results.md: warm and cold HR@10 of every row, with time per epoch where it trains."""
    from bench.summary import write_summary

    by_name = {row["name"]: row["result"] for row in rows}
    best_bpr = max(by_name[n]["warm"]["hr"] for n in ("bpr", "bpr-all-ratings"))
    warm_bar = "≥ 0.72 and > BPR (%.4f, its better row) in the same run" % best_bpr
    training = []
    for row in rows:
        name, r = row["name"], row["result"]
        epochs = r.get("epochs") or []
        seconds = sum(e["epoch_seconds"] for e in epochs) / len(epochs) if epochs else None
        rate = sum(e["samples_per_sec"] for e in epochs) / len(epochs) if epochs else None
        workload = {
            "mf": "movielens_mf (svdpp)",
            "bpr": "BPR-MF (implicit)",
            "bpr-all-ratings": "BPR-MF (implicit, every rating)",
            "random": "random ranking",
            "popularity": "popularity",
        }.get(name)
        base = {
            "workload": workload or "dssm",
            "variant": name if workload is None else "NCF protocol",
            "epochs": len(epochs) or None,
            "seconds_per_epoch": seconds,
            "samples_per_sec": rate,
            "seed": "none: the workshop shows only the DSSM graph" if workload is None else "",
        }
        training.append(
            dict(base, metric="warm HR@10", value=r["warm"]["hr"], target=warm_bar if name == CONFIGS[0][0] else "")
        )
        if r["cold"] is not None:
            training.append(
                dict(
                    base,
                    metric="cold HR@10",
                    value=r["cold"]["hr"],
                    target="≥ 0.40" if name == CONFIGS[0][0] else "",
                )
            )
    return write_summary(
        "dssm",
        "DSSM two-tower recommender, MovieLens-100k, NCF protocol (warm and cold movies)",
        "bench/results/dssm.md",
        training=training,
        command=command,
        notes=[
            "dssm samples/s: training positives per second; movielens_mf: training ratings per second"
            " (s/epoch with its RMSE evaluation)"
        ],
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.path.join(SHARED_DATA, "ml-100k"), help="the unzipped ml-100k")
    names = BASELINES + [n for n, _ in CONFIGS]
    parser.add_argument("--only", nargs="*", choices=names, help="rows to run (default: all)")
    parser.add_argument("--output", default=RESULTS, help="the markdown file to write")
    args = parser.parse_args(argv)
    ratings = read_ratings(os.path.join(args.data_dir, "u.data"))
    items = read_items(os.path.join(args.data_dir, "u.item"))
    split = ranking.ncf_split(ratings, items.ids, THRESHOLD, COLD_FRACTION, NEGATIVES, SEED)
    print("split:", json.dumps(split.summary()), flush=True)
    rows = []
    configs = dict(CONFIGS)
    for name in names:
        if args.only and name not in args.only:
            continue
        if name == "random":
            result = evaluate_both(random_scorer(SEED), split)
        elif name == "popularity":
            result = evaluate_both(ranking.popularity_scorer(split.train), split)
        elif name == "mf":
            result = run_mf(args.data_dir, ratings, split)
        elif name == "bpr":
            result = run_bpr(args.data_dir, split)
        elif name == "bpr-all-ratings":
            result = run_bpr(args.data_dir, split, threshold=1)
        else:
            result = run_dssm(name, configs[name], args.data_dir, split)
        rows.append({"name": name, "result": result})
        cold = result["cold"]
        print(
            "%-24s warm HR@10 %.4f NDCG@10 %.4f | cold HR@10 %s"
            % (name, result["warm"]["hr"], result["warm"]["ndcg"], "%.4f" % cold["hr"] if cold else "n/a"),
            flush=True,
        )
    command = ".venv/bin/python bench/dssm.py" + (" " + " ".join(argv) if argv else "")
    print("wrote", write_markdown(rows, split, command, args.output))
    if not args.only and args.output == RESULTS:
        print("wrote", write_dssm_summary(rows, command))


if __name__ == "__main__":
    main(sys.argv[1:])
