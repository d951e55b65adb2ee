"""Benchmark of entry_points/fmnist_cnn.py on the full Fashion-MNIST (60,000 train / 10,000 test).

Two parts, each run as the user runs the script (script mode, its own process,
so the thread variables read at ``import mxnet`` take effect):

* ``threads``: seconds per epoch of the improved defaults under MXNet's default
  threading and under the settings MEASURED.md found fastest for this CNN, on
  a 12,000-image slice (the first epoch is a warm-up);
* ``accuracy``: 10 epochs of the workshop's settings (target: validation
  accuracy >= 0.905; the workshop reports 0.9055) and of the project's improved
  defaults (target: >= 0.92), under the fastest thread setting.

Every finished run is appended to ``bench/results/fmnist_cnn.json`` (so a long
session survives an interruption) and ``bench/results/fmnist_cnn.md`` is
rewritten from it. Run from the repository root::

    .venv/bin/python bench/fmnist_cnn.py [--data /usr/share/datasets/fashion-mnist] [--only threads|accuracy]
    .venv/bin/python bench/fmnist_cnn.py --config nobn batch_norm=false   # an extra configuration
"""

import argparse
import collections
import datetime
import fcntl
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(REPO, "entry_points"), os.path.join(REPO, "lib")]

import fmnist_cnn  # noqa: E402

if REPO not in sys.path:
    sys.path.insert(0, REPO)
from bench.mlp_speed import machine  # noqa: E402

RESULTS_JSON = os.path.join(REPO, "bench", "results", "fmnist_cnn.json")
RESULTS_MD = os.path.join(REPO, "bench", "results", "fmnist_cnn.md")
DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"
FAST_ENV = {"OMP_NUM_THREADS": "2", "MXNET_ENGINE_TYPE": "NaiveEngine"}
# Accuracy runs: one compute thread each. Two OpenMP threads on cores other jobs also use spin at
# every barrier (an epoch took 1,019 s instead of ~19 s at a load average of 10); one thread degrades
# gracefully, and the results do not depend on it.
ACCURACY_ENV = {"OMP_NUM_THREADS": "1", "MXNET_ENGINE_TYPE": "NaiveEngine"}
THREAD_SETTINGS = [
    ("defaults (threaded engine, MXNet's OMP default)", {}),
    ("OMP_NUM_THREADS=2", {"OMP_NUM_THREADS": "2"}),
    ("OMP_NUM_THREADS=2 MXNET_ENGINE_TYPE=NaiveEngine", FAST_ENV),
    ("OMP_NUM_THREADS=1 MXNET_ENGINE_TYPE=NaiveEngine", ACCURACY_ENV),
]
THREADS_SLICE = 6000
TARGETS = {"workshop": 0.905, "improved": 0.92}
_THREAD_VARS = ("OMP_NUM_THREADS", "MXNET_ENGINE_TYPE", "MKL_NUM_THREADS", "MXNET_CPU_WORKER_NTHREADS")


def run_script(name, hps, env_vars, data_dir, part):
    """Runs fmnist_cnn.py in script mode in a fresh process; returns the run's record."""
    env = {k: v for k, v in os.environ.items() if k not in _THREAD_VARS}
    env.update(env_vars)
    with tempfile.TemporaryDirectory() as root:
        env.update(SMGLUON_OPT_ML=root, PYTHONPATH=os.path.join(REPO, "lib"))
        args = [sys.executable, os.path.join(REPO, "entry_points", "fmnist_cnn.py"), "--training-dir", data_dir]
        for key, value in hps.items():
            args += ["--%s" % key, json.dumps(value) if not isinstance(value, str) else value]
        load_before = os.getloadavg()[0]
        tic = time.time()
        # the epoch lines are echoed as they come: a 10-epoch run takes minutes on 2 cores
        proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=root)
        tail = collections.deque(maxlen=60)
        for line in proc.stdout:
            tail.append(line)
            if line.startswith("metrics: epoch="):
                print("  %s %s" % (name, line.strip()), flush=True)
        wall = time.time() - tic
        if proc.wait() != 0:
            raise RuntimeError("%s failed:\n%s" % (name, "".join(tail)))
        with open(os.path.join(root, "output", "data", "metrics.json")) as f:
            doc = json.load(f)
    epochs = doc["epochs"]
    record = {
        "name": name,
        "part": part,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "env": env_vars,
        "overrides": hps,
        "hyperparameters": doc["hyperparameters"],
        "epochs": epochs,
        "wall_seconds": wall,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
    }
    print(
        "%-28s %s val %.4f  %.1f s/epoch (median)  wall %.0f s"
        % (name, json.dumps(env_vars), epochs[-1]["validation_accuracy"], median_epoch(record), wall),
        flush=True,
    )
    return record


def median_epoch(record):
    seconds = [e["epoch_seconds"] for e in record["epochs"]]
    return statistics.median(seconds[1:] if len(seconds) > 1 else seconds)


def load_records(path=RESULTS_JSON):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)["runs"]


def save_record(record, path=RESULTS_JSON):
    """Adds (or replaces) a run in the JSON; a lock lets two benchmark processes run side by side."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    lock = os.open(os.path.dirname(path), os.O_RDONLY)  # a lock on the folder: no lock file left behind
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        runs = [r for r in load_records(path) if not (r["name"] == record["name"] and r["part"] == record["part"])]
        runs.append(record)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"runs": runs}, f, indent=1)
        os.replace(tmp, path)
        render(runs)
    finally:
        os.close(lock)  # releases the lock


def drop_records(part, path=RESULTS_JSON):
    """Removes a part's earlier runs (a new round of thread measurements replaces the old one)."""
    if os.path.exists(path):
        with open(path) as f:
            runs = [r for r in json.load(f)["runs"] if r["part"] != part]
        with open(path + ".tmp", "w") as f:
            json.dump({"runs": runs}, f, indent=1)
        os.replace(path + ".tmp", path)


def describe(hps):
    keys = ["optimizer", "learning_rate", "momentum", "batch_size", "weight_decay", "lr_schedule", "batch_norm"]
    keys += ["dropout", "augment"]
    return ", ".join("%s=%s" % (k, json.dumps(hps[k]) if isinstance(hps[k], bool) else hps[k]) for k in keys)


def _order(record):
    """Workshop runs first, then the improved ones, each by seed (the default seed first)."""
    family, seed = record["name"].split(",")[0], record["hyperparameters"]["seed"]
    return (family != "workshop", family, seed != 42, seed)


def render(records, path=RESULTS_MD):
    info = machine()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    threads = [r for r in records if r["part"] == "threads"]
    accuracy = sorted((r for r in records if r["part"] != "threads"), key=_order)
    lines = [
        "# fmnist_cnn on Fashion-MNIST (60,000 train / 10,000 test)",
        "",
        "- machine: %d CPUs (nproc), %s, %.1f GiB RAM; Python %s; mxnet %s (CPU); **shared with other developers'"
        " jobs** (load averages per run below), so seconds are indicative; accuracies do not depend on it"
        % (info["nproc"], info["cpu"], info["ram_gib"], platform.python_version(), fmnist_cnn.mx.__version__),
        "- commit: %s (the working tree at that commit)" % (commit.stdout.strip() or "unknown"),
        "- command: `.venv/bin/python bench/fmnist_cnn.py` (see its docstring); each run is"
        " `python entry_points/fmnist_cnn.py --training-dir %s ...` in its own process" % DEFAULT_DATA,
        "- data: the Debian package dataset-fashion-mnist, checked by `smgluon data fetch fashion-mnist`",
        "- validation accuracy: on all 10,000 test images after the last epoch (no early stopping)",
        "",
        "## Thread settings (improved defaults, %d-image slice; s/epoch: training only, median of epochs 2-3)"
        % THREADS_SLICE,
        "",
        "| setting | s/epoch | samples/s | load average before/after | date |",
        "|---|---:|---:|---|---|",
    ]
    for r in threads:
        seconds = median_epoch(r)
        lines.append(
            "| %s | %.2f | %.0f | %.1f / %.1f | %s |"
            % (
                r["name"],
                seconds,
                THREADS_SLICE / seconds,
                r["load_average_before"],
                r["load_average_after"],
                r["date"],
            )
        )
    lines += [
        "",
        "## Accuracy, 10 epochs (`%s`)" % " ".join("%s=%s" % kv for kv in ACCURACY_ENV.items()),
        "",
        "| name | configuration | validation accuracy | target | best epoch | s/epoch (median) | wall s"
        " | load before/after | date |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in accuracy:
        val = [e["validation_accuracy"] for e in r["epochs"]]
        target = TARGETS.get(r["name"])
        mark = "" if target is None else ("≥ %.3f %s" % (target, "met" if val[-1] >= target else "**not met**"))
        lines.append(
            "| %s | %s | **%.4f** | %s | %.4f (epoch %d) | %.1f | %.0f | %.1f / %.1f | %s |"
            % (
                r["name"],
                describe(r["hyperparameters"]),
                val[-1],
                mark,
                max(val),
                val.index(max(val)) + 1,
                median_epoch(r),
                r["wall_seconds"],
                r["load_average_before"],
                r["load_average_after"],
                r["date"],
            )
        )
    lines += ["", "Per-epoch validation accuracy:", ""]
    for r in accuracy:
        lines.append("- %s: %s" % (r["name"], ", ".join("%.4f" % e["validation_accuracy"] for e in r["epochs"])))
    lines += ["", "## Notes", ""] + notes(accuracy) + [""]
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def best_workshop(accuracy):
    runs = [r for r in accuracy if r["name"].split(",")[0] == "workshop"]
    return max((e["validation_accuracy"] for r in runs for e in r["epochs"]), default=float("nan"))


def notes(accuracy):
    """The findings, with the numbers of the runs in the JSON."""
    lines = []
    for family, reported in (("workshop", "0.9162 training / 0.9055 validation accuracy"), ("improved", None)):
        runs = [r for r in accuracy if r["name"].split(",")[0] == family]
        if not runs:
            continue
        final = [r["epochs"][-1]["validation_accuracy"] for r in runs]
        train = [r["epochs"][-1]["train_accuracy"] for r in runs]
        lines.append(
            "- %s settings, seeds %s: validation accuracy %s after epoch 10 (mean %.4f), training accuracy %s%s."
            % (
                family,
                ", ".join(str(r["hyperparameters"]["seed"]) for r in runs),
                ", ".join("%.4f" % v for v in final),
                statistics.mean(final),
                ", ".join("%.4f" % v for v in train),
                "; the workshop reports %s" % reported if reported else "",
            )
        )
    lines += [
        "- The workshop's settings reach the workshop's *training* accuracy but not its validation accuracy here:"
        " at a constant learning rate of 0.1 with momentum 0.9 the validation accuracy wanders by one to two"
        " points from epoch to epoch and was at most %.4f in any epoch of any seed."
        % best_workshop(accuracy)
        + " The net, initialisation"
        " (Xavier, magnitude 2.24), loss, batch size, optimizer and data scaling are the workshop's; what the"
        " workshop ran beyond its printed code (its loader, its MXNet version) is unknown. The 0.905 target for"
        " the workshop settings is therefore not met, and no setting was changed to meet it.",
        "- The improved defaults keep the architecture family and the workshop's optimizer settings and add"
        " batch norm, dropout 0.3, weight decay 5e-4, a cosine decay of the learning rate to 0 at the last epoch"
        " and random horizontal flips; the decay is what lifts the last epochs (see the per-epoch rows).",
        "- Threads: the entry point sets no thread variables: MXNet reads them at `import mxnet`, before a script"
        " can, and SageMaker's container owns the job's environment (pass them in the estimator's"
        " `environment=`). MEASURED.md found `OMP_NUM_THREADS=2 MXNET_ENGINE_TYPE=NaiveEngine` fastest for this"
        " CNN on an idle 2-core machine (18.9 s/epoch against 32.6 with MXNet's defaults). On this machine,"
        " shared with other developers' jobs, it is the slowest setting by far: 4-8 times slower than the others"
        " in both rounds of the table, and 1,019 s for the first full epoch of a first workshop run at a load"
        " average of about 10 (stopped after 4 epochs): two OpenMP threads spin at every barrier while other"
        " processes hold the cores. One thread with the naive engine, and MXNet's defaults (one OpenMP thread"
        " here, the threaded engine), were the fastest; the first-round row of one thread ran while this"
        " session's own tests ran. So: give OpenMP the cores the job has to itself (all of a SageMaker"
        " instance's, where the naive engine then pays off), never more; the accuracy runs used one thread"
        " each, two or three side by side.",
    ]
    return lines


def parse_overrides(pairs):
    hps = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            hps[key] = json.loads(value)
        except ValueError:
            hps[key] = value
    return hps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="folder of the four Fashion-MNIST IDX files")
    parser.add_argument(
        "--only", choices=["threads", "accuracy", "workshop", "improved"], help="run one part (or one accuracy run)"
    )
    parser.add_argument("--config", nargs="+", metavar=("NAME", "KEY=VALUE"), help="run one extra configuration")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the thread settings (default: 2)")
    parser.add_argument("--render", action="store_true", help="only rewrite the markdown from the JSON")
    args = parser.parse_args(argv)
    if not args.render:
        if not os.path.isdir(args.data):
            parser.error("no data at %s: apt-get install dataset-fashion-mnist, or pass --data DIR" % args.data)
        runs = []
        if args.config:
            runs.append((args.config[0], "explore", parse_overrides(args.config[1:]), ACCURACY_ENV))
        else:
            if args.only in (None, "threads"):
                drop_records("threads")
                # the settings in turn, the whole round repeated: load from other jobs drifts
                runs += [
                    (
                        "%s (round %d)" % (name, round_ + 1),
                        "threads",
                        {"epochs": 3, "max_train_samples": THREADS_SLICE, "log_interval": 0},
                        env,
                    )
                    for round_ in range(args.rounds)
                    for name, env in THREAD_SETTINGS
                ]
            if args.only in (None, "accuracy", "workshop"):
                runs.append(("workshop", "accuracy", dict(fmnist_cnn.WORKSHOP, log_interval=0), ACCURACY_ENV))
            if args.only in (None, "accuracy", "improved"):
                runs.append(("improved", "accuracy", {"epochs": 10, "log_interval": 0}, ACCURACY_ENV))
        for name, part, hps, env in runs:
            save_record(run_script(name, hps, env, args.data, part))
    print("wrote", render(load_records()))


if __name__ == "__main__":
    main(sys.argv[1:])
