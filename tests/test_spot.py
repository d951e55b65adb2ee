"""Managed spot training in local mode: checkpoint sync, spot settings, and the interruption drill.

The jobs run a tiny script (tests/local_mode_fixtures/spot_steps.py) that checkpoints every
step and resumes from the newest checkpoint, so each job takes seconds; one test drills
mnist_mlp on a small MNIST slice and compares it with an uninterrupted run.
"""

import json
import os
import subprocess
import sys
import tarfile

import pytest

# Imported before the no-network guard (the SDK builds a JumpStart session at import time).
import sagemaker.mxnet  # noqa: F401
from botocore.exceptions import ClientError
from local_helpers import REPO, NoInternet, mxnet_estimator  # noqa: F401

from smgluon_local import checkpoint_sync, spot
from smgluon_local.cluster import JOB_ENV, job_processes
from smgluon_local.spot import SpotInterruption, parse_interruptions


def _session(root, **kwargs):
    from smgluon_local import ProcessSession

    return ProcessSession(root_dir=str(root), log_stream=False, **kwargs)


def _spot_estimator(session, instance_count=1, hyperparameters=None, **kwargs):
    kwargs.setdefault("use_spot_instances", True)
    if kwargs["use_spot_instances"]:
        kwargs.setdefault("max_run", 600)
        kwargs.setdefault("max_wait", 1200)
    return mxnet_estimator(
        session,
        "spot_steps.py",
        instance_count=instance_count,
        hyperparameters=dict({"steps": 6, "step-seconds": 0.3}, **(hyperparameters or {})),
        **kwargs,
    )


def _result(estimator):
    from smgluon_local.storage import uri_to_local_path

    path = uri_to_local_path(estimator.model_data, estimator.sagemaker_session.local_s3)
    with tarfile.open(path) as tar:
        return json.load(tar.extractfile("result.json"))


def _job_dir(session, estimator):
    return os.path.join(session.root_dir, "jobs", estimator.latest_training_job.name)


def _log(session, estimator):
    with open(os.path.join(_job_dir(session, estimator), "job.log")) as f:
        return f.read()


# ---------------------------------------------------------------- parsing and validation (no job)


def test_interruptions_read_as_written():
    parsed = parse_interruptions(["1.5s", 2, "2m", "3 checkpoints", SpotInterruption(after_checkpoints=1, grace=0)])
    assert [(i.after_seconds, i.after_checkpoints) for i in parsed] == [
        (1.5, None),
        (2.0, None),
        (120.0, None),
        (None, 3),
        (None, 1),
    ]
    assert parsed[-1].grace == 0
    assert [str(i) for i in parse_interruptions("30s, 1 checkpoint")] == ["after 30 s", "after 1 checkpoint file"]
    assert parse_interruptions(None) == []
    for bad in ("soon", True, "0 checkpoints", -1):
        with pytest.raises(ValueError, match="spot interruption|after_"):
            parse_interruptions(bad)


def test_checkpoint_local_path_must_be_inside_opt_ml():
    assert checkpoint_sync.host_subdir(None) == "checkpoints"
    assert checkpoint_sync.host_subdir("/opt/ml/ckpt/run1") == os.path.join("ckpt", "run1")
    for bad in ("/tmp/ckpt", "/opt/ml", "/opt/ml/input/x", "relative/dir"):
        with pytest.raises(ValueError, match="under /opt/ml"):
            checkpoint_sync.host_subdir(bad)


@pytest.mark.parametrize(
    "request_kwargs, message",
    [
        (
            {"EnableManagedSpotTraining": True, "StoppingCondition": {"MaxRuntimeInSeconds": 60}},
            "needs it; pass max_wait",
        ),
        (
            {
                "EnableManagedSpotTraining": True,
                "StoppingCondition": {"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 30},
            },
            r"greater than or equal to MaxRuntimeInSeconds \(60\)",
        ),
        ({"StoppingCondition": {"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 90}}, "only valid for managed spot"),
        ({"CheckpointConfig": {"S3Uri": "/plain/path"}}, "CheckpointConfig.S3Uri"),
        ({"CheckpointConfig": {"S3Uri": "file:///x", "LocalPath": "/tmp/x"}}, "under /opt/ml"),
    ],
)
def test_spot_settings_are_validated_as_sagemaker_does(request_kwargs, message):
    with pytest.raises(ClientError, match=message):
        spot.validate_request(request_kwargs)
    spot.validate_request(
        {
            "EnableManagedSpotTraining": True,
            "StoppingCondition": {"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 60},
        }
    )


def test_a_drill_needs_a_spot_job():
    with pytest.raises(ClientError, match="pass use_spot_instances=True"):
        spot.validate_request({"StoppingCondition": {"MaxRuntimeInSeconds": 60}}, parse_interruptions("5s"))


def test_the_sdk_refusals_are_lifted_and_errors_come_before_any_job(tmp_path):
    session = _session(tmp_path / "root")
    with pytest.raises(ClientError, match="pass max_wait"):
        _spot_estimator(session, max_wait=None).fit()
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.txt").write_text("data")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for uri, message in (
        ("file://%s/ckpt" % blocker, "cannot create"),
        ("file://%s" % data, "overlaps the job's data"),
        ("s3://someone-elses-bucket/ckpt", "keeps its checkpoints on this machine"),
        ("s3://%s" % session.default_bucket(), "overlaps the job's data"),  # the bucket holds the job's code
    ):
        with pytest.raises(ValueError, match=message):
            _spot_estimator(session, checkpoint_s3_uri=uri).fit({"train": "file://%s" % data})
    assert not os.path.exists(data / "x.txt.tmp") and sorted(os.listdir(data)) == ["x.txt"]


# ---------------------------------------------------------------- the sync


def test_a_file_being_written_is_never_copied_half_written(tmp_path):
    job_dir, location = str(tmp_path / "job"), str(tmp_path / "location")
    host_dir = os.path.join(job_dir, "algo-1")
    os.makedirs(os.path.join(host_dir, "checkpoints"))
    os.makedirs(location)
    sync = checkpoint_sync.CheckpointSync(location, [host_dir], "checkpoints", job_dir)
    target = os.path.join(host_dir, "checkpoints", "model.params")
    # A job process (it carries the job's marker) that writes half the file, then waits to be told to finish.
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; f = open(sys.argv[1], 'w'); f.write('half'); f.flush(); "
            "print('ready', flush=True); sys.stdin.readline(); f.write(' and the rest'); f.close()",
            target,
        ],
        env=dict(os.environ, **{JOB_ENV: job_dir}),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "ready"
        assert sync.sync() == 0
        assert os.listdir(location) == []
        writer.stdin.write("go\n")
        writer.stdin.flush()
        writer.wait(30)
    finally:
        writer.kill()
    assert sync.sync() == 1
    with open(os.path.join(location, "model.params")) as f:
        assert f.read() == "half and the rest"
    assert sync.sync() == 0  # unchanged files are not copied again


# ---------------------------------------------------------------- jobs


@pytest.mark.slow
def test_checkpoints_are_filled_before_the_script_and_synced_at_the_end(tmp_path, capsys):
    with NoInternet() as guard:
        session = _session(tmp_path / "root")
        bucket_dir = os.path.join(session.root_dir, "s3", session.default_bucket(), "ckpt")
        os.makedirs(bucket_dir)
        with open(os.path.join(bucket_dir, "from-before.txt"), "w") as f:
            f.write("left by an earlier job")
        est = _spot_estimator(
            session,
            use_spot_instances=False,
            checkpoint_s3_uri="s3://%s/ckpt" % session.default_bucket(),
            hyperparameters={"steps": 3, "step-seconds": 0.05},
        )
        est.fit()
    assert guard.attempts == []
    result = _result(est)
    assert result["found"] == ["from-before.txt"] and result["steps"] == [1, 2, 3]
    assert sorted(os.listdir(bucket_dir)) == ["from-before.txt", "step-0001.json", "step-0002.json", "step-0003.json"]
    desc = est.latest_training_job.describe()
    assert [t["Status"] for t in desc["SecondaryStatusTransitions"]] == [
        "Starting",
        "Training",
        "Uploading",
        "Completed",
    ]
    assert desc["BillableTimeInSeconds"] == desc["TrainingTimeInSeconds"] >= 1
    assert "Billable seconds:" in capsys.readouterr().out


@pytest.mark.slow
def test_the_drill_interrupts_twice_and_the_script_resumes(tmp_path, capsys):
    location = tmp_path / "checkpoints"
    session = _session(tmp_path / "root", spot_interruptions=["1 checkpoint", "2 checkpoints"])
    est = _spot_estimator(
        session, checkpoint_s3_uri="file://%s" % location, hyperparameters={"steps": 10, "step-seconds": 0.5}
    )
    est.fit()
    result = _result(est)
    assert result["steps"] == list(range(1, 11))  # every step once: nothing lost, nothing done twice
    assert result["starts"] == 3
    desc = est.latest_training_job.describe()
    assert desc["TrainingJobStatus"] == "Completed" and desc["EnableManagedSpotTraining"] is True
    assert [t["Status"] for t in desc["SecondaryStatusTransitions"]] == [
        "Starting",
        "Training",
        "Interrupted",
        "Restarting",
        "Training",
        "Interrupted",
        "Restarting",
        "Training",
        "Uploading",
        "Completed",
    ]
    assert desc["BillableTimeInSeconds"] <= desc["TrainingTimeInSeconds"]
    log = _log(session, est)
    assert "[spot] interruption 1 of 2 (drill: after 1 checkpoint file)" in log
    assert "[spot] interruption 2 of 2 (drill: after 2 checkpoint files)" in log
    assert log.count("[spot] restarting the job with the same inputs") == 2
    assert "step-0010.json" in os.listdir(location)
    assert job_processes(_job_dir(session, est)) == []
    out = capsys.readouterr().out
    assert "Managed Spot Training savings:" in out


@pytest.mark.slow
def test_two_hosts_share_the_uri_and_a_script_ignoring_sigterm_is_killed(tmp_path):
    location = tmp_path / "checkpoints"
    session = _session(tmp_path / "root", spot_interruptions=[SpotInterruption(after_checkpoints=2, grace=0.5)])
    est = _spot_estimator(
        session,
        instance_count=2,
        checkpoint_s3_uri="file://%s" % location,
        hyperparameters={"steps": 6, "step-seconds": 0.5, "ignore-sigterm": "true"},
    )
    est.fit()
    assert _result(est)["steps"] == [1, 2, 3, 4, 5, 6]
    log = _log(session, est)
    for host in ("algo-1", "algo-2"):
        assert "algo-%s | SIGTERM ignored" % host[-1] in log
        assert "[spot] %s: its training process" % host in log
    assert "SIGKILL" in log
    assert "algo-1 | start 2 with" in log and "algo-2 | start 2 with" in log
    assert sorted(n for n in os.listdir(location) if n.endswith(".json"))[-1] == "step-0006.json"
    assert job_processes(_job_dir(session, est)) == []


@pytest.mark.slow
def test_max_wait_counts_the_restarts(tmp_path):
    # Every attempt is reclaimed long before max_wait; only the whole time, restarts included, reaches it.
    session = _session(tmp_path / "root", spot_interruptions=["0.5s", "0.5s", "0.5s"])
    est = _spot_estimator(session, max_run=3, max_wait=3, hyperparameters={"steps": 100, "step-seconds": 0.2})
    est.fit()  # the SDK warns about a Stopped job; it does not raise
    desc = est.latest_training_job.describe()
    assert desc["TrainingJobStatus"] == "Stopped"
    assert desc["SecondaryStatus"] == "MaxWaitTimeExceeded"
    assert desc["SecondaryStatusTransitions"][-1]["Status"] == "MaxWaitTimeExceeded"
    assert "[spot] interruption 1 of 3" in _log(session, est)
    assert job_processes(_job_dir(session, est)) == []


# Ten epochs with enough batches each that epochs remain after every interruption (the drill notices
# checkpoint files within about a second).
_DRILL_HPS = {
    "mnist_mlp": ["epochs=10", "batch_size=50"],
    "fmnist_cnn": ["epochs=10", "batch_size=50", "max_train_samples=1000", "max_eval_samples=500"],
}


def _cli_train(tmp_path, name, dirs, capsys, *extra, workload="mnist_mlp", instance_count=1):
    from smgluon_local import cli

    out = tmp_path / name
    argv = [
        "train",
        workload,
        "--train",
        dirs["train"],
        "--test",
        dirs["test"],
        "--output",
        str(out),
        "--root",
        str(tmp_path / name / "root"),
        "--instance-count",
        str(instance_count),
        *extra,
    ]
    for hp in _DRILL_HPS[workload]:
        argv += ["--hp", hp]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    model = next(line.split(": ", 1)[1] for line in printed.splitlines() if line.startswith("model: "))
    import mxnet as mx

    with tarfile.open(model) as tar:
        tar.extract("model-0000.params", str(out))
    params = {k: v.asnumpy() for k, v in mx.nd.load(str(out / "model-0000.params")).items()}
    with tarfile.open(os.path.join(os.path.dirname(model), "output.tar.gz")) as tar:
        last = json.load(tar.extractfile("metrics.json"))["epochs"][-1]
    last = {k: v for k, v in last.items() if k not in ("samples_per_sec", "epoch_seconds")}
    return printed, params, last


@pytest.mark.slow
@pytest.mark.parametrize(
    "workload, instance_count", [("mnist_mlp", 1), ("mnist_mlp", 2), ("fmnist_cnn", 1), ("fmnist_cnn", 2)]
)
def test_cli_drill_resumes_to_the_uninterrupted_result(tmp_path, mnist_dirs, capsys, workload, instance_count):
    import numpy as np

    printed, params, last = _cli_train(
        tmp_path,
        "drilled",
        mnist_dirs,
        capsys,
        "--interrupt-after",
        "2 checkpoints,2 checkpoints",
        workload=workload,
        instance_count=instance_count,
    )
    assert "Managed Spot Training savings:" in printed
    checkpoints = next(line.split(": ", 1)[1] for line in printed.splitlines() if line.startswith("checkpoints: "))
    assert "epoch-0010.params" in os.listdir(checkpoints)
    jobs = os.path.join(str(tmp_path / "drilled" / "root"), "jobs")
    (job,) = os.listdir(jobs)
    with open(os.path.join(jobs, job, "job.log")) as f:
        log = f.read()
    assert "[spot] interruption 2 of 2" in log and log.count("[spot] restarting the job") == 2
    assert job_processes(os.path.join(jobs, job)) == []
    _, straight_params, straight_last = _cli_train(
        tmp_path, "straight", mnist_dirs, capsys, workload=workload, instance_count=instance_count
    )
    assert last == straight_last
    assert sorted(params) == sorted(straight_params)
    for name in params:  # bit for bit: same data order, same optimizer state, same float operations on CPU
        if instance_count > 1 and name.startswith("aux:") and "batchnorm" in name:
            # Two uninterrupted two-host fmnist_cnn runs already differ here (the first batch norm's
            # running statistics, by up to 1.2e-4, 0.45% of the value): not something a resume decides.
            np.testing.assert_allclose(params[name], straight_params[name], rtol=0.02, atol=1e-3, err_msg=name)
        else:
            np.testing.assert_array_equal(params[name], straight_params[name], err_msg=name)


@pytest.mark.slow
def test_a_module_api_script_checkpointing_as_aws_example_resumes(tmp_path, mnist_small_dirs):
    import re

    location = tmp_path / "checkpoints"
    session = _session(tmp_path / "root", spot_interruptions=["3 checkpoints"])
    est = mxnet_estimator(
        session,
        "module_spot.py",
        use_spot_instances=True,
        max_run=600,
        max_wait=600,
        checkpoint_s3_uri="file://%s" % location,
        hyperparameters={"epochs": 8, "epoch-pause": 0.5},
    )
    est.fit({"train": "file://" + mnist_small_dirs["train"], "test": "file://" + mnist_small_dirs["test"]})
    log = _log(session, est)
    assert "[spot] interruption 1 of 1" in log
    assert re.search(r"Resuming from epoch [1-7]\b", log)
    assert float(re.search(r"validation accuracy (\S+)", log).group(1)) > 0.8
    assert {"mnist-symbol.json", "mnist-0008.params", "mnist-0008.states"} <= set(os.listdir(location))


@pytest.mark.slow
def test_a_checkpoint_caught_half_written_by_the_reclaim_never_reaches_the_uri(tmp_path):
    location = tmp_path / "checkpoints"
    session = _session(tmp_path / "root", spot_interruptions=["1 checkpoint"])
    # On its first start the script stops half-way through writing step 2's checkpoint, until the reclaim.
    est = _spot_estimator(
        session,
        checkpoint_s3_uri="file://%s" % location,
        hyperparameters={"steps": 4, "step-seconds": 0.05, "hang-writing-step": 2},
    )
    est.fit()
    log = _log(session, est)
    assert log.index("writing step 2") < log.index("[spot] interruption 1 of 1")
    assert sorted(os.listdir(location)) == ["step-%04d.json" % i for i in (1, 2, 3, 4)]
    for name in os.listdir(location):
        with open(os.path.join(location, name)) as f:
            json.load(f)  # whole files only
    result = _result(est)
    assert result["steps"] == [1, 2, 3, 4] and result["starts"] == 2
