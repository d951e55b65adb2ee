"""Hyperparameter tuning jobs run locally: the SageMaker tuning API on ProcessSession.

SDK local mode has no ``CreateHyperParameterTuningJob`` (sagemaker-python-sdk
#1960). :class:`TuningClientMixin` gives :class:`~smgluon_local.client.ProcessSagemakerClient`
that call and the ones the SDK makes afterwards, so the SDK's own
``HyperparameterTuner`` works unchanged::

    tuner = HyperparameterTuner(estimator, "validation_accuracy", ranges, metric_definitions,
                                max_jobs=6, max_parallel_jobs=2, early_stopping_type="Auto")
    tuner.fit({"train": "file:///data/train", "test": "file:///data/test"})
    tuner.best_training_job(); tuner.analytics().dataframe(); tuner.deploy(1, "local")

How a :class:`LocalTuningJob` runs:

* each trial is an ordinary training job, driven through the client's own
  training API (``create_training_job``, ``describe_training_job``,
  ``stop_training_job``) from a worker thread; at most ``MaxParallelTrainingJobs``
  run at once, and never more than the machine's cores;
* the next trial's hyperparameters come from :mod:`smgluon_local.search`
  (Random, Bayesian with Optuna's TPE, Grid), encoded as SageMaker sends them:
  strings, with the static hyperparameters and ``_tuning_objective_metric``;
* the objective is read from the trial's log (``<root>/jobs/<trial>/job.log``,
  followed as it is written) with the objective's ``MetricDefinitions`` regex,
  line by line as SageMaker reads CloudWatch logs; the trial's final objective
  is the last value, from its ``FinalMetricDataList``;
* ``TrainingJobEarlyStoppingType: Auto`` applies SageMaker's median rule
  (:func:`median_rule_stops`) each time a trial logs an objective value; a
  stopped trial ends as SageMaker records it, ``Stopped``;
* a failing trial is recorded as ``Failed`` with its reason, and the search
  goes on; the tuning job fails only if no trial produced an objective.

Trials do not echo their logs (SageMaker does not stream them either); each
one's log is in ``<root>/jobs/<trial>/job.log``.
"""

import atexit
import copy
import datetime
import logging
import math
import os
import re
import statistics
import threading
import time
import uuid

from botocore.exceptions import ClientError

from smgluon_local.search import SearchError, SearchSpace, make_strategy

logger = logging.getLogger(__name__)

__all__ = ["TuningClientMixin", "LocalTuningJob", "median_rule_stops", "wait_for_tuning_job", "parallel_limit"]

TUNING_METRIC_PARAM = "_tuning_objective_metric"
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}$")
_RUNNING = ("InProgress", "Stopping")
_POLL_S = 0.1  # how often a trial's log and status are looked at
_SORT_KEYS = ("Name", "CreationTime", "Status", "FinalObjectiveMetricValue")
_TRIAL_STATUSES = ("InProgress", "Completed", "Failed", "Stopping", "Stopped")
_MIN_REFERENCE_TRIALS = 3  # the median rule needs this many earlier trials at the same epoch


def _validation_error(operation, message):
    return ClientError({"Error": {"Code": "ValidationException", "Message": message}}, operation)


def parallel_limit(max_parallel_jobs):
    """How many trials run at once: the request's limit, at most the machine's cores."""
    return max(1, min(int(max_parallel_jobs or 1), os.cpu_count() or 1))


def median_rule_stops(values, earlier, maximize, min_trials=_MIN_REFERENCE_TRIALS):
    """SageMaker's early-stopping rule for one trial after its latest objective value.

    The trial stops when its latest value is worse than the median of the
    running averages, up to the same epoch, of the earlier trials' values.

    Args:
        values (list of float): This trial's objective values so far, one per epoch.
        earlier (list of list of float): The objective values of the trials started before it.
        maximize (bool): Whether a higher objective is better.
        min_trials (int): Earlier trials that must have reached this epoch for the rule to apply.

    Returns:
        bool: True to stop the trial.
    """
    n = len(values)
    averages = [statistics.fmean(v[:n]) for v in earlier if len(v) >= n and all(map(math.isfinite, v[:n]))]
    if n == 0 or len(averages) < min_trials:
        return False
    latest = values[-1]
    if not math.isfinite(latest):
        return True  # diverged
    median = statistics.median(averages)
    return latest < median if maximize else latest > median


def metric_values(regex, line):
    """The values a metric definition's regex reads from one log line (its first group, as floats)."""
    values = []
    for match in regex.finditer(line):
        try:
            values.append(float(match.group(1)))
        except (IndexError, TypeError, ValueError):
            continue
    return values


class _TrialSession:
    """The tuning job's session as a trial sees it: the same everything, but its log is not echoed."""

    def __init__(self, session):
        self.__dict__["_session"] = session
        self.__dict__["log_stream"] = False  # SageMaker does not stream a tuning job's trials either

    def __getattr__(self, name):
        return getattr(self._session, name)


class _Trial:
    """One training job of the tuning job."""

    def __init__(self, index, name, tuned, token):
        self.index = index
        self.name = name
        self.tuned = tuned  # {name: value string}, as the training job gets them
        self.token = token  # the search strategy's handle
        self.values = []  # the objective, each time the log reported it
        self.creation_time = datetime.datetime.now()
        self.error = None  # why the job could not even be created
        self.final = None  # the training job's last description
        self.ended = threading.Event()  # the training job has ended (or never started)
        self.done = False  # ... and the tuning job has recorded it
        self.early_stopped = False
        self.stop_wanted = False  # early stopping or StopHyperParameterTuningJob asked for a stop
        self.stop_sent = False


class LocalTuningJob:
    """A hyperparameter tuning job whose trials are local training jobs.

    Args:
        client (ProcessSagemakerClient): Runs the trials (``create_training_job``).
        request (dict): The CreateHyperParameterTuningJob request, as the SDK sends it.

    Raises:
        botocore.exceptions.ClientError: ``ValidationException`` for a request that
            cannot run locally, with what to change.
    """

    def __init__(self, client, request):
        self.client = client
        self.name = request["HyperParameterTuningJobName"]
        self.config = copy.deepcopy(request["HyperParameterTuningJobConfig"])
        self.definition = copy.deepcopy(request["TrainingJobDefinition"])
        self._validate()
        self.creation_time = self.last_modified = datetime.datetime.now()
        self.end_time = None
        self.status = "InProgress"
        self.failure_reason = None
        self.trials = []
        self._stopping = False
        self._cond = threading.Condition()
        self._thread = None
        self._done = threading.Event()

    def _validate(self):
        def fail(message):
            raise _validation_error("CreateHyperParameterTuningJob", message)

        config, definition = self.config, self.definition
        objective = config.get("HyperParameterTuningJobObjective") or definition.get("TuningObjective") or {}
        self.objective_name = objective.get("MetricName")
        self.objective_type = objective.get("Type")
        if not self.objective_name or self.objective_type not in ("Maximize", "Minimize"):
            fail("the tuning job needs an objective: objective_metric_name and objective_type Maximize or Minimize")
        spec = definition.get("AlgorithmSpecification") or {}
        regexes = {d.get("Name"): d.get("Regex") for d in spec.get("MetricDefinitions") or []}
        if self.objective_name not in regexes:
            fail("the objective metric %r has no metric definition; pass metric_definitions with a regex for it "
                 "(defined: %s)" % (self.objective_name, ", ".join(sorted(regexes)) or "none"))
        try:
            re.compile(regexes[self.objective_name])
        except (re.error, TypeError) as e:
            fail("the regex of metric %r does not compile: %s" % (self.objective_name, e))
        self.objective_regex = regexes[self.objective_name]
        limits = config.get("ResourceLimits") or {}
        self.strategy_name = config.get("Strategy", "Bayesian")
        self.max_jobs = limits.get("MaxNumberOfTrainingJobs")
        self.max_parallel = limits.get("MaxParallelTrainingJobs", 1)
        for key, value in (("max_jobs", self.max_jobs), ("max_parallel_jobs", self.max_parallel)):
            if value is not None and (not isinstance(value, int) or value < 1):
                fail("%s must be a positive integer, got %r" % (key, value))
        if self.max_jobs is None and self.strategy_name != "Grid":
            fail("max_jobs is required for the %s strategy" % self.strategy_name)
        self.early_stopping = config.get("TrainingJobEarlyStoppingType", "Off")
        if self.early_stopping not in ("Off", "Auto"):
            fail("early_stopping_type must be Off or Auto, got %r" % self.early_stopping)
        self.max_runtime = limits.get("MaxRuntimeInSeconds")
        criteria = config.get("TuningJobCompletionCriteria") or {}
        self.target = criteria.get("TargetObjectiveMetricValue")
        self.patience = (criteria.get("BestObjectiveNotImproving") or {}).get("MaxNumberOfTrainingJobsNotImproving")
        for key in sorted(set(criteria) - {"TargetObjectiveMetricValue", "BestObjectiveNotImproving"}):
            logger.warning("Tuning job %s: TuningJobCompletionCriteria.%s is ignored locally", self.name, key)
        static = definition.get("StaticHyperParameters") or {}
        try:
            self.space = SearchSpace(config.get("ParameterRanges"), static)
            self.strategy = make_strategy(self.strategy_name, self.space, self.objective_type,
                                          seed=config.get("RandomSeed"), max_jobs=self.max_jobs)
        except SearchError as e:
            fail(str(e))
        if self.strategy_name == "Grid":
            if self.max_jobs is None or self.max_jobs > self.strategy.size:
                self.max_jobs = self.strategy.size
            elif self.max_jobs < self.strategy.size:
                logger.warning("Tuning job %s: the grid has %d combinations; max_jobs=%d runs the first %d",
                               self.name, self.strategy.size, self.max_jobs, self.max_jobs)
            # As SageMaker does for Grid, the job count is the grid's size.
            self.config.setdefault("ResourceLimits", {})["MaxNumberOfTrainingJobs"] = self.max_jobs
        self.parallel = parallel_limit(self.max_parallel)
        if self.parallel < self.max_parallel:
            logger.info("Tuning job %s: %d parallel jobs asked for, %d run at once on %d cores", self.name,
                        self.max_parallel, self.parallel, os.cpu_count() or 1)
        resources = definition.get("HyperParameterTuningResourceConfig") or definition.get("ResourceConfig") or {}
        if resources.get("InstanceConfigs"):
            fail("instance_configs (heterogeneous tuning resources) are not supported locally")
        self.resource_config = {k: resources[k] for k in ("InstanceCount", "InstanceType", "VolumeSizeInGB")
                                if k in resources}

    # ------------------------------------------------------------------ running

    def start(self):
        """Start the trials in the background; returns at once, as the API does."""
        self._thread = threading.Thread(target=self._run, name="smgluon-tune-" + self.name, daemon=True)
        self._thread.start()

    def _run(self):
        deadline = None
        if self.max_runtime:
            deadline = self.creation_time + datetime.timedelta(seconds=self.max_runtime)
        try:
            while True:
                with self._cond:
                    if not self._wait_for_slot(deadline):
                        break
                    asked = self.strategy.ask()
                    if asked is None:  # the grid is done
                        break
                    trial = _Trial(len(self.trials) + 1, self._trial_name(len(self.trials) + 1), asked[1], asked[0])
                    self.trials.append(trial)
                    self.last_modified = datetime.datetime.now()
                threading.Thread(target=self._run_trial, args=(trial,), name="smgluon-tune-" + trial.name,
                                 daemon=True).start()
            with self._cond:
                while self._running():
                    if deadline and datetime.datetime.now() >= deadline:
                        self._stop_trials()
                    self._cond.wait(timeout=self._seconds_left(deadline))
            self._finish()
        except Exception as e:  # a bug here must not leave the job InProgress forever
            logger.exception("Tuning job %s failed", self.name)
            with self._cond:
                self._stop_trials()
                self.status, self.failure_reason = "Failed", "InternalError: %s: %s" % (type(e).__name__, e)
                self.end_time = self.last_modified = datetime.datetime.now()
        finally:
            self._done.set()

    def _wait_for_slot(self, deadline):
        """Wait (lock held) until another trial may start; False when no more will."""
        while True:
            if deadline and datetime.datetime.now() >= deadline:
                self._stop_trials()
            if self._stopping or len(self.trials) >= self.max_jobs or self._criteria_met():
                return False
            if self._running() < self.parallel:
                return True
            self._cond.wait(timeout=self._seconds_left(deadline))

    @staticmethod
    def _seconds_left(deadline):
        if deadline is None:
            return None
        return max(0.05, (deadline - datetime.datetime.now()).total_seconds())

    def _running(self):
        return sum(1 for t in self.trials if not t.done)

    def _criteria_met(self):
        """TuningJobCompletionCriteria: the target reached, or the best not improved for N trials."""
        best = self._best_trial()
        if best is None:
            return False
        value = self._final_objective(best)
        if self.target is not None and (value >= self.target if self.objective_type == "Maximize"
                                        else value <= self.target):
            return True
        if self.patience:
            # Trials ended after the best one started, in the order they started.
            later = [t for t in self.trials if t.index > best.index and t.done]
            return len(later) >= self.patience
        return False

    def _trial_name(self, index):
        # SageMaker's names for a tuning job's training jobs: <tuning job>-<NNN>-<8 hex digits>.
        return "%s-%03d-%s" % (self.name, index, uuid.uuid4().hex[:8])

    def _training_request(self, trial):
        d = self.definition
        hyperparameters = dict(d.get("StaticHyperParameters") or {})
        hyperparameters[TUNING_METRIC_PARAM] = self.objective_name
        hyperparameters.update(trial.tuned)
        request = {
            "TrainingJobName": trial.name,
            "AlgorithmSpecification": copy.deepcopy(d["AlgorithmSpecification"]),
            "OutputDataConfig": copy.deepcopy(d["OutputDataConfig"]),
            "ResourceConfig": dict(self.resource_config),
            "InputDataConfig": copy.deepcopy(d.get("InputDataConfig") or []),
            "HyperParameters": hyperparameters,
            "RoleArn": d.get("RoleArn"),
            "StoppingCondition": copy.deepcopy(d.get("StoppingCondition") or {"MaxRuntimeInSeconds": 86400}),
        }
        for key in ("Environment", "EnableNetworkIsolation", "VpcConfig", "CheckpointConfig"):
            if d.get(key):
                request[key] = copy.deepcopy(d[key])
        return request

    def _run_trial(self, trial):
        follower = threading.Thread(target=self._follow, args=(trial,), name="smgluon-tune-log-" + trial.name,
                                    daemon=True)
        follower.start()
        try:
            type(self.client)(_TrialSession(self.client.sagemaker_session)).create_training_job(
                **self._training_request(trial))
            # create_training_job may return before the job ends (as the service does): wait for the end.
            while True:
                desc = self.client.describe_training_job(TrainingJobName=trial.name)
                if desc["TrainingJobStatus"] not in _RUNNING:
                    break
                time.sleep(_POLL_S)
            trial.final = desc
        except Exception as e:  # the job could not start (bad channel, ...): a failed trial
            trial.error = "%s: %s" % (type(e).__name__, e)
            logger.warning("Tuning job %s: training job %s could not run: %s", self.name, trial.name, trial.error)
        finally:
            trial.ended.set()
            follower.join()
            with self._cond:
                trial.done = True
                stopped = trial.final is not None and trial.final["TrainingJobStatus"] == "Stopped"
                self.strategy.tell(trial.token, self._final_objective(trial), stopped=stopped)
                self.last_modified = datetime.datetime.now()
                self._cond.notify_all()

    def _follow(self, trial):
        """Read the trial's log as it grows (objective values) and send the stop it was asked for."""
        path = os.path.join(self.client.sagemaker_session.root_dir, "jobs", trial.name, "job.log")
        regex, log, partial = re.compile(self.objective_regex), None, ""
        try:
            while True:
                ended = trial.ended.is_set()  # read once more after the end: the log is complete then
                if log is None and os.path.isfile(path):
                    log = open(path, encoding="utf-8", errors="replace")
                chunk = log.read() if log is not None else ""
                lines = (partial + chunk).split("\n")
                partial = lines.pop()
                for line in lines:
                    for value in metric_values(regex, line):
                        self._on_value(trial, value)
                if trial.stop_wanted and not trial.stop_sent and not ended:
                    self._send_stop(trial)
                if ended:
                    break
                time.sleep(_POLL_S)
        except Exception:  # reading the log is best effort; the job's outcome does not depend on it
            logger.exception("Tuning job %s: cannot follow the log of %s", self.name, trial.name)
        finally:
            if log is not None:
                log.close()

    def _send_stop(self, trial):
        try:
            self.client.stop_training_job(TrainingJobName=trial.name)
            trial.stop_sent = True
        except ClientError:
            pass  # not created yet (retried), or already ended

    def _on_value(self, trial, value):
        with self._cond:
            trial.values.append(value)
            self.strategy.report(trial.token, len(trial.values), value)
            if self.early_stopping != "Auto" or trial.early_stopped or self._stopping:
                return
            earlier = [t.values for t in self.trials if t.index < trial.index and t.error is None]
            if not median_rule_stops(trial.values, earlier, self.objective_type == "Maximize"):
                return
            trial.early_stopped = trial.stop_wanted = True
        logger.info("Tuning job %s: early stopping %s at epoch %d (%s=%g, worse than the median of earlier trials)",
                    self.name, trial.name, len(trial.values), self.objective_name, value)

    def _stop_trials(self):
        """Stop every running trial (called with the lock held; the log followers send the stops)."""
        self._stopping = True
        for trial in self.trials:
            trial.stop_wanted = True

    def stop(self):
        """StopHyperParameterTuningJob: no new trials; running ones are stopped."""
        with self._cond:
            if self.status != "InProgress":
                raise _validation_error("StopHyperParameterTuningJob", "The tuning job %s is not in progress "
                                        "(status %s)" % (self.name, self.status))
            self.status = "Stopping"
            self.last_modified = datetime.datetime.now()
            self._stop_trials()
            self._cond.notify_all()

    def _finish(self):
        with self._cond:
            self.end_time = self.last_modified = datetime.datetime.now()
            if self._stopping:  # asked to, or MaxRuntimeInSeconds ran out
                self.status = "Stopped"
            elif self._best_trial() is not None:
                self.status = "Completed"
            else:
                self.status = "Failed"
                reasons = [s.get("FailureReason") for s in map(self._summary, self.trials) if s.get("FailureReason")]
                self.failure_reason = ("No training job reported the objective metric %r (%d of %d failed)%s"
                                       % (self.objective_name, len(reasons), len(self.trials),
                                          ". First failure: " + reasons[0] if reasons else
                                          "; check its metric definition regex against the training logs"))

    def wait(self, timeout=None):
        """Block until the tuning job has ended; returns whether it has."""
        return self._done.wait(timeout)

    # ------------------------------------------------------------------ describing

    def _final_objective(self, trial):
        """The objective's last value (FinalMetricDataList) of an ended, not failed trial."""
        if trial.final is None or trial.final["TrainingJobStatus"] not in ("Completed", "Stopped"):
            return None
        for metric in trial.final.get("FinalMetricDataList") or []:
            if metric["MetricName"] == self.objective_name and math.isfinite(metric["Value"]):
                return metric["Value"]
        return None

    def _best_trial(self):
        # The best is a completed trial: a stopped one was below the median and may have saved no model.
        candidates = [t for t in self.trials if t.done and self._final_objective(t) is not None
                      and t.final["TrainingJobStatus"] == "Completed"]
        if not candidates:
            return None
        sign = 1 if self.objective_type == "Maximize" else -1
        # The best objective; the earliest trial among equals.
        return max(candidates, key=lambda t: (sign * self._final_objective(t), -t.index))

    def _summary(self, trial):
        """The trial's HyperParameterTrainingJobSummary."""
        summary = {
            "TrainingJobName": trial.name,
            "TrainingJobArn": "local:training-job/%s" % trial.name,
            "TuningJobName": self.name,
            "CreationTime": trial.creation_time,
            "TunedHyperParameters": dict(trial.tuned),
        }
        desc = trial.final if trial.done else None
        if desc is None and not trial.done:
            try:
                desc = self.client.describe_training_job(TrainingJobName=trial.name)
            except ClientError:
                desc = None  # not created yet
        if desc is None:
            summary.update(TrainingJobStatus="Failed" if trial.done else "InProgress", ObjectiveStatus=(
                "Failed" if trial.done else "Pending"))
            if trial.error:
                summary["FailureReason"] = trial.error
            return summary
        status = desc["TrainingJobStatus"]
        if not trial.done and status != "Stopping":
            status = "InProgress"  # until the tuning job has recorded the end
        summary["TrainingJobStatus"] = status
        for key in ("TrainingStartTime", "TrainingEndTime", "FailureReason"):
            if desc.get(key) is not None:
                summary[key] = desc[key]
        value = self._final_objective(trial)
        if value is not None:
            summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "Type": self.objective_type, "MetricName": self.objective_name, "Value": value}
            summary["ObjectiveStatus"] = "Succeeded"
        else:
            summary["ObjectiveStatus"] = "Pending" if status in ("InProgress", "Stopping") else "Failed"
        return summary

    def summaries(self):
        """Every trial's summary, in the order they started."""
        with self._cond:
            return [self._summary(t) for t in self.trials]

    def describe(self):
        """DescribeHyperParameterTuningJob's answer."""
        with self._cond:
            summaries = [self._summary(t) for t in self.trials]
            best = self._best_trial()
            counters = dict.fromkeys(("Completed", "InProgress", "RetryableError", "NonRetryableError", "Stopped"), 0)
            objectives = dict.fromkeys(("Succeeded", "Pending", "Failed"), 0)
            for s in summaries:
                key = {"Failed": "NonRetryableError", "Stopping": "InProgress"}.get(s["TrainingJobStatus"],
                                                                                   s["TrainingJobStatus"])
                counters[key] += 1
                objectives[s["ObjectiveStatus"]] += 1
            definition = copy.deepcopy(self.definition)
            definition.setdefault("StaticHyperParameters", {})[TUNING_METRIC_PARAM] = self.objective_name
            definition.setdefault("ResourceConfig", dict(self.resource_config))  # HyperparameterTuner.attach reads it
            response = {
                "HyperParameterTuningJobName": self.name,
                "HyperParameterTuningJobArn": "local:hyper-parameter-tuning-job/%s" % self.name.lower(),
                "HyperParameterTuningJobConfig": copy.deepcopy(self.config),
                "TrainingJobDefinition": definition,
                "HyperParameterTuningJobStatus": self.status,
                "CreationTime": self.creation_time,
                "LastModifiedTime": self.last_modified,
                "TrainingJobStatusCounters": counters,
                "ObjectiveStatusCounters": objectives,
            }
            if self.end_time is not None:
                response["HyperParameterTuningEndTime"] = self.end_time
            if best is not None:
                response["BestTrainingJob"] = summaries[self.trials.index(best)]
            if self.failure_reason:
                response["FailureReason"] = self.failure_reason
            return response


# (session root, name) -> LocalTuningJob. Names are unique per workspace, as per account on SageMaker.
_TUNING_JOBS = {}


@atexit.register
def _stop_running_tuning_jobs():
    # Trials are processes of their own: stop them rather than leave them running after Python exits.
    for job in list(_TUNING_JOBS.values()):
        if job.status == "InProgress":
            try:
                job.stop()
                job.wait(timeout=20)
            except Exception:  # interpreter shutdown: best effort
                pass


def _key(client, name):
    return getattr(client.sagemaker_session, "root_dir", None), name


def _get(client, name, operation):
    job = _TUNING_JOBS.get(_key(client, name))
    if job is None:
        raise _validation_error(operation, "Amazon SageMaker can't find a tuning job with name %s" % name)
    return job


class TuningClientMixin:
    """The SageMaker hyperparameter tuning API for :class:`~smgluon_local.client.ProcessSagemakerClient`."""

    def create_hyper_parameter_tuning_job(self, HyperParameterTuningJobName, HyperParameterTuningJobConfig,  # noqa: N803
                                          TrainingJobDefinition=None, TrainingJobDefinitions=None,
                                          WarmStartConfig=None, Tags=None, Autotune=None, **kwargs):
        """Start a tuning job (CreateHyperParameterTuningJob); returns at once.

        Raises:
            botocore.exceptions.ClientError: ``ValidationException`` for a bad or
                unsupported request (the message says what to change),
                ``ResourceInUse`` for a name already taken.
        """
        op = "CreateHyperParameterTuningJob"
        name = HyperParameterTuningJobName
        if not isinstance(name, str) or not _NAME.match(name):
            raise _validation_error(op, "tuning job name %r: 1 to 32 letters, digits and hyphens, starting with a "
                                        "letter or digit" % (name,))
        if _key(self, name) in _TUNING_JOBS:
            raise ClientError({"Error": {"Code": "ResourceInUse", "Message": "Tuning job %s already exists (the "
                                         "SDK names tuning jobs by the minute: pass job_name= to fit())" % name}}, op)
        if TrainingJobDefinitions:
            raise _validation_error(op, "several training job definitions (HyperparameterTuner.create with an "
                                        "estimator_dict) are not supported locally; tune one estimator")
        if TrainingJobDefinition is None:
            raise _validation_error(op, "TrainingJobDefinition is required")
        if WarmStartConfig:
            raise _validation_error(op, "warm start is not supported locally; start a new tuning job")
        if Autotune:
            raise _validation_error(op, "autotune is not supported locally; give explicit ranges")
        job = LocalTuningJob(self, {"HyperParameterTuningJobName": name,
                                    "HyperParameterTuningJobConfig": HyperParameterTuningJobConfig,
                                    "TrainingJobDefinition": TrainingJobDefinition})
        _TUNING_JOBS[_key(self, name)] = job
        logger.info("Starting tuning job %s: %s strategy, %d training jobs, %d at a time", name,
                    job.strategy_name, job.max_jobs, job.parallel)
        job.start()
        return {"HyperParameterTuningJobArn": "local:hyper-parameter-tuning-job/%s" % name.lower()}

    def describe_hyper_parameter_tuning_job(self, HyperParameterTuningJobName):  # noqa: N803
        """DescribeHyperParameterTuningJob: status, counters, best training job."""
        return _get(self, HyperParameterTuningJobName, "DescribeHyperParameterTuningJob").describe()

    def list_training_jobs_for_hyper_parameter_tuning_job(self, HyperParameterTuningJobName, NextToken=None,  # noqa: N803
                                                          MaxResults=10, SortBy="Name", SortOrder="Ascending",
                                                          StatusEquals=None):
        """ListTrainingJobsForHyperParameterTuningJob, paginated as the service does.

        ``SortBy="FinalObjectiveMetricValue"`` lists only the jobs that reported the objective.
        """
        op = "ListTrainingJobsForHyperParameterTuningJob"
        job = _get(self, HyperParameterTuningJobName, op)
        if SortBy not in _SORT_KEYS:
            raise _validation_error(op, "SortBy must be one of %s, got %r" % (", ".join(_SORT_KEYS), SortBy))
        if SortOrder not in ("Ascending", "Descending"):
            raise _validation_error(op, "SortOrder must be Ascending or Descending, got %r" % SortOrder)
        if StatusEquals is not None and StatusEquals not in _TRIAL_STATUSES:
            raise _validation_error(op, "StatusEquals must be one of %s" % ", ".join(_TRIAL_STATUSES))
        if not isinstance(MaxResults, int) or not 1 <= MaxResults <= 100:
            raise _validation_error(op, "MaxResults must be 1 to 100, got %r" % (MaxResults,))
        summaries = job.summaries()
        if StatusEquals is not None:
            summaries = [s for s in summaries if s["TrainingJobStatus"] == StatusEquals]
        if SortBy == "FinalObjectiveMetricValue":
            summaries = [s for s in summaries if "FinalHyperParameterTuningJobObjectiveMetric" in s]
        key = {"Name": lambda s: s["TrainingJobName"], "CreationTime": lambda s: s["CreationTime"],
               "Status": lambda s: s["TrainingJobStatus"],
               "FinalObjectiveMetricValue": lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]}[SortBy]
        summaries.sort(key=key, reverse=SortOrder == "Descending")
        try:
            start = int(NextToken) if NextToken else 0
        except ValueError:
            raise _validation_error(op, "invalid NextToken %r" % NextToken) from None
        page = summaries[start:start + MaxResults]
        response = {"TrainingJobSummaries": page}
        if start + MaxResults < len(summaries):
            response["NextToken"] = str(start + MaxResults)
        return response

    def stop_hyper_parameter_tuning_job(self, HyperParameterTuningJobName):  # noqa: N803
        """StopHyperParameterTuningJob: start no more trials and stop the running ones."""
        _get(self, HyperParameterTuningJobName, "StopHyperParameterTuningJob").stop()


def wait_for_tuning_job(client, name, poll=5):
    """Block until a local tuning job ends, printing the SDK's progress dots; raise as the SDK does.

    Args:
        client (ProcessSagemakerClient): The session's client.
        name (str): The tuning job.
        poll (float): Seconds between progress dots.

    Returns:
        dict: The final DescribeHyperParameterTuningJob answer.

    Raises:
        sagemaker.exceptions.UnexpectedStatusException: If the tuning job failed.
    """
    import sys

    from sagemaker.session import _check_job_status

    job = _get(client, name, "DescribeHyperParameterTuningJob")
    while not job.wait(timeout=poll):
        print(".", end="", flush=True)
        sys.stdout.flush()
    desc = client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    print({"Completed": "!", "Stopped": "s", "Failed": "*"}.get(desc["HyperParameterTuningJobStatus"], "?"))
    _check_job_status(name, desc, "HyperParameterTuningJobStatus")
    return desc
