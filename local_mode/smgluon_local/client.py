"""SageMaker API clients that carry out requests with local processes.

:class:`ProcessSagemakerClient` is the SDK's ``LocalSagemakerClient`` with the
Docker-backed parts swapped: training jobs and endpoints use
:class:`~smgluon_local.container.ProcessContainer`. Models and endpoint
configs, request validation and the describe calls are the SDK's own.
:class:`ProcessRuntimeClient` posts ``invoke_endpoint`` to the endpoint's own
port and raises the runtime API's ``ModelError`` for non-2xx answers.
"""

import atexit
import copy
import datetime
import logging
import weakref

from botocore.exceptions import ClientError
from sagemaker.local.entities import _LocalEndpoint, _LocalTrainingJob
from sagemaker.local.local_session import LocalSagemakerClient
from sagemaker.utils import format_tags

from smgluon_local import spot
from smgluon_local.container import ProcessContainer
from smgluon_local.host_tree import channel_source
from smgluon_local.job_log import final_metrics
from smgluon_local.job_status import COMPLETED, FAILED
from smgluon_local.transform_job import TransformClientMixin
from smgluon_local.tuning import TuningClientMixin

logger = logging.getLogger(__name__)

__all__ = ["ProcessSagemakerClient", "ProcessRuntimeClient", "ProcessTrainingJob", "ProcessEndpoint"]


def _not_found(operation, what):
    return ClientError({"Error": {"Code": "ValidationException", "Message": "Could not find %s" % what}},
                       operation)


class ProcessTrainingJob(_LocalTrainingJob):
    """The SDK's local training job, run in the background, plus Failed/Stopped statuses, FailureReason and metrics.

    Args:
        container (ProcessContainer): Runs the job.
        metric_definitions (list of dict): From AlgorithmSpecification.MetricDefinitions.
        hyperparameters (dict): The request's hyperparameters, echoed by describe.

    Attributes:
        state (str): The SDK's states (``Training`` while it runs), then ``Completed``,
            ``Failed`` or ``Stopped``.
        run (smgluon_local.training_job.TrainingRun): The running job (its log, its processes).
    """

    _FAILED = "Failed"
    _STOPPED = "Stopped"

    def __init__(self, container, metric_definitions=None, hyperparameters=None):
        super().__init__(container)
        self.metric_definitions = metric_definitions or []
        self.hyperparameters = hyperparameters or {}
        self.failure_reason = None
        self.metrics = []
        self.output_artifacts = None
        self.log_path = None
        self.request = {}  # the rest of the CreateTrainingJob request, echoed by describe
        self.stop_requested = False
        self.run = None

    def start(self, input_data_config, output_data_config, hyperparameters, environment, job_name):
        """Set the job up and start it in the background (CreateTrainingJob); returns once it runs.

        Bad channels or code raise here, before the job exists; a failing script
        later gives status Failed. The log is echoed live only to a session
        ``log_stream`` object; otherwise :meth:`ProcessSession.logs_for_job` prints it.
        """
        for channel in input_data_config:
            # As the SDK's _LocalTrainingJob, and ShardedByS3Key is supported too.
            channel["DataUri"], _ = channel_source(channel)
        self.training_job_name = job_name
        self.output_data_config = output_data_config
        self.environment = environment
        self.start_time = datetime.datetime.now()
        self.state = self._TRAINING
        max_runtime = (self.request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
        stream = self.container.sagemaker_session.log_stream
        managed = spot.from_request(self.request, getattr(self.container.sagemaker_session, "spot_interruptions", ()))
        self.run = self.container.start_training(
            input_data_config, output_data_config, hyperparameters, environment, job_name, max_runtime=max_runtime,
            stream=stream if stream not in (None, False) else False, spot=managed)
        self.log_path = self.run.log_path
        self.run.add_done_callback(self._ended)
        if self.stop_requested:
            self.run.stop()

    def _ended(self, run):
        result = run.result
        self.output_artifacts = result.output_artifacts if result else None
        self.log_path = run.log_path
        self.metrics = final_metrics(run.log_path, self.metric_definitions)
        self.model_artifacts = result.model_artifacts if result else None  # None when the job failed
        self.failure_reason = run.failure_reason if run.status == FAILED else None
        self.end_time = datetime.datetime.now()
        self.state = {COMPLETED: self._COMPLETED, FAILED: self._FAILED}.get(run.status, self._STOPPED)

    @property
    def done(self):
        """bool: whether the job ended (and its status, metrics and artifacts are final)."""
        return self.run is not None and self.run.done

    def wait(self, timeout=None):
        """Blocks until the job ended, or ``timeout`` seconds; returns whether it ended."""
        return self.run.wait(timeout) if self.run is not None else True

    def describe(self):
        """DescribeTrainingJob's answer."""
        response = super().describe()
        status = {"Training": "InProgress", "Starting": "InProgress"}.get(self.state, self.state)
        if status == "InProgress" and self.stop_requested:
            status = "Stopping"
        response["TrainingJobStatus"] = status
        secondary = self.run.secondary_status if self.run is not None else "Starting"
        response["SecondaryStatus"] = status if status in ("Completed", "Failed") else secondary
        response["HyperParameters"] = self.hyperparameters
        response["FinalMetricDataList"] = self.metrics
        response["AlgorithmSpecification"]["TrainingImage"] = self.container.image
        response["AlgorithmSpecification"]["MetricDefinitions"] = self.metric_definitions
        response["ResourceConfig"]["InstanceType"] = self.container.instance_type
        if self.failure_reason is not None:
            response["FailureReason"] = self.failure_reason
        if self.model_artifacts is None:
            response.pop("ModelArtifacts", None)
        # What Estimator.attach() reads (RoleArn, StoppingCondition, VolumeSizeInGB, ...), as requested.
        for key, value in self.request.items():
            response.setdefault(key, copy.deepcopy(value))
        for key in ("ResourceConfig", "AlgorithmSpecification"):
            response[key] = {**self.request.get(key, {}), **response[key]}
        response["OutputDataConfig"] = {"KmsKeyId": "", **(response["OutputDataConfig"] or {})}
        response.update(spot.describe_fields(self.run))  # status transitions, training and billable seconds
        return response

    def stop(self):
        """Stop the job (StopTrainingJob): it ends in status Stopped, with a model of what the script saved.

        Returns at once; a job still being set up stops as soon as it starts.
        """
        self.stop_requested = True
        if self.run is not None:
            self.run.stop()

    def kill(self):
        """Stop the job now, without grace for the script, and wait for it (Ctrl-C while waiting)."""
        self.stop_requested = True
        if self.run is not None:
            self.run.kill()


_RUNNING = weakref.WeakSet()


@atexit.register
def _stop_running_endpoints():
    # A local endpoint cannot outlive the Python process that started it: stop its
    # model server and workers rather than leave them orphaned.
    for endpoint in list(_RUNNING):
        try:
            endpoint.stop()
        except Exception:  # interpreter shutdown: best effort
            pass


def _model_data_uri(primary_container):
    """The container's ModelDataUrl, or its ModelDataSource's S3 URI (``model_data`` given as a dict).

    An uncompressed ModelDataSource is a key prefix of model files; ``container.serve``
    serves a directory as the model's files, so both forms need nothing more.

    Raises:
        ValueError: For a ModelDataSource that is not an S3DataSource.
    """
    if primary_container.get("ModelDataUrl") or not primary_container.get("ModelDataSource"):
        return primary_container.get("ModelDataUrl")
    source = primary_container["ModelDataSource"].get("S3DataSource")
    if not source or not source.get("S3Uri"):
        raise ValueError("ModelDataSource %r: ProcessSession serves an S3DataSource with an S3Uri only"
                         % primary_container["ModelDataSource"])
    return source["S3Uri"]


class ProcessEndpoint(_LocalEndpoint):
    """The SDK's local endpoint, served by a local model server on its own port."""

    def stop(self):
        """Stop the model server and all its workers."""
        _RUNNING.discard(self)
        super().stop()

    def serve(self):
        """Start the model server and wait until it is healthy."""
        image = self.primary_container["Image"]
        instance_type = self.production_variant["InstanceType"]
        instance_count = self.production_variant["InitialInstanceCount"]
        self.create_time = datetime.datetime.now()
        self.container = ProcessContainer(instance_type, instance_count, image, self.local_session)
        try:
            _RUNNING.add(self)
            self.container.serve(_model_data_uri(self.primary_container),
                                 self.primary_container.get("Environment") or {}, endpoint_name=self.name)
        except BaseException:
            _RUNNING.discard(self)
            self.state = _LocalEndpoint._FAILED
            raise
        self.state = _LocalEndpoint._IN_SERVICE

    @property
    def url(self):
        """Base URL of the model server (None before it started)."""
        server = self.container.server if self.container else None
        return server.url if server and server.port else None


class ProcessSagemakerClient(TransformClientMixin, TuningClientMixin, LocalSagemakerClient):
    """A LocalSagemakerClient whose training jobs and endpoints are local processes.

    Hyperparameter tuning jobs come from :class:`~smgluon_local.tuning.TuningClientMixin`, batch
    transform jobs from :class:`~smgluon_local.transform_job.TransformClientMixin`.
    """

    def create_training_job(self, TrainingJobName, AlgorithmSpecification, OutputDataConfig,  # noqa: N803
                            ResourceConfig, InputDataConfig=None, Environment=None, **kwargs):
        """Start a training job (CreateTrainingJob); it runs in the background.

        Set-up errors (a missing channel, bad code) raise here. A script that fails
        gives a job in status Failed; the SDK's wait then raises
        ``UnexpectedStatusException`` with the failure reason, as on SageMaker.

        Returns:
            dict: ``{"TrainingJobArn": ...}``.
        """
        for key in ("ExperimentConfig", "VpcConfig"):
            if kwargs.get(key):
                logger.warning("%s is ignored by ProcessSession.", key)
        spot.validate_request(kwargs, getattr(self.sagemaker_session, "spot_interruptions", ()))
        container = ProcessContainer(ResourceConfig["InstanceType"], ResourceConfig["InstanceCount"],
                                     AlgorithmSpecification["TrainingImage"],
                                     sagemaker_session=self.sagemaker_session,
                                     container_entrypoint=AlgorithmSpecification.get("ContainerEntrypoint"),
                                     container_arguments=AlgorithmSpecification.get("ContainerArguments"))
        hyperparameters = kwargs.get("HyperParameters") or {}
        job = ProcessTrainingJob(container, AlgorithmSpecification.get("MetricDefinitions"), hyperparameters)
        job.request = copy.deepcopy(dict(kwargs, TrainingJobName=TrainingJobName, ResourceConfig=ResourceConfig,
                                         AlgorithmSpecification=AlgorithmSpecification,
                                         InputDataConfig=InputDataConfig or [], Environment=Environment or {}))
        LocalSagemakerClient._training_jobs[TrainingJobName] = job
        logger.info("Starting training job %s", TrainingJobName)
        try:
            job.start(InputDataConfig or [], OutputDataConfig, hyperparameters, Environment or {},
                      TrainingJobName)
        except BaseException:
            LocalSagemakerClient._training_jobs.pop(TrainingJobName, None)
            raise
        return {"TrainingJobArn": job.describe()["TrainingJobArn"]}

    def training_job(self, TrainingJobName, operation="DescribeTrainingJob"):  # noqa: N803
        """The :class:`ProcessTrainingJob` of that name.

        Raises:
            botocore.exceptions.ClientError: ``ValidationException`` if there is none.
        """
        job = LocalSagemakerClient._training_jobs.get(TrainingJobName)
        if not isinstance(job, ProcessTrainingJob):
            raise _not_found(operation, "training job %s" % TrainingJobName)
        return job

    def stop_training_job(self, TrainingJobName):  # noqa: N803
        """Stop a running training job (StopTrainingJob); it ends in status Stopped.

        Raises:
            botocore.exceptions.ClientError: ``ValidationException`` if the job is
                unknown or no longer running.
        """
        job = LocalSagemakerClient._training_jobs.get(TrainingJobName)
        if job is None:
            raise _not_found("StopTrainingJob", "training job %s" % TrainingJobName)
        if not isinstance(job, ProcessTrainingJob) or job.state not in ("created", "Starting", "Training"):
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "The training job %s is not "
                                         "running (status %s)" % (TrainingJobName, job.state)}}, "StopTrainingJob")
        job.stop()

    def list_tags(self, ResourceArn, **kwargs):  # noqa: N803
        """ListTags, as ``Estimator.attach()`` calls it: local resources share one ARN, so no tags."""
        return {"Tags": []}

    def create_endpoint(self, EndpointName, EndpointConfigName, Tags=None):  # noqa: N803
        """Start a model server for the endpoint config's model (CreateEndpoint).

        Raises:
            botocore.exceptions.ClientError: ``ValidationException`` if an endpoint of that
                name exists, as on SageMaker (its model server would otherwise be left
                running unreachable); ``update_endpoint`` changes a running endpoint.
        """
        if EndpointName in LocalSagemakerClient._endpoints:
            raise ClientError({"Error": {"Code": "ValidationException", "Message": (
                'Cannot create already existing endpoint "%s"; delete it first, or call update_endpoint to '
                'serve another endpoint config' % EndpointName)}}, "CreateEndpoint")
        endpoint = ProcessEndpoint(EndpointName, EndpointConfigName, format_tags(Tags), self.sagemaker_session)
        LocalSagemakerClient._endpoints[EndpointName] = endpoint
        try:
            endpoint.serve()
        except BaseException:
            LocalSagemakerClient._endpoints.pop(EndpointName, None)
            raise

    def update_endpoint(self, EndpointName, EndpointConfigName):  # noqa: N803
        """Serve the endpoint from another endpoint config (UpdateEndpoint).

        As on SageMaker, the old model server keeps answering until the new one is
        healthy, then the endpoint switches to it; if the new one fails to start, the
        endpoint keeps its old config and the error is raised. With a fixed
        ``serving_port`` both cannot listen at once, so the old server stops first and
        is started again if the new one fails.

        Raises:
            botocore.exceptions.ClientError: ``ValidationException`` for an unknown
                endpoint or endpoint config.
        """
        old = LocalSagemakerClient._endpoints.get(EndpointName)
        if old is None:
            raise _not_found("UpdateEndpoint", "endpoint %s" % EndpointName)
        if EndpointConfigName not in LocalSagemakerClient._endpoint_configs:
            raise _not_found("UpdateEndpoint", "endpoint configuration %s" % EndpointConfigName)
        new = ProcessEndpoint(EndpointName, EndpointConfigName, old.tags, self.sagemaker_session)
        fixed_port = bool(self.sagemaker_session.serving_port())
        if fixed_port:
            old.stop()
        try:
            new.serve()
        except BaseException:
            if fixed_port:
                old.serve()
            raise
        LocalSagemakerClient._endpoints[EndpointName] = new
        old.stop()
        return {"EndpointArn": new.describe()["EndpointArn"]}

    def delete_endpoint(self, EndpointName):  # noqa: N803
        """Stop the endpoint's model server and every worker (DeleteEndpoint)."""
        endpoint = LocalSagemakerClient._endpoints.pop(EndpointName, None)
        if endpoint is not None:
            endpoint.stop()

    def endpoint_url(self, EndpointName):  # noqa: N803
        """Base URL of a running endpoint's model server.

        Raises:
            botocore.exceptions.ClientError: If the endpoint is unknown.
        """
        endpoint = LocalSagemakerClient._endpoints.get(EndpointName)
        if endpoint is None or not isinstance(endpoint, ProcessEndpoint) or endpoint.url is None:
            raise _not_found("invoke_endpoint", "local endpoint %s" % EndpointName)
        return endpoint.url

    def create_processing_job(self, *args, **kwargs):
        """Not supported."""
        raise NotImplementedError("Processing jobs are not supported by ProcessSession")


def _load_error_note(endpoint_name):
    # The model server answers every request with a bare "Prediction failed" when model_fn
    # failed at start-up; SageMaker's ModelError points to the log, so name the cause here.
    endpoint = LocalSagemakerClient._endpoints.get(endpoint_name)
    server = getattr(getattr(endpoint, "container", None), "server", None)
    if server is None or not server.load_error:
        return ""
    return " The model failed to load when the endpoint started: %s (log %s)" % (
        server.load_error.strip().splitlines()[-1], server.log_path)


class ProcessRuntimeClient:
    """``sagemaker-runtime`` for process endpoints: InvokeEndpoint over local HTTP.

    Args:
        sagemaker_client (ProcessSagemakerClient): Resolves endpoint names to ports.
    """

    def __init__(self, sagemaker_client):
        import urllib3

        self.sagemaker_client = sagemaker_client
        self.http = urllib3.PoolManager(maxsize=8)

    def invoke_endpoint(self, Body, EndpointName, ContentType=None, Accept=None,  # noqa: N803
                        CustomAttributes=None, TargetModel=None, TargetVariant=None, InferenceId=None,
                        **kwargs):
        """POST ``Body`` to the endpoint's /invocations.

        Returns:
            dict: ``{"Body": stream, "ContentType": ...}`` as boto3 returns it.

        Raises:
            botocore.exceptions.ClientError: ``ModelError`` when the model answers
                with a non-2xx status, as the SageMaker runtime does.
        """
        url = self.sagemaker_client.endpoint_url(EndpointName) + "/invocations"
        headers = {}
        if ContentType is not None:
            headers["Content-Type"] = ContentType
        if Accept is not None:
            headers["Accept"] = Accept
        if CustomAttributes is not None:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = CustomAttributes
        if isinstance(Body, str):
            Body = Body.encode("utf-8")
        r = self.http.request("POST", url, body=Body, headers=headers, preload_content=False)
        if r.status >= 300:
            text = r.data.decode("utf-8", errors="replace")
            r.release_conn()
            message = "Received client error (%d) from primary with message \"%s\"." % (r.status, text)
            raise ClientError({
                "Error": {"Code": "ModelError", "Message": message + _load_error_note(EndpointName)},
                "OriginalStatusCode": r.status, "OriginalMessage": text,
            }, "InvokeEndpoint")
        return {"Body": r, "ContentType": r.headers.get("Content-Type", Accept)}
