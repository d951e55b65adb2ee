"""Benchmark of entry_points/fmnist_cnn.py on the full Fashion-MNIST (60,000 train / 10,000 test).

Two parts, each run in its own process (thread variables are read at
``import mxnet``):

* ``speed``: seconds per epoch on the full training set (3 epochs, the first a
  warm-up) of our entry point in script mode — with the workshop's settings
  (the same net and optimizer as the baselines) and with the improved defaults,
  under MXNet's default threading and under ``OMP_NUM_THREADS=<cores>
  MXNET_ENGINE_TYPE=NaiveEngine`` — beside, in the same run, a straightforward
  Gluon version of the workshop's script (``bench/baselines/gluon_cnn_plain.py``:
  DataLoader, not hybridized) and PyTorch 2.13 on the same net
  (``bench/baselines/torch_cnn.py``). Targets: faster than PyTorch, aim
  <= 10 s/epoch;
* ``accuracy``: 10 epochs of the workshop's settings (target: validation
  accuracy >= 0.905; the workshop reports 0.9055), of the project's improved
  defaults (target: >= 0.92), and of the plain Gluon workshop script (does our
  entry point learn as the workshop's code does?).

PyTorch is looked for in the venv, then in ``SMGLUON_BENCH_TORCH_SITE``
(default ``/tmp/smgluon-bench-torch``, filled by ``.venv/bin/pip install
--target /tmp/smgluon-bench-torch torch==2.13.0``); without it its row is skipped.

Every finished run is appended to ``bench/results/fmnist_cnn.json`` (so a long
session survives an interruption), ``bench/results/fmnist_cnn.md`` is rewritten
from it, and so is ``bench/results/fmnist_cnn.summary.json`` (for
``bench/results.md``). Run from the repository root::

    .venv/bin/python bench/fmnist_cnn.py [--data /usr/share/datasets/fashion-mnist] [--only speed|accuracy]
    .venv/bin/python bench/fmnist_cnn.py --only workshop --seed 1         # one accuracy run, another seed
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

from smgluon import files  # noqa: E402

if REPO not in sys.path:
    sys.path.insert(0, REPO)
from bench import summary  # noqa: E402
from bench.mlp_speed import DEFAULT_TORCH_SITE, find_torch, git_head, machine  # noqa: E402

RESULTS_JSON = os.path.join(REPO, "bench", "results", "fmnist_cnn.json")
RESULTS_MD = os.path.join(REPO, "bench", "results", "fmnist_cnn.md")
DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"
CORES = len(os.sched_getaffinity(0))
# MEASURED.md: fastest for this CNN on an idle machine (OpenMP gets every core; the synchronous
# engine leaves them to it). On cores other jobs also use, two spinning OpenMP threads are the
# slowest setting instead (see the notes); the accuracy runs of a shared machine used one thread.
FAST_ENV = {"OMP_NUM_THREADS": str(CORES), "MXNET_ENGINE_TYPE": "NaiveEngine"}
FAST = " ".join("%s=%s" % kv for kv in FAST_ENV.items())
SPEED_EPOCHS = 3  # the first is a warm-up
WORKSHOP_HPS = dict(fmnist_cnn.WORKSHOP, log_interval=0)
TORCH_LABEL = "PyTorch %s, same net (bench/baselines/torch_cnn.py)"
PLAIN_LABEL = "plain Gluon, the workshop's script (bench/baselines/gluon_cnn_plain.py)"
# (name, what runs, hyperparameters or baseline module, environment)
SPEED_RUNS = [
    ("ours, workshop settings, MXNet's thread defaults", "script", WORKSHOP_HPS, {}),
    ("ours, workshop settings, " + FAST, "script", WORKSHOP_HPS, FAST_ENV),
    ("ours, improved defaults, MXNet's thread defaults", "script", {"log_interval": 0}, {}),
    ("ours, improved defaults, " + FAST, "script", {"log_interval": 0}, FAST_ENV),
    (PLAIN_LABEL, "bench.baselines.gluon_cnn_plain", None, {}),
    ("PyTorch, default threads", "bench.baselines.torch_cnn", None, {}),
]
TARGETS = {"workshop": 0.905, "improved": 0.92}
SPEED_AIM = 10.0
_THREAD_VARS = ("OMP_NUM_THREADS", "MXNET_ENGINE_TYPE", "MKL_NUM_THREADS", "MXNET_CPU_WORKER_NTHREADS")


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _env(env_vars, extra_path=()):
    env = {k: v for k, v in os.environ.items() if k not in _THREAD_VARS}
    env.update(env_vars)
    env["PYTHONPATH"] = os.pathsep.join(list(extra_path) + [os.path.join(REPO, "lib"), REPO])
    return env


def _run(name, args, env, cwd, prefix):
    """Runs one benchmark process, echoing its lines that start with ``prefix`` as they come (a run takes
    minutes); returns (wall seconds, load average before) or raises with the last 60 lines."""
    load_before = os.getloadavg()[0]
    tic = time.time()
    proc = subprocess.Popen(args, env=env, cwd=cwd, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    tail = collections.deque(maxlen=60)
    for line in proc.stdout:
        tail.append(line)
        if line.startswith(prefix):
            print("  %s: %s" % (name, line.strip()), flush=True)
    wall = time.time() - tic
    if proc.wait() != 0:
        raise RuntimeError("%s failed:\n%s" % (name, "".join(tail)))
    return wall, load_before


def _record(name, part, runs, env_vars, wall, load_before, **fields):
    """A run's record (``fields`` holds ``hyperparameters`` and ``epochs`` at least), printed in one line."""
    record = {"name": name, "part": part, "runs": runs, "date": _now(), "env": env_vars}
    record.update(fields)
    record.update(wall_seconds=wall, load_average_before=load_before, load_average_after=os.getloadavg()[0])
    print("%-40s val %.4f  %.1f s/epoch (median)  wall %.0f s"
          % (name, record["epochs"][-1]["validation_accuracy"], median_epoch(record), wall), flush=True)
    return record


def run_script(name, hps, env_vars, data_dir, part):
    """Runs fmnist_cnn.py in script mode in a fresh process; returns the run's record."""
    with tempfile.TemporaryDirectory() as root:
        env = _env(env_vars)
        env["SMGLUON_OPT_ML"] = root
        args = [sys.executable, os.path.join(REPO, "entry_points", "fmnist_cnn.py"), "--training-dir", data_dir]
        for key, value in hps.items():
            args += ["--%s" % key, json.dumps(value) if not isinstance(value, str) else value]
        wall, load_before = _run(name, args, env, root, "metrics: epoch=")
        with open(os.path.join(root, "output", "data", "metrics.json")) as f:
            doc = json.load(f)
    return _record(name, part, "entry_points/fmnist_cnn.py", env_vars, wall, load_before, overrides=hps,
                   hyperparameters=doc["hyperparameters"], epochs=doc["epochs"])


def run_baseline(name, module, env_vars, data_dir, part, epochs, seed=42, torch_site=""):
    """Runs a baseline of ``bench/baselines`` in a fresh process; returns a record shaped as run_script's."""
    with tempfile.TemporaryDirectory() as root:
        out = os.path.join(root, "record.json")
        args = [sys.executable, "-m", module, "--data", data_dir, "--epochs", str(epochs), "--seed", str(seed),
                "--json-out", out]
        wall, load_before = _run(name, args, _env(env_vars, [torch_site] if torch_site else []), REPO, "epoch ")
        with open(out) as f:
            raw = json.load(f)
    train_acc = raw.get("training_accuracy_per_epoch") or [None] * epochs
    per_epoch = zip(raw["epoch_seconds"], raw["validation_accuracy_per_epoch"], train_acc)
    return _record(
        name, part, module, env_vars, wall, load_before, versions=raw["versions"], threads=raw["threads"],
        hyperparameters=dict(WORKSHOP_HPS, epochs=epochs, seed=seed),
        epochs=[{"epoch": i + 1, "epoch_seconds": sec, "validation_accuracy": val, "train_accuracy": acc}
                for i, (sec, val, acc) in enumerate(per_epoch)],
    )


def median_epoch(record):
    seconds = [e["epoch_seconds"] for e in record["epochs"]]
    return statistics.median(seconds[1:] if len(seconds) > 1 else seconds)


def load_records(path=RESULTS_JSON):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)["runs"]


def _write_runs(runs, path):
    files.write_json(path, {"runs": runs})


def save_record(record, path=RESULTS_JSON):
    """Adds (or replaces) a run in the JSON; a lock lets two benchmark processes run side by side."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    lock = os.open(os.path.dirname(path), os.O_RDONLY)  # a lock on the folder: no lock file left behind
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        runs = [r for r in load_records(path) if not (r["name"] == record["name"] and r["part"] == record["part"])]
        runs.append(record)
        _write_runs(runs, path)
        render(runs)
    finally:
        os.close(lock)  # releases the lock


def drop_records(part, path=RESULTS_JSON):
    """Removes a part's earlier runs (a new round of speed measurements replaces the old one)."""
    if os.path.exists(path):
        _write_runs([r for r in load_records(path) if r["part"] != part], path)


def describe(hps):
    keys = ["optimizer", "learning_rate", "momentum", "batch_size", "weight_decay", "lr_schedule", "batch_norm"]
    keys += ["dropout", "augment"]
    return ", ".join("%s=%s" % (k, json.dumps(hps[k]) if isinstance(hps[k], bool) else hps[k]) for k in keys)


def _family(record):
    return record["name"].split(",")[0]


def _order(record):
    """Workshop runs first, then the plain script's, the improved ones, the explorations; each by seed."""
    rank = {"workshop": 0, "plain Gluon": 1, "improved": 2}.get(_family(record), 3)
    seed = record["hyperparameters"]["seed"]
    return (rank, _family(record), seed != 42, seed)


def _threads(env):
    return " ".join("%s=%s" % kv for kv in env.items()) or "MXNet's defaults"


def speed_table(speed):
    """The speed rows with their ratios, and the target lines, from one run of the speed part."""
    by_name = {r["name"]: r for r in speed}
    plain = by_name.get(PLAIN_LABEL)
    torch_row = next((r for r in speed if r["name"].startswith("PyTorch")), None)
    lines = [
        "| run | threads | s/epoch | min–max | samples/s | vs plain Gluon | vs PyTorch | validation accuracy"
        " (epoch %d) | load before/after | date |" % SPEED_EPOCHS,
        "|---|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in speed:
        sec, timed = median_epoch(r), [e["epoch_seconds"] for e in r["epochs"]][1:]
        threads = _threads(r["env"])
        if "torch.get_num_threads" in r.get("threads", {}):
            threads = "PyTorch's defaults, torch.get_num_threads() = %d" % r["threads"]["torch.get_num_threads"]
        lines.append(
            "| %s | %s | %.2f | %.2f–%.2f | %.0f | %s | %s | %.4f | %.1f / %.1f | %s |"
            % (r["name"], threads, sec, min(timed), max(timed), 60000 / sec,
               "%.1f×" % (median_epoch(plain) / sec) if plain else "–",
               "%.2f×" % (median_epoch(torch_row) / sec) if torch_row else "–",
               r["epochs"][-1]["validation_accuracy"], r["load_average_before"], r["load_average_after"], r["date"])
        )
    ours = by_name.get("ours, workshop settings, " + FAST)
    checks = []
    if ours and torch_row:
        a, b = median_epoch(ours), median_epoch(torch_row)
        checks.append("- faster than PyTorch on the same net: **%s** (ours, workshop settings, `%s`: %.2f s/epoch;"
                      " PyTorch: %.2f s/epoch)" % ("met" if a < b else "not met", FAST, a, b))
    if ours:
        checks.append("- ≤ %.0f s per epoch (aim): **%s** (%.2f s)"
                      % (SPEED_AIM, "met" if median_epoch(ours) <= SPEED_AIM else "not met", median_epoch(ours)))
    return lines, checks


def render(records, path=RESULTS_MD, summary_too=True):
    """Writes the markdown page of ``records`` to ``path`` (and, unless told not to, the summary); returns ``path``."""
    info = machine()
    speed = [r for r in records if r["part"] == "speed"]
    accuracy = sorted((r for r in records if r["part"] in ("accuracy", "explore")), key=_order)
    loads = [r["load_average_before"] for r in (speed or [r for r in records if r["part"] == "accuracy"])]
    lines = [
        "# fmnist_cnn on Fashion-MNIST (60,000 train / 10,000 test)",
        "",
        "- machine of the run that last wrote this file: %d CPUs (nproc), %s, %.1f GiB RAM; Python %s; mxnet %s"
        " (CPU); rows of other dates may come from another CPU (those of 2026-11-21: Intel Xeon, avx512f), so"
        " compare seconds only within a date; load averages per run below (2 cores: above about 1, other jobs"
        " shared the machine and seconds are indicative; accuracies do not depend on it)"
        % (info["nproc"], info["cpu"], info["ram_gib"], platform.python_version(), fmnist_cnn.mx.__version__),
        "- code: commit %s" % git_head(("entry_points/fmnist_cnn.py", "lib")),
        "- command: `.venv/bin/python bench/fmnist_cnn.py` (see its docstring); our runs are"
        " `python entry_points/fmnist_cnn.py --training-dir %s ...` in their own process, the baselines"
        " `python -m bench.baselines.<name>`" % DEFAULT_DATA,
        "- data: the Debian package dataset-fashion-mnist, checked by `smgluon data fetch fashion-mnist`",
        "- validation accuracy: on all 10,000 test images after the last epoch (no early stopping)",
        "",
    ]
    if speed:
        table, checks = speed_table(speed)
        lines += [
            "## Speed (full training set, %d epochs, the first a warm-up; s/epoch: median of the later epochs,"
            " training only; batch 100)" % SPEED_EPOCHS,
            "",
        ] + table + ["", "Targets (issue 4), our entry point beside the baselines in the same run:", ""] + checks + [""]
    lines += [
        "## Accuracy, 10 epochs",
        "",
        "| name | configuration | threads | validation accuracy | target | best epoch | s/epoch (median) | wall s"
        " | load before/after | date |",
        "|---|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in accuracy:
        val = [e["validation_accuracy"] for e in r["epochs"]]
        target = TARGETS.get(r["name"])
        mark = "" if target is None else ("≥ %.3f %s" % (target, "met" if val[-1] >= target else "**not met**"))
        config = describe(r["hyperparameters"])
        if r.get("runs", "").startswith("bench."):
            config = "the workshop's settings, in `%s`" % r["runs"]
        lines.append(
            "| %s | %s | %s | **%.4f** | %s | %.4f (epoch %d) | %.1f | %.0f | %.1f / %.1f | %s |"
            % (r["name"], config, _threads(r["env"]), val[-1], mark, max(val), val.index(max(val)) + 1,
               median_epoch(r), r["wall_seconds"], r["load_average_before"], r["load_average_after"], r["date"])
        )
    lines += ["", "Per-epoch validation accuracy:", ""]
    for r in accuracy:
        lines.append("- %s: %s" % (r["name"], ", ".join("%.4f" % e["validation_accuracy"] for e in r["epochs"])))
    lines += ["", "## Notes", ""] + notes(accuracy, speed) + [""]
    with open(path, "w") as f:
        f.write("\n".join(lines))
    if summary_too:
        write_summary(speed, accuracy, max(loads, default=0.0))
    return path


def _runs_of(accuracy, family):
    return [r for r in accuracy if _family(r) == family and r["part"] == "accuracy"]


def notes(accuracy, speed):
    """The findings, with the numbers of the runs in the JSON."""
    lines = []
    reported = {"workshop": "; the workshop reports 0.9162 training / 0.9055 validation accuracy"}
    for family in ("workshop", "plain Gluon", "improved"):
        runs = _runs_of(accuracy, family)
        if not runs:
            continue
        final = [r["epochs"][-1]["validation_accuracy"] for r in runs]
        train = [r["epochs"][-1]["train_accuracy"] for r in runs if r["epochs"][-1].get("train_accuracy")]
        lines.append(
            "- %s, seeds %s: validation accuracy %s after epoch 10 (mean %.4f, best epoch of any seed %.4f)%s%s."
            % (family, ", ".join(str(r["hyperparameters"]["seed"]) for r in runs),
               ", ".join("%.4f" % v for v in final), statistics.mean(final),
               max(e["validation_accuracy"] for r in runs for e in r["epochs"]),
               ", training accuracy %s" % ", ".join("%.4f" % v for v in train) if train else "",
               reported.get(family, ""))
        )
    lines += [
        "- The workshop's settings reach the workshop's *training* accuracy but not its validation accuracy: at a"
        " constant learning rate of 0.1 with momentum 0.9 the validation accuracy wanders by one to two points"
        " from epoch to epoch. The workshop's own script, written out from the lab and run here with MXNet 1.9.1"
        " (`plain Gluon` rows: DataLoader, not hybridized, the same net, initialisation, loss, optimizer and"
        " scaling), lands in the same range as our entry point, so the gap to 0.9055 is not in the entry point;"
        " what the workshop ran beyond its printed code (its MXNet version, its data files) is unknown. The 0.905"
        " target for the workshop settings is not met here, and no workshop setting was changed to meet it.",
        "- The improved defaults keep the architecture family and the workshop's optimizer settings and add batch"
        " norm, dropout 0.3, weight decay 5e-4 and a cosine decay of the learning rate to 0 at the last epoch; the"
        " decay is what lifts the last epochs (see the per-epoch rows). Random horizontal flips (`augment=flip`)"
        " did not help within 10 epochs (the `explore` rows: 0.9191 and 0.9226 with flips against 0.9235 and"
        " 0.9223 without, seeds 42 and 1), so the default is `augment=none`.",
        "- Threads: the entry point sets no thread variables: MXNet reads them at `import mxnet`, before a script"
        " can, and SageMaker's container owns the job's environment (pass them in the estimator's"
        " `environment=`; `smgluon quickstart` and the notebooks set `%s`). On an idle machine that setting is"
        " the fastest for this CNN (the speed table). On cores other jobs also use it is the slowest by far: an"
        " earlier round on this machine at a load average of about 10 took 50-60 s per 6,000 images against 6-14"
        " s for one thread, and 1,019 s for one full epoch: two OpenMP threads spin at every barrier while other"
        " processes hold the cores. Give OpenMP the cores the job has to itself, never more." % FAST,
    ]
    if speed:
        lines.append(
            "- Where the time goes (oneDNN's verbose timings, `DNNL_VERBOSE=1`, workshop net, `%s`, about 21 ms"
            " per batch of 100): in training MXNet 1.9.1 runs the convolutions in plain NCHW layout through"
            " oneDNN's GEMM path, 13 ms of the 21 — the second convolution forward, backward-data and"
            " backward-weights about 2.7, 2.7 and 3.0 ms (near this machine's GEMM rate), the first one's"
            " backward-weights 2.9 ms (one input channel) and forward 1.0 ms; max pooling 3.3 ms, the dense"
            " layers 1 ms. Measured and dropped: the first convolution as im2col + GEMM or batch_dot (1.5-1.8x"
            " slower), its weight gradient as a forward convolution over the batch (3.2 ms), pooling before the"
            " ReLU, OpenMP binding and wait policies (within noise); the fused subgraph backend"
            " (`hybridize(backend=\"MKLDNN\")`) is inference-only (MEASURED.md: training stops learning)."
            " The issue's reference figure for PyTorch was 16.2 s per epoch; the PyTorch row of the same run"
            " here is the one the target is judged on." % FAST
        )
    return lines


def write_summary(speed, accuracy, load):
    rows = []
    for r in speed:
        rows.append({
            "workload": "fmnist_cnn", "variant": "%s (speed run)" % r["name"], "epochs": len(r["epochs"]),
            "seconds_per_epoch": median_epoch(r), "samples_per_sec": 60000 / median_epoch(r),
            "metric": "validation_accuracy (Fashion-MNIST, %d epochs)" % len(r["epochs"]),
            "value": r["epochs"][-1]["validation_accuracy"],
            "target": "faster than PyTorch, ≤ %.0f s/epoch (aim)" % SPEED_AIM
            if r["name"] == "ours, workshop settings, " + FAST else "",
        })
    for r in accuracy:
        if r["part"] != "accuracy" or r["hyperparameters"]["seed"] != 42:
            continue
        target = TARGETS.get(r["name"])
        rows.append({
            # seconds are left out: accuracy runs use the threads the machine allows (see the speed rows)
            "workload": "fmnist_cnn", "variant": r["name"] + " (seed 42)", "epochs": len(r["epochs"]),
            "seconds_per_epoch": None, "samples_per_sec": None,
            "metric": "validation_accuracy (Fashion-MNIST)", "value": r["epochs"][-1]["validation_accuracy"],
            "seed_value": 0.9055 if _family(r) in ("workshop", "plain Gluon") else None,
            "seed": "the workshop's lab 2-2" if _family(r) in ("workshop", "plain Gluon") else None,
            "target": "≥ %.3f" % target if target else "",
        })
    dates = sorted(r["date"] for r in speed + [r for r in accuracy if r["part"] == "accuracy"])
    summary.write_summary(
        "fmnist_cnn", "The workshop CNN on Fashion-MNIST: speed beside plain Gluon and PyTorch, 10-epoch accuracy",
        "bench/results/fmnist_cnn.md", training=rows,
        notes=["fmnist_cnn: seconds are wall time of the training loop; see the file for the load during each run"],
        command=".venv/bin/python bench/fmnist_cnn.py", date=dates[-1] if dates else None, load=load,
    )


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
    parser.add_argument("--only", choices=["speed", "accuracy", "workshop", "improved", "plain"],
                        help="run one part (or one kind of accuracy run)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the accuracy runs (default 42)")
    parser.add_argument("--config", nargs="+", metavar=("NAME", "KEY=VALUE"), help="run one extra configuration")
    parser.add_argument("--torch-site", default=DEFAULT_TORCH_SITE,
                        help="a --target folder holding torch, if the venv lacks it (default %(default)s)")
    parser.add_argument("--threads", type=int, default=CORES,
                        help="OpenMP threads of accuracy runs (default: all %(default)s cores; 1 beside other jobs)")
    parser.add_argument("--render", action="store_true", help="only rewrite the markdown from the JSON")
    args = parser.parse_args(argv)
    accuracy_env = dict(FAST_ENV, OMP_NUM_THREADS=str(args.threads))
    if not args.render:
        if not os.path.isdir(args.data):
            parser.error("no data at %s: apt-get install dataset-fashion-mnist, or pass --data DIR" % args.data)
        suffix = "" if args.seed == 42 else ", seed %d" % args.seed
        runs = []  # (name, part, what, hyperparameters, env, epochs)
        if args.config:
            runs.append((args.config[0] + suffix, "explore", "script",
                         dict(parse_overrides(args.config[1:]), seed=args.seed), accuracy_env, None))
        else:
            if args.only in (None, "speed"):
                drop_records("speed")
                runs += [(name, "speed", what, dict(hps or {}, epochs=SPEED_EPOCHS), env, SPEED_EPOCHS)
                         for name, what, hps, env in SPEED_RUNS]
            if args.only in (None, "accuracy", "workshop"):
                runs.append(("workshop" + suffix, "accuracy", "script", dict(WORKSHOP_HPS, seed=args.seed),
                             accuracy_env, None))
            if args.only in (None, "accuracy", "plain"):
                runs.append(("plain Gluon" + suffix, "accuracy", "bench.baselines.gluon_cnn_plain", None, accuracy_env,
                             10))
            if args.only in (None, "accuracy", "improved"):
                runs.append(("improved" + suffix, "accuracy", "script", {"log_interval": 0, "seed": args.seed},
                             accuracy_env, None))
        torch_site = find_torch(args.torch_site)
        for name, part, what, hps, env, epochs in runs:
            if what == "script":
                record = run_script(name, hps, env, args.data, part)
            elif what == "bench.baselines.torch_cnn" and torch_site is None:
                print("skipped %s: torch is not importable (see the docstring)" % name)
                continue
            else:
                record = run_baseline(name, what, env, args.data, part, epochs, args.seed, torch_site or "")
                if what == "bench.baselines.torch_cnn":
                    record["name"] = TORCH_LABEL % record["versions"]["torch"].split("+")[0]
            save_record(record)
    print("wrote", render(load_records()))


if __name__ == "__main__":
    main(sys.argv[1:])
