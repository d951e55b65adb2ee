"""Runner: the project's entry point ``entry_points/mnist_mlp.py``, called as a notebook would.

CPU seconds per epoch are taken when each epoch's metrics line is written (so
they include that epoch's evaluation on the 10k test images).

``--entry-point PATH`` benchmarks another copy of the script instead (a proposed
change tried outside the repository); its directory goes first on ``sys.path``,
and a ``lib`` directory beside that directory (a copy of ``lib/smgluon`` with the
change) goes before the repository's ``lib``.

``mnist_mlp.train({"train": DIR, "test": DIR}, hyperparameters=..., hosts=["algo-1"], num_gpus=0,
output_data_dir=...)``; the per-epoch times and accuracies are read back from the
``metrics.json`` it writes (``epoch_seconds`` covers the shuffle and the training
loop, not the evaluation).
"""

import contextlib
import importlib
import io
import json
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    from bench import _common

    args = _common.runner_args(__doc__.splitlines()[0], entry_point=True)
    script = os.path.abspath(args.entry_point)
    candidate_lib = os.path.join(os.path.dirname(os.path.dirname(script)), "lib")
    sys.path[:0] = (
        [os.path.dirname(script)] + [p for p in (candidate_lib,) if os.path.isdir(p)] + [os.path.join(REPO, "lib")]
    )
    mnist_mlp = importlib.import_module(os.path.splitext(os.path.basename(script))[0])
    import mxnet as mx
    import numpy as np

    hps = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": 0.1,
        "momentum": 0.9,
        "optimizer": "sgd",
        "log_interval": 0,
    }
    marks = []

    class MetricsTap(io.TextIOBase):
        """Stands in for stdout while training: notes the CPU time at each epoch's metrics line."""

        def write(self, text):
            if text.startswith("metrics: epoch="):
                marks.append(_common.cpu_seconds())
            return len(text)

    start = _common.cpu_seconds()
    with tempfile.TemporaryDirectory(prefix="smgluon-bench-") as out, contextlib.redirect_stdout(MetricsTap()):
        mnist_mlp.train(
            {"train": args.data, "test": args.data},
            hyperparameters=hps,
            hosts=["algo-1"],
            num_gpus=0,
            output_data_dir=out,
        )
        with open(os.path.join(out, "metrics.json")) as f:
            epochs = json.load(f)["epochs"]
    _common.write_record(
        args.json_out,
        epoch_seconds=[e["epoch_seconds"] for e in epochs],
        cpu_epoch_seconds=[b - a for a, b in zip([start] + marks, marks)],
        samples_per_epoch=(60000 // args.batch_size) * args.batch_size,
        validation_accuracy=epochs[-1]["validation_accuracy"],
        versions={"mxnet": mx.__version__, "numpy": np.__version__},
        threads={k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MXNET_ENGINE_TYPE")},
        validation_accuracy_per_epoch=[e["validation_accuracy"] for e in epochs],
    )


if __name__ == "__main__":
    main()
