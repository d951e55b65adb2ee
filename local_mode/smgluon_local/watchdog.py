"""Stop a local endpoint's model server when the process that started it dies.

:class:`~smgluon_local.endpoint.ModelServer` starts multi-model-server in its own
session (java and the Python workers share one process group), so Ctrl-C in a
terminal does not tear it down halfway. The price: if the process that deployed
the endpoint dies without running ``stop()`` (a notebook kernel killed with
SIGKILL, ``kill -9`` of ``smgluon serve``, the OOM killer), nothing would ever
stop the server, which keeps its port and its CPU. :meth:`Watchdog.start` runs
this file as a small standard-library-only process beside each server::

    python -I .../watchdog.py --parent PID --pgid PGID [--leader-start TICKS] [--log FILE] [--remove DIR]

How it knows that the parent died: the parent keeps the write end of a pipe
whose read end is the watchdog's stdin, and never writes to it except to say
"stand down". When the parent ends in any way (exit, exception, SIGKILL, OOM
kill) the kernel closes its descriptors and the watchdog's read returns EOF at
once; it then stops the group as ``stop()`` does (SIGTERM, up to
:data:`STOP_GRACE_S` seconds, SIGKILL), removes the server's private temp dir
(pid file, worker sockets), leaves the endpoint's logs where they are, notes
what it did in ``mms.log`` and exits. This is the most robust signal there is:

* It cannot be fooled by pid reuse (pid_max is 32768 on many machines), which
  polling ``kill(pid, 0)`` can.
* It needs no cooperation from the dying process: atexit handlers and signal
  handlers never run on SIGKILL.
* It is portable and immediate, unlike ``prctl(PR_SET_PDEATHSIG)``, which is
  Linux-only, needs ctypes, and fires when the *thread* that started the child
  exits rather than the process.

Only the parent holds the write end: ``os.pipe()`` descriptors are
close-on-exec, and every subprocess here is started with ``close_fds``. A
process *forked* from the parent without exec (multiprocessing's default start
method on Linux) would inherit a copy and delay the EOF, so the watchdog also
wakes once a second (a few system calls) and checks that its parent pid has not
changed: a dead process's children are re-parented, so ``getppid()`` is not
fooled by pid reuse either. On the same tick it checks that the server's group
still exists, identified by its id and its leader's start time; when the server
has ended on its own the watchdog has nothing left to guard and exits, so it is
never left running forever.

The watchdog runs in its own session and ignores SIGINT and SIGHUP, so the
terminal signals that may kill the parent do not kill it too. It starts in
``/``, with ``/dev/null`` on stdout and stderr and no other descriptor than the
pipe (no log file, no sockets). Python runs it isolated (``-I``): it imports
nothing but the standard library, whatever the parent's ``sys.path`` was.
"""

import argparse
import datetime
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import traceback

__all__ = ["STOP_GRACE_S", "ProcessGroup", "Watchdog", "process_start_time", "main"]

STOP_GRACE_S = 10.0  # seconds from SIGTERM to SIGKILL when stopping a server's group
POLL_S = 1.0  # how often the watchdog checks its parent pid and the group
STAND_DOWN = b"s"  # what the parent writes when it stopped the group itself

PARENT_GONE, STOOD_DOWN, GROUP_GONE = "parent gone", "stood down", "group gone"


def process_start_time(pid):
    """When process ``pid`` started, in clock ticks since boot (Linux ``/proc``).

    A pid can be reused; a pid with its start time names one process for good.

    Args:
        pid (int): The process id.

    Returns:
        int or None: The start time; None if there is no such process or no ``/proc``.
    """
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # Field 22. The command name (field 2) may hold spaces and parentheses: count from its end.
    try:
        return int(stat[stat.rindex(b")") + 2:].split()[19])
    except (ValueError, IndexError):
        return None


def _signal_group(pgid, sig):
    """Send ``sig`` to the group; False if no process is left in it."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


class ProcessGroup:
    """A process group named by its id and its leader's start time.

    The id is the leader's pid. While any member lives the kernel hands that
    number to no new process, but once the group is empty it can come back as
    someone else's group; the leader's start time tells the two apart.

    Args:
        pgid (int): The group id.
        leader_start (int): :func:`process_start_time` of the leader, or None
            to trust the id alone (no ``/proc``).
    """

    def __init__(self, pgid, leader_start=None):
        self.pgid = pgid
        self.leader_start = leader_start

    @classmethod
    def of(cls, leader_pid):
        """The group a process just started with ``start_new_session=True`` leads.

        Call it before the leader is reaped, so its pid cannot have been reused.
        """
        return cls(leader_pid, process_start_time(leader_pid))

    def alive(self):
        """Whether any process of this group (not of a later one with the same id) exists."""
        if self.leader_start is not None:
            start = process_start_time(self.pgid)
            if start is not None and start != self.leader_start:
                return False  # the leader's pid is another process's now: our group is empty
        try:
            return _signal_group(self.pgid, 0)
        except PermissionError:
            return False  # only another user's processes carry this id now

    def stop(self, grace=STOP_GRACE_S, reap=None):
        """Stop every process in the group: SIGTERM, up to ``grace`` seconds to exit, then SIGKILL.

        Args:
            grace (float): Seconds to wait after SIGTERM.
            reap (callable): Called while waiting when the leader is the caller's child
                (``Popen.poll``): an unreaped zombie still counts as a member.

        Returns:
            bool: False if SIGKILL was needed, True otherwise (also when nothing was running).
        """
        if not self.alive():
            return True
        _signal_group(self.pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if reap:
                reap()
            if not _signal_group(self.pgid, 0):
                return True
            time.sleep(0.1)
        _signal_group(self.pgid, signal.SIGKILL)
        return False


class Watchdog:
    """The parent's handle on the watchdog process that guards one process group.

    Create it with :meth:`start`; call :meth:`stand_down` after stopping the group.

    Args:
        process (subprocess.Popen): The watchdog process.
        pipe (int): The write end of its stdin pipe.
    """

    def __init__(self, process, pipe):
        self.process = process
        self._pipe = pipe

    @classmethod
    def start(cls, group, log_path=None, remove_dir=None, grace=STOP_GRACE_S):
        """Start a watchdog that stops ``group`` if this process dies first.

        Args:
            group (ProcessGroup): The group to guard.
            log_path (str): File to append a note to when it acts (the endpoint's mms.log).
            remove_dir (str): Directory to remove once the group is stopped (not the logs).
            grace (float): Seconds from SIGTERM to SIGKILL.

        Returns:
            Watchdog: Its handle.
        """
        cmd = [sys.executable, "-I", os.path.abspath(__file__), "--parent", str(os.getpid()),
               "--pgid", str(group.pgid), "--grace", str(grace)]
        if group.leader_start is not None:
            cmd += ["--leader-start", str(group.leader_start)]
        if log_path:
            cmd += ["--log", os.path.abspath(log_path)]
        if remove_dir:
            cmd += ["--remove", os.path.abspath(remove_dir)]
        read_end, write_end = os.pipe()  # both close-on-exec: no other child inherits them
        try:
            process = subprocess.Popen(cmd, stdin=read_end, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       cwd="/", close_fds=True, start_new_session=True)
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        return cls(process, write_end)

    def stand_down(self, timeout=5.0):
        """Tell the watchdog the group was stopped on purpose and wait for it to exit. Idempotent.

        Args:
            timeout (float): Seconds to wait before killing it.
        """
        if self._pipe is not None:
            try:
                os.write(self._pipe, STAND_DOWN)
            except OSError:
                pass  # it has exited already (the group ended on its own)
            os.close(self._pipe)
            self._pipe = None
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def watch(parent, group, poll=POLL_S, pipe=0):
    """Block until the parent dies, stands the watchdog down, or the group ends.

    Args:
        parent (int): The pid of the process that started the watchdog.
        group (ProcessGroup): The guarded group.
        poll (float): Seconds between checks of the parent pid and the group.
        pipe (int): The read end of the parent's pipe.

    Returns:
        str: :data:`PARENT_GONE`, :data:`STOOD_DOWN` or :data:`GROUP_GONE`.
    """
    while True:
        ready, _, _ = select.select([pipe], [], [], poll)
        if ready:
            return STOOD_DOWN if os.read(pipe, 1) else PARENT_GONE
        if os.getppid() != parent:
            return PARENT_GONE
        if not group.alive():
            return GROUP_GONE


def _note(log_path, message):
    if not log_path:
        return
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
    try:
        with open(log_path, "a") as f:
            f.write("%s [smgluon watchdog] %s\n" % (stamp, message))
    except OSError:
        pass  # the endpoint directory is gone; nothing to tell


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="smgluon_local.watchdog",
                                description="Stop a process group when the process that started this one dies.")
    p.add_argument("--parent", type=int, required=True, help="pid of the process to outlive (required)")
    p.add_argument("--pgid", type=int, required=True, help="process group to stop then (required)")
    p.add_argument("--leader-start", type=int, default=None,
                   help="start time of the group's leader in /proc ticks, to tell a reused id apart (default: none)")
    p.add_argument("--grace", type=float, default=STOP_GRACE_S,
                   help="seconds from SIGTERM to SIGKILL (default: %g)" % STOP_GRACE_S)
    p.add_argument("--log", default=None, help="file to append a note to when acting (default: none)")
    p.add_argument("--remove", default=None, help="directory to remove after stopping the group (default: none)")
    return p.parse_args(argv)


def main(argv=None):
    """Watch, on stdin, the parent's pipe; stop the group if the parent dies.

    Returns:
        int: 0, or 1 if something failed (the traceback goes to ``--log``).
    """
    args = parse_args(argv)
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    group = ProcessGroup(args.pgid, args.leader_start)
    try:
        outcome = watch(args.parent, group)
        if outcome != PARENT_GONE:
            return 0
        if group.alive():
            _note(args.log, "the process that started this endpoint (pid %d) is gone; stopping the model server "
                            "(process group %d)" % (args.parent, args.pgid))
            on_term = group.stop(args.grace)
            _note(args.log, "model server stopped%s" % ("" if on_term else " (SIGKILL after %g s)" % args.grace))
        if args.remove:
            shutil.rmtree(args.remove, ignore_errors=True)
    except Exception:
        _note(args.log, "failed:\n" + traceback.format_exc())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
