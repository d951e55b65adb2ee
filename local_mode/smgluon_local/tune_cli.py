"""``smgluon tune``: a hyperparameter tuning job over a workload's published ranges, locally.

::

    smgluon tune mnist_mlp --max-jobs 6 --parallel 2 --hp epochs=1 --train DIR --test DIR --output out

It builds the SageMaker SDK's ``HyperparameterTuner`` from the workload's own
declarations (:mod:`smgluon_local.workload_tuning`: ranges, metric regexes,
objective), with ``--hp`` values held static and left out of the ranges, and
runs it on a :class:`~smgluon_local.ProcessSession`. It shows a progress bar,
then a table of the trials, and writes ``trials.csv`` and ``trials.png`` (the
objective per trial and the best so far) under ``--output``, beside the
trials' ``<job>/output/model.tar.gz``.
"""

import logging
import os
import sys
import time

from smgluon_local import commands

__all__ = ["add_tune_command", "cmd_tune"]

_FINISHED = ("Completed", "Failed", "Stopped")


def _progress(client, name, total):
    """Follow the tuning job with a progress bar until it ends; returns its description."""
    from tqdm import tqdm

    with tqdm(total=total, unit="job", desc="tuning", file=sys.stderr, dynamic_ncols=True) as bar:
        shown = None
        while True:
            desc = client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
            counters = desc["TrainingJobStatusCounters"]
            done = counters["Completed"] + counters["Stopped"] + counters["NonRetryableError"]
            best = desc.get("BestTrainingJob", {}).get("FinalHyperParameterTuningJobObjectiveMetric")
            state = (done, "running %d, failed %d, stopped %d%s" % (
                counters["InProgress"], counters["NonRetryableError"], counters["Stopped"],
                ", best %s=%.4g" % (best["MetricName"], best["Value"]) if best else ""))
            if state != shown:  # redraw on change only: a log file gets one line per event
                bar.set_postfix_str(state[1], refresh=False)
                bar.update(done - bar.n)
                bar.refresh()
                shown = state
            if desc["HyperParameterTuningJobStatus"] in _FINISHED:
                return desc
            time.sleep(0.5)


class _NoModelYetFilter(logging.Filter):
    """The SDK warns that the estimator has no trained model while it prepares a tuning job; it needs none."""

    def filter(self, record):
        return "No finished training job found" not in record.getMessage()


def _report(session, desc, output):
    from sagemaker.analytics import HyperparameterTuningJobAnalytics

    from smgluon_local.tuning_report import format_table, trial_rows, write_csv, write_plot

    name = desc["HyperParameterTuningJobName"]
    objective = desc["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
    rows = trial_rows(HyperparameterTuningJobAnalytics(name, session).training_job_summaries())
    best = desc.get("BestTrainingJob", {}).get("TrainingJobName")
    print(format_table(rows, objective["MetricName"], best))
    csv_path, png_path = os.path.join(output, "trials.csv"), os.path.join(output, "trials.png")
    write_csv(rows, csv_path, objective["MetricName"])
    write_plot(rows, png_path, objective["MetricName"], objective["Type"], title="tuning job %s" % name)
    print("trials: %s\nplot: %s" % (csv_path, png_path))


def cmd_tune(args):
    """``smgluon tune``: tune a workload's published ranges as a local SageMaker tuning job."""
    entry_point = commands.find_entry_point(args.workload, commands.repo_dir("entry_points", args.entry_points))
    lib = commands.repo_dir(os.path.join("lib", "smgluon"), args.lib)
    channels = commands.channel_inputs(args)
    if args.max_jobs < 1 or args.parallel < 1:
        raise commands.CliError("--max-jobs and --parallel must be at least 1")
    hyperparameters = commands.parse_hyperparameters(args.hp)
    module = commands.load_workload(entry_point, hyperparameters)  # a misspelt --hp fails here, with a suggestion
    from sagemaker.tuner import HyperparameterTuner

    from smgluon_local.workload_tuning import tuner_arguments

    try:
        arguments = tuner_arguments(module, fixed=hyperparameters)
    except TypeError as e:
        raise commands.CliError("%s cannot be tuned: %s" % (args.workload, e)) from None
    output = os.path.abspath(args.output)
    os.makedirs(output, exist_ok=True)
    session = commands.make_session(args)
    estimator = commands.make_estimator(entry_point, lib, hyperparameters, arguments["metric_definitions"], output,
                                        session)
    tuner = HyperparameterTuner(estimator, max_jobs=args.max_jobs, max_parallel_jobs=args.parallel,
                                strategy=args.strategy, early_stopping_type=args.early_stopping,
                                random_seed=args.seed, **arguments)
    print("smgluon: tuning %s over %s (%s, %d jobs, %d at a time; jobs in %s)" % (
        os.path.basename(entry_point), ", ".join(sorted(arguments["hyperparameter_ranges"])), args.strategy,
        args.max_jobs, args.parallel, session.root_dir), file=sys.stderr)
    sdk_logger, quiet = logging.getLogger("sagemaker.estimator"), _NoModelYetFilter()
    sdk_logger.addFilter(quiet)
    try:
        tuner.fit(channels, wait=False)
    finally:
        sdk_logger.removeFilter(quiet)
    name = tuner.latest_tuning_job.name
    client = session.sagemaker_client
    total = client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)[
        "HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"]
    try:
        desc = _progress(client, name, total)
    except KeyboardInterrupt:
        print("smgluon: stopping tuning job %s ..." % name, file=sys.stderr)
        client.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        desc = _progress(client, name, total)
        _report(session, desc, output)
        return 130
    _report(session, desc, output)
    if desc["HyperParameterTuningJobStatus"] == "Failed":
        raise commands.CliError("tuning job %s failed: %s" % (name, desc.get("FailureReason", "no reason given")))
    best = desc["BestTrainingJob"]
    metric = best["FinalHyperParameterTuningJobObjectiveMetric"]
    print("best: %s %s=%g" % (best["TrainingJobName"], metric["MetricName"], metric["Value"]))
    print("model: %s" % os.path.join(output, best["TrainingJobName"], "output", "model.tar.gz"))
    return 0


def add_tune_command(sub):
    """Register ``smgluon tune`` on the command line's subparsers."""
    p = sub.add_parser("tune", help="tune a workload's hyperparameters as a local SageMaker tuning job",
                       description="Tune entry_points/WORKLOAD.py over its published ranges (HYPERPARAMETERS), "
                       "objective and metric regexes through the SDK's HyperparameterTuner, locally. "
                       "--hp fixes a hyperparameter (it is then not tuned).")
    p.add_argument("workload", metavar="WORKLOAD", help="entry point name in entry_points/, e.g. mnist_mlp")
    p.add_argument("--max-jobs", type=int, required=True, metavar="N", help="training jobs to run in all")
    p.add_argument("--parallel", type=int, default=1, metavar="P",
                   help="training jobs at once (default: 1; at most the machine's cores run at once)")
    p.add_argument("--strategy", default="Bayesian", choices=["Bayesian", "Random", "Grid"],
                   help="search strategy (default: Bayesian; Grid needs categorical or integer ranges only)")
    p.add_argument("--early-stopping", default="Off", choices=["Off", "Auto"],
                   help="Auto stops trials worse than the median of earlier ones at the same epoch (default: Off)")
    p.add_argument("--seed", type=int, help="random seed of the search (default: none)")
    p.add_argument("--hp", action="append", metavar="KEY=VALUE", help="a static hyperparameter (repeatable)")
    commands.add_channel_options(p)
    p.add_argument("--output", metavar="DIR", default="smgluon-tuning",
                   help="where trials.csv, trials.png and <job>/output/model.tar.gz go (default: ./smgluon-tuning)")
    commands.add_common(p)
    p.set_defaults(func=cmd_tune)
