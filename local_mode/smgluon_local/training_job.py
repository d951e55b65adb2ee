"""Run one SageMaker training job as local processes, in the background.

Every host (``algo-1`` … ``algo-N``) gets an ``/opt/ml``-like tree under the job
directory (:mod:`smgluon_local.host_tree`), and the SageMaker MXNet container's
training entry point runs on it with the container's environment
(:mod:`smgluon_local.training_env`); everything the job prints goes to
``<job_dir>/job.log`` (``<host> | `` prefixes when there are several hosts).
With ``distribution={"parameter_server": {"enabled": True}}`` the
parameter-server roles are the container's own. Host names resolve to 127.0.0.1
inside the job (:mod:`smgluon_local.hostnames`); each job gets its own scheduler
port (:mod:`smgluon_local.toolkit`). Each host process also sees its tree as
``/opt/ml`` where the OS allows (:mod:`smgluon_local.optml`), and a
``requirements.txt`` is installed where only the job sees it
(:mod:`smgluon_local.requirements`).

:class:`TrainingRun` prepares the trees in the caller's thread (so bad input is
an immediate error) and runs the processes in a background thread: the status
is ``InProgress`` until every host ends, ``Failed`` as soon as one host's
script dies (the other hosts are stopped, see :mod:`smgluon_local.cluster`),
``Stopped`` after :meth:`TrainingRun.stop` or ``MaxRuntimeInSeconds``.
A job lives no longer than the Python process that started it: the processes
of unfinished jobs are stopped at interpreter exit. The artifacts are packed as
:mod:`smgluon_local.job_artifacts` says, and the log is read back by
:mod:`smgluon_local.job_log`.
"""

import atexit
import datetime
import logging
import os
import re
import sys
import threading
import time
import weakref

from smgluon_local import cluster as cluster_mod
from smgluon_local import failure_hints, optml, ports
from smgluon_local import spot as spot_mod
from smgluon_local.host_tree import prepare_host
from smgluon_local.job_artifacts import TrainingResult, package
from smgluon_local.job_log import failure_reason
from smgluon_local.job_status import COMPLETED, FAILED, IN_PROGRESS, STOPPED, STOPPING
from smgluon_local.training_env import host_env, process_env

logger = logging.getLogger(__name__)

__all__ = ["TrainingRun"]

_TRAIN_CMD = "from smgluon_local.toolkit import main; main()"
STOP_GRACE_S = 10.0  # StopTrainingJob: SIGTERM, then this long to save a model, then SIGKILL
_PREFIX = re.compile(r"^(algo-\d+) \| ")

# Statuses, as DescribeTrainingJob reports them.

_ACTIVE = weakref.WeakSet()  # unfinished jobs, stopped at interpreter exit


@atexit.register
def _stop_unfinished_jobs():
    # A local job cannot outlive the Python process that started it: leave no orphans.
    for run in list(_ACTIVE):
        try:
            run.kill()
        except Exception:  # interpreter shutdown: best effort
            pass


class TrainingRun:
    """One training job: its hosts' trees, its processes in the background, its artifacts.

    Args:
        job_dir (str): New directory for the job (must not exist yet).
        job_name (str): The training job name.
        hosts (list of str): Host names; one process tree per host.
        instance_type (str): ``local`` or ``local_gpu``.
        input_data_config (list of dict): The request's channels.
        output_data_config (dict): Has ``S3OutputPath`` (file://, local-bucket s3:// or s3://).
        hyperparameters (dict): JSON-encoded hyperparameters, as the SDK sends them.
        environment (dict): Extra environment variables from the request.
        store (LocalS3): The local buckets.
        session (sagemaker.session.Session): For region and real S3.
        stream (file): Where to echo the log as it is written (with host prefixes
            for several hosts); None or False: only ``job.log``.
        max_runtime (float): ``StoppingCondition.MaxRuntimeInSeconds``: the job is
            stopped after this long (status Stopped, secondary status MaxRuntimeExceeded).

    Attributes:
        status (str): ``InProgress``, ``Stopping``, ``Completed``, ``Failed`` or ``Stopped``.
        secondary_status (str): ``Starting``, ``Training``, ``Uploading``, ``Stopping``, the final
            status, or ``MaxRuntimeExceeded``.
        failure_reason (str or None): Why a Failed job failed.
        result (TrainingResult or None): Artifacts, once the job ended.
        log_path (str): The job's log.
    """

    secondary_status = spot_mod.SecondaryStatus()  # records SecondaryStatusTransitions
    spot = None  # managed spot / checkpoints: a spot.ManagedSpot, set before prepare()

    def __init__(
        self,
        job_dir,
        job_name,
        hosts,
        instance_type,
        input_data_config,
        output_data_config,
        hyperparameters,
        environment,
        store,
        session,
        stream=None,
        max_runtime=None,
    ):
        self.job_dir = job_dir
        self.job_name = job_name
        self.hosts = list(hosts)
        self.instance_type = instance_type
        self.input_data_config = input_data_config
        self.output_data_config = output_data_config or {}
        self.hyperparameters = hyperparameters or {}
        self.environment = environment or {}
        self.store = store
        self.session = session
        self.stream = stream or None
        self.max_runtime = max_runtime
        self.log_path = os.path.join(job_dir, "job.log")
        self.host_dirs = [os.path.join(job_dir, host) for host in self.hosts]
        self.status = IN_PROGRESS
        self.secondary_status = "Starting"
        self.failure_reason = None
        self.result = None
        self.start_time = self.end_time = None
        self._lock = threading.Lock()  # log file, stream and callbacks
        self._callbacks = []
        self._stop = threading.Event()
        self._stop_reason = None
        self._done = threading.Event()
        self._done_callbacks = []
        self._ending = False
        self._log_file = None
        self._thread = None
        self._cluster = None
        self._port = None

    # ------------------------------------------------------------ set-up (caller's thread)

    def prepare(self):
        """Creates the job directory, the log and every host's tree.

        Raises:
            FileExistsError: If the job directory exists.
            FileNotFoundError, ValueError: For channels or code that cannot be staged.
        """
        os.makedirs(os.path.dirname(self.job_dir), exist_ok=True)
        os.mkdir(self.job_dir)
        self._log_file = open(self.log_path, "w")
        try:
            for host, host_dir in zip(self.hosts, self.host_dirs):
                prepare_host(
                    host_dir,
                    host,
                    self.hosts,
                    self.instance_type,
                    self.input_data_config,
                    self.hyperparameters,
                    self.job_dir,
                    self.store,
                    self.session,
                )
            if self.spot is not None:  # managed spot: checkpoint dirs filled from checkpoint_s3_uri
                self.spot.prepare(self)
        except Exception as e:
            self._log_file.write("Failed to set up the job: %s\n" % e)
            self._log_file.close()
            raise

    def start(self):
        """Starts the hosts in a background thread; returns at once."""
        self.start_time = datetime.datetime.now()
        _ACTIVE.add(self)
        self._thread = threading.Thread(target=self._run, name="training-job-%s" % self.job_name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ control (any thread)

    @property
    def done(self):
        """bool: whether the job ended and its artifacts are packaged."""
        return self._done.is_set()

    def wait(self, timeout=None):
        """Blocks until the job ended (or ``timeout`` seconds passed); returns whether it ended."""
        return self._done.wait(timeout)

    def stop(self, reason=STOPPED):
        """Asks the job to stop (StopTrainingJob): SIGTERM to every process, SIGKILL after STOP_GRACE_S.

        A job that already ended is left as it is.
        """
        if not self.done and self._stop_reason is None:
            self._stop_reason = reason
            self.status, self.secondary_status = STOPPING, STOPPING
            self._stop.set()

    def kill(self, timeout=10.0):
        """Stops the job now (interpreter exit, Ctrl-C): no grace for the script; waits at most ``timeout`` s."""
        self.stop()
        cluster = self._cluster
        if cluster is not None:
            cluster.terminate(grace=1.0)
        self.wait(timeout)

    def subscribe(self, callback, replay=True):
        """Calls ``callback(host, line)`` for every line the job prints (``line`` ends with a newline).

        Args:
            callback (callable): Called from the job's log threads; exceptions are logged and ignored.
            replay (bool): First call it for the lines already in the log, so none is missed.
        """
        with self._lock:
            if replay and os.path.isfile(self.log_path):
                with open(self.log_path, errors="replace") as f:
                    for line in f:
                        match = _PREFIX.match(line) if len(self.hosts) > 1 else None
                        host = match.group(1) if match else self.hosts[0]
                        self._call(callback, host, line[match.end() :] if match else line)
            self._callbacks.append(callback)

    def unsubscribe(self, callback):
        """Stops calling ``callback``."""
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

    def add_done_callback(self, callback):
        """Calls ``callback(run)`` once the job ended, before :meth:`wait` returns (at once if it already ended)."""
        with self._lock:
            if not self._ending:
                self._done_callbacks.append(callback)
                return
        callback(self)

    # ------------------------------------------------------------ the background thread

    def _call(self, callback, host, line):
        try:
            callback(host, line)
        except Exception:
            logger.exception("training job %s: log callback %r failed", self.job_name, callback)

    def _on_line(self, host, line):
        # Called by the cluster's pumps with self._lock held.
        if self.stream is not None:
            try:
                self.stream.write(("%s | " % host if len(self.hosts) > 1 else "") + line)
                self.stream.flush()
            except (OSError, ValueError):
                pass
        for callback in list(self._callbacks):
            self._call(callback, host, line)

    def _ps_port(self):
        # One scheduler port per job, taken when the first host needs it and freed when the job ends.
        if self._port is None:
            self._port = ports.free_port()
        return self._port

    def _run(self):
        try:
            outcome, failed_host = self._supervise()
            self._finish(outcome, failed_host)
        except BaseException as e:  # the runner itself broke: report it as the job's failure
            logger.exception("training job %s: the local runner failed", self.job_name)
            self._finish_broken(e)
        finally:
            if self._port is not None:
                ports.release_port(self._port)
            _ACTIVE.discard(self)
            self.end_time = datetime.datetime.now()
            with self._lock:
                self._ending = True
                callbacks, self._done_callbacks = self._done_callbacks, []
            # Done callbacks run before waiters wake, so what they record is there for them.
            for callback in callbacks:
                try:
                    callback(self)
                except Exception:
                    logger.exception("training job %s: done callback %r failed", self.job_name, callback)
            self._done.set()

    def _supervise(self):
        """Starts the hosts, waits for the outcome, stops what is left. Returns (outcome, failed HostProcess)."""
        region = self.session.boto_region_name
        root = getattr(self.session, "root_dir", None) or os.path.dirname(os.path.dirname(self.job_dir))
        cluster = cluster_mod.Cluster(self.job_dir, self._log_file, self._on_line, self._lock)
        cluster.prefix = len(self.hosts) > 1
        self._cluster = cluster
        grace = cluster_mod.TERM_GRACE_S
        note = optml.unavailable_note()
        if note:
            with self._lock:
                self._log_file.write(note + "\n")
                self._on_line(self.hosts[0], note + "\n")
        try:
            self._start_hosts(cluster, region, root)
            outcome, failed = self._watch(cluster)
            while outcome == spot_mod.INTERRUPTED:  # managed spot: the drill reclaimed the instances
                cluster = self.spot.restart(self, cluster)
                self._start_hosts(cluster, region, root)
                outcome, failed = self._watch(cluster)
            if outcome == COMPLETED:
                # The parameter-server roles end by themselves once the workers finalised.
                deadline = time.monotonic() + 2.0
                while time.monotonic() < deadline and cluster_mod.job_processes(self.job_dir):
                    time.sleep(0.1)
            elif outcome == STOPPED:
                grace = STOP_GRACE_S
            return outcome, failed
        finally:
            cluster.terminate(grace=grace)
            if self.spot is not None:  # managed spot: the last checkpoints go to checkpoint_s3_uri
                self.spot.finish(self)

    def _start_hosts(self, cluster, region, root):
        for index, (host, host_dir) in enumerate(zip(self.hosts, self.host_dirs)):
            if self._stop.is_set():
                break
            env = process_env(host_dir, self.job_name, region, self.environment)
            env.update(
                host_env(
                    self.job_dir,
                    self.hosts,
                    index,
                    host_dir,
                    self.instance_type,
                    self.hyperparameters,
                    env,
                    root,
                    self._ps_port,
                )
            )
            cluster.start(host, [sys.executable, "-c", _TRAIN_CMD], host_dir, env)
        self.secondary_status = "Training" if not self._stop.is_set() else STOPPING

    def _watch(self, cluster):
        deadline = time.monotonic() + self.max_runtime if self.max_runtime else None
        while True:
            cluster.poll()
            failed = [h for h in cluster.hosts if h.failed]
            if failed:
                # The first to fail carries the reason; later ones failed because it did.
                return FAILED, min(failed, key=lambda h: (h.exit_time, self.hosts.index(h.host)))
            if len(cluster.hosts) == len(self.hosts) and all(h.exit_code == 0 for h in cluster.hosts):
                return COMPLETED, None
            if self._stop.is_set():
                return STOPPED, None
            due = self.spot.check(self, cluster) if self.spot is not None else None  # managed spot
            if due is not None:
                return due, None
            if deadline is not None and time.monotonic() > deadline:
                self._stop_reason = "MaxRuntimeExceeded"
                self.status, self.secondary_status = STOPPING, STOPPING
                return STOPPED, None
            self._stop.wait(cluster_mod.POLL_S)

    def _finish(self, outcome, failed_host):
        self.secondary_status = "Uploading"
        multi = len(self.hosts) > 1
        if outcome == FAILED:
            reason = failure_reason(
                self.host_dirs[self.hosts.index(failed_host.host)], failed_host, self.log_path, multi
            )
            reason = failure_hints.with_hint(reason, self.log_path, self.hosts, self.hyperparameters)
            exit_code = failed_host.exit_code if failed_host.exit_code is not None else failed_host.role_failure[1]
        else:
            reason, exit_code = None, 0
        with self._lock:
            if outcome == FAILED and multi:
                self._log_file.write(
                    "%s: %s; the job failed and its other hosts were stopped.\n"
                    % (failed_host.host, failed_host.describe_exit())
                )
            self._log_file.flush()
        failure_file = None
        if outcome == FAILED:
            failure_file = os.path.join(self.host_dirs[self.hosts.index(failed_host.host)], "output", "failure")
            failure_file = failure_file if os.path.isfile(failure_file) else None
        try:
            # A stopped job keeps what its script saved in its grace period (StopTrainingJob and
            # MaxRuntimeInSeconds: SIGTERM, then time to save the model "so the results of the
            # training are not lost"); a failed one has no model.
            result = package(
                self.job_dir,
                self.job_name,
                self.hosts,
                self.host_dirs,
                self.output_data_config.get("S3OutputPath", ""),
                self.store,
                self.session,
                self.log_path,
                outcome in (COMPLETED, STOPPED),
                failure_file,
                exit_code,
            )
        finally:
            self._log_file.close()
        self.result = result
        self.failure_reason = reason
        if outcome == STOPPED:
            limits = ("MaxRuntimeExceeded", spot_mod.MAX_WAIT_EXCEEDED)
            self.secondary_status = self._stop_reason if self._stop_reason in limits else STOPPED
        else:
            self.secondary_status = outcome
        self.status = outcome

    def _finish_broken(self, error):
        reason = "InternalServerError: the local job runner failed: %s: %s" % (type(error).__name__, error)
        try:
            with self._lock:
                if not self._log_file.closed:
                    self._log_file.write(reason + "\n")
                    self._log_file.close()
        except Exception:
            pass
        self.result = self.result or TrainingResult(None, None, self.log_path, None)
        self.failure_reason = reason
        self.secondary_status = FAILED
        self.status = FAILED
