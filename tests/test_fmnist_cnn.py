"""fmnist_cnn on real MNIST slices (../shared/data has no Fashion-MNIST; the net and files are the same):
training on one and several devices, the schedule and augmentation, save → serve with PNG/JPEG/JSON/NPY,
client errors, script mode and the docker-free local mode."""

import io
import json
import os
import re

import fmnist_cnn
import mxnet as mx
import numpy as np
import pytest
from conftest import mnist_arrays, readme_hyperparameter_table, run_script_mode
from PIL import Image

from smgluon import images
from smgluon.hyperparameters import HyperparameterError
from smgluon.serving import RequestError, encode_npy

FAST = {"log_interval": 0, "augment": "none", "classes": "mnist"}


def encode(array, fmt, **kwargs):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt, **kwargs)
    return buf.getvalue()


@pytest.fixture(scope="module")
def trained(mnist_dirs):
    # the workshop's notebook call: one 'training' channel, values as SageMaker's JSON-encoded strings
    hps = {"epochs": "1", "batch_size": "100", "learning_rate": "0.1", "optimizer": '"sgd"', "classes": '"mnist"'}
    hps.update(augment='"none"', max_train_samples="3000", log_interval="0")
    return fmnist_cnn.train({"training": mnist_dirs["training"]}, hps, ["local"], 0)


@pytest.fixture(scope="module")
def served(trained, tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("model"))
    fmnist_cnn.save(trained, model_dir)
    return fmnist_cnn.model_fn(model_dir)


@pytest.fixture(scope="module")
def test_images():
    x, y = mnist_arrays()
    return x[9000:9032], y[9000:9032]


def predict(net, data, content_type, accept="application/json"):
    body, ctype = fmnist_cnn.transform_fn(net, data, content_type, accept)
    assert ctype == "application/json"
    return json.loads(body)


# ---------------------------------------------------------------- training


def test_trains_on_mnist_files_and_names_the_classes(trained):
    x, y = mnist_arrays()
    x, y = mx.nd.array(x[8000:, None], dtype=np.uint8), mx.nd.array(y[8000:])
    assert fmnist_cnn.evaluate(trained, x, y, [mx.cpu()]) >= 0.85  # 3,000 images, one epoch
    assert trained.labels == [str(d) for d in range(10)]


def test_several_devices_step_with_the_global_batch(mnist_small_dirs, tmp_path):
    """Steps over two CPU contexts (split_and_load, summed gradients, step(batch)) equal those over one context."""
    hps = dict(FAST, epochs=1, max_train_samples=1000, batch_norm=False, dropout=0.0, momentum=0.9)
    channels = {"train": mnist_small_dirs["train"], "test": mnist_small_dirs["test"]}
    one = fmnist_cnn.train(channels, hps, ["local"], 0, ctx=[mx.cpu(0)])
    two = fmnist_cnn.train(channels, hps, ["local"], 0, ctx=[mx.cpu(0), mx.cpu(1)], output_data_dir=str(tmp_path))
    x = mx.nd.array(mnist_arrays()[0][9000:9100][:, None], dtype=np.uint8)
    np.testing.assert_allclose(one(x).asnumpy(), two(x.as_in_context(mx.cpu(0))).asnumpy(), rtol=1e-3, atol=1e-3)
    saved = json.load(open(str(tmp_path / "metrics.json")))
    assert [e["epoch"] for e in saved["epochs"]] == [1] and saved["hyperparameters"]["batch_norm"] is False


def test_batch_norm_dropout_and_augmentation_train_on_three_contexts(mnist_small_dirs):
    hps = {"epochs": 1, "log_interval": 0, "augment": "flip_shift", "lr_schedule": "step", "warmup_epochs": 1}
    hps["max_train_samples"] = 600
    net = fmnist_cnn.train(
        {"training": mnist_small_dirs["training"]}, hps, ["local"], 0, ctx=[mx.cpu(i) for i in range(3)]
    )
    assert net.labels[0] == "T-shirt/top"
    blocks = [type(b).__name__ for b in net.body._children.values()]
    assert blocks.count("BatchNorm") == 3 and blocks.count("Dropout") == 1


def test_learning_rate_schedules():
    hps = fmnist_cnn.HYPERPARAMETERS.parse_dict({"epochs": 10, "learning_rate": 0.1})
    cosine = fmnist_cnn.lr_scheduler(hps, num_batches=600)
    assert cosine(0) == pytest.approx(0.1) and cosine(3000) == pytest.approx(0.05) and cosine(6000) < 1e-9
    step = fmnist_cnn.lr_scheduler(dict(hps, lr_schedule="step", lr_decay_epochs=4, lr_decay=0.1), 600)
    assert [step(n) for n in (1, 2400, 2401, 4801)] == pytest.approx([0.1, 0.1, 0.01, 0.001])
    warm = fmnist_cnn.lr_scheduler(dict(hps, lr_schedule="constant", warmup_epochs=1), 600)
    assert warm(300) == pytest.approx(0.05) and warm(600) == warm(6000) == pytest.approx(0.1)
    assert fmnist_cnn.lr_scheduler(dict(hps, lr_schedule="constant"), 600) is None


def test_augmentations_mirror_and_shift_whole_images():
    mx.random.seed(3)
    x = mx.nd.array(np.random.RandomState(0).randint(1, 256, (200, 1, 28, 28)), dtype=np.uint8)
    flipped = fmnist_cnn.augment(x, "flip").asnumpy()
    same = (flipped == x.asnumpy()).all(axis=(1, 2, 3))
    mirrored = (flipped == x.asnumpy()[..., ::-1]).all(axis=(1, 2, 3))
    assert (same | mirrored).all() and 60 < mirrored.sum() < 140
    shifted = fmnist_cnn.augment(x[:20], "shift").asnumpy()
    padded = np.pad(x[:20].asnumpy().astype(np.float32), ((0, 0), (0, 0), (2, 2), (2, 2)))
    for i in range(20):
        candidates = [padded[i, :, 2 + dy : 30 + dy, 2 + dx : 30 + dx] for dy in range(-2, 3) for dx in range(-2, 3)]
        assert min(np.abs(shifted[i] - c).max() for c in candidates) < 1e-3


def test_legacy_train_validates_its_arguments(mnist_small_dirs):
    with pytest.raises(HyperparameterError, match="Did you mean 'augment'"):
        fmnist_cnn.train({"training": mnist_small_dirs["training"]}, {"augmnt": "flip"}, ["local"], 0)
    with pytest.raises(HyperparameterError, match=r"augment=\"rotate\" is not allowed"):
        fmnist_cnn.train({"training": mnist_small_dirs["training"]}, {"augment": "rotate"}, ["local"], 0)


def test_checkpoints_resume(mnist_small_dirs, tmp_path):
    hps = dict(FAST, epochs=1, max_train_samples=500)
    channels = {"train": mnist_small_dirs["train"], "test": mnist_small_dirs["test"]}
    ckpt = str(tmp_path / "ckpt")
    fmnist_cnn.train(channels, hps, ["local"], 0, checkpoint_dir=ckpt, output_data_dir=str(tmp_path / "a"))
    assert sorted(os.listdir(ckpt)) == ["epoch-0001.metrics.json", "epoch-0001.params", "epoch-0001.states"]
    fmnist_cnn.train(
        channels, dict(hps, epochs=2), ["local"], 0, checkpoint_dir=ckpt, output_data_dir=str(tmp_path / "b")
    )
    resumed = json.load(open(str(tmp_path / "b" / "metrics.json")))
    assert [e["epoch"] for e in resumed["epochs"]] == [1, 2]  # the resumed run keeps the first epoch's metrics


# ---------------------------------------------------------------- save and serve


def test_save_writes_the_model_and_its_class_names(trained, tmp_path):
    fmnist_cnn.save(trained, str(tmp_path))
    assert sorted(os.listdir(str(tmp_path))) == [
        "model-0000.params",
        "model-shapes.json",
        "model-symbol.json",
        "synset.txt",
    ]
    assert (tmp_path / "synset.txt").read_text().split("\n")[:3] == ["0", "1", "2"]
    assert json.load(open(str(tmp_path / "model-shapes.json"))) == [{"name": "data", "shape": [1, 1, 28, 28]}]


@pytest.mark.parametrize(
    "encoder, content_type",
    [
        (lambda a: json.dumps(a.tolist()), "application/json"),
        (lambda a: json.dumps(a.reshape(-1, 784).tolist()).encode(), "application/json; charset=utf-8"),
        (lambda a: json.dumps({"instances": a.tolist()}), "application/json"),
        (lambda a: encode_npy(a), "application/x-npy"),
        (lambda a: encode_npy(a[:, None].astype(np.float32)), "application/x-npy"),
        (lambda a: "\n".join(",".join(str(v) for v in row) for row in a.reshape(-1, 784)), "text/csv"),
    ],
)
def test_served_model_predicts_like_the_trained_net(trained, served, test_images, encoder, content_type):
    x, _ = test_images
    expected = trained(mx.nd.array(x[:, None], dtype=np.uint8)).argmax(axis=1).asnumpy().astype(int).tolist()
    answer = predict(served, encoder(x), content_type)
    assert answer == {"predictions": expected, "labels": [str(c) for c in expected]}


def test_top_k_and_probabilities(served, test_images):
    x, _ = test_images
    answer = predict(
        served, json.dumps(x[0].tolist()), "application/json", "application/json; top_k=3; probabilities=true"
    )
    (best,) = answer["top_k"]
    assert [b["class"] for b in best][0] == answer["predictions"][0] and len(best) == 3
    assert (
        best[0]["label"] == answer["labels"][0]
        and best[0]["probability"] >= best[1]["probability"] >= best[2]["probability"]
    )
    assert abs(sum(answer["probabilities"][0]) - 1) < 1e-4
    answer = predict(served, json.dumps({"instances": x[:2].tolist(), "top_k": 10}), "application/json", "*/*")
    assert [len(row) for row in answer["top_k"]] == [10, 10] and "probabilities" not in answer


def test_png_of_a_data_set_image_is_the_same_input_as_its_pixels(served, test_images):
    x, _ = test_images
    accept = "application/json; probabilities=true"
    for image in x[:5]:
        from_png = predict(served, encode(image, "PNG"), "image/png", accept)
        from_json = predict(served, json.dumps(image.tolist()), "application/json", accept)
        np.testing.assert_allclose(from_png["probabilities"], from_json["probabilities"], atol=1e-5)


def test_photo_like_pictures_are_inverted_trimmed_and_scaled(served, test_images):
    """Dark ink on white, 4x larger, colour, JPEG: the endpoint turns it back into an MNIST-like input."""
    x, y = test_images
    from_photos, from_pixels = [], predict(served, json.dumps(x.tolist()), "application/json")["predictions"]
    for image in x:
        photo = np.kron(255 - image, np.ones((4, 4), dtype=np.uint8))  # 112x112, white background
        rgb = np.stack([photo, photo, np.minimum(photo.astype(int) + 10, 255).astype(np.uint8)], axis=-1)
        from_photos += predict(served, encode(rgb, "JPEG", quality=90), "image/jpeg")["predictions"]
    # resampling and JPEG change pixels, so a one-epoch model changes its mind on a few borderline digits
    assert np.mean(np.equal(from_photos, from_pixels)) >= 0.8
    assert np.mean(np.equal(from_photos, y)) >= np.mean(np.equal(from_pixels, y)) - 0.1


def test_model_image_conversion():
    digit = np.zeros((28, 28), np.uint8)
    digit[4:24, 10:18] = 200  # a 20x8 stroke
    # a 28x28 picture in the data set's convention passes unchanged; on white it is inverted only
    assert (images.to_model_image(digit) == digit).all()
    assert (images.to_model_image(255 - digit) == digit).all()
    assert (images.to_model_image(255 - digit, invert=False) == 255 - digit).all()
    # a larger picture with margins: trimmed, the long side scaled to the box, centred
    big = np.full((300, 200), 255, np.uint8)
    big[100:200, 50:100] = 0  # black 100x50 object on white
    out = images.to_model_image(big, box=20)
    rows, cols = np.flatnonzero(out.max(axis=1) > 128), np.flatnonzero(out.max(axis=0) > 128)
    assert (rows[0], rows[-1], cols[0], cols[-1]) == (4, 23, 9, 18)
    assert out[0, 0] == 0  # background
    # centred by mass: an L's heavy bottom bar moves its centre of mass down, so the shape moves up
    ell = np.full((200, 200), 255, np.uint8)
    ell[20:180, 20:40], ell[160:180, 20:180] = 0, 0
    by_box, by_mass = images.to_model_image(ell, box=20), images.to_model_image(ell, box=20, centre="mass")
    assert np.flatnonzero(by_box.max(axis=1) > 128)[0] == 4 and np.flatnonzero(by_mass.max(axis=1) > 128)[0] < 4
    # colour with alpha, and 16-bit grey, decode to one 8-bit channel
    rgba = np.dstack([np.full((40, 30, 3), 255, np.uint8), np.full((40, 30), 128, np.uint8)])
    assert images.decode_image(encode(rgba, "PNG")).shape == (40, 30)
    deep = images.decode_image(encode((np.arange(1200).reshape(40, 30) * 50).astype(np.uint16), "PNG"))
    assert deep.dtype == np.uint8 and deep.shape == (40, 30)
    blank = images.to_model_image(np.full((50, 50), 255, np.uint8))
    assert blank.shape == (28, 28) and (blank == 0).all()


def test_fashion_class_names_and_the_box_for_garments(served, tmp_path):
    served.labels = fmnist_cnn.CLASS_NAMES["fashion-mnist"]
    try:
        answer = predict(served, encode(np.full((60, 40), 255, np.uint8), "PNG"), "image/png")
        assert answer["labels"] == [fmnist_cnn.CLASS_NAMES["fashion-mnist"][answer["predictions"][0]]]
    finally:
        served.labels = fmnist_cnn.CLASS_NAMES["mnist"]
    (tmp_path / "synset.txt").write_text("a\nb\n")
    with pytest.raises(ValueError, match="names 2 classes; the net has 10"):
        fmnist_cnn.model_fn(str(tmp_path))


PNG_HEADER = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


@pytest.mark.parametrize(
    "data, content_type, accept, status, fragment",
    [
        (b"GIF89a....", "image/png", "application/json", 400, "not a PNG or JPEG image"),
        (b"", "image/jpeg", "application/json", 400, "the request body is empty"),
        (
            PNG_HEADER + b"\x00\x00\x00\x1c\x00\x00\x00\x1c" + b"garbage",
            "image/png",
            "application/json",
            400,
            "PNG image is truncated or corrupt",
        ),
        ("CORRUPT_PNG", "image/png", "application/json", 400, "PNG image is corrupt: the CRC of its 'IDAT' chunk"),
        ("TRUNCATED_PNG", "image/png", "application/json", 400, "PNG image is truncated or corrupt"),
        ("TRUNCATED_JPEG", "image/jpeg", "application/json", 400, "JPEG image is truncated or corrupt"),
        (PNG_HEADER + b"\x00\x01\x86\xa0\x00\x01\x86\xa0", "image/png", "application/json", 400, "too large"),
        (PNG_HEADER + b"\x00\x00\x00\x00\x00\x00\x00\x10", "image/png", "application/json", 400, "image is empty"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg", "application/json", 400, "no frame header"),
        ("VALID_PNG", "image/png; invert=maybe", "application/json", 400, "invert must be auto, true or false"),
        ("VALID_PNG", "image/png", "application/json; top_k=11", 400, "top_k must be an integer from 1 to 10"),
        ("VALID_PNG", "image/png", "application/json; probabilities=yes", 400, "probabilities must be true or false"),
        ("VALID_PNG", "image/png", "text/csv", 406, "unsupported accept type 'text/csv'"),
        ("VALID_PNG", "image/gif", "application/json", 415, "send image/png, image/jpeg, application/json"),
        (json.dumps({"instances": [[0] * 784], "top_k": 0}), "application/json", "application/json", 400, "top_k"),
        (json.dumps({"images": []}), "application/json", "application/json", 400, '{"instances": [...]'),
        (json.dumps([[0] * 783]), "application/json", "application/json", 400, "got shape (1, 783)"),
        (json.dumps([[-1] * 784]), "application/json", "application/json", 400, "in 0-255"),
        ("[1, 2", "application/json", "application/json", 400, "invalid JSON payload"),
    ],
)
def test_bad_requests_are_client_errors(served, data, content_type, accept, status, fragment):
    picture = np.random.RandomState(0).randint(0, 256, (50, 40), dtype=np.uint8)
    data = {
        "VALID_PNG": encode(picture, "PNG"),
        "TRUNCATED_PNG": encode(picture, "PNG")[:-20],
        "CORRUPT_PNG": encode(picture, "PNG")[:100] + b"\x00" + encode(picture, "PNG")[101:],
        "TRUNCATED_JPEG": encode(picture, "JPEG")[:-200],
    }.get(data, data)
    with pytest.raises(RequestError) as err:
        fmnist_cnn.transform_fn(served, data, content_type, accept)
    assert err.value.status_code == status and fragment in str(err.value)


def test_default_mxnet_handler_loads_the_saved_model(trained, test_images, tmp_path):
    """Bring-your-own-model: the serving container's default handler (no model_fn) predicts the same classes."""
    from sagemaker_mxnet_serving_container.default_inference_handler import DefaultModuleInferenceHandler

    x, _ = test_images
    fmnist_cnn.save(trained, str(tmp_path))
    handler = DefaultModuleInferenceHandler()
    module = handler.default_model_fn(str(tmp_path))
    batch = handler.default_input_fn(json.dumps(x[:, None].tolist()), "application/json", module)
    scores = np.array(
        json.loads(handler.default_output_fn(handler.default_predict_fn(batch, module), "application/json"))
    )
    expected = trained(mx.nd.array(x[:, None], dtype=np.uint8)).argmax(axis=1).asnumpy()
    assert (scores.argmax(axis=1) == expected).all()


def test_cli_predict_sends_pictures_as_images(tmp_path):
    from smgluon_local.cli import _request_body

    png, jpeg = tmp_path / "shirt.PNG", tmp_path / "shirt.jpg"
    png.write_bytes(encode(np.zeros((28, 28), np.uint8), "PNG"))
    jpeg.write_bytes(encode(np.zeros((28, 28), np.uint8), "JPEG"))
    assert _request_body(str(png), None) == (png.read_bytes(), "image/png")
    assert _request_body(str(jpeg), None) == (jpeg.read_bytes(), "image/jpeg")


def test_readme_documents_the_current_hyperparameters():
    assert readme_hyperparameter_table("fmnist_cnn") == fmnist_cnn.HYPERPARAMETERS.markdown_table()


# ---------------------------------------------------------------- script mode and local mode


def test_bad_hyperparameter_fails_before_reading_data(tmp_path):
    proc = run_script_mode("fmnist_cnn.py", str(tmp_path), {"train": str(tmp_path / "no-such-dir")}, {"dropout": 1.5})
    assert proc.returncode == 1
    reason = (tmp_path / "output" / "failure").read_text()
    assert reason.startswith("HyperparameterError: hyperparameter dropout=") and "[0.0, 0.9]" in reason
    assert not (tmp_path / "model").exists()


@pytest.mark.slow
def test_script_mode_trains_and_saves(mnist_small_dirs, tmp_path):
    hps = dict(FAST, epochs=2, max_train_samples=1000)
    proc = run_script_mode(
        "fmnist_cnn.py", str(tmp_path), {"train": mnist_small_dirs["train"], "test": mnist_small_dirs["test"]}, hps
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(os.listdir(tmp_path / "model")) == [
        "model-0000.params",
        "model-shapes.json",
        "model-symbol.json",
        "synset.txt",
    ]
    for definition in fmnist_cnn.METRIC_DEFINITIONS:
        assert len(re.findall(definition["Regex"], proc.stdout)) == 2, definition
    saved = json.load(open(str(tmp_path / "output" / "data" / "metrics.json")))
    assert saved["final"]["validation_accuracy"] >= 0.8


@pytest.mark.slow
def test_local_mode_fit_deploy_and_a_png_answers_the_label_name(mnist_small_dirs, tmp_path, test_images):
    """The docker-free local mode: fit, deploy, POST a PNG and a JPEG; a bad image is a 400 and the server stays up."""
    import sagemaker.mxnet  # noqa: F401 - before the no-network guard: the SDK probes at import time
    from botocore.exceptions import ClientError
    from local_helpers import REPO, NoInternet, live_processes_under, mxnet_estimator
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.serializers import IdentitySerializer

    from smgluon_local import ProcessSession

    x, _ = test_images
    with NoInternet() as guard:
        session = ProcessSession(root_dir=str(tmp_path / "root"))
        est = mxnet_estimator(
            session,
            "fmnist_cnn.py",
            source_dir=os.path.join(REPO, "entry_points"),
            dependencies=[os.path.join(REPO, "lib", "smgluon")],
            hyperparameters={"epochs": 1, "max_train_samples": 2000, "log_interval": 0, "augment": "none"},
            metric_definitions=fmnist_cnn.METRIC_DEFINITIONS,
        )
        est.fit({"train": "file://" + mnist_small_dirs["train"], "test": "file://" + mnist_small_dirs["test"]})
        predictor = est.deploy(initial_instance_count=1, instance_type="local")
        try:
            # MNIST digits stand in for garments here; the class names are Fashion-MNIST's (the default).
            predictor.serializer = IdentitySerializer("image/png")
            predictor.deserializer = JSONDeserializer()
            answer = predictor.predict(encode(x[0], "PNG"))
            assert answer["labels"] == [fmnist_cnn.CLASS_NAMES["fashion-mnist"][answer["predictions"][0]]]
            with pytest.raises(ClientError, match="not a PNG or JPEG image"):
                predictor.predict(b"definitely not a picture")
            predictor.serializer = IdentitySerializer("image/jpeg")
            photo = np.kron(255 - x[1], np.ones((3, 3), dtype=np.uint8))
            answer = predictor.predict(encode(photo, "JPEG"), initial_args={"Accept": "application/json; top_k=2"})
            assert len(answer["top_k"][0]) == 2 and answer["top_k"][0][0]["label"] == answer["labels"][0]
        finally:
            predictor.delete_endpoint()
    assert guard.attempts == []
    assert live_processes_under(session.root_dir) == []
