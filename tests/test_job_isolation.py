"""A local training job's environment stays the job's own: requirements.txt, /opt/ml, sitecustomize, hints."""

import json
import os
import subprocess
import sys
import tarfile
import textwrap
import threading
import time

import pytest
from local_helpers import fit_needing_package, mxnet_estimator, pip_freeze

from smgluon_local import failure_hints, hostnames, optml, requirements

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(hostnames.__file__)))


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(textwrap.dedent(text))
    return path


@pytest.fixture
def session(tmp_path):
    from smgluon_local import ProcessSession

    return ProcessSession(root_dir=str(tmp_path / "root"), log_stream=False)


def _job_log(session, estimator):
    with open(os.path.join(session.root_dir, "jobs", estimator.latest_training_job.name, "job.log")) as f:
        return f.read()


def _model_members(session, estimator):
    from smgluon_local.storage import uri_to_local_path

    with tarfile.open(uri_to_local_path(estimator.model_data, session.local_s3)) as tar:
        return {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers() if m.isfile()}


# ---------------------------------------------------------------- the multi-host hint


def test_hint_for_multi_host_without_parameter_server(tmp_path):
    log = _write(str(tmp_path / "job.log"), 'algo-1 | MXNetError: Check notnull: find("DMLC_NUM_WORKER")\n')
    reason = 'algo-2: ExecuteUserScriptError:\nExitCode 1\nErrorMessage ""'
    hinted = failure_hints.with_hint(reason, log, ["algo-1", "algo-2"], {})
    assert hinted.startswith(reason)
    assert 'distribution={"parameter_server": {"enabled": True}}' in hinted and "2 hosts" in hinted
    # One host, the parameter server on, or a failure that has nothing to do with DMLC_*: no hint.
    assert failure_hints.with_hint(reason, log, ["algo-1"], {}) == reason
    assert (
        failure_hints.with_hint(reason, log, ["algo-1", "algo-2"], {"sagemaker_parameter_server_enabled": "true"})
        == reason
    )
    other = _write(str(tmp_path / "other.log"), "algo-1 | ValueError: bad learning rate\n")
    assert failure_hints.with_hint(reason, other, ["algo-1", "algo-2"], {}) == reason


# ---------------------------------------------------------------- requirements.txt


def test_requirements_cache_key_and_job_paths(tmp_path):
    a, b, c = (str(tmp_path / name) for name in "abc")
    _write(os.path.join(a, "requirements.txt"), "pyfiglet\n")
    _write(os.path.join(b, "requirements.txt"), "pyfiglet\n")
    _write(os.path.join(b, "train.py"), "print('other code, same requirements')\n")
    _write(os.path.join(c, "requirements.txt"), "pyfiglet==1.0.4\n")
    key = requirements.cache_key
    # Same file, same overlay, whatever the rest of the code; another file, another overlay.
    assert key(a) == key(b) != key(c)
    # A file that refers to local files, or a source dir installed as a package, covers every file.
    _write(os.path.join(a, "requirements.txt"), "-r more.txt\n")
    _write(os.path.join(a, "more.txt"), "pyfiglet\n")
    before = key(a)
    _write(os.path.join(a, "more.txt"), "pyfiglet==1.0.4\n")
    assert key(a) != before
    package = key(b, package=True)
    _write(os.path.join(b, "train.py"), "print('changed')\n")
    assert key(b, package=True) != package and key(b, package=True) != key(b)

    env_dir = str(tmp_path / "overlay")
    paths = requirements.job_paths(env_dir, {"PYTHONPATH": "/site:/user", "PATH": "/job/bin:/usr/bin"})
    # After the user's PYTHONPATH (as the container's site-packages would be), and after the job's own
    # `python` launcher on PATH.
    assert paths["PYTHONPATH"].split(os.pathsep) == ["/site", "/user", requirements.site_packages(env_dir)]
    assert paths["PATH"].split(os.pathsep) == ["/job/bin", os.path.join(env_dir, "bin"), "/usr/bin"]


def test_concurrent_installs_build_once_and_a_half_built_overlay_is_rebuilt(tmp_path):
    code, cache = str(tmp_path / "code"), str(tmp_path / "cache")
    _write(os.path.join(code, "requirements.txt"), "anything\n")
    env_dir = os.path.join(cache, requirements.cache_key(code))
    os.makedirs(os.path.join(env_dir, "junk"))  # an install that was killed half-way
    calls, results = [], []

    def fake_pip(argv, cwd):
        calls.append(argv)
        assert not os.path.exists(os.path.join(env_dir, "junk"))
        time.sleep(0.5)  # the other job arrives meanwhile and must wait for this one

    def job():
        results.append(requirements.install(code, cache, fake_pip, log=lambda line: None))

    threads = [threading.Thread(target=job) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [env_dir, env_dir]
    assert calls == [[os.path.join(env_dir, "bin", "python"), "-m", "pip", "install", "-r", "requirements.txt"]]


def _run_pip(argv, cwd):
    out = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if out.returncode:
        raise RuntimeError(out.stdout.decode())
    return out.stdout.decode()


@pytest.mark.slow
def test_requirements_met_by_the_user_environment_are_not_reinstalled(tmp_path):
    import numpy

    code = str(tmp_path / "code")
    _write(os.path.join(code, "requirements.txt"), "numpy\n")
    lines = []
    env_dir = requirements.install(code, str(tmp_path / "cache"), _run_pip, log=lines.append)
    site_packages = requirements.site_packages(env_dir)
    assert not any(name.startswith("numpy") for name in os.listdir(site_packages))
    # The overlay's interpreter sees the user's packages after its own.
    out = (
        subprocess.run(
            [os.path.join(env_dir, "bin", "python"), "-c", "import numpy; print(numpy.__file__)"],
            check=True,
            stdout=subprocess.PIPE,
        )
        .stdout.decode()
        .strip()
    )
    assert out == numpy.__file__
    # A second install of the same file is a cache hit.
    assert requirements.install(code, str(tmp_path / "cache"), _run_pip, log=lines.append) == env_dir
    assert "already installed" in lines[-1]


@pytest.mark.slow
def test_failed_pip_leaves_no_overlay(tmp_path):
    code = str(tmp_path / "code")
    _write(os.path.join(code, "requirements.txt"), "smgluon-no-such-package-here==0.0.1\n")
    cache = str(tmp_path / "cache")
    with pytest.raises(RuntimeError, match="smgluon-no-such-package-here"):
        requirements.install(code, cache, _run_pip, log=lambda line: None)
    assert [n for n in os.listdir(cache) if not n.endswith(".lock")] == []


REQUIREMENTS_SCRIPT = """\
    import os, sys
    import pyfiglet

    print("pyfiglet from", pyfiglet.__file__)
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "where.txt"), "w") as f:
        f.write(pyfiglet.__file__)
"""


@pytest.mark.slow
def test_requirements_installed_for_the_job_only(session, tmp_path):
    src = str(tmp_path / "src")
    _write(os.path.join(src, "entry.py"), REQUIREMENTS_SCRIPT)
    _write(os.path.join(src, "requirements.txt"), "pyfiglet\n")
    before = pip_freeze()

    est = mxnet_estimator(session, "entry.py", source_dir=src)
    fit_needing_package(est, "pyfiglet")
    where = _model_members(session, est)["where.txt"]
    cache = os.path.join(session.root_dir, "requirements")
    assert where.startswith(cache + os.sep)
    assert "installing into" in _job_log(session, est)
    assert pip_freeze() == before

    again = mxnet_estimator(session, "entry.py", source_dir=src)
    again.fit()
    assert _model_members(session, again)["where.txt"] == where
    assert "already installed" in _job_log(session, again)
    assert pip_freeze() == before


@pytest.mark.slow
def test_pip_failure_fails_the_job_with_pips_message(session, tmp_path):
    from sagemaker.exceptions import UnexpectedStatusException

    src = str(tmp_path / "src")
    _write(os.path.join(src, "entry.py"), "print('never runs')\n")
    _write(os.path.join(src, "requirements.txt"), "smgluon-no-such-package-here==0.0.1\n")
    est = mxnet_estimator(session, "entry.py", source_dir=src)
    with pytest.raises(UnexpectedStatusException) as raised:
        est.fit()
    message = str(raised.value)
    assert "InstallRequirementsError" in message
    assert "No matching distribution found for smgluon-no-such-package-here" in message
    assert "never runs" not in _job_log(session, est)
    cache = os.path.join(session.root_dir, "requirements")
    assert [n for n in os.listdir(cache) if not n.endswith(".lock")] == []


# ---------------------------------------------------------------- /opt/ml


def _needs_opt_ml():
    reason = optml.available()
    if reason is not None:
        pytest.skip("no private /opt/ml on this machine: %s" % reason)


def test_private_opt_ml_shows_the_host_tree_only_inside(tmp_path):
    _needs_opt_ml()
    host = tmp_path / "host"
    host.mkdir()
    (host / "marker").write_text("mine")
    before = os.path.isdir(optml.OPT_ML) and sorted(os.listdir(optml.OPT_ML))
    before_opt = sorted(os.listdir("/opt")) if os.path.isdir("/opt") else []
    code = textwrap.dedent("""\
        import os, sys
        from smgluon_local import optml
        reason = optml.enter(sys.argv[1])
        assert reason is None, reason
        with open("/opt/ml/marker") as f:
            assert f.read() == "mine"
        os.makedirs("/opt/ml/checkpoints")
        with open("/opt/ml/checkpoints/ck", "w") as f:
            f.write("saved")
        print(sorted(e for e in os.listdir("/opt") if e != "ml"))
    """)
    out = subprocess.run(
        [sys.executable, "-c", code, str(host)],
        check=True,
        stdout=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=PACKAGE_PARENT),
    ).stdout.decode()
    # Inside, /opt still has all its entries; outside, nothing changed and the files are in the tree.
    assert out.strip() == repr(before_opt)
    assert (host / "checkpoints" / "ck").read_text() == "saved"
    assert (os.path.isdir(optml.OPT_ML) and sorted(os.listdir(optml.OPT_ML))) == before
    assert sorted(os.listdir("/opt")) == before_opt


OPT_ML_SCRIPT = """\
    import os, sys, time

    name = os.environ["JOB_TAG"]
    for d in ("/opt/ml/model", "/opt/ml/checkpoints"):
        with open(os.path.join(d, name), "w") as f:
            f.write(name)
    time.sleep(2)  # both jobs are running now: neither may see the other's files
    seen = sorted(os.listdir("/opt/ml/model")) + sorted(os.listdir("/opt/ml/checkpoints"))
    assert seen == [name, name], seen
    assert os.path.realpath(os.environ["SM_MODEL_DIR"]) != "/opt/ml/model"
    assert os.listdir(os.environ["SM_MODEL_DIR"]) == [name]
"""


@pytest.mark.slow
def test_concurrent_jobs_each_have_their_own_opt_ml(session, tmp_path):
    _needs_opt_ml()
    src = str(tmp_path / "src")
    _write(os.path.join(src, "write_opt_ml.py"), OPT_ML_SCRIPT)
    estimators = [
        mxnet_estimator(
            session, "write_opt_ml.py", source_dir=src, environment={"JOB_TAG": tag}, base_job_name="optml-%s" % tag
        )
        for tag in ("first", "second")
    ]
    errors = []

    def fit(est):
        try:
            est.fit()
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=fit, args=(est,)) for est in estimators]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for est, tag in zip(estimators, ("first", "second")):
        assert _model_members(session, est) == {tag: tag}
        job_dir = os.path.join(session.root_dir, "jobs", est.latest_training_job.name)
        assert os.listdir(os.path.join(job_dir, "algo-1", "checkpoints")) == [tag]
    assert not os.path.exists(os.path.join(optml.OPT_ML, "model", "first"))


def test_unavailable_opt_ml_is_said_once(monkeypatch, tmp_path):
    monkeypatch.setattr(optml, "_probe_result", ["unshare: Operation not permitted"])
    assert optml.host_environment(str(tmp_path / "algo-1")) == {}
    note = optml.unavailable_note()
    assert "unshare: Operation not permitted" in note and "SM_*" in note
    monkeypatch.setattr(optml, "_probe_result", [None])
    assert optml.unavailable_note() is None
    assert optml.host_environment(str(tmp_path / "algo-1")) == {optml.OPT_ML_ENV: str(tmp_path / "algo-1")}


# ---------------------------------------------------------------- the user's sitecustomize


def test_user_sitecustomize_still_runs(tmp_path):
    user_dir = tmp_path / "user"
    _write(
        str(user_dir / "sitecustomize.py"),
        """\
        import os
        os.environ["USER_SITECUSTOMIZE"] = "ran"
    """,
    )
    env = dict(os.environ, PYTHONPATH=str(user_dir))
    env.update(hostnames.job_environment(str(tmp_path / "job"), ["algo-1", "algo-2"], env))
    code = (
        "import os, socket, sitecustomize; "
        "print(os.environ.get('USER_SITECUSTOMIZE'), socket.gethostbyname('algo-2'), sitecustomize.__file__)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, stdout=subprocess.PIPE)
    ran, address, module = out.stdout.decode().split()
    assert (ran, address) == ("ran", "127.0.0.1")
    # `import sitecustomize` afterwards gives the user's module, as without the shim.
    assert module == str(user_dir / "sitecustomize.py")


@pytest.mark.slow
def test_user_sitecustomize_runs_in_a_job(session, tmp_path):
    user_dir = tmp_path / "user"
    _write(
        str(user_dir / "sitecustomize.py"),
        """\
        import os
        os.environ["USER_SITECUSTOMIZE"] = "ran"
    """,
    )
    src = str(tmp_path / "src")
    _write(
        os.path.join(src, "check_site.py"),
        """\
        import json, os, socket
        with open(os.path.join(os.environ["SM_MODEL_DIR"], "site.json"), "w") as f:
            json.dump([os.environ.get("USER_SITECUSTOMIZE"), socket.gethostbyname("algo-1")], f)
    """,
    )
    est = mxnet_estimator(session, "check_site.py", source_dir=src, environment={"PYTHONPATH": str(user_dir)})
    est.fit()
    assert json.loads(_model_members(session, est)["site.json"]) == ["ran", "127.0.0.1"]


@pytest.mark.slow
def test_dist_kvstore_on_two_hosts_without_parameter_server_gets_the_hint(session, tmp_path):
    from sagemaker.exceptions import UnexpectedStatusException

    src = str(tmp_path / "src")
    _write(
        os.path.join(src, "dist.py"),
        """\
        import mxnet as mx
        mx.kv.create("dist_sync")
    """,
    )
    est = mxnet_estimator(session, "dist.py", source_dir=src, instance_count=2)
    with pytest.raises(UnexpectedStatusException) as raised:
        est.fit()
    assert 'distribution={"parameter_server": {"enabled": True}}' in str(raised.value)


@pytest.mark.slow
def test_source_dir_package_is_installed_for_the_job_only(session, tmp_path):
    """A source dir with setup.py: the container's `pip install .` goes into the job's overlay too."""
    src = str(tmp_path / "src")
    _write(
        os.path.join(src, "setup.py"),
        """\
        from setuptools import setup
        setup(name="smgluon-test-job-package", version="0.1", py_modules=["job_helper"])
    """,
    )
    _write(os.path.join(src, "job_helper.py"), "WHERE = __file__\n")
    _write(
        os.path.join(src, "entry.py"),
        """\
        import os, sys
        sys.path.remove(os.path.dirname(os.path.abspath(__file__)))  # import the installed copy
        import job_helper
        with open(os.path.join(os.environ["SM_MODEL_DIR"], "where.txt"), "w") as f:
            f.write(job_helper.WHERE)
    """,
    )
    before = pip_freeze()
    est = mxnet_estimator(session, "entry.py", source_dir=src)
    est.fit()
    assert _model_members(session, est)["where.txt"].startswith(os.path.join(session.root_dir, "requirements"))
    assert "smgluon-test-job-package" not in pip_freeze()
    assert pip_freeze() == before


@pytest.mark.slow
def test_a_version_the_user_does_not_have_shadows_it_for_the_job_only(session, tmp_path):
    """The issue's `numpy>=1.24` case in small: the job gets the version it asks for, the user keeps theirs."""
    import six

    wanted = "1.16.0" if six.__version__ != "1.16.0" else "1.15.0"
    src = str(tmp_path / "src")
    _write(os.path.join(src, "requirements.txt"), "six==%s\n" % wanted)
    _write(
        os.path.join(src, "entry.py"),
        """\
        import os, six
        with open(os.path.join(os.environ["SM_MODEL_DIR"], "six.txt"), "w") as f:
            f.write(six.__version__)
    """,
    )
    before = pip_freeze()
    est = mxnet_estimator(session, "entry.py", source_dir=src)
    est.fit()
    assert _model_members(session, est)["six.txt"] == wanted
    assert pip_freeze() == before


@pytest.mark.slow
def test_without_private_opt_ml_the_job_says_so_once_and_runs(session, tmp_path, monkeypatch):
    monkeypatch.setattr(optml, "_probe_result", ["unshare: Operation not permitted"])
    src = str(tmp_path / "src")
    _write(
        os.path.join(src, "entry.py"),
        """\
        import os
        with open(os.path.join(os.environ["SM_MODEL_DIR"], os.environ["SM_CURRENT_HOST"]), "w") as f:
            f.write(str(os.path.exists("/opt/ml/model")))
    """,
    )
    est = mxnet_estimator(session, "entry.py", source_dir=src, instance_count=2)
    est.fit()
    log = _job_log(session, est)
    assert log.count("does not let a job have its own /opt/ml (unshare: Operation not permitted)") == 1
    assert _model_members(session, est) == {"algo-1": str(os.path.exists("/opt/ml/model"))}
