"""Batch transform under ProcessSession: record splitting, batching, data processing and the job API.

The fast tests drive the pieces directly (JSONPath, records, requests, joins, request
validation). The slow ones run real transform jobs through ``MXNetModel.transformer()``:
a real multi-model-server with the SageMaker MXNet handler service, serving a tiny
linear model (``score = row . [1, 2, 3]``) whose entry point is written below.
"""

import gzip
import json
import os
import tarfile
import textwrap

import pytest
from botocore.exceptions import ClientError
from local_helpers import live_processes_under

from smgluon_local.transform_job import (
    DataProcessing,
    JsonPath,
    JsonPathError,
    TransformFailed,
    pack_requests,
    read_records,
)

ROLE = "arn:aws:iam::111111111111:role/any"
MB = 1024 * 1024

# A tiny model with its own handler: CSV rows, a JSON list of rows or JSON Lines rows in;
# one score per row out (CSV, a JSON list or JSON Lines), or, for Accept text/x-rows, the
# number of rows the request held (to see how records were batched).
ENTRY_POINT = """
import json
import os

import numpy as np


def model_fn(model_dir):
    with open(os.path.join(model_dir, "weights.json")) as f:
        return np.array(json.load(f), dtype="float64")


def _rows(data, content_type):
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    if content_type == "text/csv":
        try:
            return [[float(x) for x in line.split(",")] for line in text.splitlines() if line]
        except ValueError as e:
            raise ValueError("not a number in the CSV input: %s" % e) from None
    if content_type == "application/jsonlines":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return json.loads(text)


def transform_fn(model, data, content_type, accept):
    rows = _rows(data, content_type)
    scores = [float(np.dot(row, model)) for row in rows]
    if accept == "text/x-rows":
        return str(len(rows)), accept
    if accept == "text/csv":
        return "\\n".join("%g" % s for s in scores), accept
    if accept == "application/jsonlines":
        return "\\n".join(json.dumps(s) for s in scores), accept
    return json.dumps(scores), "application/json"
"""


# ---------------------------------------------------------------------------------------------
# JSONPath, records and requests


@pytest.mark.parametrize(
    "expression, document, expected",
    [
        ("$", [1, 2], [1, 2]),
        ("$[1:]", ["id", "a", "b"], ["a", "b"]),
        ("$[:-1]", ["a", "b", "c"], ["a", "b"]),
        ("$[0,-1]", ["id", "a", "b", "label"], ["id", "label"]),
        ("$[2]", ["a", "b", "c"], "c"),
        ("$.features", {"id": 1, "features": [1, 2]}, [1, 2]),
        ("$['features']", {"id": 1, "features": [1, 2]}, [1, 2]),
        ("$['id','SageMakerOutput']", {"id": 1, "x": 0, "SageMakerOutput": 3}, {"id": 1, "SageMakerOutput": 3}),
        ("$.a.b[0,2]", {"a": {"b": [5, 6, 7]}}, [5, 7]),
        ("$.f.['c1','c2']", {"f": {"c1": 1, "c2": 2, "c3": 3}}, {"c1": 1, "c2": 2}),
        ("$[*].v", [{"v": 1}, {"v": 2}], [1, 2]),
        ("$.*", {"a": 1, "b": 2}, [1, 2]),
    ],
)
def test_jsonpath_selects_as_sagemaker_data_processing(expression, document, expected):
    assert JsonPath(expression).apply(document) == expected


@pytest.mark.parametrize(
    "expression, why",
    [
        ("features", "must start with $"),
        ("$..a", "recursive descent"),
        ("$[?(@.a > 1)]", "filter expressions"),
        ("$[1:2:3]", "steps are not supported"),
        ("$[0,'a']", "not both"),
        ("$[0", "without ']'"),
    ],
)
def test_jsonpath_refuses_what_sagemaker_refuses(expression, why):
    with pytest.raises(JsonPathError, match="supports \\$"):
        JsonPath(expression)
    with pytest.raises(JsonPathError) as e:
        JsonPath(expression)
    assert why in str(e.value)


def test_jsonpath_missing_key_or_index_names_it():
    with pytest.raises(JsonPathError, match="no key 'features'"):
        JsonPath("$.features").apply({"id": 1})
    with pytest.raises(JsonPathError, match="index 5 is out of range for 3"):
        JsonPath("$[0,5]").apply([1, 2, 3])


def test_records_by_line_or_whole_file(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"1,2\r\n3,4\n\n5,6")
    assert list(read_records(str(path), "Line")) == [b"1,2", b"3,4", b"5,6"]
    assert list(read_records(str(path), "None")) == [b"1,2\r\n3,4\n\n5,6"]
    gz = tmp_path / "data.csv.gz"
    gz.write_bytes(gzip.compress(b"1,2\n3,4\n"))
    assert list(read_records(str(gz), "Line", "Gzip")) == [b"1,2", b"3,4"]


def test_requests_single_and_multi_record_within_the_payload_limit():
    records = [b"a" * 4, b"b" * 4, b"c" * 4, b"d" * 4]
    assert list(pack_requests(records, "SingleRecord", 100)) == [(i + 1, [r]) for i, r in enumerate(records)]
    # 4 + 1 + 4 = 9 bytes fit in 10 with the newline between them; a third would not.
    assert list(pack_requests(records, "MultiRecord", 10)) == [(1, records[:2]), (3, records[2:])]
    assert list(pack_requests(records, "MultiRecord", 0)) == [(1, records)]


def test_a_record_over_the_payload_limit_fails_as_on_sagemaker():
    with pytest.raises(TransformFailed, match="Too much data for max payload size: record 2 is 11 bytes"):
        list(pack_requests([b"ok", b"x" * 11], "MultiRecord", 10))


def test_csv_input_filter_join_and_output_filter():
    processing = DataProcessing(
        {"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"}, "text/csv", "text/csv"
    )
    assert processing.filter_input(b"7,1,2", 1) == b"1,2"
    assert processing.process_output([b"7,1,2", b"8,3,4"], 1, b"5\n11\n", None) == b"7,5\n8,11"


def test_json_join_puts_the_answer_under_sagemaker_output():
    processing = DataProcessing(
        {"InputFilter": "$.features", "JoinSource": "Input"}, "application/jsonlines", "application/jsonlines"
    )
    assert processing.filter_input(b'{"id": 1, "features": [1, 2]}', 1) == b"[1,2]"
    out = processing.process_output([b'{"id": 1, "features": [1, 2]}', b"[3]"], 1, b"5\n3", None)
    assert [json.loads(line) for line in out.split(b"\n")] == [
        {"id": 1, "features": [1, 2], "SageMakerOutput": 5},
        {"SageMakerInput": [3], "SageMakerOutput": 3},
    ]
    # One JSON document per record; a MultiRecord answer may be one JSON array.
    processing = DataProcessing({"JoinSource": "Input"}, "application/json", None)
    assert processing.process_output([b'{"a": 1}', b'{"a": 2}'], 1, b"[10, 20]", "application/json") == (
        b'{"a":1,"SageMakerOutput":10}\n{"a":2,"SageMakerOutput":20}'
    )


def test_data_processing_errors_name_the_record():
    processing = DataProcessing({"InputFilter": "$.features"}, "application/jsonlines", None)
    with pytest.raises(TransformFailed, match="input_filter on record 4: .*no key 'features'"):
        processing.filter_input(b'{"id": 1}', 4)
    processing = DataProcessing({"JoinSource": "Input"}, "text/csv", "text/csv")
    with pytest.raises(TransformFailed, match="answered 1 rows for the 2 rows of records 3-4"):
        processing.process_output([b"1", b"2"], 3, b"5", None)
    with pytest.raises(ValueError, match="joins CSV with CSV or JSON with JSON"):
        DataProcessing({"JoinSource": "Input"}, "text/csv", "application/json")
    with pytest.raises(ValueError, match="input_filter needs CSV or JSON input"):
        DataProcessing({"InputFilter": "$[1:]"}, "application/x-npy", None)


# ---------------------------------------------------------------------------------------------
# CreateTransformJob validation (no model server)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    from smgluon_local import ProcessSession

    return ProcessSession(root_dir=str(tmp_path_factory.mktemp("transform-root")), log_stream=False)


def _request(tmp_path, **changes):
    request = {
        "TransformJobName": "validation-job",
        "ModelName": "validation-model",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "file://%s" % tmp_path}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": "file://%s/out" % tmp_path},
        "TransformResources": {"InstanceType": "local", "InstanceCount": 1},
    }
    for key, value in changes.items():
        if key in ("SplitType", "S3DataType"):
            target = (
                request["TransformInput"]
                if key == "SplitType"
                else request["TransformInput"]["DataSource"]["S3DataSource"]
            )
            target[key] = value
        elif key == "AssembleWith":
            request["TransformOutput"][key] = value
        else:
            request[key] = value
    return request


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"BatchStrategy": "Whatever"}, "BatchStrategy must be 'SingleRecord' or 'MultiRecord'"),
        ({"MaxPayloadInMB": 101}, "MaxPayloadInMB must be an integer from 0 to 100"),
        ({"MaxConcurrentTransforms": 20, "MaxPayloadInMB": 6}, "must not exceed 100 MB"),
        ({"MaxPayloadInMB": 0}, "MaxPayloadInMB=0 (no limit) needs SplitType 'None'"),
        ({"SplitType": "RecordIO"}, "SplitType 'RecordIO' is not supported by ProcessSession"),
        ({"AssembleWith": "Comma"}, "AssembleWith must be 'Line' or 'None'"),
        ({"S3DataType": "AugmentedManifestFile"}, "S3DataType must be 'S3Prefix' or 'ManifestFile'"),
        ({"DataProcessing": {"InputFilter": "$..a"}}, "recursive descent"),
        ({"DataProcessing": {"JoinSource": "Output"}}, "JoinSource must be 'Input' or 'None'"),
        ({"ModelClientConfig": {"InvocationsMaxRetries": 4}}, "InvocationsMaxRetries must be an integer from 0 to 3"),
        ({"ModelClientConfig": {"InvocationsTimeoutInSeconds": 0}}, "InvocationsTimeoutInSeconds must be an integer"),
    ],
)
def test_bad_requests_are_refused_before_anything_runs(session, tmp_path, changes, message):
    session.sagemaker_client.create_model(
        "validation-model", {"Image": "mxnet-inference:1.9.0-cpu-py38", "Environment": {}}
    )
    try:
        with pytest.raises(ClientError) as e:
            session.sagemaker_client.create_transform_job(**_request(tmp_path, **changes))
        assert e.value.response["Error"]["Code"] == "ValidationException"
        assert message in e.value.response["Error"]["Message"]
        assert not (tmp_path / "out").exists()
        with pytest.raises(ClientError, match="Could not find local transform job"):
            session.sagemaker_client.describe_transform_job(TransformJobName="validation-job")
    finally:
        session.sagemaker_client.delete_model("validation-model")


def test_unknown_model_is_refused(session, tmp_path):
    with pytest.raises(ClientError, match="Could not find local model"):
        session.sagemaker_client.create_transform_job(**_request(tmp_path, ModelName="no-such-model"))


# ---------------------------------------------------------------------------------------------
# Real transform jobs


@pytest.fixture(scope="module")
def linear_model(session, tmp_path_factory):
    """An MXNetModel serving ``score = row . [1, 2, 3]`` with its own handler, one worker."""
    from sagemaker.mxnet import MXNetModel

    root = tmp_path_factory.mktemp("linear-model")
    (root / "code").mkdir()
    (root / "code" / "linear.py").write_text(textwrap.dedent(ENTRY_POINT))
    (root / "weights.json").write_text("[1, 2, 3]")
    with tarfile.open(root / "model.tar.gz", "w:gz") as tar:
        tar.add(root / "weights.json", arcname="weights.json")
    return MXNetModel(
        model_data="file://%s" % (root / "model.tar.gz"),
        entry_point=str(root / "code" / "linear.py"),
        role=ROLE,
        framework_version="1.9.0",
        py_version="py38",
        sagemaker_session=session,
        env={"SAGEMAKER_MODEL_SERVER_WORKERS": "1"},
    )


def _lines(path):
    with open(path) as f:
        return f.read().splitlines()


def _describe(transformer):
    return transformer.sagemaker_session.describe_transform_job(transformer.latest_transform_job.job_name)


@pytest.mark.slow
def test_single_record_csv_prefix_of_many_files_joined_with_ids(linear_model, tmp_path):
    """SingleRecord, Line split and assembly, a folder of files (one in a sub-folder), two requests at a
    time, and SageMaker's documented join: drop the id column, join, keep the id and the prediction."""
    data = tmp_path / "in"
    (data / "sub").mkdir(parents=True)
    (data / "a.csv").write_text("a1,1,0,0\na2,0,1,0\na3,0,0,1\n")
    (data / "sub" / "b.csv").write_text("b1,1,1,1\nb2,2,2,2\n")
    out = tmp_path / "out"
    transformer = linear_model.transformer(
        1,
        "local",
        strategy="SingleRecord",
        assemble_with="Line",
        max_concurrent_transforms=2,
        output_path="file://%s" % out,
        accept="text/csv",
    )
    transformer.transform(
        "file://%s" % data,
        content_type="text/csv",
        split_type="Line",
        input_filter="$[1:]",
        join_source="Input",
        output_filter="$[0,-1]",
        logs=False,
    )
    assert _lines(out / "a.csv.out") == ["a1,1", "a2,2", "a3,3"]
    assert _lines(out / "sub" / "b.csv.out") == ["b1,6", "b2,12"]
    desc = _describe(transformer)
    assert desc["TransformJobStatus"] == "Completed"
    assert desc["BatchStrategy"] == "SingleRecord" and desc["MaxConcurrentTransforms"] == 2
    assert desc["DataProcessing"] == {"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"}
    log = open(transformer.sagemaker_session.sagemaker_client.transform_job(desc["TransformJobName"]).log_path).read()
    assert "a.csv: 3 records in 3 requests" in log and "b.csv: 2 records in 2 requests" in log
    assert sorted(os.listdir(out)) == ["a.csv.out", "sub"]  # nothing else: no staging files
    assert live_processes_under(transformer.sagemaker_session.root_dir) == []  # the model server is gone


@pytest.mark.slow
def test_multi_record_packs_records_up_to_max_payload_from_emulated_s3(linear_model, session, tmp_path):
    """MultiRecord within max_payload=1 MB; input and output in the emulated S3 bucket."""
    row = b",".join([b"1." + b"0" * 25] * 3)  # 83 bytes
    n = (2 * MB) // len(row) + 100
    data = tmp_path / "big.csv"
    data.write_bytes(b"\n".join([row] * n) + b"\n")
    uri = session.upload_data(str(data), key_prefix="transform-test/big")
    output = "s3://%s/transform-test/out" % session.default_bucket()
    transformer = linear_model.transformer(
        1,
        "local",
        strategy="MultiRecord",
        max_payload=1,
        assemble_with="Line",
        output_path=output,
        accept="text/x-rows",
    )
    transformer.transform(uri, content_type="text/csv", split_type="Line", logs=False)
    per_request = [
        int(x) for x in _lines(session.local_s3.path(session.default_bucket(), "transform-test/out/big.csv.out"))
    ]
    assert sum(per_request) == n
    assert len(per_request) == 3  # 2 MB and a bit of records in 1 MB requests
    assert all(k * len(row) + k - 1 <= MB for k in per_request)


@pytest.mark.slow
def test_whole_json_file_with_no_split_and_no_assembly(linear_model, tmp_path):
    data = tmp_path / "rows.json"
    data.write_text(json.dumps([[1, 1, 1], [0, 0, 1]]))
    out = tmp_path / "out"
    transformer = linear_model.transformer(1, "local", output_path="file://%s" % out, accept="application/json")
    transformer.transform("file://%s" % data, content_type="application/json", logs=False)
    assert (out / "rows.json.out").read_text() == "[6.0, 3.0]"


@pytest.mark.slow
def test_json_lines_join_with_input_and_filters(linear_model, session, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(session, "log_stream", None)  # wait() prints the log to stdout, as the SDK's
    data = tmp_path / "rows.jsonl"
    data.write_text('{"id": 1, "features": [1, 1, 0]}\n{"id": 2, "features": [0, 0, 1]}\n')
    out = tmp_path / "out"
    transformer = linear_model.transformer(
        1,
        "local",
        strategy="MultiRecord",
        assemble_with="Line",
        output_path="file://%s" % out,
        accept="application/jsonlines",
    )
    transformer.transform(
        "file://%s" % data,
        content_type="application/jsonlines",
        split_type="Line",
        input_filter="$.features",
        join_source="Input",
        output_filter="$['id','SageMakerOutput']",
    )
    assert [json.loads(line) for line in _lines(out / "rows.jsonl.out")] == [
        {"id": 1, "SageMakerOutput": 3.0},
        {"id": 2, "SageMakerOutput": 3.0},
    ]
    assert "rows.jsonl: 2 records in 1 requests" in capsys.readouterr().out  # wait() printed the log


@pytest.mark.slow
def test_a_record_over_max_payload_fails_the_job_and_keeps_finished_files(linear_model, tmp_path):
    from sagemaker.exceptions import UnexpectedStatusException

    data = tmp_path / "in"
    data.mkdir()
    (data / "1-small.csv").write_text("1,1,1\n")
    (data / "2-big.csv").write_bytes(b"1,1,1\n" + b"1," * (MB // 2) + b"1\n")
    out = tmp_path / "out"
    transformer = linear_model.transformer(
        1, "local", strategy="SingleRecord", max_payload=1, output_path="file://%s" % out, accept="text/csv"
    )
    with pytest.raises(UnexpectedStatusException, match="Too much data for max payload size: record 2"):
        transformer.transform("file://%s" % data, content_type="text/csv", split_type="Line", logs=False)
    desc = _describe(transformer)
    assert desc["TransformJobStatus"] == "Failed"
    assert "2-big.csv" in desc["FailureReason"] and "Raise max_payload" in desc["FailureReason"]
    assert os.listdir(out) == ["1-small.csv.out"]  # the finished file only, no half-written one


@pytest.mark.slow
def test_a_bad_record_fails_with_its_number_and_the_model_message(linear_model, tmp_path):
    from sagemaker.exceptions import UnexpectedStatusException

    data = tmp_path / "bad.csv"
    data.write_text("1,1,1\n2,2,2\nx,1,1\n3,3,3\n")
    out = tmp_path / "out"
    transformer = linear_model.transformer(
        1, "local", strategy="SingleRecord", output_path="file://%s" % out, accept="text/csv"
    )
    with pytest.raises(UnexpectedStatusException) as e:
        transformer.transform("file://%s" % data, content_type="text/csv", split_type="Line", logs=False)
    reason = _describe(transformer)["FailureReason"]
    assert "bad.csv: record 3: Bad HTTP status received from algorithm: 500" in reason
    assert "not a number in the CSV input" in reason and "Traceback" not in reason
    assert reason in str(e.value)
    assert not out.exists()
    # As SageMaker's InvocationsMaxRetries (default 3), a 5xx answer is tried again before the job fails.
    log = open(
        transformer.sagemaker_session.sagemaker_client.transform_job(transformer.latest_transform_job.job_name).log_path
    ).read()
    assert "bad.csv: record 3: Bad HTTP status received from algorithm: 500; retry 3 of 3" in log


def test_a_missing_input_fails_the_job_with_sagemaker_message(linear_model, tmp_path):
    """The job fails before any model server starts; Transformer.attach() and wait() see it as on SageMaker.

    wait() raises the exception a failed fit() raises: both the SDK's UnexpectedStatusException and RuntimeError.
    """
    from sagemaker.exceptions import UnexpectedStatusException
    from sagemaker.transformer import Transformer

    from smgluon_local import JobFailedError

    transformer = linear_model.transformer(1, "local", strategy="MultiRecord", output_path="file://%s" % tmp_path)
    transformer.transform("file://%s" % (tmp_path / "nothing-here"), content_type="text/csv", wait=False)
    attached = Transformer.attach(transformer.latest_transform_job.job_name, linear_model.sagemaker_session)
    assert (attached.model_name, attached.strategy) == (transformer.model_name, "MultiRecord")
    with pytest.raises(JobFailedError, match="ClientError: No S3 objects found under S3 URL") as e:
        attached.wait(logs=False)
    assert isinstance(e.value, UnexpectedStatusException) and isinstance(e.value, RuntimeError)
    with pytest.raises(JobFailedError, match="ClientError: No S3 objects found under S3 URL"):
        attached.wait(logs=True)
    desc = _describe(transformer)
    assert desc["TransformJobStatus"] == "Failed"
    assert desc["FailureReason"].startswith("ClientError: No S3 objects found under S3 URL")
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_stop_transform_job(linear_model, tmp_path):
    data = tmp_path / "in.csv"
    data.write_text("1,1,1\n" * 100)
    out = tmp_path / "out"
    transformer = linear_model.transformer(1, "local", output_path="file://%s" % out)
    transformer.transform("file://%s" % data, content_type="text/csv", split_type="Line", wait=False)
    transformer.stop_transform_job(wait=False)
    assert _describe(transformer)["TransformJobStatus"] in ("Stopping", "Stopped")
    job = transformer.sagemaker_session.sagemaker_client.transform_job(transformer.latest_transform_job.job_name)
    job.wait()
    assert _describe(transformer)["TransformJobStatus"] == "Stopped"
    assert not out.exists()
    with pytest.raises(ClientError, match="is not running"):
        transformer.sagemaker_session.sagemaker_client.stop_transform_job(TransformJobName=job.name)


def test_model_server_request_limit_follows_sagemaker_max_payload(tmp_path):
    """SAGEMAKER_MAX_PAYLOAD_IN_MB (default 6) is the request limit; the request guard answers 413 above it
    (tests/test_bad_requests.py), and the model server's frontend lets twice that through to it."""
    from smgluon_local.endpoint import ModelServer

    def config(environment):
        server = ModelServer(str(tmp_path / ("endpoint-%d" % len(environment))), None, environment)
        os.makedirs(server.endpoint_dir)
        with open(server._write_config(8080, 8081)) as f:
            return [line for line in f.read().splitlines() if line.startswith("max_request_size")]

    assert config({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "1"}) == ["max_request_size=2097152"]
    assert config({}) == ["max_request_size=12582912"]


@pytest.mark.slow
def test_readme_example_with_mnist_mlp(session, mnist_small_dirs, tmp_path):
    """The README's example: mnist_mlp trained briefly, estimator.transformer() over JSON records with ids."""
    from local_helpers import REPO, mxnet_estimator

    from smgluon.idx import read_idx

    est = mxnet_estimator(
        session,
        "mnist_mlp.py",
        source_dir=os.path.join(REPO, "entry_points"),
        dependencies=[os.path.join(REPO, "lib", "smgluon")],
        hyperparameters={"epochs": 1, "learning_rate": 0.1, "max_train_samples": 2000},
    )
    est.fit({"train": "file://" + mnist_small_dirs["train"], "test": "file://" + mnist_small_dirs["test"]})
    x = read_idx(os.path.join(mnist_small_dirs["test"], "t10k-images-idx3-ubyte.gz"))[:50]
    y = read_idx(os.path.join(mnist_small_dirs["test"], "t10k-labels-idx1-ubyte.gz"))[:50]
    data = tmp_path / "to-score"
    data.mkdir()
    (data / "images.jsonl").write_text(
        "".join(json.dumps({"id": "img%d" % i, "pixels": image.ravel().tolist()}) + "\n" for i, image in enumerate(x))
    )
    out = tmp_path / "predictions"
    transformer = est.transformer(
        instance_count=1,
        instance_type="local",
        strategy="SingleRecord",
        assemble_with="Line",
        accept="application/json",
        output_path="file://%s" % out,
    )
    transformer.transform(
        "file://%s" % data,
        content_type="application/json",
        split_type="Line",
        input_filter="$.pixels",
        join_source="Input",
        output_filter="$['id','SageMakerOutput']",
        logs=False,
    )
    rows = [json.loads(line) for line in _lines(out / "images.jsonl.out")]
    assert [row["id"] for row in rows] == ["img%d" % i for i in range(50)]
    predictions = [row["SageMakerOutput"]["predictions"][0] for row in rows]
    assert sum(int(p == label) for p, label in zip(predictions, y)) >= 25  # chance: 5 of 50


def test_inputs_as_a_file_a_folder_or_a_key_prefix(session, tmp_path):
    """As SageMaker's S3Prefix: a key prefix, not only a folder; outputs keep the key below the prefix."""
    from smgluon_local.transform_job import _input_files

    bucket = session.default_bucket()
    for key in ("batch/data-1.csv", "batch/data/2.csv", "batch/other.csv"):
        path = session.local_s3.path(bucket, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "w").close()

    def relative(uri):
        return [rel for _, rel in _input_files(uri, "S3Prefix", str(tmp_path / "download"), session)]

    assert relative("s3://%s/batch/data" % bucket) == ["data-1.csv", "2.csv"]
    assert relative("s3://%s/batch/da" % bucket) == ["data-1.csv", os.path.join("data", "2.csv")]
    assert relative("s3://%s/batch" % bucket) == ["data-1.csv", os.path.join("data", "2.csv"), "other.csv"]
    assert relative("s3://%s/batch/" % bucket) == ["data-1.csv", os.path.join("data", "2.csv"), "other.csv"]
    assert relative("s3://%s/batch/other.csv" % bucket) == ["other.csv"]
    assert relative("file://%s" % session.local_s3.path(bucket, "batch/data")) == ["2.csv"]
    assert relative(session.local_s3.path(bucket, "batch/other.csv")) == ["other.csv"]
    with pytest.raises(TransformFailed, match='No S3 objects found under S3 URL "s3://%s/nothing"' % bucket):
        relative("s3://%s/nothing" % bucket)


def test_inputs_from_a_manifest_file(session, tmp_path):
    from smgluon_local.transform_job import _input_files

    bucket = session.default_bucket()
    for key in ("listed/a.csv", "listed/sub/b.csv", "listed/not-listed.csv"):
        path = session.local_s3.path(bucket, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "w").close()
    manifest = tmp_path / "inputs.manifest"
    manifest.write_text(json.dumps([{"prefix": "s3://%s/listed/" % bucket}, "a.csv", "sub/b.csv"]))
    files = _input_files("file://%s" % manifest, "ManifestFile", str(tmp_path / "download"), session)
    assert files == [
        (session.local_s3.path(bucket, "listed/a.csv"), "a.csv"),
        (session.local_s3.path(bucket, "listed/sub/b.csv"), os.path.join("sub", "b.csv")),
    ]
    manifest.write_text(json.dumps([{"prefix": "s3://%s/listed/" % bucket}, "missing.csv"]))
    with pytest.raises(TransformFailed, match="ClientError: s3://.*/listed/missing.csv: .* does not exist"):
        _input_files("file://%s" % manifest, "ManifestFile", str(tmp_path / "download"), session)
    manifest.write_text(json.dumps(["a.csv"]))
    with pytest.raises(TransformFailed, match="is not a JSON array"):
        _input_files("file://%s" % manifest, "ManifestFile", str(tmp_path / "download"), session)
