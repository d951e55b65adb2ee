"""End-to-end local mode through the SageMaker SDK's own objects: real training
processes, the real model server, real HTTP, small real MNIST data. No network."""

import json
import os
import tarfile

import numpy as np
import pytest

# Imported before the no-network guard: `import sagemaker` itself builds a JumpStart session at
# import time (and boto3 may probe the instance metadata service then); that is the SDK's doing.
import sagemaker.mxnet  # noqa: E402,F401
from local_helpers import REPO, NoInternet, live_processes_under, mxnet_estimator, serve_url

import smgluon_local.session  # noqa: E402,F401

pytestmark = pytest.mark.slow


@pytest.fixture
def session(tmp_path):
    from smgluon_local import ProcessSession

    with NoInternet() as guard:
        yield ProcessSession(root_dir=str(tmp_path / "root"))
    assert guard.attempts == [], "local mode tried to reach the network: %r" % guard.attempts


def _local_path(session, uri):
    from smgluon_local.storage import uri_to_local_path

    return uri_to_local_path(uri, session.local_s3)


def _images(mnist_dirs, n):
    from smgluon.idx import read_idx

    x = read_idx(os.path.join(mnist_dirs["test"], "t10k-images-idx3-ubyte.gz"))[:n]
    y = read_idx(os.path.join(mnist_dirs["test"], "t10k-labels-idx1-ubyte.gz"))[:n]
    return x, y


def test_plain_entry_point_trains_serves_and_cleans_up(session, mnist_small_dirs):
    """A script-mode entry point that does not import smgluon: fit → deploy → predict → delete."""
    est = mxnet_estimator(session, "plain_mlp.py", hyperparameters={"epochs": 2},
                          metric_definitions=[{"Name": "train:accuracy", "Regex": r"train_accuracy=([0-9.]+)"}])
    est.fit({"train": "file://" + mnist_small_dirs["train"]})

    desc = session.describe_training_job(est.latest_training_job.name)
    assert desc["TrainingJobStatus"] == "Completed"
    assert desc["ModelArtifacts"]["S3ModelArtifacts"] == est.model_data
    (metric,) = desc["FinalMetricDataList"]
    assert metric["MetricName"] == "train:accuracy" and metric["Value"] > 0.8

    # SageMaker's layout: <output_path>/<job>/output/{model,output}.tar.gz, files at the top level.
    model_tar = _local_path(session, est.model_data)
    assert model_tar.endswith(os.path.join(est.latest_training_job.name, "output", "model.tar.gz"))
    with tarfile.open(model_tar) as tar:
        assert sorted(tar.getnames()) == ["accuracy.json", "model-0000.params", "model-symbol.json"]
    assert os.path.isfile(os.path.join(os.path.dirname(model_tar), "output.tar.gz"))
    job_log = os.path.join(session.root_dir, "jobs", est.latest_training_job.name, "job.log")
    assert "Reporting training SUCCESS" in open(job_log).read()

    predictor = est.deploy(initial_instance_count=1, instance_type="local")
    try:
        x, y = _images(mnist_small_dirs, 50)
        scores = np.array(predictor.predict(x.reshape(50, 784).astype("float32") / 255))
        assert scores.shape == (50, 10)
        assert (scores.argmax(axis=1) == y).mean() > 0.7
    finally:
        predictor.delete_endpoint()
    assert live_processes_under(session.root_dir) == []


def test_fidelity_env_and_arguments(session, mnist_small_dirs):
    """The entry point sees the toolkit's SM_* variables, `--key value` arguments and staged code."""
    est = mxnet_estimator(session, "dump_env.py", dependencies=[os.path.join(REPO, "lib", "smgluon")],
                          hyperparameters={"epochs": 3, "learning_rate": 0.05, "optimizer": "adam",
                                           "nested": {"a": 1}},
                          metric_definitions=[{"Name": "acc", "Regex": r"accuracy=([0-9.]+);"}])
    est.fit({"train": "file://" + mnist_small_dirs["train"], "test": "file://" + mnist_small_dirs["test"]})
    job = est.latest_training_job.name
    host = os.path.join(session.root_dir, "jobs", job, "algo-1")
    with tarfile.open(_local_path(session, est.model_data)) as tar:
        dump = json.load(tar.extractfile("env.json"))
    env, argv = dump["env"], dump["argv"]

    pairs = dict(zip(argv[::2], argv[1::2]))
    # A dict hyperparameter reaches the script in the toolkit's own "k=v" encoding.
    assert pairs == {"--epochs": "3", "--learning_rate": "0.05", "--optimizer": "adam", "--nested": "a=1"}
    assert env["SM_MODEL_DIR"] == os.path.join(host, "model")
    assert env["SM_OUTPUT_DATA_DIR"] == os.path.join(host, "output", "data")
    assert env["SM_OUTPUT_DIR"] == os.path.join(host, "output")
    assert env["SM_INPUT_DIR"] == os.path.join(host, "input")
    assert env["SM_INPUT_CONFIG_DIR"] == os.path.join(host, "input", "config")
    assert env["SM_CHANNEL_TRAIN"] == os.path.join(host, "input", "data", "train")
    assert env["SM_CHANNEL_TEST"] == os.path.join(host, "input", "data", "test")
    assert json.loads(env["SM_CHANNELS"]) == ["test", "train"]
    assert json.loads(env["SM_HOSTS"]) == ["algo-1"] and env["SM_CURRENT_HOST"] == "algo-1"
    assert json.loads(env["SM_HPS"]) == {"epochs": 3, "learning_rate": 0.05, "optimizer": "adam",
                                         "nested": {"a": 1}}
    assert env["SM_HP_LEARNING_RATE"] == "0.05"
    assert env["SM_USER_ENTRY_POINT"] == "dump_env.py" and env["SM_MODULE_NAME"] == "dump_env"
    assert env["SM_FRAMEWORK_MODULE"] == "sagemaker_mxnet_container.training:main"
    assert env["SM_NUM_GPUS"] == "0" and int(env["SM_NUM_CPUS"]) >= 1
    assert env["TRAINING_JOB_NAME"] == job
    assert json.loads(env["SM_TRAINING_ENV"])["job_name"] == job
    assert dump["cwd"] == os.path.join(host, "code")

    # hyperparameters.json is the SDK's encoding; channels are links, not copies.
    with open(os.path.join(host, "input", "config", "hyperparameters.json")) as f:
        hps = json.load(f)
    assert hps["epochs"] == "3" and hps["nested"] == '{"a": 1}'
    assert json.loads(hps["sagemaker_program"]) == "dump_env.py"
    assert os.path.islink(os.path.join(host, "input", "data", "train"))
    assert os.path.realpath(env["SM_CHANNEL_TRAIN"]) == os.path.realpath(mnist_small_dirs["train"])
    # source_dir and dependencies arrive together, as in the SageMaker container.
    assert os.path.isfile(os.path.join(host, "code", "dump_env.py"))
    assert os.path.isfile(os.path.join(host, "code", "smgluon", "idx.py"))
    with tarfile.open(os.path.join(os.path.dirname(_local_path(session, est.model_data)), "output.tar.gz")) as tar:
        location = tar.extractfile("smgluon_location.txt").read().decode()
    assert location == os.path.join(host, "code", "smgluon")

    desc = session.describe_training_job(job)
    assert [(m["MetricName"], m["Value"]) for m in desc["FinalMetricDataList"]] == [("acc", 0.9375)]


def test_failing_entry_point_fails_the_job_with_its_reason(session, mnist_small_dirs):
    from sagemaker.exceptions import UnexpectedStatusException

    est = mxnet_estimator(session, "failing.py")
    with pytest.raises(UnexpectedStatusException, match="learning_rate must be positive") as info:
        est.fit({"train": "file://" + mnist_small_dirs["train"]})
    assert info.value.actual_status == "Failed"
    desc = session.describe_training_job(est.latest_training_job.name)
    assert desc["TrainingJobStatus"] == "Failed"
    assert "learning_rate must be positive" in desc["FailureReason"]
    assert "ModelArtifacts" not in desc
    # The failure file travels in output.tar.gz; no model.tar.gz for a failed job.
    out_dir = os.path.join(session.local_s3.path("smgluon-local"), est.latest_training_job.name, "output")
    assert sorted(os.listdir(out_dir)) == ["output.tar.gz"]
    with tarfile.open(os.path.join(out_dir, "output.tar.gz")) as tar:
        assert "learning_rate must be positive" in tar.extractfile("failure").read().decode()

    with pytest.raises(UnexpectedStatusException, match="Failed"):
        est2 = mxnet_estimator(session, "failing.py")
        est2.fit({"train": "file://" + mnist_small_dirs["train"]}, logs=False)


def test_missing_channel_is_a_clear_error(session, tmp_path):
    est = mxnet_estimator(session, "plain_mlp.py")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        est.fit({"train": "file://" + str(tmp_path / "nowhere")})


def test_mnist_mlp_fit_deploy_predict_and_bring_your_own_model(session, mnist_small_dirs, tmp_path):
    """The workload itself, with lib/smgluon shipped as a dependency; then the BYOM path."""
    from sagemaker.mxnet import MXNetModel

    est = mxnet_estimator(session, "mnist_mlp.py", source_dir=os.path.join(REPO, "entry_points"),
                          dependencies=[os.path.join(REPO, "lib", "smgluon")],
                          output_path="file://" + str(tmp_path / "out"),
                          hyperparameters={"epochs": 2, "learning_rate": 0.1, "max_train_samples": 2000})
    est.fit({"train": "file://" + mnist_small_dirs["train"], "test": "file://" + mnist_small_dirs["test"]})
    assert est.model_data == "file://%s/%s/output/model.tar.gz" % (tmp_path / "out", est.latest_training_job.name)
    assert os.path.isfile(_local_path(session, est.model_data))

    x, y = _images(mnist_small_dirs, 100)
    predictor = est.deploy(initial_instance_count=1, instance_type="local")
    try:
        # mnist_mlp takes raw 0-255 pixels and answers {"predictions": [labels]}.
        answer = predictor.predict(x.reshape(100, 784).astype("float32"))
        predictions = np.array(answer["predictions"])
        assert predictions.shape == (100,)
        assert (predictions == y).mean() > 0.8
    finally:
        predictor.delete_endpoint()

    model = MXNetModel(model_data=est.model_data, entry_point="mnist_mlp.py",
                       source_dir=os.path.join(REPO, "entry_points"),
                       dependencies=[os.path.join(REPO, "lib", "smgluon")],
                       role="arn:aws:iam::111111111111:role/any", framework_version="1.9.0", py_version="py38",
                       sagemaker_session=session)
    predictor = model.deploy(initial_instance_count=1, instance_type="local")
    try:
        answer = predictor.predict(x[:5].reshape(5, 784).astype("float32"))
        assert len(answer["predictions"]) == 5
    finally:
        predictor.delete_endpoint()
    assert live_processes_under(session.root_dir) == []


def test_cli_train_serve_predict(tmp_path, mnist_small_dirs, capsys):
    """`smgluon train`, then `smgluon serve` in its own process, `smgluon predict`, Ctrl-C."""
    import signal
    import subprocess
    import sys

    from smgluon_local.cli import main

    root, out = str(tmp_path / "root"), str(tmp_path / "out")
    entry_points = os.path.join(REPO, "entry_points")
    assert main(["train", "mnist_mlp", "--hp", "epochs=1", "--hp", "max_train_samples=1000",
                 "--train", mnist_small_dirs["train"], "--test", mnist_small_dirs["test"],
                 "--output", out, "--root", root, "--entry-points", entry_points]) == 0
    stdout = capsys.readouterr().out
    model = stdout.strip().splitlines()[-1].split("model: ")[1]
    assert os.path.isfile(model) and model.startswith(out)
    assert "validation_accuracy = " in stdout

    serve = subprocess.Popen([sys.executable, "-m", "smgluon_local.cli", "serve", model, "--workload", "mnist_mlp",
                              "--root", root, "--entry-points", entry_points],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = serve_url(serve, 120)
        x, _ = _images(mnist_small_dirs, 4)
        np.save(str(tmp_path / "four.npy"), x.reshape(4, 784).astype("float32"))
        assert main(["predict", "--endpoint", url, str(tmp_path / "four.npy")]) == 0
        assert len(json.loads(capsys.readouterr().out)["predictions"]) == 4
    finally:
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=60) == 0
    assert live_processes_under(root) == []



@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_cli_train_interrupted_stops_the_job_and_exits_130(tmp_path, sig):
    """Ctrl-C or SIGTERM during `smgluon train`: the job stops, no model is announced, status 130.

    The SDK's telemetry wrapper around fit() swallows the KeyboardInterrupt (a `return` in
    `finally`), so fit() returns as if the job had ended; the command must not go on as if it had.
    """
    import signal
    import subprocess
    import sys
    import time

    from local_helpers import FIXTURES, signal_and_time_exit

    root, data = str(tmp_path / "root"), tmp_path / "data"
    data.mkdir()
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        train = subprocess.Popen([sys.executable, "-m", "smgluon_local.cli", "train", "tuning_curve",
                                  "--hp", "epochs=100", "--hp", "seconds_per_epoch=0.5", "--training", str(data),
                                  "--output", str(tmp_path / "out"), "--root", root, "--entry-points", FIXTURES],
                                 stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while "metrics: epoch=1 " not in out.read_text():
            assert train.poll() is None, "smgluon train exited early:\n" + err.read_text()
            assert time.monotonic() < deadline, "the job's first epoch never came"
            time.sleep(0.1)
        took = signal_and_time_exit(train, getattr(signal, sig))
    finally:
        if train.poll() is None:
            train.kill()
            train.wait()
    assert train.returncode == 130, err.read_text()
    assert took < 20
    assert "model: " not in out.read_text() and "metrics: epoch=100 " not in out.read_text()
    assert err.read_text().rstrip().endswith("smgluon: interrupted")
    assert live_processes_under(root) == []

def test_model_fn_error_is_reported_at_deploy_and_predict(session, mnist_small_dirs, caplog):
    """As on SageMaker the endpoint goes InService; the load error is logged and every request fails."""
    from botocore.exceptions import ClientError

    est = mxnet_estimator(session, "broken_model.py")
    est.fit({"train": "file://" + mnist_small_dirs["train"]})
    with caplog.at_level("WARNING", logger="smgluon_local.endpoint"):
        predictor = est.deploy(initial_instance_count=1, instance_type="local")
    try:
        assert "broken_model: cannot load" in caplog.text
        with pytest.raises(ClientError, match="ModelError") as info:
            predictor.predict([[0.0] * 784])
        assert "(503)" in str(info.value)  # MMS's own answer; the reason is in the deploy warning
    finally:
        predictor.delete_endpoint()
    assert live_processes_under(session.root_dir) == []


def test_bad_requests_get_a_clean_4xx_and_the_server_keeps_serving(session, mnist_small_dirs, tmp_path):
    """mnist_mlp's client errors reach the client as status + message (no traceback), over HTTP and the SDK."""
    import urllib.error
    import urllib.request

    import mnist_mlp
    import mxnet as mx
    from botocore.exceptions import ClientError
    from sagemaker.mxnet import MXNetModel

    from smgluon_local.tarfiles import create_tar_gz

    model_dir, model_tar = str(tmp_path / "model"), str(tmp_path / "model.tar.gz")
    mnist_mlp.save(mnist_mlp.build_net([mx.cpu()], 0), model_dir)  # untrained: only the answers' form matters
    create_tar_gz(model_dir, model_tar)
    model = MXNetModel(model_data="file://" + model_tar, entry_point="mnist_mlp.py",
                       source_dir=os.path.join(REPO, "entry_points"),
                       dependencies=[os.path.join(REPO, "lib", "smgluon")],
                       role="arn:aws:iam::111111111111:role/any", framework_version="1.9.0", py_version="py38",
                       sagemaker_session=session)
    predictor = model.deploy(initial_instance_count=1, instance_type="local")
    url = session.endpoint_url(predictor.endpoint_name) + "/invocations"

    def post(body, content_type="application/json", accept="application/json"):
        req = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": content_type, "Accept": accept})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.headers.get("Content-Type"), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type"), e.read().decode()

    x, _ = _images(mnist_small_dirs, 2)
    good = json.dumps(x[:1].reshape(1, 784).tolist()).encode()
    try:
        for body, content_type, accept, status, message in [
            (b"[1, 2", "application/json", "application/json", 400,
             "invalid JSON payload: Expecting ',' delimiter: line 1 column 6 (char 5)"),
            (b"[1, 2, 3]", "application/json", "application/json", 400,
             "expected one image (784 values or 28x28) or a batch (Nx784 or Nx28x28); got shape (3,)"),
            (b"\x89PNG", "image/png", "application/json", 415,
             "unsupported content type 'image/png': send application/json, application/x-npy or text/csv"),
            (good, "application/json", "text/csv", 406,
             "unsupported accept type 'text/csv': this model answers application/json"),
        ]:
            answer = post(body, content_type, accept)
            assert answer == (status, "text/plain; charset=utf-8", message)
            # The server stays up: the next good request is answered.
            status_code, _, text = post(good)
            assert status_code == 200 and len(json.loads(text)["predictions"]) == 1

        # Through the SDK, the message is what the caller sees, as on SageMaker (ModelError).
        with pytest.raises(ClientError) as info:
            predictor.predict(np.zeros((2, 3), dtype="float32"))
        text = str(info.value)
        assert "(400)" in text and "got shape (2, 3)" in text
        assert "Traceback" not in text and 'File "' not in text
        assert len(predictor.predict(x.reshape(2, 784).astype("float32"))["predictions"]) == 2
    finally:
        predictor.delete_endpoint()
    assert live_processes_under(session.root_dir) == []
