"""Run one SageMaker training job as local processes, in the background.

For every host (``algo-1`` … ``algo-N``) the job gets an ``/opt/ml``-like tree
under the job directory::

    <job_dir>/<host>/input/config/{hyperparameters,resourceconfig,inputdataconfig}.json
    <job_dir>/<host>/input/data/<channel>  -> symlink to the file:// data (or to this host's
                                              files, for a ShardedByS3Key channel)
    <job_dir>/<host>/code/                 sourcedir.tar.gz extracted (source_dir + dependencies)
    <job_dir>/<host>/model/  output/data/  output/intermediate/
    <job_dir>/job.log                      everything the job printed (``<host> | `` prefixes
                                           when there are several hosts)

and on every host the SageMaker MXNet container's training entry point
(sagemaker-training's ``train`` with
``SAGEMAKER_TRAINING_MODULE=sagemaker_mxnet_container.training:main``) runs with
``SAGEMAKER_BASE_DIR`` pointing at the tree, so SM_* variables, command-line
arguments, ``requirements.txt`` installation, error reporting and, with
``distribution={"parameter_server": {"enabled": True}}``, the parameter-server
roles are the container's own. Host names resolve to 127.0.0.1 inside the job
(:mod:`smgluon_local.hostnames`); each job gets its own scheduler port
(:mod:`smgluon_local.toolkit`).

:class:`TrainingRun` prepares the trees in the caller's thread (so bad input is
an immediate error) and runs the processes in a background thread: the status
is ``InProgress`` until every host ends, ``Failed`` as soon as one host's
script dies (the other hosts are stopped, see :mod:`smgluon_local.cluster`),
``Stopped`` after :meth:`TrainingRun.stop` or ``MaxRuntimeInSeconds``.
:func:`run_training` is the blocking form. A job lives no longer than the
Python process that started it: the processes of unfinished jobs are stopped
at interpreter exit.
"""

import atexit
import datetime
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import weakref
from urllib.parse import urlparse

from smgluon_local import cluster as cluster_mod
from smgluon_local import hostnames
from smgluon_local.storage import fetch_to_dir, require_credentials, uri_to_local_path
from smgluon_local.tarfiles import create_tar_gz, safe_extract
from smgluon_local.toolkit import NUM_GPUS_ENV, PS_PORT_ENV, RUNNER_PID_ENV

logger = logging.getLogger(__name__)

__all__ = ["TrainingJobFailed", "TrainingResult", "TrainingRun", "run_training", "final_metrics", "host_names",
           "follow_log", "channel_source", "shard_files", "prepare_host", "stop_training", "FAULT_BOUND_S"]

TRAINING_MODULE = "sagemaker_mxnet_container.training:main"
SUBMIT_DIR_PARAM = "sagemaker_submit_directory"
PS_ENABLED_PARAM = "sagemaker_parameter_server_enabled"
_TRAIN_CMD = "from smgluon_local.toolkit import main; main()"
FULLY_REPLICATED, SHARDED_BY_KEY = "FullyReplicated", "ShardedByS3Key"
FAULT_BOUND_S = cluster_mod.FAULT_BOUND_S
STOP_GRACE_S = 10.0  # StopTrainingJob: SIGTERM, then this long to save a model, then SIGKILL
_PREFIX = re.compile(r"^(algo-\d+) \| ")

# Statuses, as DescribeTrainingJob reports them.
IN_PROGRESS, COMPLETED, FAILED, STOPPING, STOPPED = "InProgress", "Completed", "Failed", "Stopping", "Stopped"


class TrainingJobFailed(Exception):
    """The training process failed; carries the reason SageMaker would report.

    Attributes:
        reason (str): The failure file's content, or the exit status and log tail.
        result (TrainingResult): What was produced anyway (log, output.tar.gz).
    """

    def __init__(self, reason, result):
        super().__init__(reason)
        self.reason = reason
        self.result = result


class TrainingResult:
    """Where a finished job's artifacts and log are.

    Attributes:
        model_artifacts (str or None): URI of model.tar.gz (None when the job failed).
        output_artifacts (str or None): URI of output.tar.gz.
        log_path (str): The job's full log.
        exit_code (int): Exit status of the (first failing) host's process.
    """

    def __init__(self, model_artifacts, output_artifacts, log_path, exit_code):
        self.model_artifacts = model_artifacts
        self.output_artifacts = output_artifacts
        self.log_path = log_path
        self.exit_code = exit_code


def host_names(instance_count):
    """SageMaker's host names for a cluster: ``algo-1`` … ``algo-N``."""
    return ["algo-%d" % i for i in range(1, instance_count + 1)]


def _write_json(path, content):
    with open(path, "w") as f:
        json.dump(content, f)


def channel_source(channel):
    """The data URI and distribution type of a CreateTrainingJob channel.

    Args:
        channel (dict): An ``InputDataConfig`` entry (``DataSource`` with ``S3DataSource`` or
            ``FileDataSource``), or one already resolved with ``DataUri``.

    Returns:
        tuple(str, str): The URI and ``FullyReplicated`` or ``ShardedByS3Key``.

    Raises:
        ValueError: For a channel without a data source or an unknown distribution.
    """
    source = channel.get("DataSource") or {}
    if "S3DataSource" in source:
        uri = source["S3DataSource"]["S3Uri"]
        distribution = source["S3DataSource"].get("S3DataDistributionType")
    elif "FileDataSource" in source:
        uri = source["FileDataSource"]["FileUri"]
        distribution = source["FileDataSource"].get("FileDataDistributionType")
    elif "DataUri" in channel:
        uri, distribution = channel["DataUri"], channel.get("DistributionType")
    else:
        raise ValueError("channel %r needs DataSource with S3DataSource or FileDataSource"
                         % channel.get("ChannelName"))
    distribution = distribution or FULLY_REPLICATED
    if distribution not in (FULLY_REPLICATED, SHARDED_BY_KEY):
        raise ValueError("channel %r: unknown distribution %r; use FullyReplicated or ShardedByS3Key"
                         % (channel.get("ChannelName"), distribution))
    return uri, distribution


def _stage_code(hyperparameters, code_dir, work_dir, store, session):
    """Extract the submitted sourcedir.tar.gz (or copy a file:// dir) into ``code_dir``."""
    os.makedirs(code_dir, exist_ok=True)
    if SUBMIT_DIR_PARAM not in hyperparameters:
        return
    submit = json.loads(hyperparameters[SUBMIT_DIR_PARAM])
    src = fetch_to_dir(submit, os.path.join(work_dir, "code-download"), store, session)
    if os.path.isdir(src) and src.startswith(os.path.join(work_dir, "code-download")):
        files = os.listdir(src)
        src = os.path.join(src, files[0]) if len(files) == 1 else src
    if os.path.isdir(src):
        # A file:// source dir: copy it, as the container's /opt/ml/code is its own copy.
        shutil.copytree(src, code_dir, dirs_exist_ok=True, symlinks=True)
    else:
        safe_extract(src, code_dir)


def _files_under(directory):
    """Paths of the files under ``directory``, relative to it, in S3 key order."""
    found = []
    for dirpath, dirnames, filenames in os.walk(directory, followlinks=True):
        dirnames.sort()
        for name in filenames:
            found.append(os.path.relpath(os.path.join(dirpath, name), directory))
    return sorted(found, key=lambda p: p.replace(os.sep, "/"))


def shard_files(files, host_index, num_hosts):
    """This host's part of a ShardedByS3Key channel: a contiguous block of the sorted keys.

    Host ``i`` of ``n`` gets ``files[i*F//n : (i+1)*F//n]``: every file goes to
    exactly one host, counts differ by at most one, and files whose names sort
    together (``part-0-images``, ``part-0-labels``) stay together when ``F`` is a
    multiple of ``n``.

    Args:
        files (list of str): Keys (relative paths) in sorted order.
        host_index (int): 0-based host index.
        num_hosts (int): Number of hosts.

    Returns:
        list of str
    """
    count = len(files)
    return files[host_index * count // num_hosts:(host_index + 1) * count // num_hosts]


def _link_channel(name, uri, distribution, data_dir, work_dir, store, session, host_index, num_hosts):
    """Make ``data_dir/<name>`` show the channel's files (this host's share) without copying local data."""
    src = fetch_to_dir(uri, os.path.join(work_dir, "s3-data", name), store, session)
    target = os.path.join(data_dir, name)
    if distribution == SHARDED_BY_KEY and num_hosts > 1:
        files = _files_under(src) if os.path.isdir(src) else [os.path.basename(src)]
        base = src if os.path.isdir(src) else os.path.dirname(src)
        if len(files) < num_hosts:
            raise ValueError("channel %r is ShardedByS3Key over %d hosts but holds %d file(s) (%s): every host "
                             "needs at least one; split the data into more files or use FullyReplicated"
                             % (name, num_hosts, len(files), uri))
        os.makedirs(target)
        for rel in shard_files(files, host_index, num_hosts):
            link = os.path.join(target, rel)
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink(os.path.join(base, rel), link)
    elif os.path.isdir(src):
        os.symlink(src, target)
    else:
        # A single file: SageMaker puts the object inside the channel directory.
        os.makedirs(target)
        os.symlink(src, os.path.join(target, os.path.basename(src)))


def _input_data_config(input_data_config):
    config = {}
    for channel in input_data_config:
        _, distribution = channel_source(channel)
        entry = {"TrainingInputMode": channel.get("InputMode", "File"),
                 "S3DistributionType": distribution, "RecordWrapperType": "None"}
        if "ContentType" in channel:
            entry["ContentType"] = channel["ContentType"]
        config[channel["ChannelName"]] = entry
    return config


def prepare_host(host_dir, host, hosts, instance_type, input_data_config, hyperparameters,
                 work_dir, store, session):
    """Create one host's /opt/ml tree.

    Args:
        host_dir (str): The tree's root (becomes SAGEMAKER_BASE_DIR).
        host (str): This host's name.
        hosts (list of str): All host names of the job.
        instance_type (str): ``local`` or ``local_gpu``.
        input_data_config (list of dict): The request's channels.
        hyperparameters (dict): The request's hyperparameters (JSON-encoded strings).
        work_dir (str): The job directory (for S3 downloads shared by hosts).
        store (LocalS3): The local buckets.
        session (sagemaker.session.Session): For real S3 downloads.

    Raises:
        ValueError: For a ShardedByS3Key channel with fewer files than hosts.
        FileNotFoundError: For a channel whose data does not exist.
    """
    config_dir = os.path.join(host_dir, "input", "config")
    data_dir = os.path.join(host_dir, "input", "data")
    for d in (config_dir, data_dir, os.path.join(host_dir, "model"),
              os.path.join(host_dir, "output", "data"),
              # Present before the toolkit starts, so it does not start syncing it to S3.
              os.path.join(host_dir, "output", "intermediate")):
        os.makedirs(d, exist_ok=True)
    _write_json(os.path.join(config_dir, "hyperparameters.json"), hyperparameters)
    _write_json(os.path.join(config_dir, "resourceconfig.json"), {
        "current_host": host,
        "hosts": hosts,
        "network_interface_name": "eth0",
        "current_instance_type": instance_type,
        "current_group_name": "homogeneousCluster",
        "instance_groups": [{"instance_group_name": "homogeneousCluster",
                             "instance_type": instance_type, "hosts": hosts}],
    })
    _write_json(os.path.join(config_dir, "inputdataconfig.json"), _input_data_config(input_data_config))
    for channel in input_data_config:
        uri, distribution = channel_source(channel)
        _link_channel(channel["ChannelName"], uri, distribution, data_dir, work_dir, store, session,
                      hosts.index(host), len(hosts))
    _stage_code(hyperparameters, os.path.join(host_dir, "code"), work_dir, store, session)


def _visible_gpus(environ):
    """GPU ids a local_gpu job may use: ``CUDA_VISIBLE_DEVICES`` if set, else those nvidia-smi lists."""
    if environ.get("CUDA_VISIBLE_DEVICES", "").strip():
        return [g.strip() for g in environ["CUDA_VISIBLE_DEVICES"].split(",") if g.strip()]
    try:
        out = subprocess.check_output(["nvidia-smi", "--list-gpus"], stderr=subprocess.DEVNULL, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.decode().splitlines()) if line.startswith("GPU ")]


def _process_env(host_dir, job_name, region, environment):
    env = dict(os.environ)
    # What the SageMaker MXNet training image sets in its Dockerfile.
    env.setdefault("PYTHONUNBUFFERED", "TRUE")
    env.setdefault("PYTHONDONTWRITEBYTECODE", "TRUE")
    env.update({str(k): str(v) for k, v in (environment or {}).items()})
    env.update({
        "SAGEMAKER_BASE_DIR": host_dir,
        "SAGEMAKER_TRAINING_MODULE": TRAINING_MODULE,
        # sagemaker-training's wait for host names is skipped (they resolve at once here); the MXNet
        # toolkit still looks the scheduler host up itself.
        "SM_STUDIO_LOCAL_MODE": "true",
        "TRAINING_JOB_NAME": job_name,
        "AWS_REGION": region,
        RUNNER_PID_ENV: str(os.getpid()),  # the host's processes end with this one
    })
    return env


def _destination(output_path, job_name, job_dir, store):
    """Directory (and URI) where ``<job>/output/{model,output}.tar.gz`` go."""
    if not output_path:
        path = os.path.join(job_dir, "output")
        return path, "file://" + path, None
    parsed = urlparse(output_path)
    local = uri_to_local_path(output_path, store)
    suffix = "%s/output" % job_name
    if local is not None:
        uri = output_path.rstrip("/") + "/" + suffix
        return os.path.join(local, job_name, "output"), uri, None
    # Real S3: package locally, then upload.
    key = "/".join(p for p in (parsed.path.strip("/"), suffix) if p)
    return os.path.join(job_dir, "output"), "s3://%s/%s" % (parsed.netloc, key), (parsed.netloc, key)


def _log_tail(log_path, host=None, lines=20):
    with open(log_path, errors="replace") as f:
        text = f.readlines()
    if host is not None:
        text = [line for line in text if line.startswith(host + " | ")]
    return "".join(text[-lines:])


def _failure_reason(host_dir, host_proc, log_path, multi_host):
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
            what, _log_tail(log_path, host_proc.host if multi_host else None))
    if multi_host:
        text = "%s: %s" % (host_proc.host, text)
    return text


_ACTIVE = weakref.WeakSet()
_BY_NAME = {}  # job name -> its running TrainingRun, for stop_training


def stop_training(job_name):
    """Stop a running job as StopTrainingJob does (see :meth:`TrainingRun.stop`).

    Args:
        job_name (str): The training job name.

    Returns:
        bool: False if no job of that name is running (not started yet, or finished).
    """
    run = _BY_NAME.get(job_name)
    if run is None or run.done:
        return False
    run.stop()
    return True


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

    def __init__(self, job_dir, job_name, hosts, instance_type, input_data_config, output_data_config,
                 hyperparameters, environment, store, session, stream=None, max_runtime=None):
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
                prepare_host(host_dir, host, self.hosts, self.instance_type, self.input_data_config,
                             self.hyperparameters, self.job_dir, self.store, self.session)
        except Exception as e:
            self._log_file.write("Failed to set up the job: %s\n" % e)
            self._log_file.close()
            raise

    def start(self):
        """Starts the hosts in a background thread; returns at once."""
        self.start_time = datetime.datetime.now()
        _ACTIVE.add(self)
        _BY_NAME[self.job_name] = self
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
                        self._call(callback, host, line[match.end():] if match else line)
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

    def _job_env(self, host_index, base):
        env = hostnames.job_environment(self.job_dir, self.hosts, base)
        ps_enabled = str(self.hyperparameters.get(PS_ENABLED_PARAM, "false")).strip('"').lower() == "true"
        if ps_enabled:
            # Every parameter-server node announces 127.0.0.1 (without this, ps-lite picks the first
            # non-loopback interface and fails where there is none).
            env["DMLC_NODE_HOST"] = hostnames.LOOPBACK
            if "_ps_port" not in self.hyperparameters:
                if self._port is None:
                    self._port = cluster_mod.free_port()
                env[PS_PORT_ENV] = str(self._port)
        if self.instance_type == "local_gpu" and len(self.hosts) > 1:
            gpus = _visible_gpus(base)
            if gpus:
                # One GPU per host process, as one GPU instance per host on SageMaker.
                env["CUDA_VISIBLE_DEVICES"] = gpus[host_index % len(gpus)]
                env[NUM_GPUS_ENV] = "1"
        return env

    def _run(self):
        try:
            outcome, failed_host = self._supervise()
            self._finish(outcome, failed_host)
        except BaseException as e:  # the runner itself broke: report it as the job's failure
            logger.exception("training job %s: the local runner failed", self.job_name)
            self._finish_broken(e)
        finally:
            if self._port is not None:
                cluster_mod.release_port(self._port)
            _ACTIVE.discard(self)
            _BY_NAME.pop(self.job_name, None)
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
        cluster = cluster_mod.Cluster(self.job_dir, self._log_file, self._on_line, self._lock)
        cluster.prefix = len(self.hosts) > 1
        self._cluster = cluster
        grace = cluster_mod.TERM_GRACE_S
        try:
            for index, (host, host_dir) in enumerate(zip(self.hosts, self.host_dirs)):
                if self._stop.is_set():
                    break
                env = _process_env(host_dir, self.job_name, region, self.environment)
                env.update(self._job_env(index, env))
                cluster.start(host, [sys.executable, "-c", _TRAIN_CMD], host_dir, env)
            self.secondary_status = "Training" if not self._stop.is_set() else STOPPING
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
            if deadline is not None and time.monotonic() > deadline:
                self._stop_reason = "MaxRuntimeExceeded"
                self.status, self.secondary_status = STOPPING, STOPPING
                return STOPPED, None
            self._stop.wait(cluster_mod.POLL_S)

    def _finish(self, outcome, failed_host):
        self.secondary_status = "Uploading"
        multi = len(self.hosts) > 1
        if outcome == FAILED:
            reason = _failure_reason(self.host_dirs[self.hosts.index(failed_host.host)], failed_host,
                                     self.log_path, multi)
            exit_code = failed_host.exit_code if failed_host.exit_code is not None else failed_host.role_failure[1]
        else:
            reason, exit_code = None, 0
        with self._lock:
            if outcome == FAILED and multi:
                self._log_file.write("%s: %s; the job failed and its other hosts were stopped.\n"
                                     % (failed_host.host, failed_host.describe_exit()))
            self._log_file.flush()
        failure_file = None
        if outcome == FAILED:
            failure_file = os.path.join(self.host_dirs[self.hosts.index(failed_host.host)], "output", "failure")
            failure_file = failure_file if os.path.isfile(failure_file) else None
        try:
            # A stopped job keeps what its script saved in its grace period (StopTrainingJob and
            # MaxRuntimeInSeconds: SIGTERM, then time to save the model "so the results of the
            # training are not lost"); a failed one has no model.
            result = self._package(outcome in (COMPLETED, STOPPED), failure_file, exit_code)
        finally:
            self._log_file.close()
        self.result = result
        self.failure_reason = reason
        if outcome == STOPPED:
            self.secondary_status = self._stop_reason if self._stop_reason == "MaxRuntimeExceeded" else STOPPED
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

    def _package(self, with_model, failure_file, exit_code):
        """Packs model.tar.gz (from the first host) and output.tar.gz, and uploads them if needed."""
        dest_dir, dest_uri, upload = _destination(self.output_data_config.get("S3OutputPath", ""),
                                                  self.job_name, self.job_dir, self.store)
        staging = os.path.join(self.job_dir, "artifacts")
        model_src, output_src = os.path.join(staging, "model"), os.path.join(staging, "output")
        os.makedirs(model_src)
        os.makedirs(output_src)
        # The first host is the cluster's chief: the model comes from it (the workloads save there
        # only), and its output files win over the other hosts' files of the same name.
        shutil.copytree(os.path.join(self.host_dirs[0], "model"), model_src, dirs_exist_ok=True, symlinks=True)
        for host, host_dir in zip(self.hosts[1:], self.host_dirs[1:]):
            extra = sorted(os.listdir(os.path.join(host_dir, "model")))
            if extra:
                logger.warning("training job %s: %s wrote %s to its model directory; model.tar.gz holds "
                               "%s's model only", self.job_name, host, ", ".join(extra[:5]), self.hosts[0])
        for host_dir in reversed(self.host_dirs):
            shutil.copytree(os.path.join(host_dir, "output", "data"), output_src, dirs_exist_ok=True,
                            symlinks=True)
        os.makedirs(dest_dir, exist_ok=True)
        create_tar_gz(output_src, os.path.join(dest_dir, "output.tar.gz"),
                      extra_files={"failure": failure_file} if failure_file else None)
        model_uri = None
        if with_model:
            create_tar_gz(model_src, os.path.join(dest_dir, "model.tar.gz"))
            model_uri = dest_uri + "/model.tar.gz"
        shutil.rmtree(staging)
        if upload is not None:
            bucket, key = upload
            require_credentials(self.session.boto_session, dest_uri)
            for name in ["output.tar.gz"] + (["model.tar.gz"] if model_uri else []):
                self.session.s3_resource.Object(bucket, key + "/" + name).upload_file(os.path.join(dest_dir, name))
        return TrainingResult(model_uri, dest_uri + "/output.tar.gz", self.log_path, exit_code)


def run_training(job_dir, job_name, hosts, instance_type, input_data_config, output_data_config,
                 hyperparameters, environment, store, session, stream=None, max_runtime=None):
    """Run a training job to completion and package its artifacts (the blocking form of :class:`TrainingRun`).

    Args:
        job_dir, job_name, hosts, instance_type, input_data_config, output_data_config,
        hyperparameters, environment, store, session, max_runtime: as for :class:`TrainingRun`.
        stream (file): Where to echo the log (default ``sys.stdout``); False for silence.

    Returns:
        TrainingResult: Artifacts and log of a successful (or stopped) job.

    Raises:
        TrainingJobFailed: If any host's process exits non-zero; ``reason`` is the
            failure file's content as on SageMaker.
        FileExistsError: If ``job_dir`` exists.
        KeyboardInterrupt: After stopping the job's processes.
    """
    stream = sys.stdout if stream is None else stream
    run = TrainingRun(job_dir, job_name, hosts, instance_type, input_data_config, output_data_config,
                      hyperparameters, environment, store, session, stream=stream, max_runtime=max_runtime)
    run.prepare()
    run.start()
    try:
        while not run.wait(0.5):
            pass
    except BaseException:
        run.kill()
        raise
    if run.status == FAILED:
        raise TrainingJobFailed(run.failure_reason, run.result)
    return run.result


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
