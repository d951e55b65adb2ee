"""Multi-host local mode: mnist_mlp on 1 host vs 2 hosts (parameter server, dist_sync), samples/s and accuracy.

Each row is a real local-mode training job through the SageMaker SDK
(``MXNet(instance_count=N, distribution={"parameter_server": {"enabled": True}})``
on a ProcessSession): N toolkit processes, N workers, N servers and a scheduler,
all on this machine. On a 2-core machine two hosts share the cores that one
host had, so the figures measure the parameter server's overhead, not a
speed-up; accuracy shows that data-parallel training converges as one host does.

Rows: one host (batch_size 100, learning_rate 0.1: the workload's defaults);
two hosts with the same hyperparameters (batch_size is per worker and the
gradients of the two workers are added: an update uses 200 samples at an
effective twice the learning rate, the linear scaling rule); two hosts with
learning_rate 0.05 (the single host's step size on the 200-sample mean).

Run from the repository root::

    .venv/bin/python bench/multihost.py [--epochs 10] [--repeats 1] [--fashion /usr/share/datasets/fashion-mnist]

Writes bench/results/multihost.md and bench/results/multihost.summary.json.
"""

import argparse
import json
import os
import shlex
import statistics
import sys
import tarfile
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from bench.summary import load_average, machine, write_summary  # noqa: E402
from smgluon import files  # noqa: E402

ROLE = "arn:aws:iam::111111111111:role/bench"
RESULTS = os.path.join(REPO, "bench", "results", "multihost.md")
SHARED_DATA = os.environ.get("SMGLUON_SHARED_DATA", os.path.join(os.path.dirname(REPO), "shared", "data"))
FASHION = "/usr/share/datasets/fashion-mnist"
VARIANTS = [  # (label, hosts, extra hyperparameters)
    ("1 host", 1, {}),
    ("2 hosts, same hyperparameters", 2, {}),
    ("2 hosts, learning_rate 0.05", 2, {"learning_rate": 0.05}),
]


def mnist_slice(root, n_train=8000, n_test=2000):
    """Disjoint train/test slices of the official 10k MNIST test images (the tests' data), as IDX channels."""
    from smgluon.idx import read_idx, write_idx

    src = os.path.join(SHARED_DATA, "mnist-test")
    x = read_idx(os.path.join(src, "t10k-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(src, "t10k-labels-idx1-ubyte.gz"))
    dirs = {"train": os.path.join(root, "train"), "test": os.path.join(root, "test")}
    for d in dirs.values():
        os.makedirs(d)
    write_idx(os.path.join(dirs["train"], "train-images-idx3-ubyte.gz"), x[:n_train])
    write_idx(os.path.join(dirs["train"], "train-labels-idx1-ubyte.gz"), y[:n_train])
    write_idx(os.path.join(dirs["test"], "t10k-images-idx3-ubyte.gz"), x[n_train : n_train + n_test])
    write_idx(os.path.join(dirs["test"], "t10k-labels-idx1-ubyte.gz"), y[n_train : n_train + n_test])
    return {k: "file://" + v for k, v in dirs.items()}


def run_job(session, hosts, hyperparameters, channels):
    """One training job; returns its wall time and the first host's metrics.json."""
    from sagemaker.mxnet import MXNet

    from smgluon_local.storage import uri_to_local_path

    est = MXNet(entry_point="mnist_mlp.py", source_dir=os.path.join(REPO, "entry_points"),
                dependencies=[os.path.join(REPO, "lib", "smgluon")], role=ROLE, instance_count=hosts,
                instance_type="local", framework_version="1.9.0", py_version="py38",
                distribution={"parameter_server": {"enabled": True}} if hosts > 1 else None,
                hyperparameters=hyperparameters, sagemaker_session=session)
    tic = time.time()
    est.fit(channels, logs="None")
    wall = time.time() - tic
    output = os.path.join(os.path.dirname(uri_to_local_path(est.model_data, session.local_s3)), "output.tar.gz")
    with tarfile.open(output) as tar:
        doc = json.load(tar.extractfile("metrics.json"))
    epochs = doc["epochs"]
    timed = epochs[1:] if len(epochs) > 1 else epochs  # the first epoch warms up (graph, kvstore)
    return {
        "wall_seconds": wall,
        "seconds_per_epoch": statistics.median(e["epoch_seconds"] for e in timed),
        "samples_per_sec": statistics.median(e["samples_per_sec"] for e in timed),
        "validation_accuracy": doc["final"]["validation_accuracy"],
        "epochs": len(epochs),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="epochs per job (default 10)")
    parser.add_argument("--repeats", type=int, default=1, help="jobs per row; medians are reported (default 1)")
    parser.add_argument("--fashion", default=FASHION if os.path.isdir(FASHION) else None,
                        help="a folder with the four Fashion-MNIST IDX files for the full-size rows "
                             "(default: %s when installed)" % FASHION)
    parser.add_argument("--output", default=RESULTS, help="the markdown file to write")
    args = parser.parse_args(argv)

    from smgluon_local import ProcessSession

    work = tempfile.mkdtemp(prefix="smgluon-multihost-")
    session = ProcessSession(root_dir=os.path.join(work, "root"), log_stream=False)
    datasets = [("MNIST test-set slice (8k train / 2k test)", mnist_slice(os.path.join(work, "mnist")))]
    if args.fashion:
        datasets.append(("Fashion-MNIST (60k train / 10k test)",
                         {"train": "file://" + args.fashion, "test": "file://" + args.fashion}))
    loads = [load_average()]
    rows = []
    for data_name, channels in datasets:
        for label, hosts, extra in VARIANTS:
            hps = dict({"epochs": args.epochs, "log_interval": 0}, **extra)
            runs = [run_job(session, hosts, hps, channels) for _ in range(args.repeats)]
            loads.append(load_average())
            row = {"data": data_name, "variant": label, "hosts": hosts, "hyperparameters": hps}
            for key in runs[0]:
                row[key] = statistics.median(r[key] for r in runs)
            rows.append(row)
            print("%-42s %-32s %6.3f s/epoch %9.0f samples/s  accuracy %.4f  job %.1f s" % (
                data_name, label, row["seconds_per_epoch"], row["samples_per_sec"], row["validation_accuracy"],
                row["wall_seconds"]), flush=True)
    command = " ".join(shlex.quote(a) for a in [os.path.relpath(sys.executable, REPO)] + sys.argv)
    write_results(args.output, rows, command, loads, args)
    training = [{"workload": "mnist_mlp", "variant": "%s, %s" % (r["variant"], r["data"].split(" (")[0]),
                 "epochs": r["epochs"], "seconds_per_epoch": r["seconds_per_epoch"],
                 "samples_per_sec": r["samples_per_sec"], "metric": "validation_accuracy",
                 "value": r["validation_accuracy"],
                 "target": "2 hosts within 1 point of 1 host" if r["hosts"] == 2 else ""} for r in rows]
    write_summary("multihost", "Local mode on 1 vs 2 hosts (parameter server, dist_sync): mnist_mlp",
                  "bench/results/multihost.md", training=training, command=command,
                  notes=["2 cores: two hosts share them, so this measures the parameter server's overhead, "
                         "not a speed-up; load average %s while it ran (the jobs' own processes count in it)"
                         % ", ".join("%.1f" % x for x in loads if x is not None)])
    print("wrote", os.path.relpath(args.output, REPO))
    return 0


def write_results(path, rows, command, loads, args):
    import datetime

    lines = [
        "# Multi-host local mode: 1 vs 2 hosts",
        "",
        "mnist_mlp (Dense 128-64-10, SGD momentum 0.9, batch_size 100 per worker) as real local-mode jobs",
        "through the SageMaker SDK: `MXNet(instance_count=N, distribution={\"parameter_server\": {\"enabled\": "
        "True}})` on a `ProcessSession`. Two hosts run two toolkit processes, two workers (`dist_sync`, one",
        "shard each per epoch), two servers and a scheduler, all on this machine.",
        "",
        "- machine: %s" % machine(),
        "- date: %s" % datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "- command: `%s`" % command,
        "- load average (1 min) before and after each row: %s. Each row's own processes (up to two workers, two"
        " servers and a scheduler) count in it; figures above about 3 mean other jobs shared the machine and the"
        " timings are noisy" % ", ".join("%.1f" % x for x in loads if x is not None),
        "- %d epochs per job, %d job(s) per row (medians); s/epoch and samples/s are medians over epochs 2..N"
        " (the first warms up), summed over the workers" % (args.epochs, args.repeats),
        "",
        "**This machine has 2 cores**: two hosts share the cores one host had, so these figures measure the",
        "parameter server's overhead (every batch's gradients go to the servers and back through loopback",
        "TCP), not a speed-up. On SageMaker each host is its own instance. One caveat when reading them:",
        "MXNet 1.9.1 gives each process half the cores for OpenMP unless `OMP_NUM_THREADS` is set",
        "(shared/MEASURED.md), so a single host computes on one core and leaves the other idle, while two",
        "hosts keep both busy; a 2-host row can therefore be faster here without saying anything about",
        "scaling.",
        "",
        "| data | variant | s/epoch | samples/s | validation accuracy | job wall s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append("| %s | %s | %.3f | %s | %.4f | %.1f |" % (
            r["data"], r["variant"], r["seconds_per_epoch"], "{:,.0f}".format(r["samples_per_sec"]),
            r["validation_accuracy"], r["wall_seconds"]))
    lines += [
        "",
        "How batch size and learning rate scale: `batch_size` is per worker and `dist_sync` adds the workers'",
        "gradients, so with N hosts an update uses N × batch_size samples and is N times the single-host",
        "update on their mean (the linear scaling rule: the effective learning rate grows with N), and an epoch",
        "has N times fewer updates. \"Same hyperparameters\" keeps the effective step per sample; \"learning_rate",
        "0.05\" is the single host's step on the larger batch. Job wall time includes starting the processes",
        "(the toolkit, the scheduler and the servers) and packaging model.tar.gz.",
        "",
    ]
    files.write_text(path, "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
