"""The SageMaker Python SDK's own MXNet tests (v2.243.2), run through ProcessSession.

Scenarios 1 (serving from an S3 model) and 2 (deploy under the training job's name)
of ``tests/integ/test_local_mode.py``, and what ``tests/integ/test_mxnet.py`` adds on
real SageMaker: ``fit(wait=False)`` then ``MXNet.attach`` and deploy, deploying one
estimator twice, ``MXNetModel(model_data, entry_point=mnist.py)`` with
``update_endpoint``, the separate ``code/inference.py``, the custom-handlers script
and ``sourcedir.tar.gz``. One training job of the SDK's ``mnist.py`` (1 epoch on a
slice of MNIST, channels uploaded with ``session.upload_data``) serves every test
that needs a trained model.
"""

import os
import tarfile

import numpy as np
import pytest

from conformance.common import FRAMEWORK, INFERENCE, ROLE, SDK_MNIST
from smgluon_local.storage import uri_to_local_path

pytestmark = pytest.mark.slow

MNIST_PY = os.path.join(SDK_MNIST, "mnist.py")
ZEROS = np.zeros((1, 1, 28, 28))


def _estimator(session, **kwargs):
    from sagemaker.mxnet import MXNet

    kwargs.setdefault("entry_point", MNIST_PY)
    return MXNet(role=ROLE, instance_count=1, instance_type="local", hyperparameters={"epochs": 1},
                 sagemaker_session=session, **FRAMEWORK, **kwargs)


def _assert_scores(result):
    scores = np.array(result)
    assert scores.shape == (1, 10)
    assert abs(scores.sum() - 1) < 1e-4  # the checkpoint ends in SoftmaxOutput


@pytest.fixture(scope="module")
def uploaded(session, mnist_channels):
    """The train and test channels in the session's (local) default bucket, as the SDK's tests upload them."""
    return {name: session.upload_data(path=path, key_prefix="integ-test-data/mxnet_mnist/" + name)
            for name, path in mnist_channels.items()}


@pytest.fixture(scope="module")
def started_job(session, uploaded):
    """mnist.py started with ``fit(wait=False)``: the estimator, while the job may still run."""
    estimator = _estimator(session)
    estimator.fit(uploaded, wait=False)
    return estimator


@pytest.fixture(scope="module")
def trained(session, started_job):
    """The same estimator once its job completed."""
    started_job.latest_training_job.wait(logs="None")
    return started_job


def test_async_fit_then_attach_deploys_twice(session, started_job):
    """test_mxnet: fit(wait=False), attach (which waits), deploy; a second deploy makes a new model,
    endpoint config and endpoint."""
    from sagemaker.mxnet import MXNet

    estimator = MXNet.attach(started_job.latest_training_job.name, sagemaker_session=session)
    assert estimator.model_data == started_job.model_data
    names = []
    for _ in range(2):
        predictor = estimator.deploy(1, "local")
        try:
            _assert_scores(predictor.predict(ZEROS))
            config_name = session.sagemaker_client.describe_endpoint(
                EndpointName=predictor.endpoint_name)["EndpointConfigName"]
            config = session.sagemaker_client.describe_endpoint_config(EndpointConfigName=config_name)
            assert config["ProductionVariants"][0]["InstanceType"] == "local"
            names.append((predictor._get_model_names()[0], config_name, predictor.endpoint_name))
        finally:
            predictor.delete_model()
            predictor.delete_endpoint()
    (model1, config1, endpoint1), (model2, config2, endpoint2) = names
    assert model1 != model2 and config1 != config2 and endpoint1 != endpoint2


def test_serving_from_s3_model(trained):
    """Scenario 1: create_model() of a job whose output went to the (emulated) S3 bucket, deployed."""
    assert trained.model_data.startswith("s3://")
    predictor = trained.create_model().deploy(initial_instance_count=1, instance_type="local")
    try:
        _assert_scores(predictor.predict(ZEROS))
    finally:
        predictor.delete_endpoint()


def test_deploy_under_the_training_job_name(session, trained):
    """Scenario 2: estimator.deploy(endpoint_name=<training job name>), predict, delete. Deploying again
    under a name in use is SageMaker's ValidationException, and the endpoint serves on."""
    from botocore.exceptions import ClientError

    name = trained.latest_training_job.name
    predictor = trained.deploy(1, "local", endpoint_name=name)
    try:
        assert session.sagemaker_client.describe_endpoint(EndpointName=name)["EndpointStatus"] == "InService"
        _assert_scores(predictor.predict(ZEROS))
        with pytest.raises(ClientError, match="Cannot create already existing endpoint"):
            trained.deploy(1, "local", endpoint_name=name)
        _assert_scores(predictor.predict(ZEROS))
    finally:
        predictor.delete_endpoint()
    with pytest.raises(Exception, match="Could not find"):
        session.sagemaker_client.describe_endpoint(EndpointName=name)


def test_model_from_model_data_and_update_endpoint(session, trained):
    """test_mxnet: MXNetModel(<S3ModelArtifacts>, entry_point=mnist.py) deployed, then update_endpoint:
    a new endpoint config, the endpoint serving on."""
    from sagemaker.mxnet import MXNetModel, MXNetPredictor

    desc = session.sagemaker_client.describe_training_job(TrainingJobName=trained.latest_training_job.name)
    model = MXNetModel(desc["ModelArtifacts"]["S3ModelArtifacts"], ROLE, entry_point=MNIST_PY,
                       sagemaker_session=session, **FRAMEWORK)
    name = "conformance-update-endpoint"
    model.deploy(1, "local", endpoint_name=name)
    predictor = MXNetPredictor(endpoint_name=name, sagemaker_session=session)
    try:
        _assert_scores(predictor.predict(ZEROS))
        old_config = session.sagemaker_client.describe_endpoint(EndpointName=name)["EndpointConfigName"]
        predictor.update_endpoint(initial_instance_count=1, instance_type="local")
        new_config = session.sagemaker_client.describe_endpoint(EndpointName=name)["EndpointConfigName"]
        assert new_config != old_config
        variant = session.sagemaker_client.describe_endpoint_config(
            EndpointConfigName=new_config)["ProductionVariants"][0]
        assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("local", 1)
        _assert_scores(predictor.predict(ZEROS))

        # An update whose model cannot start leaves the endpoint on its last config, still serving.
        client = session.sagemaker_client
        container = dict(client.describe_model(ModelName=variant["ModelName"])["PrimaryContainer"],
                         ModelDataUrl="file:///nonexistent/model.tar.gz")
        client.create_model(ModelName="conformance-missing-model", PrimaryContainer=container)
        client.create_endpoint_config(EndpointConfigName="conformance-missing-model", ProductionVariants=[
            dict(variant, ModelName="conformance-missing-model")])
        with pytest.raises(FileNotFoundError, match="nonexistent"):
            client.update_endpoint(EndpointName=name, EndpointConfigName="conformance-missing-model")
        assert client.describe_endpoint(EndpointName=name)["EndpointConfigName"] == new_config
        _assert_scores(predictor.predict(ZEROS))
    finally:
        predictor.delete_endpoint()
    predictor.delete_model()
    with pytest.raises(Exception, match="Could not find (local )?model"):
        session.sagemaker_client.describe_model(ModelName=model.name)


def test_separate_inference_script(session, tmp_path):
    """test_mxnet's model.tar.gz (a Gluon export) served by code/inference.py (SymbolBlock.imports,
    transform_fn): the answer is the exported net's own argmax."""
    import mxnet as mx
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.mxnet import MXNetModel
    from sagemaker.serializers import JSONSerializer

    model_tar = os.path.join(SDK_MNIST, "model.tar.gz")
    with tarfile.open(model_tar) as tar:
        tar.extractall(tmp_path)
    net = mx.gluon.SymbolBlock.imports(str(tmp_path / "model-symbol.json"), ["data"],
                                       str(tmp_path / "model-0000.params"))
    pixels = np.random.RandomState(0).rand(2, 784)
    expected = net(mx.nd.array(pixels.reshape(-1, 1, 28, 28))).argmax(axis=1).asnumpy().tolist()

    model = MXNetModel("file://" + model_tar, ROLE, entry_point="inference.py",
                       source_dir=os.path.join(SDK_MNIST, "code"), sagemaker_session=session, **FRAMEWORK)
    predictor = model.deploy(1, "local", serializer=JSONSerializer(), deserializer=JSONDeserializer())
    try:
        assert predictor.predict({"inputs": pixels.tolist()}) == expected
    finally:
        predictor.delete_endpoint()


def test_custom_handlers_script_is_refused_as_by_the_container(session):
    """mnist_hosting_with_custom_handlers.py defines transform_fn and output_fn: the inference toolkit
    refuses the mix when the model loads, so every request fails with that reason; the server stays up."""
    from botocore.exceptions import ClientError
    from sagemaker.mxnet import MXNetModel

    model = MXNetModel("file://" + os.path.join(INFERENCE, "default_handlers", "model"), ROLE,
                       entry_point=os.path.join(SDK_MNIST, "mnist_hosting_with_custom_handlers.py"),
                       sagemaker_session=session, **FRAMEWORK)
    predictor = model.deploy(1, "local")
    try:
        for _ in range(2):
            with pytest.raises(ClientError, match="Cannot use transform_fn implementation in conjunction with"):
                predictor.predict(ZEROS)
    finally:
        predictor.delete_endpoint()


def test_source_dir_as_a_packed_archive(session, uploaded, tmp_path):
    """sourcedir.tar.gz (mxnet_mnist/mnist.py inside) as source_dir: from S3 it trains, with the entry
    point named by its path in the archive; a local archive is refused by the SDK, as with SageMaker;
    serving names the module the inference toolkit cannot import (it imports the file's base name)."""
    from botocore.exceptions import ClientError
    from sagemaker.mxnet import MXNetModel

    with pytest.raises(ValueError, match='No file named "mxnet_mnist/mnist.py" was found in directory'):
        _estimator(session, entry_point="mxnet_mnist/mnist.py",
                   source_dir="file://" + os.path.join(SDK_MNIST, "sourcedir.tar.gz")).fit(uploaded)

    source = session.upload_data(os.path.join(SDK_MNIST, "sourcedir.tar.gz"), key_prefix="conformance/code")
    estimator = _estimator(session, entry_point="mxnet_mnist/mnist.py", source_dir=source)
    estimator.fit(uploaded)
    with tarfile.open(uri_to_local_path(estimator.model_data, session.local_s3)) as tar:
        assert {"model-symbol.json", "model-0000.params", "model-shapes.json"} <= set(tar.getnames())

    model = MXNetModel(estimator.model_data, ROLE, entry_point="mxnet_mnist/mnist.py", source_dir=source,
                       sagemaker_session=session, **FRAMEWORK)
    predictor = model.deploy(1, "local")
    try:
        with pytest.raises(ClientError, match="No module named 'mnist'"):
            predictor.predict(ZEROS)
    finally:
        predictor.delete_endpoint()


def test_gluon_script_needs_the_internet(session):
    """mnist_gluon.py downloads MNIST itself (gluon.data.vision.MNIST): without network access the job
    fails, fit() raises with the toolkit's reason (as on SageMaker: ExecuteUserScriptError and the exit
    code) and the job's log has the download error; it does not hang. MXNET_GLUON_REPO points the
    download at a closed local port, so the test needs no network either way."""
    from sagemaker.exceptions import UnexpectedStatusException

    estimator = _estimator(session, entry_point=os.path.join(SDK_MNIST, "mnist_gluon.py"),
                           environment={"MXNET_GLUON_REPO": "http://127.0.0.1:9/"})
    with pytest.raises(UnexpectedStatusException, match="(?s)Failed.*ExecuteUserScriptError.*ExitCode 1") as info:
        estimator.fit()
    assert isinstance(info.value, RuntimeError)
    with open(session.sagemaker_client.training_job(estimator.latest_training_job.name).log_path) as f:
        log = f.read()
    assert "Connection refused" in log
