"""ProcessSession: the SDK's LocalSession, running jobs and endpoints without Docker.

Usage is the SDK's own; only the session object changes::

    from sagemaker.mxnet import MXNet
    from smgluon_local import ProcessSession

    session = ProcessSession()
    est = MXNet(entry_point="mnist_mlp.py", source_dir="entry_points", dependencies=["lib/smgluon"],
                role="arn:aws:iam::111111111111:role/any", instance_count=1, instance_type="local",
                framework_version="1.9.0", py_version="py38", sagemaker_session=session)
    est.fit({"train": "file:///data/train", "test": "file:///data/test"})
    predictor = est.deploy(initial_instance_count=1, instance_type="local")

The session never calls AWS: telemetry is opted out in its SDK config, the
default bucket is a directory (so the SDK's own code staging packs
``source_dir`` with ``dependencies`` as SageMaker does), and the region and
credentials only matter for ``s3://`` data outside that bucket.
"""

import copy
import logging
import os
import sys

import boto3
import botocore.session
import sagemaker.utils
from sagemaker.config import load_sagemaker_config
from sagemaker.estimator import _TrainingJob
from sagemaker.local.local_session import LocalSession
from sagemaker.utils import get_config_value

from smgluon_local import sdk_config, sdk_logging, spot
from smgluon_local.client import ProcessRuntimeClient, ProcessSagemakerClient
from smgluon_local.job_log import follow_log
from smgluon_local.job_status import JobFailedError, check_job_status
from smgluon_local.storage import LazyClient, LocalS3, S3ResourceProxy, copy_tree_writable, uri_to_local_path
from smgluon_local.transform_job import TransformSessionMixin

logger = logging.getLogger(__name__)

__all__ = ["ProcessSession", "JobFailedError", "LOCAL_BUCKET", "DEFAULT_REGION", "default_root_dir"]

LOCAL_BUCKET = "smgluon-local"
DEFAULT_REGION = "us-west-2"
ROOT_ENV = "SMGLUON_LOCAL_ROOT"


def default_root_dir():
    """``$SMGLUON_LOCAL_ROOT``, else ``~/.smgluon/local``."""
    return os.environ.get(ROOT_ENV) or os.path.join(os.path.expanduser("~"), ".smgluon", "local")


class _BotoSession(boto3.Session):
    """A boto3 session whose S3 resources serve the local buckets from disk and whose S3 clients
    are created on first use (jobs with local data and code never need one)."""

    local_s3 = None

    def resource(self, service_name, *args, **kwargs):
        if service_name == "s3" and self.local_s3 is not None:
            return S3ResourceProxy(self.local_s3, lambda: super(_BotoSession, self).resource(
                service_name, *args, **kwargs))
        return super().resource(service_name, *args, **kwargs)

    def client(self, service_name, *args, **kwargs):
        if service_name == "s3" and self.local_s3 is not None:
            return LazyClient(lambda: super(_BotoSession, self).client(service_name, *args, **kwargs))
        return super().client(service_name, *args, **kwargs)


def _botocore_session(instance_metadata):
    """A botocore session; without ``instance_metadata`` it never probes the EC2/ECS
    metadata endpoints for credentials (a network call, and a slow one off EC2)."""
    session = botocore.session.Session()
    if not instance_metadata:
        resolver = session.get_component("credential_provider")
        for name in ("iam-role", "container-role"):
            try:
                resolver.remove(name)
            except Exception:  # provider missing in this botocore version
                pass
    return session


def _opted_out(config):
    config = copy.deepcopy(config) if config else {}
    config.setdefault("SchemaVersion", "1.0")
    modules = config.setdefault("SageMaker", {}).setdefault("PythonSDK", {}).setdefault("Modules", {})
    modules["TelemetryOptOut"] = True
    return config


class ProcessSession(TransformSessionMixin, LocalSession):
    """A SageMaker LocalSession that runs training jobs and endpoints as local processes.

    Args:
        root_dir (str): Where jobs, endpoints and the local bucket live (default
            ``$SMGLUON_LOCAL_ROOT`` or ``~/.smgluon/local``).
        region_name (str): AWS region for image URIs and real S3 (default: the boto3
            configuration's, else ``us-west-2``).
        boto_session (boto3.Session): Optional session whose credentials are used for
            real s3:// data.
        default_bucket (str): Name of the local, file-backed bucket.
        sagemaker_config (dict): SDK defaults config; telemetry is always opted out.
        log_stream (file): Where training logs are echoed (default ``sys.stdout``, when
            ``fit()`` or ``wait()`` follows the job; a file object gets every line live, as
            it is written, even for ``fit(wait=False)``; False for silence). The log is
            always kept in the job directory.
        serving_port (int): Fixed port for endpoints (default: the SDK's
            ``local.serving_port`` config, else a free port per endpoint).
        instance_metadata (bool): Let boto3 look for credentials in the EC2/ECS
            metadata service (default False: credentials come from the environment and
            ~/.aws only, and no request leaves the machine). Unless this is True, an
            unset ``boto3.DEFAULT_SESSION`` is set to such a session too, because the
            SDK's estimator constructor creates a boto3 client from it.
        verbose (bool): Show the SDK's config, telemetry and repacking notices (default
            None: hidden unless ``$SMGLUON_VERBOSE`` is set; see :mod:`smgluon_local.sdk_logging`).
        spot_interruptions: The interruption drill for managed spot jobs (``use_spot_instances=True``):
            the session reclaims the job's instances and restarts the job, once per item, after
            seconds of training (``30``, ``"30s"``, ``"2m"``) or completed checkpoint files
            (``"2 checkpoints"``), or per :class:`smgluon_local.spot.SpotInterruption` (which
            also sets the grace between SIGTERM and SIGKILL). See :mod:`smgluon_local.spot`.
    """

    def __init__(self, root_dir=None, region_name=None, boto_session=None, default_bucket=LOCAL_BUCKET,
                 sagemaker_config=None, log_stream=None, serving_port=None, instance_metadata=False, verbose=None,
                 spot_interruptions=None):
        if verbose is not None:
            sdk_logging.quiet(verbose)
        self.spot_interruptions = spot.parse_interruptions(spot_interruptions)
        self.root_dir = os.path.abspath(root_dir or default_root_dir())
        os.makedirs(self.root_dir, exist_ok=True)
        self.local_s3 = LocalS3(os.path.join(self.root_dir, "s3"), [default_bucket])
        self.log_stream = log_stream
        self._serving_port = serving_port
        if not instance_metadata and boto3.DEFAULT_SESSION is None:
            boto3.DEFAULT_SESSION = boto3.Session(botocore_session=_botocore_session(False))
        if boto_session is None:
            core = _botocore_session(instance_metadata)
            region = region_name or core.get_config_variable("region") or DEFAULT_REGION
            boto_session = _BotoSession(botocore_session=core, region_name=region)
        else:
            # Share the caller's credentials and region, with S3 served from disk for our bucket.
            boto_session = _BotoSession(botocore_session=boto_session._session,
                                        region_name=region_name or boto_session.region_name or DEFAULT_REGION)
        boto_session.local_s3 = self.local_s3
        if sagemaker_config is None:
            sagemaker_config = load_sagemaker_config()
        super().__init__(boto_session=boto_session, default_bucket=default_bucket,
                         disable_local_code=True, sagemaker_config=_opted_out(sagemaker_config))

    def _initialize(self, boto_session, sagemaker_client, sagemaker_runtime_client, **kwargs):
        super()._initialize(boto_session, sagemaker_client, sagemaker_runtime_client, **kwargs)
        # Code and models are staged through the (local) bucket, so source_dir and
        # dependencies arrive together as on SageMaker: local_code must stay off.
        if self.config and "local" in self.config:
            self.config["local"]["local_code"] = False
        self.s3_resource = S3ResourceProxy(self.local_s3, lambda: self.boto_session.resource(
            "s3", region_name=self._region_name))
        self.sagemaker_client = ProcessSagemakerClient(self)
        self.sagemaker_runtime_client = ProcessRuntimeClient(self.sagemaker_client)

    def default_bucket(self):
        """The local bucket's name (no AWS call)."""
        return self._default_bucket_name_override

    def serving_port(self):
        """Port for a new endpoint, or None for a free one."""
        if self._serving_port:
            return int(self._serving_port)
        port = get_config_value("local.serving_port", self.config)
        return int(port) if port else None

    def progress(self, message):
        """Report progress on long work (to stderr)."""
        print(message, file=sys.stderr, flush=True)

    def endpoint_url(self, endpoint_name):
        """Base URL (``http://127.0.0.1:PORT``) of a running endpoint."""
        return self.sagemaker_client.endpoint_url(endpoint_name)

    def wait_for_endpoint(self, endpoint, poll=30, live_logging=False):
        """create_endpoint returns once the server is healthy: check the status without sleeping."""
        return super().wait_for_endpoint(endpoint, poll=0, live_logging=False)

    def logs_for_job(self, job_name, wait=False, poll=5, log_type="All", timeout=None):
        """Print a training job's log from the start; with ``wait``, follow it until the job ends.

        As the SDK's: ``fit()`` and ``latest_training_job.wait()`` call this to stream the
        log, and a job that did not complete raises ``UnexpectedStatusException`` with
        its FailureReason. The log goes to ``log_stream`` (``sys.stdout`` by default;
        a ``log_stream`` object already got it live, so it is not printed twice).
        Ctrl-C while following stops the job.

        Returns:
            dict: The job's description.
        """
        job = self.sagemaker_client.training_job(job_name)
        stream = sys.stdout if self.log_stream is None else None
        if log_type not in ("All", "Training", True):
            stream = None
        try:
            if wait:
                follow_log(job.log_path, stream, lambda: job.done, timeout=timeout)
            elif stream is not None:
                follow_log(job.log_path, stream, lambda: True)
        except KeyboardInterrupt:
            job.kill()
            raise
        desc = self.sagemaker_client.describe_training_job(TrainingJobName=job_name)
        if wait:
            if not job.done:
                print("Timeout Exceeded. {} seconds elapsed.".format(timeout))
            check_job_status(job_name, desc, "TrainingJobStatus")
            spot.print_billing(desc)  # as the SDK: training and billable seconds, spot savings
        return desc

    def wait_for_tuning_job(self, job, poll=5):
        """Block until the local tuning job ends (a dot per ``poll`` seconds, as the SDK prints).

        Returns its description; raises ``UnexpectedStatusException`` if it failed.
        """
        from smgluon_local.tuning import wait_for_tuning_job

        return wait_for_tuning_job(self.sagemaker_client, job, poll)

    def wait_for_job(self, job, poll=5):
        """Wait (silently) until the training job ends; return its description.

        Raises ``UnexpectedStatusException`` if it failed. Ctrl-C stops the job.
        """
        training_job = self.sagemaker_client.training_job(job)
        try:
            while not training_job.wait(0.5):
                pass
        except KeyboardInterrupt:
            training_job.kill()
            raise
        desc = self.sagemaker_client.describe_training_job(TrainingJobName=job)
        check_job_status(job, desc, "TrainingJobStatus")
        return desc


_sdk_extract_model = sagemaker.utils._extract_model


def _extract_model(model_uri, sagemaker_session, tmp):
    """``sagemaker.utils._extract_model`` that also takes a directory of model files for a ProcessSession.

    ``Model.deploy()`` with an ``entry_point`` repacks ``model_data`` with the code, and
    the SDK untars it unconditionally, so a ``file://`` directory (which the SDK's local
    mode serves when nothing is repacked) raised IsADirectoryError. The directory's files
    are copied instead; archives, and every other session, go to the SDK's own code.
    """
    # s3:// stays the SDK's: SageMaker takes a model.tar.gz key there, not a prefix.
    if isinstance(sagemaker_session, ProcessSession) and not model_uri.lower().startswith("s3://"):
        path = uri_to_local_path(model_uri, sagemaker_session.local_s3)
        if not os.path.exists(path):
            raise FileNotFoundError("model_data %s: %s does not exist; pass model.tar.gz or a directory of "
                                    "model files" % (model_uri, path))
        if os.path.isdir(path):
            model_dir = os.path.join(tmp, "model")
            copy_tree_writable(path, model_dir)
            return model_dir
    return _sdk_extract_model(model_uri, sagemaker_session, tmp)


sagemaker.utils._extract_model = _extract_model


_sdk_add_spot_checkpoint_args = _TrainingJob._add_spot_checkpoint_args.__func__


def _add_spot_checkpoint_args(cls, local_mode, estimator, train_args):
    """The SDK's spot and checkpoint arguments, which its local mode refuses, passed on for a ProcessSession.

    ``use_spot_instances``, ``checkpoint_s3_uri`` and ``checkpoint_local_path`` reach
    CreateTrainingJob as on SageMaker (see :mod:`smgluon_local.spot`); every other session
    keeps the SDK's own checks.
    """
    if isinstance(estimator.sagemaker_session, ProcessSession):
        local_mode = False
    return _sdk_add_spot_checkpoint_args(cls, local_mode, estimator, train_args)


_TrainingJob._add_spot_checkpoint_args = classmethod(_add_spot_checkpoint_args)
sdk_config.install()
