"""SageMaker's checkpoint sync for a local training job (``CheckpointConfig``).

On SageMaker, a job with ``checkpoint_s3_uri`` gets its checkpoint directory
(``checkpoint_local_path``, default ``/opt/ml/checkpoints``) filled from the
URI on every instance before the script starts; while the job runs, files
written there are uploaded to the URI, and once more when the job ends,
whatever its status. Every instance of the job uploads to the same URI, so
files of the same name from several hosts overwrite each other (the last copy
wins), and an upload only adds or replaces files: deleting one locally leaves
it in S3.

:class:`CheckpointSync` does the same between each host's tree
(``<job dir>/<host>/checkpoints``, seen by the script as ``/opt/ml/checkpoints``)
and a ``file://`` or local-bucket ``s3://`` location. A file is copied only
when no process of the job holds it open for writing and it did not change
while it was copied, and it reaches the location through a temporary file and
one rename: the location never holds a half-written file. Files open for
writing when a reclaim comes (:meth:`CheckpointSync.cut_open_files`) are not
copied afterwards either, since their writers die. (A script that a reclaim
kills while it rewrites a checkpoint under its final name still loses that
file on its host, here as on SageMaker; write to a temporary name and rename.)
"""

import errno
import logging
import os
import secrets
import shutil
import threading

from smgluon_local import cluster as cluster_mod
from smgluon_local.storage import uri_to_local_path

logger = logging.getLogger(__name__)

__all__ = ["CheckpointSync", "DEFAULT_LOCAL_PATH", "host_subdir", "resolve_location", "files_open_for_writing"]

DEFAULT_LOCAL_PATH = "/opt/ml/checkpoints"
OPT_ML = "/opt/ml"
SYNC_INTERVAL_S = 0.5  # how often the hosts' checkpoint directories are looked at while the job runs
_TMP_PREFIX = ".smgluon-sync-"
_O_ACCMODE = 0o3


def host_subdir(local_path):
    """The checkpoint directory's path inside a host's tree, from ``checkpoint_local_path``.

    Args:
        local_path (str or None): ``CheckpointConfig.LocalPath`` (default ``/opt/ml/checkpoints``).

    Returns:
        str: A relative path, e.g. ``checkpoints``.

    Raises:
        ValueError: For a path outside ``/opt/ml`` (it would be shared by every host and job on this
            machine) or one that holds the job's configuration or code.
    """
    path = os.path.normpath(local_path or DEFAULT_LOCAL_PATH)
    rel = os.path.relpath(path, OPT_ML) if os.path.isabs(path) else ".."
    top = rel.split(os.sep)[0]
    if rel.startswith("..") or rel == "." or top in ("input", "code"):
        raise ValueError(
            "checkpoint_local_path %r: a local job keeps each host's checkpoints in its own /opt/ml; "
            "use a directory under /opt/ml other than input/ and code/ (default %s)" % (local_path, DEFAULT_LOCAL_PATH)
        )
    return rel


def _overlaps(a, b):
    a, b = os.path.realpath(a), os.path.realpath(b)
    return a == b or a.startswith(b.rstrip(os.sep) + os.sep) or b.startswith(a.rstrip(os.sep) + os.sep)


def resolve_location(uri, store, data_paths=()):
    """The local directory behind ``checkpoint_s3_uri``, created if needed and checked.

    Args:
        uri (str): ``file://DIR`` or ``s3://BUCKET/PREFIX`` in a local bucket.
        store (LocalS3): The local buckets.
        data_paths (iterable of str): Local paths of the job's channels, code and output: the location
            may neither hold them nor lie inside them.

    Returns:
        str: The directory.

    Raises:
        ValueError: For a real S3 bucket, an unwritable location or one that holds the job's data.
    """
    path = uri_to_local_path(uri, store)
    if path is None:
        raise ValueError(
            "checkpoint_s3_uri %s: a local job keeps its checkpoints on this machine; use file://DIR "
            "or s3://BUCKET/PREFIX in the session's local bucket" % uri
        )
    for other in data_paths:
        if other and _overlaps(path, other):
            raise ValueError(
                "checkpoint_s3_uri %s: %s overlaps the job's data, code or output (%s); the sync would copy "
                "checkpoints into it and its files into every host's checkpoint directory: use a "
                "directory of its own" % (uri, path, other)
            )
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise ValueError(
            "checkpoint_s3_uri %s: cannot create %s (%s); use a directory you can write" % (uri, path, e.strerror or e)
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError("checkpoint_s3_uri %s: %s is not writable; use a directory you can write" % (uri, path))
    return path


def files_open_for_writing(processes):
    """``(st_dev, st_ino)`` of every file that one of ``processes`` holds open for writing.

    Read from ``/proc/<pid>/fdinfo`` (the open flags) and ``/proc/<pid>/fd`` (the file itself,
    whatever mount namespace the process sees it through).

    Args:
        processes (iterable of psutil.Process): The job's processes.

    Returns:
        set of tuple
    """
    found = set()
    for proc in processes:
        fd_dir = "/proc/%d/fd" % proc.pid
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                with open("/proc/%d/fdinfo/%s" % (proc.pid, fd)) as f:
                    flags = next((line.split()[1] for line in f if line.startswith("flags:")), "0")
                if int(flags, 8) & _O_ACCMODE == os.O_RDONLY:
                    continue
                st = os.stat(os.path.join(fd_dir, fd))
            except (OSError, ValueError, IndexError):
                continue
            found.add((st.st_dev, st.st_ino))
    return found


def _walk_files(directory):
    """Relative paths of the regular files under ``directory`` (symbolic links are not followed)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if not name.startswith(_TMP_PREFIX) and os.path.isfile(path) and not os.path.islink(path):
                found.append(os.path.relpath(path, directory))
    return found


def _signature(st):
    return st.st_size, st.st_mtime_ns, st.st_ino


def _copy_atomically(src, dest):
    """Copies ``src`` to ``dest`` through a temporary file and one rename.

    Returns:
        os.stat_result or None: ``src``'s stat, or None (nothing copied) when it changed during the copy.
    """
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    tmp = os.path.join(os.path.dirname(dest), "%s%s-%s" % (_TMP_PREFIX, secrets.token_hex(4), os.path.basename(dest)))
    before = os.stat(src)
    try:
        shutil.copy2(src, tmp)
        if _signature(os.stat(src)) != _signature(before):
            os.unlink(tmp)  # rewritten while copied: the next pass copies the new version
            return None
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return before


class CheckpointSync:
    """Keeps a job's checkpoint location and its hosts' checkpoint directories in step.

    Args:
        location (str or None): The directory behind ``checkpoint_s3_uri`` (None: nothing is
            copied, but completed checkpoint files are still counted, for the interruption drill).
        host_dirs (list of str): The hosts' trees.
        subdir (str): The checkpoint directory inside a tree (see :func:`host_subdir`).
        job_dir (str): The job directory (marks the job's processes).

    Attributes:
        written (int): Checkpoint files completed (new or changed, and no longer open for
            writing) since the last :meth:`fill`.
        copied (int): Files copied to the location since the last :meth:`fill`.
    """

    def __init__(self, location, host_dirs, subdir, job_dir):
        self.location = location
        self.host_dirs = list(host_dirs)
        self.subdir = subdir
        self.job_dir = job_dir
        self.written = 0
        self.copied = 0
        self._seen = {}  # (host dir, relative path) -> signature of the version already handled
        self._cut = set()  # (st_dev, st_ino) of files a reclaim caught being written
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def host_checkpoint_dir(self, host_dir):
        """A host's checkpoint directory (what the script sees as ``checkpoint_local_path``)."""
        return os.path.join(host_dir, self.subdir)

    def fill(self):
        """Empties every host's checkpoint directory and fills it from the location, as a new instance's.

        Returns:
            int: Files copied into each host's directory.
        """
        with self._lock:
            self._seen.clear()
            self._cut.clear()
            self.written = self.copied = 0
            files = _walk_files(self.location) if self.location else []
            for host_dir in self.host_dirs:
                target = self.host_checkpoint_dir(host_dir)
                shutil.rmtree(target, ignore_errors=True)
                os.makedirs(target, exist_ok=True)
                for rel in files:
                    dest = os.path.join(target, rel)
                    os.makedirs(os.path.dirname(dest), exist_ok=True)
                    shutil.copy2(os.path.join(self.location, rel), dest)
                    self._seen[(host_dir, rel)] = _signature(os.stat(dest))
            return len(files)

    def cut_open_files(self):
        """Marks the files the job's processes hold open for writing now (a reclaim is coming) as never to copy.

        Their writers are about to be killed, so they may stay half-written; the previous
        complete versions in the location stand.
        """
        open_now = files_open_for_writing(cluster_mod.job_processes(self.job_dir))
        with self._lock:
            self._cut |= open_now

    def start(self):
        """Starts copying new and changed files while the job runs."""
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, name="checkpoint-sync-%s" % os.path.basename(self.job_dir), daemon=True
        )
        self._thread.start()

    def stop(self):
        """Stops the background copying and copies what the hosts left (call once their processes ended).

        Returns:
            int: Files copied to the location since the last :meth:`fill`.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.sync(final=True)
        return self.copied

    def _loop(self):
        while not self._stop.wait(SYNC_INTERVAL_S):
            try:
                self.sync()
            except Exception:  # a full disk must not end the job; the final sync reports it
                logger.exception("checkpoint sync of %s failed", self.job_dir)

    def sync(self, final=False):
        """Copies every completed new or changed checkpoint file to the location.

        Args:
            final (bool): The job's processes have ended: no file is being written.

        Returns:
            int: Files completed in this pass.
        """
        with self._lock:
            candidates = []
            for host_dir in self.host_dirs:
                directory = self.host_checkpoint_dir(host_dir)
                if not os.path.isdir(directory):
                    continue
                for rel in _walk_files(directory):
                    try:
                        st = os.stat(os.path.join(directory, rel))
                    except FileNotFoundError:
                        continue
                    if self._seen.get((host_dir, rel)) != _signature(st):
                        candidates.append((host_dir, rel))
            if not candidates:
                return 0
            busy = set() if final else files_open_for_writing(cluster_mod.job_processes(self.job_dir))
            done = 0
            for host_dir, rel in candidates:
                src = os.path.join(self.host_checkpoint_dir(host_dir), rel)
                try:
                    st = os.stat(src)
                    if (st.st_dev, st.st_ino) in busy or (st.st_dev, st.st_ino) in self._cut:
                        continue
                    if self.location is not None:
                        st = _copy_atomically(src, os.path.join(self.location, rel))
                        if st is None:
                            continue
                        self.copied += 1
                except FileNotFoundError:
                    continue  # removed (or renamed over) meanwhile
                except OSError as e:
                    if e.errno in (errno.ENOSPC, errno.EDQUOT) or final:
                        raise
                    continue
                self._seen[(host_dir, rel)] = _signature(st)
                self.written += 1
                done += 1
            return done
