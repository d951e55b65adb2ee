"""Each host's ``/opt/ml``-like tree of a local training job: config files, channels and code.

For every host (``algo-1`` … ``algo-N``) the job gets a tree under the job directory::

    <job_dir>/<host>/input/config/{hyperparameters,resourceconfig,inputdataconfig}.json
    <job_dir>/<host>/input/data/<channel>  -> symlink to the file:// data (or to this host's
                                              files, for a ShardedByS3Key channel)
    <job_dir>/<host>/code/                 sourcedir.tar.gz extracted (source_dir + dependencies)
    <job_dir>/<host>/model/  output/data/  output/intermediate/  checkpoints/

which becomes the host's ``SAGEMAKER_BASE_DIR`` (see :mod:`smgluon_local.training_job`).
"""

import json
import os
import shutil

from smgluon_local.storage import fetch_to_dir
from smgluon_local.tarfiles import safe_extract

__all__ = ["host_names", "channel_source", "shard_files", "prepare_host"]

SUBMIT_DIR_PARAM = "sagemaker_submit_directory"
FULLY_REPLICATED, SHARDED_BY_KEY = "FullyReplicated", "ShardedByS3Key"


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
        raise ValueError("channel %r needs DataSource with S3DataSource or FileDataSource" % channel.get("ChannelName"))
    distribution = distribution or FULLY_REPLICATED
    if distribution not in (FULLY_REPLICATED, SHARDED_BY_KEY):
        raise ValueError(
            "channel %r: unknown distribution %r; use FullyReplicated or ShardedByS3Key"
            % (channel.get("ChannelName"), distribution)
        )
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
    return files[host_index * count // num_hosts : (host_index + 1) * count // num_hosts]


def _link_channel(name, uri, distribution, data_dir, work_dir, store, session, host_index, num_hosts):
    """Make ``data_dir/<name>`` show the channel's files (this host's share) without copying local data."""
    src = fetch_to_dir(uri, os.path.join(work_dir, "s3-data", name), store, session)
    target = os.path.join(data_dir, name)
    if distribution == SHARDED_BY_KEY and num_hosts > 1:
        files = _files_under(src) if os.path.isdir(src) else [os.path.basename(src)]
        base = src if os.path.isdir(src) else os.path.dirname(src)
        if len(files) < num_hosts:
            raise ValueError(
                "channel %r is ShardedByS3Key over %d hosts but holds %d file(s) (%s): every host "
                "needs at least one; split the data into more files or use FullyReplicated"
                % (name, num_hosts, len(files), uri)
            )
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
        entry = {
            "TrainingInputMode": channel.get("InputMode", "File"),
            "S3DistributionType": distribution,
            "RecordWrapperType": "None",
        }
        if "ContentType" in channel:
            entry["ContentType"] = channel["ContentType"]
        config[channel["ChannelName"]] = entry
    return config


def prepare_host(host_dir, host, hosts, instance_type, input_data_config, hyperparameters, work_dir, store, session):
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
    for d in (
        config_dir,
        data_dir,
        os.path.join(host_dir, "model"),
        os.path.join(host_dir, "output", "data"),
        # For scripts that write /opt/ml/checkpoints (AWS's examples do), as on SageMaker.
        os.path.join(host_dir, "checkpoints"),
        # Present before the toolkit starts, so it does not start syncing it to S3.
        os.path.join(host_dir, "output", "intermediate"),
    ):
        os.makedirs(d, exist_ok=True)
    _write_json(os.path.join(config_dir, "hyperparameters.json"), hyperparameters)
    _write_json(
        os.path.join(config_dir, "resourceconfig.json"),
        {
            "current_host": host,
            "hosts": hosts,
            "network_interface_name": "eth0",
            "current_instance_type": instance_type,
            "current_group_name": "homogeneousCluster",
            "instance_groups": [
                {"instance_group_name": "homogeneousCluster", "instance_type": instance_type, "hosts": hosts}
            ],
        },
    )
    _write_json(os.path.join(config_dir, "inputdataconfig.json"), _input_data_config(input_data_config))
    for channel in input_data_config:
        uri, distribution = channel_source(channel)
        _link_channel(
            channel["ChannelName"], uri, distribution, data_dir, work_dir, store, session, hosts.index(host), len(hosts)
        )
    _stage_code(hyperparameters, os.path.join(host_dir, "code"), work_dir, store, session)
