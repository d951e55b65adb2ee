"""Helpers shared by the benchmark runners: IDX loading, timing summaries, the result record.

Each runner is a module started in its own subprocess by :mod:`bench.mlp_speed`
(thread variables such as ``OMP_NUM_THREADS`` are read when a framework is
imported). A runner writes one JSON record to ``--json-out``.
"""

import argparse
import gzip
import json
import os
import platform
import resource
import statistics
import struct

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def read_idx(path):
    """Reads one gzip IDX file of unsigned bytes into a NumPy array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = struct.unpack(">%dI" % ndim, raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_split(data_dir, split):
    """Returns (images uint8 (N, 784), labels int64 (N,)) of ``train`` or ``test``."""
    images, labels = (read_idx(os.path.join(data_dir, name)) for name in FILES[split])
    return images.reshape(len(images), -1), labels.astype(np.int64)


def runner_args(description, entry_point=False, style=False):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", required=True, help="directory holding the four Fashion-MNIST .gz IDX files")
    parser.add_argument("--epochs", type=int, default=4, help="epochs to run, the first counted as warm-up (default 4)")
    parser.add_argument("--batch-size", type=int, default=100, help="mini-batch size (default 100)")
    parser.add_argument("--json-out", required=True, help="where the JSON result record goes")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    if style:
        parser.add_argument(
            "--style",
            choices=["aws", "prescaled"],
            default="aws",
            help="how the plain baseline feeds data (default aws)",
        )
    if entry_point:
        parser.add_argument(
            "--entry-point",
            default=os.path.join(REPO, "entry_points", "mnist_mlp.py"),
            help="the script to benchmark (default: the repository's entry_points/mnist_mlp.py)",
        )
    return parser.parse_args()


def peak_rss_mb():
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cpu_seconds():
    """CPU time (user + system) of this process so far, all threads together."""
    times = os.times()
    return times.user + times.system


def write_record(
    path, epoch_seconds, samples_per_epoch, validation_accuracy, versions, threads, cpu_epoch_seconds, **extra
):
    """Writes a runner's result: per-epoch wall and CPU seconds, and the median after the warm-up epoch."""
    timed = epoch_seconds[1:] if len(epoch_seconds) > 1 else epoch_seconds
    median = statistics.median(timed)
    record = {
        "epoch_seconds": epoch_seconds,
        "cpu_epoch_seconds": cpu_epoch_seconds,
        "median_epoch_seconds": median,
        "samples_per_epoch": samples_per_epoch,
        "samples_per_sec": samples_per_epoch / median,
        "validation_accuracy": validation_accuracy,
        "peak_rss_mb": peak_rss_mb(),
        "versions": dict(versions, python=platform.python_version()),
        "threads": threads,
    }
    record.update(extra)
    with open(path, "w") as f:
        json.dump(record, f, indent=1)
