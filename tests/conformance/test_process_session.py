"""Fast checks of the session behaviour the conformance scenarios rely on (no jobs, no servers)."""

import os

import pytest


def test_session_creates_s3_client_only_on_use(tmp_path, client_spy):
    from smgluon_local import ProcessSession

    session = ProcessSession(root_dir=str(tmp_path), log_stream=False)
    session.upload_data(__file__, key_prefix="code")  # the local bucket needs no client
    assert "s3" not in client_spy
    assert session.s3_client.meta.service_model.service_name == "s3"
    assert client_spy.count("s3") == 1
    session.s3_client.meta  # noqa: B018 (created once)
    assert client_spy.count("s3") == 1


def test_job_failed_error_is_what_both_sdk_modes_raise():
    from sagemaker.exceptions import UnexpectedStatusException

    from smgluon_local.job_status import check_job_status

    desc = {"TrainingJobStatus": "Failed", "FailureReason": "AlgorithmError: This failure is expected."}
    with pytest.raises(RuntimeError, match="Reason: AlgorithmError: This failure is expected.") as info:
        check_job_status("job-1", desc, "TrainingJobStatus")
    assert isinstance(info.value, UnexpectedStatusException)
    assert (info.value.actual_status, info.value.allowed_statuses) == ("Failed", ["Completed", "Stopped"])
    check_job_status("job-1", {"TrainingJobStatus": "Completed"}, "TrainingJobStatus")


def test_model_directory_is_copied_writable_for_repacking(tmp_path):
    """The SDK repacks model_data with the code: a (read-only) model directory is copied, not untarred."""
    import stat

    from smgluon_local import ProcessSession
    from smgluon_local.session import _extract_model

    model = tmp_path / "model"
    (model / "code").mkdir(parents=True)
    (model / "model-symbol.json").write_text("{}")
    (model / "code" / "inference.py").write_text("")
    for path in (model / "code" / "inference.py", model / "model-symbol.json", model / "code", model):
        path.chmod(stat.S_IRUSR | (stat.S_IXUSR if path.is_dir() else 0))
    session = ProcessSession(root_dir=str(tmp_path / "root"), log_stream=False)
    try:
        for uri in ("file://" + str(model), str(model)):
            work = tmp_path / ("work-%d" % len(uri))
            work.mkdir()
            copy = _extract_model(uri, session, str(work))
            assert sorted(os.listdir(copy)) == ["code", "model-symbol.json"]
            for path in (work / "model", work / "model" / "code", work / "model" / "code" / "inference.py"):
                assert path.stat().st_mode & stat.S_IWUSR, path  # the SDK writes the entry point in there
        with pytest.raises(FileNotFoundError, match="model_data file://%s: .* does not exist" % (tmp_path / "nope")):
            _extract_model("file://" + str(tmp_path / "nope"), session, str(tmp_path))
        with pytest.raises(ValueError, match="unsupported URI scheme 'https'"):
            _extract_model("https://example.com/model.tar.gz", session, str(tmp_path))
    finally:
        for path in (model, model / "code"):
            path.chmod(0o755)


def test_update_endpoint_of_unknown_endpoint_is_a_validation_error(tmp_path):
    from botocore.exceptions import ClientError

    from smgluon_local import ProcessSession

    session = ProcessSession(root_dir=str(tmp_path), log_stream=False)
    with pytest.raises(ClientError, match="Could not find endpoint no-such-endpoint"):
        session.sagemaker_client.update_endpoint(EndpointName="no-such-endpoint", EndpointConfigName="any")
