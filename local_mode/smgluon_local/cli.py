"""The ``smgluon`` command line: train, serve and query workloads locally, without Docker.

Every subcommand goes through the same SageMaker SDK objects a notebook uses
(``MXNet`` / ``MXNetModel`` with a :class:`~smgluon_local.ProcessSession`)::

    smgluon train mnist_mlp --hp epochs=2 --train data/train --test data/test --output out
    smgluon serve out/<job>/output/model.tar.gz --workload mnist_mlp --port 8080
    smgluon predict --endpoint http://127.0.0.1:8080 images.npy

Subcommands register themselves in :data:`SUBCOMMANDS`, so later ones
(``data fetch``, ``tune``) slot in beside these.
"""

import argparse
import difflib
import importlib.util
import json
import os
import signal
import sys
import tarfile
import threading
import urllib.error
import urllib.request

from smgluon_local.datasets import add_data_command

__all__ = ["main", "build_parser", "parse_hyperparameters", "raise_if_interrupted", "SUBCOMMANDS"]

ROLE = "arn:aws:iam::111111111111:role/local"
FRAMEWORK_VERSION = "1.9.0"
PY_VERSION = "py38"
_PACKAGE_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class CliError(Exception):
    """A user-facing error: printed as ``smgluon: error: ...`` with exit status 1."""


def _repo_dir(name, given=None):
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


def _entry_point(workload, entry_points_dir):
    if entry_points_dir is None:
        raise CliError("no entry_points/ directory found; run from the repository root or pass --entry-points DIR")
    name = workload[:-3] if workload.endswith(".py") else workload
    path = os.path.join(entry_points_dir, name + ".py")
    if not os.path.isfile(path):
        known = sorted(f[:-3] for f in os.listdir(entry_points_dir) if f.endswith(".py") and not f.startswith("_"))
        close = difflib.get_close_matches(name, known, n=1)
        hint = " Did you mean %r?" % close[0] if close else ""
        raise CliError("unknown workload %r.%s Workloads in %s: %s"
                       % (name, hint, entry_points_dir, ", ".join(known) or "none"))
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


def _channel(flag, path):
    if not os.path.isdir(path):
        raise CliError("%s %s: no such directory" % (flag, path))
    return "file://" + os.path.abspath(path)


def _load_module(path):
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _session(args, **kwargs):
    from smgluon_local.session import ProcessSession

    return ProcessSession(root_dir=args.root, **kwargs)


def _channels(args):
    """The ``--train``/``--test``/``--training`` directories as file:// channels."""
    channels = {}
    for flag, name in (("--train", "train"), ("--test", "test"), ("--training", "training")):
        value = getattr(args, name)
        if value:
            channels[name] = _channel(flag, value)
    if not channels:
        raise CliError("no data: pass --train DIR (and --test DIR), or --training DIR")
    return channels


def _estimator(entry_point, lib, hyperparameters, metric_definitions, output, session, instance_count=1):
    """The SDK's local MXNet estimator for a workload, with its artifacts under ``output``.

    Several instances train with the parameter server, as on SageMaker.
    """
    from sagemaker.mxnet import MXNet

    distribution = {"parameter_server": {"enabled": True}} if instance_count > 1 else None
    return MXNet(entry_point=os.path.basename(entry_point), source_dir=os.path.dirname(entry_point),
                 dependencies=[lib] if lib else [], role=ROLE, instance_count=instance_count,
                 instance_type="local", framework_version=FRAMEWORK_VERSION, py_version=PY_VERSION,
                 hyperparameters=hyperparameters, metric_definitions=metric_definitions,
                 output_path="file://" + output, sagemaker_session=session, distribution=distribution)


def cmd_train(args):
    """``smgluon train``: run a workload's entry point as a SageMaker training job."""
    entry_points = _repo_dir("entry_points", args.entry_points)
    entry_point = _entry_point(args.workload, entry_points)
    lib = _repo_dir(os.path.join("lib", "smgluon"), args.lib)
    channels = _channels(args)
    hyperparameters = parse_hyperparameters(args.hp)
    metric_definitions = getattr(_load_module(entry_point), "METRIC_DEFINITIONS", None)
    output = os.path.abspath(args.output)
    os.makedirs(output, exist_ok=True)
    session = _session(args)
    estimator = _estimator(entry_point, lib, hyperparameters, metric_definitions, output, session,
                           instance_count=args.instance_count)
    hosts = " on %d hosts" % args.instance_count if args.instance_count > 1 else ""
    print("smgluon: training %s on %s%s (log streams below; jobs in %s)"
          % (os.path.basename(entry_point), ", ".join(sorted(channels)), hosts, session.root_dir), file=sys.stderr)
    estimator.fit(channels)
    raise_if_interrupted()  # Ctrl-C stopped the job, and the SDK's fit() returned as if it had ended
    desc = estimator.latest_training_job.describe()
    for metric in desc.get("FinalMetricDataList", []):
        print("%s = %g" % (metric["MetricName"], metric["Value"]))
    model = estimator.model_data[len("file://"):]
    print("model: %s" % model)
    return 0


def _tar_entry_point(model_tar):
    try:
        with tarfile.open(model_tar) as tar:
            names = [os.path.normpath(n) for n in tar.getnames()]
    except (OSError, tarfile.TarError) as e:
        raise CliError("%s: not a readable model.tar.gz (%s)" % (model_tar, e)) from None
    scripts = [n for n in names if os.path.dirname(n) == "code" and n.endswith(".py")]
    return os.path.basename(scripts[0]) if len(scripts) == 1 else None


def _wait_for_signal():
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *a: stop.set())
    while not stop.wait(0.5):
        pass


def cmd_serve(args):
    """``smgluon serve``: serve a model.tar.gz with the MXNet serving stack until Ctrl-C."""
    model_tar = os.path.abspath(args.model)
    if not os.path.isfile(model_tar):
        raise CliError("%s: no such file" % args.model)
    kwargs = {}
    if args.workload:
        entry_point = _entry_point(args.workload, _repo_dir("entry_points", args.entry_points))
        lib = _repo_dir(os.path.join("lib", "smgluon"), args.lib)
        kwargs = dict(entry_point=os.path.basename(entry_point), source_dir=os.path.dirname(entry_point),
                      dependencies=[lib] if lib else [])
    else:
        script = _tar_entry_point(model_tar)
        if script is None:
            raise CliError("%s has no single code/*.py entry point; pass --workload NAME (e.g. mnist_mlp)"
                           % args.model)
        kwargs = dict(entry_point=script)
    from sagemaker.mxnet import MXNetModel

    session = _session(args, serving_port=args.port)
    model = MXNetModel(model_data="file://" + model_tar, role=ROLE, framework_version=FRAMEWORK_VERSION,
                       py_version=PY_VERSION, sagemaker_session=session, **kwargs)
    print("smgluon: starting multi-model-server for %s ..." % args.model, file=sys.stderr)
    started = False
    try:
        # Ctrl-C or SIGTERM from here on stops the endpoint, whatever deploy() was doing (see main()).
        try:
            model.deploy(initial_instance_count=1, instance_type="local")
        except Exception:
            raise_if_interrupted()  # the SDK swallowed one, and its half-done call failed what came next
            raise
        raise_if_interrupted()  # the SDK swallowed one and deploy() went on: the server is up, stop it
        url = session.endpoint_url(model.endpoint_name)
        print("\nserving at %s (POST %s/invocations, GET %s/ping); Ctrl-C to stop" % (url, url, url), flush=True)
        started = True
        _wait_for_signal()
    finally:
        if started:
            print("smgluon: stopping the model server ...", file=sys.stderr)
        _delete_endpoint(session, model)
    return 0


def _delete_endpoint(session, model):
    """Stop the model's endpoint (java, workers, watchdog) and forget it; nothing if it was never created.

    deploy() names the endpoint before creating it, so this also stops one that an interrupted
    deploy() left running.
    """
    name = getattr(model, "endpoint_name", None)
    if name:
        session.sagemaker_client.delete_endpoint(EndpointName=name)
        session.sagemaker_client.delete_endpoint_config(EndpointConfigName=name)


def _request_body(path, content_type):
    if not os.path.isfile(path):
        raise CliError("%s: no such file" % path)
    lower = path.lower()
    if content_type:
        with open(path, "rb") as f:
            return f.read(), content_type
    if lower.endswith(".json"):
        with open(path, "rb") as f:
            return f.read(), "application/json"
    if lower.endswith(".csv"):
        with open(path, "rb") as f:
            return f.read(), "text/csv"
    if lower.endswith(".npy"):
        with open(path, "rb") as f:
            return f.read(), "application/x-npy"
    if lower.endswith((".png", ".jpg", ".jpeg")):
        with open(path, "rb") as f:
            return f.read(), "image/png" if lower.endswith(".png") else "image/jpeg"
    if "idx" in os.path.basename(lower) or lower.endswith("-ubyte"):
        from smgluon.idx import read_idx

        images = read_idx(path)
        return json.dumps(images.reshape(len(images), -1).tolist()).encode(), "application/json"
    raise CliError("%s: unknown file type; use .json, .csv, .npy, .png, .jpg or an IDX file, or pass --content-type"
                   % path)


def cmd_predict(args):
    """``smgluon predict``: POST a file to an endpoint's /invocations and print the answer."""
    url = args.endpoint.rstrip("/")
    if not url.endswith("/invocations"):
        url += "/invocations"
    body, content_type = _request_body(args.file, args.content_type)
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": content_type, "Accept": args.accept})
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as r:
            sys.stdout.write(r.read().decode("utf-8", errors="replace") + "\n")
    except urllib.error.HTTPError as e:
        raise CliError("the endpoint answered %d: %s" % (e.code, e.read().decode("utf-8", errors="replace"))) from None
    except urllib.error.URLError as e:
        raise CliError("cannot reach %s (%s); is `smgluon serve` running?" % (url, e.reason)) from None
    return 0


def _add_common(p):
    p.add_argument("--root", help="directory for jobs, endpoints and the local bucket "
                   "(default: $SMGLUON_LOCAL_ROOT or ~/.smgluon/local)")
    p.add_argument("--entry-points", help="directory of workload entry points (default: ./entry_points)")
    p.add_argument("--lib", help="the smgluon package shipped as a dependency (default: ./lib/smgluon)")


def _add_channel_options(p):
    """``--train``, ``--test`` and ``--training`` (read by :func:`_channels`)."""
    p.add_argument("--train", metavar="DIR", help="the train channel")
    p.add_argument("--test", metavar="DIR", help="the test channel")
    p.add_argument("--training", metavar="DIR", help="one channel holding train and test files")


def _add_train(sub):
    p = sub.add_parser("train", help="train a workload as a local SageMaker training job",
                       description="Train entry_points/WORKLOAD.py through the SageMaker SDK, locally.")
    p.add_argument("workload", metavar="WORKLOAD", help="entry point name in entry_points/, e.g. mnist_mlp")
    p.add_argument("--hp", action="append", metavar="KEY=VALUE", help="a hyperparameter (repeatable)")
    _add_channel_options(p)
    p.add_argument("--output", metavar="DIR", default="smgluon-output",
                   help="where <job>/output/model.tar.gz goes (default: ./smgluon-output)")
    p.add_argument("--instance-count", type=_positive_int, default=1, metavar="N",
                   help="hosts algo-1 … algo-N, trained with the parameter server as on SageMaker (default: 1)")
    _add_common(p)
    p.set_defaults(func=cmd_train)


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError("%r is not a positive integer" % text)
    return value


def _add_serve(sub):
    p = sub.add_parser("serve", help="serve a model.tar.gz with multi-model-server until Ctrl-C")
    p.add_argument("model", metavar="MODEL_TAR_GZ", help="a model.tar.gz from `smgluon train`")
    p.add_argument("--port", type=int, help="port on 127.0.0.1 (default: a free one; at most 32766)")
    p.add_argument("--workload", help="entry point serving the model (default: the archive's code/*.py)")
    _add_common(p)
    p.set_defaults(func=cmd_serve)


def _add_predict(sub):
    p = sub.add_parser("predict", help="send a file to an endpoint and print the answer")
    p.add_argument("--endpoint", required=True, metavar="URL", help="e.g. http://127.0.0.1:8080")
    p.add_argument("file", metavar="FILE", help=".json, .csv, .npy, .png, .jpg or an IDX image file")
    p.add_argument("--content-type", help="override the content type guessed from FILE")
    p.add_argument("--accept", default="application/json", help="Accept header (default: application/json)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds (default: 60)")
    p.set_defaults(func=cmd_predict)


SUBCOMMANDS = [_add_train, _add_serve, _add_predict, add_data_command]


def _add_tune(sub):
    from smgluon_local.tune_cli import add_tune_command  # imports this module

    add_tune_command(sub)


SUBCOMMANDS.append(_add_tune)


def _add_quickstart(sub):
    from smgluon_local.quickstart import add_quickstart_command  # imports this module

    add_quickstart_command(sub)


SUBCOMMANDS.append(_add_quickstart)


def build_parser():
    """The argparse parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="smgluon", description="SageMaker MXNet Gluon workloads, locally.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def _user_errors():
    """Exception types reported as one line, from the modules this run has imported.

    Looking them up in ``sys.modules`` keeps ``smgluon predict`` from importing the SDK.
    """
    errors = [CliError, FileNotFoundError, ValueError, tarfile.TarError]
    for module, names in (("smgluon_local.endpoint", ("JavaNotFoundError", "ModelServerError")),
                          ("smgluon_local.storage", ("NoCredentialsError",)),
                          ("sagemaker.exceptions", ("UnexpectedStatusException",)),
                          ("botocore.exceptions", ("ClientError",))):
        if module in sys.modules:
            errors.extend(getattr(sys.modules[module], name) for name in names)
    return tuple(errors)


_interrupted = threading.Event()


def _interrupt(signum, frame):
    _interrupted.set()
    raise KeyboardInterrupt


def raise_if_interrupted():
    """Raise KeyboardInterrupt if Ctrl-C or SIGTERM came since :func:`main` started.

    Call it after SDK calls that may swallow one: the SageMaker SDK's telemetry
    wrapper (``sagemaker/telemetry/telemetry_logging.py``, around ``Estimator.fit``
    and the local client's ``create_model`` and ``create_endpoint_config``) ends in
    ``finally: return response``, which discards a KeyboardInterrupt raised inside.
    ``fit()`` then returns as if the job had ended, after Ctrl-C stopped it.
    """
    if _interrupted.is_set():
        raise KeyboardInterrupt


def main(argv=None):
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C and `kill`/`timeout` (SIGTERM) unwind as KeyboardInterrupt, so jobs and endpoints are
        # stopped. SIGINT too, although Python handles it already: a command that a script starts in
        # the background inherits SIGINT ignored, and Python then leaves it ignored.
        _interrupted.clear()
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _interrupt)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("smgluon: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if isinstance(e, _user_errors()):
            print("smgluon: error: %s" % e, file=sys.stderr)
            return 1
        raise
    finally:
        for sig, handler in previous.items():
            if handler is not None:  # None: not set from Python; leave ours
                signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
