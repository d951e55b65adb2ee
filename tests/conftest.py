"""Shared fixtures: real MNIST slices from ../shared/data, and the entry points on sys.path."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENTRY_POINTS = os.path.join(REPO, "entry_points")
SHARED_DATA = os.environ.get("SMGLUON_SHARED_DATA", os.path.join(os.path.dirname(REPO), "shared", "data"))
MNIST_TEST = os.path.join(SHARED_DATA, "mnist-test")
ML_100K = os.path.join(SHARED_DATA, "ml-100k")

if ENTRY_POINTS not in sys.path:
    sys.path.insert(0, ENTRY_POINTS)


def sagemaker_env(root, channels, hps):
    """The variables the sagemaker-training toolkit sets, for a one-host CPU job under ``root``."""
    env = dict(os.environ)
    env.update(
        {
            "SM_MODEL_DIR": os.path.join(root, "model"),
            "SM_OUTPUT_DIR": os.path.join(root, "output"),
            "SM_OUTPUT_DATA_DIR": os.path.join(root, "output", "data"),
            "SM_CHANNELS": json.dumps(sorted(channels)),
            "SM_HOSTS": json.dumps(["algo-1"]),
            "SM_CURRENT_HOST": "algo-1",
            "SM_NUM_GPUS": "0",
            "SM_HPS": json.dumps(hps),
        }
    )
    env.update({"SM_CHANNEL_%s" % k.upper(): v for k, v in channels.items()})
    return env


def to_cmd_args(hps):
    """As sagemaker_training.mapping.to_cmd_args: sorted keys, values as strings."""
    return [item for k in sorted(hps) for item in ("--%s" % k, str(hps[k]))]


def run_script_mode(entry_point, root, channels, hps):
    """Runs an entry point as the training toolkit does: SM_* variables, ``--key value`` arguments."""
    return subprocess.run(
        [sys.executable, os.path.join(ENTRY_POINTS, entry_point)] + to_cmd_args(hps),
        env=sagemaker_env(root, channels, hps),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
    )


def write_movielens_slice(directory, max_user=300):
    """Copies u.item and u.user, and the ratings of users <= max_user from u.data, u1.* and ua.*, into ``directory``.

    Users 1..300 hold about a third of ml-100k's ratings.
    """
    import shutil

    os.makedirs(directory, exist_ok=True)
    for name in ("u.item", "u.user"):
        shutil.copy(os.path.join(ML_100K, name), directory)
    for name in ("u.data", "u1.base", "u1.test", "ua.base", "ua.test"):
        with open(os.path.join(ML_100K, name)) as src, open(os.path.join(directory, name), "w") as dst:
            dst.writelines(line for line in src if int(line.split("\t")[0]) <= max_user)
    return directory


def ask_json(transform_fn, model, payload, content_type="application/json"):
    """One request through an entry point's ``transform_fn``; returns its decoded JSON answer.

    ``payload`` is sent as it is when it is text or bytes, else JSON-encoded.
    """
    body, ctype = transform_fn(
        model, payload if isinstance(payload, (str, bytes)) else json.dumps(payload), content_type, "application/json"
    )
    assert ctype == "application/json"
    return json.loads(body)


def mnist_arrays():
    """The official 10k MNIST test set as (images, labels) uint8 arrays."""
    from smgluon.idx import read_idx

    images = os.path.join(MNIST_TEST, "t10k-images-idx3-ubyte.gz")
    if not os.path.exists(images):
        raise RuntimeError(
            "MNIST test data not found at %s: set SMGLUON_SHARED_DATA to the folder holding mnist-test/" % MNIST_TEST
        )
    return read_idx(images), read_idx(os.path.join(MNIST_TEST, "t10k-labels-idx1-ubyte.gz"))


def write_mnist_split(root, n_train=8000, n_test=2000):
    """Writes disjoint train/test slices of the 10k MNIST images as IDX channels.

    Returns:
        dict: ``{"train": dir, "test": dir, "training": dir}`` where ``training``
        holds both pairs (the workshop layout).
    """
    from smgluon.idx import write_idx

    x, y = mnist_arrays()
    dirs = {name: os.path.join(root, name) for name in ("train", "test", "training")}
    for d in dirs.values():
        os.makedirs(d, exist_ok=True)
    for d in (dirs["train"], dirs["training"]):
        write_idx(os.path.join(d, "train-images-idx3-ubyte.gz"), x[:n_train])
        write_idx(os.path.join(d, "train-labels-idx1-ubyte.gz"), y[:n_train])
    for d in (dirs["test"], dirs["training"]):
        write_idx(os.path.join(d, "t10k-images-idx3-ubyte.gz"), x[n_train : n_train + n_test])
        write_idx(os.path.join(d, "t10k-labels-idx1-ubyte.gz"), y[n_train : n_train + n_test])
    return dirs


@pytest.fixture(scope="session")
def mnist_dirs(tmp_path_factory):
    """8k train / 2k test MNIST images as train, test and training channel directories."""
    return write_mnist_split(str(tmp_path_factory.mktemp("mnist")))


@pytest.fixture(scope="session")
def mnist_small_dirs(tmp_path_factory):
    """2k train / 500 test images, for tests that only need a working model."""
    return write_mnist_split(str(tmp_path_factory.mktemp("mnist_small")), 2000, 500)


def resumed_and_uninterrupted(train, channels, hps, tmp_path):
    """The last epoch's metrics of a two-epoch run resumed from epoch 1's checkpoint, and of one run straight through.

    Timings are left out: only what the data order and the weights decide is compared.
    """
    runs = {}
    for name, stops in (("resumed", (1, 2)), ("uninterrupted", (2,))):
        for epochs in stops:
            out = tmp_path / name / str(epochs)
            train(
                channels,
                dict(hps, epochs=epochs),
                ["local"],
                0,
                checkpoint_dir=str(tmp_path / name / "ckpt"),
                output_data_dir=str(out),
            )
        last = json.load(open(str(out / "metrics.json")))["epochs"][-1]
        runs[name] = {k: v for k, v in last.items() if k not in ("samples_per_sec", "epoch_seconds")}
    return runs["resumed"], runs["uninterrupted"]


def readme_hyperparameter_table(workload):
    """The README's hyperparameter table of ``workload``, between its generated-section markers."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    start, end = "<!-- hyperparameters:%s -->\n" % workload, "\n<!-- /hyperparameters:%s -->" % workload
    return readme.split(start)[1].split(end)[0]
