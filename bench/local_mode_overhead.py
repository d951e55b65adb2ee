"""Local-mode overhead: fit() → the entry point's first line, deploy() → a loaded, healthy server.

Run from the repository root: ``.venv/bin/python bench/local_mode_overhead.py [--repeats 3]``.
Writes ``bench/local_mode_overhead.json``. Targets (issue 3): < 3 s and < 15 s.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tarfile
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROLE = "arn:aws:iam::111111111111:role/bench"

# The first statement records the wall clock; the rest must not matter.
FIRST_LINE = '''import time; T0 = time.time()
import os
with open(os.path.join(os.environ["SM_MODEL_DIR"], "first_line.txt"), "w") as f:
    f.write(repr(T0))
'''


def mnist_channels(root, n_train=1000, n_test=200):
    """Writes train/test IDX channels from slices of the 10k MNIST test images (../shared/data).

    Returns:
        tuple: (train dir, test dir, all images uint8 (N, 28, 28), all labels uint8 (N,)).
    """
    from smgluon.idx import read_idx, write_idx

    src = os.environ.get("SMGLUON_MNIST_TEST", os.path.join(os.path.dirname(REPO), "shared", "data", "mnist-test"))
    x = read_idx(os.path.join(src, "t10k-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(src, "t10k-labels-idx1-ubyte.gz"))
    train, test = os.path.join(root, "train"), os.path.join(root, "test")
    os.makedirs(train)
    os.makedirs(test)
    write_idx(os.path.join(train, "train-images-idx3-ubyte.gz"), x[:n_train])
    write_idx(os.path.join(train, "train-labels-idx1-ubyte.gz"), y[:n_train])
    write_idx(os.path.join(test, "t10k-images-idx3-ubyte.gz"), x[n_train:n_train + n_test])
    write_idx(os.path.join(test, "t10k-labels-idx1-ubyte.gz"), y[n_train:n_train + n_test])
    return train, test, x, y


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=os.path.join(REPO, "bench", "local_mode_overhead.json"))
    args = p.parse_args(argv)

    from sagemaker.mxnet import MXNet

    from smgluon_local import ProcessSession
    from smgluon_local.storage import uri_to_local_path

    load_before = os.getloadavg()[0]
    work = tempfile.mkdtemp(prefix="smgluon-overhead-")
    train, test, images, _ = mnist_channels(os.path.join(work, "data"))
    image = images[:1].reshape(1, 784).astype("float32")
    src = os.path.join(work, "src")
    os.makedirs(src)
    with open(os.path.join(src, "first_line.py"), "w") as f:
        f.write(FIRST_LINE)
    session = ProcessSession(root_dir=os.path.join(work, "root"), log_stream=False)

    def estimator(entry_point, source_dir, **kwargs):
        return MXNet(entry_point=entry_point, source_dir=source_dir, role=ROLE, instance_count=1,
                     instance_type="local", framework_version="1.9.0", py_version="py38",
                     sagemaker_session=session, **kwargs)

    fit_overheads, fit_totals = [], []
    for _ in range(args.repeats):
        est = estimator("first_line.py", src)
        t0 = time.time()
        est.fit({"train": "file://" + train})
        fit_totals.append(time.time() - t0)
        with tarfile.open(uri_to_local_path(est.model_data, session.local_s3)) as tar:
            fit_overheads.append(float(tar.extractfile("first_line.txt").read()) - t0)

    est = estimator("mnist_mlp.py", os.path.join(REPO, "entry_points"),
                    dependencies=[os.path.join(REPO, "lib", "smgluon")],
                    hyperparameters={"epochs": 1})
    est.fit({"train": "file://" + train, "test": "file://" + test})
    deploys, first_predicts = [], []
    for _ in range(args.repeats):
        t0 = time.time()
        predictor = est.deploy(initial_instance_count=1, instance_type="local")
        deploys.append(time.time() - t0)
        t1 = time.time()
        predictor.predict(image)
        first_predicts.append(time.time() - t1)
        predictor.delete_endpoint()

    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "load_average": {"before": load_before, "after": os.getloadavg()[0]},
        "repeats": args.repeats,
        "fit_to_first_line_s": {"median": statistics.median(fit_overheads), "all": fit_overheads,
                                "target": 3.0},
        "fit_total_trivial_script_s": {"median": statistics.median(fit_totals), "all": fit_totals},
        "deploy_to_healthy_loaded_s": {"median": statistics.median(deploys), "all": deploys, "target": 15.0,
                                       "note": "deploy() returns after /ping is 200 and a worker loaded the model"},
        "first_predict_s": {"median": statistics.median(first_predicts), "all": first_predicts},
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))

    sys.path.insert(0, REPO)
    from bench.summary import write_summary

    write_summary(
        "local_mode_overhead",
        "Local-mode overhead: fit() and deploy() without Docker",
        os.path.relpath(args.out, REPO),
        overheads=[
            {"what": "fit() → the entry point's first line", "seconds": result["fit_to_first_line_s"]["median"],
             "target_seconds": 3.0},
            {"what": "deploy() → /ping healthy and the model loaded (mnist_mlp)",
             "seconds": result["deploy_to_healthy_loaded_s"]["median"], "target_seconds": 15.0},
        ],
        notes=["median of %d; load average %.1f before, %.1f after (2 cores: above ~0.5 other jobs shared the "
               "machine)" % (args.repeats, load_before, os.getloadavg()[0])],
        load=load_before,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
