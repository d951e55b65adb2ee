"""Hyperparameter tuning locally: the SDK's HyperparameterTuner on ProcessSession, the search
strategies, the median early-stopping rule, the workloads' published ranges and `smgluon tune`.

The slow tests run real tuning jobs: mnist_mlp on small MNIST (one epoch per trial) and a
fast stand-in workload (tests/local_mode_fixtures/tuning_curve.py) whose learning curve is
set by its hyperparameters, so which trial is best or stopped is known in advance."""

import json
import math
import os
import re
import time

import pytest

# Imported before the no-network guard (see test_local_mode_jobs.py).
import sagemaker.mxnet  # noqa: F401
from botocore.exceptions import ClientError
from local_helpers import FIXTURES, REPO, NoInternet, live_processes_under, mxnet_estimator
from sagemaker.tuner import CategoricalParameter, ContinuousParameter, HyperparameterTuner, IntegerParameter

import smgluon_local.session  # noqa: F401
from smgluon_local.search import SearchError, SearchSpace, make_strategy
from smgluon_local.tuning import median_rule_stops
from smgluon_local.tuning_report import best_so_far, format_table, trial_rows, write_csv, write_plot
from smgluon_local.workload_tuning import hyperparameter_ranges, tuner_arguments

LIB = os.path.join(REPO, "lib", "smgluon")


@pytest.fixture
def session(tmp_path):
    from smgluon_local import ProcessSession

    with NoInternet() as guard:
        yield ProcessSession(root_dir=str(tmp_path / "root"))
    assert guard.attempts == [], "local tuning tried to reach the network: %r" % guard.attempts


def _curve_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("tuning_curve", os.path.join(FIXTURES, "tuning_curve.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _curve_tuner(session, ranges, static=None, **kwargs):
    curve = _curve_module()
    hps = {"epochs": 1, "seconds_per_epoch": 0.0}
    hps.update(static or {})
    est = mxnet_estimator(session, "tuning_curve.py", dependencies=[LIB], hyperparameters=hps)
    return HyperparameterTuner(est, curve.OBJECTIVE["metric"], ranges, curve.METRIC_DEFINITIONS,
                               objective_type=curve.OBJECTIVE["type"], **kwargs)


def _encode(name, r):
    """A range as the SDK sends it for a framework estimator (categorical values JSON-encoded)."""
    return r.as_json_range(name) if isinstance(r, CategoricalParameter) else r.as_tuning_range(name)


def _ranges(**ranges):
    """ParameterRanges as the SDK sends them for a framework estimator."""
    out = {}
    for name, r in ranges.items():
        out.setdefault(type(r).__name__.replace("Parameter", "ParameterRanges"), []).append(_encode(name, r))
    return out


# ---------------------------------------------------------------- the median rule


def test_median_rule_stops_a_trial_worse_than_the_median_of_earlier_running_averages():
    earlier = [[0.5, 0.7, 0.8], [0.4, 0.6], [0.6, 0.8, 0.9]]
    # Running averages at epoch 2: 0.6, 0.5, 0.7 -> median 0.6.
    assert median_rule_stops([0.3, 0.55], earlier, maximize=True)
    assert not median_rule_stops([0.3, 0.65], earlier, maximize=True)
    # Minimizing: worse means higher.
    losses = [[1.0, 0.8], [1.2, 0.9], [0.9, 0.7]]  # running averages 0.9, 1.05, 0.8 -> median 0.9
    assert median_rule_stops([1.0, 0.95], losses, maximize=False)
    assert not median_rule_stops([1.0, 0.85], losses, maximize=False)
    # Too few earlier trials at this epoch: no verdict.
    assert not median_rule_stops([0.1, 0.1, 0.1], earlier, maximize=True)
    assert not median_rule_stops([0.1], earlier[:2], maximize=True)
    # A diverged trial stops; earlier trials with NaN do not count.
    assert median_rule_stops([float("nan")], earlier, maximize=True)
    assert not median_rule_stops([0.01], earlier[:2] + [[float("nan")]], maximize=True)


# ---------------------------------------------------------------- search strategies


def test_random_and_bayesian_sample_within_the_ranges_as_sdk_strings():
    ranges = _ranges(lr=ContinuousParameter(1e-4, 1e-1, "Logarithmic"), mom=ContinuousParameter(0.9, 0.999,
                     "ReverseLogarithmic"), units=IntegerParameter(8, 512, "Logarithmic"), drop=ContinuousParameter(
                     0.0, 0.5), opt=CategoricalParameter(["sgd", "adam"]), flag=CategoricalParameter([True, False]))
    space = SearchSpace(ranges, static={"epochs": "1"})
    for strategy in ("Random", "Bayesian"):
        search = make_strategy(strategy, space, "Maximize", seed=3, max_jobs=40)
        lrs = []
        for i in range(40):
            token, tuned = search.ask()
            assert set(tuned) == {"lr", "mom", "units", "drop", "opt", "flag"}
            assert all(isinstance(v, str) for v in tuned.values())
            assert 1e-4 <= float(tuned["lr"]) <= 1e-1 and 0.9 <= float(tuned["mom"]) <= 0.999
            assert 8 <= int(tuned["units"]) <= 512 and 0.0 <= float(tuned["drop"]) <= 0.5
            # The SDK turns categorical values into strings, then JSON: True is sent as '"True"'.
            assert tuned["opt"] in ('"sgd"', '"adam"') and tuned["flag"] in ('"True"', '"False"')
            lrs.append(float(tuned["lr"]))
            search.report(token, 1, float(tuned["drop"]))
            search.tell(token, float(tuned["drop"]) if i % 7 else None)  # every 7th trial fails
        if strategy == "Random":  # Logarithmic: about as many below the geometric middle (1e-2.5) as above
            assert 8 <= sum(lr < 10 ** -2.5 for lr in lrs) <= 32
    # The same seed gives the same trials.
    a = make_strategy("Random", space, "Maximize", seed=5)
    b = make_strategy("Random", space, "Maximize", seed=5)
    assert [a.ask()[1] for _ in range(3)] == [b.ask()[1] for _ in range(3)]


def test_grid_enumerates_categorical_and_integer_ranges_and_refuses_continuous_ones():
    space = SearchSpace(_ranges(opt=CategoricalParameter(["sgd", "adam"]), layers=IntegerParameter(1, 3)))
    grid = make_strategy("Grid", space, "Minimize")
    assert grid.size == 6
    combos = [grid.ask()[1] for _ in range(6)]
    assert grid.ask() is None
    assert len({json.dumps(c, sort_keys=True) for c in combos}) == 6
    assert {c["layers"] for c in combos} == {"1", "2", "3"} and {c["opt"] for c in combos} == {'"sgd"', '"adam"'}

    continuous = SearchSpace(_ranges(lr=ContinuousParameter(0.01, 0.1), opt=CategoricalParameter(["sgd"])))
    with pytest.raises(SearchError, match="Grid search needs every tuned range to be categorical or integer; "
                                          "'lr' is continuous"):
        make_strategy("Grid", continuous, "Maximize")


@pytest.mark.parametrize("ranges, message", [
    ({"ContinuousParameterRanges": [{"Name": "lr", "MinValue": "0", "MaxValue": "1",
                                     "ScalingType": "Logarithmic"}]}, "Logarithmic scaling needs MinValue > 0"),
    ({"ContinuousParameterRanges": [{"Name": "m", "MinValue": "0.5", "MaxValue": "1",
                                     "ScalingType": "ReverseLogarithmic"}]}, r"within \[0, 1\)"),
    ({"IntegerParameterRanges": [{"Name": "n", "MinValue": "5", "MaxValue": "2"}]}, "MinValue 5 is above MaxValue 2"),
    ({"IntegerParameterRanges": [{"Name": "n", "MinValue": "1.5", "MaxValue": "2"}]}, "must be an integer"),
    ({"ContinuousParameterRanges": [{"Name": "lr", "MinValue": "x", "MaxValue": "1"}]}, "'x' is not a number"),
    ({"CategoricalParameterRanges": [{"Name": "o", "Values": []}]}, "non-empty list"),
    ({"CategoricalParameterRanges": [{"Name": "epochs", "Values": ["1", "2"]}]}, "both tuned and static: epochs"),
    ({"CategoricalParameterRanges": [{"Name": "o", "Values": ["a"]}],
      "IntegerParameterRanges": [{"Name": "o", "MinValue": "1", "MaxValue": "2"}]}, "more than one range: o"),
    ({}, "no hyperparameter ranges to tune"),
])
def test_bad_ranges_are_refused_with_the_reason(ranges, message):
    with pytest.raises(SearchError, match=message):
        SearchSpace(ranges, static={"epochs": "2"})


def test_unsupported_strategy_names_the_supported_ones():
    space = SearchSpace(_ranges(n=IntegerParameter(1, 2)))
    with pytest.raises(SearchError, match="Hyperband.*not supported locally.*Bayesian, Random, Grid"):
        make_strategy("Hyperband", space, "Maximize")


# ---------------------------------------------------------------- the workloads' published ranges


def test_workloads_publish_sdk_ranges_metric_definitions_and_objective():
    import mnist_mlp
    import movielens_mf

    ranges = hyperparameter_ranges(mnist_mlp)
    assert set(ranges) == set(mnist_mlp.HYPERPARAMETERS.tunable())
    assert isinstance(ranges["learning_rate"], ContinuousParameter)
    assert _encode("learning_rate", ranges["learning_rate"]) == {
        "Name": "learning_rate", "MinValue": "0.001", "MaxValue": "0.5", "ScalingType": "Logarithmic"}
    assert ranges["optimizer"].as_json_range("optimizer")["Values"] == ['"sgd"', '"nag"', '"adam"']
    assert ranges["batch_size"].as_json_range("batch_size")["Values"] == ['"32"', '"64"', '"100"', '"128"', '"256"']

    args = tuner_arguments(mnist_mlp, fixed=["learning-rate"])
    assert args["objective_metric_name"] == "validation_accuracy" and args["objective_type"] == "Maximize"
    assert "learning_rate" not in args["hyperparameter_ranges"]
    assert args["metric_definitions"] == mnist_mlp.METRIC_DEFINITIONS
    # The published regex reads the workload's metric line, and not the "final_" summary line.
    regex = {d["Name"]: d["Regex"] for d in args["metric_definitions"]}["validation_accuracy"]
    log = "metrics: epoch=1 train_loss=0.5 validation_accuracy=0.9125\nmetrics: final_validation_accuracy=0.5\n"
    assert [float(v) for v in re.findall(regex, log)] == [0.9125]

    mf = tuner_arguments(movielens_mf)
    assert mf["objective_type"] == "Minimize"
    # Ranges built from declarations pass the tuning job's own checks.
    assert len(SearchSpace(_ranges(**mf["hyperparameter_ranges"])).params) == len(mf["hyperparameter_ranges"])

    with pytest.raises(ValueError, match="nothing left to tune"):
        tuner_arguments(mnist_mlp, fixed=list(mnist_mlp.HYPERPARAMETERS.tunable()))
    with pytest.raises(TypeError, match="not a workload"):
        hyperparameter_ranges(json)


# ---------------------------------------------------------------- report


def _summary(i, status, objective=None, **tuned):
    import datetime

    start = datetime.datetime(2026, 1, 1, 12, 0, i)
    s = {"TrainingJobName": "tj-%03d-abc" % i, "TrainingJobStatus": status, "CreationTime": start,
         "TrainingStartTime": start, "TrainingEndTime": start + datetime.timedelta(seconds=10),
         "TunedHyperParameters": {k: json.dumps(v) for k, v in tuned.items()}}
    if objective is not None:
        s["FinalHyperParameterTuningJobObjectiveMetric"] = {"MetricName": "acc", "Value": objective}
    if status == "Failed":
        s["FailureReason"] = "ValueError: bad, really"
    return s


def test_report_table_csv_and_plot(tmp_path):
    import csv

    summaries = [_summary(3, "Stopped", 0.2, lr=0.3, opt="adam"), _summary(1, "Completed", 0.7, lr=0.1, opt="sgd"),
                 _summary(2, "Failed", lr=0.2, opt="sgd"), _summary(4, "Completed", 0.9, lr=0.05, opt="adam")]
    rows = trial_rows(summaries)
    assert [r["trial"] for r in rows] == [1, 2, 3, 4] and [r["name"][:6] for r in rows] == ["tj-001", "tj-002",
                                                                                            "tj-003", "tj-004"]
    assert rows[0]["hyperparameters"] == {"lr": 0.1, "opt": "sgd"}  # decoded from '"sgd"'
    assert best_so_far(rows, "Maximize") == [0.7, 0.7, 0.7, 0.9]
    assert best_so_far(rows, "Minimize") == [0.7, 0.7, 0.7, 0.7]  # stopped trials are not candidates

    table = format_table(rows, "acc", best_name="tj-004-abc").splitlines()
    assert table[0].split() == ["#", "training", "job", "status", "acc", "lr", "opt"]
    assert table[4].startswith("*") and "tj-004-abc" in table[4] and "0.9" in table[4]
    assert "Failed" in table[2] and "0.7" in table[1]

    write_csv(rows, str(tmp_path / "out" / "trials.csv"), "acc")
    with open(tmp_path / "out" / "trials.csv", newline="") as f:
        records = list(csv.DictReader(f))
    assert [r["status"] for r in records] == ["Completed", "Failed", "Stopped", "Completed"]
    assert records[1]["acc"] == "" and records[1]["failure_reason"] == "ValueError: bad, really"
    assert records[3]["acc"] == "0.9" and records[3]["opt"] == "adam" and records[3]["seconds"] == "10.0"

    write_plot(rows, str(tmp_path / "out" / "trials.png"), "acc", "Maximize", title="t")
    with open(tmp_path / "out" / "trials.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert sorted(os.listdir(tmp_path / "out")) == ["trials.csv", "trials.png"]  # no temporary files left


# ---------------------------------------------------------------- requests refused before any trial


def test_requests_that_cannot_run_locally_are_refused_with_what_to_change(session):
    import copy

    from sagemaker.tuner import _TuningJob

    tuner = _curve_tuner(session, {"quality": ContinuousParameter(0.1, 0.9)}, max_jobs=2, strategy="Grid")
    with pytest.raises(ClientError, match="Grid search needs every tuned range to be categorical or integer") as info:
        tuner.fit({"train": "file://" + FIXTURES})
    assert info.value.response["Error"]["Code"] == "ValidationException"

    # The same request as the SDK built it, changed one way at a time.
    request = session._get_tuning_request(**_TuningJob._get_tuner_args(tuner, {"train": "file://" + FIXTURES}))
    config, definition = "HyperParameterTuningJobConfig", "TrainingJobDefinition"
    cases = [
        ((config, "Strategy"), "Hyperband", "Hyperband.*not supported locally"),
        ((config, "TrainingJobEarlyStoppingType"), "Sometimes", "early_stopping_type must be Off or Auto"),
        ((config, "ResourceLimits", "MaxParallelTrainingJobs"), 0, "max_parallel_jobs must be a positive integer"),
        ((definition, "AlgorithmSpecification", "MetricDefinitions"), [{"Name": "loss", "Regex": "loss=([0-9.]+)"}],
         "objective metric 'validation_accuracy' has no metric definition.*defined: loss"),
        (("HyperParameterTuningJobName",), "bad_name", "1 to 32 letters"),
        (("WarmStartConfig",), {"WarmStartType": "TransferLearning"}, "warm start is not supported locally"),
    ]
    for path, value, message in cases:
        changed = copy.deepcopy(request)
        changed[config]["Strategy"] = "Random"
        target = changed
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        with pytest.raises(ClientError, match=message):
            session.sagemaker_client.create_hyper_parameter_tuning_job(**changed)
    with pytest.raises(ClientError, match="can't find a tuning job"):
        session.sagemaker_client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="nope")
    assert not os.path.exists(os.path.join(session.root_dir, "jobs"))  # no trial was started


# ---------------------------------------------------------------- real tuning jobs


def _job_log(session, job_name):
    with open(os.path.join(session.root_dir, "jobs", job_name, "job.log")) as f:
        return f.read()


@pytest.mark.slow
def test_mnist_mlp_tuning_best_job_deploys_and_a_failing_trial_does_not_stop_it(session, mnist_small_dirs):
    """Six one-epoch mnist_mlp jobs, two at a time; batch_size 60000 > 2000 samples fails two of them."""
    import mnist_mlp
    import numpy as np
    from sagemaker.analytics import HyperparameterTuningJobAnalytics

    est = mxnet_estimator(session, "mnist_mlp.py", source_dir=os.path.join(REPO, "entry_points"),
                          dependencies=[LIB], hyperparameters={"epochs": 1})
    args = tuner_arguments(mnist_mlp)
    tuner = HyperparameterTuner(est, args["objective_metric_name"],
                                {"learning_rate": CategoricalParameter([0.02, 0.2]),
                                 "batch_size": CategoricalParameter([32, 100, 60000])},
                                args["metric_definitions"], strategy="Grid", max_parallel_jobs=2)
    tuner.fit({"train": "file://" + mnist_small_dirs["train"], "test": "file://" + mnist_small_dirs["test"]})

    desc = tuner.describe()
    assert desc["HyperParameterTuningJobStatus"] == "Completed"
    assert desc["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"] == 6  # the grid
    assert desc["TrainingJobStatusCounters"] == {"Completed": 4, "InProgress": 0, "RetryableError": 0,
                                                 "NonRetryableError": 2, "Stopped": 0}
    assert desc["ObjectiveStatusCounters"] == {"Succeeded": 4, "Pending": 0, "Failed": 2}

    summaries = HyperparameterTuningJobAnalytics(tuner.latest_tuning_job.name, session).training_job_summaries()
    assert len(summaries) == 6
    regex = {d["Name"]: d["Regex"] for d in mnist_mlp.METRIC_DEFINITIONS}["validation_accuracy"]
    parsed = {}
    for s in summaries:
        name = s["TrainingJobName"]
        assert re.match(re.escape(tuner.latest_tuning_job.name) + r"-\d{3}-[0-9a-f]{8}$", name)
        job = session.describe_training_job(name)
        # SageMaker's encoding: tuned values as strings, plus the objective's name.
        assert job["HyperParameters"]["_tuning_objective_metric"] == "validation_accuracy"
        assert job["HyperParameters"]["batch_size"] == s["TunedHyperParameters"]["batch_size"]
        if s["TunedHyperParameters"]["batch_size"] == '"60000"':
            assert s["TrainingJobStatus"] == "Failed" and s["ObjectiveStatus"] == "Failed"
            assert "batch_size 60000" in s["FailureReason"]
            continue
        assert s["TrainingJobStatus"] == "Completed"
        # The objective is what the regex reads from the job's log, its last value.
        values = [float(v) for v in re.findall(regex, _job_log(session, name))]
        assert len(values) == 1
        assert s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == values[-1]
        parsed[name] = values[-1]
    best = max(parsed, key=parsed.get)
    assert tuner.best_training_job() == best

    df = tuner.analytics().dataframe()
    assert len(df) == 6 and set(df["TrainingJobStatus"]) == {"Completed", "Failed"}
    assert df.loc[df["FinalObjectiveValue"].idxmax(), "TrainingJobName"] == best

    predictor = tuner.deploy(initial_instance_count=1, instance_type="local")
    try:
        from smgluon.idx import read_idx

        x = read_idx(os.path.join(mnist_small_dirs["test"], "t10k-images-idx3-ubyte.gz"))[:50]
        y = read_idx(os.path.join(mnist_small_dirs["test"], "t10k-labels-idx1-ubyte.gz"))[:50]
        answer = predictor.predict(x.reshape(50, 784).astype("float32"))
        assert (np.array(answer["predictions"]) == y).mean() > 0.5
    finally:
        predictor.delete_endpoint()
    assert live_processes_under(session.root_dir) == []


@pytest.mark.slow
def test_early_stopping_auto_stops_a_trial_below_the_median(session, tmp_path):
    """One trial at a time: the fourth (quality 0.1) is worse than the median of the three before it."""
    tuner = _curve_tuner(session, {"quality": CategoricalParameter([0.9, 0.8, 0.85, 0.1])},
                         static={"epochs": 3, "seconds_per_epoch": 1.0}, strategy="Grid", max_parallel_jobs=1,
                         early_stopping_type="Auto")
    tuner.fit({"train": "file://" + str(tmp_path)})
    desc = tuner.describe()
    assert desc["HyperParameterTuningJobStatus"] == "Completed"
    assert desc["TrainingJobStatusCounters"]["Completed"] == 3 and desc["TrainingJobStatusCounters"]["Stopped"] == 1
    summaries = session.sagemaker_client.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=tuner.latest_tuning_job.name)["TrainingJobSummaries"]
    stopped = [s for s in summaries if s["TrainingJobStatus"] == "Stopped"]
    assert [s["TunedHyperParameters"]["quality"] for s in stopped] == ['"0.1"']
    # Stopped after its first epoch; its last objective value counts, as on SageMaker.
    assert stopped[0]["ObjectiveStatus"] == "Succeeded"
    assert math.isclose(stopped[0]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"], 0.05)
    job = session.describe_training_job(stopped[0]["TrainingJobName"])
    assert job["TrainingJobStatus"] == "Stopped" and "FailureReason" not in job
    assert job["ModelArtifacts"]["S3ModelArtifacts"].endswith("/model.tar.gz")  # what it saved before the stop
    assert desc["BestTrainingJob"]["TunedHyperParameters"]["quality"] == '"0.9"'
    assert live_processes_under(session.root_dir) == []


@pytest.mark.slow
def test_bayesian_tuning_pagination_attach_and_best_estimator(session, tmp_path):
    ranges = {"quality": ContinuousParameter(0.05, 0.95), "width": IntegerParameter(1, 64, "Logarithmic"),
              "shape": CategoricalParameter(["flat", "deep"])}
    tuner = _curve_tuner(session, ranges, max_jobs=5, max_parallel_jobs=2, random_seed=7)
    tuner.fit({"train": "file://" + str(tmp_path)})
    name = tuner.latest_tuning_job.name
    client = session.sagemaker_client

    pages, token = [], None
    while True:
        kwargs = {"NextToken": token} if token else {}
        page = client.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=name,
                                                                         MaxResults=2, **kwargs)
        pages.append(page["TrainingJobSummaries"])
        token = page.get("NextToken")
        if not token:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    summaries = [s for p in pages for s in p]
    assert [s["TrainingJobName"] for s in summaries] == sorted(s["TrainingJobName"] for s in summaries)
    for s in summaries:
        tuned = s["TunedHyperParameters"]
        assert 0.05 <= float(tuned["quality"]) <= 0.95 and 1 <= int(tuned["width"]) <= 64
        assert tuned["shape"] in ('"flat"', '"deep"')
        # The curve's final value is quality * (1 - 0.5): the job really got the tuned value.
        assert math.isclose(s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"], float(tuned["quality"]) / 2,
                            rel_tol=1e-4)
    ranked = client.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, SortBy="FinalObjectiveMetricValue", SortOrder="Descending")
    assert ranked["TrainingJobSummaries"][0]["TrainingJobName"] == tuner.best_training_job()
    with pytest.raises(ClientError, match="SortBy must be one of"):
        client.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=name, SortBy="Speed")

    attached = HyperparameterTuner.attach(name, sagemaker_session=session)
    assert attached.best_training_job() == tuner.best_training_job()
    assert set(attached.hyperparameter_ranges()["ContinuousParameterRanges"][0]) >= {"Name", "MinValue"}
    best = tuner.best_estimator()
    assert tuner.best_training_job() in best.model_data
    with pytest.raises(ClientError, match="not in progress"):
        client.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)


@pytest.mark.slow
def test_stopping_a_tuning_job_stops_its_running_trial(session, tmp_path):
    tuner = _curve_tuner(session, {"quality": ContinuousParameter(0.1, 0.9)},
                         static={"epochs": 60, "seconds_per_epoch": 0.5}, max_jobs=4, max_parallel_jobs=1,
                         strategy="Random")
    tuner.fit({"train": "file://" + str(tmp_path)}, wait=False)
    name = tuner.latest_tuning_job.name
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _first_trial_logged(session, name):
        time.sleep(0.2)
    tuner.stop_tuning_job()
    assert tuner.describe()["HyperParameterTuningJobStatus"] in ("Stopping", "Stopped")
    tuner.wait()  # ends Stopped: the SDK only warns
    desc = tuner.describe()
    assert desc["HyperParameterTuningJobStatus"] == "Stopped"
    assert desc["TrainingJobStatusCounters"]["Stopped"] == 1 and sum(desc["TrainingJobStatusCounters"].values()) == 1
    assert live_processes_under(session.root_dir) == []


@pytest.mark.slow
def test_completion_criteria_and_max_runtime_end_the_tuning_job(session, tmp_path):
    from sagemaker.tuner import TuningJobCompletionCriteriaConfig

    channels = {"train": "file://" + str(tmp_path)}
    # Target reached by the first trial (0.9 * (1 - 0.5) = 0.45): no second trial starts.
    tuner = _curve_tuner(session, {"quality": CategoricalParameter([0.9, 0.2, 0.3])}, strategy="Grid",
                         completion_criteria_config=TuningJobCompletionCriteriaConfig(target_objective_metric_value=0.4))
    tuner.fit(channels)
    assert tuner.describe()["TrainingJobStatusCounters"]["Completed"] == 1

    # The best (the first) not improved on by two trials: the fourth never starts.
    tuner = _curve_tuner(session, {"quality": CategoricalParameter([0.9, 0.2, 0.3, 0.95])}, strategy="Grid",
                         completion_criteria_config=TuningJobCompletionCriteriaConfig(
                             max_number_of_training_jobs_not_improving=2))
    tuner.fit(channels, job_name="patience")
    desc = tuner.describe()
    assert desc["TrainingJobStatusCounters"]["Completed"] == 3 and desc["HyperParameterTuningJobStatus"] == "Completed"

    # MaxRuntimeInSeconds: the running trial is stopped and so is the tuning job.
    tuner = _curve_tuner(session, {"quality": ContinuousParameter(0.1, 0.9)}, static={"epochs": 60,
                         "seconds_per_epoch": 0.5}, max_jobs=3, strategy="Random", max_runtime_in_seconds=6)
    started = time.monotonic()
    tuner.fit(channels, job_name="deadline")
    assert time.monotonic() - started < 30
    desc = tuner.describe()
    assert desc["HyperParameterTuningJobStatus"] == "Stopped"
    assert desc["TrainingJobStatusCounters"]["Stopped"] == 1 and sum(desc["TrainingJobStatusCounters"].values()) == 1
    assert live_processes_under(session.root_dir) == []


def _first_trial_logged(session, tuning_job_name):
    jobs = os.path.join(session.root_dir, "jobs")
    for name in os.listdir(jobs) if os.path.isdir(jobs) else []:
        if name.startswith(tuning_job_name + "-001-") and "metrics: epoch=1" in _job_log(session, name):
            return True
    return False


# ---------------------------------------------------------------- smgluon tune


def test_cli_tune_refuses_grid_over_a_continuous_range_and_a_misspelt_hp(tmp_path, capsys):
    from smgluon_local.cli import main

    common = ["--entry-points", FIXTURES, "--root", str(tmp_path / "root"), "--training", str(tmp_path),
              "--output", str(tmp_path / "out"), "--max-jobs", "2"]
    assert main(["tune", "tuning_curve", "--strategy", "Grid"] + common) == 1
    assert "Grid search needs every tuned range to be categorical or integer; 'quality' is continuous" in \
        capsys.readouterr().err
    assert main(["tune", "tuning_curve", "--hp", "qualty=0.5"] + common) == 1
    assert "Did you mean 'quality'?" in capsys.readouterr().err
    assert main(["tune", "tuning_curve", "--max-jobs", "2"] + common[:-2] + ["--training", "/nonexistent"]) == 1
    assert "/nonexistent: no such directory" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_tune_writes_table_csv_and_plot(tmp_path, capsys):
    import csv

    from smgluon_local.cli import main

    out = tmp_path / "out"
    assert main(["tune", "tuning_curve", "--entry-points", FIXTURES, "--root", str(tmp_path / "root"),
                 "--max-jobs", "3", "--parallel", "2", "--strategy", "Random", "--seed", "3",
                 "--hp", "epochs=1", "--hp", "seconds_per_epoch=0", "--hp", "shape=deep",
                 "--training", str(tmp_path), "--output", str(out)]) == 0
    stdout = capsys.readouterr().out
    lines = stdout.splitlines()
    assert lines[0].split()[:5] == ["#", "training", "job", "status", "validation_accuracy"]
    assert "shape" not in lines[0]  # fixed with --hp: not tuned
    assert sum(line.startswith("*") for line in lines) == 1
    best = re.search(r"^best: (\S+) validation_accuracy=([0-9.]+)$", stdout, re.M)
    model = re.search(r"^model: (.+)$", stdout, re.M).group(1)
    assert os.path.isfile(model) and best.group(1) in model
    with open(out / "trials.csv", newline="") as f:
        records = list(csv.DictReader(f))
    assert len(records) == 3 and all(r["status"] == "Completed" for r in records)
    assert set(records[0]) >= {"quality", "width", "validation_accuracy", "training_job_name"}
    top = max(records, key=lambda r: float(r["validation_accuracy"]))
    assert top["training_job_name"] == best.group(1)
    with open(out / "trials.png", "rb") as f:
        assert f.read(4) == b"\x89PNG"
