"""The training job's environment in AWS's scenarios 3 (two hosts) and 13 (requirements.txt).

Scenario 3 runs the SDK's ``mnist.py``, which uses ``kvstore="dist_sync"`` on
several hosts: with the parameter server enabled it trains, as it must on
SageMaker; without it the job fails there too (no ``DMLC_*`` variables), and
the failure reason says what to pass. Scenario 13 is the training toolkit's
``requirements/`` source dir: ``entry.py`` imports ``pyfiglet``, which only its
``requirements.txt`` provides; it must be installed where only that job sees it.
"""

import os
import tarfile

import pytest
from local_helpers import fit_needing_package, pip_freeze

from conformance.common import FRAMEWORK, ROLE, SDK_MNIST, TRAINING

pytestmark = pytest.mark.slow

PS_HINT = 'distribution={"parameter_server": {"enabled": True}}'


def _mnist(session, **kwargs):
    from sagemaker.mxnet import MXNet

    return MXNet(
        entry_point=os.path.join(SDK_MNIST, "mnist.py"),
        role=ROLE,
        instance_count=2,
        instance_type="local",
        sagemaker_session=session,
        hyperparameters={"epochs": 1},
        **FRAMEWORK,
        **kwargs,
    )


def _file_channels(mnist_channels):
    return {name: "file://" + path for name, path in mnist_channels.items()}


def _local(session, uri):
    from smgluon_local.storage import uri_to_local_path

    return uri_to_local_path(uri, session.local_s3)


def test_distributed_with_parameter_server(session, mnist_channels):
    """Scenario 3, as it must run on SageMaker: two hosts, the parameter server enabled."""
    estimator = _mnist(session, distribution={"parameter_server": {"enabled": True}})
    estimator.fit(_file_channels(mnist_channels))
    with tarfile.open(_local(session, estimator.model_data)) as tar:
        names = set(tar.getnames())
    assert {"model-symbol.json", "model-0000.params"} <= names


def test_distributed_without_parameter_server_says_what_to_pass(session, mnist_channels):
    """Scenario 3 as the SDK's test writes it (no parameter server): a clear failure with the fix."""
    from sagemaker.exceptions import UnexpectedStatusException

    estimator = _mnist(session)
    with pytest.raises(UnexpectedStatusException) as raised:
        estimator.fit(_file_channels(mnist_channels))
    assert PS_HINT in str(raised.value)
    description = session.sagemaker_client.describe_training_job(TrainingJobName=estimator.latest_training_job.name)
    assert description["TrainingJobStatus"] == "Failed"
    assert PS_HINT in description["FailureReason"]


def test_requirements_txt(session):
    """Scenario 13: requirements.txt is installed for the job, never into the user's environment."""
    from sagemaker.mxnet import MXNet

    before = pip_freeze()
    estimator = MXNet(
        entry_point="entry.py",
        source_dir=os.path.join(TRAINING, "requirements"),
        role=ROLE,
        instance_count=1,
        instance_type="local",
        sagemaker_session=session,
        **FRAMEWORK,
    )
    fit_needing_package(estimator, "pyfiglet")
    with open(os.path.join(session.root_dir, "jobs", estimator.latest_training_job.name, "job.log")) as f:
        log = f.read()
    assert "installing into" in log
    # entry.py prints "hello, world!" in pyfiglet's standard font.
    assert "| |__   ___| | | ___" in log
    assert pip_freeze() == before
    with pytest.raises(ImportError):
        import pyfiglet  # noqa: F401,F811
