"""SageMaker host names (``algo-1`` … ``algo-N``) that resolve to 127.0.0.1 inside a local job only.

On SageMaker every host of a training cluster resolves the others' names. Two
parts of the MXNet containers rely on it: sagemaker-training waits until every
name in resourceconfig.json resolves, and sagemaker-mxnet-training looks the
scheduler host up (``socket.gethostbyname``) to build ``DMLC_PS_ROOT_URI``, the
address every parameter-server process (the C++ ps-lite side) connects to.

Locally the names must resolve without editing /etc/hosts (root) and without
changing the machine for anything else. :func:`job_environment` returns the
variables that do that for a job's processes only: a directory holding a
``sitecustomize.py`` goes first on ``PYTHONPATH``, so every Python process of the
job (the toolkit, the user's script, the parameter-server roles) patches
``socket`` at start-up to answer the job's host names with 127.0.0.1. The C++
side never sees a host name: the toolkit hands it the address it resolved.
``HOSTALIASES`` is no help here: glibc applies it only to DNS queries, after
/etc/hosts, and then still needs a resolver for the alias it maps to.

An existing ``sitecustomize`` further down ``sys.path`` (a user's, on the
``PYTHONPATH`` given in ``environment=``, or the interpreter's own) still runs:
the one written here loads it after patching and hands it its place in
``sys.modules``.
"""

import contextlib
import json
import os
import socket

__all__ = ["HOSTS_ENV", "LOOPBACK", "install", "is_installed", "job_environment", "write_site_dir"]

HOSTS_ENV = "SMGLUON_LOCAL_HOSTS"
LOOPBACK = "127.0.0.1"
SITE_DIR_NAME = "site"

_SITECUSTOMIZE = '''\
"""Written by smgluon_local.hostnames for one local training job: the job's host names resolve to 127.0.0.1."""
import os as _os
import sys as _sys

if _os.environ.get(%(env)r):
    try:
        from smgluon_local.hostnames import install as _install

        _install()
    except Exception as _e:  # never stop the interpreter from starting
        _sys.stderr.write("smgluon_local: host names not patched: %%s\\n" %% (_e,))


def _chain():
    # Python imports one sitecustomize, the first on sys.path: this one. Run the one it shadows (the
    # user's, on the PYTHONPATH given in environment=, or the interpreter's own) and let it take this
    # module's place, so `import sitecustomize` later finds it as it would without this file.
    import importlib.machinery as _machinery
    import importlib.util as _util

    here = _os.path.dirname(_os.path.abspath(__file__))
    rest = [p for p in _sys.path if _os.path.abspath(p or ".") != here]
    spec = _machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or not spec.origin or _os.path.dirname(_os.path.abspath(spec.origin)) == here:
        return
    module = _util.module_from_spec(spec)
    _sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


_chain()
'''


def _names():
    raw = os.environ.get(HOSTS_ENV)
    if not raw:
        return frozenset()
    return frozenset(name.lower() for name in json.loads(raw))


def is_installed():
    """bool: whether this process's ``socket`` functions answer the job's host names."""
    return getattr(socket.gethostbyname, "_smgluon_hosts", None) is not None


def install(names=None):
    """Patches ``socket`` so that ``names`` resolve to 127.0.0.1 in this process.

    ``gethostbyname``, ``gethostbyname_ex`` and ``getaddrinfo`` answer the names
    themselves (case-insensitively, as DNS does); every other name goes to the
    real resolver. Installing twice is harmless.

    Args:
        names (iterable of str): host names; default: the JSON list in
            ``$SMGLUON_LOCAL_HOSTS``.
    """
    names = frozenset(n.lower() for n in names) if names is not None else _names()
    if not names or is_installed():
        return
    real_byname, real_byname_ex, real_getaddrinfo = socket.gethostbyname, socket.gethostbyname_ex, socket.getaddrinfo

    def _ours(host):
        return isinstance(host, str) and host.lower().rstrip(".") in names

    def gethostbyname(host):
        return LOOPBACK if _ours(host) else real_byname(host)

    def gethostbyname_ex(host):
        return (host, [], [LOOPBACK]) if _ours(host) else real_byname_ex(host)

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, bytes):
            host = host.decode("idna")
        return real_getaddrinfo(LOOPBACK if _ours(host) else host, *args, **kwargs)

    gethostbyname._smgluon_hosts = names
    socket.gethostbyname, socket.gethostbyname_ex, socket.getaddrinfo = gethostbyname, gethostbyname_ex, getaddrinfo


def write_site_dir(job_dir):
    """Writes the job's ``sitecustomize.py`` under ``job_dir``; returns the directory for ``PYTHONPATH``."""
    from smgluon import files

    site_dir = os.path.join(job_dir, SITE_DIR_NAME)
    path = os.path.join(site_dir, "sitecustomize.py")
    text = _SITECUSTOMIZE % {"env": HOSTS_ENV}
    # Each host's environment is made after the previous host started: replacing the file whole (never
    # truncating it in place) keeps a starting interpreter from reading it empty.
    with contextlib.suppress(OSError), open(path, encoding="utf-8") as f:
        if f.read() == text:
            return site_dir
    files.write_text(path, text)
    return site_dir


def job_environment(job_dir, hosts, base_env):
    """The variables that make ``hosts`` resolve to 127.0.0.1 in a job's processes.

    Args:
        job_dir (str): the job's directory (gets ``site/``).
        hosts (list of str): the job's host names.
        base_env (dict): the environment the job starts from (for ``PYTHONPATH``).

    Returns:
        dict: ``SMGLUON_LOCAL_HOSTS`` and ``PYTHONPATH`` to set.
    """
    site_dir = write_site_dir(job_dir)
    # The sitecustomize imports smgluon_local: make sure the job's interpreter finds it.
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    python_path = [site_dir, package_parent] + [p for p in base_env.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {HOSTS_ENV: json.dumps(list(hosts)), "PYTHONPATH": os.pathsep.join(python_path)}
