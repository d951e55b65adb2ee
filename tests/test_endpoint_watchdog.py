"""The endpoint watchdog: a model server outlives no process that started it.

The fast tests guard a stand-in group (two sleeping Python processes, like the
MMS launcher and java); the slow ones kill a real `smgluon serve` and stop a real
model server.
"""

import glob
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import textwrap
import time

import psutil
import pytest
from local_helpers import FIXTURES, live_processes_under, signal_and_time_exit

from smgluon_local import watchdog as watchdog_mod
from smgluon_local.endpoint import ModelServer, free_port, port_is_free
from smgluon_local.watchdog import ProcessGroup, Watchdog

# A group leader with one child, both sleeping; the tag puts the test's directory in their command lines.
GROUP = ("import subprocess, sys, time; tag = sys.argv[1]; "
         "subprocess.Popen([sys.executable, '-c', 'import time, sys; time.sleep(300)', tag]); time.sleep(300)")


def _start_group(tag):
    proc = subprocess.Popen([sys.executable, "-c", GROUP, tag], start_new_session=True)
    _wait_for(lambda: len(live_processes_under(tag)) == 2, 20, "the stand-in group did not start")
    return proc


def _wait_for(condition, timeout, message):
    """Polls ``condition`` for up to ``timeout`` seconds; ``message`` may be a callable, asked on failure."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message() if callable(message) else message)
        time.sleep(0.1)


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _ignored_signals(pid):
    with open("/proc/%d/status" % pid) as f:
        return next(int(line.split()[1], 16) for line in f if line.startswith("SigIgn:"))


def _watchdogs_for(path):
    return [p for p in live_processes_under(path) if "watchdog.py" in p[1]]


@pytest.fixture
def group(tmp_path):
    proc = _start_group(str(tmp_path))
    yield proc
    _kill_group(proc)


def test_killed_parent_gets_its_group_stopped(tmp_path):
    """A parent killed with SIGKILL: the watchdog stops the group, removes the temp dir, keeps the log."""
    log, scratch = tmp_path / "mms.log", tmp_path / "smgl-scratch"
    log.write_text("server log line\n")
    scratch.mkdir()
    # As ModelServer does: the parent starts the group in its own session, then the watchdog.
    parent_code = textwrap.dedent("""
        import subprocess, sys, time
        from smgluon_local.watchdog import ProcessGroup, Watchdog
        group = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], start_new_session=True)
        Watchdog.start(ProcessGroup.of(group.pid), log_path=sys.argv[2], remove_dir=sys.argv[3])
        print(group.pid, flush=True)
        time.sleep(300)
    """)
    parent = subprocess.Popen([sys.executable, "-c", parent_code, GROUP, str(log), str(scratch)],
                              stdout=subprocess.PIPE, text=True)
    try:
        pgid = int(parent.stdout.readline())
        _wait_for(lambda: len(live_processes_under(str(log))) == 4, 20, "the group and its watchdog did not start")
        assert len(_watchdogs_for(str(tmp_path))) == 1
        parent.kill()
        parent.wait()
        _wait_for(lambda: live_processes_under(str(tmp_path)) == [], 15, "the group or the watchdog is still running")
    finally:
        parent.kill()
        parent.wait()
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, NameError):
            pass
    assert not scratch.exists()
    text = log.read_text()
    assert text.startswith("server log line\n")
    assert ("[smgluon watchdog] the process that started this endpoint (pid %d) is gone; stopping the model "
            "server (process group %d)\n" % (parent.pid, pgid)) in text
    assert "[smgluon watchdog] model server stopped\n" in text  # on SIGTERM, as stop() does


def test_stand_down_exits_and_leaves_the_group_alone(tmp_path, group):
    dog = Watchdog.start(ProcessGroup.of(group.pid), log_path=str(tmp_path / "mms.log"))
    assert dog.process.poll() is None
    dog.stand_down()
    assert dog.process.returncode == 0
    dog.stand_down()  # idempotent
    assert group.poll() is None and len(live_processes_under(str(tmp_path))) == 2
    assert not (tmp_path / "mms.log").exists()


def test_watchdog_exits_by_itself_when_the_group_ends(tmp_path, group):
    dog = Watchdog.start(ProcessGroup.of(group.pid), log_path=str(tmp_path / "mms.log"))
    _kill_group(group)
    # It checks the group once a second.
    assert dog.process.wait(timeout=10) == 0
    dog.stand_down()  # the pipe's reader is gone: no BrokenPipeError
    assert not (tmp_path / "mms.log").exists()


def test_watchdog_ignores_terminal_signals_and_holds_only_its_pipe(tmp_path, group):
    with open(str(tmp_path / "unrelated.log"), "w"), socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        dog = Watchdog.start(ProcessGroup.of(group.pid))
    try:
        # Once its signals are set, Python's start-up (which reads files) is over.
        _wait_for(lambda: _ignored_signals(dog.process.pid) & 0b11 == 0b11, 10, "SIGHUP and SIGINT not ignored")
        watchdog = psutil.Process(dog.process.pid)
        # Its own session: Ctrl-C or a hang-up in the parent's terminal does not reach it.
        assert os.getsid(dog.process.pid) == dog.process.pid != os.getsid(0)
        assert watchdog.cwd() == "/"
        assert watchdog.open_files() == [] and watchdog.net_connections() == []
        fds = sorted(int(fd) for fd in os.listdir("/proc/%d/fd" % dog.process.pid))
        assert fds == [0, 1, 2]
        assert os.readlink("/proc/%d/fd/0" % dog.process.pid).startswith("pipe:")
        for sig in (signal.SIGINT, signal.SIGHUP):
            os.kill(dog.process.pid, sig)
        time.sleep(0.3)
        assert dog.process.poll() is None
    finally:
        dog.stand_down()
    assert dog.process.returncode == 0 and group.poll() is None


def test_a_reused_group_id_is_not_taken_for_the_group(group):
    real = ProcessGroup.of(group.pid)
    assert real.leader_start is not None and real.alive()
    assert not ProcessGroup(group.pid, real.leader_start + 1).alive()
    # And stop() leaves such a group alone.
    assert ProcessGroup(group.pid, real.leader_start + 1).stop(grace=1)
    assert group.poll() is None
    assert real.stop(grace=5, reap=group.poll) and group.returncode == -signal.SIGTERM


def test_process_start_time_reads_proc_and_knows_missing_processes():
    mine = watchdog_mod.process_start_time(os.getpid())
    assert isinstance(mine, int) and mine == watchdog_mod.process_start_time(os.getpid())
    assert psutil.Process().create_time() == pytest.approx(
        psutil.boot_time() + mine / os.sysconf("SC_CLK_TCK"), abs=2)
    assert watchdog_mod.process_start_time(2 ** 22 + 1) is None  # above any pid_max


def test_watchdog_command_line_names_missing_arguments(capsys):
    with pytest.raises(SystemExit) as exit_info:
        watchdog_mod.main(["--parent", "1"])
    assert exit_info.value.code == 2
    assert "--pgid" in capsys.readouterr().err


# The real model server.


@pytest.fixture(scope="module")
def plain_model_tar(tmp_path_factory, mnist_small_dirs):
    """model.tar.gz of the plain_mlp fixture after one epoch on 2k images, with its code."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("plain_mlp", os.path.join(FIXTURES, "plain_mlp.py"))
    plain_mlp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plain_mlp)
    root = tmp_path_factory.mktemp("plain_model")
    model_dir = root / "model"
    model_dir.mkdir()
    plain_mlp.main(["--epochs", "1", "--model-dir", str(model_dir), "--train", mnist_small_dirs["train"]])
    archive = str(root / "model.tar.gz")
    with tarfile.open(archive, "w:gz") as tar:
        for name in os.listdir(model_dir):
            tar.add(str(model_dir / name), arcname=name)
        tar.add(os.path.join(FIXTURES, "plain_mlp.py"), arcname="code/plain_mlp.py")
    shutil.rmtree(str(model_dir))
    return archive


@pytest.mark.slow
def test_kill_9_of_smgluon_serve_leaves_nothing_running(tmp_path, plain_model_tar):
    root, port = str(tmp_path / "root"), free_port()
    serve = subprocess.Popen([sys.executable, "-m", "smgluon_local.cli", "serve", plain_model_tar, "--root", root,
                              "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    logs = os.path.join(root, "endpoints", "*", "mms.log")
    try:
        # Up as deploy() sees it: a worker has loaded the model and the port is bound (in that order).
        _wait_for(lambda: serve.poll() is not None or (
            any("Model model loaded" in pathlib.Path(p).read_text() for p in glob.glob(logs))
            and not port_is_free(port)), 180, "the server did not come up")
        assert serve.poll() is None, "smgluon serve exited early"
        running = " ".join(cmd for _, cmd in live_processes_under(root))
        assert "java" in running and "watchdog.py" in running
        serve.kill()
        serve.wait()
        # Java, the Python workers, the launcher and the watchdog are gone within seconds.
        _wait_for(lambda: live_processes_under(root) == [], 15,
                  lambda: "still running after the deployer was killed: %r" % live_processes_under(root))
        _wait_for(lambda: port_is_free(port), 5, "port %d still taken" % port)
    finally:
        serve.kill()
        serve.wait()
    (log,) = glob.glob(logs)
    assert "[smgluon watchdog] model server stopped" in pathlib.Path(log).read_text()


@pytest.mark.slow
def test_stop_leaves_no_watchdog(tmp_path, plain_model_tar):
    endpoint_dir = str(tmp_path / "ep")
    server = ModelServer(endpoint_dir, plain_model_tar, {"SAGEMAKER_PROGRAM": "plain_mlp.py",
                                                         "SAGEMAKER_MODEL_SERVER_WORKERS": "1"})
    try:
        server.start()
        assert len(_watchdogs_for(endpoint_dir)) == 1
        scratch = server._tmp
    finally:
        server.stop()
    assert live_processes_under(endpoint_dir) == []
    assert server._watchdog is None and not os.path.exists(scratch)
    server.stop()  # idempotent
    assert port_is_free(server.port)
    assert "[smgluon watchdog]" not in pathlib.Path(server.log_path).read_text()


# Ctrl-C or SIGTERM while `smgluon serve` starts: the endpoint stops, whatever deploy() was doing.

# `smgluon serve` whose deploy() spends 5 s inside the SDK's telemetry-wrapped create_endpoint_config
# (normally microseconds), before or after its one statement stores the config: a KeyboardInterrupt
# raised there is swallowed by the wrapper's `finally: return`. Before, create_endpoint then fails
# for want of the config; after, deploy() goes on to start the server.
_SERVE_SLOW_ENDPOINT_CONFIG = textwrap.dedent("""
    import sys, time
    from sagemaker.local import local_session

    def slow():
        print("in create_endpoint_config", file=sys.stderr, flush=True)
        time.sleep(5)

    class SlowEndpointConfig(local_session._LocalEndpointConfig):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            slow()

    class SlowStore(dict):
        def __setitem__(self, key, value):
            super().__setitem__(key, value)
            slow()

    if sys.argv.pop(1) == "before":
        local_session._LocalEndpointConfig = SlowEndpointConfig
    else:
        local_session.LocalSagemakerClient._endpoint_configs = SlowStore()
    from smgluon_local.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.slow
@pytest.mark.parametrize("case", [
    "SIGINT while java starts, SIGINT ignored as in a script's background job",
    "SIGTERM while java starts",
    "SIGINT swallowed by the SDK's telemetry wrapper, and deploy() fails",
    "SIGINT swallowed by the SDK's telemetry wrapper, and deploy() goes on",
])
def test_a_signal_during_serve_start_up_stops_the_endpoint(tmp_path, plain_model_tar, case):
    root, port = str(tmp_path / "root"), free_port()
    args = ["serve", plain_model_tar, "--root", root, "--port", str(port)]
    swallowed = "swallowed" in case
    cmd = [sys.executable] + (["-c", _SERVE_SLOW_ENDPOINT_CONFIG, "after" if "goes on" in case else "before"]
                              if swallowed else ["-m", "smgluon_local.cli"])
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        serve = subprocess.Popen(cmd + args, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                                 preexec_fn=_ignore_sigint if "ignored" in case else None)
    try:
        if swallowed:
            _wait_for(lambda: serve.poll() is not None or "in create_endpoint_config" in err.read_text(), 120,
                      "deploy() did not reach create_endpoint_config")
        else:
            _wait_for(lambda: serve.poll() is not None or any("java" in c for _, c in live_processes_under(root)),
                      120, "the model server's java did not start")
        assert serve.poll() is None, "smgluon serve exited early:\n" + err.read_text()
        took = signal_and_time_exit(serve, signal.SIGTERM if "SIGTERM" in case else signal.SIGINT)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
        leftover = live_processes_under(root)
        for pid, _ in leftover:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert serve.returncode == 130, err.read_text()
    assert took < 20
    assert "serving at" not in out.read_text()
    assert err.read_text().rstrip().endswith("smgluon: interrupted")
    # Java, the Python workers, the launcher and the watchdog are gone; the port is free.
    assert leftover == []
    assert port_is_free(port)
    if "goes on" in case:  # deploy() started the server, and that one was stopped
        (log,) = glob.glob(os.path.join(root, "endpoints", "*", "mms.log"))
        assert "Model model loaded" in pathlib.Path(log).read_text()
