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
import json
import os
import signal
import sys
import tarfile
import threading
import urllib.error
import urllib.request

from smgluon_local import cli_errors, commands, job_record, quickstart, sdk_logging, tune_cli
from smgluon_local.commands import (
    FRAMEWORK_VERSION,
    PY_VERSION,
    ROLE,
    CliError,
    add_channel_options,
    add_common,
    channel_inputs,
    find_entry_point,
    load_workload,
    make_estimator,
    make_session,
    parse_hyperparameters,
    raise_if_interrupted,
    repo_dir,
)
from smgluon_local.datasets import FetchError, add_data_command
from smgluon_local.package import add_package_command

__all__ = ["main", "build_parser", "parse_hyperparameters", "raise_if_interrupted", "CliError", "SUBCOMMANDS"]


def cmd_train(args):
    """``smgluon train``: run a workload's entry point as a SageMaker training job."""
    entry_point = find_entry_point(args.workload, repo_dir("entry_points", args.entry_points))
    lib = repo_dir(os.path.join("lib", "smgluon"), args.lib)
    channels = channel_inputs(args)
    hyperparameters = parse_hyperparameters(args.hp)
    workload = load_workload(entry_point, hyperparameters)  # a misspelt --hp fails here, before any job
    metric_definitions = getattr(workload, "METRIC_DEFINITIONS", None)
    output = os.path.abspath(args.output)
    os.makedirs(output, exist_ok=True)
    session = make_session(args, **({"spot_interruptions": args.interrupt_after} if args.interrupt_after else {}))
    estimator = make_estimator(entry_point, lib, hyperparameters, metric_definitions, output, session,
                           instance_count=args.instance_count)
    if args.interrupt_after:
        _rehearse_spot(estimator, output)
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
    if args.interrupt_after:
        print("checkpoints: %s" % estimator.checkpoint_s3_uri[len("file://"):])
    return 0


def _rehearse_spot(estimator, output):
    """``--interrupt-after``: a managed spot job whose checkpoints go to a new directory under ``output``."""
    import datetime

    estimator.use_spot_instances = True
    estimator.max_wait = estimator.max_run
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    estimator.checkpoint_s3_uri = "file://" + os.path.join(output, "checkpoints", stamp)


def _interruptions(text):
    from smgluon_local.spot import parse_interruptions

    try:
        return parse_interruptions(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _tar_entry_point(model_tar):
    try:
        with tarfile.open(model_tar) as tar:
            names = [os.path.normpath(n) for n in tar.getnames()]
    except (OSError, tarfile.TarError) as e:
        # tarfile's ReadError lists every compression it tried, a line each.
        reason = "not a tar archive, or a damaged one" if isinstance(e, tarfile.ReadError) else e
        raise CliError("%s: not a readable model.tar.gz (%s)" % (model_tar, reason)) from None
    scripts = [n for n in names if os.path.dirname(n) == "code" and n.endswith(".py")]
    return os.path.basename(scripts[0]) if len(scripts) == 1 else None


def _wait_for_signal():
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *a: stop.set())
    while not stop.wait(0.5):
        pass


def _workload_code(args, workload):
    entry_point = find_entry_point(workload, repo_dir("entry_points", args.entry_points))
    lib = repo_dir(os.path.join("lib", "smgluon"), args.lib)
    return dict(entry_point=os.path.basename(entry_point), source_dir=os.path.dirname(entry_point),
                dependencies=[lib] if lib else [])


def _serving_code(args, model_tar, session):
    """MXNetModel's code arguments: --workload, else the archive's code/*.py, else the code of the job that made it."""
    if args.workload:
        return _workload_code(args, args.workload)
    script = _tar_entry_point(model_tar)
    if script is not None:
        return dict(entry_point=script)
    record = job_record.trained_by(model_tar, session.root_dir, session.local_s3)
    if record is None:
        raise CliError("%s has no single code/*.py entry point and no training job under %s made it; pass "
                       "--workload NAME (e.g. mnist_mlp)" % (args.model, session.root_dir))
    print("smgluon: serving with %s, as training job %s ran it" % (record.entry_point, record.job_name),
          file=sys.stderr)
    if record.source_dir:  # the job's uploaded sourcedir.tar.gz, as estimator.deploy() serves it
        return dict(entry_point=record.entry_point, source_dir=record.source_dir)
    return _workload_code(args, record.entry_point[: -len(".py")])


def cmd_serve(args):
    """``smgluon serve``: serve a model.tar.gz with the MXNet serving stack until Ctrl-C."""
    model_tar = os.path.abspath(args.model)
    if not os.path.isfile(model_tar):
        raise CliError("%s: no such file" % args.model)
    session = make_session(args, serving_port=args.port)
    kwargs = _serving_code(args, model_tar, session)
    from sagemaker.mxnet import MXNetModel

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


def _add_train(sub):
    p = sub.add_parser("train", help="train a workload as a local SageMaker training job",
                       description="Train entry_points/WORKLOAD.py through the SageMaker SDK, locally.")
    p.add_argument("workload", metavar="WORKLOAD", help="entry point name in entry_points/, e.g. mnist_mlp")
    p.add_argument("--hp", action="append", metavar="KEY=VALUE", help="a hyperparameter (repeatable)")
    add_channel_options(p)
    p.add_argument("--output", metavar="DIR", default="smgluon-output",
                   help="where <job>/output/model.tar.gz goes (default: ./smgluon-output)")
    p.add_argument("--instance-count", type=_positive_int, default=1, metavar="N",
                   help="hosts algo-1 … algo-N, trained with the parameter server as on SageMaker (default: 1)")
    p.add_argument("--interrupt-after", type=_interruptions, metavar="WHEN",
                   help="rehearse managed spot training: reclaim the instances and restart the job after WHEN, "
                        "e.g. 30s, '2 checkpoints' or '30s,2 checkpoints' (one interruption each); the "
                        "checkpoints go to OUTPUT/checkpoints/")
    add_common(p)
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
    p.add_argument("--workload", help="entry point serving the model (default: the archive's code/*.py, else the "
                   "code of the `smgluon train` job that made it)")
    add_common(p)
    p.set_defaults(func=cmd_serve)


def _add_predict(sub):
    p = sub.add_parser("predict", help="send a file to an endpoint and print the answer")
    p.add_argument("--endpoint", required=True, metavar="URL", help="e.g. http://127.0.0.1:8080")
    p.add_argument("file", metavar="FILE", help=".json, .csv, .npy, .png, .jpg or an IDX image file")
    p.add_argument("--content-type", help="override the content type guessed from FILE")
    p.add_argument("--accept", default="application/json", help="Accept header (default: application/json)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds (default: 60)")
    p.set_defaults(func=cmd_predict)


SUBCOMMANDS = [_add_train, _add_serve, _add_predict, add_data_command, add_package_command]


SUBCOMMANDS += [tune_cli.add_tune_command, quickstart.add_quickstart_command]


def _add_output_options(parser, default):
    parser.add_argument("--debug", action="store_true", default=default,
                        help="show the Python traceback of an error instead of its one-line message")
    parser.add_argument("--verbose", action="store_true", default=default,
                        help="also show the SageMaker SDK's config, telemetry and repacking notices")


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                yield subparser
                yield from _subparsers(subparser)


def build_parser():
    """The argparse parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="smgluon", description="SageMaker MXNet Gluon workloads, locally.")
    _add_output_options(parser, False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in SUBCOMMANDS:
        add(sub)
    for subparser in _subparsers(parser):  # `smgluon train ... --debug` as well as `smgluon --debug train ...`
        _add_output_options(subparser, argparse.SUPPRESS)
    return parser


def _user_errors():
    """Exception types reported as one line, from the modules this run has imported.

    Looking them up in ``sys.modules`` keeps ``smgluon predict`` from importing the SDK.
    """
    errors = [CliError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, ValueError,
              tarfile.TarError, FetchError]
    for module, names in (("smgluon_local.endpoint", ("JavaNotFoundError", "ModelServerError")),
                          ("smgluon_local.storage", ("NoCredentialsError",)),
                          ("sagemaker.exceptions", ("UnexpectedStatusException",)),
                          ("botocore.exceptions", ("ClientError",))):
        if module in sys.modules:
            errors.extend(getattr(sys.modules[module], name) for name in names)
    return tuple(errors)


def main(argv=None):
    """Run the command line; returns the exit status (see :mod:`smgluon_local.cli_errors`)."""
    args = build_parser().parse_args(argv)
    sdk_logging.quiet(args.verbose or None)  # None: $SMGLUON_VERBOSE decides
    previous = {}
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C and `kill`/`timeout` (SIGTERM) unwind as KeyboardInterrupt, so jobs and endpoints are
        # stopped. SIGINT too, although Python handles it already: a command that a script starts in
        # the background inherits SIGINT ignored, and Python then leaves it ignored.
        commands.clear_interrupted()
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, commands.interrupt)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("smgluon: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if args.debug:
            raise
        return cli_errors.report(e, _user_errors())
    finally:
        for sig, handler in previous.items():
            if handler is not None:  # None: not set from Python; leave ours
                signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
