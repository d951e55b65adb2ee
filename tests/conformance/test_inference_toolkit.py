"""sagemaker-mxnet-inference-toolkit's local tests (scenarios 8-10), and model_data in every form.

The toolkit's default handler serves a Module checkpoint when the entry point has
no ``model_fn``; these are the models and scripts AWS tests it with.
"""

import json
import os
import tarfile
import urllib.request

import numpy as np
import pytest

from conformance.common import FRAMEWORK, INFERENCE, ROLE, module_forward

pytestmark = pytest.mark.slow

DEFAULT_MODEL_DIR = os.path.join(INFERENCE, "default_handlers", "model")
EMPTY_MODULE = os.path.join(DEFAULT_MODEL_DIR, "code", "empty_module.py")


def _model(session, model_data, entry_point=EMPTY_MODULE, **kwargs):
    from sagemaker.mxnet import MXNetModel

    return MXNetModel(model_data=model_data, entry_point=entry_point, role=ROLE, sagemaker_session=session,
                      **FRAMEWORK, **kwargs)


def _model_data(form, session):
    """The default_handlers model as each kind of ``model_data`` the SDK accepts."""
    tar = os.path.join(INFERENCE, "default_handlers", "model.tar.gz")
    if form == "file-dir":
        return "file://" + DEFAULT_MODEL_DIR
    if form == "file-tar":
        return "file://" + tar
    if form == "path-tar":
        return tar
    if form == "path-dir":
        return DEFAULT_MODEL_DIR
    if form == "s3-tar":
        return session.upload_data(tar, key_prefix="conformance/default_handlers")
    raise AssertionError(form)


def _post_json(url, payload):
    request = urllib.request.Request(url + "/invocations", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.headers.get("Content-Type"), response.read().decode()


def test_default_model_fn_serves_a_model_directory(session):
    """Scenario 8: a ``file://`` model directory (not a tar) served by the default handler, answering JSON."""
    predictor = _model(session, _model_data("file-dir", session)).deploy(1, "local")
    try:
        assert predictor.predict([[1, 2]]) == [[4.9999918937683105]]
        content_type, body = _post_json(session.endpoint_url(predictor.endpoint_name), [[1, 2]])
        assert content_type == "application/json"
        assert json.loads(body) == [[4.9999918937683105]]
    finally:
        predictor.delete_endpoint()


@pytest.mark.parametrize("form", ["file-tar", "path-tar", "path-dir", "s3-tar"])
def test_model_data_in_every_form(session, form):
    """Part 3: file:// directory (above), file:// tar.gz, a plain local path to either, emulated s3://."""
    predictor = _model(session, _model_data(form, session)).deploy(1, "local")
    try:
        assert predictor.predict([[1, 2]]) == [[4.9999918937683105]]
    finally:
        predictor.delete_endpoint()


def test_uncompressed_model_data_source(session):
    """model_data as a ModelDataSource dict: an uncompressed S3 prefix of model files, served as they are."""
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.image_uris import retrieve
    from sagemaker.model import Model
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import JSONSerializer

    prefix = session.upload_data(DEFAULT_MODEL_DIR, key_prefix="conformance/uncompressed-model")
    model = Model(image_uri=retrieve("mxnet", session.boto_region_name, version="1.9.0", py_version="py38",
                                     instance_type="ml.c5.xlarge", image_scope="inference"),
                  model_data={"S3DataSource": {"S3Uri": prefix + "/", "S3DataType": "S3Prefix",
                                               "CompressionType": "None"}},
                  env={"SAGEMAKER_PROGRAM": "empty_module.py"}, role=ROLE, sagemaker_session=session)
    model.deploy(1, "local", endpoint_name="conformance-uncompressed-model")
    predictor = Predictor("conformance-uncompressed-model", sagemaker_session=session, serializer=JSONSerializer(),
                          deserializer=JSONDeserializer())
    try:
        assert predictor.predict([[1, 2]]) == [[4.9999918937683105]]
    finally:
        predictor.delete_endpoint()


def test_missing_model_data_is_a_clear_error(session, tmp_path):
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(FileNotFoundError, match="model_data file://%s: .* does not exist" % missing):
        _model(session, "file://" + missing).deploy(1, "local")


def test_hosting_with_model_fn_and_transform_fn(session):
    """Scenario 9: the code directory as model_data, a model_fn and transform_fn that echo the request."""
    from sagemaker.deserializers import StringDeserializer
    from sagemaker.serializers import IdentitySerializer

    code = os.path.join(INFERENCE, "dummy_hosting", "code")
    predictor = _model(session, "file://" + code, entry_point=os.path.join(code, "dummy_hosting_module.py")).deploy(
        1, "local", serializer=IdentitySerializer(), deserializer=StringDeserializer())
    try:
        assert predictor.predict(b"some data") == "some data"
    finally:
        predictor.delete_endpoint()


def _export_gluon_net(model_dir, shapes=True):
    """A small HybridBlock exported as SageMaker's Gluon examples do (``model-symbol.json``, ``model-0000.params``)."""
    import mxnet as mx
    from mxnet import gluon

    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(8, activation="relu"), gluon.nn.Dense(3))
    net.initialize(mx.init.Xavier())
    net.hybridize()
    batch = np.arange(12, dtype="float32").reshape(3, 4) / 10
    expected = net(mx.nd.array(batch)).asnumpy()
    os.makedirs(model_dir, exist_ok=True)
    net.export(os.path.join(model_dir, "model"), epoch=0)
    if shapes:
        # The default model_fn binds a Module to the shapes listed here; Gluon's export writes none.
        with open(os.path.join(model_dir, "model-shapes.json"), "w") as f:
            json.dump([{"name": "data", "shape": [1, 4]}], f)
    return batch, expected


def test_default_handler_serves_a_gluon_export(session, tmp_path):
    """Part 2: HybridBlock.export's files, with model-shapes.json beside them, load through the default model_fn."""
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.serializers import JSONSerializer

    batch, expected = _export_gluon_net(str(tmp_path / "gluon"))
    predictor = _model(session, "file://" + str(tmp_path / "gluon")).deploy(
        1, "local", serializer=JSONSerializer(), deserializer=JSONDeserializer())
    try:
        np.testing.assert_allclose(np.array(predictor.predict(batch.tolist())), expected, rtol=1e-5, atol=1e-6)
    finally:
        predictor.delete_endpoint()


def test_default_handler_names_the_missing_shapes_file(session, tmp_path):
    """Without model-shapes.json the default model_fn fails as in the container, and each request says why."""
    from botocore.exceptions import ClientError


    _export_gluon_net(str(tmp_path / "gluon"), shapes=False)
    predictor = _model(session, "file://" + str(tmp_path / "gluon")).deploy(1, "local")
    try:
        for _ in range(2):  # the server stays up and keeps saying why
            with pytest.raises(ClientError, match="(?s)ModelError.*failed to load.*missing file model-shapes.json"):
                predictor.predict([[1, 2, 3, 4]])
    finally:
        predictor.delete_endpoint()


def test_mnist_model_reads_json_and_csv_images(session, tmp_path):
    """Scenario 10: the toolkit's MNIST Module checkpoint answers 04.json and 07.csv as the checkpoint itself does.

    The checkpoint is barely trained: its own forward pass scores 04.json (pixels in
    [0, 1]) 0.14 at most, for a 9, and each of 07.csv's eleven copies of a 7 0.16 at
    most, for a 7. The toolkit's own tests of it only send the images. So the endpoint
    must return exactly what a Module forward pass of the checkpoint gives for the same
    pixels, JSON as a (1, 28, 28) batch and CSV reshaped to the model's (-1, 1, 28, 28).
    """
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.serializers import IdentitySerializer

    model_tar = os.path.join(INFERENCE, "mnist", "model", "model.tar.gz")
    with tarfile.open(model_tar) as tar:
        tar.extractall(tmp_path)
    images = os.path.join(INFERENCE, "mnist", "images")
    with open(os.path.join(images, "04.json")) as f:
        four = np.array(json.load(f), dtype="float32").reshape(-1, 1, 28, 28)
    seven = np.loadtxt(os.path.join(images, "07.csv"), delimiter=",", dtype="float32").reshape(-1, 1, 28, 28)

    predictor = _model(session, "file://" + model_tar).deploy(1, "local", deserializer=JSONDeserializer())
    try:
        for name, content_type, batch in (("04.json", "application/json", four), ("07.csv", "text/csv", seven)):
            with open(os.path.join(images, name), "rb") as f:
                predictor.serializer = IdentitySerializer(content_type=content_type)
                scores = np.array(predictor.predict(f.read()))
            expected = module_forward(str(tmp_path), batch)
            assert scores.shape == expected.shape == (len(batch), 10), name
            np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-6, err_msg=name)
    finally:
        predictor.delete_endpoint()
