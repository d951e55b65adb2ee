"""The environment of a local training job's host processes.

On every host the SageMaker MXNet container's training entry point
(sagemaker-training's ``train`` with
``SAGEMAKER_TRAINING_MODULE=sagemaker_mxnet_container.training:main``) runs with
``SAGEMAKER_BASE_DIR`` pointing at the host's tree (:mod:`smgluon_local.host_tree`),
so SM_* variables, command-line arguments, ``requirements.txt`` installation, error
reporting and the parameter-server roles are the container's own.
"""

import os
import subprocess

from smgluon_local import hostnames, optml, requirements
from smgluon_local.toolkit import NUM_GPUS_ENV, PS_PORT_ENV, RUNNER_PID_ENV

__all__ = ["process_env", "host_env", "visible_gpus"]

TRAINING_MODULE = "sagemaker_mxnet_container.training:main"
PS_ENABLED_PARAM = "sagemaker_parameter_server_enabled"


def visible_gpus(environ):
    """GPU ids a local_gpu job may use: ``CUDA_VISIBLE_DEVICES`` if set, else those nvidia-smi lists."""
    if environ.get("CUDA_VISIBLE_DEVICES", "").strip():
        return [g.strip() for g in environ["CUDA_VISIBLE_DEVICES"].split(",") if g.strip()]
    try:
        out = subprocess.check_output(["nvidia-smi", "--list-gpus"], stderr=subprocess.DEVNULL, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.decode().splitlines()) if line.startswith("GPU ")]


def process_env(host_dir, job_name, region, environment):
    """A host process's environment: ours, the image's defaults, the request's, then the container's own.

    Args:
        host_dir (str): The host's tree (``SAGEMAKER_BASE_DIR``).
        job_name (str): The training job name.
        region (str): The session's region.
        environment (dict): The request's Environment.

    Returns:
        dict
    """
    env = dict(os.environ)
    # What the SageMaker MXNet training image sets in its Dockerfile.
    env.setdefault("PYTHONUNBUFFERED", "TRUE")
    env.setdefault("PYTHONDONTWRITEBYTECODE", "TRUE")
    env.update({str(k): str(v) for k, v in (environment or {}).items()})
    env.update(
        {
            "SAGEMAKER_BASE_DIR": host_dir,
            "SAGEMAKER_TRAINING_MODULE": TRAINING_MODULE,
            # sagemaker-training's wait for host names is skipped (they resolve at once here); the MXNet
            # toolkit still looks the scheduler host up itself.
            "SM_STUDIO_LOCAL_MODE": "true",
            "TRAINING_JOB_NAME": job_name,
            "AWS_REGION": region,
            RUNNER_PID_ENV: str(os.getpid()),  # the host's processes end with this one
        }
    )
    return env


def host_env(job_dir, hosts, host_index, host_dir, instance_type, hyperparameters, base, root, ps_port):
    """What one host's processes get on top of :func:`process_env`'s environment ``base``.

    Host names that resolve to 127.0.0.1, the tree seen as ``/opt/ml``, the shared
    requirements cache, the parameter server's address and, for several
    ``local_gpu`` hosts, one GPU each.

    Args:
        job_dir (str): The job directory.
        hosts (list of str): All host names of the job.
        host_index (int): This host's index in ``hosts``.
        host_dir (str): This host's tree.
        instance_type (str): ``local`` or ``local_gpu``.
        hyperparameters (dict): The request's hyperparameters (JSON-encoded strings).
        base (dict): The environment so far.
        root (str): The session's root directory (holds the requirements cache).
        ps_port (callable): Returns the job's scheduler port; called only when the job needs one.

    Returns:
        dict: The variables to add to ``base``.
    """
    env = hostnames.job_environment(job_dir, hosts, base)
    env[requirements.CACHE_ENV] = os.path.join(root, "requirements")
    env.update(optml.host_environment(host_dir))
    ps_enabled = str(hyperparameters.get(PS_ENABLED_PARAM, "false")).strip('"').lower() == "true"
    if ps_enabled:
        # Every parameter-server node announces 127.0.0.1 (without this, ps-lite picks the first
        # non-loopback interface and fails where there is none).
        env["DMLC_NODE_HOST"] = hostnames.LOOPBACK
        if "_ps_port" not in hyperparameters:
            env[PS_PORT_ENV] = str(ps_port())
    if instance_type == "local_gpu" and len(hosts) > 1:
        gpus = visible_gpus(base)
        if gpus:
            # One GPU per host process, as one GPU instance per host on SageMaker.
            env["CUDA_VISIBLE_DEVICES"] = gpus[host_index % len(gpus)]
            env[NUM_GPUS_ENV] = "1"
    return env
