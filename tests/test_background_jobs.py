"""Training jobs run in the background, as on SageMaker: fit(wait=False), describe, wait, logs, attach, stop.

The jobs are tests/local_mode_fixtures/tuning_curve.py (a metric line per epoch,
``seconds_per_epoch`` apart; ``fail=true`` fails after epoch 1) as real
local-mode processes. No network.
"""

import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import threading
import time

import pytest
from local_helpers import FIXTURES, REPO, ROLE, live_processes_under

from smgluon_local.cluster import job_processes

pytestmark = pytest.mark.slow

LIB = os.path.join(REPO, "lib", "smgluon")


def _session(root, **kwargs):
    from smgluon_local import ProcessSession

    return ProcessSession(root_dir=str(root), **kwargs)


def _estimator(session, **hyperparameters):
    from sagemaker.mxnet import MXNet

    max_run = hyperparameters.pop("max_run", 24 * 60 * 60)
    return MXNet(entry_point="tuning_curve.py", source_dir=FIXTURES, dependencies=[LIB], role=ROLE,
                 instance_count=1, instance_type="local", framework_version="1.9.0", py_version="py38",
                 hyperparameters=hyperparameters, max_run=max_run, sagemaker_session=session,
                 metric_definitions=[{"Name": "validation_accuracy", "Regex": r"validation_accuracy=([0-9.]+)"}])


def _channels(tmp_path):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    return {"train": "file://" + str(data)}


def _job_dir(session, name):
    return os.path.join(session.root_dir, "jobs", name)


def _wait_for_line(session, name, text, timeout=120):
    path = os.path.join(_job_dir(session, name), "job.log")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.isfile(path) and text in open(path).read():
            return
        time.sleep(0.1)
    raise AssertionError("%r never appeared in %s" % (text, path))


def test_fit_without_waiting_returns_while_the_job_runs_then_wait_logs_and_attach(tmp_path, capsys):
    from sagemaker.mxnet import MXNet

    session = _session(tmp_path / "root")
    est = _estimator(session, epochs=8, seconds_per_epoch=0.5, quality=0.8)
    est.fit(_channels(tmp_path), wait=False)
    name = est.latest_training_job.name
    desc = session.describe_training_job(name)
    assert desc["TrainingJobStatus"] == "InProgress" and "ModelArtifacts" not in desc
    assert "Invoking script" not in capsys.readouterr().out  # nothing is echoed until someone waits for logs

    attached = MXNet.attach(name, sagemaker_session=session)  # blocks until the job ends, silently
    assert session.describe_training_job(name)["TrainingJobStatus"] == "Completed"
    assert attached.model_data == session.describe_training_job(name)["ModelArtifacts"]["S3ModelArtifacts"]
    assert attached.hyperparameters()["epochs"] == "8"
    assert "metrics: epoch=" not in capsys.readouterr().out

    est.latest_training_job.wait()  # logs="All": the whole log, then returns (Completed)
    out = capsys.readouterr().out
    assert out.count("metrics: epoch=") == 8 and "Reporting training SUCCESS" in out
    attached.logs()
    again = capsys.readouterr().out
    assert again.count("metrics: epoch=") == 8 and again[again.index("metrics: epoch=1"):] == out[
        out.index("metrics: epoch=1"):]
    assert live_processes_under(session.root_dir) == []


def test_waiting_streams_the_log_as_it_is_written_and_raises_for_a_failed_job(tmp_path, capsys):
    from sagemaker.exceptions import UnexpectedStatusException

    session = _session(tmp_path / "root")
    est = _estimator(session, epochs=3, seconds_per_epoch=1.0, fail=True)
    est.fit(_channels(tmp_path), wait=False)
    with pytest.raises(UnexpectedStatusException, match="deliberate failure after epoch 1"):
        est.latest_training_job.wait(logs=True)
    out = capsys.readouterr().out
    assert "metrics: epoch=1" in out and "RuntimeError: deliberate failure" in out

    est2 = _estimator(session, epochs=3, seconds_per_epoch=0.1, fail=True)
    est2.fit(_channels(tmp_path), wait=False)
    with pytest.raises(UnexpectedStatusException, match="Failed"):
        est2.latest_training_job.wait(logs="None")  # silent wait, same outcome
    assert "metrics:" not in capsys.readouterr().out


def test_stop_training_job_stops_every_process_and_records_stopped(tmp_path):
    from botocore.exceptions import ClientError

    session = _session(tmp_path / "root", log_stream=False)
    est = _estimator(session, epochs=100, seconds_per_epoch=0.5)
    est.fit(_channels(tmp_path), wait=False)
    name = est.latest_training_job.name
    _wait_for_line(session, name, "metrics: epoch=1")
    est.latest_training_job.stop()
    assert session.describe_training_job(name)["TrainingJobStatus"] in ("Stopping", "Stopped")
    est.latest_training_job.wait(logs="None")  # Stopped: the SDK only warns
    desc = session.describe_training_job(name)
    assert desc["TrainingJobStatus"] == "Stopped" and desc["SecondaryStatus"] == "Stopped"
    assert "FailureReason" not in desc
    # what the script saved before it was stopped (here nothing: it saves at the end) is packed, as on SageMaker
    from smgluon_local.storage import uri_to_local_path

    with tarfile.open(uri_to_local_path(est.model_data, session.local_s3)) as tar:
        assert tar.getnames() == []
    assert desc["FinalMetricDataList"][0]["MetricName"] == "validation_accuracy"  # what it logged before
    assert job_processes(_job_dir(session, name)) == [] and live_processes_under(session.root_dir) == []
    with pytest.raises(ClientError, match="not running"):
        session.sagemaker_client.stop_training_job(TrainingJobName=name)


def test_max_runtime_stops_the_job(tmp_path):
    session = _session(tmp_path / "root", log_stream=False)
    est = _estimator(session, epochs=100, seconds_per_epoch=0.5, max_run=4)
    tic = time.monotonic()
    est.fit(_channels(tmp_path), logs="None")
    desc = session.describe_training_job(est.latest_training_job.name)
    assert desc["TrainingJobStatus"] == "Stopped" and desc["SecondaryStatus"] == "MaxRuntimeExceeded"
    assert time.monotonic() - tic < 60
    assert live_processes_under(session.root_dir) == []


class _Lines:
    """A thread-safe log_stream that remembers when each line came."""

    def __init__(self):
        self.lines, self.lock = [], threading.Lock()

    def write(self, text):
        with self.lock:
            self.lines.extend((time.monotonic(), line) for line in text.splitlines())

    def flush(self):
        pass


def test_a_log_stream_object_and_subscribers_get_every_line_while_the_job_runs(tmp_path):
    stream = _Lines()
    session = _session(tmp_path / "root", log_stream=stream)
    est = _estimator(session, epochs=6, seconds_per_epoch=0.5)
    est.fit(_channels(tmp_path), wait=False)
    name = est.latest_training_job.name
    _wait_for_line(session, name, "metrics: epoch=2")
    job = session.sagemaker_client.training_job(name)
    seen = []
    job.run.subscribe(lambda host, line: seen.append((host, line)))  # replays what came before
    est.latest_training_job.wait(logs="None")
    ended = time.monotonic()
    log = open(os.path.join(_job_dir(session, name), "job.log")).read().splitlines()
    assert [line for _, line in stream.lines] == log
    assert [line.rstrip("\n") for _, line in seen] == log and {host for host, _ in seen} == {"algo-1"}
    epoch_lines = [t for t, line in stream.lines if line.startswith("metrics: epoch=")]
    assert ended - epoch_lines[0] > 2.0  # the first epoch's line came live, long before the end


_CHILD = textwrap.dedent("""
    import signal, sys, time
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (a test runner may ignore it)
    sys.path.insert(0, {tests!r})
    from sagemaker.mxnet import MXNet
    from smgluon_local import ProcessSession
    session = ProcessSession(root_dir={root!r}, log_stream=False)
    est = MXNet(entry_point="tuning_curve.py", source_dir={fixtures!r}, dependencies=[{lib!r}], role={role!r},
                instance_count=1, instance_type="local", framework_version="1.9.0", py_version="py38",
                hyperparameters={{"epochs": 100, "seconds_per_epoch": 0.5}}, sagemaker_session=session)
    print("job", flush=True)
    est.fit({{"train": "file://{data}"}}, wait={wait})
    time.sleep(600)
""")


@pytest.mark.parametrize("how", ["SIGKILL after fit(wait=False)", "Ctrl-C during fit()"])
def test_a_job_ends_with_the_python_process_that_started_it(tmp_path, how):
    root = str(tmp_path / "root")
    data = tmp_path / "data"
    data.mkdir()
    code = _CHILD.format(tests=os.path.join(REPO, "tests"), root=root, fixtures=FIXTURES, lib=LIB, role=ROLE,
                         data=str(data), wait="SIGKILL" not in how)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    try:
        jobs = os.path.join(root, "jobs")
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            names = os.listdir(jobs) if os.path.isdir(jobs) else []
            log = os.path.join(jobs, names[0], "job.log") if names else None
            if log and os.path.isfile(log) and "metrics: epoch=1" in open(log).read():
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the child's job never started")
        job_dir = os.path.join(jobs, names[0])
        assert job_processes(job_dir)
        # Ctrl-C stops the job; fit() then returns (the SDK's telemetry decorator swallows
        # KeyboardInterrupt with a `return` in `finally`), so the child lives on here.
        child.send_signal(signal.SIGKILL if "SIGKILL" in how else signal.SIGINT)
        deadline = time.monotonic() + 15
        while job_processes(job_dir) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert job_processes(job_dir) == []
        assert [pid for pid, _ in live_processes_under(root) if pid != child.pid] == []
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
