"""The SageMaker Python SDK's MXNet local-mode tests (v2.243.2, tests/integ/test_local_mode.py), scenarios 1, 4, 5, 6.

Scenarios 2 and the S3 half of 1 are in test_sdk_mxnet.py (they share its training
job); 3 is in test_job_environment.py and 7 in test_batch_transform.py.
"""

import os
import tarfile

import numpy as np
import pytest

from conformance.common import FRAMEWORK, ROLE, SDK_MNIST

pytestmark = pytest.mark.slow


def _estimator(session, script, **kwargs):
    from sagemaker.mxnet import MXNet

    return MXNet(entry_point=os.path.join(SDK_MNIST, script), role=ROLE, instance_count=1, instance_type="local",
                 sagemaker_session=session, **FRAMEWORK, **kwargs)


def test_local_data_and_code_create_no_s3_client(tmp_path, mnist_channels, monkeypatch, client_spy):
    """Scenarios 4 and 1 (local model): file:// channels, local_code set in the user's SDK config, the model
    written to a file:// output_path; fit, deploy, predict. No S3 client or resource is ever created."""
    from smgluon_local import ProcessSession

    home = tmp_path / "home"
    (home / ".sagemaker").mkdir(parents=True)
    (home / ".sagemaker" / "config.yaml").write_text("local:\n  local_code: true\n")
    monkeypatch.setenv("HOME", str(home))

    session = ProcessSession(root_dir=str(tmp_path / "root"), log_stream=False)
    output = tmp_path / "output"
    estimator = _estimator(session, "mnist.py", hyperparameters={"epochs": 1}, output_path="file://" + str(output))
    estimator.fit({name: "file://" + path for name, path in mnist_channels.items()})
    job = estimator.latest_training_job.name
    assert estimator.model_data == "file://%s/%s/output/model.tar.gz" % (output, job)
    predictor = estimator.deploy(1, "local", endpoint_name=job)
    try:
        scores = np.array(predictor.predict(np.zeros((1, 1, 28, 28))))
        assert scores.shape == (1, 10)
        assert predictor.sagemaker_session is session
    finally:
        predictor.delete_endpoint()
    assert "s3" not in client_spy, client_spy


def test_training_environment(session):
    """Scenario 5: check_env.py asserts that environment={"MYVAR": "HELLO_WORLD"} reached the script."""
    estimator = _estimator(session, "check_env.py", environment={"MYVAR": "HELLO_WORLD"})
    estimator.fit()
    desc = session.sagemaker_client.describe_training_job(TrainingJobName=estimator.latest_training_job.name)
    assert desc["TrainingJobStatus"] == "Completed"


def test_training_failure(session, tmp_path):
    """Scenario 6: failure_script.py raises. fit() raises an error that is both real SageMaker's
    UnexpectedStatusException and the SDK local mode's RuntimeError, with the failure file's reason (the
    toolkit's, as on SageMaker: ExecuteUserScriptError and the exit code; the traceback is in the log);
    output.tar.gz is where SageMaker writes it, <output_path>/<job name>/output/, with a ``failure`` member."""
    from sagemaker.exceptions import UnexpectedStatusException

    estimator = _estimator(session, "failure_script.py", output_path="file://" + str(tmp_path))
    with pytest.raises(UnexpectedStatusException, match="(?s)Failed.*ExecuteUserScriptError.*ExitCode 1") as info:
        estimator.fit()
    assert isinstance(info.value, RuntimeError)
    assert info.value.actual_status == "Failed"
    job = estimator.latest_training_job.name
    desc = session.sagemaker_client.describe_training_job(TrainingJobName=job)
    assert "ModelArtifacts" not in desc
    with tarfile.open(tmp_path / job / "output" / "output.tar.gz") as tar:
        assert "failure" in tar.getnames()
        failure = tar.extractfile("failure").read().decode()
    assert failure.strip() == desc["FailureReason"].strip()
    assert failure.strip() in str(info.value)
    with open(session.sagemaker_client.training_job(job).log_path) as f:
        assert "Exception: This failure is expected." in f.read()
