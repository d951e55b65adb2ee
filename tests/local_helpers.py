"""Helpers for the local-mode tests: estimator factory, process checks, no-network guard."""

import os
import socket
import subprocess
import sys
import time

import psutil

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "tests", "local_mode_fixtures")
ROLE = "arn:aws:iam::111111111111:role/any"


def mxnet_estimator(session, entry_point, source_dir=FIXTURES, dependencies=None, instance_count=1, **kwargs):
    """An SDK MXNet estimator for local mode, as a user would write it."""
    from sagemaker.mxnet import MXNet

    return MXNet(entry_point=entry_point, source_dir=source_dir, dependencies=dependencies or [],
                 role=ROLE, instance_count=instance_count, instance_type="local", framework_version="1.9.0",
                 py_version="py38", sagemaker_session=session, **kwargs)


def pip_freeze():
    """``pip freeze --all`` of the environment running the tests (the user's environment for a job)."""
    return subprocess.run([sys.executable, "-m", "pip", "freeze", "--all"], check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL).stdout.decode()


def fit_needing_package(estimator, package, inputs=None):
    """``estimator.fit(inputs)`` for a job whose requirements.txt lists ``package``, which must not be here.

    Skips the test when ``package`` is importable here (the job would not show it was installed for
    the job alone) or when the job's pip found no such package on the configured index.
    """
    import pytest

    try:
        __import__(package)
    except ImportError:
        pass
    else:
        pytest.skip("%s is installed in this environment; the test needs it absent" % package)
    try:
        estimator.fit(inputs)
    except Exception as e:
        if "No matching distribution found for %s" % package in str(e):
            pytest.skip("%s is not on the configured package index (see `pip config list`)" % package)
        raise


def live_processes_under(path):
    """Non-zombie processes whose command line mentions ``path`` (or its temp dirs)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmd = " ".join(proc.info["cmdline"] or [])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if path in cmd and proc.pid != os.getpid():
            found.append((proc.pid, cmd[:200]))
    return found


def signal_and_time_exit(proc, sig, timeout=30):
    """Sends ``sig`` to ``proc`` and waits for it to exit; kills it after ``timeout`` seconds.

    Returns:
        float: Seconds from the signal to its exit.
    """
    proc.send_signal(sig)
    started = time.monotonic()
    try:
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return time.monotonic() - started


class NoInternet:
    """Context manager: any connect() to a non-loopback address raises."""

    def __enter__(self):
        self._orig = socket.socket.connect
        attempts = self.attempts = []

        def guarded(sock, address, *args):
            host = address[0] if isinstance(address, tuple) else address
            if isinstance(host, str) and not (host.startswith("127.") or host in ("localhost", "::1")
                                              or sock.family == socket.AF_UNIX):
                attempts.append(address)
                raise OSError("network access blocked in tests: %r" % (address,))
            return self._orig(sock, address, *args)

        socket.socket.connect = guarded
        return self

    def __exit__(self, *exc):
        socket.socket.connect = self._orig
        return False


def wait_until(condition, timeout, what):
    """Polls ``condition()`` until it is true; fails with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(what)


def serve_url(serve, timeout):
    """The URL a running ``smgluon serve`` process (stdout a text pipe) prints once its endpoint answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = serve.stdout.readline()
        assert line or serve.poll() is None, "smgluon serve exited early"
        if line.startswith("serving at "):
            return line.split()[2]
    raise AssertionError("smgluon serve did not come up")
