"""Managed spot training in local mode, and a drill that reclaims the instance.

A job with ``use_spot_instances=True`` (``EnableManagedSpotTraining``) or a
``checkpoint_s3_uri`` (``CheckpointConfig``) gets a :class:`ManagedSpot` that
the job runner calls at a few points:

* ``prepare``: the checkpoint location is checked and every host's checkpoint
  directory filled from it (:mod:`smgluon_local.checkpoint_sync`), before any
  script starts;
* ``check``, while the hosts run: ``MaxWaitTimeInSeconds`` (counted from the
  job's creation, restarts included), ``MaxRuntimeInSeconds`` (the time the
  hosts trained, summed over the restarts) and the drill's next interruption;
* ``restart``, when the drill reclaims the instance: every host's processes
  get SIGTERM, a grace period, then SIGKILL for what is left; the checkpoints
  they completed are copied to the location; each host's tree is reset as a
  new instance's (empty model and output directories, the checkpoint directory
  filled from the location) and the job starts again with the same inputs and
  code, so the script must resume from its own checkpoints;
* ``finish``, whatever the outcome: the last checkpoint files are copied.

The drill (``ProcessSession(spot_interruptions=...)``, ``smgluon train
--interrupt-after``) is what SageMaker cannot offer: a reclaim on demand.
Each interruption fires after some seconds of training or after the k-th
checkpoint file the hosts complete, counted from the start (or restart) of
the job, e.g. ``["30s", "2 checkpoints"]``. ``describe_training_job`` shows
``Interrupted`` and ``Restarting`` among the secondary-status transitions, and
the job log marks each interruption with ``[spot]`` lines.

``TrainingTimeInSeconds`` is the job's time from start to end and
``BillableTimeInSeconds`` leaves out the time between a reclaim and the
restart. Local mode knows no spot prices, so the SDK's "Managed Spot Training
savings" line shows only that unbilled time, not a price difference.
"""

import datetime
import json
import logging
import os
import re
import shutil
import threading
import time

from botocore.exceptions import ClientError

from smgluon_local import checkpoint_sync, ports
from smgluon_local import cluster as cluster_mod
from smgluon_local.host_tree import channel_source
from smgluon_local.job_status import STOPPED, STOPPING
from smgluon_local.storage import uri_to_local_path

logger = logging.getLogger(__name__)

__all__ = [
    "SpotInterruption",
    "ManagedSpot",
    "SecondaryStatus",
    "INTERRUPTED",
    "parse_interruptions",
    "validate_request",
    "from_request",
    "describe_fields",
    "print_billing",
]

INTERRUPTED, RESTARTING = "Interrupted", "Restarting"
MAX_WAIT_EXCEEDED, MAX_RUNTIME_EXCEEDED = "MaxWaitTimeExceeded", "MaxRuntimeExceeded"
DEFAULT_GRACE_S = 10.0  # as StopTrainingJob in the runner: SIGTERM, then this long before SIGKILL
_UNBILLED = (INTERRUPTED, RESTARTING)
_MESSAGES = {
    "Starting": "Preparing the instances for training",
    "Training": "Training in progress",
    "Uploading": "Uploading generated training model",
    "Completed": "Training job completed",
    "Failed": "Training job failed",
    "Stopping": "Stopping the training job",
    "Stopped": "Training job stopped",
    MAX_RUNTIME_EXCEEDED: "Training job stopped: MaxRuntimeInSeconds reached",
    MAX_WAIT_EXCEEDED: "Training job stopped: MaxWaitTimeInSeconds reached",
}
_TIME = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|sec|m|min)?$")
_CHECKPOINTS = re.compile(r"^(\d+)\s*(?:checkpoints?|ckpts?)$")


def _validation_error(message):
    return ClientError({"Error": {"Code": "ValidationException", "Message": message}}, "CreateTrainingJob")


class SpotInterruption:
    """One reclaim of the job's instances by the drill.

    Args:
        after_seconds (float): Reclaim after this many seconds of training (from the job's start or
            its last restart).
        after_checkpoints (int): Reclaim once the hosts completed this many checkpoint files (new
            or rewritten files in the checkpoint directory, counted from the start or last restart).
        grace (float): Seconds between SIGTERM and SIGKILL (default 10).

    Exactly one of ``after_seconds`` and ``after_checkpoints`` is given.
    """

    def __init__(self, after_seconds=None, after_checkpoints=None, grace=DEFAULT_GRACE_S):
        if (after_seconds is None) == (after_checkpoints is None):
            raise ValueError("a spot interruption comes after_seconds=S or after_checkpoints=K (one of them)")
        if after_seconds is not None and not after_seconds >= 0:
            raise ValueError("after_seconds=%r: use a number of seconds >= 0" % (after_seconds,))
        if after_checkpoints is not None and (int(after_checkpoints) != after_checkpoints or after_checkpoints < 1):
            raise ValueError("after_checkpoints=%r: use a whole number >= 1" % (after_checkpoints,))
        if not grace >= 0:
            raise ValueError("grace=%r: use a number of seconds >= 0" % (grace,))
        self.after_seconds = None if after_seconds is None else float(after_seconds)
        self.after_checkpoints = None if after_checkpoints is None else int(after_checkpoints)
        self.grace = float(grace)

    def due(self, seconds, checkpoints):
        """Whether to reclaim now, after ``seconds`` of training and ``checkpoints`` completed files."""
        if self.after_seconds is not None:
            return seconds >= self.after_seconds
        return checkpoints >= self.after_checkpoints

    def __str__(self):
        if self.after_seconds is not None:
            return "after %g s" % self.after_seconds
        return "after %d checkpoint file%s" % (self.after_checkpoints, "s" if self.after_checkpoints > 1 else "")

    __repr__ = __str__


def parse_interruptions(spec):
    """The drill's interruptions from what a user writes.

    Args:
        spec: None, a :class:`SpotInterruption`, a number of seconds, a string (``"30"``, ``"30s"``,
            ``"2m"``, ``"3 checkpoints"``), a comma-separated string of those, or a list of any of them.

    Returns:
        list of SpotInterruption: In the order they fire (one per attempt).

    Raises:
        ValueError: For anything else, naming the item and the forms accepted.
    """
    if spec is None:
        return []
    if isinstance(spec, str):
        spec = [part for part in spec.split(",") if part.strip()]
    elif not isinstance(spec, (list, tuple)):
        spec = [spec]
    found = []
    for item in spec:
        if isinstance(item, SpotInterruption):
            found.append(item)
        elif isinstance(item, bool):
            raise ValueError('spot interruption %r: use seconds (30, "30s", "2m") or "K checkpoints"' % item)
        elif isinstance(item, (int, float)):
            found.append(SpotInterruption(after_seconds=item))
        elif isinstance(item, str) and _TIME.match(item.strip().lower()):
            number, unit = _TIME.match(item.strip().lower()).groups()
            found.append(SpotInterruption(after_seconds=float(number) * (60 if unit in ("m", "min") else 1)))
        elif isinstance(item, str) and _CHECKPOINTS.match(item.strip().lower()):
            found.append(SpotInterruption(after_checkpoints=int(_CHECKPOINTS.match(item.strip().lower()).group(1))))
        else:
            raise ValueError(
                'spot interruption %r: use seconds of training (30, "30s", "2m") or a number of '
                'checkpoint files ("3 checkpoints"), or a list of them' % (item,)
            )
    return found


# ---------------------------------------------------------------- secondary statuses


_transitions_lock = threading.Lock()


class SecondaryStatus:
    """A data descriptor for a job's secondary status that records ``SecondaryStatusTransitions``.

    Every change appends ``{"Status", "StartTime", "StatusMessage"}`` to the instance's
    ``secondary_status_transitions`` and closes the previous entry with ``EndTime``.
    """

    def __set_name__(self, owner, name):
        self.attribute = "_" + name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return obj.__dict__.get(self.attribute)

    def __set__(self, obj, value):
        message = obj.__dict__.pop("_next_status_message", None)
        with _transitions_lock:
            if obj.__dict__.get(self.attribute) != value:
                now = datetime.datetime.now()
                transitions = obj.__dict__.setdefault("secondary_status_transitions", [])
                if transitions:
                    transitions[-1]["EndTime"] = now
                transitions.append(
                    {"Status": value, "StartTime": now, "StatusMessage": message or _MESSAGES.get(value, value)}
                )
            obj.__dict__[self.attribute] = value


def _set_status(run, status, message):
    run.__dict__["_next_status_message"] = message
    run.secondary_status = status


def describe_fields(run):
    """What DescribeTrainingJob adds for a job: its status transitions and, once it ended, its times.

    Args:
        run (smgluon_local.training_job.TrainingRun or None): The job.

    Returns:
        dict: ``SecondaryStatusTransitions``, ``TrainingTimeInSeconds``, ``BillableTimeInSeconds``.
    """
    if run is None:
        return {}
    with _transitions_lock:
        transitions = [dict(t) for t in run.__dict__.get("secondary_status_transitions", [])]
    fields = {"SecondaryStatusTransitions": transitions}
    if run.done and run.start_time and run.end_time:
        if transitions and "EndTime" not in transitions[-1]:
            transitions[-1]["EndTime"] = run.end_time
        total = (run.end_time - run.start_time).total_seconds()
        unbilled = sum(
            ((t.get("EndTime") or run.end_time) - t["StartTime"]).total_seconds()
            for t in transitions
            if t["Status"] in _UNBILLED
        )
        fields["TrainingTimeInSeconds"] = max(1, int(round(total)))
        fields["BillableTimeInSeconds"] = max(1, min(fields["TrainingTimeInSeconds"], int(round(total - unbilled))))
    return fields


def print_billing(description):
    """The lines the SDK prints after waiting for a training job: training and billable seconds, spot savings."""
    count = (description.get("ResourceConfig") or {}).get("InstanceCount") or 1
    training, billable = description.get("TrainingTimeInSeconds"), description.get("BillableTimeInSeconds")
    if training is not None:
        print("Training seconds:", training * count)
    if billable is not None:
        print("Billable seconds:", billable * count)
        if description.get("EnableManagedSpotTraining"):
            print("Managed Spot Training savings: {:.1f}%".format((1 - float(billable) / training) * 100))


# ---------------------------------------------------------------- the request


def validate_request(request, interruptions=()):
    """Checks a CreateTrainingJob request's spot and checkpoint settings as SageMaker does.

    Args:
        request (dict): The request's keyword arguments (``EnableManagedSpotTraining``,
            ``StoppingCondition``, ``CheckpointConfig``).
        interruptions (list of SpotInterruption): The session's drill.

    Raises:
        botocore.exceptions.ClientError: ``ValidationException`` naming the setting and the fix.
    """
    spot = bool(request.get("EnableManagedSpotTraining"))
    stopping = request.get("StoppingCondition") or {}
    max_run, max_wait = stopping.get("MaxRuntimeInSeconds"), stopping.get("MaxWaitTimeInSeconds")
    for name, value in (("MaxRuntimeInSeconds", max_run), ("MaxWaitTimeInSeconds", max_wait)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise _validation_error("%s=%r: use a whole number of seconds >= 1" % (name, value))
    if spot and max_wait is None:
        raise _validation_error(
            "Invalid MaxWaitTimeInSeconds: managed spot training needs it; pass max_wait "
            "(seconds, at least max_run) with use_spot_instances=True"
        )
    if not spot and max_wait is not None:
        raise _validation_error(
            "Invalid MaxWaitTimeInSeconds: it is only valid for managed spot training; pass "
            "use_spot_instances=True or drop max_wait"
        )
    if spot and max_run is not None and max_wait < max_run:
        raise _validation_error(
            "Invalid MaxWaitTimeInSeconds (%d): it must be greater than or equal to "
            "MaxRuntimeInSeconds (%d); raise max_wait or lower max_run" % (max_wait, max_run)
        )
    if interruptions and not spot:
        raise _validation_error(
            "the session's spot_interruptions reclaim spot instances, but this job does not use "
            "them: pass use_spot_instances=True and max_wait to the estimator, or drop "
            "spot_interruptions"
        )
    checkpoint = request.get("CheckpointConfig")
    if checkpoint:
        uri = checkpoint.get("S3Uri")
        if not uri or not isinstance(uri, str) or not uri.startswith(("s3://", "file://")):
            raise _validation_error(
                "CheckpointConfig.S3Uri %r: use s3://BUCKET/PREFIX in the session's local bucket or file://DIR" % (uri,)
            )
        try:
            checkpoint_sync.host_subdir(checkpoint.get("LocalPath"))
        except ValueError as e:
            raise _validation_error(str(e)) from None


def from_request(request, interruptions=()):
    """The job's :class:`ManagedSpot`, or None when it uses neither spot instances nor checkpoints."""
    spot = bool(request.get("EnableManagedSpotTraining"))
    checkpoint = request.get("CheckpointConfig") or {}
    if not spot and not checkpoint:
        return None
    stopping = request.get("StoppingCondition") or {}
    return ManagedSpot(
        spot,
        checkpoint.get("S3Uri"),
        checkpoint.get("LocalPath"),
        stopping.get("MaxRuntimeInSeconds") if spot else None,
        stopping.get("MaxWaitTimeInSeconds") if spot else None,
        list(interruptions) if spot else [],
    )


# ---------------------------------------------------------------- the runner's hooks


class ManagedSpot:
    """A job's checkpoint sync, spot limits and drill (see the module docstring for the hooks).

    Args:
        enabled (bool): ``EnableManagedSpotTraining``.
        checkpoint_uri (str or None): ``CheckpointConfig.S3Uri``.
        local_path (str or None): ``CheckpointConfig.LocalPath``.
        max_run (int or None): ``MaxRuntimeInSeconds`` of a spot job (training time, restarts summed).
        max_wait (int or None): ``MaxWaitTimeInSeconds`` (from creation to end, restarts included).
        interruptions (list of SpotInterruption): The drill.

    Attributes:
        interrupted (int): Interruptions so far.
        sync (CheckpointSync or None): Set by :meth:`prepare`.
    """

    def __init__(self, enabled, checkpoint_uri, local_path, max_run, max_wait, interruptions):
        self.enabled = enabled
        self.checkpoint_uri = checkpoint_uri
        self.subdir = checkpoint_sync.host_subdir(local_path)
        self.local_path = local_path or checkpoint_sync.DEFAULT_LOCAL_PATH
        self.max_run = max_run
        self.max_wait = max_wait
        self.interruptions = list(interruptions)
        self.interrupted = 0
        self.sync = None
        self._created = time.monotonic()
        self._cluster = None
        self._attempt_start = None
        self._trained = 0.0  # seconds the hosts trained in earlier attempts

    def _log(self, run, text):
        line = "[spot] %s\n" % text
        with run._lock:
            if run._log_file is not None and not run._log_file.closed:
                run._log_file.write(line)
                run._log_file.flush()
                if self._cluster is not None:  # the hosts run: streams and subscribers see it too
                    run._on_line(run.hosts[0], line)

    def _data_paths(self, run):
        paths = [run.job_dir]
        for channel in run.input_data_config:
            try:
                paths.append(uri_to_local_path(channel_source(channel)[0], run.store))
            except ValueError:
                continue
        submit = run.hyperparameters.get("sagemaker_submit_directory")
        if submit:
            try:
                paths.append(uri_to_local_path(json.loads(submit), run.store))
            except ValueError:
                pass
        output = (run.output_data_config or {}).get("S3OutputPath")
        if output:
            local = uri_to_local_path(output, run.store)
            if local:
                paths.append(os.path.join(local, run.job_name))
        return paths

    def prepare(self, run):
        """Checks the checkpoint location and fills every host's checkpoint directory from it.

        Raises:
            ValueError: For a location that is not writable or overlaps the job's data or output.
        """
        location = None
        if self.checkpoint_uri:
            location = checkpoint_sync.resolve_location(self.checkpoint_uri, run.store, self._data_paths(run))
        self.sync = checkpoint_sync.CheckpointSync(location, run.host_dirs, self.subdir, run.job_dir)
        filled = self.sync.fill()
        if location:
            self._log(run, "%s filled with %d file(s) from %s" % (self.local_path, filled, self.checkpoint_uri))

    def check(self, run, cluster):
        """Called while the hosts run; returns None, :data:`INTERRUPTED`, or ``Stopped`` for a limit reached."""
        now = time.monotonic()
        if cluster is not self._cluster:  # a new attempt: its hosts just started
            self._cluster, self._attempt_start = cluster, now
            self.sync.start()
        reason = None
        if self.max_wait and now - self._created > self.max_wait:
            reason = MAX_WAIT_EXCEEDED
        elif self.max_run and self._trained + now - self._attempt_start > self.max_run:
            reason = MAX_RUNTIME_EXCEEDED
        if reason is not None:
            run._stop_reason = reason
            run.status, run.secondary_status = STOPPING, STOPPING
            return STOPPED
        if self.interrupted < len(self.interruptions):
            if self.interruptions[self.interrupted].due(now - self._attempt_start, self.sync.written):
                return INTERRUPTED
        return None

    def restart(self, run, cluster):
        """Reclaims the instances (SIGTERM, grace, SIGKILL on every host), resets the hosts' trees as new
        instances' and returns a new, empty cluster for the runner to start the hosts on."""
        interruption = self.interruptions[self.interrupted]
        self.interrupted += 1
        trained = time.monotonic() - self._attempt_start
        self._trained += trained
        what = "interruption %d of %d (drill: %s)" % (self.interrupted, len(self.interruptions), interruption)
        _set_status(run, INTERRUPTED, "The spot instance was reclaimed by the drill: %s" % what)
        self._log(
            run,
            "%s: the instance is reclaimed after %.1f s of training; SIGTERM to every host's "
            "processes, SIGKILL after %g s" % (what, trained, interruption.grace),
        )
        self.sync.cut_open_files()  # what the reclaim catches half-written never reaches the URI
        cluster.terminate(grace=interruption.grace)
        for host in cluster.hosts:
            self._log(run, "%s: %s" % (host.host, host.describe_exit()))
        left = cluster_mod.job_processes(run.job_dir)
        if left:
            self._log(run, "processes still running after SIGKILL: %s" % ", ".join(str(p.pid) for p in left))
        copied = self.sync.stop()
        if self.checkpoint_uri:
            self._log(run, "%d checkpoint file(s) copied to %s" % (copied, self.checkpoint_uri))
        self._cluster = None
        _set_status(run, RESTARTING, "Restarting the job on new spot instances with the same inputs")
        for host_dir in run.host_dirs:
            for sub in ("model", "output"):
                shutil.rmtree(os.path.join(host_dir, sub), ignore_errors=True)
            for sub in ("model", os.path.join("output", "data"), os.path.join("output", "intermediate")):
                os.makedirs(os.path.join(host_dir, sub), exist_ok=True)
        # Stale exit records of the killed parameter-server roles would fail the new attempt at once.
        shutil.rmtree(os.path.join(run.job_dir, cluster_mod.ROLES_DIR_NAME), ignore_errors=True)
        if run._port is not None:
            ports.release_port(run._port)
            run._port = None
        filled = self.sync.fill()
        if self.checkpoint_uri:
            note = "%s filled with %d file(s) from %s" % (self.local_path, filled, self.checkpoint_uri)
        else:
            note = "no checkpoint_s3_uri: %s starts empty, as on a new SageMaker instance" % self.local_path
        self._log(run, "restarting the job with the same inputs (attempt %d); %s" % (self.interrupted + 1, note))
        new = cluster_mod.Cluster(run.job_dir, run._log_file, run._on_line, run._lock)
        new.prefix = cluster.prefix
        run._cluster = new
        return new

    def finish(self, run):
        """After the job's processes ended, whatever the outcome: copies the last checkpoint files."""
        if self.sync is None:
            return
        copied = self.sync.stop()
        if self.checkpoint_uri:
            self._log(run, "%d checkpoint file(s) copied to %s at the end of the job" % (copied, self.checkpoint_uri))
        self._cluster = None
