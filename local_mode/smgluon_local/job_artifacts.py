"""A local training job's artifacts: model.tar.gz and output.tar.gz, where they go."""

import logging
import os
import shutil
from urllib.parse import urlparse

from smgluon_local.storage import require_credentials, uri_to_local_path
from smgluon_local.tarfiles import create_tar_gz

logger = logging.getLogger(__name__)

__all__ = ["TrainingResult", "destination", "package"]


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


def destination(output_path, job_name, job_dir, store):
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


def package(
    job_dir, job_name, hosts, host_dirs, output_path, store, session, log_path, with_model, failure_file, exit_code
):
    """Packs model.tar.gz (from the first host) and output.tar.gz, and uploads them if needed.

    Args:
        job_dir (str): The job directory (the artifacts are staged there).
        job_name (str): The training job name.
        hosts (list of str): The job's host names; the first is the chief.
        host_dirs (list of str): Their trees, in the same order.
        output_path (str): ``OutputDataConfig.S3OutputPath`` (empty: under ``job_dir``).
        store (LocalS3): The local buckets.
        session (sagemaker.session.Session): For real S3.
        log_path (str): The job's log.
        with_model (bool): Pack model.tar.gz too (a failed job has no model).
        failure_file (str or None): The failing host's failure file, packed into output.tar.gz.
        exit_code (int): Recorded in the result.

    Returns:
        TrainingResult
    """
    dest_dir, dest_uri, upload = destination(output_path, job_name, job_dir, store)
    staging = os.path.join(job_dir, "artifacts")
    model_src, output_src = os.path.join(staging, "model"), os.path.join(staging, "output")
    os.makedirs(model_src)
    os.makedirs(output_src)
    # The first host is the cluster's chief: the model comes from it (the workloads save there
    # only), and its output files win over the other hosts' files of the same name.
    shutil.copytree(os.path.join(host_dirs[0], "model"), model_src, dirs_exist_ok=True, symlinks=True)
    for host, host_dir in zip(hosts[1:], host_dirs[1:]):
        extra = sorted(os.listdir(os.path.join(host_dir, "model")))
        if extra:
            logger.warning(
                "training job %s: %s wrote %s to its model directory; model.tar.gz holds %s's model only",
                job_name,
                host,
                ", ".join(extra[:5]),
                hosts[0],
            )
    for host_dir in reversed(host_dirs):
        shutil.copytree(os.path.join(host_dir, "output", "data"), output_src, dirs_exist_ok=True, symlinks=True)
    os.makedirs(dest_dir, exist_ok=True)
    create_tar_gz(
        output_src,
        os.path.join(dest_dir, "output.tar.gz"),
        extra_files={"failure": failure_file} if failure_file else None,
    )
    model_uri = None
    if with_model:
        create_tar_gz(model_src, os.path.join(dest_dir, "model.tar.gz"))
        model_uri = dest_uri + "/model.tar.gz"
    shutil.rmtree(staging)
    if upload is not None:
        bucket, key = upload
        require_credentials(session.boto_session, dest_uri)
        for name in ["output.tar.gz"] + (["model.tar.gz"] if model_uri else []):
            session.s3_resource.Object(bucket, key + "/" + name).upload_file(os.path.join(dest_dir, name))
    return TrainingResult(model_uri, dest_uri + "/output.tar.gz", log_path, exit_code)
