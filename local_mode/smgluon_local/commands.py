"""What the ``smgluon`` commands share: locating workloads, channels, the session and estimator, Ctrl-C.

:mod:`smgluon_local.cli` and the commands registered beside its own
(``tune``, ``quickstart``) import this module; it imports none of them, so
the commands form no import circle.
"""

import difflib
import importlib.util
import json
import os
import threading

__all__ = [
    "ROLE",
    "FRAMEWORK_VERSION",
    "PY_VERSION",
    "CliError",
    "repo_dir",
    "find_entry_point",
    "parse_hyperparameters",
    "channel_uri",
    "channel_inputs",
    "load_module",
    "load_workload",
    "make_session",
    "make_estimator",
    "add_common",
    "add_channel_options",
    "raise_if_interrupted",
    "interrupt",
    "clear_interrupted",
]

ROLE = "arn:aws:iam::111111111111:role/local"
FRAMEWORK_VERSION = "1.9.0"
PY_VERSION = "py38"
_PACKAGE_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class CliError(Exception):
    """A user-facing error: printed as ``smgluon: error: ...`` with exit status 1."""


def repo_dir(name, given=None):
    """``given``, else ``./<name>`` if it exists, else the one beside the installed package."""
    if given:
        if not os.path.isdir(given):
            raise CliError("%s: no such directory" % given)
        return os.path.abspath(given)
    for base in (os.getcwd(), _PACKAGE_REPO):
        path = os.path.join(base, name)
        if os.path.isdir(path):
            return path
    return None


def find_entry_point(workload, entry_points_dir):
    if entry_points_dir is None:
        raise CliError("no entry_points/ directory found; run from the repository root or pass --entry-points DIR")
    name = workload[:-3] if workload.endswith(".py") else workload
    path = os.path.join(entry_points_dir, name + ".py")
    if not os.path.isfile(path):
        known = sorted(f[:-3] for f in os.listdir(entry_points_dir) if f.endswith(".py") and not f.startswith("_"))
        close = difflib.get_close_matches(name, known, n=1)
        hint = " Did you mean %r?" % close[0] if close else ""
        raise CliError(
            "unknown workload %r.%s Workloads in %s: %s" % (name, hint, entry_points_dir, ", ".join(known) or "none")
        )
    return path


def parse_hyperparameters(pairs):
    """``["epochs=2", "optimizer=adam"]`` → ``{"epochs": 2, "optimizer": "adam"}``.

    Values that parse as JSON (numbers, true/false, lists) keep that type; the rest
    are strings.

    Raises:
        CliError: For an item without ``=`` or with an empty key.
    """
    hps = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CliError("--hp %r: expected KEY=VALUE, e.g. --hp epochs=2" % pair)
        try:
            hps[key.strip()] = json.loads(value)
        except ValueError:
            hps[key.strip()] = value
    return hps


def channel_uri(flag, path):
    if not os.path.isdir(path):
        raise CliError("%s %s: no such directory" % (flag, path))
    return "file://" + os.path.abspath(path)


def load_module(path):
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_workload(entry_point, hyperparameters):
    """Imports a workload's entry point and checks ``--hp`` names and values against its ``HYPERPARAMETERS``.

    A misspelt ``--hp`` then fails on the host, with a suggestion, before any job starts.

    Args:
        entry_point (str): the script's path.
        hyperparameters (dict): from :func:`parse_hyperparameters`.

    Returns:
        module: the entry point, imported.

    Raises:
        smgluon.hyperparameters.HyperparameterError: an unknown name or a bad value.
    """
    module = load_module(entry_point)
    if hasattr(module, "HYPERPARAMETERS"):
        module.HYPERPARAMETERS.parse_dict(hyperparameters)
    return module


def make_session(args, **kwargs):
    from smgluon_local.session import ProcessSession

    return ProcessSession(root_dir=args.root, **kwargs)


def channel_inputs(args):
    """The ``--train``/``--test``/``--training`` directories as file:// channels."""
    channels = {}
    for flag, name in (("--train", "train"), ("--test", "test"), ("--training", "training")):
        value = getattr(args, name)
        if value:
            channels[name] = channel_uri(flag, value)
    if not channels:
        raise CliError("no data: pass --train DIR (and --test DIR), or --training DIR")
    return channels


def make_estimator(entry_point, lib, hyperparameters, metric_definitions, output, session, instance_count=1):
    """The SDK's local MXNet estimator for a workload, with its artifacts under ``output``.

    Several instances train with the parameter server, as on SageMaker.
    """
    from sagemaker.mxnet import MXNet

    distribution = {"parameter_server": {"enabled": True}} if instance_count > 1 else None
    return MXNet(
        entry_point=os.path.basename(entry_point),
        source_dir=os.path.dirname(entry_point),
        dependencies=[lib] if lib else [],
        role=ROLE,
        instance_count=instance_count,
        instance_type="local",
        framework_version=FRAMEWORK_VERSION,
        py_version=PY_VERSION,
        hyperparameters=hyperparameters,
        metric_definitions=metric_definitions,
        output_path="file://" + output,
        sagemaker_session=session,
        distribution=distribution,
    )


def add_common(p):
    p.add_argument(
        "--root",
        help="directory for jobs, endpoints and the local bucket (default: $SMGLUON_LOCAL_ROOT or ~/.smgluon/local)",
    )
    p.add_argument("--entry-points", help="directory of workload entry points (default: ./entry_points)")
    p.add_argument("--lib", help="the smgluon package shipped as a dependency (default: ./lib/smgluon)")


def add_channel_options(p):
    """``--train``, ``--test`` and ``--training`` (read by :func:`channel_inputs`)."""
    p.add_argument("--train", metavar="DIR", help="the train channel")
    p.add_argument("--test", metavar="DIR", help="the test channel")
    p.add_argument("--training", metavar="DIR", help="one channel holding train and test files")


_interrupted = threading.Event()


def interrupt(signum, frame):
    """The SIGINT and SIGTERM handler :func:`smgluon_local.cli.main` installs: Ctrl-C from anywhere."""
    _interrupted.set()
    raise KeyboardInterrupt


def raise_if_interrupted():
    """Raise KeyboardInterrupt if Ctrl-C or SIGTERM came since :func:`smgluon_local.cli.main` started.

    Call it after SDK calls that may swallow one: the SageMaker SDK's telemetry
    wrapper (``sagemaker/telemetry/telemetry_logging.py``, around ``Estimator.fit``
    and the local client's ``create_model`` and ``create_endpoint_config``) ends in
    ``finally: return response``, which discards a KeyboardInterrupt raised inside.
    ``fit()`` then returns as if the job had ended, after Ctrl-C stopped it.
    """
    if _interrupted.is_set():
        raise KeyboardInterrupt


def clear_interrupted():
    """Forgets an earlier Ctrl-C: a new command starts."""
    _interrupted.clear()
