"""Fast tests of the docker-free local mode's pieces: tar safety, local bucket, metrics, errors."""

import io
import os
import socket
import tarfile

import pytest
from local_helpers import FIXTURES

from smgluon_local import endpoint as endpoint_mod
from smgluon_local.job_log import final_metrics
from smgluon_local.storage import LocalS3, NoCredentialsError, S3ResourceProxy, fetch_to_dir
from smgluon_local.tarfiles import UnsafeTarError, create_tar_gz, safe_extract


def _tar(path, members):
    """members: list of (name, kind, payload) with kind file|symlink|hardlink|dir."""
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = payload.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                info.linkname = payload
                tar.addfile(info)
    return path


@pytest.mark.parametrize("members, needle", [
    ([("ok.txt", "file", "x"), ("../evil.txt", "file", "x")], "'..'"),
    ([("a/../../evil.txt", "file", "x")], "'..'"),
    ([("/etc/evil.txt", "file", "x")], "absolute"),
    ([("link", "symlink", "/etc/passwd")], "outside"),
    ([("link", "symlink", "../../outside")], "outside"),
    ([("hard", "hardlink", "../outside")], "outside"),
])
def test_safe_extract_refuses_escaping_members_and_writes_nothing(tmp_path, members, needle):
    archive = _tar(str(tmp_path / "bad.tar.gz"), members)
    dest = tmp_path / "out"
    with pytest.raises(UnsafeTarError, match=needle):
        safe_extract(archive, str(dest))
    assert not dest.exists() or os.listdir(dest) == []
    assert not (tmp_path / "evil.txt").exists()


def test_safe_extract_accepts_inner_links_and_dirs(tmp_path):
    archive = _tar(str(tmp_path / "good.tar.gz"), [
        ("code", "dir", None), ("code/a.py", "file", "print(1)"), ("code/b.py", "symlink", "a.py"),
        ("./model-symbol.json", "file", "{}"),
    ])
    safe_extract(archive, str(tmp_path / "out"))
    assert (tmp_path / "out" / "code" / "b.py").read_text() == "print(1)"
    assert (tmp_path / "out" / "model-symbol.json").read_text() == "{}"


def test_safe_extract_missing_archive(tmp_path):
    with pytest.raises(FileNotFoundError, match="archive not found"):
        safe_extract(str(tmp_path / "nope.tar.gz"), str(tmp_path / "out"))


def test_create_tar_gz_puts_contents_at_top_level(tmp_path):
    src = tmp_path / "model"
    (src / "sub").mkdir(parents=True)
    (src / "model-symbol.json").write_text("{}")
    (src / "sub" / "x").write_text("1")
    failure = tmp_path / "failure"
    failure.write_text("boom")
    archive = create_tar_gz(str(src), str(tmp_path / "out" / "model.tar.gz"), extra_files={"failure": str(failure)})
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == ["failure", "model-symbol.json", "sub", "sub/x"]
    assert [p for p in os.listdir(tmp_path / "out") if p.endswith(".partial")] == []
    umask = os.umask(0o022)
    os.umask(umask)
    assert os.stat(archive).st_mode & 0o777 == 0o666 & ~umask  # as any new file, not mkstemp's 0600


def test_local_s3_round_trip_and_key_escape(tmp_path):
    store = LocalS3(str(tmp_path / "s3"), ["bucket"])
    src = tmp_path / "f.txt"
    src.write_text("hello")
    proxy = S3ResourceProxy(store, real_factory=lambda: pytest.fail("real S3 must not be used"))
    proxy.Object("bucket", "a/b/f.txt").upload_file(str(src), ExtraArgs={"ServerSideEncryption": "aws:kms"})
    proxy.Bucket("bucket").download_file("a/b/f.txt", str(tmp_path / "g.txt"))
    assert (tmp_path / "g.txt").read_text() == "hello"
    with pytest.raises(ValueError, match="escapes"):
        store.path("bucket", "../../etc/passwd")
    with pytest.raises(FileNotFoundError, match="no such object"):
        store.download_file("bucket", "missing", str(tmp_path / "x"))


def test_real_s3_without_credentials_is_a_clear_error(tmp_path):
    class NoCreds:
        def get_credentials(self):
            return None

    class Session:
        boto_session = NoCreds()

    store = LocalS3(str(tmp_path / "s3"), ["bucket"])
    with pytest.raises(NoCredentialsError, match="no AWS credentials.*file://"):
        fetch_to_dir("s3://someone-elses-bucket/data/", str(tmp_path / "d"), store, Session())
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fetch_to_dir("file://" + str(tmp_path / "missing"), str(tmp_path / "d"), store, Session())


def test_final_metrics_takes_last_value_per_definition(tmp_path):
    log = tmp_path / "job.log"
    log.write_text("epoch=0 acc=0.5\nepoch=1 acc=0.75\nloss=0.3\n")
    got = final_metrics(str(log), [{"Name": "acc", "Regex": r"acc=([0-9.]+)"},
                                   {"Name": "loss", "Regex": r"loss=([0-9.]+)"},
                                   {"Name": "absent", "Regex": r"nope=([0-9.]+)"}])
    assert [(m["MetricName"], m["Value"]) for m in got] == [("acc", 0.75), ("loss", 0.3)]


def test_java_missing_names_the_package(monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(endpoint_mod.JavaNotFoundError, match="apt-get install -y default-jre-headless"):
        endpoint_mod.find_java()


def test_busy_requested_port_is_a_clear_error(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        if port > endpoint_mod.MAX_MMS_PORT:
            port = endpoint_mod.free_port()
            s2 = socket.socket()
            s2.bind(("127.0.0.1", port))
            s2.listen()
        server = endpoint_mod.ModelServer(str(tmp_path / "ep"), None, {}, port=port)
        with pytest.raises(endpoint_mod.ModelServerError, match="port %d is in use" % port):
            server.start()
    assert not (tmp_path / "ep").exists()


def test_free_port_is_in_the_range_mms_accepts():
    for _ in range(20):
        assert 20000 <= endpoint_mod.free_port() <= endpoint_mod.MAX_MMS_PORT


def test_session_opts_out_of_telemetry_and_stages_through_local_bucket(tmp_path):
    from sagemaker.utils import resolve_value_from_config

    from smgluon_local import ProcessSession

    session = ProcessSession(root_dir=str(tmp_path))
    assert resolve_value_from_config(None, "SageMaker.PythonSDK.Modules.TelemetryOptOut",
                                     sagemaker_session=session) is True
    assert session.default_bucket() == "smgluon-local"
    assert session.local_mode
    src = tmp_path / "data.txt"
    src.write_text("x")
    uri = session.upload_data(str(src), key_prefix="up")
    assert uri == "s3://smgluon-local/up/data.txt"
    assert (tmp_path / "s3" / "smgluon-local" / "up" / "data.txt").read_text() == "x"


def test_config_lookups_check_the_sdk_schema_once_and_still_refuse_a_bad_config(tmp_path, monkeypatch):
    # The opt-out makes the session's config non-empty, so the SDK validates it at every lookup (dozens per
    # fit or deploy); jsonschema.validate re-checked the SDK's constant schema against the metaschema each time.
    import jsonschema
    from sagemaker.utils import get_sagemaker_config_value

    from smgluon_local import ProcessSession

    session = ProcessSession(root_dir=str(tmp_path))
    checks = []
    real_check = jsonschema.Draft202012Validator.check_schema
    monkeypatch.setattr(jsonschema.Draft202012Validator, "check_schema",
                        classmethod(lambda cls, schema, **kw: checks.append(1) or real_check(schema, **kw)))
    key = "SageMaker.PythonSDK.Modules.TelemetryOptOut"
    assert [get_sagemaker_config_value(session, key) for _ in range(5)] == [True] * 5
    assert len(checks) <= 1
    session.sagemaker_config["SageMaker"]["PythonSDK"]["Modules"]["TelemetryOptOut"] = "yes"
    with pytest.raises(jsonschema.ValidationError, match="'yes' is not of type 'boolean'"):
        get_sagemaker_config_value(session, key)


def test_fixture_dir_is_importable_without_side_effects():
    # The serving container imports entry points; importing them must not run training.
    import importlib.util

    for name in ("plain_mlp", "dump_env", "failing"):
        spec = importlib.util.spec_from_file_location(name, os.path.join(FIXTURES, name + ".py"))
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


def test_cli_parses_hyperparameters_with_json_types():
    from smgluon_local.cli import CliError, parse_hyperparameters

    assert parse_hyperparameters(["epochs=2", "learning_rate=0.1", "optimizer=adam", "flag=true", "s=a=b"]) == {
        "epochs": 2, "learning_rate": 0.1, "optimizer": "adam", "flag": True, "s": "a=b"}
    with pytest.raises(CliError, match="KEY=VALUE"):
        parse_hyperparameters(["epochs"])


@pytest.mark.parametrize("argv, message", [
    (["train", "nmist_mlp", "--train", "."], "unknown workload 'nmist_mlp'. Did you mean 'mnist_mlp'"),
    (["train", "mnist_mlp"], "no data: pass --train DIR"),
    (["train", "mnist_mlp", "--train", "/nonexistent"], "--train /nonexistent: no such directory"),
    (["train", "mnist_mlp", "--train", ".", "--hp", "epochs"], "expected KEY=VALUE"),
    (["train", "mnist_mlp", "--train", ".", "--hp", "epoch=2"], "Did you mean 'epochs'"),
    (["serve", "/nonexistent/model.tar.gz"], "no such file"),
    (["predict", "--endpoint", "http://127.0.0.1:9", "/nonexistent.json"], "no such file"),
])
def test_cli_bad_input_is_one_clear_line(argv, message, capsys):
    from local_helpers import REPO

    from smgluon_local.cli import main

    assert main(argv + (["--entry-points", os.path.join(REPO, "entry_points")] if argv[0] == "train" else [])) == 1
    err = capsys.readouterr().err
    assert err.startswith("smgluon: error: ") and message in err
    assert "Traceback" not in err


def test_cli_predict_unreachable_endpoint(tmp_path, capsys):
    from smgluon_local.cli import main

    body = tmp_path / "x.json"
    body.write_text("[0]")
    port = endpoint_mod.free_port()
    assert main(["predict", "--endpoint", "http://127.0.0.1:%d" % port, str(body)]) == 1
    assert "is `smgluon serve` running?" in capsys.readouterr().err


def test_cli_serve_refuses_unsafe_model_archive(tmp_path, capsys):
    from smgluon_local.cli import main

    archive = _tar(str(tmp_path / "model.tar.gz"), [("code/evil.py", "file", ""), ("../escape", "file", "x")])
    assert main(["serve", archive, "--root", str(tmp_path / "root")]) == 1
    # Refused either by the SDK's repack (tarfile's data filter) or by our extraction.
    err = capsys.readouterr().err
    assert "'..'" in err or "outside the destination" in err
    assert not (tmp_path / "escape").exists()


def test_model_server_refuses_unsafe_archive_and_cleans_up(tmp_path):
    archive = _tar(str(tmp_path / "model.tar.gz"), [("model-symbol.json", "file", "{}"),
                                                     ("code/../../x.py", "file", "")])
    server = endpoint_mod.ModelServer(str(tmp_path / "ep"), archive, {})
    with pytest.raises(UnsafeTarError):
        server.start()
    assert not (tmp_path / "ep").exists() and not (tmp_path / "x.py").exists()
    assert server.process is None
