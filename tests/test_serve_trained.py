"""`smgluon serve` of a model that `smgluon train` made finds its workload in the job's record."""

import json
import os
import signal
import subprocess
import sys
import urllib.request

import pytest
from local_helpers import REPO, live_processes_under, wait_until

from smgluon_local.job_record import trained_by
from smgluon_local.ports import free_port
from smgluon_local.storage import LocalS3

JOB = "mxnet-training-2026-12-06-09-58-12-459"


def fake_job(root, output, program='"mnist_mlp.py"', with_source=True):
    """The files a local training job leaves: its hyperparameters.json, its sourcedir.tar.gz, its model.tar.gz."""
    config = os.path.join(root, "jobs", JOB, "algo-1", "input", "config")
    os.makedirs(config)
    source = "s3://smgluon-local/%s/source/sourcedir.tar.gz" % JOB
    with open(os.path.join(config, "hyperparameters.json"), "w") as f:
        json.dump({"epochs": "1", "sagemaker_program": program, "sagemaker_submit_directory": json.dumps(source)}, f)
    if with_source:
        os.makedirs(os.path.join(root, "s3", "smgluon-local", JOB, "source"))
        open(os.path.join(root, "s3", "smgluon-local", JOB, "source", "sourcedir.tar.gz"), "wb").close()
    model = os.path.join(output, JOB, "output", "model.tar.gz")
    os.makedirs(os.path.dirname(model))
    open(model, "wb").close()
    return model, LocalS3(os.path.join(root, "s3"), ["smgluon-local"])


def test_the_record_names_the_entry_point_and_its_uploaded_source(tmp_path):
    model, store = fake_job(str(tmp_path / "root"), str(tmp_path / "out"))
    record = trained_by(model, str(tmp_path / "root"), store)
    assert (record.job_name, record.entry_point) == (JOB, "mnist_mlp.py")
    assert record.source_dir == "s3://smgluon-local/%s/source/sourcedir.tar.gz" % JOB


def test_a_record_whose_source_is_gone_still_names_the_entry_point(tmp_path):
    model, store = fake_job(str(tmp_path / "root"), str(tmp_path / "out"), with_source=False)
    record = trained_by(model, str(tmp_path / "root"), store)
    assert record.entry_point == "mnist_mlp.py" and record.source_dir is None


def test_no_record_for_other_archives(tmp_path):
    model, store = fake_job(str(tmp_path / "root"), str(tmp_path / "out"))
    assert trained_by(model, str(tmp_path / "other-root"), store) is None
    other = tmp_path / "model.tar.gz"
    other.write_bytes(b"")
    assert trained_by(str(other), str(tmp_path / "root"), store) is None
    model2, store2 = fake_job(str(tmp_path / "root2"), str(tmp_path / "out2"), program='"not a script"')
    assert trained_by(model2, str(tmp_path / "root2"), store2) is None


def test_serve_without_code_or_record_asks_for_the_workload(tmp_path, capsys):
    import tarfile

    from smgluon_local.cli import main

    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz"):
        pass
    assert main(["serve", str(archive), "--root", str(tmp_path / "root")]) == 1
    err = capsys.readouterr().err
    assert "no single code/*.py entry point and no training job under" in err and "--workload NAME" in err


@pytest.mark.slow
def test_train_then_serve_finds_the_workload_and_prints_no_sdk_notices(mnist_small_dirs, tmp_path):
    root, output = str(tmp_path / "root"), str(tmp_path / "out")
    smgluon = os.path.join(os.path.dirname(sys.executable), "smgluon")
    train = subprocess.run(
        [smgluon, "train", "mnist_mlp", "--training", mnist_small_dirs["training"], "--hp", "epochs=1"]
        + ["--hp", "max_train_samples=500", "--entry-points", os.path.join(REPO, "entry_points")]
        + ["--lib", os.path.join(REPO, "lib", "smgluon"), "--root", root, "--output", output],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=str(tmp_path),
        env=dict(os.environ, SMGLUON_VERBOSE=""),
    )
    assert train.returncode == 0, train.stderr[-3000:]
    assert "validation_accuracy = " in train.stdout
    (job,) = os.listdir(output)
    model = os.path.join(output, job, "output", "model.tar.gz")
    port = free_port()
    err = tmp_path / "stderr"
    with open(err, "w") as stderr:
        serve = subprocess.Popen(
            [smgluon, "serve", model, "--root", root, "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=str(tmp_path),  # no entry_points/ here: the code comes from the job
            env=dict(os.environ, SMGLUON_VERBOSE=""),
        )
    try:
        served = serve.stdout.readline() + serve.stdout.readline()
        assert "serving at http://127.0.0.1:%d" % port in served, err.read_text()
        request = urllib.request.Request(
            "http://127.0.0.1:%d/invocations" % port,
            data=json.dumps([[0] * 784]).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            assert list(json.loads(response.read())) == ["predictions"]
        assert "serving with mnist_mlp.py, as training job %s ran it" % job in err.read_text()
        serve.send_signal(signal.SIGINT)
        serve.wait(timeout=60)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
    wait_until(lambda: not live_processes_under(root), 30, "the model server outlived smgluon serve")
    # The SDK's config and telemetry notices, image URI and repacking chatter stay hidden.
    for noise in ("sagemaker.config", "telemetry", "image_uri is not presented", "Repacking"):
        assert noise not in train.stdout + train.stderr + err.read_text()
