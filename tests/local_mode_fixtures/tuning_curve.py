"""A fast stand-in workload for tuning tests: its learning curve is set by its hyperparameters.

Epoch e logs ``validation_accuracy = quality * (1 - 0.5 ** e)`` as a metric line (so
the final value is close to ``quality``), sleeping ``seconds_per_epoch`` each
epoch; ``fail=true`` fails as an entry point does (failure file, exit status 1).
It publishes its ranges, metric definitions and objective as a workload does.
"""

import os
import time

from smgluon import failure, metrics
from smgluon.hyperparameters import Hyperparameter as HP
from smgluon.hyperparameters import Hyperparameters

HYPERPARAMETERS = Hyperparameters([
    HP("quality", float, 0.5, "final validation accuracy", min=0.0, max=1.0, tune=(0.05, 0.95)),
    HP("width", int, 8, "an integer knob that changes nothing", min=1, max=64, tune=(1, 64, "Logarithmic")),
    HP("shape", str, "flat", "a categorical knob that changes nothing", choices=["flat", "deep"],
       tune=["flat", "deep"]),
    HP("epochs", int, 3, "epochs", min=1, max=100),
    HP("seconds_per_epoch", float, 0.2, "time each epoch takes", min=0.0, max=60.0),
    HP("fail", bool, False, "fail after the first epoch"),
])
METRIC_DEFINITIONS = metrics.metric_definitions(["validation_accuracy"])
OBJECTIVE = {"metric": "validation_accuracy", "type": "Maximize"}


def main(argv=None):
    hps, _ = HYPERPARAMETERS.parse_args(argv)
    log = metrics.MetricsLogger(json_records=False)
    for epoch in range(1, hps["epochs"] + 1):
        time.sleep(hps["seconds_per_epoch"])
        log.log(epoch, validation_accuracy=hps["quality"] * (1 - 0.5 ** epoch))
        if hps["fail"]:
            raise RuntimeError("deliberate failure after epoch %d" % epoch)
    with open(os.path.join(os.environ.get("SM_MODEL_DIR", "."), "model.txt"), "w") as f:
        f.write("quality=%s\n" % hps["quality"])


if __name__ == "__main__":
    failure.run(main)
