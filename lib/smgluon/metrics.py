"""Metric lines: one call logs an epoch as a ``name=value`` line and as a JSON record.

The ``name=value`` line is what SageMaker reads: a tuning job or an
estimator's ``metric_definitions`` applies one regex per metric to the log, and
:func:`metric_definitions` builds those regexes, so nobody writes them by hand::

    metrics: epoch=2 train_loss=0.215 train_accuracy=0.9371 validation_accuracy=0.9405 samples_per_sec=51234

The JSON record (json-logging's formatter) carries the same values for log
pipelines. Every epoch and the final values also go to
``<output data dir>/metrics.json``, which SageMaker packs into output.tar.gz.
"""

import logging
import math
import os
import sys

from smgluon import files

__all__ = ["MetricsLogger", "metric_regex", "metric_definitions", "format_metrics"]

# A float as printed by "%g" (0.93, 1e-05, 52311.2, nan).
_NUMBER = r"([-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|nan|inf))"
PREFIX = "metrics:"


def metric_regex(name):
    """The regex whose first group captures metric ``name`` from a metric line.

    Args:
        name (str): the metric name, e.g. ``validation_accuracy``.

    Returns:
        str
    """
    return r"\b%s=%s" % (name, _NUMBER)


def metric_definitions(names):
    """SageMaker ``metric_definitions`` for the given metric names.

    Args:
        names (list[str]): metric names as the workload logs them.

    Returns:
        list[dict]: ``[{"Name": name, "Regex": regex}, ...]`` for an estimator or a tuner.
    """
    return [{"Name": n, "Regex": metric_regex(n)} for n in names]


def _format_value(value):
    if isinstance(value, bool) or isinstance(value, int):
        return str(int(value))
    return "%.6g" % value


def format_metrics(values):
    """Formats metrics as the stable line that :func:`metric_regex` reads.

    Args:
        values (dict): name → number, in the order to print.

    Returns:
        str
    """
    return " ".join([PREFIX] + ["%s=%s" % (k, _format_value(v)) for k, v in values.items()])


def _json_record(values):
    """One JSON log line (json-logging's format) carrying the metrics."""
    import json_logging

    record = logging.LogRecord("smgluon.metrics", logging.INFO, __file__, 0, "metrics", None, None)
    record.props = {"metrics": values}
    return json_logging.JSONLogFormatter().format(record)


class MetricsLogger:
    """Logs a run's metrics per epoch and keeps them in ``metrics.json``.

    Args:
        output_data_dir (str): where ``metrics.json`` goes; None keeps no file.
        stream: where the lines go; None means ``sys.stdout``.
        json_records (bool): also emit a JSON record per epoch.
        extra (dict): values stored once in ``metrics.json`` (workload, hyperparameters).
        history (list[dict]): the epochs a resumed run already trained
            (``smgluon.checkpoints.history``); they stay in ``metrics.json``.
    """

    def __init__(self, output_data_dir=None, stream=None, json_records=True, extra=None, history=None):
        self.path = os.path.join(output_data_dir, "metrics.json") if output_data_dir else None
        self.stream = stream
        self.json_records = json_records
        self.history = [dict(record) for record in history or ()]
        self.final = {}
        self.extra = dict(extra or {})

    def log(self, epoch, **values):
        """Logs one epoch's metrics: the line, the JSON record and metrics.json.

        Args:
            epoch (int): the epoch number (from 1).
            **values: name → number.
        """
        record = {"epoch": int(epoch)}
        record.update({k: float(v) if not isinstance(v, int) else v for k, v in values.items()})
        stream = self.stream or sys.stdout
        stream.write(format_metrics(record) + "\n")
        stream.flush()
        if self.json_records:
            clean = {k: (v if math.isfinite(v) else None) for k, v in record.items()}
            stream.write(_json_record(clean) + "\n")
            stream.flush()
        self.history.append(record)
        self._save()

    def finish(self, **values):
        """Records the final metrics (also logged as a line) and writes metrics.json.

        Args:
            **values: name → number, e.g. ``validation_accuracy=0.97``; none given
                means the last logged epoch's values.
        """
        if not values and self.history:
            values = {k: v for k, v in self.history[-1].items() if k != "epoch"}
        self.final.update({k: float(v) for k, v in values.items()})
        stream = self.stream or sys.stdout
        stream.write(format_metrics({"final_" + k: v for k, v in self.final.items()}) + "\n")
        stream.flush()
        self._save()

    def _save(self):
        if self.path:
            doc = dict(self.extra)
            doc.update({"epochs": self.history, "final": self.final})
            files.write_json(self.path, doc)
