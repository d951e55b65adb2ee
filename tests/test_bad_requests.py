"""Every workload's endpoint answers a hostile or malformed request with a 4xx and one line, and keeps serving.

The first tests drive the request guard and the decoders directly. The slow ones start
one real endpoint per workload (multi-model-server with the local handler service, as
``estimator.deploy()`` does), shared by that workload's probes, and send each probe
over HTTP for every content type the workload accepts. Good requests are answered
byte for byte as the entry point's ``transform_fn`` answers them in-process.
"""

import http.client
import io
import json
import os
import shutil
import struct
import sys
import zlib

import numpy as np
import pytest
from conftest import ENTRY_POINTS, REPO, mnist_arrays, write_movielens_slice
from test_nyc_flights import RECORD as NYC_RECORD

from smgluon import serving
from smgluon_local import request_guard

MB = 1024 * 1024
LIMIT = 6 * MB  # SageMaker's default payload limit
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000


# ---------------------------------------------------------------- the guard and the decoders


@pytest.mark.parametrize(
    "body, content_type, status, fragment",
    [
        (b"x" * (LIMIT + 1), "application/json", 413, "limit is 6291456 bytes"),
        (b"x" * (LIMIT + 1), "image/png", 413, "send smaller batches"),
        (b"\xff\xfe[1, 2]", "application/json", 400, "not UTF-8 text (byte 0"),
        (b"1,2\n\xc3(", "text/csv", 400, "text/csv body is not UTF-8"),
        (b"1,2\n\xc3(", "text/csv; charset=UTF-8", 400, "not UTF-8"),
        (DEEP_JSON, "application/json", 400, "more than 100 levels deep"),
        (DEEP_JSON, "application/json; charset=utf-8", 400, "more than 100 levels deep"),
        (b'{"a": ' * 101 + b"1" + b"}" * 101, "application/json", 400, "levels deep"),
        (b"[" * 101 + b"]" * 101 + b"\n", "application/jsonlines", 400, "levels deep"),
    ],
)
def test_the_guard_rejects(body, content_type, status, fragment):
    with pytest.raises(request_guard.RequestRejected) as caught:
        request_guard.check(body, content_type)
    assert caught.value.status == status and fragment in caught.value.message
    assert "\n" not in caught.value.message


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b"x" * LIMIT, "application/json"),  # at the limit: the parser's business
        (b"[[1, 2, 3]]", "application/json"),
        (json.dumps({"instances": np.zeros((8, 1, 28, 28)).tolist()}).encode(), "application/json"),
        (b"[" * 100 + b"]" * 100, "application/json"),  # exactly the limit
        (json.dumps([{"title": "[" * 500}]).encode(), "application/json"),  # brackets inside a string
        (b'["' + b'[\\"' * 300 + b'"]', "application/json"),  # escaped quotes inside a string
        (b'"' + b"[" * 500, "application/json"),  # an unterminated string: malformed, not deep
        (json.dumps({"title": "Amélie (2001)"}).encode(), "application/json"),
        (b"\xff\xd8\xff\xe0" + b"[" * 500, "image/jpeg"),  # binary types are not text
        ("caf\u00e9".encode("latin-1"), "text/csv; charset=latin-1"),
        (b"", None),
    ],
)
def test_the_guard_passes_good_and_other_requests(body, content_type):
    request_guard.check(body, content_type)


def test_the_limit_follows_sagemaker_max_payload():
    assert request_guard.max_payload_bytes({}) == LIMIT
    assert request_guard.max_payload_bytes({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "1"}) == MB
    assert request_guard.frontend_limit({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "1"}) == 2 * MB
    with pytest.raises(request_guard.RequestRejected, match="limit is 1048576 bytes"):
        request_guard.check(b"1" * (MB + 1), "text/csv", limit=MB)
    for bad in ("0", "-1", "1.5", "six"):
        with pytest.raises(ValueError, match="SAGEMAKER_MAX_PAYLOAD_IN_MB=.*whole number of MB"):
            request_guard.max_payload_bytes({"SAGEMAKER_MAX_PAYLOAD_IN_MB": bad})


def test_a_deeply_nested_json_payload_is_a_request_error():
    with pytest.raises(serving.RequestError, match="nests arrays or objects too deeply"):
        serving.decode_json(DEEP_JSON)


def npy(array):
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def lying_npy(shape):
    """A .npy header claiming ``shape`` of float32, followed by 16 bytes."""
    header = repr({"descr": "<f4", "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\x00" * 16


@pytest.mark.parametrize(
    "body, fragment",
    [
        (lying_npy((10**12,)), "declares shape (1000000000000,)"),
        (lying_npy((2**40, 2**40)), "but 16 bytes follow"),
        (lying_npy((3,)), "(12 bytes of data), but 16 bytes follow"),
        (npy(np.arange(6, dtype=np.float32))[:-4], "but 20 bytes follow"),
        (npy(np.array([{"a": 1}], dtype=object)), "must be numeric"),
        (b"\x93NUMPY\x01\x00\xff\xff{", "invalid application/x-npy payload"),
        (b"not npy", "invalid application/x-npy payload"),
    ],
)
def test_a_malformed_npy_payload_is_a_request_error_before_any_allocation(body, fragment):
    with pytest.raises(serving.RequestError) as caught:
        serving.decode_npy(body)
    assert fragment in str(caught.value)


def test_a_good_npy_payload_decodes_as_before():
    for array in (np.arange(12, dtype=np.float32).reshape(3, 4), np.zeros((0, 784)), np.ones((2, 1, 28, 28), ">f8")):
        decoded = serving.decode_npy(npy(array))
        assert decoded.dtype == array.dtype and np.array_equal(decoded, array)


# ---------------------------------------------------------------- real endpoints, one per workload


def _copy_code(workload, directory):
    code = os.path.join(directory, "code")
    os.makedirs(code)
    shutil.copy(os.path.join(ENTRY_POINTS, workload + ".py"), code)
    shutil.copytree(
        os.path.join(REPO, "lib", "smgluon"),
        os.path.join(code, "smgluon"),
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return code


def _mnist_channels(request):
    return {"training": request.getfixturevalue("mnist_small_dirs")["training"]}


def _movielens_channels(tmp_path_factory):
    return {"training": write_movielens_slice(str(tmp_path_factory.mktemp("ml-100k-slice")), 300)}


def _nyc_flights_channels(tmp_path_factory):
    from test_nyc_flights_data import write_package_slice

    from smgluon_local import nyc_flights_data

    package = write_package_slice(str(tmp_path_factory.mktemp("package")), every=50)
    return dict(
        nyc_flights_data.fetch(str(tmp_path_factory.mktemp("data")), data_dir=package, verify=False, log=lambda m: None)
    )


def _pixels(n=2):
    x, _ = mnist_arrays()
    return x[9000 : 9000 + n].astype(np.float32)


def _png(grey):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(grey).save(buf, "PNG")
    return buf.getvalue()


def _good_requests(workload):
    """(body, content type, accept) of good requests, for every content type the workload accepts."""
    if workload in ("mnist_mlp", "fmnist_cnn"):
        x = _pixels()
        flat = x.reshape(len(x), -1)
        good = [
            (json.dumps(flat.tolist()).encode(), "application/json", "application/json"),
            (
                json.dumps({"instances": flat.tolist(), "probabilities": True}).encode(),
                "application/json",
                "application/json",
            ),
            (npy(flat), "application/x-npy", "application/json"),
            ("\n".join(",".join("%g" % v for v in row) for row in flat).encode(), "text/csv", "application/json"),
        ]
        if workload == "fmnist_cnn":
            good.append((_png(x[0].astype(np.uint8)), "image/png", "application/json; top_k=3"))
        return good
    if workload == "movielens_mf":
        return [
            (b'{"user_id": 196, "item_id": 242}', "application/json", "application/json"),
            (b'{"user_id": 196, "top_k": 5}', "application/json", "application/json"),
        ]
    if workload == "dssm":
        return [
            (b'{"user_id": 196, "top_k": 5}', "application/json", "application/json"),
            (b'{"item_id": 50, "top_k": 3}', "application/json", "application/json"),
        ]
    import nyc_flights

    row = ",".join("" if NYC_RECORD[name] is None else str(NYC_RECORD[name]) for name in nyc_flights.schema.FEATURES)
    return [
        (json.dumps([NYC_RECORD]).encode(), "application/json", "application/json"),
        (("%s\n%s\n" % (row, row)).encode(), "text/csv", "text/csv"),
    ]


def _png_claiming(width, height):
    """A valid PNG signature and IHDR chunk claiming ``width`` × ``height`` pixels, and nothing else."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def _probes(workload):
    """(name, body, content type, accept, expected status) of the hostile and malformed requests."""
    types = sorted({ctype for _, ctype, _ in _good_requests(workload)})
    probes = [
        ("deep-json", DEEP_JSON, "application/json", "application/json", 400),
        ("deep-json-objects", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "application/json", "application/json", 400),
        ("non-utf8-json", b"\xff\xfe[[1, 2]]", "application/json", "application/json", 400),
        ("invalid-json", b"[[1, 2,", "application/json", "application/json", 400),
        ("json-string", b'"hello"', "application/json", "application/json", 400),
        ("json-null", b"null", "application/json", "application/json", 400),
        ("json-huge-integer", b"[" + b"9" * 5000 + b"]", "application/json", "application/json", 400),
        ("json-nan", b"[NaN, Infinity]", "application/json", "application/json", 400),
        ("unsupported-content-type", b"<a/>", "application/xml", "application/json", 415),
        ("unsupported-accept", _good_requests(workload)[0][0], "application/json", "application/xml", 406),
    ]
    for ctype in types:
        name = ctype.split("/")[1]
        probes += [
            ("empty-" + name, b"", ctype, "application/json", 400),
            ("just-over-6mb-" + name, b"1" * (LIMIT + 1), ctype, "application/json", 413),
            ("7mb-" + name, b"1" * (7 * MB), ctype, "application/json", 413),
        ]
    if "text/csv" in types:
        probes += [
            ("non-utf8-csv", b"1,2\n\xc3(\n", "text/csv", "application/json", 400),
            ("csv-words", b"a,b,c\nd,e,f\n", "text/csv", "application/json", 400),
            ("csv-ragged", b"1,2,3\n4,5\n", "text/csv", "application/json", 400),
        ]
    if "application/x-npy" in types:
        probes += [
            ("npy-huge-header", lying_npy((10**12,)), "application/x-npy", "application/json", 400),
            ("npy-truncated", npy(np.zeros((2, 784), np.float32))[:-10], "application/x-npy", "application/json", 400),
            ("npy-pickle", npy(np.array([{"a": 1}], dtype=object)), "application/x-npy", "application/json", 400),
            ("npy-garbage", b"\x93NUMPY garbage", "application/x-npy", "application/json", 400),
        ]
    if "image/png" in types:
        probes += [
            ("png-garbage", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png", "application/json", 400),
            ("png-bomb", _png_claiming(100_000, 100_000), "image/png", "application/json", 400),
            ("png-truncated", _png(np.zeros((28, 28), np.uint8))[:40], "image/png", "application/json", 400),
            ("jpeg-not-an-image", b"\xff\xd8\xff\xe0 not a jpeg", "image/jpeg", "application/json", 400),
        ]
    return probes


def _train_and_save(workload, request, tmp_path_factory):
    """A briefly trained model of ``workload``, saved as SageMaker's model directory."""
    import importlib

    module = importlib.import_module(workload)
    if workload in ("mnist_mlp", "fmnist_cnn"):
        channels, hps = _mnist_channels(request), {"epochs": 1, "max_train_samples": 500, "log_interval": 0}
    elif workload == "movielens_mf":
        channels, hps = _movielens_channels(tmp_path_factory), {"epochs": 1, "num_factors": 8}
    elif workload == "dssm":
        channels = _movielens_channels(tmp_path_factory)
        hps = {"epochs": 1, "batch_size": 256, "num_factors": 16, "hidden": 32, "max_train_samples": 5000}
    else:
        channels, hps = _nyc_flights_channels(tmp_path_factory), {"epochs": 1, "hidden": 32, "max_train_samples": 2000}
    net = module.train(channels, hps, ["local"], 0, output_data_dir=str(tmp_path_factory.mktemp("output")))
    model_dir = str(tmp_path_factory.mktemp(workload + "-model"))
    module.save(net, model_dir)
    return module, model_dir


WORKLOADS = ["mnist_mlp", "fmnist_cnn", "movielens_mf", "dssm", "nyc_flights"]


class Endpoint:
    def __init__(self, workload, server, module, model_dir):
        self.workload, self.server, self.module, self.model_dir = workload, server, module, model_dir

    def post(self, body, content_type, accept="application/json", close=False):
        """POST to /invocations: (status, body), or the exception a reset or timeout raised."""
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=120)
        headers = {"Content-Type": content_type, "Accept": accept}
        if close:
            headers["Connection"] = "close"
        try:
            connection.request("POST", "/invocations", body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()


@pytest.fixture(scope="module")
def endpoint(request, tmp_path_factory):
    from smgluon_local.endpoint import ModelServer

    workload = request.param
    module, model_dir = _train_and_save(workload, request, tmp_path_factory)
    code = _copy_code(workload, str(tmp_path_factory.mktemp(workload + "-code")))
    server = ModelServer(
        str(tmp_path_factory.mktemp(workload + "-endpoint") / "ep"),
        model_dir,
        {"SAGEMAKER_PROGRAM": workload + ".py", "SAGEMAKER_MODEL_SERVER_WORKERS": "1"},
        code_dir=code,
    )
    server.start()
    try:
        yield Endpoint(workload, server, module, model_dir)
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("endpoint", WORKLOADS, indirect=True)
def test_every_bad_request_gets_a_4xx_and_one_line(endpoint):
    # One test per endpoint (a parametrized module fixture is set up again for every parameter set
    # that differs); the failure lists every probe answered wrongly.
    wrong = []
    for name, body, content_type, accept, expected in _probes(endpoint.workload):
        status, answer = endpoint.post(body, content_type, accept)
        text = answer.decode("utf-8", errors="replace").strip()
        if status != expected or not text or "\n" in text or "Traceback" in text:
            wrong.append("%s: %d %s" % (name, status, text[:200]))
    assert not wrong, "\n".join(wrong)
    for body, content_type, accept in _good_requests(endpoint.workload):  # and the server still serves
        assert endpoint.post(body, content_type, accept)[0] == 200


@pytest.mark.slow
@pytest.mark.parametrize("endpoint", WORKLOADS, indirect=True)
def test_an_oversized_body_with_connection_close_gets_an_answer_not_a_reset(endpoint):
    status, answer = endpoint.post(b"1" * (7 * MB), "application/json", close=True)
    assert status == 413 and b"the limit is 6291456 bytes" in answer


def _expected_answer(endpoint, model, body, content_type, accept):
    """The bytes the entry point's transform_fn answers in-process (the toolkit hands JSON and CSV over as text)."""
    data = body.decode("utf-8") if content_type in ("application/json", "text/csv") else body
    expected, _ = endpoint.module.transform_fn(model, data, content_type, accept)
    return expected.encode("utf-8") if isinstance(expected, str) else expected


@pytest.mark.slow
@pytest.mark.parametrize("endpoint", WORKLOADS, indirect=True)
def test_good_requests_are_answered_as_transform_fn_answers_them(endpoint):
    model = endpoint.module.model_fn(endpoint.model_dir)
    for body, content_type, accept in _good_requests(endpoint.workload):
        status, answer = endpoint.post(body, content_type, accept)
        assert status == 200, answer[:300]
        assert answer == _expected_answer(endpoint, model, body, content_type, accept), content_type


@pytest.mark.slow
@pytest.mark.parametrize("endpoint", WORKLOADS, indirect=True)
def test_a_short_soak_of_good_and_bad_requests_on_keep_alive_connections(endpoint):
    """bench/soak.py for a few seconds: no 5xx, reset or hang, and every good answer right."""
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    from bench.soak import Request, soak

    model = endpoint.module.model_fn(endpoint.model_dir)
    mix = [
        Request("good", body, ctype, accept, answer=_expected_answer(endpoint, model, body, ctype, accept))
        for body, ctype, accept in _good_requests(endpoint.workload)
    ]
    mix += [Request(*probe) for probe in _probes(endpoint.workload)]
    tally = soak(endpoint.server.port, mix, seconds=3, connections=4)
    summary = tally.summary()
    for count in ("bad_5xx", "resets", "timeouts", "wrong", "not_one_line"):
        assert summary[count] == 0, summary
    assert tally.good_times  # the first connection starts with a good request, and each finishes its first


@pytest.mark.slow
def test_a_script_of_its_own_gets_the_same_guard_and_the_configured_limit(tmp_path):
    """A model with its own transform_fn (no smgluon), served with SAGEMAKER_MAX_PAYLOAD_IN_MB=1."""
    import textwrap

    from test_batch_transform import ENTRY_POINT

    from smgluon_local.endpoint import ModelServer

    code, model = tmp_path / "code", tmp_path / "model"
    code.mkdir()
    model.mkdir()
    (code / "linear.py").write_text(textwrap.dedent(ENTRY_POINT))
    (model / "weights.json").write_text("[1, 2, 3]")
    server = ModelServer(
        str(tmp_path / "endpoint"),
        str(model),
        {"SAGEMAKER_PROGRAM": "linear.py", "SAGEMAKER_MODEL_SERVER_WORKERS": "1", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "1"},
        code_dir=str(code),
    )
    server.start()
    try:
        endpoint = Endpoint("linear", server, None, str(model))
        assert endpoint.post(b"1,1,1", "text/csv", "text/csv") == (200, b"6")
        status, answer = endpoint.post(b"1,1,1\n" * (MB // 6 + 1), "text/csv", "text/csv")
        assert status == 413 and b"the limit is 1048576 bytes (SAGEMAKER_MAX_PAYLOAD_IN_MB=1)" in answer
        assert endpoint.post(b"1" * (2 * MB + 1), "text/csv")[0] == 413  # over the frontend's cap: its own 413
        status, answer = endpoint.post(b"1,1\n\xc3(", "text/csv", "text/csv")
        assert status == 400 and answer.startswith(b"the text/csv body is not UTF-8 text")
        status, answer = endpoint.post(DEEP_JSON, "application/json")
        assert status == 400 and b"levels deep" in answer
        assert endpoint.post(b"[[1, 1, 1]]", "application/json") == (200, b"[6.0]")
    finally:
        server.stop()


def test_the_frontend_heap_is_bounded_by_what_requests_can_need(tmp_path):
    """The JVM would otherwise size its heap to a quarter of the machine's memory under load (a soak grew
    the frontend without bound in sight); the bound follows the request limit, and the model's own
    SAGEMAKER_MODEL_SERVER_VMARGS still wins."""
    from smgluon_local.endpoint import ModelServer

    def vmargs(environment):
        server = ModelServer(str(tmp_path / ("endpoint-%d" % len(os.listdir(tmp_path)))), None, environment)
        os.makedirs(server.endpoint_dir)
        with open(server._write_config(8080, 8081)) as f:
            return [line for line in f.read().splitlines() if line.startswith("vmargs")]

    assert vmargs({}) == ["vmargs=-XX:-UseContainerSupport -Xmx560m"]  # 512 MB + 4 × the 12 MB frontend limit
    assert vmargs({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "100"}) == ["vmargs=-XX:-UseContainerSupport -Xmx1312m"]
    assert vmargs({"SAGEMAKER_MODEL_SERVER_VMARGS": "-Xmx2g"}) == ["vmargs=-Xmx2g"]
