"""Run one SageMaker training job as local processes.

For every host the job gets an ``/opt/ml``-like tree under the job directory::

    <job_dir>/<host>/input/config/{hyperparameters,resourceconfig,inputdataconfig}.json
    <job_dir>/<host>/input/data/<channel>  -> symlink to the file:// data
    <job_dir>/<host>/code/                 sourcedir.tar.gz extracted (source_dir + dependencies)
    <job_dir>/<host>/model/  output/data/  output/intermediate/
    <job_dir>/job.log                      everything the job printed

and the SageMaker MXNet container's training entry point (sagemaker-training's
``train`` with ``SAGEMAKER_TRAINING_MODULE=sagemaker_mxnet_container.training:main``)
runs with ``SAGEMAKER_BASE_DIR`` pointing at the tree, so SM_* variables,
command-line arguments, ``requirements.txt`` installation and error reporting
are the toolkit's own.
"""

import datetime
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from urllib.parse import urlparse

from smgluon_local.storage import fetch_to_dir, require_credentials, uri_to_local_path
from smgluon_local.tarfiles import create_tar_gz, safe_extract

logger = logging.getLogger(__name__)

__all__ = ["TrainingJobFailed", "TrainingResult", "run_training", "final_metrics", "host_names", "stop_training"]

TRAINING_MODULE = "sagemaker_mxnet_container.training:main"
SUBMIT_DIR_PARAM = "sagemaker_submit_directory"
_TRAIN_CMD = "from sagemaker_training.cli.train import main; main()"
_RUNNING = {}  # job name -> its host processes, for stop_training


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


def _link_channel(name, uri, data_dir, work_dir, store, session):
    """Make ``data_dir/<name>`` show the channel's files without copying local data."""
    src = fetch_to_dir(uri, os.path.join(work_dir, "s3-data", name), store, session)
    target = os.path.join(data_dir, name)
    if os.path.isdir(src):
        os.symlink(src, target)
    else:
        # A single file: SageMaker puts the object inside the channel directory.
        os.makedirs(target)
        os.symlink(src, os.path.join(target, os.path.basename(src)))


def _input_data_config(input_data_config):
    config = {}
    for channel in input_data_config:
        entry = {"TrainingInputMode": channel.get("InputMode", "File"),
                 "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
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
        input_data_config (list of dict): The request's channels (with ``DataUri``).
        hyperparameters (dict): The request's hyperparameters (JSON-encoded strings).
        work_dir (str): The job directory (for S3 downloads shared by hosts).
        store (LocalS3): The local buckets.
        session (sagemaker.session.Session): For real S3 downloads.
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
        _link_channel(channel["ChannelName"], channel["DataUri"], data_dir, work_dir, store, session)
    _stage_code(hyperparameters, os.path.join(host_dir, "code"), work_dir, store, session)


def _process_env(host_dir, job_name, region, environment):
    env = dict(os.environ)
    # What the SageMaker MXNet training image sets in its Dockerfile.
    env.setdefault("PYTHONUNBUFFERED", "TRUE")
    env.setdefault("PYTHONDONTWRITEBYTECODE", "TRUE")
    env.update({str(k): str(v) for k, v in (environment or {}).items()})
    env.update({
        "SAGEMAKER_BASE_DIR": host_dir,
        "SAGEMAKER_TRAINING_MODULE": TRAINING_MODULE,
        "SM_STUDIO_LOCAL_MODE": "true",  # no wait for host names to resolve (single host)
        "TRAINING_JOB_NAME": job_name,
        "AWS_REGION": region,
    })
    return env


def _pump(proc, prefix, log_file, stream, lock):
    for raw in iter(proc.stdout.readline, b""):
        line = raw.decode("utf-8", errors="replace")
        with lock:
            log_file.write(prefix + line)
            log_file.flush()
            if stream is not None:
                stream.write(prefix + line)
                stream.flush()
    proc.stdout.close()


def _terminate(procs):
    for proc in procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def stop_training(job_name):
    """Stop a running job as StopTrainingJob does: SIGTERM to every host, SIGKILL after 10 s.

    The job's :func:`run_training` then raises :class:`TrainingJobFailed` (the
    processes exit non-zero); the caller records the job as Stopped.

    Args:
        job_name (str): The training job name.

    Returns:
        bool: False if no process of that job is running (not started yet, or finished).
    """
    procs = list(_RUNNING.get(job_name, ()))
    if not procs:
        return False
    _terminate(procs)
    return True


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


def _failure_reason(host_dirs, exit_code, log_path):
    for host_dir in host_dirs:
        failure = os.path.join(host_dir, "output", "failure")
        if os.path.isfile(failure):
            with open(failure, errors="replace") as f:
                text = f.read().strip()
            if text:
                return text
    with open(log_path, errors="replace") as f:
        tail = "".join(f.readlines()[-20:])
    return "AlgorithmError: training process exited with status %s. Last log lines:\n%s" % (exit_code, tail)


def run_training(job_dir, job_name, hosts, instance_type, input_data_config, output_data_config,
                 hyperparameters, environment, store, session, stream=None):
    """Run a training job to completion and package its artifacts.

    Args:
        job_dir (str): New directory for the job (must not exist yet).
        job_name (str): The training job name.
        hosts (list of str): Host names; one process tree per host.
        instance_type (str): ``local`` or ``local_gpu``.
        input_data_config (list of dict): Channels with ``ChannelName`` and ``DataUri``.
        output_data_config (dict): Has ``S3OutputPath`` (file://, local-bucket s3:// or s3://).
        hyperparameters (dict): JSON-encoded hyperparameters, as the SDK sends them.
        environment (dict): Extra environment variables from the request.
        store (LocalS3): The local buckets.
        session (sagemaker.session.Session): For region and real S3.
        stream (file): Where to echo the log (default ``sys.stdout``); False for silence.

    Returns:
        TrainingResult: Artifacts and log of a successful job.

    Raises:
        TrainingJobFailed: If any host's process exits non-zero; ``reason`` is the
            failure file's content as on SageMaker.
        FileExistsError: If ``job_dir`` exists.
    """
    stream = sys.stdout if stream is None else stream
    os.makedirs(os.path.dirname(job_dir), exist_ok=True)
    os.mkdir(job_dir)
    log_path = os.path.join(job_dir, "job.log")
    host_dirs = [os.path.join(job_dir, host) for host in hosts]
    region = session.boto_region_name
    with open(log_path, "w") as log_file:
        lock = threading.Lock()
        try:
            for host, host_dir in zip(hosts, host_dirs):
                prepare_host(host_dir, host, hosts, instance_type, input_data_config, hyperparameters,
                             job_dir, store, session)
        except Exception as e:
            log_file.write("Failed to set up the job: %s\n" % e)
            raise
        procs, pumps = [], []
        _RUNNING[job_name] = procs
        prefix_hosts = len(hosts) > 1
        try:
            for host, host_dir in zip(hosts, host_dirs):
                proc = subprocess.Popen(
                    [sys.executable, "-c", _TRAIN_CMD],
                    cwd=host_dir, env=_process_env(host_dir, job_name, region, environment),
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True,  # one process group per host, to stop it whole
                )
                procs.append(proc)
                pump = threading.Thread(target=_pump, daemon=True, args=(
                    proc, ("%s | " % host) if prefix_hosts else "", log_file,
                    stream if stream is not False else None, lock))
                pump.start()
                pumps.append(pump)
            exit_codes = [proc.wait() for proc in procs]
            for pump in pumps:
                pump.join()
        except BaseException:
            _terminate(procs)
            raise
        finally:
            _RUNNING.pop(job_name, None)
    exit_code = next((c for c in exit_codes if c != 0), 0)

    dest_dir, dest_uri, upload = _destination(output_data_config.get("S3OutputPath", ""), job_name,
                                              job_dir, store)
    staging = os.path.join(job_dir, "artifacts")
    model_src, output_src = os.path.join(staging, "model"), os.path.join(staging, "output")
    os.makedirs(model_src)
    os.makedirs(output_src)
    # As SageMaker does for a cluster, later hosts' files overwrite earlier ones of the same name.
    for host_dir in host_dirs:
        shutil.copytree(os.path.join(host_dir, "model"), model_src, dirs_exist_ok=True, symlinks=True)
        shutil.copytree(os.path.join(host_dir, "output", "data"), output_src, dirs_exist_ok=True,
                        symlinks=True)
    extra = {}
    failure_file = next((os.path.join(d, "output", "failure") for d in host_dirs
                         if os.path.isfile(os.path.join(d, "output", "failure"))), None)
    if exit_code != 0 and failure_file:
        extra["failure"] = failure_file
    os.makedirs(dest_dir, exist_ok=True)
    create_tar_gz(output_src, os.path.join(dest_dir, "output.tar.gz"), extra_files=extra)
    model_uri = None
    if exit_code == 0:
        create_tar_gz(model_src, os.path.join(dest_dir, "model.tar.gz"))
        model_uri = dest_uri + "/model.tar.gz"
    shutil.rmtree(staging)
    if upload is not None:
        bucket, key = upload
        require_credentials(session.boto_session, dest_uri)
        names = ["output.tar.gz"] + (["model.tar.gz"] if model_uri else [])
        for name in names:
            session.s3_resource.Object(bucket, key + "/" + name).upload_file(os.path.join(dest_dir, name))
    result = TrainingResult(model_uri, dest_uri + "/output.tar.gz", log_path, exit_code)
    if exit_code != 0:
        raise TrainingJobFailed(_failure_reason(host_dirs, exit_code, log_path), result)
    return result


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
