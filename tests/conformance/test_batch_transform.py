"""Scenario 7: the SageMaker Python SDK's local batch transform test (``test_local_transform_mxnet``).

As the SDK's test: fit ``check_env.py`` with ``environment={"MYVAR": "HELLO_WORLD"}``,
upload ``transform/``, then ``estimator.transformer(1, "local", assemble_with="Line",
max_payload=1, strategy="SingleRecord", output_path="file://<tmpdir>")``,
``transform(<uploaded>, content_type="text/csv", split_type="Line")`` and ``wait()``.

``check_env.py`` saves no model, so ``model.tar.gz`` is empty and the default MXNet
handler has nothing to load. The SDK's Docker local mode writes the model server's
500 answer into ``data.csv.out`` (it never checks the status); real SageMaker fails
the job, and so does ProcessSession, with the reason. The same transformer call on
``mnist.py`` trained briefly (a real Module checkpoint) writes ``data.csv.out``.
"""

import json
import os

import pytest

from conformance.common import FRAMEWORK, ROLE, SDK_MNIST

pytestmark = pytest.mark.slow


def _estimator(session, entry_point, **kwargs):
    from sagemaker.mxnet import MXNet

    return MXNet(
        entry_point=os.path.join(SDK_MNIST, entry_point),
        role=ROLE,
        instance_count=1,
        instance_type="local",
        sagemaker_session=session,
        **FRAMEWORK,
        **kwargs,
    )


def _fit(estimator, session, mnist_channels):
    estimator.fit(
        {
            name: session.upload_data(path, key_prefix="integ-test-data/mxnet_mnist/" + name)
            for name, path in mnist_channels.items()
        }
    )


def _transform(estimator, session, output_dir):
    """The SDK test's transformer call, on its own data (11 MNIST images as CSV rows)."""
    transform_input = session.upload_data(
        path=os.path.join(SDK_MNIST, "transform"), key_prefix="integ-test-data/mxnet_mnist/transform"
    )
    transformer = estimator.transformer(
        1, "local", assemble_with="Line", max_payload=1, strategy="SingleRecord", output_path="file://%s" % output_dir
    )
    transformer.transform(transform_input, content_type="text/csv", split_type="Line")
    transformer.wait()
    return transformer


def test_transform_of_the_empty_check_env_model_fails_with_the_reason(session, mnist_channels, tmp_path):
    from sagemaker.exceptions import UnexpectedStatusException

    estimator = _estimator(session, "check_env.py", environment={"MYVAR": "HELLO_WORLD"})
    _fit(estimator, session, mnist_channels)
    with pytest.raises(UnexpectedStatusException) as e:
        _transform(estimator, session, tmp_path)
    message = str(e.value)
    # SageMaker's MXNet handler service answers 503 "Prediction failed" when model_fn failed at start-up.
    assert "data.csv: record 1: Bad HTTP status received from algorithm: 503" in message
    assert (
        "could not load the model: ValueError: Failed to load model with default model_fn: missing file "
        "model-symbol.json" in message
    )
    assert "holds no model files" in message
    assert not os.path.exists(tmp_path / "data.csv.out")
    assert os.listdir(tmp_path) == []


def test_transform_of_a_trained_mnist_model_writes_data_csv_out(session, mnist_channels, tmp_path):
    estimator = _estimator(session, "mnist.py", hyperparameters={"epochs": 1})
    _fit(estimator, session, mnist_channels)
    transformer = _transform(estimator, session, tmp_path)
    with open(tmp_path / "data.csv.out") as f:
        lines = f.read().splitlines()
    with open(os.path.join(SDK_MNIST, "transform", "data.csv")) as f:
        assert len(lines) == len(f.read().splitlines())  # one answer per image, a line each
    for line in lines:
        [scores] = json.loads(line)  # the default handler's JSON: a batch of one row of 10 scores
        assert len(scores) == 10 and abs(sum(scores) - 1) < 1e-3
    desc = session.describe_transform_job(transformer.latest_transform_job.job_name)
    assert desc["TransformJobStatus"] == "Completed"
    assert (desc["BatchStrategy"], desc["MaxPayloadInMB"]) == ("SingleRecord", 1)
