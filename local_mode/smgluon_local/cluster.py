"""A local training cluster: one process tree per host, watched, and stopped whole.

Each host's first process (the container toolkit, see :mod:`smgluon_local.toolkit`)
starts in its own session, so the host's process group holds everything it
starts: the user's script and, with the parameter server enabled, the
scheduler and server roles. Every process of the job also carries
``SMGLUON_LOCAL_JOB=<job dir>`` in its environment, so a process that left the
group is still found when the job is cleaned up.

The job's ``PATH`` starts with a ``python`` that is this interpreter (the
container starts the roles as ``python -c 'import mxnet'``); for a scheduler or
server it records the role's exit status in ``<job dir>/roles/<host>/``.

:class:`Cluster` watches the hosts' first processes and their roles. When a
first process exits non-zero (the toolkit does so as soon as the script on that
host dies, with the reason in its failure file), or a role exits non-zero (a
crashed server), the job has failed and the other hosts are stopped at once:
with ``dist_sync`` they would otherwise wait for the dead process forever.
Stopping is SIGTERM to every host's group, then SIGKILL after
:data:`TERM_GRACE_S`; a failure is therefore reported within
:data:`FAULT_BOUND_S` of a process's death.
"""

import json
import logging
import os
import signal
import stat
import subprocess
import sys
import threading
import time

import psutil

logger = logging.getLogger(__name__)

__all__ = [
    "Cluster",
    "HostProcess",
    "JOB_ENV",
    "job_processes",
    "signal_name",
    "POLL_S",
    "TERM_GRACE_S",
    "FAULT_BOUND_S",
]

JOB_ENV = "SMGLUON_LOCAL_JOB"
ROLE_STATUS_ENV = "SMGLUON_ROLE_STATUS_DIR"
BIN_DIR_NAME, ROLES_DIR_NAME = "bin", "roles"
_PYTHON_WRAPPER = """#!/bin/sh
# A local training job's `python`: the interpreter that runs the job (with mxnet), whatever PATH
# said. The MXNet container starts the parameter-server roles as `python -c 'import mxnet'`; their
# exit status is recorded, so that a crashed server fails the job instead of stalling its workers.
case "$DMLC_ROLE" in
  scheduler|server) ;;
  *) exec %(python)s "$@" ;;
esac
%(python)s "$@"
status=$?
if [ -n "$%(env)s" ]; then
  echo "$DMLC_ROLE $status" > "$%(env)s/.$$" && mv "$%(env)s/.$$" "$%(env)s/$$"
fi
exit $status
"""
POLL_S = 0.2  # how often the hosts' first processes are checked
TERM_GRACE_S = 5.0  # SIGTERM → SIGKILL
# A job fails within this many seconds of one of its hosts' scripts dying: the toolkit notices
# at once (it waits on the script), the runner within POLL_S, and the other hosts are gone
# TERM_GRACE_S later at the latest; the rest is margin for packaging and a loaded machine.
FAULT_BOUND_S = 15.0


def job_processes(job_dir):
    """Live processes (not zombies) of a job: those whose environment carries ``JOB_ENV=job_dir``.

    Args:
        job_dir (str): The job directory.

    Returns:
        list of psutil.Process
    """
    found = []
    me = os.getpid()
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if proc.pid == me or proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if proc.environ().get(JOB_ENV) == job_dir:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
    return found


def signal_name(code):
    """The name of the signal behind a negative exit code (``-9`` → ``SIGKILL``)."""
    try:
        return signal.Signals(-code).name
    except ValueError:
        return "signal %d" % -code


def _shell_quote(text):
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _describe_status(status):
    """A process's exit, from Popen's code (negative: a signal) or a shell's (128 + signal)."""
    if status < 0:
        return "was killed by %s" % signal_name(status)
    if status > 128 and status - 128 < signal.NSIG:
        return "was killed by %s (exit status %d)" % (signal_name(128 - status), status)
    return "exited with status %d" % status


class HostProcess:
    """One host's first process, its log pump, its parameter-server roles and its exit.

    Attributes:
        host (str): The host name.
        proc (subprocess.Popen): The process.
        roles_dir (str): Where the host's roles record their exit status.
        exit_code (int or None): Its exit status once it ended (negative: killed by a signal).
        exit_time (float or None): ``time.monotonic()`` when the runner saw it end.
        role_failure (tuple or None): ``(role, status)`` of a role that exited non-zero.
    """

    def __init__(self, host, proc, pump, roles_dir):
        self.host = host
        self.proc = proc
        self.pump = pump
        self.roles_dir = roles_dir
        self.exit_code = None
        self.exit_time = None
        self.role_failure = None

    def poll(self):
        """Records the exit status if the process ended; returns it (None while running)."""
        if self.exit_code is None:
            code = self.proc.poll()
            if code is not None:
                self.exit_code, self.exit_time = code, time.monotonic()
        return self.exit_code

    def poll_roles(self):
        """Records the first parameter-server role that exited non-zero; returns ``(role, status)`` or None."""
        if self.role_failure is None:
            try:
                names = [n for n in os.listdir(self.roles_dir) if not n.startswith(".")]
            except OSError:
                names = []
            for name in sorted(names):
                try:
                    with open(os.path.join(self.roles_dir, name)) as f:
                        role, status = f.read().split()
                except (OSError, ValueError):
                    continue
                if int(status) != 0:
                    self.role_failure = (role, int(status))
                    self.exit_time = time.monotonic()
                    break
        return self.role_failure

    @property
    def failed(self):
        """bool: its first process exited non-zero, or one of its roles did."""
        return (self.exit_code is not None and self.exit_code != 0) or self.role_failure is not None

    def describe_exit(self):
        """What ended it: ``its training process exited with status 1``, ``its parameter-server server ...``."""
        if self.role_failure is not None:
            role, status = self.role_failure
            return "its parameter-server %s process %s" % (role, _describe_status(status))
        return "its training process %s" % _describe_status(self.exit_code)

    def signal_group(self, sig):
        """Sends ``sig`` to the host's process group."""
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


class Cluster:
    """Starts the hosts of a job, writes their output to the log, and stops them.

    Args:
        job_dir (str): The job directory (the processes' marker).
        log_file (file): Where every line goes, prefixed ``<host> | `` when there are several hosts.
        on_line (callable): Called as ``on_line(host, line)`` for every line, under the log lock.
        lock (threading.Lock): Serialises writes to ``log_file`` and ``on_line`` calls.
    """

    def __init__(self, job_dir, log_file, on_line, lock):
        self.job_dir = job_dir
        self.log_file = log_file
        self.on_line = on_line
        self.lock = lock
        self.hosts = []
        self.prefix = False
        self.bin_dir = os.path.join(job_dir, BIN_DIR_NAME)
        os.makedirs(self.bin_dir, exist_ok=True)
        launcher = os.path.join(self.bin_dir, "python")
        with open(launcher, "w") as f:
            f.write(_PYTHON_WRAPPER % {"python": _shell_quote(sys.executable), "env": ROLE_STATUS_ENV})
        os.chmod(launcher, os.stat(launcher).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    def start(self, host, argv, cwd, env):
        """Starts a host's first process in its own session.

        Args:
            host (str): The host name.
            argv (list of str): The command.
            cwd (str): Its working directory.
            env (dict): Its environment (``JOB_ENV`` is added).
        """
        env = dict(env)
        env[JOB_ENV] = self.job_dir
        roles_dir = os.path.join(self.job_dir, ROLES_DIR_NAME, host)
        os.makedirs(roles_dir, exist_ok=True)
        env[ROLE_STATUS_ENV] = roles_dir
        env["PATH"] = os.pathsep.join([self.bin_dir] + [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p])
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        pump = threading.Thread(target=self._pump, args=(host, proc), daemon=True, name="log-%s" % host)
        entry = HostProcess(host, proc, pump, roles_dir)
        self.hosts.append(entry)
        pump.start()
        return entry

    def _pump(self, host, proc):
        prefix = "%s | " % host
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode("utf-8", errors="replace")
            if not line.endswith("\n"):
                line += "\n"
            with self.lock:
                self.log_file.write((prefix if self.prefix else "") + line)
                self.log_file.flush()
                self.on_line(host, line)
        proc.stdout.close()

    def poll(self):
        """Checks every host and its roles; returns the hosts that ended or failed so far."""
        return [h for h in self.hosts if h.poll() is not None or h.poll_roles() is not None]

    def terminate(self, grace=TERM_GRACE_S):
        """Stops every process of the job: SIGTERM to each host's group, SIGKILL after ``grace`` seconds.

        Also ends processes that left their group but carry the job's marker, and
        waits for the log pumps to drain.
        """
        for h in self.hosts:
            h.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for h in self.hosts:
            try:
                h.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            h.poll()
        # The first processes are gone; their groups may still hold the parameter-server roles.
        while time.monotonic() < deadline and self._leftovers():
            time.sleep(0.1)
        for h in self.hosts:
            h.signal_group(signal.SIGKILL)
        for proc in self._leftovers():
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        for h in self.hosts:
            h.proc.wait()
            h.poll()
        for h in self.hosts:
            h.pump.join(timeout=5)
        left = self._leftovers()
        if left:
            psutil.wait_procs(left, timeout=5)
            left = self._leftovers()
            if left:
                logger.warning(
                    "job %s: processes still running after SIGKILL: %s", self.job_dir, json.dumps([p.pid for p in left])
                )

    def _leftovers(self):
        return job_processes(self.job_dir)
