"""Bring your own model through real local endpoints (multi-model-server + the SageMaker MXNet handler).

* The BYOM document's flow (its export by hand is notebooks/byom.ipynb's, executed by
  test_notebooks.py): a Module MLP trained here and packaged by ``package_model`` with
  its entry point (no ``model_fn``), deployed with ``MXNetModel(model_data=...,
  entry_point=...)``, asked about real MNIST test digits, deleted.
* The lab's flow: a model-zoo-style checkpoint (``ResNet-18-symbol.json``,
  ``ResNet-18-0126.params``, 1,000-line synset) and fmnist_cnn exported the same way,
  packaged with the image classifier, deployed and sent JPEG/PNG pictures of several
  sizes: the endpoint's top-5 equal the lab's in-process answer for the same bytes.
"""

import base64
import json
import os
import urllib.error
import urllib.request

import numpy as np
import pytest
from byom_models import (
    BYOM_SCRIPT,
    ZOO_EPOCH,
    ZOO_OPTIONS,
    digit_picture,
    fmnist_checkpoint,
    lab_scores,
    mnist_dict,
    picture_bytes,
    train_byom_module,
    zoo_checkpoint,
)

from smgluon.serving import softmax
from smgluon_local.package import package_model

pytestmark = pytest.mark.slow

ROLE = "arn:aws:iam::111111111111:role/any"
FRAMEWORK = {"framework_version": "1.9.0", "py_version": "py38"}


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    from smgluon_local import ProcessSession
    from smgluon_local.client import ProcessSagemakerClient

    sess = ProcessSession(root_dir=str(tmp_path_factory.mktemp("byom-root")), log_stream=False)
    yield sess
    for name in list(ProcessSagemakerClient._endpoints):  # left running by a failed test
        try:
            sess.sagemaker_client.delete_endpoint(EndpointName=name)
        except Exception:
            pass


def _model(session, archive, entry_point):
    from sagemaker.mxnet.model import MXNetModel

    return MXNetModel(
        model_data="file://" + archive, role=ROLE, entry_point=entry_point, sagemaker_session=session, **FRAMEWORK
    )


def _post(url, body, content_type, accept="application/json"):
    request = urllib.request.Request(
        url + "/invocations", data=body, method="POST", headers={"Content-Type": content_type, "Accept": accept}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_a_module_packaged_in_one_call_answers_the_right_digits(session, tmp_path):
    """The document's export by hand is run by notebooks/byom.ipynb (executed in CI); this is the one-call export."""
    model = train_byom_module(epochs=3)
    archive = package_model(model, str(tmp_path / "model.tar.gz"), entry_point=BYOM_SCRIPT)["path"]
    data = mnist_dict()
    images, labels = data["test_data"][:100], data["test_label"][:100]
    # the entry point travels in the archive's code/, so its name is enough (as smgluon serve does)
    predictor = _model(session, archive, "byom_mnist.py").deploy(initial_instance_count=1, instance_type="local")
    try:
        scores = np.array(predictor.predict(images.tolist()))
        assert predictor.predict(images[:1].tolist())[0] == pytest.approx(scores[0].tolist(), abs=1e-5)
    finally:
        predictor.delete_endpoint()
    assert scores.shape == (100, 10)
    assert np.mean(scores.argmax(axis=1) == labels) > 0.8  # the right digits for real MNIST test images


def _pictures():
    """JPEGs of several sizes and colour modes, a grey PNG and an RGBA PNG, from MNIST digits."""
    return [
        (picture_bytes(digit_picture(7, 448, 336), "JPEG", quality=90), "image/jpeg"),
        (picture_bytes(digit_picture(2, 1500, 630), "JPEG"), "image/jpeg"),
        (picture_bytes(digit_picture(1, 100, 120, mode="L"), "JPEG"), "image/jpeg"),
        (picture_bytes(digit_picture(0, 224, 224, mode="RGBA"), "PNG"), "image/png"),
    ]


@pytest.fixture(scope="module")
def zoo_archive(tmp_path_factory):
    """resnet18_v1 saved the model zoo's way, packaged by the command line as an image classifier."""
    from smgluon_local import cli

    root = str(tmp_path_factory.mktemp("zoo"))
    prefix, synset = zoo_checkpoint(root, "resnet18_v1", file_name="ResNet-18")
    archive = os.path.join(root, "model.tar.gz")
    assert (
        cli.main(
            [
                "package",
                prefix,
                "-o",
                archive,
                "--input-shape",
                "1,3,224,224",
                "--synset",
                synset,
                "--image-classifier",
                "--scale",
                repr(ZOO_OPTIONS["scale"]),
                "--mean",
                "0.485,0.456,0.406",
                "--std",
                "0.229,0.224,0.225",
                "--resize",
                "256",
            ]
        )
        == 0
    )
    with open(synset) as f:
        return prefix, archive, f.read().splitlines()


def _lab_top5(prefix, data):
    expected = softmax(lab_scores(prefix, ZOO_EPOCH, data, (1, 3, 224, 224), **ZOO_OPTIONS)[None])[0]
    best = np.argsort(-expected)[:5]
    return best.tolist(), expected[best]


def test_a_model_zoo_checkpoint_answers_jpegs_as_the_lab_does(session, zoo_archive):
    prefix, archive, names = zoo_archive
    model = _model(session, archive, "inference.py")
    model.deploy(initial_instance_count=1, instance_type="local")
    url = session.endpoint_url(model.endpoint_name)
    try:
        pictures = _pictures()
        for data, content_type in pictures:
            status, body = _post(url, data, content_type, "application/json; top_k=5")
            assert status == 200, body
            answer = json.loads(body)
            best, probabilities = _lab_top5(prefix, data)
            assert [item["class"] for item in answer["top_k"][0]] == best
            assert [item["label"] for item in answer["top_k"][0]] == [names[c] for c in best]
            np.testing.assert_allclose(
                [item["probability"] for item in answer["top_k"][0]], probabilities, rtol=1e-4, atol=2e-6
            )
        # a batch of pictures in one request
        batch = json.dumps({"instances": [{"b64": base64.b64encode(d).decode()} for d, _ in pictures]})
        status, body = _post(url, batch.encode(), "application/json")
        assert status == 200 and len(json.loads(body)["predictions"]) == len(pictures)
        # a bad picture is a 400 with the message alone, and the server keeps serving
        status, body = _post(url, pictures[0][0][:-500], "image/jpeg")
        assert status == 400 and body.startswith("the JPEG image is truncated or corrupt") and "Traceback" not in body
        assert _post(url, pictures[0][0], "image/jpeg")[0] == 200
    finally:
        session.sagemaker_client.delete_endpoint(EndpointName=model.endpoint_name)


def test_smgluon_serve_and_predict_a_packaged_classifier(zoo_archive, tmp_path, capsys):
    """The README's commands: `smgluon serve model.tar.gz` finds code/inference.py; `smgluon predict` a JPEG."""
    import signal
    import subprocess
    import sys

    from local_helpers import serve_url

    from smgluon_local.cli import main

    prefix, archive, names = zoo_archive
    root = str(tmp_path / "root")
    serve = subprocess.Popen(
        [sys.executable, "-m", "smgluon_local.cli", "serve", archive, "--root", root],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = serve_url(serve, 180)
        data, _ = _pictures()[0]
        (tmp_path / "photo.jpg").write_bytes(data)
        capsys.readouterr()
        assert main(["predict", "--endpoint", url, str(tmp_path / "photo.jpg"), "--accept", "application/json"]) == 0
        answer = json.loads(capsys.readouterr().out)
        assert answer["labels"] == [names[_lab_top5(prefix, data)[0][0]]]
    finally:
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=60) == 0


def test_batch_transform_of_a_folder_of_jpegs(session, zoo_archive, tmp_path):
    prefix, archive, names = zoo_archive
    folder = tmp_path / "pictures"
    folder.mkdir()
    pictures = {"%d.jpg" % i: data for i, (data, ctype) in enumerate(_pictures()) if ctype == "image/jpeg"}
    for name, data in pictures.items():
        (folder / name).write_bytes(data)
    transformer = _model(session, archive, "inference.py").transformer(
        instance_count=1,
        instance_type="local",
        accept="application/json",
        output_path="file://" + str(tmp_path / "out"),
    )
    transformer.transform("file://" + str(folder), content_type="image/jpeg", wait=True, logs=False)
    for name, data in pictures.items():
        answer = json.loads((tmp_path / "out" / (name + ".out")).read_text())
        assert [item["class"] for item in answer["top_k"][0]] == _lab_top5(prefix, data)[0]


def test_fmnist_cnn_exported_the_zoo_way_answers_its_labels(session, tmp_path, mnist_small_dirs):
    prefix, synset = fmnist_checkpoint(str(tmp_path), mnist_small_dirs)
    archive = package_model(prefix, str(tmp_path / "model.tar.gz"), synset=synset, image_classifier=True)["path"]
    model = _model(session, archive, "inference.py")
    model.deploy(initial_instance_count=1, instance_type="local")
    url = session.endpoint_url(model.endpoint_name)
    try:
        for index, size in ((3, (28, 28)), (4, (200, 150)), (5, (64, 64))):
            data = picture_bytes(digit_picture(index, *size, mode="L"), "PNG")
            status, body = _post(url, data, "image/png")
            assert status == 200, body
            expected = int(np.argmax(lab_scores(prefix, ZOO_EPOCH, data, (1, 1, 28, 28))))
            assert json.loads(body)["labels"] == [str(expected)]
    finally:
        session.sagemaker_client.delete_endpoint(EndpointName=model.endpoint_name)
