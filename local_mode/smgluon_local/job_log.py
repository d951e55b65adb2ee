"""Reading a job's log: following it, its final metrics, a failed job's reason."""

import datetime
import os
import re
import time

from smgluon_local import cluster as cluster_mod

__all__ = ["follow_log", "final_metrics", "failure_reason"]


def _log_tail(log_path, host=None, lines=20):
    with open(log_path, errors="replace") as f:
        text = f.readlines()
    if host is not None:
        text = [line for line in text if line.startswith(host + " | ")]
    return "".join(text[-lines:])


def failure_reason(host_dir, host_proc, log_path, multi_host):
    """SageMaker's FailureReason: the failing host's failure file, else what ended it and its last lines."""
    failure = os.path.join(host_dir, "output", "failure")
    text = ""
    if host_proc.role_failure is None and os.path.isfile(failure):
        with open(failure, errors="replace") as f:
            text = f.read().strip()
        killed = re.search(r"ExitCode -(\d+)", text)
        if killed:  # the toolkit reports a script killed by a signal as a negative exit code
            text += " (the script was killed by %s)" % cluster_mod.signal_name(-int(killed.group(1)))
    if not text:
        what = host_proc.describe_exit()
        if host_proc.role_failure is not None:
            what += " while the job ran; the workers cannot go on without it"
        text = "AlgorithmError: %s. Last log lines:\n%s" % (
            what,
            _log_tail(log_path, host_proc.host if multi_host else None),
        )
    if multi_host:
        text = "%s: %s" % (host_proc.host, text)
    return text


def follow_log(log_path, stream, is_done, poll=0.1, timeout=None):
    """Copies a job's log to ``stream`` from the start, following it until the job ended.

    Args:
        log_path (str): The job's log.
        stream (file or None): Where lines go (None: nowhere, only wait).
        is_done (callable): Returns True once the job ended and wrote its last line.
        poll (float): Seconds between reads while nothing new came.
        timeout (float): Give up after this many seconds (None: wait as long as it runs).

    Returns:
        bool: True if the job ended, False on timeout.
    """
    deadline = time.monotonic() + timeout if timeout else None
    position = 0
    pending = ""
    while True:
        finished = is_done()  # read before the file, so the last lines are not missed
        if os.path.isfile(log_path):
            with open(log_path, errors="replace") as f:
                f.seek(position)
                chunk = f.read()
                position = f.tell()
            if chunk:
                pending += chunk
                complete, sep, pending = pending.rpartition("\n")
                if sep and stream is not None:
                    stream.write(complete + "\n")
                    stream.flush()
        if finished:
            if pending and stream is not None:
                stream.write(pending + "\n")
                stream.flush()
            return True
        if deadline is not None and time.monotonic() > deadline:
            return False
        time.sleep(poll)


def final_metrics(log_path, metric_definitions):
    """Apply ``metric_definitions`` to a log, as SageMaker does for FinalMetricDataList.

    Args:
        log_path (str): The job's log.
        metric_definitions (list of dict): ``{"Name": ..., "Regex": ...}``; the first
            group of the regex is the value.

    Returns:
        list of dict: ``{"MetricName", "Value", "Timestamp"}`` with the last value of
        each metric that appeared, in definition order.
    """
    if not metric_definitions or not os.path.isfile(log_path):
        return []
    with open(log_path, errors="replace") as f:
        text = f.read()
    now = datetime.datetime.now()
    metrics = []
    for definition in metric_definitions:
        value = None
        for match in re.finditer(definition["Regex"], text):
            try:
                value = float(match.group(1))
            except (IndexError, TypeError, ValueError):
                continue
        if value is not None:
            metrics.append({"MetricName": definition["Name"], "Value": value, "Timestamp": now})
    return metrics
