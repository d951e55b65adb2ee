"""mnist_mlp end to end on real MNIST slices: script mode, the legacy train() call, save → serve."""

import io
import json
import os
import re
import subprocess
import sys

import mnist_mlp
import mxnet as mx
import numpy as np
import pytest
from conftest import (
    ENTRY_POINTS,
    mnist_arrays,
    readme_hyperparameter_table,
    resumed_and_uninterrupted,
    run_script_mode,
    sagemaker_env,
)

from smgluon.context import DeviceError
from smgluon.hyperparameters import HyperparameterError
from smgluon.serving import RequestError


@pytest.fixture(scope="module")
def script_run(mnist_dirs, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("opt_ml"))
    hps = {"epochs": 2, "batch_size": 100, "learning_rate": 0.1, "momentum": 0.9, "log_interval": 40}
    proc = run_script_mode("mnist_mlp.py", root, {"train": mnist_dirs["train"], "test": mnist_dirs["test"]}, hps)
    return root, proc


@pytest.mark.slow
def test_script_mode_trains_and_saves(script_run):
    root, proc = script_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(os.listdir(os.path.join(root, "model"))) == [
        "model-0000.params",
        "model-shapes.json",
        "model-symbol.json",
    ]
    assert json.load(open(os.path.join(root, "model", "model-shapes.json"))) == [{"name": "data", "shape": [1, 784]}]
    saved = json.load(open(os.path.join(root, "output", "data", "metrics.json")))
    assert [e["epoch"] for e in saved["epochs"]] == [1, 2]
    assert saved["final"]["validation_accuracy"] >= 0.90
    assert not os.path.exists(os.path.join(root, "output", "failure"))


@pytest.mark.slow
def test_published_regexes_match_the_log(script_run):
    _, proc = script_run
    for definition in mnist_mlp.METRIC_DEFINITIONS:
        values = [float(m.group(1)) for m in re.finditer(definition["Regex"], proc.stdout)]
        assert len(values) == 2, definition  # one per epoch: the final_ line and JSON records don't match
    accuracy = re.compile(mnist_mlp.METRIC_DEFINITIONS[2]["Regex"])
    assert mnist_mlp.METRIC_DEFINITIONS[2]["Name"] == mnist_mlp.OBJECTIVE["metric"] == "validation_accuracy"
    assert float(accuracy.findall(proc.stdout)[-1]) >= 0.90


def test_bad_hyperparameter_fails_before_reading_data(tmp_path):
    env = sagemaker_env(str(tmp_path), {"train": str(tmp_path / "no-such-dir")}, {})
    proc = subprocess.run(
        [sys.executable, os.path.join(ENTRY_POINTS, "mnist_mlp.py"), "--epochs", "0", "--batch_size", "10"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    reason = (tmp_path / "output" / "failure").read_text()
    assert (
        reason.startswith("HyperparameterError: hyperparameter epochs=")
        and "expected an integer in [1, 1000]" in reason
    )
    assert not (tmp_path / "model").exists()


def test_missing_data_is_a_clear_failure(tmp_path):
    env = sagemaker_env(str(tmp_path), {"train": str(tmp_path)}, {})
    proc = subprocess.run(
        [sys.executable, os.path.join(ENTRY_POINTS, "mnist_mlp.py"), "--epochs", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert (tmp_path / "output" / "failure").read_text().startswith("ChannelError: no train images/labels IDX files in")


@pytest.fixture(scope="module")
def trained(mnist_dirs):
    # the workshop's notebook call: one 'training' channel, values as SageMaker's JSON-encoded strings
    net = mnist_mlp.train(
        {"training": mnist_dirs["training"]},
        hyperparameters={
            "epochs": "2",
            "batch_size": "100",
            "learning_rate": "0.1",
            "optimizer": '"sgd"',
            "log_interval": "0",
        },
        hosts=["local"],
        num_gpus=0,
    )
    return net


def test_legacy_train_call_returns_a_trained_net(trained):
    x, y = mnist_arrays()
    accuracy = mnist_mlp.evaluate(
        trained, mx.nd.array(x[8000:].reshape(2000, -1), dtype=np.uint8), mx.nd.array(y[8000:]), [mx.cpu()]
    )
    assert accuracy >= 0.90


def test_legacy_train_validates_its_arguments(mnist_small_dirs):
    with pytest.raises(HyperparameterError, match="Did you mean 'epochs'"):
        mnist_mlp.train({"training": mnist_small_dirs["training"]}, {"epoch": 1}, ["local"], 0)
    with pytest.raises(DeviceError, match="asked for 1 GPU"):
        mnist_mlp.train({"training": mnist_small_dirs["training"]}, {"epochs": 1}, ["local"], 1)


@pytest.fixture(scope="module")
def served(trained, tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("model"))
    mnist_mlp.save(trained, model_dir)
    return mnist_mlp.model_fn(model_dir)


@pytest.fixture(scope="module")
def images():
    x, _ = mnist_arrays()
    return x[9000:9016].reshape(16, 784).astype(np.float32)


def expected_classes(net, images):
    return net(mx.nd.array(images)).argmax(axis=1).asnumpy().astype(int).tolist()


def npy(array):
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def test_save_writes_only_the_model_files(served, trained, tmp_path):
    mnist_mlp.save(trained, str(tmp_path))
    assert sorted(os.listdir(str(tmp_path))) == ["model-0000.params", "model-shapes.json", "model-symbol.json"]


@pytest.mark.parametrize(
    "encode, content_type",
    [
        (lambda a: json.dumps(a.tolist()), "application/json"),
        (lambda a: json.dumps(a.reshape(-1, 28, 28).tolist()), "application/json"),
        (lambda a: json.dumps({"instances": a.tolist()}).encode(), "application/json; charset=utf-8"),
        (npy, "application/x-npy"),
        (lambda a: npy(a.reshape(-1, 28, 28).astype(np.uint8)), "application/x-npy"),
        (lambda a: "\n".join(",".join("%g" % v for v in row) for row in a), "text/csv"),
    ],
)
def test_served_model_predicts_like_the_trained_net(trained, served, images, encode, content_type):
    body, ctype = mnist_mlp.transform_fn(served, encode(images), content_type, "application/json")
    assert ctype == "application/json"
    assert json.loads(body) == {"predictions": expected_classes(trained, images)}


def test_one_image_and_probabilities(trained, served, images):
    body, _ = mnist_mlp.transform_fn(
        served, json.dumps(images[0].tolist()), "application/json", "application/json; probabilities=true"
    )
    answer = json.loads(body)
    assert answer["predictions"] == expected_classes(trained, images[:1])
    assert len(answer["probabilities"][0]) == 10 and abs(sum(answer["probabilities"][0]) - 1) < 1e-4
    body, _ = mnist_mlp.transform_fn(
        served, json.dumps({"instances": images[:2].tolist(), "probabilities": True}), "application/json", "*/*"
    )
    assert len(json.loads(body)["probabilities"]) == 2


@pytest.mark.parametrize(
    "data, content_type, accept, status, fragment",
    [
        ("[1, 2", "application/json", "application/json", 400, "invalid JSON payload"),
        (json.dumps([1, 2, 3]), "application/json", "application/json", 400, "got shape (3,)"),
        (json.dumps([[1] * 784, [1] * 3]), "application/json", "application/json", 400, "arrays of numbers"),
        (json.dumps([300] * 784), "application/json", "application/json", 400, "in 0-255"),
        (json.dumps([]), "application/json", "application/json", 400, "got shape (0,)"),
        (json.dumps({"images": []}), "application/json", "application/json", 400, '{"instances": [...]'),
        (
            json.dumps({"instances": [0] * 784, "probabilities": "yes"}),
            "application/json",
            "application/json",
            400,
            "must be true or false",
        ),
        (b"not npy", "application/x-npy", "application/json", 400, "invalid application/x-npy payload"),
        ("1,2\n3", "text/csv", "application/json", 400, "rows have different lengths"),
        ("a,b", "text/csv", "application/json", 400, "invalid text/csv payload"),
        (b"\x89PNG", "image/png", "application/json", 415, "unsupported content type 'image/png'"),
        (json.dumps([0] * 784), "application/json", "text/csv", 406, "unsupported accept type 'text/csv'"),
    ],
)
def test_bad_requests_are_client_errors(served, data, content_type, accept, status, fragment):
    with pytest.raises(RequestError) as err:
        mnist_mlp.transform_fn(served, data, content_type, accept)
    assert err.value.status_code == status and fragment in str(err.value)


def test_bound_model_scores_like_the_trained_net_for_any_batch_size(trained, images, tmp_path):
    from smgluon.serving import BoundModel

    mnist_mlp.save(trained, str(tmp_path))
    files = [str(tmp_path / "model-symbol.json"), str(tmp_path / "model-0000.params")]
    model = BoundModel(*files, max_shapes=2)
    for n in (1, 5, 16, 1, 3):  # more shapes than it keeps executors for
        expected = trained(mx.nd.array(images[:n])).asnumpy()
        np.testing.assert_allclose(model.predict(images[:n]), expected, rtol=1e-4, atol=1e-4)
    assert len(model._executors) == 2
    with pytest.raises(ValueError, match="has no input 'pixels'"):
        BoundModel(*files, input_name="pixels")


def test_the_inference_toolkit_answers_a_bad_request_with_its_status_and_message(trained, tmp_path, monkeypatch):
    """What the serving container runs per request: the toolkit's Transformer on a model server context."""
    from mms.context import Context, RequestProcessor
    from sagemaker_inference.transformer import Transformer

    mnist_mlp.save(trained, str(tmp_path))
    monkeypatch.setenv("SAGEMAKER_PROGRAM", "mnist_mlp.py")
    transformer = Transformer()
    context = Context("model", str(tmp_path), None, 1, None, "1.1.11")  # one per worker, as in MMS

    def request(body, content_type="application/json"):
        context.request_processor = [RequestProcessor({"Content-Type": content_type, "Accept": "application/json"})]
        answer = transformer.transform([{"body": body}], context)
        return answer, context.get_response_status(0), context.get_response_content_type(0)

    assert request(b"[1, 2, 3]") == (
        ["expected one image (784 values or 28x28) or a batch (Nx784 or Nx28x28); got shape (3,)"],
        (400, "Bad Request"),
        "text/plain; charset=utf-8",
    )
    answer, status, content_type = request(b"\x89PNG", "image/png")
    assert status == (415, "Unsupported Media Type") and "Traceback" not in answer[0]
    image = mnist_arrays()[0][9000:9001].reshape(1, 784)
    answer, _, content_type = request(json.dumps(image.tolist()).encode())
    assert json.loads(answer[0]) == {"predictions": expected_classes(trained, image)}
    assert content_type == "application/json"


def test_checkpoints_resume(mnist_small_dirs, tmp_path):
    hps = {"epochs": 1, "log_interval": 0}
    channels = {"train": mnist_small_dirs["train"], "test": mnist_small_dirs["test"]}
    mnist_mlp.train(
        channels, hps, ["local"], 0, checkpoint_dir=str(tmp_path / "ckpt"), output_data_dir=str(tmp_path / "a")
    )
    assert sorted(os.listdir(str(tmp_path / "ckpt"))) == [
        "epoch-0001.metrics.json",
        "epoch-0001.params",
        "epoch-0001.states",
    ]
    hps["epochs"] = 2
    mnist_mlp.train(
        channels, hps, ["local"], 0, checkpoint_dir=str(tmp_path / "ckpt"), output_data_dir=str(tmp_path / "b")
    )
    # The resumed run's metrics.json lists every epoch, as an uninterrupted run's does.
    first = json.load(open(str(tmp_path / "a" / "metrics.json")))
    resumed = json.load(open(str(tmp_path / "b" / "metrics.json")))
    assert [e["epoch"] for e in resumed["epochs"]] == [1, 2]
    assert resumed["epochs"][0] == first["epochs"][0]
    # Resumed after its last epoch: nothing left to train, and metrics.json still holds the run.
    mnist_mlp.train(
        channels, hps, ["local"], 0, checkpoint_dir=str(tmp_path / "ckpt"), output_data_dir=str(tmp_path / "c")
    )
    again = json.load(open(str(tmp_path / "c" / "metrics.json")))
    assert again["epochs"] == resumed["epochs"]


def test_a_resumed_run_trains_as_an_uninterrupted_one(mnist_small_dirs, tmp_path):
    channels = {"train": mnist_small_dirs["train"], "test": mnist_small_dirs["test"]}
    resumed, uninterrupted = resumed_and_uninterrupted(
        mnist_mlp.train, channels, {"log_interval": 0, "max_train_samples": 1000}, tmp_path
    )
    assert resumed == pytest.approx(uninterrupted, rel=1e-6)


def test_default_mxnet_handler_loads_the_saved_model(trained, images, tmp_path):
    """Bring-your-own-model: the serving container's default handler (no model_fn) predicts the same classes."""
    from sagemaker_mxnet_serving_container.default_inference_handler import DefaultModuleInferenceHandler

    mnist_mlp.save(trained, str(tmp_path))
    handler = DefaultModuleInferenceHandler()
    module = handler.default_model_fn(str(tmp_path))
    batch = handler.default_input_fn(json.dumps(images.tolist()), "application/json", module)
    scores = np.array(
        json.loads(handler.default_output_fn(handler.default_predict_fn(batch, module), "application/json"))
    )
    assert scores.argmax(axis=1).tolist() == expected_classes(trained, images)


def test_readme_documents_the_current_hyperparameters():
    assert readme_hyperparameter_table("mnist_mlp") == mnist_mlp.HYPERPARAMETERS.markdown_table()
