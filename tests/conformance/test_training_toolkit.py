"""sagemaker-mxnet-training-toolkit's local tests (scenarios 11 and 12), through ProcessSession.

Its ``mnist/mnist.py`` (Module API) looks for files named exactly ``images.gz`` and
``labels.gz`` in its train and test channels, trains, and saves a Module checkpoint
from the first host. Scenario 13 (requirements.txt) is in test_job_environment.py.
"""

import os
import tarfile

import pytest

from conformance.common import FRAMEWORK, ROLE, TRAINING
from smgluon_local.storage import uri_to_local_path

pytestmark = pytest.mark.slow

MNIST_PY = os.path.join(TRAINING, "mnist", "mnist.py")
CHECKPOINT = {"model-symbol.json", "model-shapes.json", "model-0000.params"}


def _fit(session, channels, instance_count, hyperparameters=None):
    from sagemaker.mxnet import MXNet

    estimator = MXNet(entry_point=MNIST_PY, role=ROLE, instance_count=instance_count, instance_type="local",
                      hyperparameters=dict(hyperparameters or {}, epochs=1), sagemaker_session=session,
                      **FRAMEWORK)
    estimator.fit({name: "file://" + path for name, path in channels.items()})
    return estimator


def _assert_artifacts(session, estimator):
    with tarfile.open(uri_to_local_path(estimator.model_data, session.local_s3)) as tar:
        assert CHECKPOINT <= set(tar.getnames())
    output = os.path.join(os.path.dirname(uri_to_local_path(estimator.model_data, session.local_s3)),
                          "output.tar.gz")
    assert os.path.isfile(output)


def test_single_machine(session, mnist_channels):
    """Scenario 11: one host; model.tar.gz holds the Module checkpoint and output.tar.gz exists."""
    _assert_artifacts(session, _fit(session, mnist_channels, 1))


def test_distributed_with_parameter_server(session, mnist_channels):
    """Scenario 12: two hosts, ``sagemaker_parameter_server_enabled``: the script's dist_sync kvstore gets
    its scheduler and servers; the first host saves the model."""
    estimator = _fit(session, mnist_channels, 2, {"sagemaker_parameter_server_enabled": True})
    _assert_artifacts(session, estimator)
    desc = session.sagemaker_client.describe_training_job(TrainingJobName=estimator.latest_training_job.name)
    assert desc["ResourceConfig"]["InstanceCount"] == 2
