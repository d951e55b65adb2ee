"""A job's ``requirements.txt``, installed where only that job's processes see it.

The SageMaker training toolkit runs ``python -m pip install -r requirements.txt``
with the interpreter that runs the job. In the container that is the image's
own Python; locally it is the user's, so the toolkit would install (or
upgrade, or downgrade) packages in the user's environment: a script listing
``numpy>=1.24`` would break the user's mxnet. Here the toolkit's step is
replaced (see :mod:`smgluon_local.toolkit`) by an install into an *overlay*
environment:

* a venv made with ``--without-pip`` whose ``site-packages`` holds a ``.pth``
  that adds the job interpreter's own site directories after it. pip run with
  the overlay's interpreter (the user's pip, found through that ``.pth``) sees
  what the user has installed, so requirements already met are not installed
  again, exactly as in the container; whatever it installs goes into the
  overlay, and a package it would upgrade is left in place in the user's
  environment (pip uninstalls only inside the environment it runs in);
* the job's processes get the overlay's ``site-packages`` on ``PYTHONPATH``
  (after the user's own ``PYTHONPATH``, before the interpreter's
  site-packages, where the container's pip would have put them) and its
  ``bin`` on ``PATH``;
* overlays are cached under the session's root directory by a hash of the
  file and the interpreter, so a second job with the same file does not
  reinstall. One job builds while the others wait on a lock; an overlay is
  used only once its completion marker exists, which is written last (the
  console scripts pip writes carry the overlay's absolute path, so it is built
  in place rather than renamed), and a half-built one is removed and built
  again.

pip runs with the machine's own configuration (pip.conf, ``PIP_*``), so an
offline index or a mirror works as it does for the user.
"""

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import site
import subprocess
import sys

__all__ = ["CACHE_ENV", "REQUIREMENTS_FILE", "cache_key", "install", "job_paths", "run_logged", "site_packages"]

CACHE_ENV = "SMGLUON_REQUIREMENTS_CACHE"  # the cache directory, set by the runner for the toolkit
REQUIREMENTS_FILE = "requirements.txt"
_DONE_MARKER = ".smgluon-complete"
_PTH_NAME = "_smgluon_parent_site.pth"


def _parent_site_dirs():
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE and os.path.isdir(site.getusersitepackages()):
        dirs.append(site.getusersitepackages())
    return [d for d in dirs if os.path.isdir(d)]


_LOCAL_REFERENCE = re.compile(r"^\s*(-r|-c|-e|--requirement|--constraint|--editable|\.|/|file:)")
_NOT_SOURCE = ("__pycache__", "build", ".git")


def _tree_files(code_dir):
    for dirpath, dirnames, filenames in os.walk(code_dir):
        dirnames[:] = sorted(d for d in dirnames if d not in _NOT_SOURCE and not d.endswith(".egg-info"))
        for name in sorted(filenames):
            if not name.endswith(".pyc"):
                yield os.path.join(dirpath, name)


def cache_key(code_dir, package=False, python=None):
    """The overlay's name: a hash of what pip installs and of the interpreter and environment it extends.

    That is ``requirements.txt`` alone, unless it refers to other local files (``-r``, ``-e``,
    a path) or the code directory itself is installed as a package: then every file under
    ``code_dir``.
    """
    requirements_path = os.path.join(code_dir, REQUIREMENTS_FILE)
    text = b""
    if os.path.isfile(requirements_path):
        with open(requirements_path, "rb") as f:
            text = f.read()
    whole_tree = package or any(_LOCAL_REFERENCE.match(line) for line in text.decode("utf-8", "replace").splitlines())
    digest = hashlib.sha256(b"package\0" if package else b"requirements\0")
    paths = list(_tree_files(code_dir)) if whole_tree else [requirements_path]
    for path in paths:
        digest.update(os.path.relpath(path, code_dir).encode() + b"\0")
        with open(path, "rb") as f:
            digest.update(hashlib.sha256(f.read()).digest())
    python = python or sys.executable
    for part in [os.path.realpath(python), sys.version, sys.prefix] + _parent_site_dirs():
        digest.update(b"\0" + part.encode())
    return digest.hexdigest()[:32]


def site_packages(env_dir):
    """The overlay's ``site-packages`` directory."""
    return os.path.join(env_dir, "lib", "python%d.%d" % sys.version_info[:2], "site-packages")


@contextlib.contextmanager
def _locked(path):
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _create_overlay(env_dir):
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", env_dir],
        check=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    lines = ["import site; site.addsitedir(%r)" % d for d in _parent_site_dirs()]
    with open(os.path.join(site_packages(env_dir), _PTH_NAME), "w") as f:
        f.write("\n".join(lines) + "\n")


def run_logged(argv, cwd, out=None, tail_lines=20):
    """Runs a command, copying its output to ``out`` line by line.

    Returns:
        None on success, else ``(exit status, message)``: the lines that start with
        ``ERROR`` (pip's own errors), or the last ``tail_lines`` lines when none does.
    """
    out = out or sys.stdout
    lines = []
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    for raw in iter(proc.stdout.readline, b""):
        line = raw.decode("utf-8", "replace")
        out.write(line)
        out.flush()
        lines.append(line.rstrip("\n"))
        del lines[:-200]
    proc.stdout.close()
    code = proc.wait()
    if code == 0:
        return None
    errors = [line for line in lines if line.startswith("ERROR")]
    return code, "\n".join(errors or lines[-tail_lines:])


def install(code_dir, cache_root, run_pip, log=print, package=False):
    """Installs ``code_dir/requirements.txt`` (or, with ``package``, ``code_dir`` itself) into a cached overlay.

    Args:
        code_dir (str): The job's code directory (pip runs there, so relative paths in the
            file work as in the container).
        cache_root (str): Where overlays are kept (created if missing).
        run_pip (callable): Called as ``run_pip(argv, cwd)`` to run pip; raises on failure
            (the toolkit's raises the toolkit's own error with pip's message).
        log (callable): Where progress lines go (the job's log).
        package (bool): The code directory is a Python package (``setup.py``): the container
            runs ``pip install . -r requirements.txt`` (the latter if present).

    Returns:
        str: The overlay directory (see :func:`job_paths`).
    """
    os.makedirs(cache_root, exist_ok=True)
    env_dir = os.path.join(cache_root, cache_key(code_dir, package))
    what = "the source dir (a package)" if package else REQUIREMENTS_FILE
    argv = [os.path.join(env_dir, "bin", "python"), "-m", "pip", "install"]
    if package:
        argv.append(".")
    if os.path.isfile(os.path.join(code_dir, REQUIREMENTS_FILE)):
        argv += ["-r", REQUIREMENTS_FILE]
    with _locked(env_dir + ".lock"):
        if os.path.isfile(os.path.join(env_dir, _DONE_MARKER)):
            log("%s: already installed in %s (seen by this job only)" % (what, env_dir))
            return env_dir
        if os.path.exists(env_dir):  # a build that was interrupted
            shutil.rmtree(env_dir)
        log(
            "%s: installing into %s (seen by this job only, never the Python environment that started it)"
            % (what, env_dir)
        )
        try:
            _create_overlay(env_dir)
            run_pip(argv, code_dir)
        except BaseException:
            shutil.rmtree(env_dir, ignore_errors=True)
            raise
        with open(os.path.join(env_dir, _DONE_MARKER), "w"):
            pass
    return env_dir


def job_paths(env_dir, environ):
    """The ``PYTHONPATH`` and ``PATH`` values that put an overlay in a job's processes.

    Args:
        env_dir (str): The overlay (from :func:`install`).
        environ (dict): The environment to extend.

    Returns:
        dict: ``{"PYTHONPATH": ..., "PATH": ...}``.
    """
    python_path = [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    python_path.append(site_packages(env_dir))
    path = [p for p in environ.get("PATH", os.defpath).split(os.pathsep) if p]
    # After the job's own `python` launcher (first on PATH), which must stay the one that runs.
    path.insert(1 if path else 0, os.path.join(env_dir, "bin"))
    return {"PYTHONPATH": os.pathsep.join(python_path), "PATH": os.pathsep.join(path)}
