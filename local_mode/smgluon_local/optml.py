"""A private ``/opt/ml`` for each host process of a local training job.

AWS's examples and many user scripts write to hard-coded paths
(``/opt/ml/checkpoints``, ``/opt/ml/model``) instead of the SM_* variables. In
the container those are the job's own. Locally, every host of every job gets
its own view: the host's first process (see :mod:`smgluon_local.toolkit`)
moves into a new mount namespace before it starts anything, and there
``/opt/ml`` is a bind mount of the host's tree (``<job dir>/<host>``), which is
also where the SM_* variables point. Everything the host starts (the script,
the parameter-server roles) inherits the namespace, and nothing outside it
sees the mount: concurrent jobs never see each other's files, and the machine
is left as it was.

A mount namespace needs CAP_SYS_ADMIN: root has it; anyone else gets it inside
a new user namespace (Linux's unprivileged user namespaces), in which this
process keeps its own uid and gid. ``/opt/ml`` usually does not exist and
creating it would change the machine, so ``/opt`` itself is replaced inside
the namespace by a small tmpfs into which each original entry of ``/opt`` is
bound back (through a descriptor of the original ``/opt`` opened before),
plus ``ml``. Where the OS refuses, :func:`available` says why and
the job keeps the SM_* paths only (the runner says so once in the job log).
"""

import ctypes
import ctypes.util
import errno
import os
import subprocess
import sys
import tempfile
import threading

__all__ = ["OPT_ML", "OPT_ML_ENV", "available", "enter", "host_environment", "probe", "unavailable_note"]

OPT_ML = "/opt/ml"
OPT_ML_ENV = "SMGLUON_OPT_ML"  # the host tree to show as /opt/ml

_CLONE_NEWNS, _CLONE_NEWUSER = 0x00020000, 0x10000000
_MS_BIND, _MS_REC, _MS_PRIVATE = 4096, 16384, 1 << 18
_MNT_DETACH = 2

_probe_lock = threading.Lock()
_probe_result = []  # [reason or None], once probed


class _OSFailure(Exception):
    pass


def _libc():
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    libc.unshare.argtypes = [ctypes.c_int]
    return libc


def _check(result, what):
    if result != 0:
        code = ctypes.get_errno()
        raise _OSFailure("%s: %s" % (what, os.strerror(code) or errno.errorcode.get(code, code)))


def _encode(text):
    return text.encode() if text is not None else None


def _mount(libc, source, target, fstype, flags, data=None):
    _check(
        libc.mount(_encode(source), _encode(target), _encode(fstype), flags, _encode(data)),
        "mount %s on %s" % (source or fstype, target),
    )


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _unshare(libc):
    """Moves this process into a new mount namespace (in a new user namespace when not root)."""
    uid, gid = os.geteuid(), os.getegid()
    if uid == 0 and libc.unshare(_CLONE_NEWNS) == 0:
        return
    # Not root, or root without CAP_SYS_ADMIN (a container): an unprivileged user namespace, in
    # which this process keeps its uid and gid (so files it creates stay the user's).
    _check(libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNS), "unshare (a private mount namespace)")
    try:
        _write("/proc/self/setgroups", "deny")
    except FileNotFoundError:  # kernels before 3.19
        pass
    _write("/proc/self/uid_map", "%d %d 1" % (uid, uid))
    _write("/proc/self/gid_map", "%d %d 1" % (gid, gid))


def _rebuild_opt(libc, host_dir):
    """Replaces /opt (in this namespace) by a tmpfs holding its original entries and ``ml``."""
    entries = sorted(os.listdir("/opt"))
    original = os.open("/opt", os.O_RDONLY | os.O_DIRECTORY)
    try:
        _mount(libc, "tmpfs", "/opt", "tmpfs", 0, "mode=0755")
        try:
            for name in entries:
                # The kernel follows /proc/self/fd/N to the original /opt, under the tmpfs.
                source, target = "/proc/self/fd/%d/%s" % (original, name), os.path.join("/opt", name)
                if os.path.islink(source):
                    os.symlink(os.readlink(source), target)
                    continue
                if os.path.isdir(source):
                    os.mkdir(target)
                else:
                    open(target, "w").close()
                _mount(libc, source, target, None, _MS_BIND | _MS_REC)
            os.mkdir(OPT_ML)
            _mount(libc, host_dir, OPT_ML, None, _MS_BIND | _MS_REC)
        except BaseException:
            libc.umount2(b"/opt", _MNT_DETACH)  # back to the original /opt
            raise
    finally:
        os.close(original)


def enter(host_dir):
    """Gives this process and every process it starts later a private ``/opt/ml`` showing ``host_dir``.

    Call it before the process starts any thread (a new user namespace needs a
    single-threaded process). On failure, the process may already be in a new
    mount namespace, but it sees the same files as before.

    Args:
        host_dir (str): The host's tree (``<job dir>/<host>``).

    Returns:
        str or None: None when ``/opt/ml`` is in place, else why not.
    """
    try:
        libc = _libc()
        _unshare(libc)
        # Nothing mounted from here on may propagate back to the machine's namespace.
        _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE)
        if os.path.isdir(OPT_ML):
            _mount(libc, host_dir, OPT_ML, None, _MS_BIND | _MS_REC)
        elif os.path.isdir("/opt"):
            _rebuild_opt(libc, host_dir)
        else:
            return "/opt does not exist"
        return None
    except (_OSFailure, OSError) as e:
        return str(e)


def probe():
    """Command-line check (run in a throw-away process): exits 0 if :func:`enter` works here, else prints why."""
    with tempfile.TemporaryDirectory(prefix="smgluon-optml-probe-") as host:
        _write(os.path.join(host, "marker"), "ok")
        reason = enter(host)
        if reason is None and not os.path.isfile(os.path.join(OPT_ML, "marker")):
            reason = "%s does not show the bound directory" % OPT_ML
        if reason:
            sys.stdout.write(reason)
            sys.exit(1)


def available():
    """Why this machine cannot give jobs a private ``/opt/ml``, or None if it can (probed once per process).

    Returns:
        str or None
    """
    with _probe_lock:
        if not _probe_result:
            if not sys.platform.startswith("linux"):
                _probe_result.append("mount namespaces are a Linux feature (this is %s)" % sys.platform)
            else:
                package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
                env = dict(
                    os.environ,
                    PYTHONPATH=os.pathsep.join(
                        [package_parent] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
                    ),
                )
                try:
                    out = subprocess.run(
                        [sys.executable, "-c", "from smgluon_local.optml import probe; probe()"],
                        env=env,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        timeout=60,
                    )
                    ok = out.returncode == 0
                    reason = out.stdout.decode("utf-8", "replace").strip()[-500:] or "exit %d" % out.returncode
                except (OSError, subprocess.SubprocessError) as e:
                    ok, reason = False, str(e)
                _probe_result.append(None if ok else reason)
        return _probe_result[0]


def host_environment(host_dir):
    """The variables that ask a host's first process for a private ``/opt/ml`` (none where unavailable).

    Args:
        host_dir (str): The host's tree.

    Returns:
        dict
    """
    return {} if available() is not None else {OPT_ML_ENV: host_dir}


def unavailable_note():
    """The job log's line when jobs cannot have a private ``/opt/ml`` here, else None."""
    reason = available()
    if reason is None:
        return None
    return (
        "Note: this machine does not let a job have its own %s (%s); the job's files are where the SM_* "
        "variables point, and a script that writes to %s directly will fail. Run as root or allow "
        "unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, "
        "user.max_user_namespaces > 0) to have it." % (OPT_ML, reason, OPT_ML)
    )
