"""A training job whose process is killed with SIGKILL ends Failed, with a reason, and leaves nothing running."""

import os
import signal

import pytest
from local_helpers import FIXTURES, REPO, ROLE, live_processes_under, wait_until

from smgluon_local.cluster import job_processes

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("victim", ["the training script", "the training toolkit"])
def test_a_killed_training_process_fails_the_job_with_a_reason(tmp_path, victim):
    from sagemaker.mxnet import MXNet

    from smgluon_local import ProcessSession

    session = ProcessSession(root_dir=str(tmp_path / "root"), log_stream=False)
    data = tmp_path / "data"
    data.mkdir()
    estimator = MXNet(
        entry_point="tuning_curve.py",
        source_dir=FIXTURES,
        dependencies=[os.path.join(REPO, "lib", "smgluon")],
        role=ROLE,
        instance_count=1,
        instance_type="local",
        framework_version="1.9.0",
        py_version="py38",
        hyperparameters={"epochs": 100, "seconds_per_epoch": 0.5},
        sagemaker_session=session,
    )
    estimator.fit({"train": "file://" + str(data)}, wait=False)
    name = estimator.latest_training_job.name
    job_dir = os.path.join(session.root_dir, "jobs", name)
    log = os.path.join(job_dir, "job.log")
    wait_until(lambda: os.path.isfile(log) and "metrics: epoch=1" in open(log).read(), 180, "the job never trained")

    # The toolkit's process runs the script as its child: kill one or the other.
    script = victim == "the training script"
    (target,) = [p for p in job_processes(job_dir) if ("tuning_curve.py" in " ".join(p.cmdline())) == script]
    os.kill(target.pid, signal.SIGKILL)
    job = session.sagemaker_client.training_job(name)
    wait_until(lambda: job.done, 60, "the job did not end after its process was killed")
    desc = session.sagemaker_client.describe_training_job(TrainingJobName=name)
    assert desc["TrainingJobStatus"] == "Failed"
    assert "killed by SIGKILL" in desc["FailureReason"], desc["FailureReason"]
    wait_until(lambda: not job_processes(job_dir), 30, "processes of the job outlived it")
    assert live_processes_under(job_dir) == []
