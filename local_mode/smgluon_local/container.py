"""A process-based replacement for the SDK's ``_SageMakerContainer``.

``sagemaker.local`` keeps its request handling (``LocalSagemakerClient``,
``_LocalTrainingJob``, ``_LocalEndpoint``) apart from the one class that runs
Docker Compose. :class:`ProcessContainer` has the part of that class's interface
the local client calls (``serve``, ``stop_serving`` and the same attributes;
training starts through :meth:`ProcessContainer.start_training`, which does
not block) and runs the container toolkits as local processes instead.
"""

import datetime
import os
import re
from urllib.parse import urlparse

from smgluon_local.endpoint import ModelServer
from smgluon_local.host_tree import host_names
from smgluon_local.storage import fetch_to_dir
from smgluon_local.training_job import TrainingRun

__all__ = ["ProcessContainer"]


def _safe_name(name):
    return re.sub(r"[^A-Za-z0-9._-]", "-", name)[:120]


class ProcessContainer:
    """Runs training jobs and endpoints as processes.

    Args:
        instance_type (str): ``local`` or ``local_gpu``.
        instance_count (int): Number of hosts.
        image (str): The image URI of the request (recorded, never pulled).
        sagemaker_session (smgluon_local.session.ProcessSession): The session (its root, bucket and log stream).
        container_entrypoint (list): Unsupported (remote functions); must be None.
        container_arguments (list): Unsupported; must be None.
    """

    def __init__(
        self,
        instance_type,
        instance_count,
        image,
        sagemaker_session,
        container_entrypoint=None,
        container_arguments=None,
    ):
        self.sagemaker_session = sagemaker_session
        self.instance_type = instance_type
        self.instance_count = instance_count
        self.image = image
        self.container_entrypoint = container_entrypoint
        self.container_arguments = container_arguments
        self.hosts = host_names(instance_count)
        self.container_root = None
        self.server = None

    def _check_entrypoint(self):
        if self.container_entrypoint or self.container_arguments:
            raise NotImplementedError(
                "ProcessSession runs framework containers only; ContainerEntrypoint "
                "(remote functions, pipeline steps) needs the SDK's Docker local mode"
            )

    def _job_dir(self, job_name):
        return os.path.join(self.sagemaker_session.root_dir, "jobs", _safe_name(job_name))

    def start_training(
        self,
        input_data_config,
        output_data_config,
        hyperparameters,
        environment,
        job_name,
        max_runtime=None,
        stream=False,
        spot=None,
    ):
        """Set a training job up and start its hosts in the background.

        The hosts' trees are prepared before this returns, so bad channels or code
        are raised here; the processes then run on their own.

        Args:
            input_data_config (list of dict): The request's channels.
            output_data_config (dict): The request's OutputDataConfig.
            hyperparameters (dict): JSON-encoded hyperparameters.
            environment (dict): The request's Environment.
            job_name (str): The training job name.
            max_runtime (float): ``StoppingCondition.MaxRuntimeInSeconds``.
            stream (file): Echo the log here as it is written (default: only job.log).
            spot (smgluon_local.spot.ManagedSpot): Checkpoint sync, spot limits and drill, if any.

        Returns:
            smgluon_local.training_job.TrainingRun: The running job.

        Raises:
            NotImplementedError: For a custom container entrypoint.
        """
        self._check_entrypoint()
        session = self.sagemaker_session
        self.container_root = self._job_dir(job_name)
        run = TrainingRun(
            self.container_root,
            job_name,
            self.hosts,
            self.instance_type,
            input_data_config,
            output_data_config,
            hyperparameters,
            environment,
            session.local_s3,
            session,
            stream=stream,
            max_runtime=max_runtime,
        )
        run.spot = spot
        run.prepare()
        run.start()
        return run

    def serve(self, model_dir, environment, endpoint_name=None):
        """Start the model server for ``model_dir`` (the request's ModelDataUrl).

        Args:
            model_dir (str): URI of model.tar.gz or of a directory of model files (file://, a
                plain path, local-bucket s3:// or s3://).
            environment (dict): The model's container environment.
            endpoint_name (str): Used to name the endpoint directory.
        """
        session = self.sagemaker_session
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        self.container_root = os.path.join(
            session.root_dir, "endpoints", _safe_name("%s-%s" % (endpoint_name or "endpoint", stamp))
        )
        model_tar = None
        if model_dir:
            model_tar = fetch_to_dir(
                model_dir, os.path.join(self.container_root + "-download"), session.local_s3, session
            )
            # A directory holding just one archive (a downloaded S3 prefix) stands for that archive;
            # any other directory is the model's files, unpacked, as the SDK's local mode mounts it.
            if os.path.isdir(model_tar):
                files = os.listdir(model_tar)
                if len(files) == 1 and files[0].endswith(".tar.gz"):
                    model_tar = os.path.join(model_tar, files[0])
        code_dir = None
        submit = environment.get("SAGEMAKER_SUBMIT_DIRECTORY", "")
        if urlparse(submit).scheme == "file":
            code_dir = os.path.abspath(urlparse(submit).netloc + urlparse(submit).path)
        port = session.serving_port()
        self.server = ModelServer(self.container_root, model_tar, environment, port=port, code_dir=code_dir)
        self.server.start(progress=session.progress)

    def stop_serving(self):
        """Stop the model server and all its workers."""
        if self.server:
            self.server.stop()
