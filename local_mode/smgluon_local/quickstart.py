"""``smgluon quickstart``: the README's main job, end to end through the SageMaker SDK.

1. fetch Fashion-MNIST (the Debian package ``dataset-fashion-mnist`` if present,
   else the official download), checksums verified;
2. train ``entry_points/fmnist_cnn.py`` as a local SageMaker training job
   (``MXNet(...).fit()`` with a :class:`~smgluon_local.ProcessSession`), showing
   one progress line per epoch (the full log stays in the job directory);
3. deploy it (multi-model-server + the SageMaker MXNet inference toolkit),
   classify a handful of test images sent as PNG files, and the whole test set
   sent as NPY batches, through the endpoint;
4. draw the learning curve from the job's ``metrics.json`` into a PNG, print
   the accuracy and where every artifact is, and stop the endpoint.
"""

import io
import json
import os
import re
import sys
import tarfile
import time

from smgluon import files
from smgluon_local.commands import (
    FRAMEWORK_VERSION,
    PY_VERSION,
    ROLE,
    CliError,
    find_entry_point,
    raise_if_interrupted,
    repo_dir,
)

__all__ = ["run", "learning_curve", "thread_environment", "add_quickstart_command"]

WORKLOAD = "fmnist_cnn"
EPOCH_LINE = re.compile(r"^metrics: epoch=(\d+) (.*)$")


class _EpochProgress:
    """A log stream for the training job that shows one line per epoch and keeps nothing else."""

    def __init__(self, epochs, out=sys.stderr):
        self.epochs, self.out, self.tic, self._partial = epochs, out, time.time(), ""

    def write(self, text):
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            match = EPOCH_LINE.match(line.split("] ", 1)[-1].strip())  # multi-host lines carry a prefix
            if match:
                values = dict(kv.split("=", 1) for kv in match.group(2).split())
                shown = "  ".join("%s %s" % (k, values[k]) for k in ("train_loss", "train_accuracy",
                                                                      "validation_accuracy") if k in values)
                self.out.write("  epoch %s/%d  %s  (%.0f s)\n" % (match.group(1), self.epochs, shown,
                                                                 time.time() - self.tic))
                self.out.flush()

    def flush(self):
        pass


def _cpu_times():
    """(idle, total) jiffies of the whole machine, from the first line of /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    return fields[3] + fields[4], sum(fields[:8])  # idle + iowait; user … steal


def thread_environment(environ=None, cores=None, sample=None, seconds=1.0):
    """The OpenMP threads and engine for the CNN job, from the cores idle right now.

    The convolutions run fastest with every core in OpenMP and the synchronous
    engine, but more OpenMP threads than idle cores make them several times
    slower (bench/results/fmnist_cnn.md): the threads spin at every barrier while
    other processes hold the cores. So: the machine's idle share over ``seconds``
    (from /proc/stat) decides; at least 1. ``OMP_NUM_THREADS`` or
    ``MXNET_ENGINE_TYPE`` set by the user win.

    Args:
        environ (dict): the caller's environment (default ``os.environ``).
        cores (int): usable cores (default: this process's CPU affinity).
        sample (callable): returns (idle, total) CPU times (default: /proc/stat).
        seconds (float): how long to watch.

    Returns:
        tuple: (environment dict for the job, one line saying why).
    """
    environ = os.environ if environ is None else environ
    cores = cores or len(os.sched_getaffinity(0))
    if environ.get("OMP_NUM_THREADS") or environ.get("MXNET_ENGINE_TYPE"):
        chosen = {k: environ[k] for k in ("OMP_NUM_THREADS", "MXNET_ENGINE_TYPE") if environ.get(k)}
        return chosen, "threads: %s, as set in the environment" % " ".join("%s=%s" % kv for kv in chosen.items())
    sample = sample or _cpu_times
    try:
        idle0, total0 = sample()
        time.sleep(seconds)
        idle1, total1 = sample()
        idle_share = (idle1 - idle0) / max(total1 - total0, 1)
    except (OSError, ValueError, IndexError):
        idle_share = 1.0  # no /proc/stat: assume the machine is ours
    idle_cores = idle_share * cores
    threads = cores if idle_cores >= cores - 0.25 else max(1, int(idle_cores))
    env = {"OMP_NUM_THREADS": str(threads), "MXNET_ENGINE_TYPE": "NaiveEngine"}
    why = "threads: OMP_NUM_THREADS=%d MXNET_ENGINE_TYPE=NaiveEngine (%.1f of %d cores idle%s)" % (
        threads, idle_cores, cores,
        "" if threads == cores else "; more threads than idle cores would make training several times slower")
    return env, why


def _step(number, text):
    print("\n[%d/4] %s" % (number, text), file=sys.stderr, flush=True)


def learning_curve(metrics_json, png_path, title="fmnist_cnn"):
    """Draws loss and accuracy per epoch from a workload's ``metrics.json`` into ``png_path``.

    Args:
        metrics_json (str): a ``metrics.json`` written by :class:`smgluon.metrics.MetricsLogger`.
        png_path (str): the PNG to write (atomically).
        title (str): the figure's title.

    Returns:
        list[dict]: the epochs drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(metrics_json) as f:
        epochs = json.load(f).get("epochs", [])
    if not epochs:
        raise CliError("%s has no per-epoch metrics to draw" % metrics_json)
    x = [e["epoch"] for e in epochs]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(x, [e.get("train_loss") for e in epochs], "o-", label="train loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy")
    ax_loss.legend()
    for key, label in (("train_accuracy", "train"), ("validation_accuracy", "validation")):
        if any(key in e for e in epochs):
            ax_acc.plot(x, [e.get(key) for e in epochs], "o-", label=label)
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy")
    ax_acc.legend()
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.set_xticks(x)
    fig.suptitle(title)
    fig.tight_layout()
    with files.replacing(png_path) as tmp:  # the name keeps .png: savefig picks the format from it
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return epochs


def _png(image):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def run(epochs=None, data_dir="data", output="smgluon-output", num_images=8, root=None, hyperparameters=None,
        channels=None):
    """Runs the main job; returns a dict of what it measured and where the artifacts are.

    Args:
        epochs (int): training epochs (default: the workload's default).
        data_dir (str): where ``fashion-mnist/`` is fetched to.
        output (str): where the job's model.tar.gz / output.tar.gz and the PNG go.
        num_images (int): how many test images to classify one by one as PNG files.
        root (str): the ProcessSession's root (jobs, endpoints, local bucket).
        hyperparameters (dict): more hyperparameters for the workload.
        channels (dict): train/test channel folders to use instead of fetching Fashion-MNIST.
    """
    import numpy as np
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.mxnet import MXNet
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import IdentitySerializer

    from smgluon.channels import load_idx_channels
    from smgluon_local.datasets import fetch
    from smgluon_local.session import ProcessSession

    entry_point = find_entry_point(WORKLOAD, repo_dir("entry_points"))
    lib = repo_dir(os.path.join("lib", "smgluon"))
    sys.path.insert(0, os.path.dirname(entry_point))
    import fmnist_cnn

    hps = dict(hyperparameters or {})
    if epochs:
        hps["epochs"] = epochs
    epochs = fmnist_cnn.HYPERPARAMETERS.parse_dict(hps)["epochs"]  # validated before any work
    output = os.path.abspath(output)
    os.makedirs(output, exist_ok=True)

    if channels is None:
        _step(1, "Fashion-MNIST: the Debian package's files if installed, else the official download")
        channels = fetch("fashion-mnist", data_dir)
    else:
        _step(1, "data: %s" % ", ".join("%s=%s" % kv for kv in sorted(channels.items())))

    _step(2, "training %s for %d epochs as a local SageMaker training job (no Docker)" % (WORKLOAD, epochs))
    session = ProcessSession(root_dir=root, log_stream=_EpochProgress(epochs))
    # The variables reach the job as Environment (MXNet reads them when the script imports it).
    environment, why = thread_environment()
    print("   " + why, file=sys.stderr, flush=True)
    estimator = MXNet(entry_point=os.path.basename(entry_point), source_dir=os.path.dirname(entry_point),
                      dependencies=[lib] if lib else [], role=ROLE, instance_count=1, instance_type="local",
                      framework_version=FRAMEWORK_VERSION, py_version=PY_VERSION, hyperparameters=hps,
                      metric_definitions=fmnist_cnn.METRIC_DEFINITIONS, environment=environment,
                      output_path="file://" + output, sagemaker_session=session)
    tic = time.time()
    estimator.fit({name: "file://" + os.path.abspath(path) for name, path in channels.items()})
    raise_if_interrupted()  # Ctrl-C stopped the job, and the SDK's fit() returned as if it had ended
    train_seconds = time.time() - tic
    job = estimator.latest_training_job.describe()
    final = {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])}
    model_tar = estimator.model_data[len("file://"):]
    job_output = os.path.join(os.path.dirname(model_tar), "output.tar.gz")

    _step(3, "deploying to a local endpoint (multi-model-server) and classifying test images")
    predictor = estimator.deploy(initial_instance_count=1, instance_type="local")
    try:
        raise_if_interrupted()  # one that the SDK swallowed during deploy()
        (_, _), (x_test, y_test) = load_idx_channels(channels)
        labels = fmnist_cnn.CLASS_NAMES[fmnist_cnn.HYPERPARAMETERS.parse_dict(hps)["classes"]]
        png = Predictor(predictor.endpoint_name, sagemaker_session=session,
                        serializer=IdentitySerializer("image/png"), deserializer=JSONDeserializer())
        print("\n  %-4s %-12s %-12s" % ("#", "true", "predicted (from a PNG)"), file=sys.stderr)
        handful_correct = 0
        for i in range(num_images):
            image = np.asarray(x_test[i], dtype=np.uint8).reshape(28, 28)
            answer = png.predict(_png(image))
            handful_correct += answer["predictions"][0] == int(y_test[i])
            print("  %-4d %-12s %s%s" % (i, labels[int(y_test[i])], answer["labels"][0],
                                         "" if answer["predictions"][0] == int(y_test[i]) else "   <- wrong"),
                  file=sys.stderr)
        npy = Predictor(predictor.endpoint_name, sagemaker_session=session,
                        serializer=IdentitySerializer("application/x-npy"), deserializer=JSONDeserializer())
        predicted = []
        for start in range(0, len(x_test), 1000):
            buf = io.BytesIO()
            np.save(buf, np.asarray(x_test[start:start + 1000], dtype=np.uint8).reshape(-1, 28, 28))
            predicted.extend(npy.predict(buf.getvalue())["predictions"])
        endpoint_accuracy = float(np.mean(np.array(predicted) == np.asarray(y_test)))
    finally:
        predictor.delete_endpoint()

    _step(4, "learning curve and artifacts")
    with tarfile.open(job_output) as tar:
        # SageMaker packs the contents of /opt/ml/output/data at the archive's root.
        member = tar.getmember("metrics.json")
        metrics_json = os.path.join(output, estimator.latest_training_job.name, "metrics.json")
        os.makedirs(os.path.dirname(metrics_json), exist_ok=True)
        with tar.extractfile(member) as src, open(metrics_json, "wb") as dst:
            dst.write(src.read())
    png_path = os.path.join(output, "learning_curve.png")
    learning_curve(metrics_json, png_path, title="%s on Fashion-MNIST, %d epochs" % (WORKLOAD, epochs))
    summary = {
        "validation_accuracy": final.get("validation_accuracy"),
        "endpoint_accuracy": endpoint_accuracy,
        "handful_correct": int(handful_correct),
        "handful": num_images,
        "train_seconds": train_seconds,
        "model": model_tar,
        "output": job_output,
        "metrics_json": metrics_json,
        "learning_curve": png_path,
        "job_dir": os.path.join(session.root_dir, "jobs", estimator.latest_training_job.name),
    }
    print("\nvalidation accuracy (training job): %.4f" % summary["validation_accuracy"])
    print("accuracy through the endpoint:      %.4f on %d test images; %d of %d PNG uploads right"
          % (endpoint_accuracy, len(y_test), handful_correct, num_images))
    print("training took %.0f s" % train_seconds)
    print("model:          %s" % model_tar)
    print("output:         %s" % job_output)
    print("metrics:        %s" % metrics_json)
    print("learning curve: %s" % png_path)
    print("job directory:  %s (full log: job.log)" % summary["job_dir"])
    return summary


def cmd_quickstart(args):
    run(epochs=args.epochs, data_dir=args.data, output=args.output, num_images=args.images, root=args.root)
    return 0


def add_quickstart_command(subparsers):
    """Registers ``smgluon quickstart`` (in :data:`smgluon_local.cli.SUBCOMMANDS`)."""
    p = subparsers.add_parser(
        "quickstart", help="fetch Fashion-MNIST, train fmnist_cnn locally, deploy it and classify test images",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, help="training epochs (default: the workload's, 10)")
    p.add_argument("--data", default="data", metavar="DIR", help="where fashion-mnist/ is fetched (default: ./data)")
    p.add_argument("--output", default="smgluon-output", metavar="DIR",
                   help="model.tar.gz, output.tar.gz and learning_curve.png (default: ./smgluon-output)")
    p.add_argument("--images", type=int, default=8, help="test images sent one by one as PNG (default: 8)")
    p.add_argument("--root", help="directory for jobs, endpoints and the local bucket "
                   "(default: $SMGLUON_LOCAL_ROOT or ~/.smgluon/local)")
    p.set_defaults(func=cmd_quickstart)
    return p
