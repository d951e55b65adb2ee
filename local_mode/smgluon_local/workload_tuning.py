"""A workload's tuning arguments as the SageMaker SDK takes them, built from its own declarations.

Entry points run in containers without the SDK, so a workload publishes its
tuning information as plain data: ranges in its ``HYPERPARAMETERS``
(``Hyperparameter(tune=...)``), ``METRIC_DEFINITIONS`` and ``OBJECTIVE``. This
module turns them into the SDK's objects on your machine, so a tuning job,
local or on SageMaker, needs no hand-written range or regex::

    import mnist_mlp
    from sagemaker.tuner import HyperparameterTuner
    from smgluon_local.workload_tuning import hyperparameter_ranges, tuner_arguments

    hyperparameter_ranges(mnist_mlp)
    # {"batch_size": CategoricalParameter([32, 64, 100, 128, 256]),
    #  "learning_rate": ContinuousParameter(0.001, 0.5, scaling_type="Logarithmic"), ...}
    tuner = HyperparameterTuner(estimator, max_jobs=20, max_parallel_jobs=2, **tuner_arguments(mnist_mlp))

A declaration ``tune=[...]`` becomes a ``CategoricalParameter``; ``tune=(low,
high[, scaling])`` an ``IntegerParameter`` or ``ContinuousParameter`` by the
hyperparameter's type.
"""

__all__ = ["hyperparameter_ranges", "tuner_arguments"]


def _declarations(workload):
    hps = getattr(workload, "HYPERPARAMETERS", workload)
    if not hasattr(hps, "tunable") or not hasattr(hps, "params"):
        raise TypeError("%r is not a workload: expected an entry point module with HYPERPARAMETERS "
                        "(smgluon.hyperparameters.Hyperparameters) or such an object" % (workload,))
    return hps


def hyperparameter_ranges(workload, fixed=()):
    """The workload's tuning ranges as SDK parameter ranges.

    Args:
        workload: An entry point module (``mnist_mlp``) or its ``HYPERPARAMETERS``.
        fixed (iterable of str): Hyperparameters held static, left out of the ranges.

    Returns:
        dict: name → ``ContinuousParameter``, ``IntegerParameter`` or ``CategoricalParameter``.

    Raises:
        TypeError: If ``workload`` declares no hyperparameters.
    """
    from sagemaker.tuner import CategoricalParameter, ContinuousParameter, IntegerParameter

    hps = _declarations(workload)
    fixed = {name.replace("-", "_") for name in fixed}
    ranges = {}
    for name, tune in hps.tunable().items():
        if name in fixed:
            continue
        if isinstance(tune, list):
            ranges[name] = CategoricalParameter(tune)
        else:
            low, high, scaling = tune
            kind = IntegerParameter if hps[name].type is int else ContinuousParameter
            ranges[name] = kind(low, high, scaling_type=scaling)
    return ranges


def tuner_arguments(workload, fixed=()):
    """Everything ``HyperparameterTuner`` needs from the workload: objective, ranges, metric regexes.

    Args:
        workload: An entry point module with ``HYPERPARAMETERS``, ``METRIC_DEFINITIONS``
            and ``OBJECTIVE`` (``{"metric": name, "type": "Maximize" or "Minimize"}``).
        fixed (iterable of str): Hyperparameters held static, left out of the ranges.

    Returns:
        dict: ``objective_metric_name``, ``objective_type``, ``hyperparameter_ranges`` and
        ``metric_definitions`` keyword arguments.

    Raises:
        ValueError: If the workload publishes no objective or metric definitions, or
            every tunable hyperparameter is fixed.
    """
    name = getattr(workload, "__name__", repr(workload))
    objective = getattr(workload, "OBJECTIVE", None)
    definitions = getattr(workload, "METRIC_DEFINITIONS", None)
    if not objective or not definitions:
        raise ValueError("workload %s publishes no OBJECTIVE and METRIC_DEFINITIONS to tune on" % name)
    if objective["metric"] not in {d["Name"] for d in definitions}:
        raise ValueError("workload %s: the objective %r is not among its METRIC_DEFINITIONS"
                         % (name, objective["metric"]))
    ranges = hyperparameter_ranges(workload, fixed)
    if not ranges:
        raise ValueError("workload %s: nothing left to tune (tunable: %s; all fixed)"
                         % (name, ", ".join(sorted(_declarations(workload).tunable())) or "none"))
    return {"objective_metric_name": objective["metric"], "objective_type": objective["type"],
            "hyperparameter_ranges": ranges, "metric_definitions": list(definitions)}
